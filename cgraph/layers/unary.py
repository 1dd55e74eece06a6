"""Elementwise ops of one input, which keep its shape: neg, abs, square, exp, log, sqrt, relu,
sigmoid, tanh, clip, identity, cast."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ..arrays import describe, is_number
from .base import REQUIRED, Attr, AttrError, BaseLayer, GradBuilder, Shape, divide, register


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.neg(dout),)


@register
class AbsLayer(UnaryLayer):
    """Absolute value: out = |x|; the gradient at x = 0 is 0, as in PyTorch."""

    op = "abs"
    formula = "|{x}|"
    grad_formulas = ("dout * sign({x}) (0 where {x} = 0)",)

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.abs(x)

    def backward(self, dout: Any) -> tuple[Any]:
        return (dout * np.sign(self.x),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.mul(dout, g.apply("sign", args[0])),)


@register
class SquareLayer(UnaryLayer):
    """Square: out = x * x."""

    op = "square"
    formula = "{x}**2"
    grad_formulas = ("dout * 2 * {x}",)

    def forward(self, x: Any) -> Any:
        self.x = x
        return x * x

    def backward(self, dout: Any) -> tuple[Any]:
        return (dout * 2.0 * self.x,)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.mul(g.mul(dout, g.number(2)), args[0]),)


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.mul(dout, out),)


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.div(dout, args[0]),)


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.div(dout, g.mul(g.number(2), out)),)


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.mul(dout, g.apply("greater", args[0], g.number(0))),)


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.mul(g.mul(dout, out), g.sub(g.number(1), out)),)


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.mul(dout, g.sub(g.number(1), g.mul(out, out))),)


def read_bound(value: Any) -> float | None:
    """A number (not NaN), or null for no bound."""
    if value is None:
        return None
    if is_number(value):
        try:
            bound = float(value)
        except OverflowError:  # an integer too large for a float: beyond every float, as infinity is
            bound = math.copysign(math.inf, value)
        if not math.isnan(bound):
            return bound
    raise ValueError(f"must be a number or null, got {describe(value)}")


def _bound_text(bound: float) -> str:
    """A bound as written: 2, not 2.0."""
    text = repr(bound)
    return text[:-2] if text.endswith(".0") else text


@register
class ClipLayer(UnaryLayer):
    """x limited to [min, max]: out = min(max(x, min), max); a null bound does not limit.

    dout passes where min <= x <= max, at the bounds too (as PyTorch's clamp), and is 0 elsewhere.
    """

    op = "clip"
    attrs = {"min": Attr(read_bound, None, "the lower bound, a number, or null (the default) for none"),
             "max": Attr(read_bound, None, "the upper bound, a number, or null (the default) for none")}
    formula = "clip({x}, min={min}, max={max})"
    grad_formulas = ("dout where {min} <= {x} <= {max}, else 0",)
    min: float | None
    max: float | None

    @classmethod
    def check_attrs(cls, values: Mapping[str, Any]) -> None:
        low, high = values["min"], values["max"]
        if low is not None and high is not None and low > high:
            raise AttrError(f"'min' ({_bound_text(low)}) is greater than 'max' ({_bound_text(high)})", "min", "max")

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.clip(x, self.min, self.max)

    def backward(self, dout: Any) -> tuple[Any]:
        x = self.x
        inside = np.ones(np.shape(x), dtype=bool)
        if self.min is not None:
            inside &= x >= self.min
        if self.max is not None:
            inside &= x <= self.max
        return (np.where(inside, dout, 0.0),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.mul(dout, g.apply("equal", out, args[0])),)


CAST_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")


def read_dtype(value: Any) -> str:
    """The name of a dtype cast can make."""
    if isinstance(value, str) and value in CAST_DTYPES:
        return value
    raise ValueError(f"must be one of {', '.join(CAST_DTYPES)}, got {describe(value)}")


@register
class CastLayer(UnaryLayer):
    """x's values in another dtype: out = x.astype(dtype). To a float type the gradient is dout in
    x's dtype; to an integer type (whole numbers, truncated toward 0) it is 0, a step function's."""

    op = "cast"
    attrs = {"dtype": Attr(read_dtype, REQUIRED, f"the dtype of the result, one of {', '.join(CAST_DTYPES)}")}
    formula = "{x} as {dtype}"
    grad_formulas = ("dout as the dtype of {x} (0 for an integer dtype)",)
    dtype: str

    def forward(self, x: Any) -> Any:
        self.x = x
        with np.errstate(invalid="ignore", over="ignore"):
            return np.asarray(x).astype(self.dtype)

    def backward(self, dout: Any) -> tuple[Any]:
        x_dtype = np.result_type(self.x)
        if np.dtype(self.dtype).kind != "f":
            return (np.zeros(np.shape(self.x), x_dtype if x_dtype.kind == "f" else np.result_type(dout)),)
        grad = np.asarray(dout).astype(x_dtype) if x_dtype.kind == "f" else np.asarray(dout)
        return (float(grad) if type(self.x) is float else grad,)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        # To a float type, dout passes through (the graph computes in the inputs' float type); to an
        # integer type, the gradient of a step function: 0.
        return (dout if np.dtype(self.dtype).kind == "f" else None,)

    def discrete_args(self, *shapes: Shape) -> tuple[int, ...]:
        return () if np.dtype(self.dtype).kind == "f" else (0,)
