"""Elementwise ops of two inputs, which broadcast them: mul, add, sub, div, pow, maximum, minimum, equal."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BaseLayer, divide, register, unbroadcast

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


@register
class MinimumLayer(BaseLayer):
    """Elementwise minimum: out = min(x, y); where x = y the gradient is shared half and half."""

    op = "minimum"
    formula = "minimum({x}, {y})"
    grad_formulas = ("dout where {x} < {y}, dout / 2 where {x} = {y}, else 0",
                     "dout where {y} < {x}, dout / 2 where {x} = {y}, else 0")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return np.minimum(x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        x, y = self.x, self.y
        tie = np.where(x == y, 0.5 * dout, 0.0)
        return unbroadcast(np.where(x < y, dout, tie), x), unbroadcast(np.where(y < x, dout, tie), y)


@register
class EqualLayer(BaseLayer):
    """Elementwise equality: out = 1 where x = y, else 0, in the inputs' dtype. A step function:
    its gradients are 0."""

    op = "equal"
    formula = "1 where {x} = {y}, else 0"
    grad_formulas = ("0", "0")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        if type(x) is float and type(y) is float:
            return float(x == y)
        return np.equal(x, y).astype(np.result_type(x, y))

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return _zeros(self.x), _zeros(self.y)


def _zeros(value: Any) -> Any:
    """0 in the shape and dtype of ``value``."""
    return 0.0 if type(value) is float else np.zeros(value.shape, value.dtype)
