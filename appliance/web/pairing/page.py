"""What every route of the pairing page shares: the box, the login table and the ways to answer.

The routes (``login_routes``, ``session_routes``, ``mask_routes``, ``event_routes``) each get one
:class:`Page` instead of closing over the blueprint's locals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, abort, jsonify, make_response, render_template, request, session

from ...errors import InvalidStateError
from ...httpd import jsonbody
from ..facade import LoopBlockedError
from .auth import DeviceCookies, LoginLimiter, Logins, csrf_token
from .backend import PairingBackend
from .strings import TEXT, language, languages

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Page:
    """The pairing page's shared state: the box, the settings, the logins, the event log."""

    def __init__(
        self,
        backend: PairingBackend,
        password_hash: str,
        room_name: str,
        *,
        default_minutes: int,
        record: Callable[..., None] | None,
        idle_minutes: float,
        limiter: LoginLimiter,
        config_warnings: int,
    ) -> None:
        self.backend = backend
        self.password_hash = password_hash
        self.configured = bool(password_hash)
        self.room_name = room_name
        self.default_minutes = default_minutes
        self.config_warnings = config_warnings
        self.limiter = limiter
        self.logins = Logins(idle=idle_minutes * 60)
        self.devices = DeviceCookies()
        self._record = record

    def note(self, kind: str, **fields: Any) -> None:
        """Record an event in the box's event log (no address, no name), if there is one."""
        if self._record is not None:
            try:
                self._record(kind, **fields)
            except Exception:  # noqa: BLE001 - the page works without its log
                logger.exception("could not record a %s event", kind)

    def logged_in(self, used: bool = False) -> bool:
        """Whether this request's login is alive; ``used`` keeps it alive."""
        return self.logins.check(session.get("staff"), used)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """One of the page's templates, in the staff's language."""
        lang = language()
        body = render_template(
            f"pairing/{template}",
            t=TEXT[lang],
            lang=lang,
            csrf=csrf_token(),
            room_name=self.room_name,
            languages=languages(),
            **context,
        )
        return make_response(body, status)

    def login_page(self, error: str = "", status: int = 200) -> Response:
        return self.render(
            "login.html", status, configured=self.configured, error=error, fault=self.faulty()
        )

    def faulty(self) -> bool:
        """Whether the box has a fault (a faulty appliance.toml). Before the login the page says
        only that the box needs its technician: the details (keys, values, lines) are for the
        staff logged in and the technician (check-config, doctor), not anyone on the LAN."""
        try:
            return bool(self.backend.status().error)
        except Exception:  # noqa: BLE001 - the login page works without it
            return False

    def too_many(self, wait: int) -> Response:
        response = self.login_page("too_many", 429)
        response.headers["Retry-After"] = str(wait)
        return response


def error(key: str, status: int = 400) -> Response:
    """A refusal as JSON, in the staff's language."""
    return make_response(jsonify({"error": TEXT[language()][key]}), status)


def call(fn: Callable[[], T]) -> T:
    """Run a backend call; a refusal becomes a 409 with its (fixed, safe) message."""
    try:
        return fn()
    except InvalidStateError as exc:
        abort(make_response(jsonify({"error": str(exc)}), 409))
    except LoopBlockedError:
        abort(make_response(jsonify({"error": TEXT[language()]["busy"]}), 503))


def json_object() -> dict[str, Any] | None:
    """The request's JSON object, read by the one checked reader (:mod:`appliance.httpd.jsonbody`):
    None unless it is a JSON request holding one object of finite, bounded numbers, nested no
    deeper than the reader allows."""
    if not request.is_json:
        return None
    try:
        return jsonbody.load_object(request.get_data(cache=True))
    except jsonbody.BodyError:
        return None


def whole_number(value: object) -> int | None:
    """``value`` if it is an integer from a checked body (not a boolean, not 90.0); else None."""
    try:
        jsonbody.number(value)
    except jsonbody.BodyError:
        return None
    return value if isinstance(value, int) else None
