"""The one exception type for user errors, the source position it points at, and the escaping
that keeps every message one line of plain text."""

from __future__ import annotations

import re
from dataclasses import dataclass

# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides:
# characters that would break a message's line or rewrite the terminal.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control characters (CR, LF, ESC, NUL, ...) written as escapes like ``\\x1b``."""
    return _UNPRINTABLE.sub(_escape_char, text)


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a source: file name, and 1-based line and column where known."""

    file: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class TextPosition(Position):
    """Where a text value stood, with the line and column at which each of its lines starts,
    where those are exact (``lines`` is empty where they are not): an expression's errors
    point inside it."""

    lines: tuple[tuple[int, int], ...] = ()

    def at(self, line: int, col: int) -> Position:
        """The position of the text's 0-based character ``col`` of its 1-based ``line``."""
        if not 0 < line <= len(self.lines):
            return Position(self.file, self.line, self.col)
        start_line, start_col = self.lines[line - 1]
        return Position(self.file, start_line, start_col + col)


class CgraphError(ValueError):
    """A mistake in the user's input: a message and, where it has one, its position.

    A ValueError, so that Python code may catch bad values passed to the API as it would elsewhere."""

    def __init__(self, message: str, pos: Position | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self) -> str:
        """The message as one printable line: ``FILE:LINE:COL: error: message``."""
        return diagnostic("error", self.message, self.pos)


def diagnostic(kind: str, message: str, pos: Position | None = None) -> str:
    """One printable line: ``FILE:LINE:COL: kind: message``, or ``cgraph: kind: message``."""
    return printable(f"{pos or 'cgraph'}: {kind}: {message}")
