"""Make the data of spiral.yaml: CS231n's three-class spiral, 100 points per class in 2-D.

    python graphs/make_spiral.py     # writes graphs/spiral_X.npy and graphs/spiral_t.npy

Class j's points lie on an arm of radius r from 0 to 1 at angle 4j + 4r (in radians)
plus noise of standard deviation 0.2, as in the CS231n notes "Putting it together:
Minimal Neural Network Case Study". Seeded, so the files are the same on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

POINTS = 100  # per class
CLASSES = 3
SEED = 0


def spiral(points: int = POINTS, classes: int = CLASSES, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Points of shape (points * classes, 2) and one-hot labels of shape (points * classes, classes)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((points * classes, 2))
    t = np.zeros((points * classes, classes))
    for j in range(classes):
        rows = slice(points * j, points * (j + 1))
        radius = np.linspace(0.0, 1.0, points)
        angle = np.linspace(4.0 * j, 4.0 * (j + 1), points) + rng.standard_normal(points) * 0.2
        x[rows] = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
        t[rows, j] = 1.0
    return x, t


def main() -> None:
    folder = Path(__file__).resolve().parent
    x, t = spiral()
    np.save(folder / "spiral_X.npy", x)
    np.save(folder / "spiral_t.npy", t)


if __name__ == "__main__":
    main()
