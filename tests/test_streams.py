"""Real processes with closed, narrow and broken streams, and signals: one line, the right status."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cgraph.cli import cli

ROOT = Path(__file__).resolve().parent.parent
APPLE = str(ROOT / "graphs" / "buy_apple.yaml")
BIG = "inputs:\n  a: {shape: [300000], random: normal}\nnodes:\n  b: {op: mul, inputs: [a, a]}\n"


def cgraph(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run the real command, as a user's shell would."""
    return subprocess.run([sys.executable, "-m", "cgraph", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, **kwargs)


def test_closed_stdout_is_one_line_and_status_1() -> None:
    result = subprocess.run(f"'{sys.executable}' -m cgraph forward {APPLE} >&-", shell=True, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == "cgraph: error: cannot write the output: standard output is closed\n"


def test_closed_stderr_keeps_a_successful_run_successful(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("inputs: {a: 0}\nnodes: {b: {op: log, inputs: [a]}}\n")  # warns: log(0) is -inf
    result = subprocess.run(f"'{sys.executable}' -m cgraph forward {path} 2>&-", shell=True, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    assert "value: -inf" in result.stdout


def test_names_that_the_output_encoding_cannot_hold_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("inputs: {苹果: 2}\nnodes: {b: {op: mul, inputs: [苹果, 苹果]}}\n", encoding="utf-8")
    result = cgraph("forward", str(path), env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert "\\u82f9\\u679c: input" in result.stdout and "b = mul(\\u82f9\\u679c, \\u82f9\\u679c)" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("options", [["--full"], ["--format", "json"], ["--full", "--node", "a"]])
def test_a_reader_that_goes_away_gives_status_141(tmp_path: Path, options: list[str]) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(BIG)
    process = subprocess.Popen([sys.executable, "-m", "cgraph", "forward", str(path), *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(10)  # like `| head -c 10`: read a little, then go away
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert stderr == b""


def test_usage_errors_are_one_line_with_status_2() -> None:
    for args in (["forward"], ["forward", APPLE, "--precision", "x"], ["nosuch"], ["forward", APPLE, "--bad\x1b[2J"]):
        result = cgraph(*args)
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("cgraph: error: "), result.stderr
        assert "\x1b" not in result.stderr
    assert cgraph("forward").stderr == "cgraph: error: missing FILE (or -e/--expr 'NAME = EXPR') (see 'cgraph forward --help')\n"


def test_out_of_memory_while_rendering_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from cgraph import render

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(render, "render_json", exhausted)
    result = CliRunner().invoke(cli, ["forward", APPLE, "--format", "json"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "cgraph: error: out of memory: the graph's values do not fit (make its arrays smaller)\n"


def _handles_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has a handler for SIGTERM, which cgraph's entry point sets first
    (Python's start-up sets none)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.1, 0.2, 0.4])
def test_ctrl_c_at_any_moment_of_start_up_is_one_line_and_status_130(delay: float) -> None:
    # From cgraph's entry point on (Python's own start-up comes before it), through the imports
    # of click, numpy and yaml and the reading of standard input, which never ends here.
    process = subprocess.Popen([sys.executable, "-m", "cgraph", "forward", "-"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not _handles_sigterm(process.pid):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.001)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stdout == ""
    assert stderr == "cgraph: interrupted\n"


def _slow_dot(folder: Path) -> Path:
    """A `dot` that writes its process id, then sleeps without writing its output."""
    folder.mkdir()
    program = folder / "dot"
    pid_file = folder / "pid"
    program.write_text(f"#!/bin/sh\necho $$ > '{pid_file}'\nexec '{shutil.which('sleep')}' 60\n")
    program.chmod(0o755)
    return pid_file


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_render_stopped_by_a_signal_stops_dot_and_leaves_no_file(tmp_path: Path, signum: int) -> None:
    pid_file = _slow_dot(tmp_path / "bin")
    out = tmp_path / "graph.svg"
    out.write_bytes(b"old")
    process = subprocess.Popen([sys.executable, "-m", "cgraph", "dot", APPLE, "--render", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PATH": str(tmp_path / "bin")})
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    child = int(pid_file.read_text())
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    assert stdout == ""
    assert stderr == ("cgraph: interrupted\n" if signum == signal.SIGINT else "")
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["bin", "graph.svg"]
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):  # the child was stopped (and reaped)
        os.kill(child, 0)


def test_render_keeps_the_target_when_dot_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "dot").write_text("#!/bin/sh\nexit 0\n")
    (folder / "dot").chmod(0o755)
    out = tmp_path / "graph.png"
    out.write_bytes(b"old")
    result = cgraph("dot", APPLE, "--render", str(out), env={**os.environ, "PATH": str(folder)})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"cgraph: error: --render: dot wrote nothing to {out}; the file is left as it was\n"
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["bin", "graph.png"]


@pytest.mark.parametrize("source, extra", [
    ("{value: 100000, dtype: float16}", []),
    ("{fill: 1e300, shape: [2], dtype: float32}", []),
    ("{file: big.npy, dtype: float32}", []),
    ("{file: long.npy}", []),
    ("{value: 1, dtype: float16}", ["--set", "a=[1e6]"]),
])
def test_narrowing_casts_that_overflow_are_reported_as_infinity_not_warned(tmp_path: Path, source: str,
                                                                           extra: list[str]) -> None:
    np.save(tmp_path / "big.npy", np.array([1e300]))
    np.save(tmp_path / "long.npy", np.array([np.longdouble("1e4000")]))
    path = tmp_path / "g.yaml"
    path.write_text(f"inputs:\n  a: {source}\nnodes: {{b: {{op: mul, inputs: [a, a]}}}}\n")
    result = subprocess.run([sys.executable, "-W", "error", "-m", "cgraph", "forward", str(path), *extra],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr.startswith(f"{path}:2:3: warning: input 'a' holds ")
    assert result.stderr.count("\n") == 1 and "inf" in result.stderr


def test_a_dout_too_large_for_the_output_dtype_is_reported_not_warned(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("inputs: {a: {value: 1, dtype: float16}}\nnodes: {b: {op: mul, inputs: [a, a]}}\n")
    result = subprocess.run([sys.executable, "-W", "error", "-m", "cgraph", "backward", str(path), "--dout", "1e6"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr.startswith("cgraph: warning: --dout holds inf in the output's dtype float16")
    assert "Warning" not in result.stderr


def test_no_command_is_a_one_line_usage_error() -> None:
    result = cgraph()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "cgraph: error: Missing command. (see 'cgraph --help')\n"
