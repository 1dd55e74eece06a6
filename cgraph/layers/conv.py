"""Convolution and pooling over batches of images (N, C, H, W): conv2d, max_pool2d, avg_pool2d.

As "Deep Learning from Scratch" builds them (chapter 7): conv2d unrolls every window of
the padded input into a column of one matrix per image (im2col), so the convolution is one
matrix product per image, and its backward adds the columns' gradients back into the image
(col2im). The columns of an image are its output pixels in order, so the products come out
in the images' own layout (N, FN, OH, OW), contiguous, with no reordering. The windows come
from numpy's strided views; Python loops run over the positions inside a window (at most
FH·FW of them), never over pixels or the batch.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view


from .base import REQUIRED, Attr, AttrError, BaseLayer, GradBuilder, Shape, _is_int, _show, counted, read_bool, register, written

Pair = tuple[int, int]


def _read_pair(minimum: int) -> Any:
    """A reader of an attribute that is an integer or a pair [rows, columns], each at least ``minimum``."""
    expected = f"an integer of at least {minimum} or a pair of them like [2, 1]"

    def read(value: Any) -> int | Pair:
        if _is_int(value) and value >= minimum:
            return int(value)
        if (isinstance(value, (list, tuple)) and len(value) == 2
                and all(_is_int(item) and item >= minimum for item in value)):
            return int(value[0]), int(value[1])
        raise ValueError(f"must be {expected}, got {written(value)}")

    read.__doc__ = f"{expected[0].upper()}{expected[1:]}."
    return read


read_positive_pair = _read_pair(1)  # a size or a stride
read_pad = _read_pair(0)


def _read_optional_stride(value: Any) -> int | Pair | None:
    """A stride, or null for the default (the window's size)."""
    return None if value is None else read_positive_pair(value)


def pair(value: int | Pair) -> Pair:
    """An integer attribute as the same value for rows and columns; a pair as it is."""
    return (value, value) if isinstance(value, int) else value


def _check_images(shape: Shape, op: str) -> None:
    if len(shape) != 4:
        raise ValueError(
            f"{op} takes a batch of images {{x}} of shape (N, C, H, W), 4 dimensions; {{x}} has {len(shape)}"
            + ("; reshape a single image to (1, C, H, W)" if len(shape) == 3 else "")
        )


def out_size(axis: str, size: int, pad: int, window: int, stride: int, window_name: str,
             max_pad: int | None = None, floor: bool = False, ceil: bool = False) -> int:
    """The output's length along ``axis``: (size + 2·pad − window) / stride + 1, rounded down
    where ``floor`` (PyTorch's and ONNX's rule: the rows or columns no window reaches are left out),
    up where ``ceil`` (PyTorch's and ONNX's ceil_mode: a last window that hangs over the end, if it
    starts inside the image or its left padding).

    AttrError showing the arithmetic where the window does not fit or (without ``floor``) the
    result is not a whole number, with the pads (up to ``max_pad``) and strides that would make
    it one; it is about the window's attribute (where ``window_name`` is one) and pad, or stride and pad.
    """
    window_keys = (window_name,) if window_name == "size" else ()
    span = size + 2 * pad - window
    formula = f"({axis} + 2·pad − {window_name}) / stride + 1 = ({size} + {2 * pad} − {window}) / {stride} + 1"
    if span < 0:
        raise AttrError(f"{formula} = {span / stride + 1:g}: the window of {window} does not fit in "
                        f"{size + 2 * pad} (padded) along {axis}", *window_keys, "pad")
    if span % stride and ceil:
        count = -(-span // stride) + 1
        return count - 1 if (count - 1) * stride >= size + pad else count
    if span % stride and not floor:
        limit = pad + stride if max_pad is None else min(pad + stride, max_pad + 1)
        pads = [p for p in range(pad + 1, limit) if (size + 2 * p - window) % stride == 0]
        strides = [s for s in range(stride - 1, 0, -1) if span % s == 0]
        tries = [f"pad {p}" for p in pads[:1]] + [f"stride {s}" for s in strides[:1]]
        raise AttrError(f"{formula} = {span / stride + 1:g} is not a whole number; try {' or '.join(tries)}",
                        "stride", "pad", *window_keys)
    return span // stride + 1


CEIL_DOC = ("true for one more window at the end where the windows do not fit exactly, if it starts inside the "
            "image or its padding (PyTorch's and ONNX's ceil_mode); its part past the padded image is left out")
FLOOR_DOC = ("true to leave out the last rows and columns where the windows do not fit exactly, as PyTorch and "
             "ONNX do (OH rounded down); false, the default, refuses them")


def _padded(x: np.ndarray, pad: Pair, fill: float) -> np.ndarray:
    """x with ``pad`` rows and columns of ``fill`` added on each side of its last two axes."""
    if pad == (0, 0):
        return x
    (ph, pw) = pad
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)


def _cropped(padded: np.ndarray, pad: Pair) -> np.ndarray:
    """The inverse of _padded: the middle of ``padded``'s last two axes."""
    ph, pw = pad
    return padded[:, :, ph:padded.shape[2] - ph, pw:padded.shape[3] - pw]


def _offsets(array: np.ndarray, window: Pair, stride: Pair, out_hw: Pair) -> Iterator[np.ndarray]:
    """For each position (i, j) inside a window, in row-major order, the view of ``array`` holding
    that position of every window: shape (N, C, OH, OW), a strided view (writing to it writes ``array``)."""
    (sh, sw), (oh, ow) = stride, out_hw
    for i in range(window[0]):
        for j in range(window[1]):
            yield array[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]


def im2col(x: np.ndarray, window: Pair, stride: Pair, pad: Pair) -> np.ndarray:
    """For each image of ``x``, one column per output pixel (i, j), in row-major order, holding its
    window of the padded image: channels, then rows, then columns. (N, C·FH·FW, OH·OW), contiguous."""
    (fh, fw), (sh, sw) = window, stride
    windows = sliding_window_view(_padded(x, pad, 0.0), (fh, fw), axis=(2, 3))[:, :, ::sh, ::sw]
    n, channels, oh, ow = windows.shape[:4]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, channels * fh * fw, oh * ow)


def col2im(dcol: np.ndarray, x_shape: Shape, window: Pair, stride: Pair, pad: Pair) -> np.ndarray:
    """The reverse of im2col: each column's entries added back where im2col read them from, in
    images of ``x_shape``."""
    n, channels, height, width = x_shape
    (fh, fw), (sh, sw), (ph, pw) = window, stride, pad
    oh, ow = (height + 2 * ph - fh) // sh + 1, (width + 2 * pw - fw) // sw + 1
    dcol = dcol.reshape(n, channels, fh, fw, oh, ow)
    dx = np.zeros((n, channels, height + 2 * ph, width + 2 * pw), dcol.dtype)
    # Each position in the window adds its rows of the columns' gradient back where they were read from.
    for k, view in enumerate(_offsets(dx, (fh, fw), stride, (oh, ow))):
        view += dcol[:, :, k // fw, k % fw]
    return _cropped(dx, pad)


def image_columns(images: np.ndarray) -> np.ndarray:
    """Images (N, F, OH, OW) as (N, F, OH·OW): one column per pixel, the layout of im2col's columns."""
    n, filters = images.shape[:2]
    return images.reshape(n, filters, -1)


def filter_product(rows: np.ndarray, col: np.ndarray) -> np.ndarray:
    """The sum over the images of rows (N, F, L) times im2col's columns (N, K, L) transposed: (F, K)."""
    return np.matmul(rows, col.transpose(0, 2, 1)).sum(axis=0)


def _covered(floor: bool, x_shape: Shape, window: Any, stride: Any, pad: Any) -> Pair | None:
    """Where ``floor`` left rows or columns of the padded x out, the rows and columns of it that the
    windows cover, (OH − 1)·stride + window (the size the ops of the gradient give their images,
    with no padding); None where the windows cover it all."""
    sizes = list(zip(x_shape[2:], window, pair(stride), pair(pad)))
    if not floor or not any((size + 2 * p - k) % s for size, k, s, p in sizes):
        return None
    height, width = (((size + 2 * p - k) // s) * s + k for size, k, s, p in sizes)
    return height, width


def _x_part(x_shape: Shape, pad: Any, covered: Pair) -> tuple[str, tuple[int, int]]:
    """The key of x's part that the covered rows and columns of the padded x hold, and its size."""
    (ph, pw), (height, width) = pair(pad), x_shape[2:]
    rows, columns = min(covered[0] - ph, height), min(covered[1] - pw, width)
    return f"..., 0:{rows}, 0:{columns}", (rows, columns)


def _covered_x(g: GradBuilder, x: str, pad: Any, covered: Pair) -> str:
    """The covered part of x padded with zeros: the images the windows see, without padding of their own."""
    (ph, pw), x_shape = pair(pad), g.shape(x)
    key, (rows, columns) = _x_part(x_shape, pad, covered)
    part = g.apply("index", x, key=key) if (rows, columns) != x_shape[2:] else x
    if (ph, pw) == (0, 0) and (rows, columns) == covered:
        return part
    return g.apply("scatter", part, key=f"..., {ph}:{ph + rows}, {pw}:{pw + columns}", shape=[*x_shape[:2], *covered])


def _uncovered_grad(g: GradBuilder, image: str, x_shape: Shape, pad: Any, covered: Pair) -> str:
    """x's gradient from the gradient ``image`` of the covered part of the padded x: its part over x,
    and 0 for the rows and columns of x that no window reached."""
    (ph, pw) = pair(pad)
    key, (rows, columns) = _x_part(x_shape, pad, covered)
    part = image
    if (ph, pw) != (0, 0) or (rows, columns) != covered:
        part = g.apply("index", image, key=f"..., {ph}:{ph + rows}, {pw}:{pw + columns}")
    return g.apply("scatter", part, key=key, shape=list(x_shape)) if (rows, columns) != x_shape[2:] else part


def _plain(value: int | Pair) -> int | list[int]:
    """An attribute's pair as a graph file writes it (a list)."""
    return value if isinstance(value, int) else list(value)


@register
class Conv2dLayer(BaseLayer):
    """The book's Convolution layer: filters W (FN, C, FH, FW) and a bias b (FN,) over images x
    (N, C, H, W) give out (N, FN, OH, OW), OH = (H + 2·pad − FH) / stride + 1 (OW likewise).

    Like PyTorch's conv2d, a cross-correlation: out[n, f, i, j] = b[f] + the sum over c, p, q of
    W[f, c, p, q] · x_padded[n, c, i·stride + p, j·stride + q].
    """

    op = "conv2d"
    args = ("x", "W", "b")
    attrs = {
        "stride": Attr(read_positive_pair, 1, "the step between windows: an integer, or a pair [rows, columns]"),
        "pad": Attr(read_pad, 0, "zeros added on each side of the image: an integer, or a pair [rows, columns]"),
        "floor": Attr(read_bool, False, FLOOR_DOC, quiet=True),
    }
    formula = "col @ {W}.reshape(FN, C·FH·FW).T + {b}, col = im2col({x}, stride={stride}, pad={pad})"
    grad_formulas = (
        "col2im(dout @ {W}.reshape(FN, C·FH·FW), stride={stride}, pad={pad})",
        "(col.T @ dout).T reshaped to (FN, C, FH, FW)",
        "dout summed over N, OH and OW",
    )
    stride: int | Pair
    pad: int | Pair
    floor: bool

    def out_shape(self, *shapes: Shape) -> Shape:
        xs, ws, bs = shapes
        _check_images(xs, "conv2d")
        if len(ws) != 4:
            raise ValueError(f"the filters {{W}} must have shape (FN, C, FH, FW), 4 dimensions; {{W}} has {len(ws)}")
        n, channels, height, width = xs
        filters, w_channels, fh, fw = ws
        if w_channels != channels:
            raise ValueError(f"{{x}} has {counted(channels, 'channel')} (axis 1 of {xs}) but the filters {{W}} take "
                             f"{w_channels} (axis 1 of {ws})")
        if bs != (filters,):
            raise ValueError(f"the bias {{b}} must have shape ({filters},), one per filter (axis 0 of {{W}} {ws}); "
                             f"it has shape {bs}")
        if fh == 0 or fw == 0:
            raise ValueError(f"the filters {{W}} {ws} are empty (FH = {fh}, FW = {fw})")
        (sh, sw), (ph, pw) = pair(self.stride), pair(self.pad)
        return (n, filters, out_size("H", height, ph, fh, sh, "FH", floor=self.floor),
                out_size("W", width, pw, fw, sw, "FW", floor=self.floor))

    def work(self, *shapes: Shape) -> int:
        """The product col @ W in the forward pass and two of the same size (dW, dcol) in the backward."""
        n, filters, oh, ow = self.out_shape(*shapes)
        return 3 * n * oh * ow * filters * math.prod(shapes[1][1:])

    def scratch_elements(self, *shapes: Shape) -> int:
        """im2col's matrix (kept from forward to backward) and its gradient, the padded copies of
        x and of its gradient, and each image's share of dW (N, FN, C·FH·FW) before their sum."""
        n, filters, oh, ow = self.out_shape(*shapes)
        n, channels, height, width = shapes[0]
        ph, pw = pair(self.pad)
        padded = n * channels * (height + 2 * ph) * (width + 2 * pw) if ph or pw else 0
        window = math.prod(shapes[1][1:])
        return 2 * n * oh * ow * window + 2 * padded + n * filters * window

    def forward(self, x: Any, W: Any, b: Any) -> Any:
        self.x, self.W, self.b = x, W, b
        n, filters, oh, ow = self.out_shape(x.shape, W.shape, b.shape)
        self.col = im2col(x, W.shape[2:], pair(self.stride), pair(self.pad))
        self.row_W = W.reshape(filters, -1)
        out = np.matmul(self.row_W, self.col)
        bias = b.reshape(filters, 1)
        if np.result_type(out, bias) == out.dtype:
            out += bias
        else:
            out = out + bias
        return out.reshape(n, filters, oh, ow)

    def backward(self, dout: Any) -> tuple[Any, Any, Any]:
        x, W = self.x, self.W
        rows = image_columns(dout)
        db = rows.sum(axis=(0, 2))
        dW = filter_product(rows, self.col).reshape(W.shape)
        dx = col2im(np.matmul(self.row_W.T, rows), x.shape, W.shape[2:], pair(self.stride), pair(self.pad))
        return dx, dW, db

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        x, W, _ = args
        bias = g.apply("sum", dout, axis=[0, 2, 3])
        covered = _covered(self.floor, g.shape(x), g.shape(W)[2:], self.stride, self.pad)
        if covered is not None:  # rows left out: the rules of the covered part of the padded x, without padding
            attrs = {"stride": _plain(self.stride), "pad": 0}
            image = g.apply("conv2d_transpose", dout, W, **attrs)
            return (_uncovered_grad(g, image, g.shape(x), self.pad, covered),
                    g.apply("conv2d_filter_grad", _covered_x(g, x, self.pad, covered), dout, **attrs), bias)
        attrs = {"stride": _plain(self.stride), "pad": _plain(self.pad)}
        return g.apply("conv2d_transpose", dout, W, **attrs), g.apply("conv2d_filter_grad", x, dout, **attrs), bias


class Pool2dLayer(BaseLayer):
    """A window of ``size`` moved over each channel of images x (N, C, H, W) by ``stride``
    (default: the window's size, so windows do not overlap) after ``pad`` on each side."""

    args = ("x",)
    attrs = {
        "size": Attr(read_positive_pair, REQUIRED, "the window: an integer, or a pair [rows, columns]"),
        "stride": Attr(_read_optional_stride, None,
                       "the step between windows: an integer, or a pair; null, the default, is the window's size"),
        "pad": Attr(read_pad, 0, "added on each side of the image, at most half the window: an integer, or a pair"),
        "floor": Attr(read_bool, False, FLOOR_DOC, quiet=True),
    }
    size: int | Pair
    stride: int | Pair
    pad: int | Pair
    floor: bool
    ceil: bool = False  # an attribute of the poolings themselves, not of the ops of their gradients

    def __init__(self, **attrs: Any) -> None:
        if attrs.get("stride") is None and "size" in attrs:
            attrs["stride"] = attrs["size"]
        super().__init__(**attrs)

    @classmethod
    def check_attrs(cls, values: Mapping[str, Any]) -> None:
        (kh, kw), (ph, pw) = pair(values["size"]), pair(values["pad"])
        if 2 * ph > kh or 2 * pw > kw:
            raise AttrError(f"pad {_show(values['pad'])} is more than half the window {_show(values['size'])}; "
                            "a window would hold nothing but padding", "pad", "size")
        if values["floor"] and values.get("ceil"):
            raise AttrError("floor and ceil are both true; choose one way to round OH and OW", "floor", "ceil")

    def out_shape(self, *shapes: Shape) -> Shape:
        xs = shapes[0]
        _check_images(xs, self.op)
        (kh, kw), (sh, sw), (ph, pw) = pair(self.size), pair(self.stride), pair(self.pad)
        return (*xs[:2], out_size("H", xs[2], ph, kh, sh, "size", kh // 2, self.floor, self.ceil),
                out_size("W", xs[3], pw, kw, sw, "size", kw // 2, self.floor, self.ceil))

    def work(self, *shapes: Shape) -> int:
        """Every element of every window is read in the forward pass and written in the backward."""
        return 2 * math.prod(self.out_shape(*shapes)) * math.prod(pair(self.size))

    def scratch_elements(self, *shapes: Shape) -> int:
        """The padded copies of x and of its gradient, and one array of the output's size."""
        return 2 * self._padded_elements(shapes[0]) + math.prod(self.out_shape(*shapes))

    def _padded_elements(self, x_shape: Shape) -> int:
        """The size of a padded copy of x (0 where nothing is added)."""
        (ph, pw), (eh, ew) = pair(self.pad), self._end_pad(x_shape)
        n, channels, height, width = x_shape
        return n * channels * (height + 2 * ph + eh) * (width + 2 * pw + ew) if ph or pw or eh or ew else 0

    def plain_attrs(self) -> dict[str, Any]:
        """The attributes as a graph file writes them, for the ops of the gradient."""
        rounding = {"floor": True} if self.floor else {"ceil": True} if self.ceil else {}
        return {"size": _plain(self.size), "stride": _plain(self.stride), "pad": _plain(self.pad), **rounding}

    def _windows(self, array: np.ndarray) -> Iterator[np.ndarray]:
        """Views of ``array`` (padded) at each position inside the window; see _offsets."""
        return _offsets(array, pair(self.size), pair(self.stride), self.out_shape(self.x.shape)[2:])

    def _end_pad(self, x_shape: Shape) -> Pair:
        """The rows and columns that the last window in ceil mode reaches past the padded image."""
        if not self.ceil:
            return 0, 0
        (kh, kw), (sh, sw), (ph, pw) = pair(self.size), pair(self.stride), pair(self.pad)
        oh, ow = Pool2dLayer.out_shape(self, x_shape)[2:]
        return max((oh - 1) * sh + kh - x_shape[2] - 2 * ph, 0), max((ow - 1) * sw + kw - x_shape[3] - 2 * pw, 0)

    def _pad_x(self, array: np.ndarray, fill: float) -> np.ndarray:
        """``array`` (x's shape) with ``pad`` rows and columns of ``fill`` on each side, and in ceil
        mode as many more at the end as the last window reaches."""
        (ph, pw), (eh, ew) = pair(self.pad), self._end_pad(array.shape)
        if (eh, ew) == (0, 0):
            return _padded(array, (ph, pw), fill)
        return np.pad(array, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), constant_values=fill)

    def _crop(self, padded: np.ndarray) -> np.ndarray:
        """The reverse of _pad_x: the part of ``padded`` over x."""
        (ph, pw), (height, width) = pair(self.pad), self.x.shape[2:]
        return padded[:, :, ph:ph + height, pw:pw + width]

    def _padded_shape(self) -> Shape:
        """x's shape with the padding (and in ceil mode the rows and columns the last window reaches)."""
        (ph, pw), (eh, ew) = pair(self.pad), self._end_pad(self.x.shape)
        n, channels, height, width = self.x.shape
        return (n, channels, height + 2 * ph + eh, width + 2 * pw + ew)

    def _refuse_ceil_windows(self, x_shape: Shape) -> None:
        """NotImplementedError (grad refuses the node) where ceil mode added a window: the ops of the
        gradient do not take ``ceil``."""
        if self._end_pad(x_shape) != (0, 0):
            raise NotImplementedError

    def _dtype(self, dout: np.ndarray) -> np.dtype:
        """The gradient's dtype: dout's and x's together."""
        return np.result_type(dout, self.x)

    def _padded_zeros(self, dout: np.ndarray) -> np.ndarray:
        """Zeros of x's padded shape, for the gradient, in dout's dtype."""
        return np.zeros(self._padded_shape(), self._dtype(dout))


def _strided(array: np.ndarray, axis: int, start: int, stride: int, count: int) -> np.ndarray:
    """The view of ``array`` holding ``count`` entries along ``axis`` from ``start`` every ``stride``."""
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, start + stride * (count - 1) + 1, stride)
    return array[tuple(index)]


def _window_rows(flat: np.ndarray, padded_shape: Shape, oh: int, ow: int, sh: int) -> np.ndarray:
    """A copy, (N, C, oh, ow), of the rows where windows start (every sh-th of the padded height)
    in ``flat``: contiguous rows of ow from the start of the flattened (N, C, height, ow), at least
    up to the last row kept."""
    n, channels, height, _ = padded_shape
    size = flat.itemsize
    strides = (channels * height * ow * size, height * ow * size, sh * ow * size, size)
    return np.array(as_strided(flat, (n, channels, oh, ow), strides, writeable=False))


def _window_columns(flat: np.ndarray, padded_shape: Shape, ow: int, sw: int) -> np.ndarray:
    """A copy, (N, C, height, ow), of the columns where windows start (every sw-th of the padded
    width) in ``flat``: the flattened (N, C, height, width), at least up to the last column kept."""
    n, channels, height, width = padded_shape
    size = flat.itemsize
    strides = (channels * height * width * size, height * width * size, width * size, sw * size)
    return np.array(as_strided(flat, (n, channels, height, ow), strides, writeable=False))


def _first_maximum(views: list[np.ndarray], nan_wins: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The elementwise maximum of ``views`` (same shapes) and the index of the view holding it:
    the first where tied, or with ``nan_wins`` the last NaN (None: there was one view only).
    The index of two views is a bool array (True: the second).

    The maximum's value is np.maximum's over the views in order (so of tied zeros, the last
    one's sign); with ``nan_wins``, the winner's own value.
    """
    if len(views) == 1:
        return views[0], None
    if len(views) == 2 and not nan_wins:
        return np.maximum(views[0], views[1]), np.greater(views[1], views[0])
    best = np.array(views[0])
    index = np.zeros(best.shape, bool if len(views) == 2 else np.min_scalar_type(len(views) - 1))
    greater = np.empty(best.shape, bool)
    for k, view in enumerate(views[1:], 1):
        np.greater(view, best, out=greater)
        if nan_wins:
            greater |= np.isnan(view)
            np.copyto(best, view, where=greater)
        else:
            np.maximum(best, view, out=best)
        np.copyto(index, k, where=greater, casting="unsafe")
    return best, index


def _is_index(index: np.ndarray | None, k: int) -> np.ndarray | bool:
    """Where ``index`` (from _first_maximum) is k."""
    if index is None:
        return True
    if index.dtype == bool:
        return index if k else np.logical_not(index)
    return index == k


def _scatter(gradient: np.ndarray, index: np.ndarray | None, out: np.ndarray, axis: int, stride: int,
             count: int) -> None:
    """Write ``gradient`` times (index == k) to the k-th of ``count`` strided views of ``out`` along
    ``axis``; the views do not overlap, so each element is written once (a gap keeps its value)."""
    for k in range(count):
        np.multiply(gradient, _is_index(index, k), out=_strided(out, axis, k, stride, gradient.shape[axis]))


@register
class MaxPool2dLayer(Pool2dLayer):
    """Max pooling: the largest value of each window. Padding is -inf, so it is never the maximum.

    The gradient goes to the position of each window's maximum; where several positions
    hold it, to the first in row-major order (as PyTorch), and where a window holds NaN, to
    its last NaN (as PyTorch, whose maximum is NaN there).

    One pass over the columns of the windows finds each row's maximum and its column
    (N, C, H, OW), a second over the rows the window's maximum and its row; the backward
    pass sends dout to the rows and then to the columns so chosen.
    """

    op = "max_pool2d"
    attrs = {**Pool2dLayer.attrs, "ceil": Attr(read_bool, False, CEIL_DOC, quiet=True)}
    formula = "max of {x} over each window of {size}, stride={stride}, pad={pad} (of -inf)"
    grad_formulas = ("dout to the position of each window's maximum (the first, in row-major order, where tied)",)

    def scratch_elements(self, *shapes: Shape) -> int:
        """The padded copies of x and of its gradient; in the forward pass the maxima over the columns
        from every position of the padded image, then of the windows' rows (N, C, H, OW), and in the
        backward their gradient; and the maxima's positions (bytes, counted as one array of the
        output's size)."""
        n, channels, height, width = shapes[0]
        (ph, pw), (eh, ew) = pair(self.pad), self._end_pad(shapes[0])
        padded_height = height + 2 * ph + eh
        column_maxima = n * channels * padded_height * (width + 2 * pw + ew)
        row_maxima = n * channels * padded_height * self.out_shape(*shapes)[3]
        return 2 * self._padded_elements(shapes[0]) + column_maxima + row_maxima + math.prod(self.out_shape(*shapes))

    def forward(self, x: Any) -> Any:
        self.x = x
        padded = self._pad_x(x, -np.inf)
        out = self._pool(padded, nan_wins=False)
        gaps = any(stride > size for stride, size in zip(pair(self.stride), pair(self.size)))
        if out.size and (np.isnan(np.max(out)) or gaps and np.isnan(np.max(x))):
            out = self._pool(padded, nan_wins=True)  # NaN is the maximum, and of tied values the first
        return out

    def _pool(self, padded: np.ndarray, nan_wins: bool) -> np.ndarray:
        """The windows' maxima; keeps each one's column in its row and row in its window."""
        (kh, kw), (sh, sw) = pair(self.size), pair(self.stride)
        oh, ow = self.out_shape(self.x.shape)[2:]
        # Over the columns, every element of the flattened image is compared with the kw - 1 after it
        # (contiguous passes, several times faster than strided ones in float64), and the columns where
        # windows start are kept. Over the rows, likewise every row of the row maxima with the kh - 1 after it.
        image = np.ascontiguousarray(padded).reshape(-1)
        length = image.size - (kw - 1)
        best, column = _first_maximum([image[q:q + length] for q in range(kw)], nan_wins)
        flat = _window_columns(best, padded.shape, ow, sw).reshape(-1)
        self.column = None if column is None else _window_columns(column, padded.shape, ow, sw)
        length = flat.size - (kh - 1) * ow
        best, row = _first_maximum([flat[p * ow:p * ow + length] for p in range(kh)], nan_wins)
        self.row = None if row is None else _window_rows(row, padded.shape, oh, ow, sh)
        return _window_rows(best, padded.shape, oh, ow, sh)

    def backward(self, dout: Any) -> tuple[Any]:
        (kh, kw), (sh, sw) = pair(self.size), pair(self.stride)
        if sh < kh or sw < kw:
            return (self._overlapping_backward(dout),)
        shape, dtype = self._padded_shape(), self._dtype(dout)
        rows_covered = sh == kh and dout.shape[2] * sh == shape[2]  # every row written, none left out
        columns_covered = sw == kw and dout.shape[3] * sw == shape[3]
        row_gradient = (np.empty if rows_covered else np.zeros)((*shape[:3], dout.shape[3]), dtype)
        _scatter(dout, self.row, row_gradient, 2, sh, kh)
        dx = (np.empty if rows_covered and columns_covered else np.zeros)(shape, dtype)
        _scatter(row_gradient, self.column, dx, 3, sw, kw)
        return (self._crop(dx),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.apply("max_pool2d_grad", args[0], dout, **self.plain_attrs()),)  # its windows from x, ceil's too

    def positions(self) -> np.ndarray:
        """For each window of the last forward pass, the position of its maximum inside it
        (p · FW + q for row p, column q): the output's shape."""
        (kh, kw), sh = pair(self.size), pair(self.stride)[0]
        shape = self.out_shape(self.x.shape)
        position = np.zeros(shape, np.min_scalar_type(kh * kw - 1))
        for p in range(kh):
            if self.column is not None:
                np.copyto(position, _strided(self.column, 2, p, sh, shape[2]), where=_is_index(self.row, p))
        for p in range(1, kh):
            np.add(position, p * kw, out=position, where=_is_index(self.row, p))
        return position

    def windows(self, array: np.ndarray) -> Iterator[np.ndarray]:
        """Views of ``array`` padded with zeros (of x's shape) at each position inside the window, as
        positions() counts them."""
        return self._windows(self._pad_x(array, 0.0))

    def _overlapping_backward(self, dout: np.ndarray) -> np.ndarray:
        """Windows that overlap add up in x's gradient, one position in the window after another."""
        position = self.positions()
        dx = self._padded_zeros(dout)
        for k, view in enumerate(self._windows(dx)):
            view += dout * (position == k)
        return self._crop(dx)


@register
class AvgPool2dLayer(Pool2dLayer):
    """Average pooling: the mean of each window, padded zeros included (PyTorch's default,
    count_include_pad=True), so every mean divides by the window's size."""

    op = "avg_pool2d"
    attrs = {**Pool2dLayer.attrs, "ceil": Attr(read_bool, False, CEIL_DOC, quiet=True)}
    formula = "mean of {x} over each window of {size}, stride={stride}, pad={pad} (of zeros, counted in the mean)"
    grad_formulas = ("dout / (the window's size) to every position of its window",)

    def _counts(self) -> int | np.ndarray:
        """The number of positions of each window inside the padded image: the window's size, or in
        ceil mode (OH, OW) counts, smaller for the last windows, which hang over the end (PyTorch's rule)."""
        (kh, kw), (sh, sw), (ph, pw) = pair(self.size), pair(self.stride), pair(self.pad)
        if self._end_pad(self.x.shape) == (0, 0):
            return kh * kw
        (height, width), (oh, ow) = self.x.shape[2:], self.out_shape(self.x.shape)[2:]
        rows = np.minimum(np.arange(oh) * sh + kh, height + 2 * ph) - np.arange(oh) * sh
        columns = np.minimum(np.arange(ow) * sw + kw, width + 2 * pw) - np.arange(ow) * sw
        return np.outer(rows, columns)

    def forward(self, x: Any) -> Any:
        self.x = x
        windows = self._windows(self._pad_x(x, 0.0))
        out = np.array(next(windows))
        for view in windows:
            out += view
        out /= self._counts()
        return out

    def backward(self, dout: Any) -> tuple[Any]:
        dx = self._padded_zeros(dout)
        share = dout / self._counts()
        for view in self._windows(dx):
            view += share
        return (self._crop(dx),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        self._refuse_ceil_windows(g.shape(args[0]))  # so ceil, if true, adds no window: the windows of floor's rule
        covered = _covered(self.floor, g.shape(args[0]), pair(self.size), self.stride, self.pad)
        if covered is not None:  # rows left out: the gradient of the covered part of the padded x, without padding
            image = g.apply("avg_pool2d_grad", dout, size=_plain(self.size), stride=_plain(self.stride), pad=0)
            return (_uncovered_grad(g, image, g.shape(args[0]), self.pad, covered),)
        attrs = {key: value for key, value in self.plain_attrs().items() if key != "ceil"}
        return (g.apply("avg_pool2d_grad", dout, **attrs),)
