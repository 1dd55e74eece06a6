"""The `cgraph` command's entry point, also run by `python -m cgraph`."""

from . import signals


def main() -> None:
    """Run the command, with Ctrl-C, SIGTERM and SIGHUP handled from the start (before click,
    numpy and yaml are imported)."""
    signals.install()
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
