"""Shell completion of option values (click's shell_complete): the names of the inputs and nodes
of the graph file on the command line, files for the options that write one, and files after
'@' in a VALUE. The shells' scripts are click's (``_CGRAPH_COMPLETE=bash_source cgraph``)."""

from __future__ import annotations

import glob
import os
from typing import Any, Callable

import click

Completer = Callable[[click.Context, click.Parameter, str], list[Any]]


def graph_names(ctx: click.Context, sections: tuple[str, ...]) -> list[str]:
    """The names in ``sections`` ("inputs", "nodes") of the graph file given on the command line;
    none where there is no readable graph file yet."""
    from .yamlsafe import parse, quick_parse

    # While an option's value is being completed, click leaves FILE among the unparsed arguments.
    path = ctx.params.get("file") or next(iter(ctx.args), None)
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read()
        data = quick_parse(text)
        data = parse(text, path) if data is None else data
        names = [name for section in sections for name in (data.get(section) or {})]
    except Exception:  # no file yet, or not a graph: nothing to offer, and no traceback while typing
        return []
    return [name for name in names if isinstance(name, str)]


def complete_names(*sections: str, suffix: str = "", listed: bool = False) -> Completer:
    """Completion of the names in ``sections`` of the graph file, each followed by ``suffix``
    (``--set NAME=``); with ``listed``, of the last of comma-separated names (``--batch X,t``).
    After ``NAME=`` (a ``suffix`` of "="), a VALUE of ``@`` completes files."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        if suffix and suffix in incomplete:
            name, _, value = incomplete.partition(suffix)
            return [CompletionItem(f"{name}{suffix}{path}") for path in at_files(value)]
        done, _, last = incomplete.rpartition(",") if listed else ("", "", incomplete)
        given = set(done.split(",")) if done else set()
        head = f"{done}," if done else ""
        return [CompletionItem(f"{head}{name}{suffix}") for name in graph_names(ctx, sections)
                if name.startswith(last) and name not in given]

    return complete


def at_files(value: str) -> list[str]:
    """``@PATH`` completions of a VALUE starting with '@': the .npy files and the folders (ending
    in '/') whose paths start with PATH; none for a VALUE of another form."""
    if not value.startswith("@"):
        return []
    paths = sorted(glob.glob(glob.escape(os.path.expanduser(value[1:])) + "*"))
    return ["@" + (path + "/" if os.path.isdir(path) else path) for path in paths
            if os.path.isdir(path) or path.endswith(".npy")]


def complete_value(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Completion of a VALUE option (``--dout``): files after '@'."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(path) for path in at_files(incomplete)]


def complete_files(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Completion of an option naming a file to write: the shell lists the files."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="file")]
