"""Hostile and huge inputs are refused quickly and cheaply; deep graphs are normal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cgraph
from cgraph.errors import CgraphError

NODES = "nodes: {b: {op: add, inputs: [a, a]}}\n"


def billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        name, previous = chr(97 + i), chr(96 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "billion laughs": (billion_laughs(), "anchors (&a) are not supported"),
    # libyaml 0.2.5 and later refuse such nesting themselves ("exceeded maximum nesting depth").
    "deep lists": ("inputs: {a: " + "[" * 1_000_000 + "}\n", "nest"),
    "deep mappings": ("inputs: " + "{a: " * 1_000_000 + "\n", "nest"),
    "deep block lists": ("- " * 300_000 + "1\n", "nest"),
    "huge fill": ("inputs: {a: {fill: 0, shape: [1000000, 1000000]}}\n" + NODES, "1,000,000,000,000 elements"),
    "huge random": ("inputs: {a: {random: normal, shape: [100000, 100000]}}\n" + NODES, "10,000,000,000 elements"),
    "huge broadcast": (
        "inputs: {a: {fill: 1, shape: [200000, 1]}, c: {fill: 1, shape: [1, 200000]}}\n"
        "nodes: {b: {op: mul, inputs: [a, c]}}\n",
        "its value of 40,000,000,000 elements",
    ),
    "python object": ("!!python/object/apply:os.system ['touch pwned']\n", "tag '!!python/object/apply:os.system'"),
    "long name": ("inputs: {" + "a" * 1000 + ": 1}\n" + NODES, "name of 1000 characters is longer than the limit"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_in_bounded_time_and_memory(tmp_path: Path, name: str) -> None:
    text, message = HOSTILE[name]
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    code = (
        "import sys\n"
        "from cgraph.cli import main\n"
        "try:\n    main()\n"
        "finally:\n"
        # VmHWM, the process's own peak; ru_maxrss would carry over the parent's across exec.
        "    peak = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
        "    print('peak', peak, file=sys.stderr)\n"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, "backward", str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    elapsed = time.perf_counter() - started
    error, peak = result.stderr.splitlines()
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in error and error.startswith(f"{path}:")
    assert int(peak.split()[1]) < 200 * 1024, f"peak memory {peak} KiB"
    assert elapsed < 10, "hang guard, not a benchmark"
    assert not (tmp_path / "pwned").exists()


def _npy_header(text: str) -> bytes:
    """A version 1.0 .npy header holding ``text`` as its (possibly malformed) dictionary."""
    body = text.encode("latin1")
    body += b" " * (-(len(body) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"not a numpy file", "not a .npy file: data.npy"),
        (b"", "not a .npy file: data.npy"),
        (None, "holds complex128 data"),
        ("object", "holds object data"),
        ("npz", "not a .npy file: data.npy (an .npz archive?)"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), "), "its header is malformed"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }"), "its header is malformed"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2**70,), }"), "its header is malformed"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1180591620717411303424,), }"),
         "1,180,591,620,717,411,303,424 elements is over the limit"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 2, 0), }"),
         "with a dimension of 4,294,967,296 is over the limit"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000,), }") + b"\0" * 16, "not a readable .npy file"),
        (b"\x93NUMPY\x01", "its header is malformed"),
    ],
)
def test_bad_npy_files_are_refused_in_one_line(tmp_path: Path, payload, message: str) -> None:
    path = tmp_path / "data.npy"
    if payload is None:
        np.save(path, np.array([1 + 2j]))
    elif payload == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif payload == "npz":
        with open(path, "wb") as file:
            np.savez(file, a=np.ones(2))
    else:
        path.write_bytes(payload)
    graph = tmp_path / "g.yaml"
    graph.write_text("inputs:\n  a: {file: data.npy}\n" + NODES)
    with pytest.raises(CgraphError) as caught:
        cgraph.load(graph)
    assert message in caught.value.message
    assert "error:" not in caught.value.message  # the position is given once, not repeated inside
    assert "pickle" not in caught.value.message and "\n" not in str(caught.value)
    assert (caught.value.pos.line, caught.value.pos.col) == (2, 13)


def test_npy_file_is_read_relative_to_the_graph_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.arange(6, dtype=np.int32).reshape(2, 3))
    graph = tmp_path / "g.yaml"
    graph.write_text("inputs:\n  a: {file: data/x.npy}\n" + NODES)
    loaded = cgraph.load(graph)
    assert loaded.spec.inputs["a"].value.dtype == np.float64
    np.testing.assert_array_equal(loaded.forward(), 2 * np.arange(6).reshape(2, 3))


def test_deep_chain_runs_without_recursion() -> None:
    # y_n = (...((x * c) + c) * c ...): 200,000 nodes, far past Python's recursion limit.
    count = 200_000
    nodes = {}
    previous = "x"
    for i in range(count):
        nodes[f"n{i}"] = {"op": "mul" if i % 2 == 0 else "add", "inputs": [previous, "c"]}
        previous = f"n{i}"
    graph = cgraph.from_dict({"inputs": {"x": 1.0, "c": 1.0}, "nodes": nodes})
    # With c = 1 every mul keeps the value and every add adds 1: the output is 1 + count / 2.
    assert graph.forward() == 1 + count / 2
    grads = graph.backward()
    # d out / d x = product of the mul factors c = 1; d out / d c = sum over the chain = count / 2 (adds)
    # plus the muls' x values 1, 2, ..., count / 2.
    assert grads["x"] == 1.0
    muls = sum(range(1, count // 2 + 1))
    assert grads["c"] == count // 2 + muls


def test_interrupt_exits_130_with_one_line(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from cgraph.cli import main; main()", "forward", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.0)  # it is now waiting for standard input
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stdout == ""
    assert stderr == "cgraph: interrupted\n"


def test_terminal_on_stdin_gets_a_hint() -> None:
    pty = pytest.importorskip("pty")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", "from cgraph.cli import main; main()", "forward", "-"],
        stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    os.close(secondary)
    os.write(primary, b"inputs: {a: 2}\n" + NODES.encode() + b"\x04")
    stdout, stderr = process.communicate(timeout=30)
    os.close(primary)
    assert "reading the graph from standard input" in stderr
    assert "value: 4.0" in stdout


# --- ONNX models ----------------------------------------------------------------------------

PEAK_CODE = (
    "import sys\n"
    "from cgraph.cli import main\n"
    "try:\n    main()\n"
    "finally:\n"
    "    peak = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
    "    print('peak', peak, file=sys.stderr)\n"
)


def _onnx_model(initializer=None, nodes=None, inputs=(("x", [2, 3]),), opset: int = 17) -> bytes:
    """A small model: y = x + w, where ``initializer`` gives w (a TensorProto)."""
    import onnx
    from onnx import TensorProto, helper

    if initializer is None:
        initializer = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    nodes = nodes or [helper.make_node("Add", ["x", "w"], ["y"])]
    graph = helper.make_graph(
        nodes, "hostile", [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims) for name, dims in inputs],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)], [initializer])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _huge_tensor(name: str = "w", dims=(1_000_000, 1_000_000)):
    from onnx import TensorProto

    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims))
    return tensor


def _external_tensor(location: str, length: int = 12):
    from onnx import TensorProto

    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _refused(tmp_path: Path, raw: bytes, *options: str) -> tuple[str, float]:
    """Run ``cgraph backward`` on a model of bytes ``raw``; its one error line and the time it took."""
    path = tmp_path / "model.onnx"
    path.write_bytes(raw)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_CODE, "backward", str(path), "--set", "x=[[1, 2, 3], [4, 5, 6]]",
                             *options], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    elapsed = time.perf_counter() - started
    error, peak = result.stderr.splitlines()
    assert result.returncode == 1 and result.stdout == ""
    assert int(peak.split()[1]) < 300 * 1024, f"peak memory {peak} KiB"
    return error, elapsed


ONNX_HOSTILE = {
    "truncated": (lambda: _onnx_model()[:-7], "not an ONNX model: the protobuf is truncated or corrupt"),
    "corrupt": (lambda: b"\x08\x07" + bytes(range(256)) * 4, "not an ONNX model"),
    "huge initializer": (lambda: _onnx_model(_huge_tensor()),
                         "initializer 'w' declares 1,000,000,000,000 elements (shape [1000000, 1000000]), over the limit"),
    "huge dimension of no elements": (lambda: _onnx_model(_huge_tensor(dims=(0, 10**15))), "declares 0 elements"),
    "huge constant": (lambda: _onnx_model(nodes=[
        __import__("onnx").helper.make_node("Constant", [], ["w"], value=_huge_tensor("c")),
        __import__("onnx").helper.make_node("Add", ["x", "w"], ["y"])]), "declares 1,000,000,000,000 elements"),
    "data shorter than declared": (lambda: _onnx_model(_short_tensor()), "declares shape [3] (12 bytes) but holds 8 bytes"),
    "absolute external data": (lambda: _onnx_model(_external_tensor("/etc/passwd")),
                               "external data '/etc/passwd' must be a file inside the model's folder"),
    "external data above the folder": (lambda: _onnx_model(_external_tensor("../secret.bin")),
                                       "external data '../secret.bin' must be a file inside the model's folder"),
    "link out of the folder": (lambda: _onnx_model(_external_tensor("link.bin")),
                               "external data 'link.bin' leads out of the model's folder"),
    "external data shorter than declared": (lambda: _onnx_model(_external_tensor("short.bin")),
                                            "external data 'short.bin' has 4 bytes, too few for 12"),
}


def _short_tensor():
    from onnx import TensorProto

    return TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3], raw_data=b"\0" * 8)


@pytest.mark.parametrize("name", sorted(ONNX_HOSTILE))
def test_hostile_onnx_model_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    pytest.importorskip("onnx", reason="the onnx package is not installed")
    make, message = ONNX_HOSTILE[name]
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.bin").write_bytes(b"\0" * 12)
    (tmp_path / "short.bin").write_bytes(b"\0" * 4)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "link.bin").symlink_to(tmp_path / "outside" / "secret.bin")
    raw = make()
    if name == "huge initializer":
        assert len(raw) < 200
    error, elapsed = _refused(model_dir if "link" in name else tmp_path, raw)
    assert message in error, error
    assert error.startswith(str(model_dir if "link" in name else tmp_path)) or error.startswith("cgraph:")
    assert elapsed < 10, "hang guard, not a benchmark"


def test_huge_onnx_initializer_is_refused_in_milliseconds(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="the onnx package is not installed")
    path = tmp_path / "model.onnx"
    path.write_bytes(_onnx_model(_huge_tensor()))
    for attempt in range(2):  # the first imports what reading needs; the second is the refusal alone
        started = time.perf_counter()
        with pytest.raises(CgraphError, match="1,000,000,000,000 elements"):
            cgraph.load(path, overrides={"x": np.ones((2, 3))})
    assert time.perf_counter() - started < 0.05


def test_onnx_initializers_count_against_the_memory_budget(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="the onnx package is not installed")
    error, _ = _refused(tmp_path, _onnx_model(_huge_tensor(dims=(1000, 1000))), "--max-memory", "1M")
    assert "the model's initializers declare 3.8 MiB, over the limit of 1.0 MiB (raise it with --max-memory)" in error


def test_external_data_inside_the_folder_is_read(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="the onnx package is not installed")
    (tmp_path / "weights").mkdir()
    np.array([1, 2, 3], "<f4").tofile(tmp_path / "weights" / "w.bin")
    path = tmp_path / "model.onnx"
    path.write_bytes(_onnx_model(_external_tensor("weights/w.bin")))
    graph = cgraph.load(path, overrides={"x": np.zeros((2, 3))})
    np.testing.assert_array_equal(graph.forward(), [[1, 2, 3], [1, 2, 3]])


def test_without_the_onnx_package_one_line_says_how_to_install_it(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"  # told by its content, not its name
    path.write_bytes(b"\x08\x08\x12\x07pytorch")
    code = "import sys; sys.modules['onnx'] = None\nfrom cgraph.cli import main\nmain()\n"
    result = subprocess.run([sys.executable, "-c", code, "forward", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "cgraph: error: reading ONNX models needs the onnx package: pip install 'cgraph-calc[onnx]'\n"
