"""The pairing page's routes: each one small, the logic behind :class:`PairingBackend`."""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from ...capture.mask import check_rect
from ...errors import InvalidStateError
from ...limits import MAX_MINUTES, MIN_MINUTES
from ...passwords import verify_password
from ..facade import LoopBlockedError
from .auth import (
    CHECK_QUEUE_SECONDS,
    DEVICE_COOKIE,
    DEVICE_DAYS,
    IDLE_MINUTES,
    DeviceCookies,
    LoginLimiter,
    Logins,
    check_csrf,
    csrf_token,
)
from .backend import PairingBackend
from .export import events_to_csv, export_name
from .strings import LANG_COOKIE, TEXT, language, languages

logger = logging.getLogger(__name__)

PAIRING_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
MAX_RECTS = 32
PASSWORD_MAX = 1024

STATIC_DIR = Path(__file__).parent.parent / "static" / "pairing"

T = TypeVar("T")


#: Endpoints open without a login (CSRF still applies to the POSTs).
_PUBLIC = frozenset(
    {"pairing.index", "pairing.login", "pairing.logout", "pairing.static", "pairing.choose_lang"}
)
#: Requests the page makes by itself (polls): they do not keep an idle login alive, except the
#: status poll while a session is open (see ``status``).
_PASSIVE = frozenset(
    {"pairing.status", "pairing.preview", "pairing.events_api", "pairing.mask_get"}
)


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
    limiter = limiter or LoginLimiter()
    logins = Logins(idle=idle_minutes * 60)
    devices = DeviceCookies()
    configured = bool(password_hash)
    if not configured:
        logger.warning("no pairing password is set: the pairing page refuses every login")

    def note(kind: str, **fields: Any) -> None:
        if record is not None:
            try:
                record(kind, **fields)
            except Exception:  # noqa: BLE001 - the page works without its log
                logger.exception("could not record a %s event", kind)

    # -- session, login, CSRF ---------------------------------------------------------------------

    def logged_in(used: bool = False) -> bool:
        return logins.check(session.get("staff"), used)

    def render(template: str, status: int = 200, **context: Any) -> Response:
        lang = language()
        body = render_template(
            f"pairing/{template}",
            t=TEXT[lang],
            lang=lang,
            csrf=csrf_token(),
            room_name=room_name,
            languages=languages(),
            **context,
        )
        return make_response(body, status)

    def login_page(error: str = "", status: int = 200) -> Response:
        return render("login.html", status, configured=configured, error=error, fault=faulty())

    def faulty() -> bool:
        """Whether the box has a fault (a faulty appliance.toml). Before the login the page says
        only that the box needs its technician: the details (keys, values, lines) are for the
        staff logged in and the technician (check-config, doctor), not anyone on the LAN."""
        try:
            return bool(backend.status().error)
        except Exception:  # noqa: BLE001 - the login page works without it
            return False

    def too_many(wait: int) -> Response:
        response = login_page("too_many", 429)
        response.headers["Retry-After"] = str(wait)
        return response

    @bp.before_request
    def guard() -> Any:
        if request.endpoint in _PUBLIC:
            return None
        if logged_in(used=request.endpoint not in _PASSIVE):
            return None
        if request.method != "GET" or "/api/" in request.path:
            return jsonify({"error": "login"}), 401
        return redirect(url_for("pairing.index"))

    @bp.get("/")
    def index() -> Response:
        if not logged_in(used=True):
            return login_page("logged_out" if session.get("staff") else "")
        return render("main.html", default_minutes=default_minutes, config_warnings=config_warnings)

    @bp.post("/login")
    def login() -> BaseResponse:
        check_csrf()
        address = request.remote_addr or "?"
        device = devices.read(request.cookies.get(DEVICE_COOKIE))  # logged in here before
        # counted before the password is checked: concurrent guesses cannot all get through
        wait = limiter.attempt(address, device)
        if wait:
            return too_many(wait)
        password = request.form.get("password", "")
        if not limiter.checks.acquire(timeout=CHECK_QUEUE_SECONDS):
            return too_many(1)  # counted as failed: a flood of logins is not a way in
        try:
            right = (
                configured
                and len(password) <= PASSWORD_MAX
                and verify_password(password, password_hash)
            )
        finally:
            limiter.checks.release()
        if not right:
            logger.warning("pairing page: a failed login")
            note("login-failed")
            return login_page("bad_password", 403)
        limiter.succeeded(address, device)
        logins.end(session.get("staff"))
        session.clear()
        session["staff"] = logins.start()
        session["csrf"] = secrets.token_urlsafe(32)  # a new token for the new login
        session.permanent = True
        logger.info("pairing page: staff logged in")
        note("login")
        response = redirect(url_for("pairing.index"), 303)
        response.set_cookie(
            DEVICE_COOKIE,
            devices.issue(),
            max_age=DEVICE_DAYS * 86400,
            path="/pairing",
            secure=current_app.session_interface.get_cookie_secure(current_app),
            httponly=True,
            samesite="Strict",
        )
        return response

    @bp.post("/lang")
    def choose_lang() -> BaseResponse:
        """The staff's choice of language, kept in a cookie (a year) on this browser."""
        check_csrf()
        chosen = request.form.get("lang", "")
        response = redirect(url_for("pairing.index"), 303)
        if chosen in TEXT:
            response.set_cookie(
                LANG_COOKIE,
                chosen,
                max_age=365 * 24 * 3600,
                path="/pairing",
                secure=request.is_secure,
                httponly=True,
                samesite="Strict",
            )
        return response

    @bp.post("/logout")
    def logout() -> BaseResponse:
        check_csrf()
        if logged_in():
            note("logout")
        logins.end(session.get("staff"))
        session.clear()
        return redirect(url_for("pairing.index"), 303)

    # -- status and commands ----------------------------------------------------------------------

    def error(key: str, status: int = 400) -> Response:
        return make_response(jsonify({"error": TEXT[language()][key]}), status)

    @bp.get("/api/status")
    def status() -> Response:
        current = _call(backend.status)
        if current.session is not None:
            # While a session is open the page is in use even when nobody touches it (the staff
            # are scanning): its polls keep the login alive, up to the login's lifetime.
            logged_in(used=True)
        return jsonify(current.to_json())

    @bp.post("/api/open")
    def open_session() -> Response:
        check_csrf()
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or data.get("consent") is not True:
            return error("need_consent")
        minutes = data.get("valid_minutes", default_minutes)
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not MIN_MINUTES <= minutes <= MAX_MINUTES
        ):
            return error("bad_minutes")
        view = _call(lambda: backend.open_session(consent=True, valid_minutes=minutes))
        return jsonify(asdict(view) if view is not None else None)

    commands: dict[str, Callable[[], None]] = {
        "admit": backend.admit,
        "refuse": backend.refuse,
        "pause": backend.pause,
        "resume": backend.resume,
        "end": backend.end,
        "release": backend.release,
    }

    @bp.post("/api/extend")
    def extend() -> Response:
        """Extend the session by the minutes the staff chose (the core caps it)."""
        check_csrf()
        data = request.get_json(silent=True)
        minutes = data.get("minutes") if isinstance(data, dict) else None
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            return error("bad_extend")
        if not 1 <= minutes <= MAX_MINUTES:
            return error("bad_extend")
        _call(lambda: backend.extend(minutes))
        return jsonify({"ok": True})

    @bp.post("/api/<command>")
    def act(command: str) -> Response:
        check_csrf()
        if command not in commands:
            abort(404)
        _call(commands[command])
        return jsonify({"ok": True})

    @bp.get("/qr.svg")
    def qr() -> Response:
        info = _call(backend.status).session
        if info is None:
            abort(404)
        out = io.BytesIO()
        segno.make(info.url, error="m", micro=False).save(
            out, kind="svg", scale=10, border=4, xmldecl=False
        )
        return Response(out.getvalue(), mimetype="image/svg+xml")

    @bp.get("/card")
    def card() -> BaseResponse:
        info = _call(backend.status).session
        if info is None:
            return redirect(url_for("pairing.index"))
        expires = int(info.expires)
        until = dt.datetime.fromtimestamp(expires).strftime("%H:%M")  # the page shows local
        steps = {lang: TEXT[lang]["card_step_end"].split("{time}", 1) for lang in ("fr", "en")}
        return render(
            "card.html",
            until=until,
            expires=expires,
            expires_iso=dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
            steps=steps,
            texts=TEXT,
            card_room=info.room_name or room_name,
        )

    # -- the privacy mask -------------------------------------------------------------------------

    @bp.get("/api/mask")
    def mask_get() -> Response:
        return jsonify({"rects": [list(r) for r in _call(backend.mask)]})

    @bp.post("/api/mask")
    def mask_set() -> Response:
        check_csrf()
        data = request.get_json(silent=True)
        raw = data.get("rects") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            return error("mask_bad")
        if len(raw) > MAX_RECTS:
            return error("mask_too_many")
        try:
            rects = [check_rect(r) for r in raw if isinstance(r, list)]
        except ValueError:
            return error("mask_bad")
        if len(rects) != len(raw):
            return error("mask_bad")
        try:
            _call(lambda: backend.set_mask(rects))
        except ValueError:
            return error("mask_bad")
        logger.info("pairing page: privacy mask saved (%d rectangles)", len(rects))
        note("mask-saved", count=len(rects))
        return jsonify({"rects": [list(r) for r in _call(backend.mask)]})

    @bp.get("/preview.jpg")
    def preview() -> Response:
        jpeg = _call(backend.preview_jpeg)
        if jpeg is None:
            return Response(status=204)
        return Response(jpeg, mimetype="image/jpeg")

    # -- the event log ----------------------------------------------------------------------------

    @bp.get("/api/events")
    def events_api() -> Response:
        return jsonify(_call(backend.events))

    @bp.get("/events.json")
    def events_json() -> Response:
        response = jsonify(_call(backend.events))
        response.headers["Content-Disposition"] = (
            f"attachment; filename={export_name(room_name, 'json')}"
        )
        return response

    @bp.get("/events.csv")
    def events_csv() -> Response:
        response = Response(events_to_csv(_call(backend.events)), mimetype="text/csv")
        response.headers["Content-Disposition"] = (
            f"attachment; filename={export_name(room_name, 'csv')}"
        )
        return response

    @bp.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = PAIRING_CSP
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # the status, the QR code and the card hold the session's link: never cached
        response.headers["Cache-Control"] = "no-store"
        return response

    return bp


def _call(fn: Callable[[], T]) -> T:
    """Run a backend call; a refusal becomes a 409 with its (fixed, safe) message."""
    try:
        return fn()
    except InvalidStateError as exc:
        abort(make_response(jsonify({"error": str(exc)}), 409))
    except LoopBlockedError:
        abort(make_response(jsonify({"error": TEXT[language()]["busy"]}), 503))
