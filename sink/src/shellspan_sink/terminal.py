"""A VT emulator for recordings on the sink: pyte, plus the alternate screen.

pyte keeps one screen buffer; full-screen programs (``vim``, ``less``, ``top``) switch to the
alternate screen (private modes 47, 1047, 1049) and back when they exit, which restores what the
shell had shown. `Terminal` adds that switch, so "the screen after `vim` was closed" is the
shell's screen again, as in a real terminal. Escape sequences are parsed by pyte alone.
"""

from __future__ import annotations

import copy
from typing import Any

import pyte

ALTERNATE_SCREEN_MODES = frozenset({47, 1047, 1049})


class _AlternateScreen:
    """Mixin for pyte screens: the alternate screen buffer."""

    _saved: tuple[dict, Any] | None = None

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and ALTERNATE_SCREEN_MODES.intersection(modes):
            if self._saved is None:
                self._saved = ({y: dict(row) for y, row in self.buffer.items()},
                               copy.copy(self.cursor))
                self.erase_in_display(2)
            modes = tuple(m for m in modes if m not in ALTERNATE_SCREEN_MODES)
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and ALTERNATE_SCREEN_MODES.intersection(modes):
            if self._saved is not None:
                rows, cursor = self._saved
                self._saved = None
                self.buffer.clear()
                for y, cells in rows.items():
                    self.buffer[y].update(cells)
                self.cursor = cursor
                self.dirty.update(range(self.lines))
            modes = tuple(m for m in modes if m not in ALTERNATE_SCREEN_MODES)
        super().reset_mode(*modes, **kwargs)


class Screen(_AlternateScreen, pyte.Screen):
    pass


class HistoryScreen(_AlternateScreen, pyte.HistoryScreen):
    pass


def parse_size(text: str) -> tuple[int, int] | None:
    """(columns, rows) of a resize event's "COLSxROWS", or None when it is not one."""
    cols, sep, rows = text.partition("x")
    if not sep or not cols.isdigit() or not rows.isdigit():
        return None
    cols_n, rows_n = int(cols), int(rows)
    if not (1 <= cols_n <= 1000 and 1 <= rows_n <= 1000):
        return None
    return cols_n, rows_n


class Terminal:
    """Replays recording events (``o`` output, ``r`` resize; input and markers change nothing)."""

    def __init__(self, columns: int, lines: int, history: int = 0,
                 screen: Screen | None = None) -> None:
        self.screen = screen or (HistoryScreen(columns, lines, history=history, ratio=0.5)
                                 if history else Screen(columns, lines))
        self.stream = pyte.Stream(self.screen)

    @property
    def between_sequences(self) -> bool:
        """Whether the last feed ended outside an escape sequence (the state is all in the
        screen, so `snapshot` captures it whole)."""
        return bool(self.stream._taking_plain_text)

    def snapshot(self) -> Screen:
        """A copy of the screen (`Terminal(0, 0, screen=copy)` goes on from it)."""
        screen = copy.deepcopy(self.screen)
        screen.buffer.default_factory = lambda: pyte.screens.StaticDefaultDict(
            screen.default_char)
        return screen

    def feed(self, event: str, data: str) -> None:
        if event == "o":
            self.stream.feed(data)
        elif event == "r" and (size := parse_size(data)):
            self.screen.resize(lines=size[1], columns=size[0])

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def history_lines(self) -> list[str]:
        """Lines scrolled off the top (HistoryScreen only), then the screen's."""
        history = getattr(self.screen, "history", None)
        columns = self.screen.columns
        earlier = [] if history is None else [
            "".join(row[x].data for x in range(columns)).rstrip() for row in history.top]
        return earlier + self.lines()

    def cells(self) -> list[list[dict]]:
        """Each line as runs of characters with the same attributes."""
        out = []
        screen = self.screen
        for y in range(screen.lines):
            row = screen.buffer[y]
            runs: list[dict] = []
            for x in range(screen.columns):
                char = row[x]
                attrs = {"fg": char.fg, "bg": char.bg, "bold": char.bold, "italics": char.italics,
                         "underscore": char.underscore, "reverse": char.reverse}
                if runs and all(runs[-1][k] == v for k, v in attrs.items()):
                    runs[-1]["text"] += char.data
                else:
                    runs.append({"text": char.data, **attrs})
            if runs and runs[-1]["bg"] == "default" and not runs[-1]["reverse"]:
                runs[-1]["text"] = runs[-1]["text"].rstrip()
                if not runs[-1]["text"]:
                    runs.pop()
            out.append(runs)
        return out

    def cursor(self) -> dict:
        c = self.screen.cursor
        return {"x": c.x, "y": c.y, "hidden": bool(c.hidden)}

    @property
    def size(self) -> tuple[int, int]:
        return self.screen.columns, self.screen.lines
