"""The ops of the convolutional layers' gradients, each an ordinary op with its own rules, so a
gradient graph through a convnet can be differentiated again: conv2d_transpose (conv2d's input
gradient), conv2d_filter_grad (its filters' gradient), max_pool2d_grad and max_pool2d_select
(dout to each window's maximum, and back), avg_pool2d_grad (dout shared over each window).

The three convolution ops are linear in each input, so each one's gradients are the other two
(and conv2d); likewise the max-pooling pair, and avg_pool2d with avg_pool2d_grad.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Attr, BaseLayer, GradBuilder, Shape, counted, read_bool, register
from .conv import (
    CEIL_DOC,
    AvgPool2dLayer,
    Conv2dLayer,
    MaxPool2dLayer,
    Pool2dLayer,
    _check_images,
    _cropped,
    _offsets,
    _plain,
    col2im,
    filter_product,
    im2col,
    image_columns,
    pair,
)


def _no_bias(g: GradBuilder, filters: int) -> str:
    """A bias of zeros for ``filters`` filters: conv2d without one."""
    return g.broadcast_to(g.number(0), (filters,))


class _ConvolutionGrad(BaseLayer):
    """An op with conv2d's attributes, stride and pad."""

    attrs = Conv2dLayer.attrs
    stride: Any
    pad: Any

    def _attrs(self) -> dict[str, Any]:
        return {"stride": _plain(self.stride), "pad": _plain(self.pad)}

    def _conv2d(self) -> Conv2dLayer:
        return Conv2dLayer(stride=self.stride, pad=self.pad)



def _size(axis: str, value: int, what: str) -> int:
    if value < 1:
        raise ValueError(f"the {what} along {axis} would be {value}; the stride and pad do not fit these shapes")
    return value


@register
class Conv2dTransposeLayer(_ConvolutionGrad):
    """The transposed convolution: images x (N, FN, OH, OW) through filters W (FN, C, FH, FW) give
    (N, C, H, W), H = (OH − 1)·stride + FH − 2·pad (W likewise), each input pixel adding W's
    filter times itself to the window conv2d would have read it from. conv2d's input gradient."""

    op = "conv2d_transpose"
    args = ("x", "W")
    formula = "col2im({x} @ {W}.reshape(FN, C·FH·FW), stride={stride}, pad={pad})"
    grad_formulas = ("conv2d(dout, {W}, 0, stride={stride}, pad={pad})",
                     "conv2d_filter_grad(dout, {x}, stride={stride}, pad={pad})")

    def out_shape(self, *shapes: Shape) -> Shape:
        xs, ws = shapes
        _check_images(xs, self.op)
        if len(ws) != 4:
            raise ValueError(f"the filters {{W}} must have shape (FN, C, FH, FW), 4 dimensions; {{W}} has {len(ws)}")
        if ws[0] != xs[1]:
            raise ValueError(f"{{x}} has {counted(xs[1], 'channel')} (axis 1 of {xs}) but the filters {{W}} "
                             f"number {ws[0]} (axis 0 of {ws})")
        (sh, sw), (ph, pw) = pair(self.stride), pair(self.pad)
        height = _size("H", (xs[2] - 1) * sh + ws[2] - 2 * ph, "image's height")
        width = _size("W", (xs[3] - 1) * sw + ws[3] - 2 * pw, "image's width")
        return (xs[0], ws[1], height, width)

    def work(self, *shapes: Shape) -> int:
        """One matrix product forward and two of the same size backward, as conv2d."""
        n, _, oh, ow = shapes[0]
        return 3 * n * oh * ow * math.prod(shapes[1])

    def forward(self, x: Any, W: Any) -> Any:
        self.x, self.W = x, W
        shape = self.out_shape(x.shape, W.shape)
        return col2im(np.matmul(W.reshape(W.shape[0], -1).T, image_columns(x)), shape, W.shape[2:], pair(self.stride),
                      pair(self.pad))

    def backward(self, dout: Any) -> tuple[Any, Any]:
        conv = self._conv2d()
        dx = conv.forward(dout, self.W, np.zeros(self.W.shape[0], dout.dtype))
        return dx, _filter_grad(dout, self.x, self.W.shape[2:], self.stride, self.pad)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        x, W = args
        return (g.apply("conv2d", dout, W, _no_bias(g, g.shape(W)[0]), **self._attrs()),
                g.apply("conv2d_filter_grad", dout, x, **self._attrs()))


def _filter_grad(x: np.ndarray, d: np.ndarray, window: Any, stride: Any, pad: Any) -> np.ndarray:
    """The gradient of conv2d's filters for images ``x`` and the output's gradient ``d``."""
    col = im2col(x, tuple(window), pair(stride), pair(pad))
    return filter_product(image_columns(d), col).reshape(d.shape[1], x.shape[1], *window)


@register
class Conv2dFilterGradLayer(_ConvolutionGrad):
    """The filters' gradient of conv2d of images x (N, C, H, W) whose output's gradient is g
    (N, FN, OH, OW): (FN, C, FH, FW), FH = H + 2·pad − (OH − 1)·stride (FW likewise); the sum over
    the batch and the output pixels of g times the window of x each one read."""

    op = "conv2d_filter_grad"
    args = ("x", "g")
    formula = "({g} rows).T @ im2col({x}, stride={stride}, pad={pad}), reshaped to (FN, C, FH, FW)"
    grad_formulas = ("conv2d_transpose({g}, dout, stride={stride}, pad={pad})",
                     "conv2d({x}, dout, 0, stride={stride}, pad={pad})")

    def out_shape(self, *shapes: Shape) -> Shape:
        xs, gs = shapes
        _check_images(xs, self.op)
        if len(gs) != 4:
            raise ValueError(f"the gradient {{g}} must have shape (N, FN, OH, OW), 4 dimensions; {{g}} has {len(gs)}")
        if gs[0] != xs[0]:
            raise ValueError(f"{{x}} holds {counted(xs[0], 'image')} (axis 0 of {xs}) but {{g}} {gs[0]} (axis 0 of {gs})")
        (sh, sw), (ph, pw) = pair(self.stride), pair(self.pad)
        fh = _size("H", xs[2] + 2 * ph - (gs[2] - 1) * sh, "filters' height")
        fw = _size("W", xs[3] + 2 * pw - (gs[3] - 1) * sw, "filters' width")
        return (gs[1], xs[1], fh, fw)

    def work(self, *shapes: Shape) -> int:
        """One matrix product forward and two of the same size backward, as conv2d."""
        n, _, oh, ow = shapes[1]
        return 3 * n * oh * ow * math.prod(self.out_shape(*shapes))

    def forward(self, x: Any, g: Any) -> Any:
        self.x, self.g = x, g
        return _filter_grad(x, g, self.out_shape(x.shape, g.shape)[2:], self.stride, self.pad)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        transpose = Conv2dTransposeLayer(stride=self.stride, pad=self.pad)
        dx = transpose.forward(self.g, dout)
        dg = self._conv2d().forward(self.x, dout, np.zeros(dout.shape[0], dout.dtype))
        return dx, dg

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        x, grad = args
        return (g.apply("conv2d_transpose", grad, dout, **self._attrs()),
                g.apply("conv2d", x, dout, _no_bias(g, g.shape(grad)[1]), **self._attrs()))


class _PoolGrad(Pool2dLayer):
    """An op with the poolings' attributes: size, stride (the size by default) and pad."""

    def _pool_attrs(self) -> dict[str, Any]:
        return {"size": self.size, "stride": self.stride, "pad": self.pad, "floor": self.floor,
                **({"ceil": True} if self.ceil else {})}

    def _check_gradient(self, xs: Shape, gs: Shape) -> None:
        pooled = Pool2dLayer.out_shape(self, xs)
        if gs != pooled:
            raise ValueError(f"{{g}} has shape {gs} but the windows over {{x}} {xs} give {pooled}")


def _pooled(layer: MaxPool2dLayer, x: np.ndarray) -> MaxPool2dLayer:
    layer.forward(x)
    return layer


@register
class MaxPool2dGradLayer(_PoolGrad):
    """max_pool2d's input gradient: g (max_pool2d's output's shape) put at the position of each
    window's maximum in x, in zeros of x's shape (where windows overlap, added up), with max_pool2d's
    rule for ties and NaN. Its gradient is 0 for x (the positions do not move with small steps)."""

    op = "max_pool2d_grad"
    attrs = {**Pool2dLayer.attrs, "ceil": Attr(read_bool, False, CEIL_DOC + " (as the max_pool2d it is of)", quiet=True)}
    args = ("x", "g")
    formula = "{g} to the position of each window's maximum of {x} (size={size}, stride={stride}, pad={pad})"
    grad_formulas = ("0", "max_pool2d_select({x}, dout, size={size}, stride={stride}, pad={pad})")

    def out_shape(self, *shapes: Shape) -> Shape:
        self._check_gradient(*shapes)
        return shapes[0]

    def forward(self, x: Any, g: Any) -> Any:
        self.x, self.g = x, g
        self.pool = _pooled(MaxPool2dLayer(**self._pool_attrs()), x)
        return self.pool.backward(g)[0]

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return np.zeros_like(self.x), _select(self.pool, dout)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return None, g.apply("max_pool2d_select", args[0], dout, **self.plain_attrs())


def _select(pool: MaxPool2dLayer, values: np.ndarray) -> np.ndarray:
    """The element of ``values`` (x's shape) at the position of each window's maximum in the last
    forward pass of ``pool``."""
    position = pool.positions()
    out = np.zeros(position.shape, np.result_type(values, pool.x))
    for k, view in enumerate(pool.windows(values)):
        np.copyto(out, view, where=position == k)
    return out


@register
class MaxPool2dSelectLayer(_PoolGrad):
    """The element of v (x's shape) at the position of each window's maximum in x: max_pool2d's
    output's shape, with max_pool2d's rule for ties and NaN (so max_pool2d_select(x, x) is max_pool2d(x)).
    The reverse of max_pool2d_grad; its gradient is 0 for x."""

    op = "max_pool2d_select"
    attrs = {**Pool2dLayer.attrs, "ceil": Attr(read_bool, False, CEIL_DOC + " (as the max_pool2d it is of)", quiet=True)}
    args = ("x", "v")
    formula = "{v} at the position of each window's maximum of {x} (size={size}, stride={stride}, pad={pad})"
    grad_formulas = ("0", "max_pool2d_grad({x}, dout, size={size}, stride={stride}, pad={pad})")

    def out_shape(self, *shapes: Shape) -> Shape:
        xs, vs = shapes
        if vs != xs:
            raise ValueError(f"{{v}} has shape {vs} but {{x}} has shape {xs}; they must be the same")
        return Pool2dLayer.out_shape(self, xs)

    def forward(self, x: Any, v: Any) -> Any:
        self.x, self.v = x, v
        self.pool = _pooled(MaxPool2dLayer(**self._pool_attrs()), x)
        return _select(self.pool, v)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return np.zeros_like(self.x), self.pool.backward(dout)[0]

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return None, g.apply("max_pool2d_grad", args[0], dout, **self.plain_attrs())


@register
class AvgPool2dGradLayer(_PoolGrad):
    """avg_pool2d's input gradient: each element of g (N, C, OH, OW) divided by the window's size
    and added to every position of its window, in images (N, C, H, W), H = (OH − 1)·stride + size
    − 2·pad (W likewise); the padding's share is dropped."""

    op = "avg_pool2d_grad"
    args = ("g",)
    formula = "{g} / (the window's size) to every position of its window (size={size}, stride={stride}, pad={pad})"
    grad_formulas = ("avg_pool2d(dout, size={size}, stride={stride}, pad={pad})",)

    def out_shape(self, *shapes: Shape) -> Shape:
        gs = shapes[0]
        _check_images(gs, self.op)
        (kh, kw), (sh, sw), (ph, pw) = pair(self.size), pair(self.stride), pair(self.pad)
        return (*gs[:2], _size("H", (gs[2] - 1) * sh + kh - 2 * ph, "image's height"),
                _size("W", (gs[3] - 1) * sw + kw - 2 * pw, "image's width"))

    def work(self, *shapes: Shape) -> int:
        """Every element of every window is written in the forward pass and read in the backward."""
        return 2 * math.prod(shapes[0]) * math.prod(pair(self.size))

    def scratch_elements(self, *shapes: Shape) -> int:
        """The padded gradient."""
        n, channels, height, width = self.out_shape(*shapes)
        ph, pw = pair(self.pad)
        return n * channels * (height + 2 * ph) * (width + 2 * pw)

    def forward(self, g: Any) -> Any:
        self.g = g
        n, channels, height, width = self.out_shape(g.shape)
        pad = pair(self.pad)
        share = g / math.prod(pair(self.size))
        dx = np.zeros((n, channels, height + 2 * pad[0], width + 2 * pad[1]), share.dtype)
        for view in _offsets(dx, pair(self.size), pair(self.stride), g.shape[2:]):
            view += share
        return _cropped(dx, pad)

    def backward(self, dout: Any) -> tuple[Any]:
        return (AvgPool2dLayer(**self._pool_attrs()).forward(dout),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.apply("avg_pool2d", dout, **self.plain_attrs()),)
