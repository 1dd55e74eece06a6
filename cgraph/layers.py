"""Layers in the style of "Deep Learning from Scratch", chapter 5, made broadcast-correct.

Each layer is one node's operation. ``forward`` takes the node's input values and
keeps what ``backward`` needs; ``backward(dout)`` returns one gradient per input,
each with the shape of that input (gradients of broadcast inputs are summed back
with :func:`sum_to`). ``str(layer)`` describes the layer and the shapes it saw.

Adding an op is one class here, decorated with :func:`register`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

Shape = tuple[int, ...]

REGISTRY: dict[str, type[BaseLayer]] = {}


def register(cls: type[BaseLayer]) -> type[BaseLayer]:
    """Make a layer class available to graph files under its ``op`` name."""
    REGISTRY[cls.op] = cls
    return cls


def broadcast_shapes(*shapes: Shape) -> Shape:
    """The numpy broadcast of ``shapes``; ValueError where they do not broadcast."""
    first = shapes[0]
    if len(shapes) == 2 and shapes[1] == first or all(shape == first for shape in shapes):
        return first
    return tuple(np.broadcast_shapes(*shapes))


def shape_of(value: Any) -> Shape:
    """The shape of an array, or () for a Python float (a 0-d float64 value)."""
    return getattr(value, "shape", ())


def sum_axes(grad_shape: Shape, shape: Shape) -> tuple[int, ...]:
    """The axes of a gradient of ``grad_shape`` along which a value of ``shape`` was broadcast."""
    lead = len(grad_shape) - len(shape)
    return tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and grad_shape[lead + i] != 1
    )


def sum_to(grad: Any, shape: Shape) -> Any:
    """Sum ``grad`` over the axes along which a value of ``shape`` was broadcast."""
    grad_shape = getattr(grad, "shape", ())
    if grad_shape == shape:
        return grad
    return np.sum(grad, axis=sum_axes(grad_shape, shape), keepdims=True).reshape(shape)


def unbroadcast(grad: Any, value: Any) -> Any:
    """``grad`` summed over the axes along which ``value`` was broadcast, so it has value's shape."""
    if type(grad) is float:
        return grad  # 0-d: nothing was broadcast
    shape = getattr(value, "shape", ())
    if grad.shape == shape:
        return grad
    return sum_to(grad, shape)


class BaseLayer:
    """One node's operation: ``forward(x, y) -> out`` and ``backward(dout) -> (dx, dy)``.

    ``forward`` keeps its inputs under the names in ``args`` (``self.x``, ``self.y``)
    for ``backward`` and for ``str(layer)``. Values may be numpy arrays or, for 0-d
    float64 values, Python floats, so layers use :func:`shape_of` rather than ``.shape``.
    """

    __slots__ = ()  # subclasses may list their fields in __slots__ for speed, or have a __dict__
    op: ClassVar[str] = ""
    args: ClassVar[tuple[str, ...]] = ("x", "y")
    # The rules, for explaining a node: the value and each input's gradient, written with
    # {x}, {y} (the inputs, by the names in `args`), {out} (the value) and dout.
    formula: ClassVar[str] = ""
    grad_formulas: ClassVar[tuple[str, ...]] = ()

    def forward(self, *inputs: Any) -> Any:
        """The node's value from its input values; keeps what backward needs."""
        raise NotImplementedError

    def backward(self, dout: Any) -> tuple[Any, ...]:
        """The gradient of each input, given the gradient ``dout`` of the output."""
        raise NotImplementedError

    def out_shape(self, *shapes: Shape) -> Shape:
        """The output's shape for inputs of ``shapes``; ValueError where they do not fit."""
        return broadcast_shapes(*shapes)

    def __str__(self) -> str:
        if not hasattr(self, self.args[0]):
            return f"{type(self).__name__} (not run)"
        in_shapes = [shape_of(getattr(self, name)) for name in self.args]
        shapes = ", ".join(f"{name}.shape={shape}" for name, shape in zip(self.args, in_shapes))
        return f"{type(self).__name__}({shapes}) -> out.shape={self.out_shape(*in_shapes)}"


@register
class MulLayer(BaseLayer):
    """Elementwise product: out = x * y."""

    __slots__ = ("x", "y")
    op = "mul"
    formula = "{x} * {y}"
    grad_formulas = ("dout * {y}", "dout * {x}")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return unbroadcast(dout * self.y, self.x), unbroadcast(dout * self.x, self.y)


@register
class AddLayer(BaseLayer):
    """Elementwise sum: out = x + y."""

    __slots__ = ("x", "y")
    op = "add"
    formula = "{x} + {y}"
    grad_formulas = ("dout * 1", "dout * 1")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return unbroadcast(dout, self.x), unbroadcast(dout, self.y)
