"""The box's Flask application: the staff's pairing page and a public status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, redirect

from ..httpd.request import MAX_BODY
from .pairing import PairingBackend, configure, create_pairing_blueprint


def create_app(
    backend: PairingBackend,
    *,
    password_hash: str = "",
    secure_cookies: bool = True,
    room_name: str = "",
    default_minutes: int = 90,
    record: Callable[..., None] | None = None,
    config_warnings: int = 0,
) -> Flask:
    """The box's app: the staff's pairing page and a public status with no personal data.

    The viewer page is not served here but by the relay (built into the box when it has no
    external one): there is no path to the video but the sealed protocol."""
    app = Flask(__name__, static_folder=None, template_folder="templates")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY)
    configure(app, secure_cookies)  # with the page's security headers on every response
    app.register_blueprint(
        create_pairing_blueprint(
            backend,
            password_hash,
            room_name,
            default_minutes=default_minutes,
            record=record,
            config_warnings=config_warnings,
        )
    )

    @app.get("/")
    def index() -> Any:
        return redirect("/pairing/")

    @app.get("/api/status")
    def api_status() -> Response:
        status = backend.status()
        return jsonify({"state": status.state, "signal": status.signal})

    return app
