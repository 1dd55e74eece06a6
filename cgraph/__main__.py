"""The `cgraph` command's entry point, also run by `python -m cgraph`."""

import os
import signal


def _stopped_at_start(signum: int, frame: object) -> None:
    if signum == signal.SIGINT:
        os.write(2, b"cgraph: interrupted\n")
    os._exit(128 + signum)


def main() -> None:
    """Run the command. Ctrl-C (SIGINT), SIGTERM and SIGHUP during start-up, before the command's
    own handlers take over (importing click, numpy and yaml), end it as they do later: one line
    and status 130 for Ctrl-C, quietly with 128 + the signal's number for the others."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stopped_at_start)
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
