"""The quick formatter of small arrays writes exactly what numpy's array2string writes.

format_small covers float64 arrays of finite numbers in positional notation and returns
None for anything else, which the text view then hands to numpy; either way the text
must be numpy's, for every shape, magnitude, sign and precision drawn here, except where numpy
would write a non-zero number as 0: there every element is in scientific notation.
"""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cgraph.render import SUMMARY_THRESHOLD, format_array, format_column, format_small, format_small_stack, scientific


def numpy_text(array: np.ndarray, precision: int) -> str:
    return np.array2string(array, precision=precision, threshold=SUMMARY_THRESHOLD, separator=" ")


@st.composite
def arrays(draw) -> np.ndarray:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)) + (draw(st.integers(0, 14)),)
    shape = shape[-draw(st.integers(1, len(shape))):]
    kind = draw(st.sampled_from(["normal", "whole", "halves", "any"]))
    if kind == "any":  # every float: negative zeros, NaN, infinities, subnormals, huge and tiny
        return draw(hnp.arrays(np.float64, shape, elements=st.floats(width=64)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = 10.0 ** draw(st.integers(-6, 9))
    values = rng.standard_normal(shape) * scale
    if kind == "whole":
        values = np.round(values)
    elif kind == "halves":
        values = np.round(values * 2) / 2
    if values.size and draw(st.booleans()):
        values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf]))
    return values


@settings(max_examples=1500, deadline=None)
@given(arrays(), st.integers(0, 17))
def test_quick_text_is_numpys_text(array: np.ndarray, precision: int) -> None:
    quick = format_small(array, precision)
    if quick is not None:
        assert quick == numpy_text(array, precision)
        assert not scientific(array, precision)  # the text view uses it first: scientific needs no check
    text = format_array(array, precision, False, 0)
    if scientific(array, precision):  # numpy would write a non-zero element as 0: scientific throughout
        cells = text.replace("[", " ").replace("]", " ").replace("...", " ").split()
        assert all(re.fullmatch(r"-?\d(\.\d+)?e[-+]\d+|-?inf|nan", cell) for cell in cells), text
    else:
        assert text == numpy_text(array, precision)


def test_the_quick_formatter_takes_the_usual_arrays_and_leaves_the_rest_to_numpy() -> None:
    usual = [np.array([1.0, 2.0]), np.array([[0.5, -1.25], [3.0, -0.0]]), np.arange(40.0).reshape(4, 10) / 7]
    for array in usual:
        assert format_small(array, 8) == numpy_text(array, 8)
    others = [np.array([1.0, np.nan]), np.array([1e-5, 1.0]), np.array([1.0, 1e9]), np.array([1.0, 2000.0]),
              np.array([1.0, 2.0], np.float32), np.zeros(101), np.zeros((2, 0))]
    for array in others:
        assert format_small(array, 8) is None


@st.composite
def stacks(draw) -> np.ndarray:
    """Several arrays of one shape, each drawn as :func:`arrays` draws one (its own scale and specials)."""
    first = draw(arrays())
    members = [first] + [draw(arrays().filter(lambda array: array.shape == first.shape)) for _ in range(draw(st.integers(0, 4)))]
    return np.stack(members)


@settings(max_examples=300, deadline=None)
@given(stacks(), st.integers(0, 17))
def test_many_arrays_written_together_are_each_numpys_text(stack: np.ndarray, precision: int) -> None:
    if not 0 < stack[0].size <= 100:
        return
    texts = format_small_stack(stack, precision)
    for array, text in zip(stack, texts):
        # the same arrays covered as one at a time (the others go to numpy), each written as numpy writes it
        assert (text is None) == (format_small(array, precision) is None)
        if text is not None:
            assert text == numpy_text(array, precision)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(arrays(), st.floats(width=64)), max_size=8), st.integers(0, 17), st.booleans())
def test_a_column_of_values_is_written_as_each_alone(values: list, precision: int, full: bool) -> None:
    # Python floats, arrays of any shape (shapes shared or not), NaN, infinities: each value's text
    # is the text view's for that value alone, which the test above holds to numpy's.
    values = values + [array.copy() for array in values if isinstance(array, np.ndarray)]  # shapes shared
    assert format_column(values, precision, full) == [format_array(value, precision, full, 0) for value in values]
