"""One ``key: value`` entry as a line of YAML, as ``yaml.safe_dump`` writes it, without running
the dumper for the entries whose text its own rules decide beforehand.

An entry of plain data (mappings with string keys, lists, strings, numbers, booleans, null) is
written directly where every scalar in it is one that PyYAML writes plain: its resolver reads the
text back as the same type (so no quotes or tag) and its emitter's analysis of the text allows a
plain scalar in that place (flow or block, key or value). These are the checks PyYAML's emitter
makes itself (``choose_scalar_style``), asked of its own objects, so the line is the same; any
other entry (quoted strings, long keys, a list or mapping appearing twice, other types) goes
through ``yaml.safe_dump``.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from typing import Any

import yaml
from yaml.emitter import Emitter
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

_EMITTER = Emitter(io.StringIO(), allow_unicode=True)
_RESOLVER = Resolver()
_TAG = "tag:yaml.org,2002:"
# Names, numbers and formulas of them: printable ASCII without the characters PyYAML's analysis
# looks for (`:`, `#`, `,`, brackets, quotes, ...), not starting with an indicator or a document
# marker (`---`, `...`), nor with '-' before a space, nor ending with a space.
_SIMPLE = re.compile(r"(?!---|\.\.\.)(?:[A-Za-z0-9_.(]|-(?=[^ ]))[A-Za-z0-9_.+*/()@= -]*(?<! )\Z")
MAX_SIMPLE_KEY = 128  # PyYAML writes a longer key as a complex key (`? key`)


class _Unwritten(Exception):
    """The entry needs the dumper."""


@lru_cache(maxsize=65536)
def _plain(text: str, kind: str, flow: bool, key: bool) -> bool:
    """Whether PyYAML writes ``text``, a scalar of ``kind`` (str, int, float, bool, null), plain
    and untagged in flow or block context, as a mapping's key or not."""
    if _RESOLVER.resolve(ScalarNode, text, (True, False)) != _TAG + kind:
        return False
    if _SIMPLE.match(text):  # no character the analysis looks for: every place allows it plain
        return not key or len(text) < MAX_SIMPLE_KEY
    analysis = _EMITTER.analyze_scalar(text)
    if key and (analysis.empty or analysis.multiline or len(text) >= MAX_SIMPLE_KEY):
        return False
    return analysis.allow_flow_plain if flow else analysis.allow_block_plain


def _float_text(value: float) -> str:
    """PyYAML's text of a float (SafeRepresenter.represent_float)."""
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text


def _scalar(value: Any, flow: bool, key: bool = False) -> str:
    kind = type(value)
    if kind is str:
        text, tag = value, "str"
    elif kind is bool:
        text, tag = ("true" if value else "false"), "bool"
    elif kind is int:
        text, tag = str(value), "int"
    elif kind is float:
        text, tag = _float_text(value), "float"
    elif value is None:
        text, tag = "null", "null"
    else:
        raise _Unwritten
    if not _plain(text, tag, flow, key):
        raise _Unwritten
    return text


def _flow(value: Any, seen: set[int]) -> str:
    """``value`` in flow style, as the dumper writes it inside a flow collection."""
    kind = type(value)
    if kind is dict or kind is list:
        if id(value) in seen:  # the dumper would write an anchor and an alias
            raise _Unwritten
        seen.add(id(value))
        if kind is list:
            return "[" + ", ".join(_flow(item, seen) for item in value) + "]"
        return "{" + ", ".join(f"{_key(item_key, True)}: {_flow(item, seen)}" for item_key, item in value.items()) + "}"
    return _scalar(value, True)


def _key(value: Any, flow: bool) -> str:
    if type(value) is not str:
        raise _Unwritten
    return _scalar(value, flow, key=True)


def yaml_line(entry: dict[str, Any]) -> str:
    """One ``key: value`` entry as a line of YAML: a mapping or list in flow style, a number or a
    string (a formula) plain where YAML allows."""
    ((key, value),) = entry.items()
    try:
        if isinstance(value, (dict, list)):
            if type(value) in (dict, list):
                return f"{_key(key, True)}: {_flow(value, set())}"
        else:
            return f"{_key(key, False)}: {_scalar(value, False)}"
    except _Unwritten:
        pass
    return _dumped(entry)


def _dumped(entry: dict[str, Any]) -> str:
    """The line as ``yaml.safe_dump`` writes it."""
    (value,) = entry.values()
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, allow_unicode=True,
                              width=2**31 - 1).strip()[1:-1]
    return yaml.safe_dump(entry, default_flow_style=False, allow_unicode=True, width=2**31 - 1).strip()
