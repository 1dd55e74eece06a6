"""The base layer, the op registry, attributes and the broadcasting helpers every layer uses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Callable, ClassVar, Mapping, Protocol, Sequence

import numpy as np

from ..arrays import describe

Shape = tuple[int, ...]

REGISTRY: dict[str, type[BaseLayer]] = {}


def register(cls: type[BaseLayer]) -> type[BaseLayer]:
    """Make a layer class available to graph files under its ``op`` name."""
    cls.required_attrs = tuple(key for key, attr in cls.attrs.items() if attr.default is REQUIRED)
    if cls.broadcast_args is None:  # elementwise ops, whose shape is the default broadcast of their inputs'
        cls.broadcast_args = cls.args if cls.out_shape is BaseLayer.out_shape else ()
    REGISTRY[cls.op] = cls
    return cls


def broadcast_shapes(*shapes: Shape) -> Shape:
    """The numpy broadcast of ``shapes``; ValueError where they do not broadcast."""
    result = shapes[0]
    for shape in shapes[1:]:
        if shape == result or not shape:
            continue
        if not result:
            result = shape
            continue
        lead = len(shape) - len(result)
        padded, shape = ((1,) * lead + result, shape) if lead > 0 else (result, (1,) * -lead + shape)
        sizes = []
        for a, b in zip(padded, shape):
            if a != b and a != 1 and b != 1:
                raise ValueError("they do not broadcast")
            sizes.append(b if a == 1 else a)
        result = tuple(sizes)
    return result


def shape_of(value: Any) -> Shape:
    """The shape of an array, or () for a Python float (a 0-d float64 value)."""
    return getattr(value, "shape", ())


def sum_axes(grad_shape: Shape, shape: Shape) -> tuple[int, ...]:
    """The axes of a gradient of ``grad_shape`` along which a value of ``shape`` was broadcast."""
    lead = len(grad_shape) - len(shape)
    return tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and grad_shape[lead + i] != 1
    )


def sum_to(grad: Any, shape: Shape) -> Any:
    """Sum ``grad`` over the axes along which a value of ``shape`` was broadcast."""
    grad_shape = getattr(grad, "shape", ())
    if grad_shape == shape:
        return grad
    return np.sum(grad, axis=sum_axes(grad_shape, shape), keepdims=True).reshape(shape)


@lru_cache(maxsize=None)
def summing_to(grad_shape: Shape, shape: Shape) -> Callable[[Any], Any]:
    """:func:`sum_to` for gradients of ``grad_shape`` to ``shape``, a shape broadcast to it, with its
    axes worked out once."""
    axes = sum_axes(grad_shape, shape)
    if len(axes) == len(grad_shape) - len(shape):  # leading axes only: the sum has the shape already
        return partial(np.add.reduce, axis=axes)
    return partial(sum_to, shape=shape)


def unbroadcast(grad: Any, value: Any) -> Any:
    """``grad`` summed over the axes along which ``value`` was broadcast, so it has value's shape."""
    if type(grad) is float:
        return grad  # 0-d: nothing was broadcast
    return sum_to(grad, getattr(value, "shape", ()))


def divide(x: Any, y: Any) -> Any:
    """x / y, with numpy's inf and NaN (not ZeroDivisionError) where a Python float y is 0."""
    try:
        return x / y
    except ZeroDivisionError:
        return np.divide(x, y)


# --- attributes -----------------------------------------------------------------------


class AttrError(ValueError):
    """A ValueError about an op's attributes: ones that contradict each other, or that the inputs'
    shapes do not fit. ``keys`` are the attributes at fault; an error is placed at the first of them
    that its node writes."""

    def __init__(self, message: str, *keys: str) -> None:
        super().__init__(message)
        self.keys = keys


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Attr:
    """An op's attribute, written in the node's mapping (``{op: sum, inputs: [x], axis: 0}``).

    ``read`` turns the written value into the layer's (accepting its own results too) or
    raises ValueError saying what it must be; ``default`` is REQUIRED where it has none. A
    ``quiet`` one is shown (in the layer's text and the JSON) only where it is not its default.
    """

    read: Callable[[Any], Any]
    default: Any
    doc: str
    quiet: bool = False


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _int_list(value: Any, expected: str) -> tuple[int, ...]:
    """A list (or tuple) of integers as a tuple; ValueError naming ``expected`` otherwise."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be {expected}, got {describe(value)}")
    for item in value:
        if not _is_int(item):
            raise ValueError(f"must be {expected}, got {describe(item)} in the list")
    if len(value) > 32:
        raise ValueError(f"must be {expected}, got a list of {len(value)}; at most 32 dimensions are supported")
    return tuple(int(item) for item in value)


def read_axis(value: Any) -> int | tuple[int, ...] | None:
    """An axis, a list of axes, or null for all axes."""
    if value is None:
        return None
    if _is_int(value):
        return int(value)
    return _int_list(value, "an integer, a list of integers or null")


def read_axes(value: Any) -> tuple[int, ...] | None:
    """An order of axes (a list of integers), or null for the reversed order."""
    return None if value is None else _int_list(value, "a list of integers or null")


def read_bool(value: Any) -> bool:
    """true or false."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"must be true or false, got {describe(value)}")


def read_shape(value: Any) -> tuple[int, ...]:
    """A shape: an integer or a list of non-negative integers, of which one may be -1."""
    expected = "a list of non-negative integers, one of which may be -1"
    shape = (int(value),) if _is_int(value) else _int_list(value, expected)
    if any(size < -1 for size in shape) or shape.count(-1) > 1:
        raise ValueError(f"must be {expected}, got {list(shape)}")
    return shape


def written(value: Any) -> str:
    """An attribute's value as written, for an error message: itself where short, else what kind it is."""
    text = repr(value)
    return text if len(text) <= 40 and not isinstance(value, str) else describe(value)


def _show(value: Any) -> str:
    """An attribute's value as formulas and descriptions show it."""
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _dimensions(count: int) -> str:
    return f"{count} dimension{'' if count == 1 else 's'}"


def _normal_axes(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """``axis`` as sorted non-negative axes of an ``ndim``-dimensional {x}; all of them for None."""
    if axis is None:
        return tuple(range(ndim))
    found: list[int] = []
    for item in (axis,) if isinstance(axis, int) else axis:
        if not -ndim <= item < ndim:
            raise AttrError(f"axis {item} is out of range for {{x}}, which has {_dimensions(ndim)}", "axis")
        if item % ndim in found:
            raise AttrError(f"axis {item % ndim} is given twice", "axis")
        found.append(item % ndim)
    return tuple(sorted(found))


# --- the base class -------------------------------------------------------------------


class BaseLayer:
    """One node's operation: ``forward(x, y) -> out`` and ``backward(dout) -> (dx, dy)``.

    ``forward`` keeps its inputs under the names in ``args`` (``self.x``, ``self.y``)
    for ``backward`` and for ``str(layer)``. Values may be numpy arrays or, for 0-d
    float64 values, Python floats, so layers use :func:`shape_of` rather than ``.shape``
    and numpy functions (inf and NaN, not exceptions) rather than Python's math.

    An op with attributes declares them in ``attrs``; the layer is built with them
    (``SumLayer(axis=0)``) and keeps them as attributes of the same names.
    """

    __slots__ = ()  # subclasses may list their fields in __slots__ for speed, or have a __dict__
    op: ClassVar[str] = ""
    args: ClassVar[tuple[str, ...]] = ("x", "y")
    variadic: ClassVar[bool] = False  # takes any number of inputs, at least one (see VariadicLayer)
    attrs: ClassVar[dict[str, Attr]] = {}
    required_attrs: ClassVar[tuple[str, ...]] = ()  # set by @register
    # The rules, for explaining a node: the value and each input's gradient, written with
    # {x}, {y} (the inputs, by the names in `args`), {out} (the value) and dout. A class's
    # rules may also use its attributes ({axis}); a layer object's have their values filled in.
    formula: ClassVar[str] = ""
    grad_formulas: ClassVar[tuple[str, ...]] = ()
    # The inputs broadcast to the output's shape, whose gradients the layer sums back over the
    # broadcast axes; by default (None), set by @register: all of them for ops that keep the
    # default out_shape (elementwise ops), none for the others.
    broadcast_args: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, **attrs: Any) -> None:
        if not attrs and not self.attrs:
            return
        cls = type(self)
        for key in attrs:
            if key not in cls.attrs:
                raise TypeError(f"{cls.__name__} has no attribute '{key}'")
        shown = {}
        for key, attr in cls.attrs.items():
            if key in attrs:
                try:
                    value = attr.read(attrs[key])
                except ValueError as error:
                    raise ValueError(f"{cls.op} attribute '{key}' {error}") from None
            elif attr.default is REQUIRED:
                raise TypeError(f"{cls.__name__} needs the attribute '{key}': {attr.doc}")
            else:
                value = attr.default
            setattr(self, key, value)
            shown["{" + key + "}"] = _show(value)
        try:
            cls.check_attrs({key: getattr(self, key) for key in cls.attrs})
        except AttrError as error:
            raise AttrError(f"{cls.op}: {error}", *error.keys) from None
        self.formula = _fill(cls.formula, shown)
        self.grad_formulas = tuple(_fill(rule, shown) for rule in cls.grad_formulas)

    @classmethod
    def check_attrs(cls, values: Mapping[str, Any]) -> None:
        """Raise AttrError where the attributes' ``values`` (read, defaults filled in) contradict one
        another, whatever the inputs; nothing for most ops."""

    @classmethod
    def takes(cls, count: int) -> bool:
        """Whether the op takes ``count`` inputs."""
        return count == len(cls.args)

    @classmethod
    def arity(cls) -> str:
        """How many inputs the op takes, in words: "2 inputs", "1 input"."""
        return f"{len(cls.args)} input{'s' * (len(cls.args) != 1)}"

    def forward(self, *inputs: Any) -> Any:
        """The node's value from its input values; keeps what backward needs."""
        raise NotImplementedError

    def backward(self, dout: Any) -> tuple[Any, ...]:
        """The gradient of each input, given the gradient ``dout`` of the output."""
        raise NotImplementedError

    def backward_step(self, shapes: tuple[Shape, ...], out_shape: Shape) -> Callable[[Any], tuple[Any, ...]]:
        """``backward``, or a quicker equivalent for inputs of ``shapes`` and an output of ``out_shape``.

        A graph calls this once, when the shapes are known, and calls what it returns for each
        backward pass; a layer whose backward does work that the shapes decide beforehand (a sum
        over broadcast axes) can leave out what is not needed.
        """
        return self.backward

    def partial_backward_step(self, shapes: tuple[Shape, ...], out_shape: Shape,
                              needed: tuple[bool, ...]) -> Callable[[Any], tuple[Any, ...]]:
        """:meth:`backward_step` where only the inputs flagged in ``needed`` want a gradient: the
        step may give None for the others, leaving out their work (a matrix product's dx, where
        x is data). By default it computes them all."""
        return self.backward_step(shapes, out_shape)

    def out_shape(self, *shapes: Shape) -> Shape:
        """The output's shape for inputs of ``shapes``; ValueError where they do not fit.

        The error's message may name the inputs as {x}, {y} (by the names in ``args``).
        """
        return broadcast_shapes(*shapes)

    def applied_rules(self, *shapes: Shape) -> tuple[str, tuple[str, ...]]:
        """The rules applied for inputs of ``shapes``: the value's and each input's gradient's,
        written as ``formula`` and ``grad_formulas`` are (the same for most ops)."""
        return self.formula, self.grad_formulas

    def discrete_args(self, *shapes: Shape) -> tuple[int, ...]:
        """Indices of the inputs that, for inputs of ``shapes``, hold discrete data (class indices):
        their gradient is defined as 0 and they cannot be moved by a small step."""
        return ()

    def work(self, *shapes: Shape) -> int:
        """Multiply-adds of one forward and backward pass for inputs of ``shapes``, for ops whose
        cost grows faster than their values' sizes (matrix products, convolutions); 0 for the others.

        The graph refuses to run past a budget of work (``--max-work``) before computing anything.
        """
        return 0

    def scratch_elements(self, *shapes: Shape) -> int:
        """Elements of the temporary buffers a pass holds beyond the values and gradients
        (im2col's matrix for a convolution); 0 for most ops. Counted in the memory budget."""
        return 0

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        """The rules of ``backward`` as nodes: each input's gradient built with ``g``'s ops from the
        names of the inputs (``args``), of the value (``out``) and of its gradient (``dout``);
        None for a gradient that is 0. The nodes are ordinary ops, so they can be differentiated
        again. Ops without such rules raise NotImplementedError."""
        raise NotImplementedError

    def shown_attrs(self) -> dict[str, Any]:
        """The attributes' values, by name, but for the quiet ones at their defaults."""
        return {key: getattr(self, key) for key, attr in self.attrs.items()
                if not (attr.quiet and getattr(self, key) == attr.default)}

    def __str__(self) -> str:
        name = type(self).__name__
        attrs = [f"{key}={_show(value)}" for key, value in self.shown_attrs().items()]
        if not hasattr(self, self.args[0]):
            return f"{name}({', '.join(attrs)}) (not run)" if attrs else f"{name} (not run)"
        in_shapes = [shape_of(getattr(self, arg)) for arg in self.args]
        shapes = [f"{arg}.shape={shape}" for arg, shape in zip(self.args, in_shapes)]
        return f"{name}({', '.join(shapes + attrs)}) -> out.shape={self.out_shape(*in_shapes)}"

    def signature(self, names: Sequence[str], in_shapes: Sequence[Shape], out_shape: Shape) -> str:
        """The layer's shape line with the user's names beside its roles:
        ``MulLayer(x=apple_price (), y=tax ()) -> out ()`` for inputs ``names`` of ``in_shapes``."""
        inputs = [f"{role}={name} {shape}" for role, name, shape in zip(self.args, names, in_shapes)]
        attrs = [f"{key}={_show(value)}" for key, value in self.shown_attrs().items()]
        return f"{type(self).__name__}({', '.join(inputs + attrs)}) -> out {out_shape}"


def _fill(rule: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        rule = rule.replace(placeholder, value)
    return rule


class VariadicLayer(BaseLayer):
    """A layer of any number of inputs, at least one, called x1, x2, ... in its rules and messages.

    The class's rules are written for one input ``{x}``, with ``{x}, ...`` in ``formula``
    standing for all of them; :meth:`fit` writes them out for a number of inputs. Subclasses
    call it first in ``out_shape`` and ``forward``, and ``forward`` keeps its inputs as x1, x2, ...
    """

    variadic = True
    args = ("x",)

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.rules = (self.formula, self.grad_formulas[0])  # with attribute values, for one input {x}

    @classmethod
    def takes(cls, count: int) -> bool:
        return count >= 1

    @classmethod
    def arity(cls) -> str:
        return "1 or more inputs"

    def fit(self, count: int) -> None:
        """Name the inputs x1 ... x``count`` and write the rules out for them."""
        roles = tuple(f"x{i}" for i in range(1, count + 1))
        if self.args == roles:
            return
        formula, grad_formula = self.rules
        self.args = roles
        self.formula = formula.replace("{x}, ...", ", ".join("{" + role + "}" for role in roles))
        self.grad_formulas = tuple(grad_formula.replace("{x}", "{" + role + "}") for role in roles)

    def keep(self, inputs: tuple[Any, ...]) -> None:
        """Fit the layer to ``inputs`` and keep them, as x1, x2, ..., for backward and str()."""
        self.fit(len(inputs))
        self.__dict__.update(zip(self.args, inputs))
        self.inputs = inputs


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, the noun singular for 1 (its plural adds 's'): '1 row', '3 rows'."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class GradBuilder(Protocol):
    """What a layer's :meth:`BaseLayer.grad_graph` builds its gradient's nodes with. Each method
    adds a node (or finds one that computes the same) and returns its name; None stands for 0."""

    def shape(self, name: str) -> Shape:
        """The shape of the value ``name``."""

    def number(self, value: float) -> str:
        """The name of a constant."""

    def constant(self, name: str) -> float | None:
        """The value of the constant ``name``; None where it is not a constant."""

    def apply(self, op: str, *args: str, **attrs: Any) -> str:
        """A node of ``op`` on ``args`` with ``attrs``."""

    def mul(self, x: str | None, y: str | None) -> str | None:
        """x * y."""

    def add(self, x: str | None, y: str | None) -> str | None:
        """x + y."""

    def sub(self, x: str | None, y: str | None) -> str | None:
        """x - y."""

    def div(self, x: str | None, y: str) -> str | None:
        """x / y."""

    def neg(self, x: str | None) -> str | None:
        """-x."""

    def sum_to(self, x: str | None, shape: Shape) -> str | None:
        """x summed to ``shape``, to which it was broadcast."""

    def broadcast_to(self, x: str | None, shape: Shape) -> str | None:
        """x broadcast to ``shape``."""

    def reshape(self, x: str | None, shape: Shape) -> str | None:
        """x in ``shape``."""

    def transpose(self, x: str, axes: tuple[int, ...] | None = None) -> str:
        """x with its axes in the order ``axes`` (reversed where None)."""
