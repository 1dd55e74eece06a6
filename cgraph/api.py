"""Load a graph from a file, a string or a dict: the public entry points."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from .arrays import DEFAULT_MAX_ELEMENTS, parse_value_option
from .errors import CgraphError, Position
from .graph import Graph, paused_gc
from .spec import build_spec
from .yamlsafe import YMap, parse, quick_columns, quick_parse, quick_position

# The first byte of a serialized ModelProto: field 1 (ir_version, a varint), 2 (producer_name) or
# 3 (producer_version) — control characters that no graph text starts with.
MODEL_FIRST_BYTES = (0x08, 0x12, 0x1A)


def is_onnx(raw: bytes, path: str = "") -> bool:
    """Whether ``raw`` (read from ``path``) is an ONNX model rather than graph text."""
    return path.lower().endswith(".onnx") or (bool(raw) and raw[0] in MODEL_FIRST_BYTES)


def load(
    path: str | os.PathLike,
    *,
    overrides: Mapping[str, Any] | None = None,
    output: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    override_files: Mapping[str, str | None] | None = None,
    max_memory: int | None = None,
) -> Graph:
    """Load a graph file (YAML or JSON) or an ONNX model, told apart by their content; ``file:``
    paths and an ONNX model's external data are relative to its folder. ``override_files`` names
    the files ``overrides`` were read from, for the spec's ``files``; ``max_memory`` bounds the
    bytes an ONNX model's initializers may declare, checked before any is read."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise CgraphError(f"cannot read {path}: {exc.strerror or exc}") from None
    if is_onnx(raw, path):
        return _onnx_graph(raw, path, os.path.dirname(path) or ".", overrides, output, max_elements, max_memory,
                           {"graph_file": os.path.realpath(path), "override_files": override_files})
    return loads(
        decode(raw, path),
        source=path,
        base_dir=os.path.dirname(path) or ".",
        overrides=overrides,
        output=output,
        max_elements=max_elements,
        override_files=override_files,
        graph_file=os.path.realpath(path),
    )


def loads(
    text: str | bytes,
    *,
    source: str = "<string>",
    base_dir: str = ".",
    overrides: Mapping[str, Any] | None = None,
    output: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    override_files: Mapping[str, str | None] | None = None,
    graph_file: str | None = None,
    max_memory: int | None = None,
) -> Graph:
    """Load a graph from YAML or JSON text, or from the bytes of a graph file or an ONNX model;
    ``source`` names it in error messages. ``graph_file`` is the file the text was read from and
    ``override_files`` those ``overrides`` were, for the spec's ``files``."""
    files = {"graph_file": graph_file, "override_files": override_files}
    if isinstance(text, bytes):
        if is_onnx(text):
            return _onnx_graph(text, source, base_dir, overrides, output, max_elements, max_memory, files)
        text = decode(text, source)
    with paused_gc():
        return _load_text(text, source, base_dir, overrides, output, max_elements, files)


def _onnx_graph(raw: bytes, source: str, base_dir: str, overrides: Any, output: Any, max_elements: int,
                max_memory: int | None, files: dict[str, Any]) -> Graph:
    from .onnx_reader import read_model

    arrays = {name: np.asarray(value) for name, value in (overrides or {}).items()}
    with paused_gc():
        spec = read_model(raw, source, base_dir, arrays, output, max_elements, max_memory)
        read = (files["graph_file"], *(files["override_files"] or {}).values())
        spec.graph_file, spec.files = files["graph_file"], tuple(dict.fromkeys(path for path in read if path))
        return Graph(spec, max_elements)


def _load_text(text: str, source: str, base_dir: str, overrides: Any, output: Any, max_elements: int,
               files: dict[str, Any]) -> Graph:
    data = quick_columns(text)
    if data is None:
        data = quick_parse(text)
    if data is not None:
        try:
            return _graph(data, source, base_dir, overrides, output, max_elements,
                          lambda section, name: quick_position(text, source, section, name), **files)
        except CgraphError:
            pass  # the quick reader keeps no positions: read it again to say where
    return _graph(parse(text, source), source, base_dir, overrides, output, max_elements, **files)


def from_dict(
    data: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    output: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Graph:
    """Load a graph from a dict shaped like a graph file (``{"inputs": ..., "nodes": ...}``)."""
    with paused_gc():
        return _graph(data, "<dict>", ".", overrides, output, max_elements)


def from_expressions(
    expressions: Sequence[str],
    values: Mapping[str, str] | None = None,
    *,
    output: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Graph:
    """A graph from formulas as typed on the command line, ``NAME = EXPR`` (a bare EXPR is named
    ``out``); ``values`` gives every other name the formulas use, as ``--set`` VALUE texts. The
    output is ``output``, or the last formula's node. Errors are at ``<expr N>:1:COL``."""
    from .expr import expand, split_assignment

    values = values or {}
    nodes = YMap(Position("<expr 1>"))
    numbers: dict[str, int] = {}
    used: list[str] = []
    for number, text in enumerate(expressions, 1):
        name, name_pos, body, pos = split_assignment(text, number)
        if name in numbers:
            raise CgraphError(f"'{name}' is defined twice, by expressions {numbers[name]} and {number}", name_pos)
        numbers[name] = number
        used += expand(name, body, pos).names_used()
        nodes[name], nodes.key_pos[name], nodes.value_pos[name] = body, name_pos, pos
    missing = [name for name in dict.fromkeys(used) if name not in nodes and name not in values]
    if missing:
        raise CgraphError(f"no value for {', '.join(missing)}: give {'it' if len(missing) == 1 else 'each'} "
                          "with --set NAME=VALUE")
    inputs = YMap(Position("<expr>"))
    for key, text in values.items():  # a mistake in a VALUE is placed in it, as --set NAME
        inputs[key] = parse_value_option(text, f"--set {key}")
        inputs.key_pos[key] = Position(f"--set {key}")
        inputs.value_pos[key] = getattr(inputs[key], "pos", None) or inputs.key_pos[key]
    data = {"inputs": inputs, "nodes": nodes}
    with paused_gc():
        spec = build_spec(data, "<expr>", ".", None, output or name, max_elements)
        return Graph(spec, max_elements)


def decode(raw: bytes, source: str) -> str:
    """Graph-file bytes as text: UTF-8, with or without a byte-order mark."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CgraphError(f"not UTF-8 text (byte {exc.start})", Position(source)) from None


def _graph(
    data: Any, source: str, base_dir: str, overrides: Any, output: Any, max_elements: int, locate: Any = None,
    graph_file: str | None = None, override_files: Mapping[str, str | None] | None = None,
) -> Graph:
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in (overrides or {}).items()}
    spec = build_spec(data, source, base_dir, arrays, output, max_elements, locate, graph_file, override_files)
    return Graph(spec, max_elements)
