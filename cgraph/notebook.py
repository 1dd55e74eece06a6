"""cgraph in a notebook: a graph shows as its interactive page inside the cell, and its chain rule
as text. The page is the one ``cgraph html`` writes, put whole into an iframe's ``srcdoc``, so that
its script and Content-Security-Policy stay its own and it loads nothing from the network."""

from __future__ import annotations

import html as markup
from typing import Any

from . import explain as explaining
from . import html as pages
from .errors import CgraphError
from .graph import Graph

FRAME_HEIGHT = 640  # CSS pixels: room for the drawing, the slider and the side panel under a cell


def ran_backward(graph: Graph) -> Graph:
    """``graph`` with its gradients: where backward has not run since the inputs last changed,
    it runs now (forward too where needed) with dout 1, as ``cgraph backward`` does."""
    if not graph.grads:
        graph.backward()
    return graph


def page_frame(graph: Graph, precision: int = 8) -> str:
    """An iframe whose ``srcdoc`` is the page of ``graph`` after its backward pass (see
    :func:`ran_backward`), escaped. The frame's scripts run sandboxed, apart from the notebook.
    A graph the page cannot show (too many nodes to draw, a dout that does not fit) gives the
    error's one line instead."""
    try:
        ran_backward(graph)
        page = pages.page(pages.page_data(graph, graph.spec.source, precision))
    except CgraphError as error:  # a notebook would show a traceback: show the one line instead
        return f'<pre class="cgraph-error">{markup.escape(str(error))}</pre>'
    title = markup.escape(f"cgraph: {graph.spec.source}", quote=True)
    return (f'<iframe class="cgraph-page" title="{title}" sandbox="allow-scripts" '
            f'style="width: 100%; height: {FRAME_HEIGHT}px; border: 1px solid #ccc" '
            f'srcdoc="{markup.escape(page, quote=True)}"></iframe>')


class Explanation:
    """The chain rule of a graph's backward pass, as ``cgraph explain`` writes it: ``str()`` is the
    text, and a notebook shows it as preformatted text (IPython's pretty printer too)."""

    def __init__(self, graph: Graph, precision: int = 8) -> None:
        ran_backward(graph)
        steps = explaining.explain(graph, precision)
        self.text = "\n".join(explaining.render_text(graph, steps, (), precision))

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text)

    def _repr_html_(self) -> str:
        return f'<pre class="cgraph-explain">{markup.escape(self.text)}</pre>'
