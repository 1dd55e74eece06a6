"""Files written by the commands, whole or not at all and never over a file the graph read: the
check (:class:`Guard`) and the writing (:func:`atomic_write`) that every output file goes through;
trained parameters as an .npz archive, or as a copy of the graph file whose trained inputs point at
.npy files beside it."""

from __future__ import annotations

import io
import os
import stat
import sys
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping

import numpy as np

from . import signals
from .errors import CgraphError

if TYPE_CHECKING:
    from .spec import GraphSpec


class Guard:
    """The files a command read (``spec.files``), which none of its outputs may replace: one that
    did would lose the user's input, or leave it half-written. ``allowed`` (resolved paths) are
    the exceptions the command was asked for, such as ``train --write-graph FILE`` updating FILE."""

    def __init__(self, spec: GraphSpec, allowed: Collection[str] = ()) -> None:
        self.spec = spec
        self.allowed = frozenset(allowed)

    def check(self, path: str, named: str) -> None:
        """Refuse to write ``path`` where it is a file read; ``named`` is how the error names it
        (``-o g.yaml``)."""
        for read in self.spec.files:
            if read not in self.allowed and same_file(path, read):
                raise CgraphError(f"{named} is {self.spec.file_role(read)} being read; choose another name")


def same_file(path: str, read: str) -> bool:
    """Whether ``path`` is the file at resolved path ``read``: the same file where both exist (a
    hard link too), else the same name once resolved."""
    try:
        return os.path.samefile(path, read)
    except OSError:
        return os.path.realpath(path) == read


def refuse_stdout_over_inputs(spec: GraphSpec) -> None:
    """Refuse to run where standard output is a file the graph read (``cgraph forward g.yaml >> g.yaml``):
    what the command prints would be written into it."""
    try:
        out = os.fstat(sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):
        return  # no standard output, or not a file (a test's capture): nothing to write over
    if not stat.S_ISREG(out.st_mode):
        return
    for read in spec.files:
        try:
            info = os.stat(read)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (out.st_dev, out.st_ino):
            raise CgraphError(f"standard output is {spec.file_role(read)} being read; redirect it to another file")


def atomic_write(path: str, write: Callable[[Any], None], guard: Guard, named: str) -> None:
    """Write ``path`` through ``write(binary_file)`` into a temporary file beside it, then rename it
    into place: a reader (or an interrupted run) sees the old file or the new one, never a part,
    and a full disk leaves the old file and no temporary one. ``guard`` refuses a file the graph
    read; ``named`` is how its error names ``path`` (``-o page.html``)."""
    import tempfile  # here, not at the top: the commands that only read do not need it

    guard.check(path, named)
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise CgraphError(f"cannot write {path}: not a regular file, which renaming would replace")
    target = os.path.realpath(path)  # through a symbolic link: the file it names is replaced, the link kept
    folder = os.path.dirname(target)
    with signals.held():  # Ctrl-C meanwhile ends the run after this, with the file whole and no temporary left
        try:
            descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
        except OSError as error:
            raise CgraphError(f"cannot write {path}: {error.strerror or error}") from None
        try:
            with os.fdopen(descriptor, "wb") as file:
                write(file)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
            os.replace(temporary, target)
        except BaseException as error:
            os.unlink(temporary)
            if isinstance(error, OSError):
                raise CgraphError(f"cannot write {path}: {error.strerror or error}") from None
            raise


def check_folder(path: str) -> None:
    """Fail now, not after a long run, where ``path``'s folder does not exist."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise CgraphError(f"cannot write {path}: there is no folder {folder}")


def write_npz(path: str, arrays: Mapping[str, np.ndarray], guard: Guard, named: str) -> None:
    """The arrays in an uncompressed .npz archive, by name, as ``numpy.load(path)`` reads them."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, lambda file: file.write(buffer.getvalue()), guard, named)


def npy_path(graph_path: str, name: str) -> str:
    """Where the copy of a graph at ``graph_path`` keeps input ``name``: beside it, named after both."""
    stem = os.path.splitext(os.path.basename(graph_path))[0]
    return os.path.join(os.path.dirname(graph_path), f"{stem}.{name}.npy")


def check_graph_copy(path: str, names: Collection[str], guard: Guard, named: str) -> None:
    """Refuse, before a long run, a copy of the graph at ``path`` (see :func:`write_graph`) with
    the inputs ``names`` beside it, where it or one of them would replace a file read."""
    guard.check(path, named)
    for name in names:
        guard.check(npy_path(path, name), beside(npy_path(path, name), named))


def beside(target: str, named: str) -> str:
    """How an error names a file written beside another (``g.W1.npy, beside --write-graph g.yaml,``)."""
    return f"{target}, written beside {named},"


def write_graph(path: str, data: Mapping[str, Any], base_dir: str, arrays: Mapping[str, np.ndarray],
                comment: str, guard: Guard, named: str) -> None:
    """A copy of the graph ``data`` (read from a file in ``base_dir``) at ``path``, whose inputs in
    ``arrays`` are .npy files written beside it; the other inputs' ``file:`` paths still point at
    their files. ``comment`` heads the file."""
    from .yamlline import yaml_line

    check_graph_copy(path, [name for name in (data.get("inputs") or {}) if name in arrays], guard, named)
    inputs: dict[str, Any] = {}
    for name, value in (data.get("inputs") or {}).items():
        if name in arrays:
            target = npy_path(path, name)
            buffer = io.BytesIO()
            np.save(buffer, arrays[name], allow_pickle=False)
            atomic_write(target, lambda file: file.write(buffer.getvalue()), guard, beside(target, named))
            entry: Any = {"file": os.path.basename(target)}
            if isinstance(value, dict) and "dtype" in value:
                entry["dtype"] = value["dtype"]
            inputs[name] = entry
        elif isinstance(value, dict) and isinstance(value.get("file"), str):
            moved = os.path.join(base_dir, os.path.expanduser(value["file"]))
            inputs[name] = {**plain_data(value), "file": os.path.relpath(moved, os.path.dirname(path) or ".")}
        else:
            inputs[name] = plain_data(value)
    lines = [f"# {line}" for line in comment.splitlines()]
    for key, value in {**plain_data(data), "inputs": inputs}.items():
        if isinstance(value, dict):  # inputs and nodes: one line per entry, as graph files are usually written
            lines.append(f"{yaml_line({key: None})[:-len(': null')]}:")
            lines += [f"  {yaml_line({name: item})}" for name, item in value.items()]
        else:
            lines.append(yaml_line({key: value}))
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda file: file.write(text.encode("utf-8")), guard, named)


def plain_data(value: Any) -> Any:
    """Parsed YAML (mappings and lists that remember positions) as plain dicts and lists."""
    if isinstance(value, dict):
        return {key: plain_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_data(item) for item in value]
    return value
