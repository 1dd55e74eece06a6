"""cgraph: a computational-graph calculator with forward and backward passes.

    >>> import cgraph
    >>> graph = cgraph.load("graphs/buy_apple.yaml")
    >>> graph.forward()
    >>> graph.backward(dout=1.0)["apple"]
"""

from __future__ import annotations

from typing import Any

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


def __getattr__(name: str) -> Any:
    # Import lazily, so `cgraph --version` and `--help` start without numpy or yaml.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cgraph' has no attribute {name!r}")
