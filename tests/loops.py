"""The book's convolutional layers written the straightforward way, one output element at a time.

References for the tests, independent of cgraph's vectorised im2col code: each output
element is computed from its window by the definitions (PyTorch's conv2d, max_pool2d,
avg_pool2d and batch_norm in training mode), and each gradient by summing what every
output element sends back to the elements of its window. The output's size is rounded down
(PyTorch's rule) whatever ``floor`` says: the layers' ``floor`` attribute is taken and ignored.
"""

from __future__ import annotations

import itertools

import numpy as np


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def padded(x: np.ndarray, pad: tuple[int, int], fill: float = 0.0) -> np.ndarray:
    n, c, h, w = x.shape
    out = np.full((n, c, h + 2 * pad[0], w + 2 * pad[1]), fill)
    out[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    return out


def out_hw(x_shape: tuple, window: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int]) -> tuple[int, int]:
    return tuple((x_shape[2 + a] + 2 * pad[a] - window[a]) // stride[a] + 1 for a in range(2))


def windows(x_shape: tuple, window: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int]):
    """(i, j, rows, columns) for every output position: the slices of its window in the padded input."""
    oh, ow = out_hw(x_shape, window, stride, pad)
    for i, j in itertools.product(range(oh), range(ow)):
        top, left = i * stride[0], j * stride[1]
        yield i, j, slice(top, top + window[0]), slice(left, left + window[1])


def conv2d(x, W, b, stride=1, pad=0, floor=False):
    stride, pad = pair(stride), pair(pad)
    xp = padded(x, pad)
    oh, ow = out_hw(x.shape, W.shape[2:], stride, pad)
    out = np.zeros((x.shape[0], W.shape[0], oh, ow))
    for n, f in itertools.product(range(x.shape[0]), range(W.shape[0])):
        for i, j, rows, cols in windows(x.shape, W.shape[2:], stride, pad):
            out[n, f, i, j] = np.sum(xp[n, :, rows, cols] * W[f]) + b[f]
    return out


def conv2d_backward(x, W, dout, stride=1, pad=0, floor=False):
    stride, pad = pair(stride), pair(pad)
    xp = padded(x, pad)
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for n, f in itertools.product(range(x.shape[0]), range(W.shape[0])):
        for i, j, rows, cols in windows(x.shape, W.shape[2:], stride, pad):
            dW[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
            dxp[n, :, rows, cols] += dout[n, f, i, j] * W[f]
    h, w = x.shape[2:]
    return dxp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w], dW, dout.sum(axis=(0, 2, 3))


def _pool(x, size, stride, pad, fill, reduce):
    size, pad = pair(size), pair(pad)
    stride = size if stride is None else pair(stride)
    xp = padded(x, pad, fill)
    out = np.zeros((*x.shape[:2], *out_hw(x.shape, size, stride, pad)))
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for i, j, rows, cols in windows(x.shape, size, stride, pad):
            out[n, c, i, j] = reduce(xp[n, c, rows, cols])
    return out


def max_pool2d(x, size, stride=None, pad=0, floor=False):
    return _pool(x, size, stride, pad, -np.inf, np.max)


def avg_pool2d(x, size, stride=None, pad=0, floor=False):
    return _pool(x, size, stride, pad, 0.0, lambda window: np.sum(window) / window.size)


def max_pool2d_backward(x, dout, size, stride=None, pad=0, floor=False):
    """Each window's gradient to the first (row-major) position of its maximum."""
    size, pad = pair(size), pair(pad)
    stride = size if stride is None else pair(stride)
    xp = padded(x, pad, -np.inf)
    dxp = np.zeros_like(xp)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for i, j, rows, cols in windows(x.shape, size, stride, pad):
            window = xp[n, c, rows, cols]
            p, q = np.unravel_index(np.argmax(window), window.shape)
            dxp[n, c, rows.start + p, cols.start + q] += dout[n, c, i, j]
    h, w = x.shape[2:]
    return dxp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w]


def batchnorm(x, gamma, beta, eps=1e-5):
    """Per feature (column of a matrix) or per channel (of images), over every other axis."""
    out = np.zeros_like(x)
    for c in range(x.shape[1]):
        values = x[:, c]
        mean = np.sum(values) / values.size
        variance = np.sum((values - mean) ** 2) / values.size
        out[:, c] = gamma[c] * (values - mean) / np.sqrt(variance + eps) + beta[c]
    return out
