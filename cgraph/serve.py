"""``cgraph serve``: the interactive page on 127.0.0.1, with new data whenever the graph file changes.

Standard library only. The server answers two paths: ``/``, the page, and ``/update?have=VERSION``,
which the page polls: ``{"version": V}`` while the data is unchanged, else ``{"version": V, "data": ...}``.
Everything else is 404. The data is built again (by the caller's ``build``) when the file's size or
modification time changes; a mistake in the file becomes an error shown in the page.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from .errors import CgraphError
from .html import error_data, page


class PageSource:
    """The page's data for one graph file, built again when the file changes."""

    def __init__(self, path: str, build: Callable[[], str]) -> None:
        self.path = path
        self.build = build
        self._lock = threading.Lock()
        self._stamp: object = object()  # matches no file's stamp, so the first request builds
        self._data = ""
        self._version = ""

    def current(self) -> tuple[str, str]:
        """The data's version (a hash of it) and the data, as JSON text."""
        with self._lock:
            stamp = _stamp(self.path)
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._data = self.build()
                except CgraphError as error:
                    self._data = error_data(self.path, str(error))
                except MemoryError:
                    self._data = error_data(self.path, "cgraph: error: out of memory: the graph's values do not fit")
                self._version = hashlib.sha256(self._data.encode()).hexdigest()[:16]
            return self._version, self._data


def _stamp(path: str) -> tuple[int, ...] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


def _handler(source: PageSource) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "cgraph"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            url = urlsplit(self.path)
            port = self.server.server_address[1]
            if self.headers.get("Host") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                self.send_error(404)  # another name for this address (DNS rebinding): not ours to answer
                return
            if url.path == "/":
                version, data = source.current()
                body, kind = page(data, live=True, version=version).encode(), "text/html; charset=utf-8"
            elif url.path == "/update":
                version, data = source.current()
                have = parse_qs(url.query).get("have", [""])[0]
                text = f'{{"version": "{version}"}}' if have == version else f'{{"version": "{version}", "data": {data}}}'
                body, kind = text.encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # no line per request

    return Handler


def serve(path: str, build: Callable[[], str], port: int, announce: Callable[[str], None]) -> None:
    """Serve the page of ``path`` on 127.0.0.1:``port`` (0: a free port) until interrupted;
    ``announce`` is given the URL once the server listens."""
    source = PageSource(path, build)
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(source))
    except OSError as exc:
        hint = "; choose another with --port (0 picks a free one)" if exc.errno == errno.EADDRINUSE else ""
        raise CgraphError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}{hint}") from None
    server.daemon_threads = True
    try:
        source.current()
        announce(f"http://127.0.0.1:{server.server_address[1]}/")
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
