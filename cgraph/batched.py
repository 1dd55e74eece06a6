"""A gradient graph's nodes evaluated for a batch of douts at once: the values that depend on the
batched input carry a leading axis of the batch's size, the others are computed once.

Elementwise ops, the ops along the last axis and gemm broadcast over the leading axis as they
are; reductions, reshapes, transposes, indexing and their reverses move their axes past it; the
convolutions and poolings of gradients take the batch's images as one stack of images; any other
op runs once per item of the batch. The numbers are those of one evaluation per item.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from .gradient import Emitted
from .layers import REGISTRY, BaseLayer, Shape, parse_key, sum_to

# Ops whose forward, given inputs with an extra leading axis (size-1 axes padded in between),
# computes every item of the batch: they broadcast, work along the last axis, or (gemm) stack.
BROADCASTING = frozenset({
    "add", "sub", "mul", "div", "neg", "pow", "maximum", "minimum", "greater", "equal", "exp", "log", "sqrt",
    "square", "tanh", "sigmoid", "relu", "abs", "sign", "clip", "identity", "softmax", "log_softmax",
    "log_softmax_grad", "gemm",
})


def _padded(value: np.ndarray, shape: Shape, ndim: int) -> np.ndarray:
    """A batched value of item shape ``shape`` with size-1 axes after the batch axis, to ``ndim`` item axes."""
    return value.reshape((value.shape[0], *(1,) * (ndim - len(shape)), *shape))


def _axes(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """An op's axes of an item as axes of the batch (one further on)."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    return tuple(item % ndim + 1 for item in ((axis,) if isinstance(axis, int) else axis))


def _key(layer: BaseLayer) -> tuple[Any, ...]:
    return (slice(None), *parse_key(layer.key))


def _sum(layer: Any, x: np.ndarray, shape: Shape, out: Shape) -> np.ndarray:
    return np.sum(x, axis=_axes(layer.axis, len(shape)), keepdims=layer.keepdims)


def _mean(layer: Any, x: np.ndarray, shape: Shape, out: Shape) -> np.ndarray:
    axes = _axes(layer.axis, len(shape))
    return np.divide(np.sum(x, axis=axes, keepdims=layer.keepdims), math.prod(shape[axis - 1] for axis in axes))


def _sum_to(layer: Any, x: np.ndarray, shape: Shape, out: Shape) -> np.ndarray:
    return sum_to(x, (x.shape[0], *(1,) * (len(shape) - len(out)), *out)).reshape((x.shape[0], *out))


def _broadcast_to(layer: Any, x: np.ndarray, shape: Shape, out: Shape) -> np.ndarray:
    return np.broadcast_to(_padded(x, shape, len(out)), (x.shape[0], *out))


def _reshape(layer: Any, x: np.ndarray, shape: Shape, out: Shape) -> np.ndarray:
    return x.reshape((x.shape[0], *out))


def _transpose(layer: Any, x: np.ndarray, shape: Shape, out: Shape) -> np.ndarray:
    order = range(len(shape))[::-1] if layer.axes is None else layer.axes
    return np.transpose(x, (0, *(axis % len(shape) + 1 for axis in order)))


def _index(layer: Any, x: np.ndarray, shape: Shape, out: Shape) -> np.ndarray:
    return x[_key(layer)]


def _scatter(layer: Any, x: np.ndarray, shape: Shape, out: Shape) -> np.ndarray:
    result = np.zeros((x.shape[0], *out), x.dtype)
    result[_key(layer)] = x
    return result


# Ops of one input that take a batched input by moving their axes one further on.
MOVED: dict[str, Callable[[Any, np.ndarray, Shape, Shape], np.ndarray]] = {
    "sum": _sum, "mean": _mean, "sum_to": _sum_to, "broadcast_to": _broadcast_to, "reshape": _reshape,
    "transpose": _transpose, "index": _index, "scatter": _scatter,
}


# Ops that work image by image along the first axis of their inputs at these positions (the others
# not batched): a batch of their images is one batch of batch-size times as many images.
BY_IMAGE: dict[str, tuple[int, ...]] = {
    "conv2d": (0,), "conv2d_transpose": (0,), "avg_pool2d": (0,), "avg_pool2d_grad": (0,),
    "max_pool2d_grad": (0, 1), "max_pool2d_select": (0, 1),
}


def _by_image(layer: BaseLayer, images: tuple[int, ...], args: list[Any], shapes: list[Shape], size: int,
              out: Shape) -> np.ndarray:
    """An op of BY_IMAGE on the batch's images as one stack of images."""
    stacked = [np.broadcast_to(arg, (size, *shape)).reshape(size * shape[0], *shape[1:])
               if i in images else arg for i, (arg, shape) in enumerate(zip(args, shapes))]
    return np.asarray(layer.forward(*stacked)).reshape(size, *out)


def _batched_node(node: Emitted, layer: BaseLayer, args: list[Any], is_batched: list[bool], shapes: list[Shape],
                  size: int) -> np.ndarray:
    """``node``'s value for each item of the batch, some of its ``args`` batched."""
    out = node.shape
    if node.op in BROADCASTING:
        ndim = max(len(out), *map(len, shapes))
        padded = [_padded(arg, shape, ndim) if batched else arg for arg, batched, shape in zip(args, is_batched, shapes)]
        value = np.asarray(layer.forward(*padded))
    elif node.op in MOVED and len(args) == 1:
        value = MOVED[node.op](layer, args[0], shapes[0], out)
    elif node.op in BY_IMAGE and all(i in BY_IMAGE[node.op] for i, batched in enumerate(is_batched) if batched):
        value = _by_image(layer, BY_IMAGE[node.op], args, shapes, size, out)
    else:
        value = np.stack([np.asarray(layer.forward(*[arg[item] if batched else arg
                                                     for arg, batched in zip(args, is_batched)]))
                          for item in range(size)])
    return np.broadcast_to(value, (size, *out)) if value.shape != (size, *out) else value


def evaluate(nodes: Mapping[str, Emitted], values: Mapping[str, Any], shapes: Mapping[str, Shape],
             batch: Mapping[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
    """The values of the nodes ``wanted``, each with a leading axis of the batch: ``nodes`` in
    the order made (each after its inputs), evaluated from the unbatched ``values`` (of shapes
    ``shapes``) and the inputs of ``batch``, each an array whose first axis runs over the batch."""
    size = len(next(iter(batch.values())))
    known: dict[str, Any] = {**values, **batch}
    batched = set(batch)
    item_shapes = {**shapes, **{name: value.shape[1:] for name, value in batch.items()}}
    with np.errstate(all="ignore"):
        for name, node in nodes.items():
            layer = REGISTRY[node.op](**node.attrs)
            args = [known[arg] for arg in node.args]
            item_shapes[name] = node.shape
            is_batched = [arg in batched for arg in node.args]
            if any(is_batched):
                known[name] = _batched_node(node, layer, args, is_batched, [item_shapes[arg] for arg in node.args], size)
                batched.add(name)
            else:
                known[name] = layer.forward(*args)
    return {name: known[name] if name in batched else np.broadcast_to(np.asarray(known[name]), (size, *item_shapes[name]))
            for name in wanted}
