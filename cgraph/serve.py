"""``cgraph serve``: the interactive page on 127.0.0.1, with new data whenever a file the graph reads changes.

Standard library only. The server answers three paths: ``/``, the page; ``/update?have=VERSION``,
which the page polls: ``{"version": V}`` while the data is unchanged, else ``{"version": V, "data": ...}``;
and ``/array?name=NAME&which=value|grad&have=VERSION``, one drawn array in full (the page embeds
big ones as a sample), encoded as the page's data encodes arrays, from the build of VERSION only:
409 with ``{"version": V}`` where the data is now another version, 404 for a name not drawn.
Everything else is 404. The data is built again (by the caller's ``build``) when the size,
modification time or inode of the graph file or of any file its last build read changes (a file
that disappears too); a mistake in the files becomes an error shown in the page. Every answer
is built whole before any of it is sent: a page or an update from one build, never a part.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, urlsplit

from .errors import CgraphError
from .html import encode_array, error_data, page

Stamp = tuple[int, ...] | None
# The arrays of a build, by name and then "value" or "grad", as the graph computed them.
Arrays = Mapping[str, Mapping[str, Any]]
Build = Callable[[], tuple[str, tuple[str, ...], Arrays]]
RETRY_SECONDS = 1.0  # while the page shows an error, it is built again this often (or as often as it costs)
# A file's modification time advances in ticks of the kernel's clock (a few milliseconds): a file
# modified within this long of being read may have changed again since with the same stamp, and
# is read once more after it.
RECENT_NS = 100_000_000


class PageSource:
    """The page's data for one graph file, built again when the file or any file it read changes.

    ``build`` returns the data (JSON text), the files it read (resolved paths) and the arrays of
    the inputs and nodes drawn, whole (see :meth:`array`). Where it fails,
    the files of the build before are still watched, and the build is tried again every
    RETRY_SECONDS: a file it names that was missing from the start is seen when it appears."""

    def __init__(self, path: str, build: Build) -> None:
        self.path = path
        self.build = build
        self._lock = threading.Lock()
        self._stamps: dict[str, Stamp] = {}  # of the files watched, as they were when last read
        self._again_at: float | None = None  # when to build again though no stamp changed (monotonic)
        self._data = ""
        self._arrays: Arrays = {}
        self._version = ""
        self._page: tuple[str, bytes] = ("", b"")

    def current(self) -> tuple[str, str]:
        """The data's version (a hash of it) and the data, as JSON text."""
        with self._lock:
            checked = time.time_ns()
            before = {path: _stamp(path) for path in self._stamps or [self.path]}
            if before != self._stamps or (self._again_at is not None and time.monotonic() >= self._again_at):
                self._rebuild(before, checked)
            return self._version, self._data

    def page(self) -> tuple[str, bytes]:
        """The version and the whole live page of the current data, made once per version."""
        version, data = self.current()
        with self._lock:
            if self._page[0] != version:
                self._page = (version, page(data, live=True, version=version).encode())
            return self._page

    def array(self, name: str, which: str, have: str) -> tuple[int, str]:
        """The HTTP status and JSON text of ``name``'s whole value or gradient (``which``) in the
        build whose version is ``have``: 200 and the array as the page's data encodes it (never
        summarised), 409 and ``{"version": V}`` where the data is now version V, 404 and
        ``{"error": ...}`` for a name not drawn (or ``which`` neither "value" nor "grad")."""
        with self._lock:
            if have != self._version:
                return 409, json.dumps({"version": self._version})
            value = self._arrays.get(name, {}).get(which)
            if value is None:
                return 404, json.dumps({"error": f"no {which!r} of {name!r} in this page"})
            return 200, json.dumps(encode_array(value, full=True), allow_nan=False)

    def _rebuild(self, before: dict[str, Stamp], checked: int) -> None:
        """Build the data from the files whose stamps, taken at ``checked`` (ns since the epoch), are ``before``."""
        started = time.monotonic()
        failed = True
        files: tuple[str, ...] = ()
        self._arrays = {}
        try:
            self._data, files, self._arrays = self.build()
            failed = False
        except CgraphError as error:
            self._data = error_data(self.path, str(error))
        except MemoryError:
            self._data = error_data(self.path, "cgraph: error: out of memory: the graph's values do not fit")
        except Exception as error:  # noqa: BLE001 (a page that says so, not an answer cut off)
            self._data = error_data(self.path, f"cgraph: error: {type(error).__name__}: {error}")
        self._version = hashlib.sha256(self._data.encode()).hexdigest()[:16]
        # Watched: the files this build read, or where it failed those watched before. A file read
        # for the first time is stamped now; the others keep their stamps from before the build,
        # so that a change made while it ran is seen by the next request.
        watched = dict.fromkeys([self.path, *(before if failed else files)])
        self._stamps = {path: before[path] if path in before else _stamp(path) for path in watched}
        finished = time.monotonic()
        recent = any(stamp is not None and stamp[0] >= checked - RECENT_NS for stamp in self._stamps.values())
        if failed:
            self._again_at = finished + max(RETRY_SECONDS, 4 * (finished - started))
        elif recent:
            self._again_at = finished + 2 * RECENT_NS / 1e9
        else:
            self._again_at = None


def _stamp(path: str) -> Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


def check_readable(path: str) -> None:
    """Refuse to serve a file that cannot be read: one line now, rather than a page of errors."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise CgraphError(f"{path}: no such file") from None
    except PermissionError:
        raise CgraphError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise CgraphError(f"{path}: a folder, not a graph file") from None
    except OSError as error:
        raise CgraphError(f"{path}: cannot read it: {error.strerror or error}") from None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many pages reloading at once wait their turn rather than being refused

    def handle_error(self, request: object, client_address: tuple) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return  # the browser went away before the answer was sent (a reload): nothing lost
        from .console import say

        say(f"cgraph: error: answering {client_address[0]}: {type(error).__name__}: {error}")


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
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            status = 200
            if url.path == "/":
                body, kind = source.page()[1], "text/html; charset=utf-8"
            elif url.path == "/update":
                version, data = source.current()
                have = query.get("have", "")
                text = f'{{"version": "{version}"}}' if have == version else f'{{"version": "{version}", "data": {data}}}'
                body, kind = text.encode(), "application/json"
            elif url.path == "/array":
                status, text = source.array(query.get("name", ""), query.get("which", ""), query.get("have", ""))
                body, kind = text.encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # no line per request

    return Handler


def serve(path: str, build: Build, port: int,
          announce: Callable[[str], None]) -> None:
    """Serve the page of ``path`` on 127.0.0.1:``port`` (0: a free port) until interrupted;
    ``build`` makes its data (see :class:`PageSource`); ``announce`` is given the URL once the
    server listens. A file that cannot be read is refused first."""
    check_readable(path)
    source = PageSource(path, build)
    try:
        server = _Server(("127.0.0.1", port), _handler(source))
    except OSError as exc:
        hint = "; choose another with --port (0 picks a free one)" if exc.errno == errno.EADDRINUSE else ""
        raise CgraphError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}{hint}") from None
    try:
        source.current()
        announce(f"http://127.0.0.1:{server.server_address[1]}/")
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
