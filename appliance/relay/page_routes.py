"""The viewer page's routes on the relay: its packaged files and its languages."""

from __future__ import annotations

from flask import Flask, Response, jsonify, send_from_directory

from . import checks, paths
from .context import RelayContext
from .viewer import LANG_DIR, VIEWER_DIR, languages


class ViewerPageRoutes:
    """``/v/<room>`` (the page), ``/v/<file>`` and the language files, in a bucket of their own."""

    def __init__(self, relay: RelayContext) -> None:
        self.relay = relay
        self.listed = {"languages": languages()}

    def register(self, app: Flask) -> None:
        app.get(paths.VIEWER + "/<name>")(self.viewer_page)
        app.get(paths.viewer_languages())(self.viewer_languages)
        app.get(paths.VIEWER + "/lang/<name>")(self.viewer_language)

    def viewer_page(self, name: str) -> Response:
        self.relay.limited(self.relay.limits.files)
        if "." in name:
            return send_from_directory(VIEWER_DIR, name)
        checks.room(name)
        return send_from_directory(VIEWER_DIR, "index.html")

    def viewer_languages(self) -> Response:
        self.relay.limited(self.relay.limits.files)
        return jsonify(self.listed)

    def viewer_language(self, name: str) -> Response:
        self.relay.limited(self.relay.limits.files)
        return send_from_directory(LANG_DIR, name)
