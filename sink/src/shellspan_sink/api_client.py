"""A client of the running sink's HTTP API (what the CLI and the stdio MCP server talk to)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .access_log import CLIENT_HEADER


def error_detail(exc: urllib.error.HTTPError) -> str:
    """What the sink said was wrong (its JSON ``error``, else the body)."""
    detail = exc.read().decode(errors="replace")
    try:
        return json.loads(detail).get("error", detail)
    except (ValueError, AttributeError):
        return detail


class ApiError(Exception):
    """The sink answered with an error status, or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ApiClient:
    def __init__(self, api: str, token: str | None = None, door: str = "api",
                 timeout: float = 60.0) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.door = door  # what the sink's access log records this client as
        self.timeout = timeout

    def open(self, path: str, params: dict[str, Any] | None = None, body: bytes | None = None):
        """The answer, open for reading (None for 404); a body makes it a POST. Raises ApiError."""
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        request = urllib.request.Request(f"{self.api}{path}" + (f"?{query}" if query else ""),
                                         data=body, method="POST" if body is not None else "GET")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header(CLIENT_HEADER, self.door)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise ApiError(exc.code, f"{self.api} answered {exc.code}: {error_detail(exc)}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(0, f"cannot reach the sink at {self.api} ({exc}); is `shellspan-sink "
                              "serve` running? (or pass --api URL)") from exc

    def call(self, path: str, params: dict[str, Any] | None = None,
             body: bytes | None = None) -> Any:
        """The decoded JSON answer (None for 404); a body makes it a POST. Raises ApiError."""
        resp = self.open(path, params, body)
        if resp is None:
            return None
        with resp:
            return json.loads(resp.read())
