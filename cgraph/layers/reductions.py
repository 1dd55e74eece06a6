"""Reductions over axes: sum, mean, argmax."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..arrays import describe
from .base import Attr, BaseLayer, GradBuilder, Shape, _is_int, _normal_axes, read_axis, read_bool, register, shape_of

AXIS_DOC = "an axis or a list of axes to reduce (negative counts from the end); null, the default, for all"
KEEPDIMS_DOC = "true to keep the reduced axes with size 1"


class ReductionLayer(BaseLayer):
    """A reduction of one input x over ``axis``, keeping the reduced axes with size 1 where ``keepdims``."""

    args = ("x",)
    attrs = {"axis": Attr(read_axis, None, AXIS_DOC), "keepdims": Attr(read_bool, False, KEEPDIMS_DOC)}
    axis: int | tuple[int, ...] | None
    keepdims: bool

    def out_shape(self, *shapes: Shape) -> Shape:
        xs = shapes[0]
        axes = _normal_axes(self.axis, len(xs))
        if self.keepdims:
            return tuple(1 if i in axes else size for i, size in enumerate(xs))
        return tuple(size for i, size in enumerate(xs) if i not in axes)

    def _spread(self, dout: Any) -> Any:
        """``dout`` repeated along the reduced axes, to x's shape."""
        shape = shape_of(self.x)
        if shape_of(dout) == shape:
            return dout
        if not self.keepdims:
            dout = np.expand_dims(dout, _normal_axes(self.axis, len(shape)))
        return np.broadcast_to(dout, shape)

    def _spread_graph(self, g: GradBuilder, x: str, dout: str) -> str:
        """``_spread`` as nodes: dout given x's dimensions back (keepdims), then broadcast to x's shape."""
        shape = g.shape(x)
        axes = _normal_axes(self.axis, len(shape))
        if axes != tuple(range(len(axes))):  # not the leading axes alone, which broadcasting adds back
            dout = g.reshape(dout, tuple(1 if i in axes else size for i, size in enumerate(shape)))
        return g.broadcast_to(dout, shape)


@register
class SumLayer(ReductionLayer):
    """Sum over axes: out = sum(x, axis, keepdims)."""

    op = "sum"
    formula = "sum({x}, axis={axis}, keepdims={keepdims})"
    grad_formulas = ("dout repeated along the summed axes",)

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.sum(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, dout: Any) -> tuple[Any]:
        return (self._spread(dout),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (self._spread_graph(g, args[0], dout),)


@register
class MeanLayer(ReductionLayer):
    """Mean over axes: out = mean(x, axis, keepdims)."""

    op = "mean"
    formula = "mean({x}, axis={axis}, keepdims={keepdims})"
    grad_formulas = ("dout / n repeated along the averaged axes (n values in each mean)",)

    def applied_rules(self, *shapes: Shape) -> tuple[str, tuple[str, ...]]:
        n = math.prod(shapes[0][i] for i in _normal_axes(self.axis, len(shapes[0])))
        return self.formula, (f"dout / {n} repeated along the averaged axes ({n} values in each mean)",)

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.divide(np.sum(x, axis=self.axis, keepdims=self.keepdims), self._count())  # NaN, not a warning, if empty

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.divide(self._spread(dout), self._count()),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        shape = g.shape(args[0])
        n = math.prod(shape[i] for i in _normal_axes(self.axis, len(shape)))
        return (g.div(self._spread_graph(g, args[0], dout), g.number(n)),)

    def _count(self) -> int:
        """How many values each mean averages."""
        shape = shape_of(self.x)
        return math.prod(shape[i] for i in _normal_axes(self.axis, len(shape)))


def read_one_axis(value: Any) -> int | None:
    """One axis, or null for the index into the flattened array."""
    if value is None or _is_int(value):
        return None if value is None else int(value)
    raise ValueError(f"must be an integer or null, got {describe(value)}")


@register
class ArgmaxLayer(BaseLayer):
    """The index of the largest value along ``axis`` (of the flattened x where it is null), as a number
    of x's dtype; the first one where several are equal, as numpy's argmax. The index does not
    change as x moves a little, so its gradient is 0."""

    op = "argmax"
    args = ("x",)
    attrs = {"axis": Attr(read_one_axis, None, "the axis to search (negative counts from the end); null, "
                                               "the default, for the index into the flattened array")}
    formula = "argmax({x}, axis={axis})"
    grad_formulas = ("0",)
    axis: int | None

    def out_shape(self, *shapes: Shape) -> Shape:
        xs = shapes[0]
        if 0 in xs:
            raise ValueError("{x} is empty: it has no largest value")
        if self.axis is None:
            return ()
        (axis,) = _normal_axes(self.axis, len(xs))
        return xs[:axis] + xs[axis + 1:]

    def forward(self, x: Any) -> Any:
        self.x = x
        if type(x) is float:
            return 0.0
        return np.argmax(x, axis=self.axis).astype(x.dtype)

    def backward(self, dout: Any) -> tuple[Any]:
        x = self.x
        return (0.0 if type(x) is float else np.zeros(x.shape, x.dtype),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (None,)
