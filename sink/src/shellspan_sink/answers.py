"""How the API answers: strict JSON, whatever the store returned."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .queries import finite


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer; a NaN or infinity is null, never a bare NaN that no JSON parser reads."""
    return web.Response(text=json.dumps(finite(data), default=str, allow_nan=False),
                        status=status, content_type="application/json")
