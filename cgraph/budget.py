"""The whole graph's cost, worked out from its shapes before anything runs: the bytes of the
values and gradients it keeps and the multiply-adds of its expensive ops, and the limits on them."""

from __future__ import annotations

import math
import os
from collections import Counter
from itertools import chain, repeat
from dataclasses import dataclass

from .errors import CgraphError, Position
from .graph import Graph
from .layers import REGISTRY, BaseLayer
from .render import CHUNK_ELEMENTS

MEMORY_FRACTION = 0.5  # of the memory available at start: the default --max-memory
DEFAULT_MAX_WORK = 10**11  # multiply-adds: some seconds of numpy; a (10000, 10000) @ (10000, 10000) product is 3e12
# What writing the output holds per element of the chunk it formats at a time, at most: measured, --full
# text (each number a Python float, then a string, then part of a line) holds about 350 bytes; JSON under 30.
OUTPUT_ELEMENT_BYTES = 512


@dataclass(frozen=True)
class Estimate:
    """What running a graph will hold and do: ``memory`` in bytes, ``work`` in multiply-adds,
    the node doing the most work (None where no op counts any) and ``output``, the bytes that
    writing the values (and gradients) out holds besides."""

    memory: int
    work: int
    busiest: str | None = None
    output: int = 0


def estimate(graph: Graph, backward: bool = True, forward_passes: int = 1) -> Estimate:
    """The bytes of every value, gradient (with ``backward``) and layer scratch buffer a run keeps
    (inputs memory-mapped from .npy files or filled with one number excepted), and the
    multiply-adds of ``forward_passes`` runs, each counted as a forward and a backward pass.
    Node values are counted at the widest input dtype; a graph of 0-d values is counted at
    once, as an array per value and per gradient. ``output`` bounds what writing the values and
    gradients out holds (see :func:`output_bytes`)."""
    spec, shapes = graph.spec, graph.shapes
    inputs = spec.inputs.values()
    widest = max((item.value.dtype.itemsize for item in inputs), default=8)
    if not any(shapes.values()):  # all 0-d, as in long chains of scalars: a few numbers per value, no costly op
        arrays = len(shapes) + (len(shapes) + sum(map(len, (node.args for node in spec.nodes.values()))) if backward else 0)
        return Estimate(widest * arrays, 0, output=output_bytes(arrays))
    sizes = dict(zip(shapes, map(math.prod, shapes.values())))
    node_elements = sum(map(sizes.__getitem__, spec.nodes))
    # Inputs memory-mapped from .npy files, and fill inputs (one number broadcast), own no memory.
    memory = widest * node_elements + sum(item.value.nbytes for item in inputs if item.value.flags.owndata)
    if backward:
        # A value's gradient, and each gradient a node's backward returns for its inputs; where a
        # value is used once, the two are one array.
        uses = Counter(chain.from_iterable(node.args for node in spec.nodes.values()))
        arrays = {name: count if count == 1 else count + 1 for name, count in zip(sizes, map(uses.get, sizes, repeat(0)))}
        memory += widest * sum([sizes[name] * arrays[name] for name in spec.nodes])
        memory += sum(item.value.dtype.itemsize * sizes[name] * arrays[name] for name, item in spec.inputs.items())
    elements = sum(sizes.values()) * (2 if backward else 1)  # values, and gradients as many again: a bound

    work, busiest, most = 0, None, 0
    costly = {op for op, layer in REGISTRY.items()
              if layer.work is not BaseLayer.work or layer.scratch_elements is not BaseLayer.scratch_elements}
    for name in [name for name, node in spec.nodes.items() if node.op in costly]:
        layer, arg_shapes = graph.layers[name], [shapes[arg] for arg in spec.nodes[name].args]
        memory += widest * layer.scratch_elements(*arg_shapes)
        own = layer.work(*arg_shapes) * forward_passes
        work += own
        if own > most:
            busiest, most = name, own
    return Estimate(memory, work, busiest, output_bytes(elements))


def output_bytes(elements: int) -> int:
    """What writing ``elements`` numbers out holds at most: the renderers format CHUNK_ELEMENTS at a time."""
    return OUTPUT_ELEMENT_BYTES * min(elements, CHUNK_ELEMENTS)


def check_budget(graph: Graph, max_memory: int, max_work: int, backward: bool = True, forward_passes: int = 1) -> None:
    """Refuse, with one line naming the option that raises the limit, a graph whose
    :func:`estimate` is over ``max_memory`` bytes (what writing the output holds counted in) or
    ``max_work`` multiply-adds."""
    cost = estimate(graph, backward, forward_passes)
    if cost.work > max_work:
        node = graph.spec.nodes[cost.busiest] if cost.busiest else None
        where = f", most of it in node '{cost.busiest}' ({node.op})" if node else ""
        raise CgraphError(
            f"the graph needs about {cost.work:.2g} multiply-adds{where}, over the limit of {max_work:.2g} "
            "(raise it with --max-work)",
            graph.spec.position(cost.busiest) if cost.busiest else Position(graph.spec.source),
        )
    if cost.memory + cost.output > max_memory:
        writing = f" and writing them out up to {format_bytes(cost.output)} more" if cost.memory <= max_memory else ""
        raise CgraphError(
            f"the graph's values{' and gradients' if backward else ''} need about {format_bytes(cost.memory)}"
            f"{writing}, over the limit of {format_bytes(max_memory)} (raise it with --max-memory)",
            Position(graph.spec.source),
        )


def available_memory() -> int:
    """Bytes of memory available to a new process now: Linux's MemAvailable, else free physical memory."""
    try:
        with open("/proc/meminfo", "rb") as file:
            for line in file:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**34  # unknown: 16 GiB


def default_max_memory() -> int:
    """The default --max-memory: MEMORY_FRACTION of the memory available now."""
    return int(available_memory() * MEMORY_FRACTION)


def format_bytes(count: float) -> str:
    """A byte count for people: 512 B, 1.5 KiB, 2.3 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError  # not reached
