"""The pairing page's blueprint: the route tables by concern, the logic behind
:class:`PairingBackend`.

``login_routes`` (the guard, login, logout, the language), ``session_routes`` (status, opening,
commands, the QR card), ``mask_routes`` (the mask and its preview) and ``event_routes`` (the
event log and its exports) each register their routes on one blueprint and share one
:class:`~.page.Page`. The security headers are the app's (``configure``, :mod:`.policy`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint

from .auth import IDLE_MINUTES, LoginLimiter
from .backend import PairingBackend
from .event_routes import EventRoutes
from .login_routes import LoginRoutes
from .mask_routes import MaskRoutes
from .page import Page
from .policy import PAIRING_CSP
from .session_routes import SessionRoutes

logger = logging.getLogger(__name__)

__all__ = ["PAIRING_CSP", "STATIC_DIR", "create_pairing_blueprint"]

STATIC_DIR = Path(__file__).parent.parent / "static" / "pairing"


def create_pairing_blueprint(
    backend: PairingBackend,
    password_hash: str,
    room_name: str = "",
    *,
    default_minutes: int = 90,
    record: Callable[..., None] | None = None,
    idle_minutes: float = IDLE_MINUTES,
    limiter: LoginLimiter | None = None,
    config_warnings: int = 0,
) -> Blueprint:
    """The pairing page, to mount at ``/pairing/`` on an app set up by :func:`configure`.

    :param backend: the box (see :class:`PairingBackend`).
    :param password_hash: the pairing password's scrypt hash; "" = nobody can log in.
    :param room_name: the box's name (config ``box.name``), on the page and the card.
    :param default_minutes: the validity the form offers (config ``pairing.valid_minutes``).
    :param record: ``EventLog.record``, to log logins, failed logins, logouts and mask changes
        (no address, no name).
    :param config_warnings: how many warnings the box's settings have (shown after the login).
    """
    bp = Blueprint(
        "pairing",
        __name__,
        url_prefix="/pairing",
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
        template_folder=str(Path(__file__).parent.parent / "templates"),
    )
    if not password_hash:
        logger.warning("no pairing password is set: the pairing page refuses every login")
    page = Page(
        backend,
        password_hash,
        room_name,
        default_minutes=default_minutes,
        record=record,
        idle_minutes=idle_minutes,
        limiter=limiter or LoginLimiter(),
        config_warnings=config_warnings,
    )
    for routes in (LoginRoutes(page), SessionRoutes(page), MaskRoutes(page), EventRoutes(page)):
        routes.register(bp)
    return bp
