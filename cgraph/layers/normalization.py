"""The book's layers for training deep networks (chapter 6): batchnorm and dropout."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Attr, BaseLayer, GradBuilder, Shape, _dimensions, _is_int, register, shape_of, written


@register
class BatchNormLayer(BaseLayer):
    """Batch normalisation in training mode, as PyTorch's BatchNorm1d and BatchNorm2d:
    out = gamma · x̂ + beta, x̂ = (x − mean) / √(var + eps), where mean and the biased
    variance are taken per feature over the batch for x (N, D), with gamma, beta (D,), and per
    channel over the batch and both spatial axes for images x (N, C, H, W), with gamma, beta (C,).

    The gradient is the full one, through the mean and the variance, as the book derives it.
    """

    op = "batchnorm"
    args = ("x", "gamma", "beta")
    attrs = {"eps": Attr(lambda value: _read_number(value, "a number greater than 0", lambda v: v > 0), 1e-5,
                         "added to the variance before its square root, a number greater than 0")}
    formula = "{gamma} * x̂ + {beta}, x̂ = ({x} - mean) / √(var + {eps}), mean and var per feature over N (and H, W)"
    grad_formulas = (
        "(dx̂ - mean(dx̂) - x̂ * mean(dx̂ * x̂)) / √(var + {eps}), dx̂ = dout * {gamma}, means over N (and H, W)",
        "sum of dout * x̂ over N (and H, W)",
        "sum of dout over N (and H, W)",
    )
    eps: float

    def out_shape(self, *shapes: Shape) -> Shape:
        xs, gammas, betas = shapes
        if len(xs) not in (2, 4):
            raise ValueError(f"batchnorm takes {{x}} of shape (N, D) or (N, C, H, W); {{x}} has {_dimensions(len(xs))}")
        what = "features (axis 1)" if len(xs) == 2 else "channels (axis 1)"
        for role, shape in (("gamma", gammas), ("beta", betas)):
            if shape != xs[1:2]:
                raise ValueError(f"{{{role}}} has shape {shape} but {{x}} {xs} has {xs[1]} {what}; "
                                 f"gamma and beta need shape ({xs[1]},)")
        if xs[1] and not xs[0] * math.prod(xs[2:]):
            raise ValueError(f"{{x}} {xs} has no values per feature to take a mean of")
        return xs

    def _axes(self) -> tuple[int, ...]:
        return (0,) if self.x.ndim == 2 else (0, 2, 3)

    def _per_feature(self, value: np.ndarray) -> np.ndarray:
        """gamma or beta (D,) or (C,) shaped to broadcast against x."""
        return value if self.x.ndim == 2 else value.reshape(1, -1, 1, 1)

    def forward(self, x: Any, gamma: Any, beta: Any) -> Any:
        self.x, self.gamma, self.beta = x, gamma, beta
        axes = self._axes()
        centered = x - x.mean(axis=axes, keepdims=True)
        self.std = np.sqrt(np.mean(centered * centered, axis=axes, keepdims=True) + self.eps)
        self.normalized = centered / self.std
        return self._per_feature(gamma) * self.normalized + self._per_feature(beta)

    def backward(self, dout: Any) -> tuple[Any, Any, Any]:
        axes, normalized = self._axes(), self.normalized
        dbeta = np.sum(dout, axis=axes)
        dgamma = np.sum(dout * normalized, axis=axes)
        dnormalized = dout * self._per_feature(self.gamma)
        dx = (dnormalized - np.mean(dnormalized, axis=axes, keepdims=True)
              - normalized * np.mean(dnormalized * normalized, axis=axes, keepdims=True)) / self.std
        return dx, dgamma, dbeta

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        """backward's formulas, x̂ and √(var + eps) computed again from x."""
        x, gamma, _ = args
        shape = g.shape(x)
        axes = [0] if len(shape) == 2 else [0, 2, 3]

        def mean(value: str) -> str:
            return g.apply("mean", value, axis=axes, keepdims=True)

        centered = g.sub(x, mean(x))
        std = g.apply("sqrt", g.add(mean(g.mul(centered, centered)), g.number(self.eps)))
        normalized = g.div(centered, std)
        per_feature = gamma if len(shape) == 2 else g.reshape(gamma, (1, shape[1], 1, 1))
        dnormalized = g.mul(dout, per_feature)
        dx = g.div(g.sub(g.sub(dnormalized, mean(dnormalized)), g.mul(normalized, mean(g.mul(dnormalized, normalized)))),
                   std)
        return (dx, g.apply("sum", g.mul(dout, normalized), axis=axes), g.apply("sum", dout, axis=axes))


def _read_number(value: Any, expected: str, valid: Any) -> float:
    """A real number (not a boolean) for which ``valid`` holds; ValueError naming ``expected`` otherwise."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        number = float(value)
        if math.isfinite(number) and valid(number):
            return number
    raise ValueError(f"must be {expected}, got {written(value)}")


def _read_seed(value: Any) -> int:
    """A non-negative integer."""
    if _is_int(value) and value >= 0:
        return int(value)
    raise ValueError(f"must be a non-negative integer, got {written(value)}")


@register
class DropoutLayer(BaseLayer):
    """Dropout in training mode, the inverted form (PyTorch's): each element is kept with probability
    1 − ratio and scaled by 1 / (1 − ratio), or set to 0, so the expected value is x itself.

    The mask is drawn from ``seed`` at every forward pass (numpy's default generator), so runs are
    reproducible and repeated passes (as a gradient check makes) use the same mask.
    """

    op = "dropout"
    args = ("x",)
    attrs = {
        "ratio": Attr(lambda value: _read_number(value, "a number from 0 to 1", lambda v: 0 <= v <= 1), 0.5,
                      "the probability of dropping each element, from 0 to 1"),
        "seed": Attr(_read_seed, 0, "the seed of the random mask, a non-negative integer"),
    }
    formula = "{x} * mask / (1 - {ratio}), mask: 1 with probability 1 - {ratio}, else 0 (seed {seed})"
    grad_formulas = ("dout * mask / (1 - {ratio})",)
    ratio: float
    seed: int

    def out_shape(self, *shapes: Shape) -> Shape:
        return shapes[0]

    def forward(self, x: Any) -> Any:
        self.x = x
        kept = np.random.default_rng(self.seed).random(shape_of(x)) >= self.ratio
        scale = 0.0 if self.ratio == 1 else 1 / (1 - self.ratio)
        self.mask = (kept * scale).astype(np.result_type(x), copy=False)
        out = x * self.mask
        return float(out) if type(x) is float else out

    def backward(self, dout: Any) -> tuple[Any]:
        grad = dout * self.mask
        return (float(grad) if type(dout) is float else grad,)

    def grad_graph(self, g: GradBuilder, args: tuple[str, ...], out: str, dout: str) -> tuple[str | None, ...]:
        return (g.apply("dropout", dout, ratio=self.ratio, seed=self.seed),)  # the same mask: the same seed
