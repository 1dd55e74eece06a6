"""Warnings about a graph that runs but may not do what was meant, from its shapes, dtypes and names alone.

:func:`lint` finds, without running the passes: broadcasts that make a node's value larger than
every one of its inputs (``pred (3,) - target (3, 1)`` is (3, 3)), inputs and nodes with no path to
the output (their gradient is 0), float16 or float32 values mixed with float64 ones (numpy promotes
the result to float64), and names that differ only by case or by lookalike letters.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
import numpy as np

from .graph import Graph
from .layers import Shape

# Letters of other scripts that look like Latin ones, compared after NFKC and case folding (so
# capitals are covered by their small letters: Cyrillic 'А' folds to 'а', which reads as 'a').
CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "һ": "h", "н": "h", "і": "i", "ј": "j", "к": "k", "м": "m", "о": "o",
    "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "ү": "y", "х": "x", "ԁ": "d", "ԝ": "w", "ӏ": "l",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ζ": "z", "η": "h", "ι": "i", "κ": "k", "μ": "m", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    # Latin letters that read as others
    "ı": "i", "ȷ": "j",
})


@dataclass(frozen=True)
class LintWarning:
    """One warning: the input or node it is placed at, its message, every name it concerns, and its
    kind: "broadcast", "unreached", "dtype" or "name"."""

    name: str
    message: str
    names: tuple[str, ...]
    kind: str


def lint(graph: Graph) -> list[LintWarning]:
    """The warnings about ``graph`` (built, not necessarily run), in the order of the file's names."""
    found = [*_broadcasts(graph), *_unreached(graph), *_mixed_dtypes(graph), *_lookalike_names(graph)]
    order = {name: index for index, name in enumerate([*graph.spec.inputs, *graph.spec.nodes])}
    return sorted(found, key=lambda warning: order[warning.name])


def reached_names(graph: Graph) -> set[str]:
    """The output (and the file's other ``outputs:``) and every input and node they depend on."""
    reached = {graph.output, *graph.spec.outputs}
    for name, node in reversed(graph.spec.nodes.items()):
        if name in reached:
            reached.update(node.args)
    return reached


def _broadcasts(graph: Graph) -> list[LintWarning]:
    """Elementwise nodes whose value is larger than every one of their inputs."""
    found = []
    for name, node in graph.spec.nodes.items():
        layer = graph.layers[name]
        if len(node.args) < 2 or layer.broadcast_args != layer.args:
            continue
        shapes = [graph.shapes[arg] for arg in node.args]
        out = graph.shapes[name]
        if math.prod(out) <= max(map(math.prod, shapes)):
            continue
        squeezed = [tuple(size for size in shape if size != 1) for shape in shapes]
        meant = f": did you mean {_listed(squeezed)}?" if len(set(squeezed)) == 1 and squeezed[0] else ""
        found.append(LintWarning(name, f"node '{name}': {node.op} broadcasts {_listed(shapes)} to {out}{meant}",
                                 (name, *node.args), "broadcast"))
    return found


def _listed(shapes: list[Shape]) -> str:
    texts = [str(shape) for shape in shapes]
    return " and ".join([", ".join(texts[:-1]), texts[-1]] if len(texts) > 2 else texts)


def _unreached(graph: Graph) -> list[LintWarning]:
    """Inputs and nodes from which the output cannot be reached: their gradient is 0."""
    reached = reached_names(graph)
    return [
        LintWarning(name, f"{'node' if name in graph.spec.nodes else 'input'} '{name}' has no path to the "
                          f"{_outputs_named(graph)}, so its gradient is 0", (name,), "unreached")
        for name in [*graph.spec.inputs, *graph.spec.nodes] if name not in reached
    ]


def _outputs_named(graph: Graph) -> str:
    """"output 'y'", or where the file declares several, "outputs 'a', 'b'"."""
    names = list(dict.fromkeys([graph.output, *graph.spec.outputs]))
    if len(names) == 1:
        return f"output '{names[0]}'"
    return "outputs " + ", ".join(f"'{name}'" for name in names)


def value_dtypes(graph: Graph) -> dict[str, np.dtype]:
    """Every input's and node's dtype, worked out from the inputs' by numpy's promotion, without running."""
    dtypes = {name: item.value.dtype for name, item in graph.spec.inputs.items()}
    constants = graph.spec.constants  # Python floats: they keep a float32 array float32
    for name, node in graph.spec.nodes.items():
        dtypes[name] = np.result_type(*(constants[arg] if arg in constants else dtypes[arg] for arg in node.args))
    return dtypes


def _mixed_dtypes(graph: Graph) -> list[LintWarning]:
    """Nodes that take a float16 or float32 value together with a float64 one: the result is float64."""
    dtypes = value_dtypes(graph)
    found = []
    for name, node in graph.spec.nodes.items():
        kinds = {dtypes[arg] for arg in node.args if arg in dtypes}  # not constants
        narrow = sorted(str(dtype) for dtype in kinds if dtype.kind == "f" and dtype.itemsize < 8)
        if not narrow or np.dtype(np.float64) not in kinds:
            continue
        parts = [f"{dtype} ({', '.join(arg for arg in dict.fromkeys(node.args) if str(dtypes.get(arg)) == dtype)})"
                 for dtype in [*narrow, "float64"]]
        found.append(LintWarning(name, f"node '{name}': {node.op} mixes {' and '.join(parts)}; numpy promotes "
                                       f"the result to float64", (name, *node.args), "dtype"))
    return found


def skeleton(name: str) -> str:
    """What ``name`` looks like: NFKC-normalised, case-folded, lookalike letters made Latin."""
    return unicodedata.normalize("NFKC", name).casefold().translate(CONFUSABLES)


def _lookalike_names(graph: Graph) -> list[LintWarning]:
    """Names that differ only by case or by lookalike letters, placed at the later one."""
    first: dict[str, str] = {}
    found = []
    for name in [*graph.spec.inputs, *graph.spec.nodes]:
        seen = first.setdefault(skeleton(name), name)
        if seen != name:
            found.append(LintWarning(name, f"names '{seen}' and '{name}' differ only {_difference(seen, name)}",
                                     (seen, name), "name"))
    return found


def _difference(a: str, b: str) -> str:
    """How two names of the same skeleton differ: by case, or which lookalike letters."""
    if len(a) == len(b) and all(x.lower() == y.lower() for x, y in zip(a, b)):
        return "by case"
    letters = dict.fromkeys(char for pair in zip(a, b) if pair[0] != pair[1] for char in pair if not char.isascii())
    letters.update(dict.fromkeys(char for char in a[len(b):] + b[len(a):] if not char.isascii()))
    described = ", ".join(f"'{char}' is {unicodedata.name(char, f'U+{ord(char):04X}')}" for char in letters)
    return f"by lookalike letters ({described})" if described else "by lookalike letters"

