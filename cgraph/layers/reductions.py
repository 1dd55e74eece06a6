"""Reductions over axes: sum, mean."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Attr, BaseLayer, Shape, _normal_axes, read_axis, read_bool, register, shape_of

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


@register
class MeanLayer(ReductionLayer):
    """Mean over axes: out = mean(x, axis, keepdims)."""

    op = "mean"
    formula = "mean({x}, axis={axis}, keepdims={keepdims})"
    grad_formulas = ("dout / n repeated along the averaged axes (n values in each mean)",)

    def rules(self, *shapes: Shape) -> tuple[str, tuple[str, ...]]:
        n = math.prod(shapes[0][i] for i in _normal_axes(self.axis, len(shapes[0])))
        return self.formula, (f"dout / {n} repeated along the averaged axes ({n} values in each mean)",)

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.divide(np.sum(x, axis=self.axis, keepdims=self.keepdims), self._count())  # NaN, not a warning, if empty

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.divide(self._spread(dout), self._count()),)

    def _count(self) -> int:
        """How many values each mean averages."""
        shape = shape_of(self.x)
        return math.prod(shape[i] for i in _normal_axes(self.axis, len(shape)))
