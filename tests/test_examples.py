"""Every example in graphs/ gives the numbers worked out by hand (or published in the book)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cgraph

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"

# file -> (dout, expected values, expected gradients), all worked out by hand.
EXPECTED = {
    # "Deep Learning from Scratch", 5.4.1: price 220; d apple 2.2, d apple_num 110, d tax 200.
    "buy_apple.yaml": (1.0, {"apple_price": 200.0, "price": 220.0},
                       {"apple": 2.2, "apple_num": 110.0, "tax": 200.0, "apple_price": 1.1, "price": 1.0}),
    # 5.5.3: price 715; d apple 2.2, d apple_num 110, d orange 3.3, d orange_num 165, d tax 650.
    "buy_apple_orange.yaml": (1.0, {"apple_price": 200.0, "orange_price": 450.0, "all_price": 650.0, "price": 715.0},
                              {"apple": 2.2, "apple_num": 110.0, "orange": 3.3, "orange_num": 165.0, "tax": 650.0,
                               "apple_price": 1.1, "orange_price": 1.1, "all_price": 1.1}),
    # y = x * w + b with w broadcast over 3 rows: dw = column sums of x, db = 3 per column.
    "bias_batch.yaml": (1.0, {"xw": [[10, 200], [30, 400], [50, 600]], "y": [[10.5, 200.5], [30.5, 400.5], [50.5, 600.5]]},
                        {"w": [9.0, 12.0], "b": [3.0, 3.0], "x": [[10, 100]] * 3, "xw": [[1, 1]] * 3}),
    # y = x*x + x at x = 3: y = 12, dy/dx = 2x + 1 = 7.
    "fan_out.yaml": (1.0, {"square": 9.0, "y": 12.0}, {"x": 7.0, "square": 1.0}),
    # out = a*b + c with dout = I: da = b*I, db = a*I, dc = I.
    "matrices.yaml": ([[1, 0], [0, 1]], {"ab": [[5, 12], [21, 32]], "out": [[6, 13], [22, 33]]},
                      {"a": [[5, 0], [0, 8]], "b": [[1, 0], [0, 4]], "c": [[1, 0], [0, 1]]}),
}


def test_every_example_has_expected_numbers() -> None:
    assert sorted(path.name for path in GRAPHS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_values_and_gradients(name: str) -> None:
    dout, values, grads = EXPECTED[name]
    graph = cgraph.load(GRAPHS / name)
    graph.backward(dout)
    for key, expected in values.items():
        np.testing.assert_allclose(graph.values[key], expected, rtol=1e-12)
    for key, expected in grads.items():
        np.testing.assert_allclose(graph.grads[key], expected, rtol=1e-12)
    for key, value in graph.values.items():
        assert np.shape(graph.grads[key]) == np.shape(value)
