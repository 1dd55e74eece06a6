"""Ops that move values between shapes: transpose, reshape, flatten, index; concat and stack, of any number of inputs."""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Mapping

import numpy as np

from ..arrays import describe
from .base import (
    REQUIRED,
    Attr,
    AttrError,
    BaseLayer,
    GradBuilder,
    Shape,
    VariadicLayer,
    _dimensions,
    _is_int,
    read_axes,
    read_shape,
    register,
    shape_of,
)

@register
class TransposeLayer(BaseLayer):
    """Axes reordered: out = transpose(x, axes); all axes reversed where ``axes`` is not given."""

    op = "transpose"
    args = ("x",)
    attrs = {"axes": Attr(read_axes, None, "the new order of x's axes, a list; null, the default, reverses them")}
    formula = "transpose({x}, axes={axes})"
    grad_formulas = ("transpose(dout) by the inverse order of axes={axes}",)
    axes: tuple[int, ...] | None

    def _order(self, ndim: int) -> tuple[int, ...]:
        if self.axes is None:
            return tuple(reversed(range(ndim)))
        if len(self.axes) != ndim or sorted(axis % ndim for axis in self.axes if -ndim <= axis < ndim) != list(range(ndim)):
            raise AttrError(f"axes {list(self.axes)} are not an order of the {_dimensions(ndim)} of {{x}}", "axes")
        return tuple(axis % ndim for axis in self.axes)

    def out_shape(self, *shapes: Shape) -> Shape:
        xs = shapes[0]
        return tuple(xs[axis] for axis in self._order(len(xs)))

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.transpose(x, self._order(len(shape_of(x))))

    def backward(self, dout: Any) -> tuple[Any]:
        order = self._order(len(shape_of(self.x)))
        return (np.transpose(dout, np.argsort(order)),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        order = self._order(len(g.shape(args[0])))
        return (g.transpose(dout, tuple(int(axis) for axis in np.argsort(order))),)


@register
class ReshapeLayer(BaseLayer):
    """The same values in a new shape: out = reshape(x, shape); one size in ``shape`` may be -1."""

    op = "reshape"
    args = ("x",)
    attrs = {"shape": Attr(read_shape, REQUIRED, "the new shape, a list like [2, -1] (-1: whatever size fits)")}
    formula = "reshape({x}, {shape})"
    grad_formulas = ("reshape(dout, shape of {x})",)
    shape: tuple[int, ...]

    @classmethod
    def check_attrs(cls, values: Mapping[str, Any]) -> None:
        shape = values["shape"]
        if -1 in shape and 0 in shape:
            raise AttrError(f"shape {list(shape)} has -1 beside a 0: no size of -1 fits it, as any size "
                            "would for an empty x", "shape")

    def out_shape(self, *shapes: Shape) -> Shape:
        size = math.prod(shapes[0])
        known = math.prod(n for n in self.shape if n != -1)
        if -1 in self.shape and known and size % known == 0:
            return tuple(size // known if n == -1 else n for n in self.shape)
        if -1 not in self.shape and known == size:
            return self.shape
        verb = "fill" if -1 in self.shape else "match"
        raise AttrError(f"{{x}} has {size:,} elements, which do not {verb} the shape {list(self.shape)}", "shape")

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.reshape(x, self.shape)

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.reshape(dout, shape_of(self.x)),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.reshape(dout, g.shape(args[0])),)


@register
class FlattenLayer(BaseLayer):
    """The batch axis kept and the others joined: x (N, C, H, W) becomes (N, C·H·W), as the book's
    ``x.reshape(x.shape[0], -1)`` between a convolution and an affine layer ((N,) becomes (N, 1))."""

    op = "flatten"
    args = ("x",)
    formula = "reshape({x}, (N, -1)), N its first axis"
    grad_formulas = ("reshape(dout, shape of {x})",)

    def out_shape(self, *shapes: Shape) -> Shape:
        xs = shapes[0]
        if not xs:
            raise ValueError("{x} is 0-d; flatten keeps the first axis (the batch) and joins the others")
        return (xs[0], math.prod(xs[1:]))

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.reshape(x, self.out_shape(x.shape))

    def backward(self, dout: Any) -> tuple[Any]:
        return (np.reshape(dout, self.x.shape),)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.reshape(dout, g.shape(args[0])),)


# --- indexing ----------------------------------------------------------------------

_KEY_INT = re.compile(r"[-+]?[0-9]+\Z")
_KEY_SLICE = re.compile(r"([-+]?[0-9]+)?:([-+]?[0-9]+)?(?::([-+]?[0-9]+)?)?\Z")
KEY_DOC = ("what to take, as inside x[...]: integers, slices start:stop:step with any part left out, "
           "and ... , separated by commas, such as '0', '1:3', ':, -1', '::2' or '..., 0'")


def read_key(value: Any) -> str:
    """An index key: an integer, or text as written inside brackets ('0, 1:3', '..., -1'), made canonical."""
    if _is_int(value):
        return str(int(value))
    if not isinstance(value, str):
        raise ValueError(f"must be an integer or text like ':, 1:3', got {describe(value)}")
    return ", ".join(map(_show_part, parse_key(value)))


@functools.lru_cache(maxsize=256)
def parse_key(text: str) -> tuple[Any, ...]:
    """The numpy index of a key's text: a tuple of ints, slices and at most one Ellipsis."""
    parts: list[Any] = []
    for part in text.split(","):
        part = part.replace(" ", "")
        if _KEY_INT.match(part):
            parts.append(int(part))
        elif part == "...":
            if Ellipsis in parts:
                raise ValueError(f"must have at most one '...', got '{text}'")
            parts.append(Ellipsis)
        else:
            match = _KEY_SLICE.match(part)
            if match is None:
                raise ValueError(f"must be integers, slices like 1:3 or ::2, and '...', separated by commas; got '{text}'")
            start, stop, step = (None if bound is None else int(bound) for bound in match.groups())
            if step == 0:
                raise ValueError(f"has a slice step of 0 in '{text}'")
            parts.append(slice(start, stop, step))
    return tuple(parts)


def _show_part(part: Any) -> str:
    if part is Ellipsis:
        return "..."
    if isinstance(part, int):
        return str(part)
    start, stop, step = ("" if bound is None else str(bound) for bound in (part.start, part.stop, part.step))
    return f"{start}:{stop}:{step}" if step else f"{start}:{stop}"


@register
class IndexLayer(BaseLayer):
    """Part of x, as numpy's basic indexing takes it: out = x[key], with integers, slices and ``...``.

    The gradient is dout put back where the part came from, in zeros of x's shape.
    """

    op = "index"
    args = ("x",)
    attrs = {"key": Attr(read_key, REQUIRED, KEY_DOC)}
    formula = "{x}[{key}]"
    grad_formulas = ("dout in {x}[{key}], 0 elsewhere",)
    key: str

    def out_shape(self, *shapes: Shape) -> Shape:
        xs = shapes[0]
        key = parse_key(self.key)
        taken = sum(part is not Ellipsis for part in key)
        if taken > len(xs):
            raise AttrError(f"[{self.key}] indexes {taken} axes, but {{x}} has {_dimensions(len(xs))}", "key")
        try:
            return np.broadcast_to(np.empty((), np.int8), xs)[key].shape  # a view: nothing allocated
        except IndexError as error:  # "index 3 is out of bounds for axis 0 with size 3"
            raise AttrError(f"[{self.key}]: {error} in {{x}}", "key") from None

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.asarray(x)[parse_key(self.key)]

    def backward(self, dout: Any) -> tuple[Any]:
        grad = np.zeros(shape_of(self.x), np.result_type(dout))
        grad[parse_key(self.key)] = dout
        return (grad,)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.apply("scatter", dout, key=self.key, shape=list(g.shape(args[0]))),)


# --- joining -----------------------------------------------------------------------


def read_int_axis(value: Any) -> int:
    """An axis: an integer, negative counting from the end."""
    if _is_int(value):
        return int(value)
    raise ValueError(f"must be an integer, got {describe(value)}")


def _role_shapes(roles: tuple[str, ...], shapes: tuple[Shape, ...]) -> str:
    return ", ".join(f"{{{role}}} {shape}" for role, shape in zip(roles, shapes))


@register
class ConcatLayer(VariadicLayer):
    """Inputs joined end to end along an existing axis: out = concatenate([x1, x2, ...], axis).

    Their shapes must agree except along ``axis``; each input's gradient is its part of dout.
    """

    op = "concat"
    attrs = {"axis": Attr(read_int_axis, 0, "the axis to join along (negative counts from the end); 0 by default")}
    formula = "concat([{x}, ...], axis={axis})"
    grad_formulas = ("dout's part along axis {axis} where {x} went",)
    axis: int

    def out_shape(self, *shapes: Shape) -> Shape:
        self.fit(len(shapes))
        first = shapes[0]
        if not first:
            raise ValueError("{x1} is 0-d; concat joins arrays along an axis")
        if not -len(first) <= self.axis < len(first):
            raise AttrError(f"axis {self.axis} is out of range for {{x1}}, which has {_dimensions(len(first))}", "axis")
        axis = self.axis % len(first)
        for role, shape in zip(self.args, shapes):
            if len(shape) != len(first) or shape[:axis] + shape[axis + 1:] != first[:axis] + first[axis + 1:]:
                raise ValueError(f"the shapes must agree except along axis {self.axis}: {_role_shapes(self.args, shapes)}")
        return first[:axis] + (sum(shape[axis] for shape in shapes),) + first[axis + 1:]

    def forward(self, *xs: Any) -> Any:
        self.keep(xs)
        return np.concatenate(xs, axis=self.axis)

    def backward(self, dout: Any) -> tuple[Any, ...]:
        ends = np.cumsum([np.shape(x)[self.axis] for x in self.inputs])[:-1]
        return tuple(np.split(dout, ends, axis=self.axis))

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        ndim = len(g.shape(args[0]))
        axis, start, parts = self.axis % ndim, 0, []
        for arg in args:
            stop = start + g.shape(arg)[axis]
            parts.append(g.apply("index", dout, key=", ".join([":"] * axis + [f"{start}:{stop}"])))
            start = stop
        return tuple(parts)


@register
class StackLayer(VariadicLayer):
    """Inputs of one shape stacked along a new axis: out = stack([x1, x2, ...], axis).

    Each input's gradient is its slice of dout along that axis.
    """

    op = "stack"
    attrs = {"axis": Attr(read_int_axis, 0, "where the new axis goes (negative counts from the end); 0 by default")}
    formula = "stack([{x}, ...], axis={axis})"
    grad_formulas = ("dout's slice along axis {axis} where {x} went",)
    axis: int

    def out_shape(self, *shapes: Shape) -> Shape:
        self.fit(len(shapes))
        first = shapes[0]
        if any(shape != first for shape in shapes):
            raise ValueError(f"the shapes must be the same: {_role_shapes(self.args, shapes)}")
        if not -len(first) - 1 <= self.axis <= len(first):
            raise AttrError(f"axis {self.axis} is out of range for stacking inputs of {_dimensions(len(first))}", "axis")
        axis = self.axis % (len(first) + 1)
        return first[:axis] + (len(shapes),) + first[axis:]

    def forward(self, *xs: Any) -> Any:
        self.keep(xs)
        return np.stack(xs, axis=self.axis)

    def backward(self, dout: Any) -> tuple[Any, ...]:
        return tuple(np.moveaxis(dout, self.axis, 0))

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        axis = self.axis % (len(g.shape(args[0])) + 1)
        return tuple(g.apply("index", dout, key=", ".join([":"] * axis + [str(k)])) for k in range(len(args)))
