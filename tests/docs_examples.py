"""The examples of the docs as data: each `$ ` command of a ```console block with the output shown
under it, the files that blocks marked `<!-- file: NAME -->` hold, and a comparison of shown and
actual output that holds across machines.

Rules of the comparison (documented in docs/development.md):
- a line `...` stands for any number of lines;
- runs of spaces compare equal to one space (columns widen with longer numbers);
- a number with a decimal point or an exponent matches any number within half a unit of its
  last digit shown, or within 1e-9 of it relatively: `0.16163` stands for 0.1616258943780722,
  and a number shown in full matches the same number from another BLAS build; whole numbers
  written without a point (shapes, counts, indices) match exactly.
"""

from __future__ import annotations

import math
import re
import shutil
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JQ = shutil.which("jq")


def add_tools(folder: Path) -> None:
    """Give ``folder`` the example graphs as graphs/ and a .bin/ holding the command `cgraph` (this
    interpreter's) and, where jq is missing, a stand-in for it."""
    (folder / "graphs").symlink_to(ROOT / "graphs")
    bin_folder = folder / ".bin"
    bin_folder.mkdir()
    tools = {"cgraph": f'exec "{sys.executable}" -m cgraph "$@"'}
    if JQ is None:
        tools["jq"] = f'exec "{sys.executable}" "{Path(__file__).parent / "jq_standin.py"}" "$@"'
    for name, line in tools.items():
        script = bin_folder / name
        script.write_text(f"#!/bin/sh\n{line}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]

_FENCE = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.DOTALL)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\w])")


@dataclass
class Example:
    """A command shown in a doc, with what it prints there and the files written before it."""

    doc: Path
    command: str
    expected: list[str]
    shown_output: bool  # a ```console block (output compared) or a ```sh block (only run)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}: {self.command}"


def examples(doc: Path) -> list[Example]:
    """The commands of ``doc``'s console and sh blocks in the order they appear."""
    found: list[Example] = []
    files: dict[str, str] = {}
    for block in _FENCE.finditer(doc.read_text()):
        lang, body = block["lang"], block["body"]
        if block["file"]:
            files[block["file"]] = body
        elif lang == "console":
            current = None
            for line in body.splitlines():
                if line.startswith("$ "):
                    current = Example(doc, line[2:], [], True, dict(files))
                    found.append(current)
                elif current is not None:
                    current.expected.append(line)
        elif lang == "sh":
            for line in body.splitlines():
                command = line.split("  #")[0].strip()
                if command.startswith("cgraph "):
                    found.append(Example(doc, command, [], False, dict(files)))
    return found


def _parts(line: str) -> tuple[list[str], list[str]]:
    """A line's text between numbers (runs of spaces made one) and its numbers."""
    numbers = _NUMBER.findall(line)
    texts = [re.sub(r"\s+", " ", text) for text in _NUMBER.split(line)]
    return texts, numbers


def _number_matches(shown: str, actual: str) -> bool:
    if shown == actual:
        return True
    if not re.search(r"[.eE]", shown):
        return False  # a whole number shown without a point is exact
    mantissa, _, exponent = shown.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    half_unit = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
    shown_value, actual_value = float(shown), float(actual)
    difference = abs(shown_value - actual_value)
    return difference <= half_unit * (1 + 1e-9) or math.isclose(shown_value, actual_value, rel_tol=1e-9)


def line_matches(shown: str, actual: str) -> bool:
    """Whether ``actual`` is the line ``shown``, by the rules above."""
    if shown == actual:
        return True
    shown_texts, shown_numbers = _parts(shown.rstrip())
    actual_texts, actual_numbers = _parts(actual.rstrip())
    return (shown_texts == actual_texts and len(shown_numbers) == len(actual_numbers)
            and all(map(_number_matches, shown_numbers, actual_numbers)))


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Whether the lines ``actual`` are ``expected``, each `...` line standing for any lines."""
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    while actual and not actual[-1].strip():
        actual = actual[:-1]
    # reachable[j]: the first i expected lines can match the first j actual lines
    reachable = [True] + [False] * len(actual)
    for line in expected:
        if line == "...":
            for j in range(1, len(actual) + 1):
                reachable[j] = reachable[j] or reachable[j - 1]
        else:
            reachable = [False] + [reachable[j] and line_matches(line, actual[j]) for j in range(len(actual))]
    return reachable[len(actual)]
