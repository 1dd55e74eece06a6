"""The optimizers of "Deep Learning from Scratch", chapter 6, with the book's update rules and defaults.

Each updates parameter arrays in place from their gradients: ``update(params, grads)``
with two dicts keyed by name, as the book's ``common/optimizer.py`` does.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np


class Optimizer:
    """Updates parameters in place from their gradients, one step per :meth:`update` call."""

    name: ClassVar[str] = ""
    rule: ClassVar[str] = ""  # the update, as the README and --help write it

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        """One step: change every array in ``params`` in place using ``grads`` of the same names."""
        raise NotImplementedError

    def settings(self) -> dict[str, float]:
        """The hyperparameters, by name."""
        return {key: value for key, value in vars(self).items() if isinstance(value, float)}


class SGD(Optimizer):
    """Stochastic gradient descent: W -= lr * dW."""

    name = "sgd"
    rule = "W -= lr * dW"

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        for key, param in params.items():
            param -= self.lr * grads[key]


class Momentum(Optimizer):
    """Momentum SGD: v = momentum * v - lr * dW; W += v (v starts at 0)."""

    name = "momentum"
    rule = "v = momentum * v - lr * dW; W += v"

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr, self.momentum = lr, momentum
        self.v: dict[str, np.ndarray] = {}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        for key, param in params.items():
            v = self.v.get(key)
            v = self.v[key] = self.momentum * v - self.lr * grads[key] if v is not None else -self.lr * grads[key]
            param += v


class AdaGrad(Optimizer):
    """AdaGrad: h += dW * dW; W -= lr * dW / (sqrt(h) + eps) (h starts at 0)."""

    name = "adagrad"
    rule = "h += dW * dW; W -= lr * dW / (sqrt(h) + eps)"

    def __init__(self, lr: float = 0.01, eps: float = 1e-7) -> None:
        self.lr, self.eps = lr, eps
        self.h: dict[str, np.ndarray] = {}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        for key, param in params.items():
            grad = grads[key]
            h = self.h.get(key)
            h = self.h[key] = grad * grad if h is None else h + grad * grad
            param -= self.lr * grad / (np.sqrt(h) + self.eps)


class Adam(Optimizer):
    """Adam, as the book writes it: at step t, m += (1 - beta1) * (dW - m),
    v += (1 - beta2) * (dW² - v), and W -= lr_t * m / (sqrt(v) + eps) with
    lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t) (m and v start at 0)."""

    name = "adam"
    rule = "m += (1 - beta1) * (dW - m); v += (1 - beta2) * (dW² - v); W -= lr_t * m / (sqrt(v) + eps)"

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.iter = 0
        self.m: dict[str, Any] = {}
        self.v: dict[str, Any] = {}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        self.iter += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key, param in params.items():
            grad = grads[key]
            m = self.m.get(key, 0.0)
            v = self.v.get(key, 0.0)
            m = self.m[key] = m + (1 - self.beta1) * (grad - m)
            v = self.v[key] = v + (1 - self.beta2) * (grad * grad - v)
            param -= lr_t * m / (np.sqrt(v) + self.eps)


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Momentum, AdaGrad, Adam)}
