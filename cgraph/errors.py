"""The one exception type for user errors, and the source position it points at."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """A place in a source: file name, and 1-based line and column where known."""

    file: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class CgraphError(ValueError):
    """A mistake in the user's input: a message and, where it has one, its position.

    A ValueError, so that Python code may catch bad values passed to the API as it would elsewhere."""

    def __init__(self, message: str, pos: Position | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self) -> str:
        if self.pos is None:
            return f"cgraph: error: {self.message}"
        return f"{self.pos}: error: {self.message}"
