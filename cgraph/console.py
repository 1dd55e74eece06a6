"""Writing to the terminal and the standard streams: output in large chunks that survive a closed
pipe, one-line diagnostics on stderr, colour, progress bars, and user errors as one line and exit 1."""

from __future__ import annotations

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


def paint(block: str) -> str:
    """A block of the text output in colour: headings bold, values blue, gradients red."""
    painted = []
    color = None
    for line in block.split("\n"):
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
    return "\n".join(painted)


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


def write_lines(lines: Iterable[str]) -> None:
    """Write lines to stdout in large chunks; a reader that went away ends the command quietly
    with status 141, as a program killed by SIGPIPE does."""
    out = sys.stdout
    if out is None:
        raise no_output("standard output is closed")
    chunk: list[str] = []
    try:
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 4096:
                write_text(out, "\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            write_text(out, "\n".join(chunk) + "\n")
        out.flush()
    except OSError as error:
        # Keep Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        if isinstance(error, BrokenPipeError):
            sys.exit(141)
        raise no_output(error.strerror or str(error)) from None


def write_text(out: Any, text: str) -> None:
    """Write all of ``text``: straight to the file descriptor where there is one, since a
    buffered stream may drop the rest of a large write to a pipe that closed without a word.
    Characters the stream's encoding cannot hold are written as escapes (``\\u82f9``)."""
    try:
        descriptor = out.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        out.write(text)
        return
    out.flush()
    data = memoryview(text.encode(out.encoding or "utf-8", "backslashreplace"))
    while data:
        data = data[os.write(descriptor, data):]


def no_output(reason: str) -> Exception:
    from .errors import CgraphError

    return CgraphError(f"cannot write the output: {reason}")

