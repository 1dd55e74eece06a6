"""The chain rule written out: for every node in backward order, its layer's rules with the numbers.

:func:`explain` turns a graph after its backward pass into steps (data); :func:`render_text`
and :func:`render_json` write them for people and for programs. The rules come from each
layer class's ``formula`` and ``grad_formulas``, so every op explains itself.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .expr import is_operation
from .graph import Graph
from .layers import Shape, broadcast_shapes, sum_axes
from .lint import LintWarning, lint, reached_names
from .render import format_inline, json_value


@dataclass
class GradStep:
    """What a node's backward returned for one of its inputs, and by which rule."""

    arg: str  # the input's name
    role: str  # the layer's name for that input (x, y)
    rule: str  # "dout * tax", or "sum over axes (0,) of dout * x" where summed over broadcast axes
    numbers: str  # "1 * 1.1", or the shape change "(3, 2) -> (2,)" where summed
    grad: Any
    summed_axes: tuple[int, ...]


@dataclass
class NodeStep:
    """One node: the rule for its value and, for each input, the rule for that input's gradient."""

    name: str
    op: str
    args: tuple[str, ...]
    rule: str
    numbers: str
    value: Any
    dout: Any  # the node's own gradient, 'dout' in its rules
    grads: list[GradStep]
    notes: list[str] = field(default_factory=list)  # lint's warnings about the node (see cgraph.lint)


@dataclass
class SumStep:
    """A value used more than once: its gradient is the sum of what each use gave it."""

    name: str
    parts: list[tuple[str, str | None, Any]]  # (node, its name for the value where it uses it twice, gradient)
    grad: Any


Step = NodeStep | SumStep


def explain(graph: Graph, precision: int = 8) -> list[Step]:
    """The steps of ``graph``'s backward pass (it must have run), numbers written with ``precision``.

    Nodes from which the output cannot be reached are left out (their gradients are 0).
    A SumStep follows the step of the last node that adds to a value used more than once.
    """
    nodes, constants = graph.spec.nodes, graph.spec.constants
    reached = reached_names(graph)
    order = [name for name in reversed(nodes) if name in reached]
    # Every use of every value (but constants, which take no gradient) by a node on a path to
    # the output, in dependency order.
    uses: dict[str, list[tuple[str, int]]] = {}
    for name, node in nodes.items():
        if name in reached:
            for index, arg in enumerate(node.args):
                if arg not in constants:
                    uses.setdefault(arg, []).append((name, index))
    pending = {name: len(found) for name, found in uses.items()}

    steps: list[Step] = []
    for name in order:
        steps.append(_node_step(graph, name, precision))
        finished = []
        for arg in nodes[name].args:
            if arg in constants:
                continue
            pending[arg] -= 1
            if pending[arg] == 0 and len(uses[arg]) > 1:
                finished.append(arg)
        for arg in dict.fromkeys(finished):
            parts = [
                (user, _role_if_repeated(graph, user, index), graph.input_grads[user][index])
                for user, index in uses[arg]
            ]
            steps.append(SumStep(arg, parts, graph.grads[arg]))
    _note(steps, lint(graph))
    return steps


def _note(steps: list[Step], warnings: list[LintWarning]) -> None:
    """Attach each warning to the step of the node it is about, or else of the first node using a
    name it is about. Names with no path to the output are listed at the end instead."""
    node_steps = {step.name: step for step in steps if isinstance(step, NodeStep)}
    for warning in warnings:
        if warning.kind == "unreached":
            continue
        target = next((name for name in warning.names if name in node_steps), None) or next(
            (step.name for step in node_steps.values() if set(warning.names) & set(step.args)), None)
        if target:
            node_steps[target].notes.append(warning.message)


def unreached_names(graph: Graph) -> list[str]:
    """The inputs and nodes from which the output cannot be reached."""
    reached = reached_names(graph)
    return [name for name in [*graph.spec.inputs, *graph.spec.nodes] if name not in reached]


def _node_step(graph: Graph, name: str, precision: int) -> NodeStep:
    node = graph.spec.nodes[name]
    layer = graph.layers[name]
    dout = graph.grads[name]
    value = graph.values[name]

    def inline(array: Any) -> str:
        return format_inline(array, precision)

    names = {"out": name, "dout": "dout", **dict(zip(layer.args, node.args))}
    numbers = {"out": inline(value), "dout": inline(dout),
               **{role: inline(graph.values[arg]) for role, arg in zip(layer.args, node.args)}}
    out_shape = graph.shapes[name]
    formula, grad_formulas = layer.applied_rules(*(graph.shapes[arg] for arg in node.args))
    grads = []
    for role, arg, grad_formula, grad in zip(layer.args, node.args, grad_formulas, graph.input_grads[name]):
        if grad is None:
            continue  # a constant: no gradient
        template = _with_dout(grad_formula)
        rule = with_names(template, names)
        shape = graph.shapes[arg]
        if role not in layer.broadcast_args or not _broadcast_to(shape, out_shape):
            grads.append(GradStep(arg, role, rule, substitute(template, numbers), grad, ()))
        else:  # the rule gives a gradient of the output's shape; the layer summed it to the input's
            axes = sum_axes(out_shape, shape)
            grads.append(GradStep(arg, role, f"sum over axes {axes} of {rule}", f"{out_shape} -> {shape}", grad, axes))
    template = _with_dout(formula)
    return NodeStep(name, node.op, node.args, with_names(template, names), substitute(template, numbers), value, dout, grads)


_OPERATOR_BEFORE = re.compile(r"(?:[-+*/@<>=]|\*\*)\s*\Z")
_OPERAND_BEFORE = re.compile(r"[\w.)\]]\s*\Z")  # what makes a following '-' binary
_PLAIN_NUMBER = re.compile(r"(?:\d+(?:\.\d+)?|nan|inf)\Z")


def _fill(template: str, piece: Callable[[str, str, str], str]) -> str:
    """``template`` with each ``{field}`` replaced by ``piece(field, text before it, literal after it)``."""
    parsed = list(string.Formatter().parse(template))
    pieces: list[str] = []
    for index, (literal, name, _, _) in enumerate(parsed):
        pieces.append(literal)
        if name is not None:
            after = parsed[index + 1][0].lstrip() if index + 1 < len(parsed) else ""
            pieces.append(piece(name, "".join(pieces).rstrip(), after))
    return "".join(pieces)


def with_names(template: str, names: dict[str, str]) -> str:
    """``template`` with each ``{field}`` replaced by its name from ``names``; a formula's part named
    by an operator's text (``x - 1``) in parentheses, unless it stands alone between brackets or commas
    (``(x - 1) ** 2``, ``mean(x - 1)``)."""

    def piece(key: str, before: str, after: str) -> str:
        alone = before.endswith(("(", "[", ",")) or not before
        alone = alone and (after.startswith((")", "]", ",")) or not after)
        return names[key] if alone else operand(names[key])

    return _fill(template, piece)


def operand(name: str) -> str:
    """A name as it reads beside an operator: in parentheses where it is an operator's text."""
    return f"({name})" if is_operation(name) else name


def substitute(template: str, numbers: dict[str, str]) -> str:
    """``template`` with each ``{field}`` replaced by its number from ``numbers``, in parentheses
    wherever the template's operators would otherwise bind to part of it and change its meaning:
    after a unary minus (``-(-4)``, ``-(1)``), a negative number after an operator (``1 / (-0.5)``),
    and anything but a plain non-negative number beside ``**`` or before ``.T`` or an index
    (``(-0.5)**2``, ``(1e-05)**2``, ``((2, 3) array).T``, ``((3,) [2, -3, -3])[2]``)."""

    def piece(key: str, before: str, after: str) -> str:
        text = numbers[key]
        unary_minus = before.endswith("-") and not _OPERAND_BEFORE.search(before[:-1])
        tight = before.endswith("**") or after.startswith(("**", ".", "["))
        negative_operand = text.startswith("-") and bool(_OPERATOR_BEFORE.search(before))
        if unary_minus or negative_operand or (tight and not _PLAIN_NUMBER.match(text)):
            return f"({text})"
        return text

    return _fill(template, piece)


def _broadcast_to(shape: Shape, out_shape: Shape) -> bool:
    """Whether a value of ``shape`` was broadcast to a larger ``out_shape`` (so its gradient was summed)."""
    if shape == out_shape:
        return False
    try:
        return broadcast_shapes(shape, out_shape) == out_shape
    except ValueError:
        return False


def _with_dout(formula: str) -> str:
    """A layer's formula with the word dout made a placeholder like {x}."""
    return re.sub(r"\bdout\b", "{dout}", formula)


def _role_if_repeated(graph: Graph, name: str, index: int) -> str | None:
    """The layer's name for input ``index`` of node ``name`` where the node uses that value twice."""
    args = graph.spec.nodes[name].args
    return graph.layers[name].args[index] if args.count(args[index]) > 1 else None


def _shown(steps: list[Step], only: Iterable[str]) -> list[Step]:
    """The steps about the names in ``only`` (all if it is empty): their nodes, uses and sums."""
    wanted = set(only)
    if not wanted:
        return steps
    return [step for step in steps
            if step.name in wanted or isinstance(step, NodeStep) and wanted.intersection(step.args)]


# --- text -----------------------------------------------------------------


def render_text(graph: Graph, steps: list[Step], only: Iterable[str] = (), precision: int = 8) -> Iterator[str]:
    """The steps as aligned equations, one block per node, with a header naming the output and dout."""
    yield f"backward, output '{graph.output}', dout = {format_inline(graph.dout, precision)}"
    yield "(d v is the gradient of v; in each node's rules, dout is the gradient of that node)"
    for step in _shown(steps, only):
        yield ""
        if isinstance(step, SumStep):
            yield _sum_line(step, precision, graph)
        else:
            yield from _node_lines(step, precision)
    unreached = unreached_names(graph)
    if unreached and not only:
        yield ""
        yield f"no path to '{graph.output}', gradient 0: {', '.join(unreached)}"


def _node_lines(step: NodeStep, precision: int) -> list[str]:
    """The node's equation and its inputs' gradients, with the '=' columns aligned."""
    repeated = {arg for arg in step.args if step.args.count(arg) > 1}
    labels = [f"d {operand(grad.arg)}" + (f" (as {step.op}'s {grad.role})" if grad.arg in repeated else "") for grad in step.grads]
    width = max(map(len, labels), default=0)
    rows = [(f"{operand(step.name)} = {step.rule}", "=", step.numbers, step.value)]
    rows += [(f"  {label:<{width}} = {grad.rule}", ":" if grad.summed_axes else "=", grad.numbers, grad.grad)
             for label, grad in zip(labels, step.grads)]
    left = max(len(row[0]) for row in rows)
    middle = max(len(row[2]) for row in rows)
    return [f"{text:<{left}} {sep} {numbers:<{middle}} = {format_inline(result, precision)}"
            for text, sep, numbers, result in rows] + [f"  note: {note}" for note in step.notes]


def _sum_line(step: SumStep, precision: int, graph: Graph) -> str:
    """The sum of a value's gradients from its uses; a node that uses it twice says by which of its op's inputs."""
    nodes = graph.spec.nodes
    uses = [f"from {user}, as {nodes[user].op}'s {role}" if role else f"from {user}" for user, role, _ in step.parts]
    template = " + ".join(f"{{{index}}} ({use})" for index, use in enumerate(uses))
    parts = substitute(template, {str(index): format_inline(grad, precision) for index, (_, _, grad) in enumerate(step.parts)})
    return f"d {operand(step.name)} = {parts} = {format_inline(step.grad, precision)}"


# --- JSON -----------------------------------------------------------------


def render_json(graph: Graph, steps: list[Step], only: Iterable[str] = ()) -> str:
    """The steps as one strict JSON object: output, dout, steps, and the names with no path to the output."""
    return json.dumps(json_steps(graph, steps, only), allow_nan=False)


def json_steps(graph: Graph, steps: list[Step], only: Iterable[str] = (),
               encode: Callable[[Any], Any] = json_value) -> dict[str, Any]:
    """What :func:`render_json` writes, as a dict whose arrays are ``encode``'s (by default nested lists)."""
    return {
        "output": graph.output,
        "dout": encode(graph.dout),
        "steps": [_json_step(step, encode) for step in _shown(steps, only)],
        "unreached": unreached_names(graph),
    }


def _json_step(step: Step, encode: Callable[[Any], Any]) -> dict[str, Any]:
    if isinstance(step, SumStep):
        return {
            "step": "sum",
            "name": step.name,
            "contributions": [{"from": user, "as": role, "grad": encode(grad)} for user, role, grad in step.parts],
            "grad": encode(step.grad),
        }
    return {
        "step": "node",
        "name": step.name,
        "op": step.op,
        "inputs": list(step.args),
        "rule": step.rule,
        "numbers": step.numbers,
        "value": encode(step.value),
        "shape": list(np.shape(step.value)),
        "dout": encode(step.dout),
        "grads": [
            {
                "input": grad.arg,
                "as": grad.role,
                "rule": grad.rule,
                "numbers": grad.numbers,
                "grad": encode(grad.grad),
                "shape": list(np.shape(grad.grad)),
                "summed_axes": list(grad.summed_axes),
            }
            for grad in step.grads
        ],
        "notes": step.notes,
    }
