"""The box's Flask application: the staff's pairing page; the viewer page's files and CSP."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, request

from .pairing import PAIRING_CSP, PairingBackend, configure, create_pairing_blueprint

VIEWER_DIR = Path(str(resources.files("appliance.web") / "static" / "viewer"))

#: The viewer page loads nothing from anywhere else, and nothing may frame it.
VIEWER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def security_headers(response: Response, csp: str) -> Response:
    """The headers every page of the box and the relay sends."""
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def create_app(
    backend: PairingBackend,
    *,
    password_hash: str = "",
    secure_cookies: bool = True,
    room_name: str = "",
    default_minutes: int = 90,
    record: Callable[..., None] | None = None,
) -> Flask:
    """The box's app: the staff's pairing page and a public status with no personal data.

    The viewer page is not served here but by the relay (built into the box when it has no
    external one): there is no path to the video but the sealed protocol."""
    app = Flask(__name__, static_folder=None, template_folder="templates")
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    configure(app, secure_cookies)
    app.register_blueprint(
        create_pairing_blueprint(
            backend, password_hash, room_name, default_minutes=default_minutes, record=record
        )
    )

    @app.get("/")
    def index() -> Any:
        return redirect("/pairing/")

    @app.get("/api/status")
    def api_status() -> Response:
        status = backend.status()
        return jsonify({"state": status["state"], "signal": status["signal"]})

    @app.after_request
    def headers(response: Response) -> Response:
        return security_headers(response, PAIRING_CSP)

    return app
