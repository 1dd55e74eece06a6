"""Ops that gradient graphs are made of, each an ordinary op with its own rules, so a gradient graph
can be differentiated again: sum_to and broadcast_to (broadcasting and its reverse), scatter (an
index's reverse), greater and sign (masks at kinks), one_hot, log_softmax and its gradient
log_softmax_grad, zeros_like, identity, and gemm (a matrix product of transposed inputs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays import describe
from .base import (
    REQUIRED,
    Attr,
    BaseLayer,
    GradBuilder,
    Shape,
    _is_int,
    broadcast_shapes,
    read_bool,
    read_shape,
    register,
    shape_of,
    sum_to,
    unbroadcast,
)
from .network import _check_classes, _log_softmax, class_indices, matmul_grads, matmul_shape, matmul_work
from .shape import KEY_DOC, IndexLayer, parse_key, read_key

SHAPE_DOC = "the shape, a list of non-negative integers like [3, 1]"


def _target(shape: tuple[int, ...]) -> tuple[int, ...]:
    if -1 in shape:
        raise ValueError(f"the shape {list(shape)} has a -1; give every size")
    return shape


@register
class SumToLayer(BaseLayer):
    """x summed over the axes along which a value of ``shape`` would be broadcast to x's shape
    (DeZero's sum_to): the reverse of broadcast_to, as a broadcast input's gradient is summed."""

    op = "sum_to"
    args = ("x",)
    attrs = {"shape": Attr(read_shape, REQUIRED, SHAPE_DOC + ", which broadcasts to x's shape")}
    formula = "{x} summed to the shape {shape}"
    grad_formulas = ("broadcast_to(dout, shape of {x})",)
    shape: tuple[int, ...]

    def out_shape(self, *shapes: Shape) -> Shape:
        target = _target(self.shape)
        try:
            fits = broadcast_shapes(target, shapes[0]) == shapes[0]
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"the shape {list(target)} does not broadcast to the shape {shapes[0]} of {{x}}")
        return target

    def forward(self, x: Any) -> Any:
        self.x = x
        return sum_to(x, self.shape)

    def backward(self, dout: Any) -> tuple[Any]:
        return (_broadcast(dout, shape_of(self.x)),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.broadcast_to(dout, g.shape(args[0])),)


def _broadcast(value: Any, shape: Shape) -> Any:
    return value if shape_of(value) == shape else np.broadcast_to(value, shape)


@register
class BroadcastToLayer(BaseLayer):
    """x repeated along new leading axes and along its axes of size 1, to ``shape``, as numpy broadcasts."""

    op = "broadcast_to"
    args = ("x",)
    attrs = {"shape": Attr(read_shape, REQUIRED, SHAPE_DOC + " to which x broadcasts")}
    formula = "{x} broadcast to the shape {shape}"
    grad_formulas = ("sum_to(dout, shape of {x})",)
    shape: tuple[int, ...]

    def out_shape(self, *shapes: Shape) -> Shape:
        target = _target(self.shape)
        try:
            fits = broadcast_shapes(shapes[0], target) == target
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{{x}} of shape {shapes[0]} does not broadcast to the shape {list(target)}")
        return target

    def forward(self, x: Any) -> Any:
        self.x = x
        return _broadcast(x, self.shape)

    def backward(self, dout: Any) -> tuple[Any]:
        return (unbroadcast(dout, self.x),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.sum_to(dout, g.shape(args[0])),)


@register
class ScatterLayer(BaseLayer):
    """Zeros of ``shape`` with x put where ``key`` indexes them: the reverse of index, as the
    gradient of x[key] is dout put back in zeros of x's shape."""

    op = "scatter"
    args = ("x",)
    attrs = {"key": Attr(read_key, REQUIRED, KEY_DOC), "shape": Attr(read_shape, REQUIRED, SHAPE_DOC)}
    formula = "zeros of shape {shape} with {x} at [{key}]"
    grad_formulas = ("dout[{key}]",)
    key: str
    shape: tuple[int, ...]

    def out_shape(self, *shapes: Shape) -> Shape:
        target = _target(self.shape)
        part = IndexLayer(key=self.key).out_shape(target)
        if part != shapes[0]:
            raise ValueError(f"[{self.key}] of the shape {list(target)} has shape {part}, not the shape {shapes[0]} of {{x}}")
        return target

    def forward(self, x: Any) -> Any:
        self.x = x
        out = np.zeros(self.shape, np.result_type(x))
        out[parse_key(self.key)] = x
        return out

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.asarray(dout)[parse_key(self.key)],)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.apply("index", dout, key=self.key),)


def _zeros(value: Any) -> Any:
    """0 in the shape and dtype of ``value``."""
    return 0.0 if type(value) is float else np.zeros(shape_of(value), np.result_type(value))


@register
class GreaterLayer(BaseLayer):
    """1 where x > y, else 0, in the inputs' dtype (a step: its gradients are 0). Broadcasts."""

    op = "greater"
    formula = "1 where {x} > {y}, else 0"
    grad_formulas = ("0", "0")

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        if type(x) is float and type(y) is float:
            return float(x > y)
        return np.greater(x, y).astype(np.result_type(x, y))

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return _zeros(self.x), _zeros(self.y)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return None, None


@register
class SignLayer(BaseLayer):
    """The sign of x: 1, 0 or -1 (a step: its gradient is 0, as in PyTorch)."""

    op = "sign"
    args = ("x",)
    formula = "sign({x})"
    grad_formulas = ("0",)

    def out_shape(self, *shapes: Shape) -> Shape:
        return shapes[0]

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.sign(x)

    def backward(self, dout: Any) -> tuple[Any]:
        return (_zeros(self.x),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (None,)


@register
class ZerosLikeLayer(BaseLayer):
    """0 in x's shape and dtype (the gradient of what does not depend on its input)."""

    op = "zeros_like"
    args = ("x",)
    formula = "0 in the shape of {x}"
    grad_formulas = ("0",)

    def out_shape(self, *shapes: Shape) -> Shape:
        return shapes[0]

    def forward(self, x: Any) -> Any:
        self.x = x
        return _zeros(x)

    def backward(self, dout: Any) -> tuple[Any]:
        return (_zeros(self.x),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (None,)


@register
class IdentityLayer(BaseLayer):
    """The input unchanged: out = x."""

    op = "identity"
    args = ("x",)
    formula = "{x}"
    grad_formulas = ("dout",)

    def out_shape(self, *shapes: Shape) -> Shape:
        return shapes[0]

    def forward(self, x: Any) -> Any:
        self.x = x
        return x

    def backward(self, dout: Any) -> tuple[Any]:
        return (dout,)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (dout,)


def _read_classes(value: Any) -> int:
    """A number of classes, at least 1."""
    if _is_int(value) and value >= 1:
        return int(value)
    raise ValueError(f"must be an integer of at least 1, got {describe(value)}")


@register
class OneHotLayer(BaseLayer):
    """Class indices t (whole numbers in [0, classes)) as one-hot rows: out has t's shape plus a
    last axis of ``classes``, in t's dtype. The indices are discrete: their gradient is 0."""

    op = "one_hot"
    args = ("t",)
    attrs = {"classes": Attr(_read_classes, REQUIRED, "the number of classes, the length of the new last axis")}
    formula = "1 at the class {t} along a new last axis of {classes}, else 0"
    grad_formulas = ("0",)
    classes: int

    def out_shape(self, *shapes: Shape) -> Shape:
        return (*shapes[0], self.classes)

    def discrete_args(self, *shapes: Shape) -> tuple[int, ...]:
        return (0,)

    def forward(self, t: Any) -> Any:
        self.t = t
        index = class_indices(t, self.classes)
        out = np.zeros((*index.shape, self.classes), np.result_type(t))
        np.put_along_axis(out, index[..., None], 1.0, axis=-1)
        return out

    def backward(self, dout: Any) -> tuple[Any]:
        return (_zeros(self.t),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (None,)


@register
class LogSoftmaxLayer(BaseLayer):
    """log(softmax(x)) along the last axis: out = x - log(sum(exp(x))), computed without overflow."""

    op = "log_softmax"
    args = ("x",)
    formula = "{x} - log(sum(exp({x}) along the last axis))"
    grad_formulas = ("dout - exp({out}) * sum(dout along the last axis)",)

    def out_shape(self, *shapes: Shape) -> Shape:
        _check_classes(shapes[0], "log_softmax")
        return shapes[0]

    def forward(self, x: Any) -> Any:
        self.x = x
        self.out = _log_softmax(x)
        return self.out

    def backward(self, dout: Any) -> tuple[Any]:
        return (_log_softmax_grad(dout, self.out),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.apply("log_softmax_grad", dout, out),)


def _log_softmax_grad(g: Any, y: Any) -> Any:
    return g - np.exp(y) * np.sum(g, axis=-1, keepdims=True)


@register
class LogSoftmaxGradLayer(BaseLayer):
    """log_softmax's gradient as one op (PyTorch's _log_softmax_backward_data): out = g - exp(y) *
    sum(g along the last axis), for the gradient g of log_softmax's output y. With g = t it is
    t - softmax(x) * sum(t), the negated gradient of softmax_with_loss for labels t."""

    op = "log_softmax_grad"
    args = ("g", "y")
    formula = "{g} - exp({y}) * sum({g} along the last axis)"
    grad_formulas = ("dout - sum(dout * exp({y}) along the last axis)",
                     "-dout * exp({y}) * sum({g} along the last axis)")

    def out_shape(self, *shapes: Shape) -> Shape:
        _check_classes(shapes[1], "log_softmax_grad")
        if shapes[0] != shapes[1]:
            raise ValueError(f"{{g}} has the shape {shapes[0]}, not the shape {shapes[1]} of {{y}}")
        return shapes[0]

    def forward(self, g: Any, y: Any) -> Any:
        self.g, self.y = g, y
        return _log_softmax_grad(g, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        scaled = dout * np.exp(self.y)
        return (dout - np.sum(scaled, axis=-1, keepdims=True),
                -(scaled * np.sum(self.g, axis=-1, keepdims=True)))

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        grad, y = args
        scaled = g.mul(dout, g.apply("exp", y))
        return (g.sub(dout, g.apply("sum", scaled, axis=-1, keepdims=True)),
                g.neg(g.mul(scaled, g.apply("sum", grad, axis=-1, keepdims=True))))



def _swapped_shape(shape: Shape, swap: bool) -> Shape:
    return (*shape[:-2], shape[-1], shape[-2]) if swap else shape


def _swapped(x: Any, swap: bool) -> Any:
    return np.swapaxes(x, -1, -2) if swap else x


@register
class GemmLayer(BaseLayer):
    """A matrix product of inputs of 2 or more dimensions, each transposed (its last two axes swapped)
    where ``trans_x`` or ``trans_y`` says so, as BLAS's gemm: the products of matmul's gradients
    (dout @ y.T, x.T @ dout) without transposed copies. Stacked axes broadcast as in matmul."""

    op = "gemm"
    attrs = {"trans_x": Attr(read_bool, False, "true to use x with its last two axes swapped"),
             "trans_y": Attr(read_bool, False, "true to use y with its last two axes swapped")}
    formula = "op({x}) @ op({y}), op swapping the last two axes where trans_x={trans_x}, trans_y={trans_y}"
    grad_formulas = ("dout @ op({y}).T, transposed where trans_x", "op({x}).T @ dout, transposed where trans_y")
    trans_x: bool
    trans_y: bool

    def out_shape(self, *shapes: Shape) -> Shape:
        for role, shape in zip(self.args, shapes):
            if len(shape) < 2:
                raise ValueError(f"{{{role}}} has {len(shape)} dimension{'s' * (len(shape) != 1)}; gemm takes "
                                 "matrices or stacks of them (use matmul for vectors)")
        return matmul_shape(_swapped_shape(shapes[0], self.trans_x), _swapped_shape(shapes[1], self.trans_y))

    def work(self, *shapes: Shape) -> int:
        return matmul_work(_swapped_shape(shapes[0], self.trans_x), _swapped_shape(shapes[1], self.trans_y))

    def applied_rules(self, *shapes: Shape) -> tuple[str, tuple[str, ...]]:
        x = "{x}.T" if self.trans_x else "{x}"
        y = "{y}.T" if self.trans_y else "{y}"
        dx = f"{y} @ dout.T" if self.trans_x else f"dout @ {y}.T"
        dy = f"dout.T @ {x}" if self.trans_y else f"{x}.T @ dout"
        return f"{x} @ {y}", (dx.replace(".T.T", ""), dy.replace(".T.T", ""))

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return np.matmul(_swapped(x, self.trans_x), _swapped(y, self.trans_y))

    def backward(self, dout: Any) -> tuple[Any, Any]:
        da, db = matmul_grads(_swapped(self.x, self.trans_x), _swapped(self.y, self.trans_y), dout)
        return _swapped(da, self.trans_x), _swapped(db, self.trans_y)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        x, y = args
        tx, ty = self.trans_x, self.trans_y
        dx = g.apply("gemm", y, dout, trans_x=ty, trans_y=True) if tx else g.apply("gemm", dout, y, trans_y=not ty)
        dy = g.apply("gemm", dout, x, trans_x=True, trans_y=tx) if ty else g.apply("gemm", x, dout, trans_x=not tx)
        return g.sum_to(dx, g.shape(x)), g.sum_to(dy, g.shape(y))
