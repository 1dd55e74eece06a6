"""Input arrays: numbers, nested lists, filled, random and .npy sources, checked before allocating."""

from __future__ import annotations

import contextvars
import math
import os
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from .errors import CgraphError, Position
from .yamlsafe import key_position_of, parse, plain_number, position_of

DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16}
RANDOM_KINDS = ("normal", "uniform")
SOURCE_KEYS = ("value", "fill", "random", "file")
ARRAY_KEYS = (*SOURCE_KEYS, "shape", "seed", "scale", "dtype")
DEFAULT_MAX_ELEMENTS = 100_000_000
MAX_DIMS = 32  # numpy's broadcasting takes at most 32 dimensions


def suggest(word: str, choices: Any) -> str:
    """A ' (did you mean 'x'?)' hint naming the closest choice, or ''."""
    import difflib  # here: only a mistake needs it

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(value: Any) -> str:
    """A short description of a parsed YAML value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string '{value}'" if len(value) <= 40 else "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool (numpy's real scalars too)."""
    return type(value) in (int, float) or isinstance(value, (np.integer, np.floating))


def _is_finite_number(value: Any) -> bool:
    """True for a number (see is_number) that is neither infinite, NaN nor too large for a float."""
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def cast(data: Any, dtype: Any) -> np.ndarray:
    """``data`` as an array of ``dtype``; a number too large for a narrower dtype becomes
    infinite without numpy's warning, to be reported like any other infinity."""
    if type(data) is np.ndarray and data.dtype == dtype:
        return data  # the usual case, before the cost of errstate
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(data, np.ndarray):
            return data if data.dtype == dtype else data.astype(dtype)
        return np.array(data, dtype=dtype)


def _as_array(data: Any, dtype: Any, pos: Position | None) -> np.ndarray:
    try:
        return cast(data, dtype)
    except OverflowError:
        raise CgraphError(f"a number is too large for {np.dtype(dtype).name}", pos) from None


def array_from_data(data: Any, pos: Position | None, dtype: Any = np.float64) -> np.ndarray:
    """A number or a rectangular nested list as an array; errors point at the offending item."""
    if is_number(data):
        return _as_array(data, dtype, pos)
    if isinstance(data, np.ndarray):
        return cast(_checked_array(data, "the array", pos), dtype)
    if not isinstance(data, list):
        raise CgraphError(f"expected a number or a list of numbers, got {describe(data)}", pos)
    shape = []
    probe: Any = data
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    if len(shape) > MAX_DIMS:
        raise CgraphError(f"the array has {len(shape)} dimensions; at most {MAX_DIMS} are supported", pos)
    level = [data]
    for depth in range(len(shape)):
        last = depth == len(shape) - 1
        following = []
        for row in level:
            for index, item in enumerate(row):
                if last:
                    if not is_number(item):
                        what = "a nested list (the array is ragged)" if isinstance(item, list) else describe(item)
                        raise CgraphError(f"expected a number, got {what}", position_of(row, index) or pos)
                elif not isinstance(item, list):
                    raise CgraphError(
                        f"expected a list, got {describe(item)} (the array is ragged)", position_of(row, index) or pos
                    )
                elif len(item) != shape[depth + 1]:
                    raise CgraphError(
                        f"ragged array: this row has {len(item)} items where the first row has {shape[depth + 1]}",
                        position_of(row, index) or pos,
                    )
                else:
                    following.append(item)
        level = following
    return _as_array(data, dtype, pos)


def build_array(
    data: Any,
    pos: Position | None,
    base_dir: str,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> np.ndarray:
    """An input's array from its YAML form: a number, a nested list, or a mapping of ARRAY_KEYS."""
    if not isinstance(data, dict):
        array = array_from_data(data, pos)
        check_shape(array.shape, max_elements, pos)
        return array
    for key in data:
        if key not in ARRAY_KEYS:
            raise CgraphError(
                f"unknown key '{key}' in an input{suggest(key, ARRAY_KEYS)}; expected one of: {', '.join(ARRAY_KEYS)}",
                key_position_of(data, key) or pos,
            )
    sources = [key for key in SOURCE_KEYS if key in data]
    if len(sources) != 1:
        found = f"found {' and '.join(sources)}" if sources else "found none"
        raise CgraphError(f"an input needs exactly one of {', '.join(SOURCE_KEYS)}; {found}", pos)
    source = sources[0]
    where = position_of(data, source) or pos
    dtype = declared_dtype(data, pos)
    if "shape" in data and source not in ("fill", "random"):
        raise CgraphError(f"'shape' goes with 'fill' or 'random', not with '{source}'", key_position_of(data, "shape") or pos)
    for key in ("seed", "scale"):
        if key in data and source != "random":
            raise CgraphError(f"'{key}' goes with 'random'", key_position_of(data, key) or pos)

    if source == "value":
        array = array_from_data(data["value"], where, dtype)
        check_shape(array.shape, max_elements, where)
        return array
    if source == "file":
        return load_npy(data["file"], where, base_dir, dtype, max_elements)
    if "shape" not in data:
        raise CgraphError(f"'{source}' needs a 'shape', e.g. shape: [2, 3]", pos)
    shape = _shape(data["shape"], position_of(data, "shape") or pos)
    check_shape(shape, max_elements, position_of(data, "shape") or pos)
    if source == "fill":
        fill = data["fill"]
        if not is_number(fill):
            raise CgraphError(f"'fill' must be a number, got {describe(fill)}", where)
        # One number seen in every place: no memory until a pass makes new arrays from it.
        return np.broadcast_to(_as_array(fill, dtype, where), shape)
    kind = data["random"]
    if kind not in RANDOM_KINDS:
        hint = suggest(kind, RANDOM_KINDS) if isinstance(kind, str) else ""
        raise CgraphError(f"'random' must be one of: {', '.join(RANDOM_KINDS)}; got {describe(kind)}{hint}", where)
    seed = data.get("seed", 0)
    if type(seed) is not int or seed < 0:
        raise CgraphError(f"'seed' must be a non-negative integer, got {describe(seed)}", position_of(data, "seed") or pos)
    scale = data.get("scale", 1)
    if not _is_finite_number(scale):
        raise CgraphError(f"'scale' must be a finite number, got {describe(scale)}", position_of(data, "scale") or pos)
    rng = np.random.default_rng(seed)
    sample = rng.standard_normal(shape) if kind == "normal" else rng.random(shape)
    if scale != 1:
        sample *= scale
    return sample.astype(dtype, copy=False)


_MAPPED = contextvars.ContextVar("mapped", default=True)


@contextmanager
def files_read_whole() -> Iterator[None]:
    """Within (in this thread): .npy files are read into memory, not memory-mapped. A mapped file
    that another program truncates while its pages are read ends the process with SIGBUS, and
    a file saved anew in place changes the values under a pass; ``serve`` reads files that
    are being saved."""
    token = _MAPPED.set(False)
    try:
        yield
    finally:
        _MAPPED.reset(token)


def load_npy(path: Any, pos: Position | None, base_dir: str, dtype: Any, max_elements: int) -> np.ndarray:
    """A real-valued array from a .npy file, memory-mapped where its dtype already fits (but
    within :func:`files_read_whole`).

    The header is read and its dtype and shape checked before any data is touched."""
    if not isinstance(path, str) or not path:
        raise CgraphError(f"'file' must be a path to a .npy file, got {describe(path)}", pos)
    full = os.path.join(base_dir, os.path.expanduser(path))
    try:
        with open(full, "rb") as file:
            _check_npy_header(file, path, pos, max_elements)
            if _MAPPED.get():
                array = np.load(full, mmap_mode="r", allow_pickle=False)
            else:  # read whole, from the file checked: one cut off while it is read fails here
                file.seek(0)
                array = np.load(file, allow_pickle=False)
    except CgraphError:  # the header's own verdict, already with its position
        raise
    except FileNotFoundError:
        raise CgraphError(f"file not found: {path}", pos) from None
    except PermissionError:
        raise CgraphError(f"permission denied: {path}", pos) from None
    except IsADirectoryError:
        raise CgraphError(f"not a file: {path}", pos) from None
    except (ValueError, OSError, EOFError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CgraphError(f"not a readable .npy file: {path} ({reason})", pos) from None
    return cast(array, dtype)


def _check_npy_header(file: Any, path: str, pos: Position | None, max_elements: int) -> None:
    """Refuse a file that is not .npy, or whose header is malformed, holds no real numbers,
    or gives a shape over the limits."""
    start = file.read(6)
    file.seek(0)
    if start[:2] == b"PK":
        raise CgraphError(f"not a .npy file: {path} (an .npz archive?)", pos)
    if start != b"\x93NUMPY":
        raise CgraphError(f"not a .npy file: {path}", pos)
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise ValueError
    except Exception:  # numpy's header parser fails in many ways (ValueError, SyntaxError, tokenize's errors)
        raise CgraphError(f"not a readable .npy file: {path} (its header is malformed)", pos) from None
    if dtype.kind not in "fiu":
        raise CgraphError(f"{path} holds {dtype} data; expected real numbers", pos)
    if any(type(size) is not int or size < 0 for size in shape):
        raise CgraphError(f"not a readable .npy file: {path} (its header is malformed)", pos)
    if len(shape) > MAX_DIMS:
        raise CgraphError(f"{path} has {len(shape)} dimensions; at most {MAX_DIMS} are supported", pos)
    check_shape(shape, max_elements, pos)


def _checked_array(array: np.ndarray, what: str, pos: Position | None) -> np.ndarray:
    """``array`` if it holds real numbers in at most MAX_DIMS dimensions."""
    if array.dtype.kind not in "fiu":
        raise CgraphError(f"{what} holds {array.dtype} data; expected real numbers", pos)
    if array.ndim > MAX_DIMS:
        raise CgraphError(f"{what} has {array.ndim} dimensions; at most {MAX_DIMS} are supported", pos)
    return array


def declared_dtype(data: Any, pos: Position | None) -> Any:
    """The dtype an input's YAML form asks for: its 'dtype', or float64."""
    if not isinstance(data, dict):
        return np.float64
    name = data.get("dtype", "float64")
    if not isinstance(name, str) or name not in DTYPES:
        hint = suggest(name, DTYPES) if isinstance(name, str) else ""
        raise CgraphError(
            f"'dtype' must be one of: {', '.join(DTYPES)}; got {describe(name)}{hint}",
            position_of(data, "dtype") or pos,
        )
    return DTYPES[name]


def _shape(shape: Any, pos: Position | None) -> tuple[int, ...]:
    if is_number(shape):
        shape = [shape]
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise CgraphError(f"'shape' must be a list of non-negative integers, got {describe(shape)}", pos)
    if len(shape) > MAX_DIMS:
        raise CgraphError(f"'shape' has {len(shape)} dimensions; at most {MAX_DIMS} are supported", pos)
    return tuple(shape)


def check_shape(shape: tuple[int, ...], max_elements: int, pos: Position | None, holder: str = "array") -> None:
    """Refuse a shape of more than ``max_elements`` elements, or with a dimension larger than
    that: a zero-size array of shape (4294967296, 0) is refused too, as its dimensions alone
    would make printing and checking it take forever. ``holder`` names what has the shape."""
    count = math.prod(shape)
    largest = max(shape, default=0)
    if count > max_elements:
        problem = f"{count:,} elements"
    elif largest > max_elements:
        problem = f"shape {tuple(shape)}, with a dimension of {largest:,}"
    else:
        return
    raise CgraphError(f"{holder} of {problem} is over the limit of {max_elements:,} (raise it with --max-elements)", pos)


def parse_value_option(text: str, option: str) -> Any:
    """A command-line VALUE as an input's form in a graph file: a number, a YAML/JSON list, a
    mapping such as ``{shape: [2], fill: 0.5}`` (read with positions in the VALUE, as the file
    ``option``), or ``{file: PATH}`` for ``@PATH``."""
    if text.startswith("@"):
        return {"file": text[1:]}
    number = plain_number(text)
    if number is not None:
        return number
    return parse_option_yaml(text, option, VALUE_FORMS)


VALUE_FORMS = "a number, a list like '[1, 2]', a mapping like '{shape: [2], fill: 0.5}', or @file.npy"
_SYNTAX_ERROR = "invalid YAML: "


def parse_option_yaml(text: str, option: str, forms: str) -> Any:
    """An option's text read as YAML (with positions in it, as the file ``option``). Text that does
    not parse is an error at ``option`` saying where the reader stopped and which ``forms`` it takes."""
    try:
        return parse(text, option)
    except CgraphError as error:
        if not error.message.startswith(_SYNTAX_ERROR):
            raise
        problem = error.message.removeprefix(_SYNTAX_ERROR)
        if "<document start>" in problem:  # YAML's words for text after a complete value
            problem = "there is more after the value's end"
        raise CgraphError(f"cannot read '{_shortened(text)}': {problem}{_where(text, error.pos)}; expected {forms}",
                          Position(option)) from None


def _where(text: str, pos: Position | None) -> str:
    """Where in ``text`` the YAML reader stopped, in words."""
    lines = text.split("\n")
    if pos is None or pos.line is None or pos.col is None:
        return ""
    if pos.line > len(lines) or (pos.line == len(lines) and pos.col > len(lines[-1])):
        return " at its end"  # YAML places a VALUE that ends too soon past its last character
    return f" at line {pos.line}, column {pos.col}" if len(lines) > 1 else f" at column {pos.col}"


def _shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_array_option(text: str, option: str, max_elements: int = DEFAULT_MAX_ELEMENTS) -> np.ndarray:
    """A command-line array from a VALUE (see parse_value_option; files relative to the current folder).
    Errors say where in the VALUE (``--set r:1:12: error: ...``) where they can."""
    return read_array_option(text, option, max_elements)[0]


def read_array_option(text: str, option: str, max_elements: int = DEFAULT_MAX_ELEMENTS) -> tuple[np.ndarray, str | None]:
    """As parse_array_option, with the resolved path of the file the array was read from, if any."""
    try:
        form = parse_value_option(text, option)
        return build_array(form, None, ".", max_elements), source_file(form, ".")
    except CgraphError as error:
        if error.pos is not None and error.pos.line is not None:
            raise
        raise CgraphError(f"{option}: {error.message}") from None


def source_file(data: Any, base_dir: str) -> str | None:
    """The file an input's YAML form reads (``{file: PATH}``, relative to ``base_dir``) as an
    absolute path with symbolic links resolved, or None for an array written in the graph."""
    if isinstance(data, dict) and isinstance(data.get("file"), str) and data["file"]:
        return os.path.realpath(os.path.join(base_dir, os.path.expanduser(data["file"])))
    return None
