"""The onnx package's own backend node tests, run through cgraph's forward pass.

Every node test (onnx.backend.test.case.node, the cases `python -m onnx.backend.test.cmd_tools
generate-data` writes out) whose model uses an op of cgraph's table is a test here: its inputs
are given as --set values, and the output must equal the test's expected output, in its dtype,
within the test's own tolerances. They run in this process, through the same api.loads that the
command uses; a few run through the real command at the end.

Skipped, each with its reason (pytest -rs lists them):
- tests whose expected output is not floating point (integer, boolean and string outputs);
- tests whose model also uses ops outside the table (the reason names them);
- the tests in REFUSED below, whose model uses what cgraph refuses by name: for those the test
  checks that the refusal is one error naming the node's op, not a crash or a wrong value.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'cgraph-calc[onnx]')")

from cgraph import api  # noqa: E402
from cgraph.errors import CgraphError  # noqa: E402
from cgraph.onnx_ops import TABLE  # noqa: E402

MAPPED = {op for op, _, _ in TABLE} | {"Constant"}

# What cgraph refuses, by test name (a regular expression), and why.
REFUSED = {
    r"test_(average|max)pool_(1d|3d)_.*": "1-D and 3-D pooling: cgraph pools 2-D images (N, C, H, W)",
    r"test_(average|max)pool_2d_(same_upper|same_lower)": "asymmetric padding: cgraph pads both sides alike",
    r"test_(average|max)pool_2d_pads(_count_include_pad)?": "padding over half the window, which cgraph refuses",
    r"test_(average|max)pool_2d_dilations": "dilations other than 1",
    r"test_batchnorm_.*_training_mode": "BatchNormalization in training mode (the inference form only)",
    r"test_training_dropout.*": "Dropout in training mode (its random mask is not numpy's)",
    r"test_causal_conv_with_state_.*": "grouped convolution (group > 1)",
    r"test_gather_2d_indices": "Gather with indices of more than 1 dimension",
    r"test_identity_(sequence|opt)": "sequence and optional inputs: cgraph computes tensors",
    r"test_reduce_(max|min)_empty_set": "a maximum or minimum over an empty axis (ONNX gives -inf, +inf)",
    r"test_constant": "an output computed from constants alone: there is no node to run",
    r"test_constantofshape_.*": "an output computed from constants alone (the shape given): there is no node to run",
    r"test_scatternd.*": "ScatterND other than the form cgraph onnx writes (updates of 1 dimension into constant zeros)",
}


def _refusal(name: str) -> str | None:
    return next((reason for pattern, reason in REFUSED.items() if re.fullmatch(pattern, name)), None)


def _cases() -> list:
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None)
    chosen = []
    for case in cases:
        ops = {node.op_type for node in case.model.graph.node}
        if not ops & (MAPPED - {"Constant"}):
            continue  # a test of an op cgraph does not map
        outputs = case.data_sets[0][1]
        if not all(np.asarray(out).dtype.kind == "f" for out in outputs):
            marks = pytest.mark.skip(reason="the expected output is not floating point")
        elif not ops <= MAPPED:
            marks = pytest.mark.skip(reason=f"uses ops outside the table: {', '.join(sorted(ops - MAPPED))}")
        else:
            marks = ()
        chosen.append(pytest.param(case, id=case.name, marks=marks))
    return chosen


CASES = _cases()


@pytest.mark.parametrize("case", CASES)
def test_backend_node_case(case) -> None:
    inputs, outputs = case.data_sets[0]
    feeds = {value.name: np.asarray(array) for value, array in zip(case.model.graph.input, inputs)}
    reason = _refusal(case.name)
    if reason is not None:
        with pytest.raises(CgraphError) as refused:
            api.loads(case.model.SerializeToString(), source=case.name, overrides=feeds).forward()
        ops = {node.op_type for node in case.model.graph.node}
        assert any(f"({op}," in refused.value.message or "output" in refused.value.message
                   or "input" in refused.value.message for op in ops), refused.value.message
        pytest.skip(f"refused: {reason}")
    graph = api.loads(case.model.SerializeToString(), source=case.name, overrides=feeds)
    value = np.asarray(graph.forward())
    expected = np.asarray(outputs[0])
    assert value.dtype == expected.dtype
    np.testing.assert_allclose(value, expected, rtol=case.rtol, atol=case.atol)


def test_most_mapped_node_tests_pass() -> None:
    """The count the documentation gives: the tests run here, and those that pass."""
    runnable = [param for param in CASES if not param.marks and _refusal(param.id) is None]
    assert len(runnable) >= 431


@pytest.mark.parametrize("name", ["test_gemm_all_attributes", "test_softmax_axis_0", "test_conv_with_strides_padding"])
def test_backend_cases_through_the_command(name, tmp_path) -> None:
    case = next(param.values[0] for param in CASES if param.id == name)
    inputs, outputs = case.data_sets[0]
    model = tmp_path / "model.onnx"
    model.write_bytes(case.model.SerializeToString())
    command = [sys.executable, "-m", "cgraph", "forward", str(model), "--format", "json"]
    for value, array in zip(case.model.graph.input, inputs):
        np.save(tmp_path / f"{value.name}.npy", array)
        command += ["--set", f"{value.name}=@{tmp_path / value.name}.npy"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import json

    entry = json.loads(result.stdout)["nodes"][case.model.graph.output[0].name]
    assert entry["dtype"] == np.asarray(outputs[0]).dtype.name
    np.testing.assert_allclose(np.array(entry["value"]), outputs[0], rtol=case.rtol, atol=case.atol)
