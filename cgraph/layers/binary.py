"""Elementwise ops of two inputs, which broadcast them: mul, add, sub, div, pow, maximum, minimum, equal."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BaseLayer, GradBuilder, Shape, divide, register, summing_to, unbroadcast


class BroadcastLayer(BaseLayer):
    """An elementwise op of two inputs x and y, which broadcast to the output's shape.

    ``grads(dout)`` gives dx and dy with the output's shape; ``backward`` sums each back
    over the axes along which its input was broadcast. Where the shapes are known
    beforehand, ``backward_step`` sums only the gradients of inputs that were broadcast.
    """

    def grads(self, dout: Any) -> tuple[Any, Any]:
        """dx and dy before summing over broadcast axes."""
        raise NotImplementedError

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx, dy = self.grads(dout)
        return unbroadcast(dx, self.x), unbroadcast(dy, self.y)

    def backward_step(self, shapes: tuple[Shape, ...], out_shape: Shape) -> Any:
        if type(self).backward is not BroadcastLayer.backward:
            return self.backward  # a subclass with its own backward: use that
        sum_x, sum_y = (None if shape == out_shape else summing_to(out_shape, shape) for shape in shapes)
        grads = self.grads
        if sum_x is None and sum_y is None:
            return grads
        if sum_x is None:
            return lambda dout: _summed_y(grads(dout), sum_y)
        if sum_y is None:
            return lambda dout: _summed_x(grads(dout), sum_x)
        return lambda dout: _summed_both(grads(dout), sum_x, sum_y)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        dx, dy = self.full_grad_graph(g, *args, out, dout)
        return g.sum_to(dx, g.shape(args[0])), g.sum_to(dy, g.shape(args[1]))

    def full_grad_graph(self, g: GradBuilder, x: str, y: str, out: str, dout: str) -> tuple[str | None, str | None]:
        """dx and dy as nodes, before summing over broadcast axes (see ``grads``)."""
        raise NotImplementedError


def _summed_x(grads: tuple[Any, Any], sum_x: Any) -> tuple[Any, Any]:
    return sum_x(grads[0]), grads[1]


def _summed_y(grads: tuple[Any, Any], sum_y: Any) -> tuple[Any, Any]:
    return grads[0], sum_y(grads[1])


def _summed_both(grads: tuple[Any, Any], sum_x: Any, sum_y: Any) -> tuple[Any, Any]:
    return sum_x(grads[0]), sum_y(grads[1])

@register
class MulLayer(BroadcastLayer):
    """Elementwise product: out = x * y."""

    __slots__ = ("x", "y")
    op = "mul"
    formula = "{x} * {y}"
    grad_formulas = ("dout * {y}", "dout * {x}")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x * y

    def grads(self, dout: Any) -> tuple[Any, Any]:
        return dout * self.y, dout * self.x

    def full_grad_graph(self, g: GradBuilder, x: str, y: str, out: str, dout: str) -> tuple[str | None, str | None]:
        return g.mul(dout, y), g.mul(dout, x)


@register
class AddLayer(BroadcastLayer):
    """Elementwise sum: out = x + y."""

    __slots__ = ("x", "y")
    op = "add"
    formula = "{x} + {y}"
    grad_formulas = ("dout * 1", "dout * 1")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x + y

    def grads(self, dout: Any) -> tuple[Any, Any]:
        return dout, dout

    def full_grad_graph(self, g: GradBuilder, x: str, y: str, out: str, dout: str) -> tuple[str | None, str | None]:
        return dout, dout


@register
class SubLayer(BroadcastLayer):
    """Elementwise difference: out = x - y."""

    op = "sub"
    formula = "{x} - {y}"
    grad_formulas = ("dout * 1", "-dout")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x - y

    def grads(self, dout: Any) -> tuple[Any, Any]:
        return dout, -dout

    def full_grad_graph(self, g: GradBuilder, x: str, y: str, out: str, dout: str) -> tuple[str | None, str | None]:
        return dout, g.neg(dout)


@register
class DivLayer(BroadcastLayer):
    """Elementwise quotient: out = x / y; division by 0 gives inf or NaN, as in numpy."""

    op = "div"
    formula = "{x} / {y}"
    grad_formulas = ("dout / {y}", "-dout * {x} / {y}**2")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        self.out = divide(x, y)
        return self.out

    def grads(self, dout: Any) -> tuple[Any, Any]:
        dx = divide(dout, self.y)  # and -dout * x / y**2 = -(dout / y) * (x / y)
        return dx, -dx * self.out

    def full_grad_graph(self, g: GradBuilder, x: str, y: str, out: str, dout: str) -> tuple[str | None, str | None]:
        dx = g.div(dout, y)
        return dx, g.mul(g.neg(dx), out)


@register
class PowLayer(BroadcastLayer):
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

    def grads(self, dout: Any) -> tuple[Any, Any]:
        x, y = self.x, self.y
        dx = np.where(y == 0, 0.0, dout * y * np.power(x, y - 1))
        dy = np.where((x == 0) & (y >= 0), 0.0, dout * self.out * np.log(x))
        return dx, dy

    def full_grad_graph(self, g: GradBuilder, x: str, y: str, out: str, dout: str) -> tuple[str | None, str | None]:
        dx = None if g.constant(y) == 0 else g.mul(g.mul(dout, y), g.apply("pow", x, g.sub(y, g.number(1))))
        return dx, g.mul(g.mul(dout, out), g.apply("log", x))


@register
class MaximumLayer(BroadcastLayer):
    """Elementwise maximum: out = max(x, y); where x = y the gradient is shared half and half."""

    op = "maximum"
    formula = "maximum({x}, {y})"
    grad_formulas = ("dout where {x} > {y}, dout / 2 where {x} = {y}, else 0",
                     "dout where {y} > {x}, dout / 2 where {x} = {y}, else 0")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return np.maximum(x, y)

    def grads(self, dout: Any) -> tuple[Any, Any]:
        x, y = self.x, self.y
        tie = np.where(x == y, 0.5 * dout, 0.0)
        return np.where(x > y, dout, tie), np.where(y > x, dout, tie)

    def full_grad_graph(self, g: GradBuilder, x: str, y: str, out: str, dout: str) -> tuple[str | None, str | None]:
        half = g.mul(g.apply("equal", x, y), g.number(0.5))
        return (g.mul(dout, g.add(g.apply("greater", x, y), half)),
                g.mul(dout, g.add(g.apply("greater", y, x), half)))


@register
class MinimumLayer(BroadcastLayer):
    """Elementwise minimum: out = min(x, y); where x = y the gradient is shared half and half."""

    op = "minimum"
    formula = "minimum({x}, {y})"
    grad_formulas = ("dout where {x} < {y}, dout / 2 where {x} = {y}, else 0",
                     "dout where {y} < {x}, dout / 2 where {x} = {y}, else 0")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return np.minimum(x, y)

    def grads(self, dout: Any) -> tuple[Any, Any]:
        x, y = self.x, self.y
        tie = np.where(x == y, 0.5 * dout, 0.0)
        return np.where(x < y, dout, tie), np.where(y < x, dout, tie)

    def full_grad_graph(self, g: GradBuilder, x: str, y: str, out: str, dout: str) -> tuple[str | None, str | None]:
        half = g.mul(g.apply("equal", x, y), g.number(0.5))
        return (g.mul(dout, g.add(g.apply("greater", y, x), half)),
                g.mul(dout, g.add(g.apply("greater", x, y), half)))


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return None, None


def _zeros(value: Any) -> Any:
    """0 in the shape and dtype of ``value``."""
    return 0.0 if type(value) is float else np.zeros(value.shape, value.dtype)
