"""The `cgraph` command's entry point, also run by `python -m cgraph`."""

import os
import signal


def _interrupted_at_start(signum: int, frame: object) -> None:
    os.write(2, b"cgraph: interrupted\n")
    os._exit(130)


def main() -> None:
    """Run the command; Ctrl-C during start-up, before the command's own handlers take over
    (importing click, numpy and yaml), also ends it with one line and status 130."""
    signal.signal(signal.SIGINT, _interrupted_at_start)
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
