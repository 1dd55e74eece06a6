"""Elementwise ops of one input, which keep its shape: neg, exp, log, sqrt, relu, sigmoid, tanh."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BaseLayer, Shape, divide, register

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
