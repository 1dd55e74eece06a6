"""Ops that move values between shapes: transpose, reshape, flatten."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import REQUIRED, Attr, BaseLayer, Shape, _dimensions, read_axes, read_shape, register, shape_of

@register
class TransposeLayer(BaseLayer):
    """Axes reordered: out = transpose(x, axes); all axes reversed where ``axes`` is not given."""

    op = "transpose"
    args = ("x",)
    attrs = {"axes": Attr(read_axes, None, "the new order of x's axes, a list; null, the default, reverses them")}
    formula = "transpose({x}, axes={axes})"
    grad_formulas = ("transpose(dout) by the inverse order of axes={axes}",)
    axes: tuple[int, ...] | None

    def _order(self, ndim: int) -> tuple[int, ...]:
        if self.axes is None:
            return tuple(reversed(range(ndim)))
        if len(self.axes) != ndim or sorted(axis % ndim for axis in self.axes if -ndim <= axis < ndim) != list(range(ndim)):
            raise ValueError(f"axes {list(self.axes)} are not an order of the {_dimensions(ndim)} of {{x}}")
        return tuple(axis % ndim for axis in self.axes)

    def out_shape(self, *shapes: Shape) -> Shape:
        xs = shapes[0]
        return tuple(xs[axis] for axis in self._order(len(xs)))

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.transpose(x, self._order(len(shape_of(x))))

    def backward(self, dout: Any) -> tuple[Any]:
        order = self._order(len(shape_of(self.x)))
        return (np.transpose(dout, np.argsort(order)),)


@register
class ReshapeLayer(BaseLayer):
    """The same values in a new shape: out = reshape(x, shape); one size in ``shape`` may be -1."""

    op = "reshape"
    args = ("x",)
    attrs = {"shape": Attr(read_shape, REQUIRED, "the new shape, a list like [2, -1] (-1: whatever size fits)")}
    formula = "reshape({x}, {shape})"
    grad_formulas = ("reshape(dout, shape of {x})",)
    shape: tuple[int, ...]

    def out_shape(self, *shapes: Shape) -> Shape:
        size = math.prod(shapes[0])
        known = math.prod(n for n in self.shape if n != -1)
        if -1 in self.shape and known and size % known == 0:
            return tuple(size // known if n == -1 else n for n in self.shape)
        if -1 not in self.shape and known == size:
            return self.shape
        verb = "fill" if -1 in self.shape else "match"
        raise ValueError(f"{{x}} has {size:,} elements, which do not {verb} the shape {list(self.shape)}")

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.reshape(x, self.shape)

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.reshape(dout, shape_of(self.x)),)


@register
class FlattenLayer(BaseLayer):
    """The batch axis kept and the others joined: x (N, C, H, W) becomes (N, C·H·W), as the book's
    ``x.reshape(x.shape[0], -1)`` between a convolution and an affine layer ((N,) becomes (N, 1))."""

    op = "flatten"
    args = ("x",)
    formula = "reshape({x}, (N, -1)), N its first axis"
    grad_formulas = ("reshape(dout, shape of {x})",)

    def out_shape(self, *shapes: Shape) -> Shape:
        xs = shapes[0]
        if not xs:
            raise ValueError("{x} is 0-d; flatten keeps the first axis (the batch) and joins the others")
        return (xs[0], math.prod(xs[1:]))

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.reshape(x, self.out_shape(x.shape))

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.reshape(dout, self.x.shape),)
