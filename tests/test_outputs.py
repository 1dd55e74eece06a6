"""No output over an input: every command that writes a file refuses a target that is a file the
graph read (the graph file, a {file: ...} input, a --set or --dout @file.npy), under any spelling
of it (another relative path, a symbolic or hard link), and leaves it untouched; and writes are
whole or nothing, a full disk ending in one line, exit 1 and no temporary file left.
Each case runs the real command in its own process."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
has_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
GRAPH = "inputs:\n  x: {file: x.npy}\n  w: 2\nnodes:\n  y: {op: mul, inputs: [x, w]}\n  s: {op: sum, inputs: [y]}\n"


def cgraph(*args: str, cwd: Path, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cgraph", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, **options)


def digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by its content's hash (links by their target's name)."""
    return {str(path.relative_to(folder)): f"-> {os.readlink(path)}" if path.is_symlink()
            else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_symlink() or path.is_file()}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """g.yaml reading x.npy, w.npy and d.npy for --set and --dout, and names for the same files."""
    (tmp_path / "g.yaml").write_text(GRAPH)
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0]))
    np.save(tmp_path / "w.npy", np.array(3.0))
    np.save(tmp_path / "d.npy", np.array(1.0))
    (tmp_path / "sub").mkdir()
    os.symlink("x.npy", tmp_path / "link.npy")
    os.link(tmp_path / "g.yaml", tmp_path / "hard.svg")  # the graph file, by a name --render takes
    return tmp_path


REFUSED = [
    (["html", "g.yaml", "-o", "g.yaml"], "-o g.yaml is the graph file being read"),
    (["html", "g.yaml", "--out", "./g.yaml"], "-o ./g.yaml is the graph file being read"),
    (["html", "sub/../g.yaml", "-o", "g.yaml"], "-o g.yaml is the graph file being read"),
    (["html", "g.yaml", "-o", "x.npy"], "-o x.npy is the file of input 'x' being read"),
    (["html", "g.yaml", "-o", "link.npy"], "-o link.npy is the file of input 'x' being read"),
    (["html", "g.yaml", "--set", "w=@w.npy", "-o", "w.npy"], "-o w.npy is the file of input 'w' being read"),
    (["html", "g.yaml", "--set", "w={file: w.npy}", "-o", "w.npy"], "-o w.npy is the file of input 'w' being read"),
    (["html", "g.yaml", "--dout", "@d.npy", "-o", "d.npy"], "-o d.npy is a file being read"),
    (["html", "-e", "f = a * 2", "--set", "a=@x.npy", "-o", "x.npy"], "-o x.npy is the file of input 'a' being read"),
    (["train", "g.yaml", "--param", "w", "--steps", "3", "--save", "x.npy"],
     "--save x.npy is the file of input 'x' being read"),
    (["train", "g.yaml", "--param", "w", "--steps", "3", "--save", "g.yaml"], "--save g.yaml is the graph file being read"),
    # The copy's trained inputs go to .npy files named after it: g.w.npy beside a copy g.yaml.
    (["train", "sub/g.yaml", "--param", "w", "--steps", "3", "--write-graph", "g.yaml"],
     "g.w.npy, written beside --write-graph g.yaml, is the file of input 'x' being read"),
    (["train", "g.yaml", "--param", "w", "--steps", "3", "--write-graph", "x.npy"],
     "--write-graph x.npy is the file of input 'x' being read"),
    pytest.param(["dot", "g.yaml", "--render", "hard.svg"], "--render hard.svg is the graph file being read", marks=has_dot),
]


@pytest.mark.parametrize("command, message", REFUSED, ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_an_output_over_a_file_read_is_refused_and_the_file_untouched(folder: Path, command: list[str],
                                                                      message: str) -> None:
    if command[1] == "sub/g.yaml":  # a graph in sub/ whose x is ../g.w.npy, which a copy g.yaml would write
        (folder / "sub" / "g.yaml").write_text(GRAPH.replace("x.npy", "../g.w.npy"))
        np.save(folder / "g.w.npy", np.array([1.0, 2.0, 3.0]))
    before = digests(folder)
    result = cgraph(*command, cwd=folder)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"cgraph: error: {message}; choose another name\n")
    assert digests(folder) == before  # nothing written, nothing left


def test_train_write_graph_may_update_the_graph_file_itself(folder: Path) -> None:
    """What the user asked for: the trained copy in place of FILE, its trained inputs' .npy
    files beside it, replacing those FILE read them from."""
    first = cgraph("train", "g.yaml", "--param", "w", "--steps", "3", "--lr", "0.01", "--write-graph", "g.yaml",
                   "--format", "jsonl", cwd=folder)
    assert first.returncode == 0, first.stderr
    assert "w: {file: g.w.npy}" in (folder / "g.yaml").read_text()
    # Loss sum(x * w) over x = [1, 2, 3]: dloss/dw = 6 at every step; w = 2 - 3 * 0.01 * 6.
    assert float(np.load(folder / "g.w.npy")) == pytest.approx(2 - 3 * 0.06)
    again = cgraph("train", "g.yaml", "--param", "w", "--steps", "3", "--lr", "0.01", "--write-graph", "g.yaml",
                   "--format", "jsonl", cwd=folder)  # now reads g.w.npy and writes it anew
    assert again.returncode == 0, again.stderr
    assert float(np.load(folder / "g.w.npy")) == pytest.approx(2 - 6 * 0.06)
    assert np.load(folder / "x.npy").tolist() == [1.0, 2.0, 3.0]
    # An input that is not trained keeps its file, even where the copy in place would write it.
    (folder / "g.yaml").write_text(GRAPH.replace("x.npy", "g.w.npy").replace("w: 2", "w: {file: w.npy}"))
    result = cgraph("train", "g.yaml", "--param", "w", "--steps", "3", "--write-graph", "g.yaml", cwd=folder)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("cgraph: error: g.w.npy, written beside --write-graph g.yaml, is the file of input 'x' "
                             "being read; choose another name\n")


def test_standard_output_appended_to_a_file_read_is_refused(folder: Path) -> None:
    before = digests(folder)
    for name, role in (("g.yaml", "the graph file"), ("x.npy", "the file of input 'x'")):
        with open(folder / name, "ab") as out:
            result = subprocess.run([sys.executable, "-m", "cgraph", "forward", "g.yaml"], cwd=folder, stdout=out,
                                    stderr=subprocess.PIPE, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr == f"cgraph: error: standard output is {role} being read; redirect it to another file\n"
    assert digests(folder) == before


def test_other_names_are_written(folder: Path) -> None:
    result = cgraph("html", "g.yaml", "-o", "page.html", cwd=folder)
    assert result.returncode == 0 and result.stderr == ""
    assert (folder / "page.html").read_text().startswith("<!DOCTYPE html>")
    # Written through a symbolic link: the file it names is replaced, the link kept.
    os.symlink("page.html", folder / "page-link.html")
    (folder / "page.html").write_text("old")
    result = cgraph("html", "g.yaml", "-o", "page-link.html", cwd=folder)
    assert result.returncode == 0 and (folder / "page-link.html").is_symlink()
    assert (folder / "page.html").read_text().startswith("<!DOCTYPE html>")


# --- a full disk ----------------------------------------------------------------------------


def _file_size_limit(size: int):
    """A preexec_fn: files of at most ``size`` bytes, as on a disk that is nearly full (writing
    more fails with EFBIG; Python ignores the SIGXFSZ that comes with it)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


WRITERS = [
    ["html", "g.yaml", "-o", "out.html"],
    ["train", "g.yaml", "--param", "w", "--steps", "2", "--save", "out.npz"],
    ["train", "g.yaml", "--param", "w", "--steps", "2", "--write-graph", "out.yaml"],
    pytest.param(["dot", "g.yaml", "--render", "out.svg"], marks=has_dot),
]


@pytest.mark.parametrize("command", WRITERS, ids=" ".join)
def test_a_full_disk_is_one_line_and_leaves_the_old_file_and_no_temporary(folder: Path, command: list[str]) -> None:
    out = folder / command[-1]
    out.write_bytes(b"old")
    before = digests(folder)
    result = cgraph(*command, cwd=folder, preexec_fn=_file_size_limit(100))
    assert result.returncode == 1 and result.stdout == ""  # (train prints its summary after writing)
    assert result.stderr.startswith("cgraph: error: cannot write out.") and result.stderr.endswith(": File too large\n")
    assert result.stderr.count("\n") == 1
    assert digests(folder) == before  # the old file as it was, no temporary file beside it


def test_a_full_device_and_a_full_standard_output_are_one_line(folder: Path) -> None:
    before = digests(folder)
    result = cgraph("html", "g.yaml", "-o", "/dev/full", cwd=folder)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "cgraph: error: cannot write /dev/full: not a regular file, which renaming would replace\n"
    for command in (["html", "g.yaml"], ["backward", "g.yaml", "--format", "json"], ["forward", "g.yaml", "--full"]):
        with open("/dev/full", "wb") as full:
            result = subprocess.run([sys.executable, "-m", "cgraph", *command], cwd=folder, stdout=full,
                                    stderr=subprocess.PIPE, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr == "cgraph: error: cannot write the output: No space left on device\n"
    assert digests(folder) == before
