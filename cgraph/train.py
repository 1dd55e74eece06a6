"""Training: gradient descent on a graph's inputs to minimise its 0-d output, as the book's
training loop does, and the loss curve and summary that report it.

:class:`Trainer` runs one step at a time (draw a mini-batch, forward, backward, update) so
that its caller decides what to print, when to save and when to stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .arrays import check_shape, suggest
from .errors import CgraphError
from .graph import Graph
from .optim import Optimizer

CURVE_LEVELS = " ▁▂▃▄▅▆▇█"
KEPT_GROUPS = 4096  # groups of steps' losses a run keeps for its curve: twice that, then pairs merge
RESERVED = ("step", "loss")  # the keys of a step's record besides the metrics


@dataclass
class StepRecord:
    """One step: its number (from 1), the loss and the metrics before its update."""

    step: int
    loss: float
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """``{"step", "loss", metric: value, ...}``, as a JSON line writes it."""
        return {"step": self.step, "loss": self.loss, **self.metrics}


class Trainer:
    """Minimises ``graph``'s 0-d output over the inputs ``params`` with ``optimizer``.

    With ``batch`` (names of inputs whose first axes are the same length), each step uses
    ``batch_size`` rows drawn at random, with replacement and the same rows for every name,
    as the book's ``np.random.choice(train_size, batch_size)`` does; otherwise all of them.
    NaN or infinity in the loss or a parameter's gradient stops training with an error
    naming the step and where it appeared, unless ``keep_going``.
    """

    def __init__(
        self,
        graph: Graph,
        params: Sequence[str],
        optimizer: Optimizer,
        batch: Sequence[str] = (),
        batch_size: int | None = None,
        seed: int = 0,
        metrics: Sequence[str] = (),
        keep_going: bool = False,
    ) -> None:
        self.graph, self.optimizer, self.keep_going = graph, optimizer, keep_going
        inputs = graph.spec.inputs
        for option, names in (("--param", params), ("--batch", batch)):
            for name in names:
                if name not in inputs:
                    kind = "is a node, not an input" if name in graph.spec.nodes else f"is not an input{suggest(name, inputs)}"
                    raise CgraphError(f"{option}: '{name}' {kind}")
            if len(set(names)) < len(names):
                twice = next(name for name in names if names.count(name) > 1)
                raise CgraphError(f"{option}: '{twice}' is given twice")
        for name in batch:
            if name in params:
                raise CgraphError(f"--batch: '{name}' is also a --param; a batch is data, not trained")
        # Writable copies (a .npy input may be a read-only memory map), updated in place each step.
        self.params = {name: np.array(inputs[name].value, copy=True) for name in params}
        self.param_names = tuple(params)
        self.data = {name: inputs[name].value for name in batch}
        if batch and not batch_size:
            raise CgraphError("--batch needs --batch-size")
        self.batch_size = batch_size
        self.rows = self._rows()
        self.rng = np.random.default_rng(seed)
        # Each step draws its batch into these arrays, the graph's inputs from here on: checked once, here.
        self.batches: dict[str, np.ndarray] = {}
        if self.data:
            for name, array in self.data.items():
                check_shape((self.batch_size or 0, *array.shape[1:]), graph.max_elements, None,
                            f"--batch-size: a batch of '{name}'")
            first = np.zeros(self.batch_size or 0, dtype=np.intp)
            self.batches = {name: np.array(array[first]) for name, array in self.data.items()}  # not a memmap
        graph.set_inputs({**self.batches, **self.params})
        self._held = [(graph.spec.inputs[name], array) for name, array in {**self.batches, **self.params}.items()]
        output = graph.output
        if graph.shapes[output] != ():
            raise CgraphError(
                f"train minimises a 0-d loss, but the output '{output}' has shape {graph.shapes[output]}: "
                "make it one number with sum or mean, or choose another node with --output",
                graph.spec.position(output))
        for name in metrics:
            if name not in graph.shapes:
                raise CgraphError(f"--metric: unknown name '{name}'{suggest(name, graph.shapes)}")
            if name == output or name in RESERVED:
                what = "the loss, reported already" if name == output else "a key of each step's record"
                raise CgraphError(f"--metric: '{name}' is {what}; name another node")
            if graph.shapes[name] != ():
                raise CgraphError(f"--metric: '{name}' has shape {graph.shapes[name]}; a metric is a 0-d node "
                                  "(take its mean)")
        self.metrics = tuple(metrics)
        self.step_count = 0

    def _rows(self) -> int:
        """The length of the batch inputs' first axis, which they share."""
        if not self.data:
            return 0
        lengths = {name: array.shape[0] if array.ndim else None for name, array in self.data.items()}
        for name, length in lengths.items():
            if not length:
                raise CgraphError(f"--batch: '{name}' has shape {self.data[name].shape}: it has no rows to draw")
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"'{name}' {length}" for name, length in lengths.items())
            raise CgraphError(f"--batch: the inputs must have as many rows (first axis) as each other; got {listed}")
        return next(iter(lengths.values()))  # type: ignore[return-value]

    def step(self) -> StepRecord:
        """Draw a batch, run forward and backward, update the parameters; return the loss before the update."""
        graph = self.graph
        number = self.step_count + 1
        if self.data:
            rows = self.rng.integers(0, self.rows, self.batch_size)
            for name, array in self.data.items():  # rows are in range: "clip" spares take its buffered copy
                np.take(array, rows, axis=0, out=self.batches[name], mode="clip")
        if any(item.value is not array for item, array in self._held):
            graph.set_inputs({**self.batches, **self.params})  # replaced since (set_input): ours again, checked
        loss = float(graph.forward())
        if not math.isfinite(loss) and not self.keep_going:
            self._stop(number, f"the loss is {loss}")
        param_grads = graph.backward(only=self.param_names)
        if not self.keep_going:
            for name, grad in param_grads.items():
                # a sum is finite where every element is (or, rarely, overflows: then look at each)
                if not math.isfinite(np.add.reduce(grad, axis=None)) and not np.isfinite(grad).all():
                    self._stop(number, f"the gradient of '{name}' holds NaN or infinity")
        values = graph.values
        record = StepRecord(number, loss, {name: float(values[name]) for name in self.metrics})
        self.optimizer.update(self.params, param_grads)
        self.step_count = number
        return record

    def evaluate(self) -> StepRecord:
        """The loss and metrics of the parameters as they are now, on every row of the batch inputs:
        what ``cgraph forward`` of the trained graph gives, where a step's record is before its update."""
        graph = self.graph
        graph.set_inputs({**self.params, **self.data})
        loss = float(graph.forward())
        values = graph.values
        return StepRecord(self.step_count, loss, {name: float(values[name]) for name in self.metrics})

    def _stop(self, number: int, what: str) -> None:
        """Raise the error for NaN or infinity at step ``number``, placed where it first appeared."""
        if self.graph.grads:  # the parameters' gradients only: all of them, to find where the NaN came from
            self.graph.backward()
        problems = self.graph.non_finite()
        name, message = next((found for found in problems if found[0] in self.graph.spec.nodes),
                             problems[0] if problems else ("", ""))
        detail = f": {message}" if message else ""
        raise CgraphError(f"step {number}: {what}{detail} (lower --lr, or pass --keep-going to go on)",
                          self.graph.spec.position(name) if name else None)


def loss_curve(groups: Sequence[tuple[float, int]], width: int = 60, height: int = 8) -> list[str]:
    """The losses, given as (sum, count) of consecutive steps' losses, as a bar chart of ``height``
    text rows: one column per run of groups (their mean, ``?`` where it is not finite), the highest
    and lowest column's value on the left, the step numbers under it."""
    if not groups:
        return []
    columns = min(width, len(groups))
    means = []
    for i in range(columns):
        part = groups[len(groups) * i // columns:len(groups) * (i + 1) // columns]
        total = sum(loss for loss, _ in part)
        means.append(total / sum(count for _, count in part) if math.isfinite(total) else None)
    finite = [mean for mean in means if mean is not None]
    if not finite:
        return ["(no finite loss to draw)"]
    top, bottom = max(finite), min(finite)
    span = top - bottom or 1.0
    eighths = [None if mean is None else round((mean - bottom) / span * (height * 8 - 1)) + 1 for mean in means]
    labels = [f"{top:.4g}", f"{bottom:.4g}"]
    pad = max(map(len, labels))
    lines = []
    for row in range(height - 1, -1, -1):
        cells = []
        for level in eighths:
            if level is None:
                cells.append("?")  # a group of NaN or infinite losses
            else:
                cells.append(CURVE_LEVELS[min(8, max(0, level - row * 8))])
        label = labels[0] if row == height - 1 else labels[1] if row == 0 else ""
        lines.append(f"{label:>{pad}} |{''.join(cells)}".rstrip())
    first, last = "step 1", f"step {sum(count for _, count in groups)}"
    lines.append(" " * pad + " +" + "-" * columns)
    lines.append(" " * (pad + 2) + first + last.rjust(max(columns - len(first), len(last) + 1)))
    return lines


class History:
    """What a run's summary and curve need, kept as it goes in bounded memory: the losses, as
    (sum, count) of runs of ``stride`` steps (each step while there are at most 2 * KEPT_GROUPS,
    then pairs merged), and the first, last and best steps."""

    def __init__(self) -> None:
        self.groups: list[tuple[float, int]] = []
        self.stride = 1
        self.steps = 0
        self.first: StepRecord | None = None
        self.last: StepRecord | None = None
        self.best: StepRecord | None = None

    def add(self, record: StepRecord) -> None:
        """Take one step's record."""
        self.steps += 1
        groups = self.groups
        if groups and groups[-1][1] < self.stride:
            total, count = groups[-1]
            groups[-1] = (total + record.loss, count + 1)
        else:
            groups.append((record.loss, 1))
            if len(groups) > 2 * KEPT_GROUPS:
                merged = [(a[0] + b[0], a[1] + b[1]) for a, b in zip(groups[0::2], groups[1::2])]
                self.groups = merged + groups[len(merged) * 2:]
                self.stride *= 2
        self.first = self.first or record
        self.last = record
        if math.isfinite(record.loss) and (self.best is None or record.loss < self.best.loss):
            self.best = record

    def summary(self, seconds: float, trained: StepRecord | None = None, batched: bool = False) -> list[str]:
        """The first and last loss (each before its step's update), the best step, the metrics at
        the last step, the loss and metrics ``trained`` (after the last update, on every row where
        ``batched``) and the time taken."""
        first, last, best = self.first, self.last, self.best
        if first is None or last is None:
            return ["no steps run"]
        count = self.steps
        rate = f" ({count / seconds:,.0f} steps/s)" if seconds > 0 else ""
        lines = [
            (f"loss: {first.loss:.6g} at step {first.step}, {last.loss:.6g} at step {last.step} "
             "(each before its step's update)"),
            f"best: {best.loss:.6g} at step {best.step}" if best else "best: no finite loss",
        ]
        if last.metrics:
            shown = ", ".join(f"{name} {value:.6g}" for name, value in last.metrics.items())
            lines.append(f"at step {last.step}: {shown}")
        if trained is not None:
            shown = ", ".join(f"{name} {value:.6g}" for name, value in trained.as_dict().items() if name != "step")
            rows = ", on every row" if batched else ""
            lines.append(f"after step {trained.step}'s update{rows}: {shown} "
                         "(as cgraph forward of the trained graph gives)")
        lines.append(f"time: {seconds:.2f} s for {count:,} step{'s' * (count != 1)}{rate}")
        return lines
