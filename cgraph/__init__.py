"""cgraph: a computational-graph calculator with forward and backward passes.

    >>> import cgraph
    >>> graph = cgraph.load("graphs/buy_apple.yaml")
    >>> graph.forward()
    >>> graph.backward(dout=1.0)["apple"]
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load", "loads", "from_dict", "Graph", "CgraphError", "Position", "__version__"]

_LAZY = {
    "load": "api",
    "loads": "api",
    "from_dict": "api",
    "Graph": "graph",
    "CgraphError": "errors",
    "Position": "errors",
}


_MODULES = {"layers", "graph", "spec", "render", "explain", "dot", "check", "lint", "html", "serve", "api", "errors",
            "optim", "train", "save", "sweep", "notebook"}


def __getattr__(name: str) -> object:
    # Import lazily, so `cgraph --version` and `--help` start without numpy or yaml.
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cgraph' has no attribute {name!r}")
