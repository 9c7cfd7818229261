"""One base for the HTTP fakes of cloud services: a threaded server on 127.0.0.1, any free port.

A fake subclasses :class:`LoopbackFake`, names its request handler class in ``handler`` (a
``BaseHTTPRequestHandler`` whose ``owner`` attribute is set to the fake) and adds what its
service serves. ``start``/``stop`` and ``with fake:`` are shared.

Example:
    >>> with FakeVertex() as fake:
    ...     client = make_client(api_endpoint=fake.url)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackFake:
    """A service fake served over HTTP on loopback, in a daemon thread."""

    handler: type[BaseHTTPRequestHandler]
    """The request handler class; ``start`` gives a subclass of it ``owner = self``."""

    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:41234."""
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Start serving in a background thread; return the fake."""
        handler: Any = type("Handler", (self.handler,), {"owner": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (a no-op when not started)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
