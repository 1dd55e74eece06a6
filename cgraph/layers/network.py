"""Matrix products and the book's network layers: matmul, affine, softmax, softmax_with_loss."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import BaseLayer, GradBuilder, Shape, broadcast_shapes, counted, register, shape_of, sum_to, unbroadcast

def matmul_shape(xs: Shape, ys: Shape, names: tuple[str, str] = ("{x}", "{y}")) -> Shape:
    """The shape of x @ y by numpy's rules; ValueError, naming the inputs by ``names``, where they do not fit."""
    x, y = names
    for name, shape in ((x, xs), (y, ys)):
        if not shape:
            raise ValueError(f"{name} is 0-d; a matrix product needs at least 1 dimension")
    rows_y = ys[0] if len(ys) == 1 else ys[-2]
    if xs[-1] != rows_y:
        axis = "its length" if len(ys) == 1 else "its second-to-last axis"
        raise ValueError(f"{x} has {counted(xs[-1], 'column')} (its last axis) but {y} has {counted(rows_y, 'row')} ({axis})")
    try:
        batch = broadcast_shapes(xs[:-2], ys[:-2])
    except ValueError:
        raise ValueError(f"the stacked axes {xs[:-2]} of {x} and {ys[:-2]} of {y} do not broadcast") from None
    return batch + xs[-2:-1] + (ys[-1:] if len(ys) > 1 else ())


def matmul_work(xs: Shape, ys: Shape) -> int:
    """Multiply-adds of x @ y and of its two gradients' products: 3 * (elements of x @ y) * x's last axis."""
    return 3 * math.prod(matmul_shape(xs, ys)) * xs[-1]


def matmul_grads(x: np.ndarray, y: np.ndarray, dout: Any, need_x: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """The gradients of x and y for out = x @ y, for numpy's 1-D, 2-D and stacked cases; None
    for x's where not ``need_x``."""
    x2 = x[None, :] if x.ndim == 1 else x  # numpy's matmul makes 1-D x a row and 1-D y a column
    y2 = y[:, None] if y.ndim == 1 else y
    d2 = np.asarray(dout)
    if y.ndim == 1:
        d2 = d2[..., None]
    if x.ndim == 1:
        d2 = d2[..., None, :]
    dx = sum_to(np.matmul(d2, np.swapaxes(y2, -1, -2)), x2.shape).reshape(x.shape) if need_x else None
    dy = sum_to(np.matmul(np.swapaxes(x2, -1, -2), d2), y2.shape).reshape(y.shape)
    return dx, dy


def matmul_grad_graph(g: GradBuilder, x: str, y: str, dout: str) -> tuple[str | None, str | None]:
    """:func:`matmul_grads` as nodes."""
    xs, ys = g.shape(x), g.shape(y)
    if len(xs) == 1 and len(ys) == 1:
        return g.mul(dout, y), g.mul(dout, x)  # the dot product: dout is 0-d
    x2 = g.reshape(x, (1, *xs)) if len(xs) == 1 else x
    y2 = g.reshape(y, (*ys, 1)) if len(ys) == 1 else y
    d2 = g.shape(dout)
    if len(ys) == 1:
        d2 = (*d2, 1)
    if len(xs) == 1:
        d2 = (*d2[:-1], 1, d2[-1])
    d2 = g.reshape(dout, d2)
    dx = g.sum_to(g.apply("gemm", d2, y2, trans_y=True), g.shape(x2))
    dy = g.sum_to(g.apply("gemm", x2, d2, trans_x=True), g.shape(y2))
    return g.reshape(dx, xs), g.reshape(dy, ys)


def matmul_rules(xs: Shape, ys: Shape, x: str = "{x}", y: str = "{y}") -> tuple[str, str]:
    """The gradient rules of x @ y for x of shape ``xs`` and y of ``ys``, as numpy's 1-D cases apply them:
    a 1-D x is a row and a 1-D y a column, and stacked axes are summed where an input was broadcast along them."""
    if len(xs) == 1 and len(ys) == 1:
        return f"dout * {y}", f"dout * {x}"  # the dot product: dout is 0-d
    dx = f"outer(dout, {y})" if len(ys) == 1 else f"dout @ {y}.T"
    dy = f"outer({x}, dout)" if len(xs) == 1 else f"{x}.T @ dout"
    stacks = broadcast_shapes(xs[:-2], ys[:-2])
    if xs[:-2] != stacks:
        dx += ", summed over the stacked axes"
    if ys[:-2] != stacks:
        dy += ", summed over the stacked axes"
    return dx, dy


@register
class MatmulLayer(BaseLayer):
    """Matrix product as numpy's matmul: out = x @ y, for 1-D and 2-D inputs and stacks of matrices."""

    op = "matmul"
    formula = "{x} @ {y}"
    grad_formulas = ("dout @ {y}.T", "{x}.T @ dout")

    def out_shape(self, *shapes: Shape) -> Shape:
        return matmul_shape(*shapes)

    def work(self, *shapes: Shape) -> int:
        return matmul_work(*shapes)

    def applied_rules(self, *shapes: Shape) -> tuple[str, tuple[str, ...]]:
        return self.formula, matmul_rules(*shapes)

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return np.matmul(x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return matmul_grads(self.x, self.y, dout)

    def partial_backward_step(self, shapes: tuple[Shape, ...], out_shape: Shape,
                              needed: tuple[bool, ...]) -> Any:
        if needed[0]:
            return self.backward
        return lambda dout: matmul_grads(self.x, self.y, dout, need_x=False)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return matmul_grad_graph(g, *args, dout)


@register
class AffineLayer(BaseLayer):
    """The book's Affine layer: out = x @ W + b, for a batch x (N, D), weights W (D, M) and a bias b (M,).

    x @ W follows numpy's matmul (x may be 1-D or a stack), and b broadcasts to the product.
    """

    op = "affine"
    args = ("x", "W", "b")
    formula = "{x} @ {W} + {b}"
    grad_formulas = ("dout @ {W}.T", "{x}.T @ dout", "dout")
    broadcast_args = ("b",)

    def out_shape(self, *shapes: Shape) -> Shape:
        xs, ws, bs = shapes
        product = matmul_shape(xs, ws, ("{x}", "{W}"))
        try:
            return broadcast_shapes(product, bs)
        except ValueError:
            raise ValueError(f"the bias {{b}} does not broadcast to the shape {product} of {{x}} @ {{W}}") from None

    def work(self, *shapes: Shape) -> int:
        return matmul_work(shapes[0], shapes[1])

    def applied_rules(self, *shapes: Shape) -> tuple[str, tuple[str, ...]]:
        return self.formula, (*matmul_rules(shapes[0], shapes[1], "{x}", "{W}"), "dout")

    def forward(self, x: Any, W: Any, b: Any) -> Any:
        self.x, self.W, self.b = x, W, b
        product = np.matmul(x, W)
        self.product_shape = product.shape
        return product + b

    def backward(self, dout: Any, need_x: bool = True) -> tuple[Any, Any, Any]:
        dx, dW = matmul_grads(self.x, self.W, sum_to(dout, self.product_shape), need_x)
        return dx, dW, unbroadcast(dout, self.b)

    def partial_backward_step(self, shapes: tuple[Shape, ...], out_shape: Shape,
                              needed: tuple[bool, ...]) -> Any:
        if needed[0]:
            return self.backward
        return lambda dout: self.backward(dout, need_x=False)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        x, W, b = args
        product = matmul_shape(g.shape(x), g.shape(W))
        return (*matmul_grad_graph(g, x, W, g.sum_to(dout, product)), g.sum_to(dout, g.shape(b)))


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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        total = g.apply("sum", g.mul(dout, out), axis=-1, keepdims=True)
        return (g.mul(out, g.sub(dout, total)),)


def class_indices(t: Any, classes: int) -> np.ndarray:
    """Labels given as class numbers (floats that are whole numbers in [0, classes)) as integers."""
    t = np.asarray(t)
    valid = np.isfinite(t) & (t == np.round(t)) & (t >= 0) & (t < classes)
    if not valid.all():
        where = tuple(int(i) for i in np.argwhere(~valid)[0])
        at = f" at index {list(where)}" if where else ""
        found = repr(float(t[where]))  # every digit: 2.000002 is not a whole number
        raise ValueError(
            f"the labels {{t}} are class indices, which must be whole numbers from 0 to {classes - 1}; "
            f"found {found.removesuffix('.0')}{at}"
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

    def discrete_args(self, *shapes: Shape) -> tuple[int, ...]:
        return (1,) if shapes[1] != shapes[0] else ()  # class indices, not one-hot

    def applied_rules(self, *shapes: Shape) -> tuple[str, tuple[str, ...]]:
        if shapes[1] == shapes[0]:
            return self.formula, ("dout * (softmax({x}) * sum({t} along the last axis) - {t}) / N",
                                  "dout * -log(softmax({x})) / N")
        return "-sum(log(softmax({x})) at the classes {t}) / N, N rows", ("dout * (softmax({x}) - onehot({t})) / N", "0")

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

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        x, t = args
        xs, ts = g.shape(x), g.shape(t)
        # -dout / N times log_softmax's gradient of t: t - softmax(x) * sum(t), backward's
        # dout / N * (softmax(x) * sum(t) - t) with both signs flipped (the same numbers)
        scale = g.div(dout, g.number(-math.prod(xs[:-1])))
        log_p = g.apply("log_softmax", x)
        if ts == xs:
            return g.mul(scale, g.apply("log_softmax_grad", t, log_p)), g.mul(scale, log_p)
        return g.mul(scale, g.apply("log_softmax_grad", g.apply("one_hot", t, classes=xs[-1]), log_p)), None
