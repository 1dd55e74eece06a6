"""Trained parameters written to files, atomically: an .npz archive, or a copy of the graph file
whose trained inputs point at .npy files beside it."""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any, Callable, Mapping

import numpy as np

from .errors import CgraphError


def atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """Write ``path`` through ``write(binary_file)`` into a temporary file beside it, then rename it
    into place: a reader (or an interrupted run) sees the old file or the new one, never a part."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise CgraphError(f"cannot write {path}: not a regular file, which renaming would replace")
    folder = os.path.dirname(path) or "."
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as error:
        raise CgraphError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(temporary, path)
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


def write_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """The arrays in an uncompressed .npz archive, by name, as ``numpy.load(path)`` reads them."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, lambda file: file.write(buffer.getvalue()))


def npy_path(graph_path: str, name: str) -> str:
    """Where the copy of a graph at ``graph_path`` keeps input ``name``: beside it, named after both."""
    stem = os.path.splitext(os.path.basename(graph_path))[0]
    return os.path.join(os.path.dirname(graph_path), f"{stem}.{name}.npy")


def write_graph(path: str, data: Mapping[str, Any], base_dir: str, arrays: Mapping[str, np.ndarray],
                comment: str) -> None:
    """A copy of the graph ``data`` (read from a file in ``base_dir``) at ``path``, whose inputs in
    ``arrays`` are .npy files written beside it; the other inputs' ``file:`` paths still point at
    their files. ``comment`` heads the file."""
    inputs: dict[str, Any] = {}
    for name, value in (data.get("inputs") or {}).items():
        if name in arrays:
            target = npy_path(path, name)
            buffer = io.BytesIO()
            np.save(buffer, arrays[name], allow_pickle=False)
            atomic_write(target, lambda file: file.write(buffer.getvalue()))
            entry: Any = {"file": os.path.basename(target)}
            if isinstance(value, dict) and "dtype" in value:
                entry["dtype"] = value["dtype"]
            inputs[name] = entry
        elif isinstance(value, dict) and isinstance(value.get("file"), str):
            moved = os.path.join(base_dir, os.path.expanduser(value["file"]))
            inputs[name] = {**_plain(value), "file": os.path.relpath(moved, os.path.dirname(path) or ".")}
        else:
            inputs[name] = _plain(value)
    lines = [f"# {line}" for line in comment.splitlines()]
    for key, value in {**_plain(data), "inputs": inputs}.items():
        if isinstance(value, dict):  # inputs and nodes: one line per entry, as graph files are usually written
            lines.append(f"{_flow({key: None})[:-len(': null')]}:")
            lines += [f"  {_flow({name: item})}" for name, item in value.items()]
        else:
            lines.append(_flow({key: value}))
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def _flow(entry: dict[str, Any]) -> str:
    """One ``key: value`` entry as a line of YAML: a mapping or list in flow style, a number or a
    string (a formula) plain where YAML allows."""
    import yaml

    (value,) = entry.values()
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, allow_unicode=True,
                              width=2**31 - 1).strip()[1:-1]
    return yaml.safe_dump(entry, default_flow_style=False, allow_unicode=True, width=2**31 - 1).strip()


def _plain(value: Any) -> Any:
    """Parsed YAML (mappings and lists that remember positions) as plain dicts and lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
