"""The validated graph spec: inputs with their arrays, nodes in dependency order, the output."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from .arrays import DEFAULT_MAX_ELEMENTS, build_array, cast, declared_dtype, describe, is_number, source_file, suggest
from .errors import CgraphError, Position, TextPosition
from .layers import REGISTRY, REQUIRED, AttrError
from .yamlsafe import NodeColumns, YMap, YSeq, key_position_of, position_of

TOP_KEYS = ("inputs", "nodes", "output", "outputs")
NODE_KEYS = ("op", "inputs")
MAX_NAME_LENGTH = 200
NO_ATTRS: Mapping[str, Any] = MappingProxyType({})


@dataclass
class InputSpec:
    """A named input array, where it was defined, and the file it was read from (resolved), if any."""

    name: str
    value: np.ndarray
    pos: Position | None
    file: str | None = None


@dataclass(slots=True)
class NodeSpec:
    """A named node: its op, the names of its inputs, where it was written, and its attributes."""

    name: str
    op: str
    args: tuple[str, ...]
    pos: Position | None
    attrs: Mapping[str, Any] = field(default_factory=dict)  # the attributes written in the node, as read
    attr_pos: Mapping[str, Position] | None = None  # where each of them was written, where known


@dataclass
class GraphSpec:
    """A whole graph: inputs in file order, nodes in dependency order, and the output's name."""

    source: str
    inputs: dict[str, InputSpec]
    nodes: dict[str, NodeSpec]
    output: str
    overridden: frozenset[str] = frozenset()
    # Where a name stands in the source, (section, name) -> position, if it was read without positions.
    locate: Callable[[str, str], Position | None] | None = None
    constants: dict[str, float] = field(default_factory=dict)  # the numbers in expressions, by their text
    graph_file: str | None = None  # the file the graph was read from, resolved (absolute, links followed)
    # Every file read to make and run the graph, resolved: the graph file, the inputs' files, ...
    files: tuple[str, ...] = ()
    # The nodes the file declares as its results (``outputs:``), each one a graph can be read at; the
    # output is one of them. Empty where the file declares none: the output is its one result.
    outputs: tuple[str, ...] = ()

    def file_role(self, path: str) -> str:
        """What the file at resolved ``path``, one of ``files``, is to the graph: "the graph file",
        "the file of input 'x'", or "a file"."""
        if path == self.graph_file:
            return "the graph file"
        name = next((item.name for item in self.inputs.values() if item.file == path), None)
        return f"the file of input '{name}'" if name else "a file"

    def attr_position(self, name: str, keys: tuple[str, ...]) -> Position | None:
        """Where node ``name`` wrote the first of the attributes ``keys`` it writes, where known."""
        node = self.nodes.get(name)
        written = node.attr_pos if node is not None and node.attr_pos else {}
        return next((written[key] for key in keys if key in written), None)

    def position(self, name: str) -> Position | None:
        """Where the input or node ``name`` was defined."""
        item = self.inputs.get(name) or self.nodes.get(name)
        if item is None or self.locate is None or (item.pos and item.pos.line):
            return item.pos if item else None
        found = self.locate("inputs" if name in self.inputs else "nodes", name)
        if found is None and name in self.nodes and not name.isidentifier():  # a sub-expression: its formula's place
            user = next((node.name for node in self.nodes.values() if name in node.args), None)
            return self.position(user) if user else None
        return found


def build_spec(
    data: Any,
    source: str,
    base_dir: str = ".",
    overrides: dict[str, np.ndarray] | None = None,
    output: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    locate: Callable[[str, str], Position | None] | None = None,
    graph_file: str | None = None,
    override_files: Mapping[str, str | None] | None = None,
) -> GraphSpec:
    """Validate parsed YAML ``data`` into a GraphSpec; ``overrides`` replace inputs' values.

    ``locate`` finds where a name of a section stands in the source, where ``data`` has no positions.
    ``graph_file`` is the file ``data`` was read from and ``override_files`` the files ``overrides``
    were, by name (resolved paths): with the inputs' own files, they make the spec's ``files``.
    """
    top = Position(source)
    if data is None:
        raise CgraphError("the graph file is empty: it needs 'inputs' and 'nodes'", top)
    if not isinstance(data, dict):
        raise CgraphError(f"the top level must be a mapping with 'inputs' and 'nodes', got {describe(data)}", _pos(data, top))
    for key in data:
        if key not in TOP_KEYS:
            raise CgraphError(
                f"unknown top-level key '{key}'{suggest(key, TOP_KEYS)}; expected: {', '.join(TOP_KEYS)}",
                key_position_of(data, key) or top,
            )
    _refuse_misplaced_sections(data, top)
    if "nodes" not in data:
        raise CgraphError("the graph has no 'nodes'", _pos(data, top))

    inputs_data = data.get("inputs") or {}
    if not isinstance(inputs_data, dict):
        raise CgraphError(f"'inputs' must be a mapping of names to arrays, got {describe(inputs_data)}", position_of(data, "inputs") or top)
    nodes_data = data["nodes"]
    if not isinstance(nodes_data, (dict, NodeColumns)) or not nodes_data:
        what = "an empty mapping" if isinstance(nodes_data, dict) else describe(nodes_data)
        raise CgraphError(f"'nodes' must be a mapping of names to nodes, got {what}", position_of(data, "nodes") or top)

    overrides = overrides or {}
    inputs: dict[str, InputSpec] = {}
    for name, value in inputs_data.items():
        name_pos = key_position_of(inputs_data, name) or top
        _check_name(name, name_pos)
        value_pos = position_of(inputs_data, name) or name_pos
        if name in overrides:  # replaced: the file's array is not built, only its dtype kept
            array = cast(overrides[name], declared_dtype(value, value_pos))
            file = (override_files or {}).get(name)
        else:
            array = build_array(value, value_pos, base_dir, max_elements)
            file = source_file(value, base_dir)
        inputs[name] = InputSpec(name, array, name_pos, file)

    plain = _plain_nodes(nodes_data, inputs)
    if plain is None:
        written, constants = _written_nodes(
            nodes_data.as_mapping() if type(nodes_data) is NodeColumns else nodes_data, inputs, overrides, top)
        in_order = False
    else:
        (written, in_order), constants = plain, {}
        _check_overrides(overrides, inputs, written)
    nodes = written if in_order else {name: written[name] for name in _dependency_order(written)}
    outputs = _outputs(data, nodes, inputs, top)
    chosen = _output(data, nodes, inputs, output if output is not None or "output" in data or not outputs
                     else outputs[0], top)
    files = tuple(dict.fromkeys(path for path in (graph_file, *(item.file for item in inputs.values())) if path))
    return GraphSpec(source, inputs, nodes, chosen, frozenset(overrides), locate, constants, graph_file, files,
                     outputs)


def _written_nodes(nodes_data: Mapping[str, Any], inputs: dict[str, InputSpec], overrides: Mapping[str, Any],
                   top: Position) -> tuple[dict[str, NodeSpec], dict[str, float]]:
    """Every node of ``nodes_data`` checked one by one, in file order, with formulas expanded, and
    the numbers their formulas use; the CgraphError that says where, for the first mistake."""
    written: dict[str, NodeSpec] = {}
    bodies: dict[str, Any] = {}  # each node's mapping, or formula and its position, for the positions of its inputs
    constants: dict[str, float] = {}
    texts: dict[str, str] = {}  # sub-expressions made into nodes, by their text
    formulas = None
    for name, body in nodes_data.items():
        name_pos = key_position_of(nodes_data, name)
        _check_name(name, name_pos or top)
        if name in inputs:
            raise CgraphError(f"node '{name}' has the name of an input; names must be unique", name_pos or top)
        pos = position_of(nodes_data, name) or name_pos or top
        if type(body) is not str:
            written[name] = _node(name, body, pos, name_pos)
            bodies[name] = body
            continue
        if formulas is None:  # the formula reader, imported for files that have formulas only
            from . import expr as formulas
        quick = formulas.simple(body)
        layer = REGISTRY.get(quick[0]) if quick else None
        if layer and not layer.required_attrs and layer.takes(len(quick[1])):
            where = pos.at(1, quick[3]) if type(pos) is TextPosition else pos
            written[name] = NodeSpec(name, quick[0], quick[1], where, NO_ATTRS)
            constants.update(quick[2])
            bodies[name] = (body, pos)
            continue
        expansion = formulas.expand(name, body, pos, texts)
        constants.update(expansion.constants)
        for part in expansion.parts:
            written[part.name] = _checked_node(part.name, part.body, part.pos, part.pos)
            bodies[part.name] = part.body

    _check_overrides(overrides, inputs, written)

    known = inputs.keys() | written.keys() | constants.keys()
    for node in written.values():
        if known.issuperset(node.args) and node.name not in node.args:
            continue
        body = bodies[node.name]
        if type(body) is tuple:  # a formula read on the fast path: read again for the positions of its names
            from .expr import expand

            body = expand(node.name, *body).parts[-1].body
        for index, arg in enumerate(node.args):
            if arg not in known or arg == node.name:
                pos = position_of(body["inputs"], index) or node.pos or top
                if arg == node.name:
                    raise CgraphError(f"node '{node.name}' uses itself as an input", pos)
                raise CgraphError(f"node '{node.name}' uses unknown name '{arg}'{suggest(arg, [*inputs, *written])}", pos)
    return written, constants


def _check_overrides(overrides: Mapping[str, Any], inputs: dict[str, InputSpec], nodes: Mapping[str, NodeSpec]) -> None:
    for name in overrides:
        if name not in inputs:
            kind = "is a node, not an input" if name in nodes else f"is not an input{suggest(name, inputs)}"
            raise CgraphError(f"--set: '{name}' {kind}")


def _refuse_misplaced_sections(data: dict, top: Position) -> None:
    """Say so where a top-level key missing from the top level was read inside another section,
    because it was indented under it (``nodes:`` under ``inputs:``)."""
    for key in TOP_KEYS:
        if key in data:
            continue
        for section, body in data.items():
            if not isinstance(body, dict) or key not in body:
                continue
            value = body[key]
            if key == "nodes" or key == "output" and isinstance(value, str) or (
                    key == "inputs" and isinstance(value, dict) and "op" not in value):
                pos = key_position_of(body, key)
                line = f" at line {pos.line}" if pos and pos.line else ""
                raise CgraphError(
                    f"'{key}' was found inside '{section}'{line}: it belongs at the top level, "
                    f"not indented under '{section}'",
                    pos or top,
                )


def _pos(data: Any, default: Position) -> Position:
    return getattr(data, "pos", None) or default


def _check_name(name: Any, pos: Position) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise CgraphError(
            f"invalid name '{name}': use letters, digits and underscores, not starting with a digit", pos
        )
    if len(name) > MAX_NAME_LENGTH:
        raise CgraphError(f"name of {len(name)} characters is longer than the limit of {MAX_NAME_LENGTH}", pos)


def _plain_nodes(nodes_data: Any, inputs: dict[str, InputSpec]) -> tuple[dict[str, NodeSpec], bool] | None:
    """The nodes in file order, and whether that is a dependency order, where every one is a right
    plain ``{op: OP, inputs: [NAME, ...]}``, checked a column at a time: all names, all ops and all
    references together. None where any node is written otherwise or is wrong: those nodes are
    read one by one (_written_nodes)."""
    if type(nodes_data) is NodeColumns:
        names, ops, args = nodes_data.names, nodes_data.ops, nodes_data.args
        positions: Any = repeat(None)
    else:
        names, bodies = [*nodes_data], [*nodes_data.values()]
        if not {dict, YMap}.issuperset(map(type, bodies)) or set(map(len, bodies)) != {2}:
            return None
        try:
            ops, lists = [*map(itemgetter("op"), bodies)], [*map(itemgetter("inputs"), bodies)]
        except KeyError:
            return None
        if not {list, YSeq}.issuperset(map(type, lists)):
            return None
        args = [*map(tuple, lists)]
        positions = map(nodes_data.key_pos.get, names) if type(nodes_data) is YMap else repeat(None)
        if not ({str}.issuperset(map(type, names)) and {str}.issuperset(map(type, ops))
                and {str}.issuperset(map(type, chain.from_iterable(args)))):
            return None
    if (max(map(len, names)) > MAX_NAME_LENGTH or not all(map(str.isidentifier, names))
            or not inputs.keys().isdisjoint(names)):
        return None
    counts = [*map(len, args)]
    for op, count in set(zip(ops, counts)):
        layer = REGISTRY.get(op)
        if layer is None or layer.required_attrs or not layer.takes(count):
            return None
    rank = dict.fromkeys(inputs, -1)  # where each name is defined: -1 for the inputs, then the nodes in file order
    rank.update(zip(names, range(len(names))))
    used_at = np.fromiter(map(rank.get, chain.from_iterable(args), repeat(-2)), dtype=np.intp, count=sum(counts))
    user_at = np.repeat(np.arange(len(names)), counts)
    if (used_at == -2).any() or (used_at == user_at).any():
        return None  # an unknown name, or a node that uses itself
    written = dict(zip(names, map(NodeSpec, names, ops, args, positions, repeat(NO_ATTRS))))
    return written, bool((used_at < user_at).all())  # most files are in dependency order


def _node(name: str, body: Any, pos: Position, name_pos: Position | None) -> NodeSpec:
    if isinstance(body, dict) and len(body) == 2:
        op, args = body.get("op"), body.get("inputs")
        layer = REGISTRY.get(op) if isinstance(op, str) else None
        if (
            layer and not layer.required_attrs and isinstance(args, list) and layer.takes(len(args))
            and all(type(arg) is str for arg in args)
        ):
            return NodeSpec(name, op, tuple(args), name_pos, NO_ATTRS)
    return _checked_node(name, body, pos, name_pos)


def _checked_node(name: str, body: Any, pos: Position, name_pos: Position | None) -> NodeSpec:
    """A node that is not a plain {op: OP, inputs: [NAME, ...]}: its attributes read, or the error that says what is wrong."""
    if not isinstance(body, dict):
        raise CgraphError(f"node '{name}' must be a mapping like {{op: mul, inputs: [a, b]}}, got {describe(body)}", pos)
    op = body.get("op")
    layer = REGISTRY.get(op) if isinstance(op, str) else None
    expected = (*NODE_KEYS, *layer.attrs) if layer else NODE_KEYS
    allowed = expected if layer else (*NODE_KEYS, *{key for cls in REGISTRY.values() for key in cls.attrs})
    for key in body:
        if key not in allowed:
            hint = suggest(key, expected) if isinstance(key, str) else ""
            keys = f"a '{op}' node has {', '.join(expected)}" if layer else f"expected: {', '.join(expected)}"
            raise CgraphError(f"node '{name}': unknown key '{key}'{hint}; {keys}", key_position_of(body, key) or pos)
    if "op" not in body:
        raise CgraphError(f"node '{name}' has no 'op' (one of: {', '.join(REGISTRY)})", pos)
    if layer is None:
        hint = suggest(op, REGISTRY) if isinstance(op, str) else ""
        shown = f"'{op}'" if isinstance(op, str) else describe(op)
        raise CgraphError(
            f"node '{name}': unknown op {shown}{hint}; known ops: {', '.join(REGISTRY)}", position_of(body, "op") or pos
        )
    if "inputs" not in body:
        raise CgraphError(f"node '{name}' has no 'inputs'", pos)
    args = body["inputs"]
    args_pos = position_of(body, "inputs") or pos
    if not isinstance(args, list):
        raise CgraphError(f"node '{name}': 'inputs' must be a list of names, got {describe(args)}", args_pos)
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            if arg is None or isinstance(arg, bool):
                hint = ": if it is a name, quote it"
            elif is_number(arg):
                hint = (f"; a constant is an input (such as 'c: {arg}' under 'inputs') used by its name, "
                        f"or a number in a formula (such as '{name}: x * {arg}')")
            else:
                hint = ""
            raise CgraphError(
                f"node '{name}': expected the name of an input or node, got {describe(arg)}{hint}",
                position_of(args, index) or args_pos,
            )
    if not layer.takes(len(args)):
        names = "x1, x2, ..." if layer.variadic else ", ".join(layer.args)
        raise CgraphError(f"node '{name}': op '{op}' takes {layer.arity()}, got {len(args)}: {op}({names})", args_pos)
    attrs: dict[str, Any] = {}
    attr_pos: dict[str, Position] = {}
    for key, attr in layer.attrs.items():
        if key in body:
            key_pos = position_of(body, key) or pos
            try:
                attrs[key] = attr.read(body[key])
            except ValueError as error:
                raise CgraphError(f"node '{name}': {op} attribute '{key}' {error}", key_pos) from None
            attr_pos[key] = key_pos
        elif attr.default is REQUIRED:
            raise CgraphError(f"node '{name}': op '{op}' needs the attribute '{key}': {attr.doc}", pos)
    if layer.attrs:
        try:
            layer.check_attrs({key: attrs.get(key, attr.default) for key, attr in layer.attrs.items()})
        except AttrError as error:
            where = next((attr_pos[key] for key in error.keys if key in attr_pos), pos)
            raise CgraphError(f"node '{name}': {op}: {error}", where) from None
    return NodeSpec(name, op, tuple(args), name_pos, attrs, attr_pos)


def _dependency_order(nodes: dict[str, NodeSpec]) -> list[str]:
    """Node names with every node after the nodes it uses, otherwise in file order."""
    ready = {arg for node in nodes.values() for arg in node.args} - nodes.keys()  # the inputs used
    for name, node in nodes.items():
        if not ready.issuperset(node.args):
            break
        ready.add(name)
    else:
        return list(nodes)  # already in dependency order, as most files are
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done
    for root in nodes:
        if state.get(root):
            continue
        stack = [(root, iter(nodes[root].args))]
        state[root] = 1
        while stack:
            name, pending = stack[-1]
            for arg in pending:
                if arg not in nodes or state.get(arg) == 2:
                    continue
                if state.get(arg) == 1:
                    path = [entry[0] for entry in stack]
                    cycle = [*reversed([*path[path.index(arg):], arg])]
                    raise CgraphError(f"cycle: {_cycle_text(cycle)}", nodes[arg].pos)
                state[arg] = 1
                stack.append((arg, iter(nodes[arg].args)))
                break
            else:
                stack.pop()
                state[name] = 2
                order.append(name)
    return order


def _cycle_text(cycle: list[str], shown: int = 5) -> str:
    """``a -> b -> c -> a``; a long cycle by its first names and a count of the rest."""
    if len(cycle) <= shown + 2:
        return " -> ".join(cycle)
    return f"{' -> '.join(cycle[:shown])} -> ... -> {cycle[-1]} ({len(cycle) - 1:,} nodes)"


def _outputs(data: Any, nodes: dict[str, NodeSpec], inputs: dict, top: Position) -> tuple[str, ...]:
    """The nodes of ``outputs:``, a list of node names; () where the file has none."""
    if "outputs" not in data:
        return ()
    names = data["outputs"]
    where = position_of(data, "outputs") or top
    if not isinstance(names, list) or not names:
        raise CgraphError(f"outputs must be a list of nodes' names, got {describe(names)}", where)
    for index, name in enumerate(names):
        at = position_of(names, index) or where
        if not isinstance(name, str):
            raise CgraphError(f"outputs: each must be a node's name, got {describe(name)}", at)
        if name in inputs:
            raise CgraphError(f"outputs: '{name}' is an input; an output must be a node", at)
        if name not in nodes:
            raise CgraphError(f"outputs: unknown node '{name}'{suggest(name, nodes)}", at)
    return tuple(dict.fromkeys(names))


def _output(data: Any, nodes: dict[str, NodeSpec], inputs: dict, requested: str | None, top: Position) -> str:
    if requested is None and "output" in data:
        requested = data["output"]
        where = position_of(data, "output") or top
        if not isinstance(requested, str):
            raise CgraphError(f"output must be a node's name, got {describe(requested)}", where)
    else:
        where = None
    if requested is not None:
        if requested in nodes:
            return requested
        if requested in inputs:
            problem = f"'{requested}' is an input; the output must be a node"
        else:
            problem = f"unknown node '{requested}'{suggest(requested, nodes)}"
        raise CgraphError(f"output: {problem}" if where else f"--output: {problem}", where)
    used = {arg for node in nodes.values() for arg in node.args}
    sinks = [name for name in nodes if name not in used]
    if len(sinks) != 1:
        raise CgraphError(
            f"the graph has {len(sinks)} nodes that feed no other ({', '.join(sinks)}): "
            "name one with 'output:' in the file or --output",
            _pos(data, top),
        )
    return sinks[0]
