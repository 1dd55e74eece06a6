"""The optimizers of "Deep Learning from Scratch", chapter 6, with the book's update rules and defaults.

Each updates parameter arrays in place from their gradients: ``update(params, grads)``
with two dicts keyed by name, as the book's ``common/optimizer.py`` does.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np


class Optimizer:
    """Updates parameters in place from their gradients, one step per :meth:`update` call; the
    intermediate arrays of the rule are buffers made at the first update and reused after."""

    name: ClassVar[str] = ""
    rule: ClassVar[str] = ""  # the update, as the README and --help write it

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        """One step: change every array in ``params`` in place using ``grads`` of the same names."""
        raise NotImplementedError

    def settings(self) -> dict[str, float]:
        """The hyperparameters, by name."""
        return {key: value for key, value in vars(self).items() if isinstance(value, float)}


def _buffer(buffers: dict[str, np.ndarray], key: str, param: np.ndarray) -> np.ndarray:
    """The scratch array of ``param``'s shape and dtype kept in ``buffers`` under ``key``."""
    buffer = buffers.get(key)
    if buffer is None or buffer.shape != param.shape or buffer.dtype != param.dtype:
        buffer = buffers[key] = np.empty_like(param)
    return buffer


class SGD(Optimizer):
    """Stochastic gradient descent: W -= lr * dW."""

    name = "sgd"
    rule = "W -= lr * dW"

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr
        self._step: dict[str, np.ndarray] = {}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        for key, param in params.items():
            step = np.multiply(grads[key], self.lr, out=_buffer(self._step, key, param))
            param -= step


class Momentum(Optimizer):
    """Momentum SGD: v = momentum * v - lr * dW; W += v (v starts at 0)."""

    name = "momentum"
    rule = "v = momentum * v - lr * dW; W += v"

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr, self.momentum = lr, momentum
        self.v: dict[str, np.ndarray] = {}
        self._step: dict[str, np.ndarray] = {}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        for key, param in params.items():
            step = np.multiply(grads[key], self.lr, out=_buffer(self._step, key, param))
            if key in self.v:
                v = np.multiply(self.v[key], self.momentum, out=self.v[key])
                np.subtract(v, step, out=v)
            else:
                v = self.v[key] = np.negative(step, out=np.empty_like(param))
            param += v


class AdaGrad(Optimizer):
    """AdaGrad: h += dW * dW; W -= lr * dW / (sqrt(h) + eps) (h starts at 0)."""

    name = "adagrad"
    rule = "h += dW * dW; W -= lr * dW / (sqrt(h) + eps)"

    def __init__(self, lr: float = 0.01, eps: float = 1e-7) -> None:
        self.lr, self.eps = lr, eps
        self.h: dict[str, np.ndarray] = {}
        self._step: dict[str, np.ndarray] = {}
        self._root: dict[str, np.ndarray] = {}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        for key, param in params.items():
            grad = grads[key]
            step = np.multiply(grad, grad, out=_buffer(self._step, key, param))
            if key in self.h:
                h = np.add(self.h[key], step, out=self.h[key])
            else:
                h = self.h[key] = step.copy()
            root = np.sqrt(h, out=_buffer(self._root, key, param))
            root += self.eps
            np.multiply(grad, self.lr, out=step)
            step /= root
            param -= step


class Adam(Optimizer):
    """Adam, as the book writes it: at step t, m += (1 - beta1) * (dW - m),
    v += (1 - beta2) * (dW² - v), and W -= lr_t * m / (sqrt(v) + eps) with
    lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t) (m and v start at 0)."""

    name = "adam"
    rule = "m += (1 - beta1) * (dW - m); v += (1 - beta2) * (dW² - v); W -= lr_t * m / (sqrt(v) + eps)"

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.iter = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self._step: dict[str, np.ndarray] = {}
        self._root: dict[str, np.ndarray] = {}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        self.iter += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key, param in params.items():
            grad = grads[key]
            if key not in self.m:  # m and v start at 0
                self.m[key], self.v[key] = np.zeros_like(param), np.zeros_like(param)
            m, v = self.m[key], self.v[key]
            step = np.subtract(grad, m, out=_buffer(self._step, key, param))
            step *= 1 - self.beta1
            m += step
            np.multiply(grad, grad, out=step)
            step -= v
            step *= 1 - self.beta2
            v += step
            root = np.sqrt(v, out=_buffer(self._root, key, param))
            root += self.eps
            np.multiply(m, lr_t, out=step)
            step /= root
            param -= step


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Momentum, AdaGrad, Adam)}
