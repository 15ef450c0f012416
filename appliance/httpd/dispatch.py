"""A WSGI app that sends some path prefixes to one app and the rest to another."""

from __future__ import annotations

from typing import Any


class PathDispatch:
    """Sends paths under ``prefixes`` to :attr:`inner` and the rest to :attr:`outer`.

    The apps are set once built: the server binds first, so the box knows its own URL before it
    builds the apps that need it. Until then every request gets a 503."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self._prefixes = prefixes
        self.outer: Any = None
        self.inner: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        app = self.inner if path.startswith(self._prefixes) else self.outer
        if app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting\n"]
        return app(environ, start_response)
