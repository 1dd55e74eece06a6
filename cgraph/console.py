"""Writing to the terminal and the standard streams: output in large chunks that survive a closed
pipe, one-line diagnostics on stderr, colour, progress bars, and user errors as one line and exit 1."""

from __future__ import annotations

import codecs
import io
import os
import re
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import click

# --- colour -----------------------------------------------------------------------------

_color_mode = "auto"  # --color, set before the command runs


def _set_color(ctx: click.Context, param: click.Parameter, value: str) -> None:
    global _color_mode
    _color_mode = value


COLOR_OPTION = click.option(
    "--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
    callback=_set_color, expose_value=False, is_eager=True,
    help="Colour errors, warnings and the text output's headings, values and gradients; auto: only on a "
         "terminal, and not where NO_COLOR is set.")


def colored(stream: Any) -> bool:
    """Whether to colour what goes to ``stream``."""
    if _color_mode != "auto":
        return _color_mode == "always"
    if os.environ.get("NO_COLOR"):
        return False
    return stream is not None and is_terminal(stream)


_LABEL = re.compile(r"  (\S[^:]*:)( +)(.*)\Z", re.DOTALL)


def paint(chunks: Iterable[str]) -> Iterator[str]:
    """The text output in colour, chunk by chunk (each of whole lines): headings bold, values
    blue, gradients red."""
    color = None
    for chunk in chunks:
        painted = []
        for line in chunk.split("\n"):
            label = _LABEL.match(line)
            if line[:1] not in ("", " "):
                painted.append(click.style(line, bold=True))
            elif label:
                color = "blue" if label.group(1) == "value:" else "red"
                painted.append(f"  {click.style(label.group(1), fg=color, bold=True)}{label.group(2)}"
                               f"{click.style(label.group(3), fg=color)}")
            elif line and color:
                painted.append(click.style(line, fg=color))
            else:
                painted.append(line)
        yield "\n".join(painted)


_KINDS = {": error: ": "red", ": warning: ": "yellow"}


def paint_kind(line: str) -> str:
    """A diagnostic line with its ``error:`` or ``warning:`` in colour."""
    for kind, color in _KINDS.items():
        if kind in line:
            return line.replace(kind, f": {click.style(kind.strip(': ') + ':', fg=color, bold=True)} ", 1)
    return line


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a user error, or running out of memory, as one line on stderr and exit 1."""
    from .errors import CgraphError

    try:
        yield
    except CgraphError as error:
        say(str(error))
        sys.exit(1)
    except MemoryError:
        say("cgraph: error: out of memory: the graph's values do not fit (make its arrays smaller)")
        sys.exit(1)


SLOW_SECONDS = 2.0  # a run longer than this shows that it is running, on a terminal


@contextmanager
def notice_if_slow(what: str) -> Iterator[None]:
    """On a terminal, from SLOW_SECONDS into ``what`` on, a line on stderr counting the seconds,
    erased when it ends. (The passes report no progress of their own: their loop over the nodes
    is kept free of it, so this counts time, not nodes.)"""
    stream = sys.stderr
    if stream is None or not is_terminal(stream):
        yield
        return
    import threading
    import time

    done = threading.Event()
    started = time.monotonic()

    def count() -> None:
        shown = False
        while not done.wait(SLOW_SECONDS if not shown else 1.0):
            shown = True
            try_write(stream, f"\rcgraph: {what} running, {time.monotonic() - started:.0f} s")
        if shown:
            try_write(stream, "\r\x1b[K")

    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def is_terminal(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


def try_write(stream: Any, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def say(line: str) -> None:
    """Write one line to stderr; a closed or broken stderr loses it rather than failing the run."""
    stream = sys.stderr
    if stream is not None:
        try_write(stream, (paint_kind(line) if colored(stream) else line) + "\n")


def progress(length: int, label: str, every: int | None, show: Callable[[Any], str | None]) -> Any:
    """click's progress bar on stderr, only where stderr is a terminal, redrawn every ``every`` items
    (or 200 times in all); ``show`` describes the latest item."""
    return click.progressbar(length=length, label=label, file=sys.stderr, hidden=not sys.stderr.isatty(),
                             show_pos=True, update_min_steps=every or max(1, length // 200), item_show_func=show)


WRITE_BUFFER = 1 << 20  # bytes gathered before each write to standard output


def write_lines(lines: Iterable[str]) -> None:
    """Write lines to stdout, each followed by a newline, as :func:`write_chunks` writes."""
    write_chunks(_joined(lines))


def _joined(lines: Iterable[str]) -> Iterator[str]:
    """Lines with their newlines, up to 4096 or WRITE_BUFFER characters together."""
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if len(batch) >= 4096 or size >= WRITE_BUFFER:
            yield "\n".join(batch) + "\n"
            batch.clear()
            size = 0
    if batch:
        yield "\n".join(batch) + "\n"


def write_chunks(chunks: Iterable[str | bytes | memoryview]) -> None:
    """Write text or UTF-8 bytes to stdout as they come, through one buffer of WRITE_BUFFER
    bytes (larger chunks go straight through); a reader that went away ends the command quietly
    with status 141, as a program killed by SIGPIPE does."""
    out = sys.stdout
    if out is None:
        raise no_output("standard output is closed")
    try:
        writer = _Writer(out)
        for chunk in chunks:
            writer.write(chunk)
        writer.flush()
    except OSError as error:
        # Keep Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        if isinstance(error, BrokenPipeError):
            sys.exit(141)
        raise no_output(error.strerror or str(error)) from None


class _Writer:
    """The one buffer between the renderers and standard output: chunks gathered up to
    WRITE_BUFFER, then written straight to the file descriptor where there is one, since a
    buffered stream may drop the rest of a large write to a pipe that closed without a word.
    Characters the stream's encoding cannot hold are written as escapes (``\\u82f9``)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        try:
            self.descriptor: int | None = out.fileno()
        except (AttributeError, ValueError, io.UnsupportedOperation):
            self.descriptor = None
        self.encoding = out.encoding or "utf-8"
        self.utf8 = codecs.lookup(self.encoding).name == "utf-8"
        self.texts: list[str] = []
        self.data: list[bytes | memoryview] = []
        self.size = 0
        if self.descriptor is not None:
            out.flush()

    def write(self, chunk: str | bytes | memoryview) -> None:
        if isinstance(chunk, str):
            if self.data:
                self.flush()
            self.texts.append(chunk)
        else:
            if self.texts:
                self.flush()
            if len(chunk) >= WRITE_BUFFER:
                self.flush()
                self._send(chunk)
                return
            self.data.append(chunk)
        self.size += len(chunk)
        if self.size >= WRITE_BUFFER:
            self.flush()

    def flush(self) -> None:
        if self.texts:
            text = "".join(self.texts)
            self.texts.clear()
            if self.descriptor is None:
                self.out.write(text)
            else:
                self._send(text.encode(self.encoding, "backslashreplace"))
        elif self.data:
            data = b"".join(self.data)
            self.data.clear()
            self._send(data)
        self.size = 0

    def _send(self, data: bytes | memoryview) -> None:
        if self.descriptor is None or not self.utf8:
            text = bytes(data).decode("utf-8")
            if self.descriptor is None:
                self.out.write(text)
                return
            data = text.encode(self.encoding, "backslashreplace")
        view = memoryview(data)
        while view:
            view = view[os.write(self.descriptor, view):]


def no_output(reason: str) -> Exception:
    from .errors import CgraphError

    return CgraphError(f"cannot write the output: {reason}")

