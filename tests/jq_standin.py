"""A stand-in for jq where it is not installed, for the docs' examples: `jq [-c] [-r] FILTER`
over the JSON values on standard input, for filters made of paths (`.a.b`, `.["x"]`, `.a[0]`),
arrays of filters (`[.a, .b]`) and strings with interpolations (`"\\(.a) \\(.b)"`).
Any other filter exits with status 3 and says so."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

Filter = Callable[[Any], Any]
UNSUPPORTED = 3


class Unsupported(Exception):
    """A filter this stand-in does not take."""


def _path(text: str, at: int) -> tuple[Filter, int]:
    if text[at] != ".":
        raise Unsupported(text)
    at += 1
    steps: list[Any] = []
    while at < len(text):
        if name := re.match(r"[A-Za-z_]\w*", text[at:]):
            steps.append(name.group())
            at += name.end()
        elif index := re.match(r'\[(-?\d+|"(?:[^"\\]|\\.)*")\]', text[at:]):
            steps.append(json.loads(index.group(1)))
            at += index.end()
        elif text[at] == "." and at + 1 < len(text) and text[at + 1] in '["' + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_":
            at += 1
            continue
        else:
            break

    def follow(value: Any) -> Any:
        for step in steps:
            value = None if value is None else value[step]
        return value
    return follow, at


def _filter(text: str, at: int) -> tuple[Filter, int]:
    while at < len(text) and text[at] == " ":
        at += 1
    if text.startswith("[", at):
        parts: list[Filter] = []
        at += 1
        while True:
            part, at = _filter(text, at)
            parts.append(part)
            while at < len(text) and text[at] == " ":
                at += 1
            if text.startswith(",", at):
                at += 1
            elif text.startswith("]", at):
                return (lambda value: [part(value) for part in parts]), at + 1
            else:
                raise Unsupported(text)
    if text.startswith('"', at):
        pieces: list[str | Filter] = []
        at += 1
        while not text.startswith('"', at):
            if text.startswith("\\(", at):
                piece, at = _filter(text, at + 2)
                if not text.startswith(")", at):
                    raise Unsupported(text)
                pieces.append(piece)
                at += 1
            elif at < len(text):
                pieces.append(text[at])
                at += 1
            else:
                raise Unsupported(text)

        def interpolate(value: Any) -> str:
            return "".join(piece if isinstance(piece, str) else _text(piece(value)) for piece in pieces)
        return interpolate, at + 1
    return _path(text, at)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _program(filter_text: str) -> Filter:
    try:
        program, end = _filter(filter_text, 0)
    except IndexError:
        raise Unsupported(filter_text) from None
    if filter_text[end:].strip():
        raise Unsupported(filter_text)
    return program


def supports(argv: list[str]) -> bool:
    """Whether the stand-in takes the jq command line ``argv`` (its options and filter)."""
    try:
        _program(next(arg for arg in argv if not arg.startswith("-")))
    except (Unsupported, StopIteration):
        return False
    return not [arg for arg in argv if arg.startswith("-") and arg not in ("-c", "-r")]


def main(argv: list[str]) -> int:
    """Run the filter of ``argv`` over standard input's JSON values; 3 for a filter not taken."""
    compact = "-c" in argv
    raw = "-r" in argv
    filters = [arg for arg in argv if not arg.startswith("-")]
    try:
        if len(filters) != 1 or not supports(argv):
            raise Unsupported(" ".join(argv))
        program = _program(filters[0])
    except Unsupported as error:
        print(f"jq stand-in: filter not supported: {error}", file=sys.stderr)
        return UNSUPPORTED
    decoder, text, at = json.JSONDecoder(), sys.stdin.read(), 0
    while (at := len(text) - len(text[at:].lstrip())) < len(text):
        value, at = decoder.raw_decode(text, at)
        result = program(value)
        if raw and isinstance(result, str):
            print(result)
        else:
            print(json.dumps(result, separators=(",", ":")) if compact else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
