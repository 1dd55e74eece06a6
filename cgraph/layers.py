"""Layers in the style of "Deep Learning from Scratch", chapter 5, made broadcast-correct.

Each layer is one node's operation. ``forward`` takes the node's input values and
keeps what ``backward`` needs; ``backward(dout)`` returns one gradient per input,
each with the shape of that input (gradients of broadcast inputs are summed back
with :func:`sum_to`). ``str(layer)`` describes the layer and the shapes it saw.

Adding an op is one class here, decorated with :func:`register`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from .arrays import describe

Shape = tuple[int, ...]

REGISTRY: dict[str, type[BaseLayer]] = {}


def register(cls: type[BaseLayer]) -> type[BaseLayer]:
    """Make a layer class available to graph files under its ``op`` name."""
    cls.required_attrs = tuple(key for key, attr in cls.attrs.items() if attr.default is REQUIRED)
    REGISTRY[cls.op] = cls
    return cls


def broadcast_shapes(*shapes: Shape) -> Shape:
    """The numpy broadcast of ``shapes``; ValueError where they do not broadcast."""
    first = shapes[0]
    if all(shape == first for shape in shapes):
        return first
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError("they do not broadcast") from None


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
    return sum_to(grad, getattr(value, "shape", ()))


def divide(x: Any, y: Any) -> Any:
    """x / y, with numpy's inf and NaN (not ZeroDivisionError) where a Python float y is 0."""
    try:
        return x / y
    except ZeroDivisionError:
        return np.divide(x, y)


# --- attributes -----------------------------------------------------------------------


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Attr:
    """An op's attribute, written in the node's mapping (``{op: sum, inputs: [x], axis: 0}``).

    ``read`` turns the written value into the layer's (accepting its own results too) or
    raises ValueError saying what it must be; ``default`` is REQUIRED where it has none.
    """

    read: Callable[[Any], Any]
    default: Any
    doc: str


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _int_list(value: Any, expected: str) -> tuple[int, ...]:
    """A list (or tuple) of integers as a tuple; ValueError naming ``expected`` otherwise."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be {expected}, got {describe(value)}")
    for item in value:
        if not _is_int(item):
            raise ValueError(f"must be {expected}, got {describe(item)} in the list")
    if len(value) > 32:
        raise ValueError(f"must be {expected}, got a list of {len(value)}; at most 32 dimensions are supported")
    return tuple(int(item) for item in value)


def read_axis(value: Any) -> int | tuple[int, ...] | None:
    """An axis, a list of axes, or null for all axes."""
    if value is None:
        return None
    if _is_int(value):
        return int(value)
    return _int_list(value, "an integer, a list of integers or null")


def read_axes(value: Any) -> tuple[int, ...] | None:
    """An order of axes (a list of integers), or null for the reversed order."""
    return None if value is None else _int_list(value, "a list of integers or null")


def read_bool(value: Any) -> bool:
    """true or false."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"must be true or false, got {describe(value)}")


def read_shape(value: Any) -> tuple[int, ...]:
    """A shape: an integer or a list of non-negative integers, of which one may be -1."""
    expected = "a list of non-negative integers, one of which may be -1"
    shape = (int(value),) if _is_int(value) else _int_list(value, expected)
    if any(size < -1 for size in shape) or shape.count(-1) > 1:
        raise ValueError(f"must be {expected}, got {list(shape)}")
    return shape


def _show(value: Any) -> str:
    """An attribute's value as formulas and descriptions show it."""
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _dimensions(count: int) -> str:
    return f"{count} dimension{'' if count == 1 else 's'}"


def _normal_axes(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """``axis`` as sorted non-negative axes of an ``ndim``-dimensional {x}; all of them for None."""
    if axis is None:
        return tuple(range(ndim))
    found: list[int] = []
    for item in (axis,) if isinstance(axis, int) else axis:
        if not -ndim <= item < ndim:
            raise ValueError(f"axis {item} is out of range for {{x}}, which has {_dimensions(ndim)}")
        if item % ndim in found:
            raise ValueError(f"axis {item % ndim} is given twice")
        found.append(item % ndim)
    return tuple(sorted(found))


# --- the base class -------------------------------------------------------------------


class BaseLayer:
    """One node's operation: ``forward(x, y) -> out`` and ``backward(dout) -> (dx, dy)``.

    ``forward`` keeps its inputs under the names in ``args`` (``self.x``, ``self.y``)
    for ``backward`` and for ``str(layer)``. Values may be numpy arrays or, for 0-d
    float64 values, Python floats, so layers use :func:`shape_of` rather than ``.shape``
    and numpy functions (inf and NaN, not exceptions) rather than Python's math.

    An op with attributes declares them in ``attrs``; the layer is built with them
    (``SumLayer(axis=0)``) and keeps them as attributes of the same names.
    """

    __slots__ = ()  # subclasses may list their fields in __slots__ for speed, or have a __dict__
    op: ClassVar[str] = ""
    args: ClassVar[tuple[str, ...]] = ("x", "y")
    attrs: ClassVar[dict[str, Attr]] = {}
    required_attrs: ClassVar[tuple[str, ...]] = ()  # set by @register
    # The rules, for explaining a node: the value and each input's gradient, written with
    # {x}, {y} (the inputs, by the names in `args`), {out} (the value) and dout. A class's
    # rules may also use its attributes ({axis}); a layer object's have their values filled in.
    formula: ClassVar[str] = ""
    grad_formulas: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        if not attrs and not self.attrs:
            return
        cls = type(self)
        for key in attrs:
            if key not in cls.attrs:
                raise TypeError(f"{cls.__name__} has no attribute '{key}'")
        shown = {}
        for key, attr in cls.attrs.items():
            if key in attrs:
                try:
                    value = attr.read(attrs[key])
                except ValueError as error:
                    raise ValueError(f"{cls.op} attribute '{key}' {error}") from None
            elif attr.default is REQUIRED:
                raise TypeError(f"{cls.__name__} needs the attribute '{key}': {attr.doc}")
            else:
                value = attr.default
            setattr(self, key, value)
            shown["{" + key + "}"] = _show(value)
        self.formula = _fill(cls.formula, shown)
        self.grad_formulas = tuple(_fill(rule, shown) for rule in cls.grad_formulas)

    def forward(self, *inputs: Any) -> Any:
        """The node's value from its input values; keeps what backward needs."""
        raise NotImplementedError

    def backward(self, dout: Any) -> tuple[Any, ...]:
        """The gradient of each input, given the gradient ``dout`` of the output."""
        raise NotImplementedError

    def out_shape(self, *shapes: Shape) -> Shape:
        """The output's shape for inputs of ``shapes``; ValueError where they do not fit.

        The error's message may name the inputs as {x}, {y} (by the names in ``args``).
        """
        return broadcast_shapes(*shapes)

    def __str__(self) -> str:
        name = type(self).__name__
        attrs = [f"{key}={_show(getattr(self, key))}" for key in self.attrs]
        if not hasattr(self, self.args[0]):
            return f"{name}({', '.join(attrs)}) (not run)" if attrs else f"{name} (not run)"
        in_shapes = [shape_of(getattr(self, arg)) for arg in self.args]
        shapes = [f"{arg}.shape={shape}" for arg, shape in zip(self.args, in_shapes)]
        return f"{name}({', '.join(shapes + attrs)}) -> out.shape={self.out_shape(*in_shapes)}"


def _fill(rule: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        rule = rule.replace(placeholder, value)
    return rule


# --- elementwise, two inputs ----------------------------------------------------------


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
        return unbroadcast(dout, self.x), unbroadcast(-dout, self.y)


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
        return unbroadcast(dx, self.x), unbroadcast(-dx * self.out, self.y)


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
        return unbroadcast(dx, x), unbroadcast(dy, y)


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
        return unbroadcast(np.where(x > y, dout, tie), x), unbroadcast(np.where(y > x, dout, tie), y)


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


# --- shape-changing -------------------------------------------------------------------


def matmul_shape(xs: Shape, ys: Shape, names: tuple[str, str] = ("{x}", "{y}")) -> Shape:
    """The shape of x @ y by numpy's rules; ValueError, naming the inputs by ``names``, where they do not fit."""
    x, y = names
    for name, shape in ((x, xs), (y, ys)):
        if not shape:
            raise ValueError(f"{name} is 0-d; a matrix product needs at least 1 dimension")
    rows_y = ys[0] if len(ys) == 1 else ys[-2]
    if xs[-1] != rows_y:
        axis = "its length" if len(ys) == 1 else "its second-to-last axis"
        raise ValueError(f"{x} has {xs[-1]} columns (its last axis) but {y} has {rows_y} rows ({axis})")
    try:
        batch = broadcast_shapes(xs[:-2], ys[:-2])
    except ValueError:
        raise ValueError(f"the stacked axes {xs[:-2]} of {x} and {ys[:-2]} of {y} do not broadcast") from None
    return batch + xs[-2:-1] + (ys[-1:] if len(ys) > 1 else ())


def matmul_grads(x: np.ndarray, y: np.ndarray, dout: Any) -> tuple[np.ndarray, np.ndarray]:
    """The gradients of x and y for out = x @ y, for numpy's 1-D, 2-D and stacked cases."""
    x2 = x[None, :] if x.ndim == 1 else x  # numpy's matmul makes 1-D x a row and 1-D y a column
    y2 = y[:, None] if y.ndim == 1 else y
    d2 = np.asarray(dout)
    if y.ndim == 1:
        d2 = d2[..., None]
    if x.ndim == 1:
        d2 = d2[..., None, :]
    dx = sum_to(np.matmul(d2, np.swapaxes(y2, -1, -2)), x2.shape).reshape(x.shape)
    dy = sum_to(np.matmul(np.swapaxes(x2, -1, -2), d2), y2.shape).reshape(y.shape)
    return dx, dy


@register
class MatmulLayer(BaseLayer):
    """Matrix product as numpy's matmul: out = x @ y, for 1-D and 2-D inputs and stacks of matrices."""

    op = "matmul"
    formula = "{x} @ {y}"
    grad_formulas = ("dout @ {y}.T", "{x}.T @ dout")

    def out_shape(self, *shapes: Shape) -> Shape:
        return matmul_shape(*shapes)

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return np.matmul(x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return matmul_grads(self.x, self.y, dout)


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

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.divide(np.sum(x, axis=self.axis, keepdims=self.keepdims), self._count())  # NaN, not a warning, if empty

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.divide(self._spread(dout), self._count()),)

    def _count(self) -> int:
        """How many values each mean averages."""
        shape = shape_of(self.x)
        return math.prod(shape[i] for i in _normal_axes(self.axis, len(shape)))


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


# --- network layers -------------------------------------------------------------------


@register
class AffineLayer(BaseLayer):
    """The book's Affine layer: out = x @ W + b, for a batch x (N, D), weights W (D, M) and a bias b (M,).

    x @ W follows numpy's matmul (x may be 1-D or a stack), and b broadcasts to the product.
    """

    op = "affine"
    args = ("x", "W", "b")
    formula = "{x} @ {W} + {b}"
    grad_formulas = ("dout @ {W}.T", "{x}.T @ dout", "dout")

    def out_shape(self, *shapes: Shape) -> Shape:
        xs, ws, bs = shapes
        product = matmul_shape(xs, ws, ("{x}", "{W}"))
        try:
            return broadcast_shapes(product, bs)
        except ValueError:
            raise ValueError(f"the bias {{b}} does not broadcast to the shape {product} of {{x}} @ {{W}}") from None

    def forward(self, x: Any, W: Any, b: Any) -> Any:
        self.x, self.W, self.b = x, W, b
        product = np.matmul(x, W)
        self.product_shape = product.shape
        return product + b

    def backward(self, dout: Any) -> tuple[Any, Any, Any]:
        dx, dW = matmul_grads(self.x, self.W, sum_to(dout, self.product_shape))
        return dx, dW, unbroadcast(dout, self.b)


def _check_classes(shape: Shape, name: str) -> None:
    if not shape:
        raise ValueError(f"{{x}} is 0-d; {name} needs scores along a last axis")
    if shape[-1] == 0:
        raise ValueError(f"{{x}} has a last axis of size 0; {name} needs at least one score along it")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    """log(softmax(x)) along the last axis, without overflow: the largest score is shifted to 0."""
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


@register
class SoftmaxLayer(BaseLayer):
    """Softmax along the last axis: out = exp(x) / sum(exp(x)), computed without overflow."""

    op = "softmax"
    args = ("x",)
    formula = "exp({x}) / sum(exp({x}) along the last axis)"
    grad_formulas = ("{out} * (dout - sum(dout * {out} along the last axis))",)

    def out_shape(self, *shapes: Shape) -> Shape:
        _check_classes(shapes[0], "softmax")
        return shapes[0]

    def forward(self, x: Any) -> Any:
        self.x = x
        self.out = np.exp(_log_softmax(x))
        return self.out

    def backward(self, dout: Any) -> tuple[Any]:
        out = self.out
        return (out * (dout - np.sum(dout * out, axis=-1, keepdims=True)),)


def class_indices(t: Any, classes: int) -> np.ndarray:
    """Labels given as class numbers (floats that are whole numbers in [0, classes)) as integers."""
    t = np.asarray(t)
    valid = np.isfinite(t) & (t == np.round(t)) & (t >= 0) & (t < classes)
    if not valid.all():
        where = tuple(int(i) for i in np.argwhere(~valid)[0])
        at = f" at index {list(where)}" if where else ""
        raise ValueError(
            f"the labels {{t}} are class indices, which must be whole numbers from 0 to {classes - 1}; "
            f"found {float(t[where]):g}{at}"
        )
    return t.astype(np.intp)


@register
class SoftmaxWithLossLayer(BaseLayer):
    """The book's SoftmaxWithLoss: the mean cross-entropy of softmax(x) against labels t.

    x holds scores with the classes along the last axis (N, C). t is one-hot (or any
    class probabilities) with x's shape, or class indices with shape x.shape[:-1].
    The output is 0-d: -sum(t * log(softmax(x))) / N, N being the number of rows
    (the product of x's leading axes). The gradient of one-hot t is the derivative of
    that sum, -log(softmax(x)) / N; that of class indices is 0 (they are not continuous).
    """

    op = "softmax_with_loss"
    args = ("x", "t")
    formula = "-sum({t} * log(softmax({x}))) / N, N rows"
    grad_formulas = ("dout * (softmax({x}) - {t}) / N", "dout * -log(softmax({x})) / N, or 0 for class indices")

    def out_shape(self, *shapes: Shape) -> Shape:
        xs, ts = shapes
        _check_classes(xs, "softmax_with_loss")
        if ts != xs and ts != xs[:-1]:
            raise ValueError(
                f"the labels {{t}} must be one-hot with the shape {xs} of the scores {{x}}, "
                f"or class indices with shape {xs[:-1]}"
            )
        return ()

    def forward(self, x: Any, t: Any) -> Any:
        self.x, self.t = x, t
        self.log_p = _log_softmax(x)
        self.rows = math.prod(x.shape[:-1])
        if shape_of(t) == x.shape:
            self.index = None
            return np.divide(-np.sum(t * self.log_p), self.rows)
        self.index = class_indices(t, x.shape[-1])[..., None]
        return np.divide(-np.sum(np.take_along_axis(self.log_p, self.index, axis=-1)), self.rows)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        scale = np.divide(dout, self.rows)
        p = np.exp(self.log_p)
        if self.index is None:
            t = self.t  # rows of t need not sum to 1: d/dx of -sum(t * log p) is p * sum(t) - t
            return scale * (p * np.sum(t, axis=-1, keepdims=True) - t), -scale * self.log_p
        target = np.zeros_like(p)
        np.put_along_axis(target, self.index, 1.0, axis=-1)
        return scale * (p - target), np.zeros(shape_of(self.t), np.asarray(self.t).dtype)
