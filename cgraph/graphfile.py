"""A gradient graph written as a graph file (YAML): the forward file's inputs and nodes as they
were, an input for dout, and one line per gradient node, as a formula where formulas can say it,
with a comment naming the node and the rule it came from."""

from __future__ import annotations

import ast

import os
from typing import Any

import numpy as np

from .gradient import GradientGraph
from .save import plain_data
from .yamlline import yaml_line

BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}
MAX_INLINE = 100  # characters of a sub-expression written inside another node's formula
MAX_INLINE_DEPTH = 8  # operations inside one another in one formula


def render_gradient(gradient: GradientGraph, data: dict, source: str, out_path: str | None,
                    dout: np.ndarray, texts: dict[str, str]) -> str:
    """The graph file of ``gradient``, whose forward graph was read from ``data`` (the parsed file
    ``source``); ``texts`` names the forward file's sub-expressions (gradient.subexpression_texts).
    ``file:`` paths of inputs are made relative to ``out_path``'s folder."""
    writer = _Writer(gradient, texts)
    lines = writer.lines()
    spec = gradient.graph.spec
    new_names = [gradient.dout, *writer.named]
    header = [f"The gradient of '{spec.output}' in {source}, written by cgraph grad: grad_X is dL/dX for "
              f"L = sum({gradient.dout} * {spec.output}).",
              f"New names: {', '.join(new_names)}."]
    out: list[str] = [f"# {line}" for line in header]
    out.append("inputs:")
    base_dir = os.path.dirname(source)
    for name, value in (data.get("inputs") or {}).items():
        out.append(f"  {yaml_line({name: _moved(plain_data(value), base_dir, out_path)})}")
    out.append(f"  {yaml_line({gradient.dout: _array_entry(dout)})}  # the gradient injected at '{spec.output}'")
    out.append("nodes:")
    out += [f"  {yaml_line({name: plain_data(body)})}" for name, body in data["nodes"].items()]
    out += [f"  {yaml_line({name: body})}  # {comment}" for name, body, comment in lines]
    out.append(yaml_line({"output": next(iter(gradient.wrt.values()))}))
    results = [*gradient.wrt.values(), *dict.fromkeys(spec.outputs or (spec.output,))]
    out.append(f"{yaml_line({'outputs': results})}  # every gradient, and what the file's own outputs were")
    return "\n".join(out) + "\n"


class _Writer:
    """Chooses which gradient nodes get lines of their own and writes their formulas."""

    def __init__(self, gradient: GradientGraph, texts: dict[str, str]) -> None:
        self.gradient = gradient
        self.texts = texts
        self.spec = gradient.graph.spec
        self.written: dict[str, tuple[str, bool, int]] = {}  # placeholder -> (text, compound, depth)
        self.named: list[str] = []
        self.renamed: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.users: dict[str, list[str]] = {}  # a forward value -> the nodes using it, in file order
        for user, forward in self.spec.nodes.items():
            for arg in dict.fromkeys(forward.args):
                self.users.setdefault(arg, []).append(user)
        mapped = {name for name, node in gradient.nodes.items() if node.op == "scatter"}
        self.must_name = mapped | {arg for name in mapped for arg in gradient.nodes[name].args}

    def lines(self) -> list[tuple[str, Any, str]]:
        result = []
        for name, node in self.gradient.nodes.items():
            if node.op == "scatter":
                body: Any = {"op": node.op, "inputs": [self.name_of(arg) for arg in node.args], **node.attrs}
                depth = 0
            else:
                body, compound, depth = self.formula(node.op, node.args, node.attrs)
            if name.startswith("%") and name not in self.must_name and len(body) <= MAX_INLINE and depth <= MAX_INLINE_DEPTH:
                self.written[name] = (body, compound, depth)
                continue
            final = self.name_of(name)
            self.named.append(final)
            result.append((final, body, self.comment(name)))
        return result

    def name_of(self, name: str) -> str:
        if not name.startswith("%"):
            return name
        if name not in self.renamed:
            origin = self.gradient.owners.get(self.gradient.nodes[name].origin, "node")
            self.counts[origin] = self.counts.get(origin, 0) + 1
            base = f"grad_{origin}_t{self.counts[origin]}"
            final, number = base, 1
            while final in self.gradient.taken:
                number += 1
                final = f"{base}_{number}"
            self.gradient.taken.add(final)
            self.renamed[name] = final
        return self.renamed[name]

    def reference(self, name: str) -> tuple[str, bool, int]:
        """How a formula refers to ``name``: its text, whether an operator must parenthesise it, its depth."""
        if name in self.written:
            return self.written[name]
        if name in self.gradient.constants and name not in self.spec.inputs and name not in self.gradient.nodes:
            return name, name.startswith("-"), 0
        if name in self.spec.nodes and not name.isidentifier():  # a sub-expression of the forward file
            text = self.texts.get(name, name)
            return text, _is_operation(text), 0
        return self.name_of(name), False, 0

    def formula(self, op: str, args: tuple[str, ...], attrs: dict[str, Any]) -> tuple[str, bool, int]:
        refs = [self.reference(arg) for arg in args]
        depth = 1 + max((ref[2] for ref in refs), default=0)

        def operand(ref: tuple[str, bool, int]) -> str:
            return f"({ref[0]})" if ref[1] else ref[0]

        if op in BINARY:
            return f"{operand(refs[0])} {BINARY[op]} {operand(refs[1])}", True, depth
        if op == "neg":
            return f"-{operand(refs[0])}", True, depth
        if op == "index":
            return f"{operand(refs[0])}[{attrs['key']}]", False, depth
        shown = [ref[0] for ref in refs] + [f"{key}={value!r}" for key, value in attrs.items() if value is not None]
        return f"{op}({', '.join(shown)})", False, depth

    def comment(self, name: str) -> str:
        node = self.gradient.nodes[name]
        graph = self.gradient.graph
        if node.summed:
            return f"{node.origin} is used by {', '.join(self.users[node.origin])}: its gradient adds theirs"
        if node.origin in self.spec.inputs:
            kind = "0: the output does not depend on it" if node.op == "zeros_like" else "the gradient reaching it"
            return f"the gradient of input {node.origin}: {kind}"
        forward = self.spec.nodes[node.origin]
        layer = graph.layers[node.origin]
        formula, rules = layer.applied_rules(*(graph.shapes[arg] for arg in forward.args))
        text = f"from {node.origin} = {_filled(formula, layer, forward.args, node.origin)}"
        rule = self.gradient.rules.get(name)
        if rule is not None and rule[0] == node.origin:
            arg = forward.args[rule[1]]
            text += f" (d {arg} = {_filled(rules[rule[1]], layer, forward.args, node.origin)})"
        return text


def _filled(rule: str, layer: Any, args: tuple[str, ...], out: str) -> str:
    for role, arg in zip(layer.args, args):
        rule = rule.replace("{" + role + "}", arg)
    return rule.replace("{out}", out)


def _array_entry(array: np.ndarray) -> Any:
    """An input's entry holding ``array``: a number, a fill of one value, or the values."""
    dtype = {} if array.dtype == np.float64 else {"dtype": str(array.dtype)}
    values = array.tolist()
    if array.ndim == 0:
        return {"value": values, **dtype} if dtype else values
    if array.size and (array == array.flat[0]).all():
        return {"fill": array.flat[0].item(), "shape": list(array.shape), **dtype}
    return {"value": values, **dtype} if dtype else values


def _moved(value: Any, base_dir: str, out_path: str | None) -> Any:
    """An input's entry with its ``file:`` path relative to where the new file goes."""
    if not (isinstance(value, dict) and isinstance(value.get("file"), str)):
        return value
    moved = os.path.join(base_dir, os.path.expanduser(value["file"]))
    folder = os.path.dirname(out_path) if out_path else "."
    return {**value, "file": os.path.relpath(moved, folder or ".")}


def _is_operation(text: str) -> bool:
    """Whether formula ``text`` is an operator's (``1 + exp(-dot)``), which an operator beside it
    must parenthesise; a name, number, call or index is not."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return True
    return isinstance(tree, (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare))
