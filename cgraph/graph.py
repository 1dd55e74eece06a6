"""A graph of layer objects built from a spec, with its forward and backward passes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .arrays import DEFAULT_MAX_ELEMENTS
from .errors import CgraphError
from .layers import REGISTRY, BaseLayer, Shape, broadcast_shapes
from .spec import GraphSpec


class Graph:
    """One layer object per node; values and gradients of every input and node after a run.

    ``values``, ``grads`` and ``input_grads`` map names to arrays (the latter to one
    gradient per node input, as the layer's backward returned it) and fill in as
    :meth:`forward` and :meth:`backward` run.
    """

    def __init__(self, spec: GraphSpec, max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        self.spec = spec
        self.output = spec.output
        self.layers: dict[str, BaseLayer] = {name: REGISTRY[node.op]() for name, node in spec.nodes.items()}
        self.shapes = self._infer_shapes(max_elements)
        self.values: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.input_grads: dict[str, tuple[Any, ...]] = {}
        self.dout: Any = None

    def _infer_shapes(self, max_elements: int) -> dict[str, Shape]:
        """Every value's shape, checked before anything is computed."""
        shapes = {name: item.value.shape for name, item in self.spec.inputs.items()}
        for name, node in self.spec.nodes.items():
            arg_shapes = [shapes[arg] for arg in node.args]
            try:
                shape = REGISTRY[node.op].out_shape(*arg_shapes)
            except ValueError:
                described = " and ".join(
                    f"{arg} {shape}{' (from --set)' if arg in self.spec.overridden else ''}"
                    for arg, shape in zip(node.args, arg_shapes)
                )
                raise CgraphError(f"node '{name}': {node.op} cannot combine shapes {described}", node.pos) from None
            if math.prod(shape) > max_elements:
                raise CgraphError(
                    f"node '{name}' would hold {math.prod(shape):,} elements, over the limit of "
                    f"{max_elements:,} (raise it with --max-elements)",
                    node.pos,
                )
            shapes[name] = shape
        return shapes

    def forward(self) -> Any:
        """Run every node in dependency order; return the output's value."""
        values = {name: item.value for name, item in self.spec.inputs.items()}
        with np.errstate(all="ignore"):
            for name, node in self.spec.nodes.items():
                values[name] = self.layers[name].forward(*[values[arg] for arg in node.args])
        self.values = values
        return values[self.output]

    def backward(self, dout: Any = 1.0) -> dict[str, Any]:
        """Inject ``dout`` at the output, run backward; return every input's and node's gradient.

        The gradient of v is dL/dv for L = sum(dout * output); ``dout`` is broadcast
        to the output's shape. Runs forward first if it has not run.
        """
        if not self.values:
            self.forward()
        out = self.values[self.output]
        dout = np.asarray(dout, dtype=out.dtype)
        try:
            fits = broadcast_shapes(dout.shape, out.shape) == out.shape
        except ValueError:
            fits = False
        if not fits:
            raise CgraphError(
                f"--dout: shape {dout.shape} does not broadcast to the shape {out.shape} of output '{self.output}'"
            )
        self.dout = np.array(np.broadcast_to(dout, out.shape))

        grads: dict[str, Any] = {self.output: self.dout}
        input_grads: dict[str, tuple[Any, ...]] = {}
        with np.errstate(all="ignore"):
            for name, node in reversed(self.spec.nodes.items()):
                grad = grads.get(name)
                if grad is None:
                    continue
                arg_grads = self.layers[name].backward(grad)
                input_grads[name] = arg_grads
                for arg, arg_grad in zip(node.args, arg_grads):
                    previous = grads.get(arg)
                    grads[arg] = arg_grad if previous is None else previous + arg_grad

        for name, value in self.values.items():
            grad = grads.get(name)
            if grad is None:
                grads[name] = np.zeros(value.shape, value.dtype)
            elif grad.dtype != value.dtype:
                grads[name] = grad.astype(value.dtype)
        for name, node in self.spec.nodes.items():
            if name not in input_grads:
                input_grads[name] = tuple(np.zeros(self.shapes[arg], self.values[arg].dtype) for arg in node.args)
        self.grads = grads
        self.input_grads = input_grads
        return grads

    def non_finite(self) -> list[tuple[str, str]]:
        """Where NaN or infinity entered: (name, message) for inputs that hold them, the first
        node whose value is non-finite from finite inputs, and the first node whose backward
        turned a finite gradient into a non-finite one."""
        found = [(name, f"input '{name}' holds NaN or infinity")
                 for name in self.spec.inputs if not _finite(self.values[name])]
        for name, node in self.spec.nodes.items():
            if not _finite(self.values[name]) and all(_finite(self.values[arg]) for arg in node.args):
                found.append((name, f"node '{name}' ({node.op}) produced NaN or infinity from finite inputs"))
                break
        if self.grads:
            for name, node in reversed(self.spec.nodes.items()):
                if not _finite(self.grads[name]):
                    continue
                bad = [arg for arg, grad in zip(node.args, self.input_grads[name]) if not _finite(grad)]
                if bad:
                    found.append((name, f"node '{name}' ({node.op}) backward produced NaN or infinity in the "
                                        f"gradient of '{bad[0]}' from a finite gradient"))
                    break
        return found


def _finite(array: Any) -> bool:
    return bool(np.isfinite(array).all())
