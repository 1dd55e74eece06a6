"""What Ctrl-C (SIGINT), SIGTERM and SIGHUP do to a run: end it at once, Ctrl-C with one line.

The entry point installs these handlers first, before importing click, numpy or yaml. They
end the process from the handler rather than raising an exception into whatever code was
running (an import, a library's ``except`` clause), which could turn it into a traceback.
Code that must clean up when stopped (a temporary file, a child process) runs within
:func:`stopping_by_exception`.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from typing import Any, Iterator

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _announce(signum: int) -> None:
    if signum == signal.SIGINT:
        try:
            os.write(2, b"cgraph: interrupted\n")
        except OSError:
            pass  # no stderr: the status says it


def stop(signum: int, frame: Any = None) -> None:
    """End the process now with status 128 + the signal's number (130 for Ctrl-C, which also
    writes one line on stderr; SIGTERM and SIGHUP end it quietly)."""
    _announce(signum)
    os._exit(128 + signum)


def install() -> None:
    """Make SIGINT, SIGTERM and SIGHUP end the process at once."""
    for signum in SIGNALS:
        signal.signal(signum, stop)


def _raise(signum: int, frame: Any) -> None:
    for other in SIGNALS:
        signal.signal(other, signal.SIG_IGN)  # a second signal must not interrupt the clean-up
    _announce(signum)
    raise SystemExit(128 + signum)


@contextmanager
def stopping_by_exception() -> Iterator[None]:
    """Within: the signals raise SystemExit instead, so that ``finally`` clauses and context
    managers clean up (subprocess.run stops its child); the handlers are restored after."""
    previous = {signum: signal.signal(signum, _raise) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def held() -> Iterator[None]:
    """Within: the signals wait, to be delivered at the end (where the system can block them)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def release() -> None:
    """Let the signals through again: for a child process started within :func:`held`, which
    would otherwise inherit the block."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
