"""Safe YAML reading: text to plain Python data that remembers where each item stood.

Only YAML's standard scalars, sequences and mappings are read. Anchors, aliases,
merge keys and non-standard tags are refused, duplicate keys are errors, nesting
depth is bounded, and the document is built from the event stream without
recursion. Plain scalars resolve as in YAML 1.2's core schema, so ``1e3`` is a
number and ``yes`` is a string; mapping keys are always strings.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from typing import Any

from .errors import CgraphError, Position, TextPosition

MAX_DEPTH = 64


_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {None, "!", _TAG + "str", _TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null"}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_AMBIGUOUS_INT = re.compile(r"[-+]?0[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")
_SPECIAL_FLOATS = {
    **{s + ".inf": math.inf for s in ("", "+")},
    **{s + ".Inf": math.inf for s in ("", "+")},
    **{s + ".INF": math.inf for s in ("", "+")},
    "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
}
_KEYWORDS = {
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
    "": None, "~": None, "null": None, "Null": None, "NULL": None,
}
_NUMBER_START = set("0123456789+-.")
_ALIAS_HINT = "define the value once as an input and use it by name"


class YMap(dict):
    """A mapping read from YAML, with the positions of itself, its keys and its values."""

    def __init__(self, pos: Position) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[str, Position] = {}
        self.value_pos: dict[str, Position] = {}


class YSeq(list):
    """A sequence read from YAML, with the positions of itself and its items.

    Item positions are kept compactly (a line and a column in an array of integers: 8 bytes
    an item, where a Position object would take about 60), since a list of numbers may be long."""

    def __init__(self, pos: Position) -> None:
        super().__init__()
        self.pos = pos
        self.item_lines = array("l")
        self.item_cols = array("l")

    def item_pos(self, index: int) -> Position | None:
        """Where item ``index`` stood in the source."""
        if 0 <= index < len(self.item_lines):
            return Position(self.pos.file, self.item_lines[index], self.item_cols[index])
        return None


def position_of(container: Any, key: Any) -> Position | None:
    """Where ``container[key]`` stood in the source, if the container remembers."""
    if isinstance(container, YMap):
        return container.value_pos.get(key)
    if isinstance(container, YSeq):
        return container.item_pos(key)
    return None


def key_position_of(container: Any, key: str) -> Position | None:
    """Where the key ``key`` of a mapping stood in the source, if it remembers."""
    if isinstance(container, YMap):
        return container.key_pos.get(key)
    return None


def parse(text: str, filename: str) -> Any:
    """Read one YAML document; raise CgraphError with a position on anything unsafe or malformed."""
    import yaml  # here, not above: a file the quick reader reads needs no YAML parser, nor its start-up time

    def here(mark: Any) -> Position:
        return Position(filename, mark.line + 1, mark.column + 1)

    root: Any = None
    stack: list[Any] = []  # open containers, innermost last
    pending_key: list[str | None] = []  # per open container: the mapping key awaiting its value
    documents = 0

    def add(value: Any, pos: Position) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        parent = stack[-1]
        if isinstance(parent, YSeq):
            parent.append(value)
            parent.item_lines.append(pos.line)
            parent.item_cols.append(pos.col)
            return
        key = pending_key[-1]
        if key is None:
            if not isinstance(value, str):
                raise CgraphError("a mapping key must be a name, not a list or mapping", pos)
            if value in parent:
                first = parent.key_pos[value]
                raise CgraphError(
                    f"duplicate key '{value}' (first defined at line {first.line}, column {first.col})", pos
                )
            if value == "<<":
                raise CgraphError(f"merge keys (<<) are not supported: {_ALIAS_HINT}", pos)
            parent.key_pos[value] = pos
            pending_key[-1] = value
        else:
            parent[key] = value
            parent.value_pos[key] = pos
            pending_key[-1] = None

    def awaiting_key() -> bool:
        return bool(stack) and isinstance(stack[-1], YMap) and pending_key[-1] is None

    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            kind = type(event)
            if kind is yaml.ScalarEvent:
                pos = here(event.start_mark)
                _refuse_anchor(event, pos)
                if event.tag not in _SCALAR_TAGS:
                    raise CgraphError(_tag_message(event.tag), pos)
                if awaiting_key():
                    add(event.value, pos)
                else:
                    value = _resolve(event, pos)
                    if type(value) is str and event.style == ">" and "#" in value:
                        value = _unfolded(event, text)
                    add(value, _text_position(event, value, text, pos) if type(value) is str else pos)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                pos = here(event.start_mark)
                _refuse_anchor(event, pos)
                is_map = kind is yaml.MappingStartEvent
                if event.tag not in (None, "!", _TAG + ("map" if is_map else "seq")):
                    raise CgraphError(_tag_message(event.tag), pos)
                if len(stack) >= MAX_DEPTH:
                    raise CgraphError(f"nested more than {MAX_DEPTH} levels deep", pos)
                container = YMap(pos) if is_map else YSeq(pos)
                add(container, pos)
                stack.append(container)
                pending_key.append(None)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                stack.pop()
                pending_key.pop()
            elif kind is yaml.AliasEvent:
                raise CgraphError(f"aliases (*{event.anchor}) are not supported: {_ALIAS_HINT}", here(event.start_mark))
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise CgraphError("expected one YAML document, found another ('---')", here(event.start_mark))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        tab = _indenting_tab(text, mark) if mark else None
        if tab is not None:
            raise CgraphError("tabs cannot indent YAML; use spaces", Position(filename, mark.line + 1, tab + 1)) from None
        problem = exc.problem or exc.context or "malformed YAML"
        raise CgraphError(f"invalid YAML: {problem}", here(mark) if mark else Position(filename)) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, such as NUL
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - before.rfind("\n")
        character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise CgraphError(f"invalid YAML: character {character} is not allowed ({exc.reason})",
                          Position(filename, line, col)) from None
    except yaml.YAMLError as exc:
        raise CgraphError(f"invalid YAML: {str(exc).splitlines()[0]}", Position(filename)) from None
    return root


def _unfolded(event: Any, text: str) -> str:
    """A folded block scalar (``>``) with its line breaks kept, as a literal block (``|``) keeps them:
    for a formula with ``#`` comments, each of which ends at its line."""
    lines = text[event.start_mark.index:event.end_mark.index].split("\n")[1:]
    indent = min((len(line) - len(line.lstrip(" ")) for line in lines if line.strip()), default=0)
    body = "\n".join(line[indent:] for line in lines).rstrip("\n")
    return body + "\n" if event.value.endswith("\n") else body


def _text_position(event: Any, value: str, text: str, pos: Position) -> Position:
    """A string scalar's position, with where each of its lines starts in the source where that is
    exact: a plain or quoted scalar on one line without escapes, or a literal block (``|``), or a
    folded one read as literal (see _unfolded)."""
    raw = text[event.start_mark.index:event.end_mark.index]
    line, col = pos.line or 1, pos.col or 1
    if event.style in ("", "'", '"'):
        quote = 1 if event.style else 0
        if "\n" not in raw and raw[quote:len(raw) - quote] == value:
            return TextPosition(pos.file, line, col, ((line, col + quote),))
    elif event.style == "|" or event.style == ">" and value is not event.value:
        source_lines = raw.split("\n")[1:]  # the lines after the header line ('|', '|-', ...)
        starts = []
        for index, (value_line, source_line) in enumerate(zip(value.split("\n"), source_lines)):
            if not source_line.endswith(value_line):
                return pos
            starts.append((line + 1 + index, len(source_line) - len(value_line) + 1))
        return TextPosition(pos.file, line, col, tuple(starts))
    return pos


def _indenting_tab(text: str, mark: Any) -> int | None:
    """The 0-based column of a tab in the indentation of the line where YAML stopped at ``mark``,
    if it stopped within that indentation (YAML allows tabs elsewhere, never to indent)."""
    start = mark.index - mark.column
    line = text[start:mark.index + 1]
    indent = line[:len(line) - len(line.lstrip(" \t"))]
    return indent.index("\t") if "\t" in indent and mark.column <= len(indent) else None


def _tag_message(tag: str) -> str:
    shown = "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
    return f"tag '{shown}' is not allowed: use plain numbers, strings, lists and mappings"


def _refuse_anchor(event: Any, pos: Position) -> None:
    if event.anchor is not None:
        raise CgraphError(f"anchors (&{event.anchor}) are not supported: {_ALIAS_HINT}", pos)


def _resolve(event: Any, pos: Position) -> Any:
    """A scalar's value: YAML 1.2 core schema for plain scalars, text for quoted ones."""
    if event.style or event.tag in ("!", _TAG + "str"):
        return event.value
    try:
        value = resolve_plain(event.value)
    except ValueError as exc:
        raise CgraphError(str(exc), pos) from None
    if event.tag is not None:  # an explicit !!int, !!float, !!bool or !!null: the value must be one
        kind = event.tag[len(_TAG):]
        expected = {"int": (int,), "float": (int, float), "bool": (bool,), "null": (type(None),)}[kind]
        if type(value) not in expected:
            raise CgraphError(f"'{event.value}' is not a valid !!{kind}", pos)
        return float(value) if kind == "float" else value
    return value


def plain_number(text: str) -> int | float | None:
    """``text`` as a number where it is one plain YAML number (``1``, ``-2.5e3``), as :func:`parse`
    reads it; None for anything else."""
    if _INT.match(text) and not _AMBIGUOUS_INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return None


def resolve_plain(text: str) -> Any:
    """A plain scalar's value in YAML 1.2's core schema; ValueError for ambiguous octal-looking ints."""
    if text[:1] in _NUMBER_START:
        if _INT.match(text):
            if _AMBIGUOUS_INT.match(text):
                raise ValueError(
                    f"'{text}' is ambiguous (YAML 1.1 reads a leading zero as octal): "
                    f"write it without the leading zero, or quote it if it is a name"
                )
            return int(text)
        if _FLOAT.match(text):
            return float(text)
        return _SPECIAL_FLOATS.get(text, text)
    return _KEYWORDS.get(text, text)


# --- the quick reader -------------------------------------------------------
#
# Most graph files are JSON, or YAML of one simple shape: top-level keys whose values
# are either one-line flow values or a block of `name: one-line flow value` lines.
# quick_parse turns such YAML into JSON text (quoting names, which is all that sets
# the two apart there) and reads it with the json module, many times faster than a
# YAML parser. Anything outside that shape, or that JSON would read differently from
# YAML 1.2 (`+1`, `.5`, `True`, quoted strings, ...), makes it give up (None), and the
# text goes through `parse`. It keeps no positions: a file it read that turns out to
# be wrong is read again by `parse` to say where.

_LINE = re.compile(r"( *)([^\W\d]\w*):(?: +(\S.*))?$")
_COMMENT = re.compile(r"(?:^|\s)#")
_NAME = re.compile(r"\b([^\W\d]\w*)")
_JSON_WORDS = {"true", "false", "null"}
_NODE_VALUE = re.compile(r"\{op: ([A-Za-z_]\w*), inputs: \[([A-Za-z_]\w*(?:, [A-Za-z_]\w*)*)\]\}\Z", re.ASCII)
_NOT_JSON_LIKE = re.compile(r"""["'&*!|>%@`~]|:(?! )""")
# A formula (`(x + y) * z`, `w[0] * x[0]`, `sum(x, axis=0)`) that YAML reads as a plain string of the same text.
_FORMULA = re.compile(r"(?=.*[-+*/@(\[])(?!-( |\Z))[\w(.+\-][\w .+\-*/@(),\[\]:=]*(?<!:)\Z")


class _Unsupported(Exception):
    """Raised inside quick_parse for anything outside its subset."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Unsupported
    return result


def _refuse_constant(name: str) -> Any:
    raise _Unsupported  # NaN and Infinity are not JSON; in YAML they are strings


# Characters on which the YAML parser differs from the json module or from the line-by-line
# reading below: controls other than LF (a tab cannot start a YAML token; a bare CR, NEL, LS
# and PS break lines), DEL and C1 controls, a byte-order mark within the text, non-characters,
# and the spaces other than ' ' (Python strips them, YAML keeps them in a value).
_NOT_QUICK = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
                        "\u3000\ufeff\ufffe\uffff]|\r(?!\n)")


def quick_parse(text: str) -> Any:
    """The data of a JSON document, or of YAML in the simple one-line-per-entry shape; None otherwise."""
    if _NOT_QUICK.search(text):
        return None
    try:
        if text.lstrip()[:1] != "{":
            text = _yaml_as_json(text)
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except (ValueError, _Unsupported, RecursionError):
        return None


class NodeColumns:
    """The nodes of a graph file written as ``name: {op: OP, inputs: [NAME, ...]}`` lines, as
    columns: their names, ops and inputs, in file order, without positions."""

    __slots__ = ("names", "ops", "args")

    def __init__(self, names: list[str], ops: list[str], args: list[tuple[str, ...]]) -> None:
        self.names, self.ops, self.args = names, ops, args

    def __len__(self) -> int:
        return len(self.names)

    def as_mapping(self) -> dict[str, dict[str, Any]]:
        """The nodes as the JSON reader makes them: ``{name: {"op": OP, "inputs": [NAME, ...]}}``."""
        return {name: {"op": op, "inputs": list(args)} for name, op, args in zip(self.names, self.ops, self.args)}


_NODES_HEADER = re.compile(r"^nodes:\n", re.MULTILINE)
_TOP_LEVEL_LINE = re.compile(r"^[^ \n]", re.MULTILINE)
_NODE_LINE = r"^{indent}([A-Za-z_]\w*): \{{op: ([A-Za-z_]\w*), inputs: \[([A-Za-z_]\w*(?:, [A-Za-z_]\w*)*)\]\}}\n"


def quick_columns(text: str) -> Any:
    """:func:`quick_parse`'s data, with its ``nodes`` read straight into :class:`NodeColumns` where
    every line of that section is one usual node (``  n1: {op: mul, inputs: [x, c]}``); None where
    the section is written otherwise, or where quick_parse would give up."""
    if "\r" in text or text.lstrip()[:1] == "{":
        return None
    header = _NODES_HEADER.search(text)
    if header is None:
        return None
    start = header.end()
    following = _TOP_LEVEL_LINE.search(text, start)
    end = following.start() if following else len(text)
    block = text[start:end] if text.endswith("\n") or following else text[start:] + "\n"
    indent = block[:len(block) - len(block.lstrip(" "))]
    if not indent:
        return None
    rows = re.findall(_NODE_LINE.format(indent=indent), block, re.MULTILINE | re.ASCII)
    if len(rows) != block.count("\n"):
        return None  # some line is not one usual node: the section is read line by line
    names, ops, arg_texts = map(list, zip(*rows))
    if len(set(names)) != len(names) or not _KEYWORDS.keys().isdisjoint(
            {*names, *ops, *", ".join(arg_texts).split(", ")}):
        return None  # a duplicate name, or a word YAML reads as true, false or null
    data = quick_parse(text[:start] + text[end:])
    if not isinstance(data, dict) or data.get("nodes", ...) is not None:
        return None
    data["nodes"] = NodeColumns(names, ops, [tuple(args.split(", ")) for args in arg_texts])
    return data


def _yaml_as_json(text: str) -> str:
    parts = ["{"]
    in_block = False  # inside the block of a top-level key written alone on its line
    indent = 0
    for line in text.split("\n"):
        if "#" in line:
            match = _COMMENT.search(line)
            if match:
                line = line[: match.start()]
        line = line.rstrip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            raise _Unsupported
        spaces, key, value = match.groups()
        if spaces:
            if not in_block or (indent and len(spaces) != indent) or value is None:
                raise _Unsupported
            indent = len(spaces)
            parts.append(f"{_quote(key)}: {_json_value(value)},")
            continue
        if in_block:
            _close(parts)
        if value is None:
            parts.append(f"{_quote(key)}: {{")
            in_block, indent = True, 0
        else:
            parts.append(f"{_quote(key)}: {_json_value(value)},")
            in_block = False
    if in_block:
        _close(parts)
    if len(parts) == 1:
        raise _Unsupported  # an empty document
    if parts[-1].endswith(","):
        parts[-1] = parts[-1][:-1]
    parts.append("}")
    return "\n".join(parts)


def _json_value(value: str) -> str:
    """A one-line YAML flow value as JSON text; _Unsupported where the two would differ."""
    node = _NODE_VALUE.match(value)
    if node:  # the usual node, {op: OP, inputs: [NAME, ...]}, without the general tokenizer
        op, args = node.groups()
        names = args.split(", ")
        if op not in _KEYWORDS and _KEYWORDS.keys().isdisjoint(names):
            quoted_names = '", "'.join(names)
            return f'{{"op": "{op}", "inputs": ["{quoted_names}"]}}'
    if _FORMULA.match(value) and ": " not in value and _is_text(value):
        return json.dumps(value)
    if _NOT_JSON_LIKE.search(value):
        raise _Unsupported
    pieces = _NAME.split(value)  # text, name, text, name, ..., text
    pieces[1::2] = [_quote(name) for name in pieces[1::2]]
    return "".join(pieces)


def _is_text(value: str) -> bool:
    """Whether YAML reads a plain scalar as a string (not a number, boolean or null)."""
    try:
        return type(resolve_plain(value)) is str
    except ValueError:
        return False


def _quote(name: str) -> str:
    if name in _KEYWORDS:
        if name not in _JSON_WORDS:
            raise _Unsupported  # True, NULL, ...: YAML's, not JSON's
        return name
    return f'"{name}"'


def _close(parts: list[str]) -> None:
    if parts[-1].endswith(": {"):  # a key with nothing under it: null, as in YAML
        parts[-1] = parts[-1][:-1] + "null,"
        return
    if parts[-1].endswith(","):
        parts[-1] = parts[-1][:-1]
    parts.append("},")


def quick_position(text: str, filename: str, section: str, name: str) -> Position | None:
    """Where the key ``name`` of the top-level mapping ``section`` stands in ``text``, a document
    quick_parse read, found without reading the rest with positions: a JSON document is walked
    key by key (each other value decoded and dropped), YAML's block lines are scanned. Falls
    back to :func:`parse` where neither applies."""
    offset = _json_key_offset(text, section, name) if text.lstrip()[:1] == "{" else _yaml_key_offset(text, section, name)
    if offset is None:
        return key_position_of((parse(text, filename) or {}).get(section), name)
    before = text[:offset]
    return Position(filename, before.count("\n") + 1, offset - before.rfind("\n"))


_SPACE = re.compile(r"\s*")


def _json_key_offset(text: str, section: str, name: str) -> int | None:
    decoder = json.JSONDecoder()

    def keys(start: int) -> Any:  # (key, offset of the key, offset of its value) of the object at start
        index = _SPACE.match(text, start).end()
        if text[index:index + 1] != "{":
            return
        index = _SPACE.match(text, index + 1).end()
        while text[index:index + 1] == '"':
            key, end = json.decoder.scanstring(text, index + 1)
            value = _SPACE.match(text, _SPACE.match(text, end).end() + 1).end()  # past the colon
            yield key, index, value
            _, end = decoder.raw_decode(text, value)
            index = _SPACE.match(text, end).end()
            index = _SPACE.match(text, index + 1).end() if text[index:index + 1] == "," else index

    for key, _, value in keys(0):
        if key == section:
            for inner, offset, _ in keys(value):
                if inner == name:
                    return offset
    return None


def _yaml_key_offset(text: str, section: str, name: str) -> int | None:
    inside, offset = False, 0
    for line in text.split("\n"):
        match = _LINE.match(line.rstrip())
        if match and not match.group(1):
            inside = match.group(2) == section and match.group(3) is None
        elif inside and match and match.group(2) == name:
            return offset + len(match.group(1))
        offset += len(line) + 1
    return None
