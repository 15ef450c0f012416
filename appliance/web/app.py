"""The box's Flask application: the viewer page and local signalling."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, send_from_directory

from ..signalling.local import OfferHandler, create_blueprint

VIEWER_DIR = Path(str(resources.files("appliance.web") / "static" / "viewer"))

#: The viewer page loads nothing from anywhere else, and nothing may frame it.
VIEWER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def create_app(
    handler: OfferHandler, status: Any = None, test_config: dict[str, Any] | None = None
) -> Flask:
    """Build the app. ``handler`` answers offers; ``status()`` returns the public state."""
    app = Flask(__name__, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    if test_config:
        app.config.update(test_config)
    app.register_blueprint(create_blueprint(handler))

    @app.get("/")
    def index() -> Any:
        return redirect("/v/")

    @app.get("/v/")
    def viewer() -> Response:
        return send_from_directory(VIEWER_DIR, "index.html")

    @app.get("/v/<path:name>")
    def viewer_file(name: str) -> Response:
        return send_from_directory(VIEWER_DIR, name)

    @app.get("/api/status")
    def api_status() -> Response:
        return jsonify(status() if status is not None else {})

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = VIEWER_CSP
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        return response

    return app
