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


def sum_to(grad: Any, shape: Shape) -> Any:
    """Sum ``grad`` over the axes along which a value of ``shape`` was broadcast."""
    grad_shape = getattr(grad, "shape", ())
    if grad_shape == shape:
        return grad
    lead = len(grad_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and grad_shape[lead + i] != 1
    )
    return np.sum(grad, axis=axes, keepdims=True).reshape(shape)


def divide(x: Any, y: Any) -> Any:
    """x / y, with numpy's inf and NaN (not ZeroDivisionError) where a Python float y is 0."""
    try:
        return x / y
    except ZeroDivisionError:
        return np.divide(x, y)


# --- the base class -------------------------------------------------------------------


class BaseLayer:
    """One node's operation: ``forward(x, y) -> out`` and ``backward(dout) -> (dx, dy)``.

    ``forward`` keeps its inputs under the names in ``args`` (``self.x``, ``self.y``)
    for ``backward`` and for ``str(layer)``. Values may be numpy arrays or, for 0-d
    float64 values, Python floats, so layers use :func:`shape_of` rather than ``.shape``
    and numpy functions (inf and NaN, not exceptions) rather than Python's math.
    """

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


# --- elementwise, two inputs ----------------------------------------------------------


@register
class MulLayer(BaseLayer):
    """Elementwise product: out = x * y."""

    op = "mul"
    formula = "{x} * {y}"
    grad_formulas = ("dout * {y}", "dout * {x}")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        x, y = self.x, self.y
        return sum_to(dout * y, shape_of(x)), sum_to(dout * x, shape_of(y))


@register
class AddLayer(BaseLayer):
    """Elementwise sum: out = x + y."""

    op = "add"
    formula = "{x} + {y}"
    grad_formulas = ("dout * 1", "dout * 1")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return sum_to(dout, shape_of(self.x)), sum_to(dout, shape_of(self.y))


@register
class SubLayer(BaseLayer):
    """Elementwise difference: out = x - y."""

    op = "sub"
    formula = "{x} - {y}"
    grad_formulas = ("dout * 1", "dout * -1")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x - y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return sum_to(dout, shape_of(self.x)), sum_to(-dout, shape_of(self.y))


@register
class DivLayer(BaseLayer):
    """Elementwise quotient: out = x / y; division by 0 gives inf or NaN, as in numpy."""

    op = "div"
    formula = "{x} / {y}"
    grad_formulas = ("dout / {y}", "-dout * {x} / {y}**2")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        self.out = divide(x, y)
        return self.out

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx = divide(dout, self.y)  # and -dout * x / y**2 = -(dout / y) * (x / y)
        return sum_to(dx, shape_of(self.x)), sum_to(-dx * self.out, shape_of(self.y))


@register
class PowLayer(BaseLayer):
    """Elementwise power: out = x ** y. A constant exponent is an input holding a number.

    As in PyTorch, dx is 0 where y = 0 and dy is 0 where x = 0 and y >= 0; elsewhere
    dy = dout * out * log(x), which is NaN where x < 0 (x ** y has no real derivative in y there).
    """

    op = "pow"
    formula = "{x} ** {y}"
    grad_formulas = ("dout * {y} * {x} ** ({y} - 1)", "dout * {out} * log({x})")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        self.out = np.power(x, y)
        return self.out

    def backward(self, dout: Any) -> tuple[Any, Any]:
        x, y = self.x, self.y
        dx = np.where(y == 0, 0.0, dout * y * np.power(x, y - 1))
        dy = np.where((x == 0) & (y >= 0), 0.0, dout * self.out * np.log(x))
        return sum_to(dx, shape_of(x)), sum_to(dy, shape_of(y))


@register
class MaximumLayer(BaseLayer):
    """Elementwise maximum: out = max(x, y); where x = y the gradient is shared half and half."""

    op = "maximum"
    formula = "maximum({x}, {y})"
    grad_formulas = ("dout where {x} > {y}, dout / 2 where {x} = {y}, else 0",
                     "dout where {y} > {x}, dout / 2 where {x} = {y}, else 0")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return np.maximum(x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        x, y = self.x, self.y
        tie = np.where(x == y, 0.5 * dout, 0.0)
        return sum_to(np.where(x > y, dout, tie), shape_of(x)), sum_to(np.where(y > x, dout, tie), shape_of(y))


# --- elementwise, one input -----------------------------------------------------------


class UnaryLayer(BaseLayer):
    """An elementwise op of one input x; the output has x's shape."""

    args = ("x",)

    def out_shape(self, *shapes: Shape) -> Shape:
        return shapes[0]


@register
class NegLayer(UnaryLayer):
    """Negation: out = -x."""

    op = "neg"
    formula = "-{x}"
    grad_formulas = ("-dout",)

    def forward(self, x: Any) -> Any:
        self.x = x
        return -x

    def backward(self, dout: Any) -> tuple[Any]:
        return (-dout,)


@register
class ExpLayer(UnaryLayer):
    """Exponential: out = exp(x)."""

    op = "exp"
    formula = "exp({x})"
    grad_formulas = ("dout * {out}",)

    def forward(self, x: Any) -> Any:
        self.x = x
        self.out = np.exp(x)
        return self.out

    def backward(self, dout: Any) -> tuple[Any]:
        return (dout * self.out,)


@register
class LogLayer(UnaryLayer):
    """Natural logarithm: out = log(x); -inf at 0 and NaN below, as in numpy."""

    op = "log"
    formula = "log({x})"
    grad_formulas = ("dout / {x}",)

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.log(x)

    def backward(self, dout: Any) -> tuple[Any]:
        return (divide(dout, self.x),)


@register
class SqrtLayer(UnaryLayer):
    """Square root: out = sqrt(x); NaN below 0, as in numpy."""

    op = "sqrt"
    formula = "sqrt({x})"
    grad_formulas = ("dout / (2 * {out})",)

    def forward(self, x: Any) -> Any:
        self.x = x
        self.out = np.sqrt(x)
        return self.out

    def backward(self, dout: Any) -> tuple[Any]:
        return (divide(dout, 2 * self.out),)


@register
class ReluLayer(UnaryLayer):
    """Rectified linear unit: out = max(x, 0); the gradient at x = 0 is 0, as in the book."""

    op = "relu"
    formula = "max({x}, 0)"
    grad_formulas = ("dout where {x} > 0, else 0",)

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.where(self.x > 0, dout, 0.0),)


@register
class SigmoidLayer(UnaryLayer):
    """Logistic sigmoid: out = 1 / (1 + exp(-x))."""

    op = "sigmoid"
    formula = "1 / (1 + exp(-{x}))"
    grad_formulas = ("dout * {out} * (1 - {out})",)

    def forward(self, x: Any) -> Any:
        self.x = x
        self.out = 1.0 / (1.0 + np.exp(-x))  # exp overflows to inf for x < -709: out is then 0, as it should be
        return self.out

    def backward(self, dout: Any) -> tuple[Any]:
        return (dout * self.out * (1.0 - self.out),)


@register
class TanhLayer(UnaryLayer):
    """Hyperbolic tangent: out = tanh(x)."""

    op = "tanh"
    formula = "tanh({x})"
    grad_formulas = ("dout * (1 - {out}**2)",)

    def forward(self, x: Any) -> Any:
        self.x = x
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: Any) -> tuple[Any]:
        return (dout * (1.0 - self.out * self.out),)
