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
    if all(shape == first for shape in shapes):
        return first
    return tuple(np.broadcast_shapes(*shapes))


def sum_to(grad: Any, shape: Shape) -> Any:
    """Sum ``grad`` over the axes along which a value of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, size in enumerate(shape) if size == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class BaseLayer:
    """One node's operation: ``forward(x, y) -> out`` and ``backward(dout) -> (dx, dy)``."""

    op: ClassVar[str] = ""
    args: ClassVar[tuple[str, ...]] = ("x", "y")

    def __init__(self) -> None:
        self.in_shapes: tuple[Shape, ...] = ()

    def forward(self, *inputs: Any) -> Any:
        """The node's value from its input values; keeps what backward needs."""
        raise NotImplementedError

    def backward(self, dout: Any) -> tuple[Any, ...]:
        """The gradient of each input, given the gradient ``dout`` of the output."""
        raise NotImplementedError

    @classmethod
    def out_shape(cls, *shapes: Shape) -> Shape:
        """The output's shape for inputs of ``shapes``; ValueError where they do not fit."""
        return broadcast_shapes(*shapes)

    def __str__(self) -> str:
        if not self.in_shapes:
            return f"{type(self).__name__} (not run)"
        shapes = ", ".join(f"{name}.shape={shape}" for name, shape in zip(self.args, self.in_shapes))
        return f"{type(self).__name__}({shapes}) -> out.shape={self.out_shape(*self.in_shapes)}"


@register
class MulLayer(BaseLayer):
    """Elementwise product: out = x * y."""

    op = "mul"

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        self.in_shapes = (x.shape, y.shape)
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx = sum_to(dout * self.y, self.in_shapes[0])
        dy = sum_to(dout * self.x, self.in_shapes[1])
        return dx, dy


@register
class AddLayer(BaseLayer):
    """Elementwise sum: out = x + y."""

    op = "add"

    def forward(self, x: Any, y: Any) -> Any:
        self.in_shapes = (x.shape, y.shape)
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return sum_to(dout, self.in_shapes[0]), sum_to(dout, self.in_shapes[1])
