"""A graph of layer objects built from a spec, with its forward and backward passes."""

from __future__ import annotations

import gc
import math
from contextlib import contextmanager
from itertools import repeat
from operator import attrgetter
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .arrays import DEFAULT_MAX_ELEMENTS, MAX_DIMS, array_from_data, cast, check_shape, suggest
from .errors import CgraphError
from .layers import REGISTRY, BaseLayer, Shape, broadcast_shapes
from .spec import GraphSpec


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: building or running a large graph makes millions
    of objects, none in reference cycles, and each collection would walk them all again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Slots(Mapping[str, Any]):
    """A read-only mapping from names to the items of a list a pass filled in, aligned with them:
    a run's values and gradients read by name without a dict built for every run."""

    __slots__ = ("_index", "_items", "_names")

    def __init__(self, names: Sequence[str], index: Mapping[str, int], items: Sequence[Any]) -> None:
        self._names, self._index, self._items = names, index, items

    def __getitem__(self, name: str) -> Any:
        return self._items[self._index[name]]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def values(self) -> list[Any]:  # type: ignore[override]
        """The items, in the names' order (a list: no view is needed of a read-only mapping)."""
        return list(self._items)

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """(name, item) pairs, in the names' order."""
        return zip(self._names, self._items)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class InputGrads(Slots):
    """Node names mapped to one gradient per node input: None for an input that is a constant,
    which takes no gradient (put in on reading, so a pass makes no tuple for it)."""

    __slots__ = ("_constant",)

    def __init__(self, names: Sequence[str], index: Mapping[str, int], items: Sequence[Any],
                 constant: Mapping[int, tuple[bool, ...]]) -> None:
        super().__init__(names, index, items)
        self._constant = constant  # per node that uses constants (by its position): which inputs are

    def __getitem__(self, name: str) -> Any:
        k = self._index[name]
        grads, constant = self._items[k], self._constant.get(k)
        return grads if constant is None else tuple(None if is_constant else grad
                                                    for is_constant, grad in zip(constant, grads))

    def values(self) -> list[Any]:  # type: ignore[override]
        if not self._constant:
            return list(self._items)
        return [self[name] for name in self._names]

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        return ((name, self[name]) for name in self._names)


class Graph:
    """One layer object per node; values and gradients of every input and node after a run.

    ``values``, ``grads`` and ``input_grads`` map names to arrays (the latter to one
    gradient per node input, as the layer's backward returned it) and fill in as
    :meth:`forward` and :meth:`backward` run. A graph whose values are all 0-d float64
    runs on Python floats, so there its values and gradients are floats.
    """

    def __init__(self, spec: GraphSpec, max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        self.spec = spec
        self.output = spec.output
        nodes = spec.nodes.values()
        if any(map(attrgetter("attrs"), nodes)):
            layers = [REGISTRY[node.op](**node.attrs) for node in nodes]
        else:  # no attributes: each op's class made without arguments
            layers = [cls() for cls in map(REGISTRY.__getitem__, map(attrgetter("op"), nodes))]
        self.layers: dict[str, BaseLayer] = dict(zip(spec.nodes, layers))
        self.max_elements = max_elements
        self.shapes = self._infer_shapes({name: item.value.shape for name, item in spec.inputs.items()})
        self.values: Mapping[str, Any] = {}
        self.grads: Mapping[str, Any] = {}
        self.input_grads: Mapping[str, tuple[Any, ...]] = {}
        self.dout: Any = None
        self._finite: bool | None = None  # all_finite's answer for the current values and gradients
        # The passes work on lists indexed like `names`: inputs, constants, then nodes in dependency order.
        self._names = [*spec.inputs, *spec.constants, *spec.nodes]
        self._index = dict(zip(self._names, range(len(self._names))))
        count, first = len(spec.inputs), len(spec.inputs) + len(spec.constants)
        self._node_names = self._names[first:]
        self._node_index = dict(zip(self._node_names, range(len(self._node_names))))
        self._compile()
        # The names that have gradients: not constants, where nodes use them (they take none).
        if self._constant_masks:
            self._grad_names = self._names[:count] + self._node_names
            self._grad_index = {name: i for i, name in enumerate(self._grad_names)}
        else:
            self._grad_names, self._grad_index = self._names, self._index

    def _compile(self) -> None:
        """The plan the passes follow, one step per node: where its inputs are, its layer's
        forward, and its backward specialised to the shapes (see BaseLayer.backward_step)."""
        index = self._index
        count, first = len(self.spec.inputs), len(self.spec.inputs) + len(self.spec.constants)
        shapes = self.shapes
        args = [*map(attrgetter("args"), self.spec.nodes.values())]
        layers = self.layers.values()
        steps = [layer.backward_step(arg_shapes, out_shape) for layer, arg_shapes, out_shape in zip(
            layers, map(tuple, map(map, repeat(shapes.__getitem__), args)), map(shapes.__getitem__, self.layers))]
        self._plan = [*zip(range(first, first + len(args)), map(attrgetter("forward"), layers), steps,
                           map(tuple, map(map, repeat(index.__getitem__), args)))]
        # Per node that uses constants, by its position: which of its inputs are constants (they take no gradient).
        self._constant_masks: dict[int, tuple[bool, ...]] = {}
        self._constant_nodes: list[int] = []
        if count < first:
            self._constant_masks = {
                k: tuple(count <= arg < first for arg in args)
                for k, (_, _, _, args) in enumerate(self._plan) if any(count <= arg < first for arg in args)
            }
            # The nodes whose value comes from constants alone (1 / 4): where inputs hold arrays, their
            # values are made arrays too.
            made_of_constants = set(range(count, first))
            for out, _, _, args in self._plan:
                if made_of_constants.issuperset(args):
                    made_of_constants.add(out)
            self._constant_nodes = sorted(made_of_constants - set(range(count, first)))
        self._floats = self._all_floats()
        self._partial_plans: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}

    def _partial_plan(self, only: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """The plan's steps that lead to the inputs ``only``, each told which of its inputs want a
        gradient (see BaseLayer.partial_backward_step); made once per set of inputs and shapes."""
        plan = self._partial_plans.get(only)
        if plan is None:
            wanted = [False] * len(self._names)
            for name in only:
                wanted[self._index[name]] = True
            plan = []
            for (out, forward, _, args), layer, node in zip(self._plan, self.layers.values(), self.spec.nodes.values()):
                needed = tuple(wanted[arg] for arg in args)
                if any(needed):
                    wanted[out] = True
                    step = layer.partial_backward_step(tuple(map(self.shapes.__getitem__, node.args)),
                                                       self.shapes[self._names[out]], needed)
                    plan.append((out, forward, step, args))
            self._partial_plans[only] = plan
        return plan

    def _all_floats(self) -> bool:
        """Whether every value is 0-d float64: such a graph runs on Python floats, several times
        faster than on numpy scalars."""
        return all(item.value.dtype == np.float64 for item in self.spec.inputs.values()) and not any(
            self.shapes.values())

    def set_input(self, name: str, value: Any) -> None:
        """Replace input ``name``'s value for the next :meth:`forward` and :meth:`backward`.

        ``value`` (a number, nested lists or an array) is converted to the input's dtype; an
        array of that dtype is used as it is, not copied. A new shape is allowed where every
        node's shape still works, which is checked here, before anything runs; otherwise a
        CgraphError (a ValueError) names the input and both shapes. Nothing is parsed or rebuilt.
        """
        self.set_inputs({name: value})

    def set_inputs(self, values: Mapping[str, Any]) -> None:
        """:meth:`set_input` for several inputs at once, whose new shapes are checked together
        (a batch of another size changes the data and its labels)."""
        arrays = {}
        for name, value in values.items():
            item = self.spec.inputs.get(name)
            if item is None:
                kind = "is a node, not an input" if name in self.spec.nodes else f"is not an input{suggest(name, self.spec.inputs)}"
                raise CgraphError(f"set_input: '{name}' {kind}")
            dtype = item.value.dtype
            if type(value) is np.ndarray and value.dtype == dtype:
                arrays[name] = value
                continue
            try:
                arrays[name] = array_from_data(value, None, dtype)
            except CgraphError as error:
                raise CgraphError(f"set_input '{name}': {error.message}") from None
        changed = {name: array.shape for name, array in arrays.items() if array.shape != self.shapes[name]}
        if changed:
            for name, shape in changed.items():
                if len(shape) > MAX_DIMS or math.prod(shape) > self.max_elements or max(shape, default=0) > self.max_elements:
                    raise CgraphError(f"set_input '{name}': an array of shape {shape} is over the limits "
                                      f"({MAX_DIMS} dimensions, {self.max_elements:,} elements)")
            try:
                shapes = self._infer_shapes({**{name: self.shapes[name] for name in self.spec.inputs}, **changed})
            except CgraphError as error:
                replaced = ", ".join(f"'{name}' shape {shape} in place of {self.shapes[name]}"
                                     for name, shape in changed.items())
                raise CgraphError(f"set_input {replaced} does not fit the graph: {error.message}", error.pos) from None
            self.shapes = shapes
        for name, array in arrays.items():
            self.spec.inputs[name].value = array
        if changed:
            self._compile()
        self.values, self.grads, self.input_grads = {}, {}, {}
        self._finite = None

    def _infer_shapes(self, shapes: dict[str, Shape]) -> dict[str, Shape]:
        """Every value's shape from the inputs' ``shapes``, checked before anything is computed."""
        max_elements = self.max_elements
        shapes = dict(shapes)
        shapes.update(dict.fromkeys(self.spec.constants, ()))
        given = set(shapes.values())
        if len(given) == 1 and all(REGISTRY[op].out_shape is BaseLayer.out_shape
                                   for op in set(map(attrgetter("op"), self.spec.nodes.values()))):
            # Every value has the one shape of the inputs: elementwise ops keep it (as their out_shape says).
            shapes.update(dict.fromkeys(self.spec.nodes, given.pop()))
            return shapes
        within_limits: set[Shape] = set()  # shapes checked against the limits, which most nodes repeat
        # The output shapes found for an op without attributes, by its class and its inputs' shapes:
        # most nodes repeat one, and out_shape depends on nothing else there.
        known: dict[tuple[Any, ...], Shape] = {}
        layers = self.layers
        for name, node in self.spec.nodes.items():
            arg_shapes = [*map(shapes.__getitem__, node.args)]
            layer = layers[name]
            key = None if node.attrs else (type(layer), *arg_shapes)
            shape = known.get(key) if key else None
            if shape is not None:
                shapes[name] = shape
                continue
            try:
                shape = layer.out_shape(*arg_shapes)
            except ValueError as error:
                described = [
                    f"{arg} {shape}{' (from --set)' if arg in self.spec.overridden else ''}"
                    for arg, shape in zip(node.args, arg_shapes)
                ]
                listed = " and ".join([", ".join(described[:-1]), described[-1]] if len(described) > 2 else described)
                what = "take shape" if len(described) == 1 else "combine shapes"
                raise CgraphError(
                    f"node '{name}': {node.op} cannot {what} {listed}: {_named(str(error), layer, node.args)}",
                    self.spec.attr_position(name, getattr(error, "keys", ())) or self.spec.position(name),
                ) from None
            if shape and shape not in within_limits:
                try:
                    check_shape(shape, max_elements, None, f"node '{name}': its value")
                except CgraphError as error:  # found where the node is only now: that may read the file again
                    raise CgraphError(error.message, self.spec.position(name)) from None
                within_limits.add(shape)
            shapes[name] = shape
            if key:
                known[key] = shape
        return shapes

    def forward(self) -> Any:
        """Run every node in dependency order; return the output's value."""
        values: list[Any] = [item.value for item in self.spec.inputs.values()]
        if self._floats:
            values = [float(value) for value in values]
        values.extend(self.spec.constants.values())  # Python floats: a float32 array times 2 stays float32
        values.extend([None] * len(self._plan))
        # The last run's values and gradients go now, not at the end: each layer lets go of its
        # inputs as it runs again, so their memory is free for this run's arrays.
        self._values, self.values, self.grads, self.input_grads = [], {}, {}, {}
        try:
            with np.errstate(all="ignore"), paused_gc():
                for out, forward, _, args in self._plan:
                    if len(args) == 2:
                        values[out] = forward(values[args[0]], values[args[1]])
                    elif len(args) == 1:
                        values[out] = forward(values[args[0]])
                    else:
                        values[out] = forward(*[values[arg] for arg in args])
        except ValueError as error:  # a value the layer cannot take, such as a label out of range
            name = self._names[out]
            message = _named(str(error), self.layers[name], self.spec.nodes[name].args)
            raise CgraphError(f"node '{name}': {message}", self.spec.position(name)) from None
        if not self._floats:  # nodes of constants alone made Python floats: arrays, as every value here
            for out in self._constant_nodes:
                values[out] = np.asarray(values[out])
        self._values = values
        self.values = Slots(self._names, self._index, values)
        self.grads, self.input_grads = {}, {}
        self._finite = None
        return self.values[self.output]

    def backward(self, dout: Any = 1.0, only: Sequence[str] | None = None) -> Mapping[str, Any]:
        """Inject ``dout`` at the output, run backward; return every input's and node's gradient.

        The gradient of v is dL/dv for L = sum(dout * output); ``dout`` is broadcast
        to the output's shape. Runs forward first if it has not run. With ``only`` (names of
        inputs), just their gradients are worked out and returned, as training needs: the
        steps that lead elsewhere are left out, and ``input_grads`` stays empty.
        """
        for name in only or ():
            if name not in self.spec.inputs:
                raise CgraphError(f"backward: '{name}' is not an input{suggest(name, self.spec.inputs)}")
        if not self.values:
            self.forward()
        if self._floats and (type(dout) is float
                             or (type(dout) is np.ndarray and dout.dtype == np.float64 and dout.shape == ())):
            self.dout = float(dout)  # the usual case of a sweep or a loop, without the checks below
        else:
            out = np.asarray(self.values[self.output])
            dout = cast(dout, out.dtype)
            try:
                fits = broadcast_shapes(dout.shape, out.shape) == out.shape
            except ValueError:
                fits = False
            if not fits:
                raise CgraphError(
                    f"--dout: shape {dout.shape} does not broadcast to the shape {out.shape} of output '{self.output}'"
                )
            self.dout = float(dout) if self._floats else np.array(np.broadcast_to(dout, out.shape))

        values = self._values
        self.grads, self.input_grads = {}, {}  # the last run's gradients: their memory is free for this run's
        grads: list[Any] = [None] * len(values)
        grads[self._index[self.output]] = self.dout
        plan = self._plan if only is None else self._partial_plan(tuple(only))
        input_grads: list[Any] = [None] * len(plan)
        with np.errstate(all="ignore"), paused_gc():
            (_backward_floats if self._floats else _backward_arrays)(plan, grads, input_grads)
        if only is not None:
            self.grads = {}
            for name in only:
                grad, value = grads[self._index[name]], values[self._index[name]]
                self.grads[name] = (_zeros_like(value) if grad is None else grad if self._floats
                                    else cast(grad, value.dtype))
            self._finite = None
            return self.grads

        if None in input_grads:
            input_grads = [
                tuple(_zeros_like(values[arg]) for arg in args) if arg_grads is None else arg_grads
                for (_, _, _, args), arg_grads in zip(plan, input_grads)
            ]
        first = len(values) - len(plan)
        if self._constant_masks:  # constants take no gradient: no entry
            count = len(self.spec.inputs)
            del grads[count:first]
            values = values[:count] + values[first:]
        if self._floats:
            grads = [0.0 if grad is None else grad for grad in grads]
        else:
            grads = [_zeros_like(value) if grad is None else cast(grad, value.dtype) for grad, value in zip(grads, values)]
        self.grads = Slots(self._grad_names, self._grad_index, grads)
        self.input_grads = InputGrads(self._node_names, self._node_index, input_grads, self._constant_masks)
        self._finite = None
        return self.grads

    def explain(self, precision: int = 8) -> Any:
        """The chain rule of the backward pass, as ``cgraph explain`` writes it: an object whose
        ``str()`` is the text and which a notebook shows as text. Backward runs first (dout 1)
        where it has not run since the inputs last changed."""
        from .notebook import Explanation  # downstream of the graph, imported only when asked for

        return Explanation(self, precision)

    def _repr_html_(self) -> str:
        """The interactive page inside a notebook's cell (an iframe), with the values and
        gradients; backward runs first (dout 1) where it has not run."""
        from .notebook import page_frame  # downstream of the graph, imported only when shown

        return page_frame(self)

    def all_finite(self) -> bool:
        """Whether every value and gradient of the last run is finite (per-input gradients too:
        a gradient is their sum, so it is finite only where they all are).

        One check over all small arrays together; large ones are checked one by one, as
        putting them together would copy them."""
        if self._finite is None:
            constants = self.spec.constants  # finite, and Python floats among arrays
            values = [value for name, value in self.values.items() if name not in constants] if constants else self.values.values()
            arrays = [*values, *self.grads.values()]
            self._finite = _all_finite(arrays, self._floats)
        return self._finite

    def non_finite(self) -> list[tuple[str, str]]:
        """Where NaN or infinity entered, first first: (name, message) for a non-finite dout,
        the inputs that hold them, the first node whose value is non-finite from finite inputs,
        and the first place in the backward pass that made a non-finite gradient from finite
        ones. Each message names the first non-finite element. Empty where all is finite."""
        if self.all_finite():
            return []  # the common case, checked at once
        return diagnose_non_finite(self)


def _backward_floats(plan: list[tuple[Any, ...]], grads: list[Any], input_grads: list[Any]) -> None:
    """The backward pass over ``plan`` where every value is a Python float: each node's gradient
    from ``grads`` (None where nothing reached it) into its inputs', its inputs' gradients kept
    in ``input_grads``."""
    for k in range(len(plan) - 1, -1, -1):
        out, _, step, args = plan[k]
        grad = grads[out]
        if grad is None:
            continue
        arg_grads = input_grads[k] = step(grad)
        if len(args) == 2:
            first, second = args
            previous = grads[first]
            grads[first] = arg_grads[0] if previous is None else previous + arg_grads[0]
            previous = grads[second]
            grads[second] = arg_grads[1] if previous is None else previous + arg_grads[1]
        else:
            for arg, arg_grad in zip(args, arg_grads):
                previous = grads[arg]
                grads[arg] = arg_grad if previous is None else previous + arg_grad


def _backward_arrays(plan: list[tuple[Any, ...]], grads: list[Any], input_grads: list[Any]) -> None:
    """:func:`_backward_floats` where values are arrays: a value's gradient is added up in place
    in an array made here once it has two contributions."""
    owned: set[int] = set()  # gradients in arrays made here, which no one else holds
    for k in range(len(plan) - 1, -1, -1):
        out, _, step, args = plan[k]
        grad = grads[out]
        if grad is None:
            continue
        arg_grads = input_grads[k] = step(grad)
        for arg, arg_grad in zip(args, arg_grads):
            previous = grads[arg]
            if arg_grad is None:  # not wanted (see Graph._partial_plan)
                continue
            if previous is None:
                grads[arg] = arg_grad
            elif arg in owned and (previous.dtype is arg_grad.dtype
                                   or previous.dtype == np.result_type(previous, arg_grad)):
                np.add(previous, arg_grad, out=previous)
            else:
                # A new array: a layer may hand on the very array it was given (add's
                # backward passes dout on), so only arrays made here are added into.
                grads[arg] = previous = previous + arg_grad
                if type(previous) is np.ndarray:
                    owned.add(arg)


def diagnose_non_finite(graph: Graph) -> list[tuple[str, str]]:
    """The messages of :meth:`Graph.non_finite`, found by looking at every value and gradient."""
    found = []
    values, nodes = graph.values, graph.spec.nodes
    if graph.grads and not _finite(graph.dout):
        found.append(("", f"--dout holds {first_non_finite(graph.dout)} in the output's dtype {_dtype(graph.dout)}"))
    found += [(name, f"input '{name}' holds {first_non_finite(values[name])}")
              for name in graph.spec.inputs if not _finite(values[name])]
    for name, node in nodes.items():
        if not _finite(values[name]) and all(_finite(values[arg]) for arg in node.args):
            found.append((name, f"node '{name}' ({node.op}) produced {first_non_finite(values[name])} from finite inputs"))
            break
    if graph.grads and _finite(graph.dout):
        problem = _first_backward_problem(graph)
        if problem:
            found.append(problem)
    return found


def _first_backward_problem(graph: Graph) -> tuple[str, str] | None:
    """In backward order, the first gradient made non-finite from finite ones: by a node's backward,
    by adding up the contributions of a value's uses, or by casting a gradient to its value's dtype."""
    nodes, values, grads = graph.spec.nodes, graph.values, graph.grads
    uses: dict[str, list[tuple[str, Any]]] = {}
    for name, node in nodes.items():
        for arg, grad in zip(node.args, graph.input_grads[name]):
            if grad is not None:  # None: a constant, which takes no gradient
                uses.setdefault(arg, []).append((name, grad))
    for name in [*reversed(nodes), *graph.spec.inputs]:
        contributions = uses.get(name, [])
        if name != graph.output and not _finite(grads[name]) and all(_finite(grad) for _, grad in contributions):
            with np.errstate(all="ignore"):
                total = sum(grad for _, grad in contributions)
            bad = first_non_finite(grads[name])
            if not _finite(total):
                users = ", ".join(user for user, _ in contributions)
                return name, (f"the gradient of '{name}' became {bad} when the {len(contributions)} gradients "
                              f"from its uses ({users}), each finite, were added up")
            return name, f"the gradient of '{name}' became {bad} when cast to its value's dtype {_dtype(values[name])}"
        node = nodes.get(name)
        if node is None or not _finite(grads[name]) or not all(_finite(values[arg]) for arg in node.args):
            continue  # the NaN or infinity came from elsewhere
        for arg, grad in zip(node.args, graph.input_grads[name]):
            if grad is not None and not _finite(grad):
                return name, (f"node '{name}' ({node.op}) backward produced {first_non_finite(grad)} in the "
                              f"gradient of '{arg}' from a finite gradient")
    return None


def first_non_finite(value: Any) -> str:
    """The first NaN or infinity in ``value`` and where it is: ``-inf at [0, 2]``, ``NaN`` (0-d)."""
    array = np.asarray(value)
    if array.ndim == 0:
        return _spelled(float(array))
    index = np.unravel_index(int(np.argmin(np.isfinite(array))), array.shape)
    return f"{_spelled(float(array[index]))} at [{', '.join(map(str, index))}]"


def _spelled(number: float) -> str:
    return "NaN" if math.isnan(number) else "inf" if number > 0 else "-inf"


def _dtype(value: Any) -> str:
    return "float64" if type(value) is float else str(value.dtype)


def _named(message: str, layer: BaseLayer, names: tuple[str, ...]) -> str:
    """A layer's error message with its inputs ({x}, {y}) called by the names of the node's inputs."""
    for role, name in zip(layer.args, names):
        message = message.replace("{" + role + "}", f"'{name}'")
    return message


def _zeros_like(value: Any) -> Any:
    return 0.0 if type(value) is float else np.zeros(value.shape, value.dtype)


def _finite(array: Any) -> bool:
    if type(array) is float:
        return math.isfinite(array)
    return bool(np.isfinite(array).all())


SMALL_ARRAY = 4096  # arrays up to this many elements are checked for NaN and infinity together


def _all_finite(arrays: list[Any], floats: bool) -> bool:
    """Whether every element of ``arrays`` (numpy arrays, or numbers where ``floats``) is finite."""
    if floats:
        try:  # a sum is finite only where every term is; where it overflows, each is checked
            return math.isfinite(math.fsum(arrays))
        except (OverflowError, ValueError):
            return all(map(math.isfinite, arrays))
    small = [array for array in arrays if array.size <= SMALL_ARRAY]
    if small and not np.isfinite(np.concatenate(small, axis=None)).all():
        return False
    return len(small) == len(arrays) or all(_finite(array) for array in arrays if array.size > SMALL_ARRAY)
