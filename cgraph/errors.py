"""The one exception type for user errors, the source position it points at, and the escaping
that keeps every message one line of plain text."""

from __future__ import annotations

from dataclasses import dataclass

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every character that is not printable (controls such as CR, LF, ESC and NUL,
    line separators, bidirectional overrides, spaces other than ' ', unassigned code points)
    written as an escape like ``\\x1b``, so that it stays one line and cannot rewrite the terminal."""
    if text.isprintable():
        return text
    return "".join(map(_escape, text))


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
