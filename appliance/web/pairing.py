"""The staff's pairing page on the box: log in, open a session, show and print its QR card, admit
or refuse the viewer, pause, resume, end; the privacy mask editor; the event log. French and
English, by the browser's language.

Security: no default password (without one configured nobody can log in, and the page says how
to set one); the password is checked against its scrypt hash (:mod:`appliance.passwords`); a CSRF
token tied to the login on every POST; failed logins limited per client address and overall
(429 with Retry-After); the session cookie is Secure, HttpOnly, SameSite=Strict, signed with a key
made at each boot and kept in memory, and a login also ends after :data:`IDLE_MINUTES` without
use or :data:`LOGIN_HOURS` in all (checked here, not only by the cookie; logging out ends it for
good); a strict CSP (no inline script or style, nothing from elsewhere). Nothing here logs a
password, an address or a name.

The page reaches the box only through a :class:`PairingBackend`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import segno
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    has_request_context,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse

from ..capture.mask import check_rect
from ..errors import InvalidStateError
from ..passwords import verify_password
from .facade import LoopBlockedError

logger = logging.getLogger(__name__)

PAIRING_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: A login ends after this long without the staff doing anything (the status poll does not count).
IDLE_MINUTES = 30
#: ... and after this long in all.
LOGIN_HOURS = 12
#: Failed logins: at most this many per client address and overall, per window (seconds).
FAILS_PER_ADDRESS, FAILS_OVERALL, FAIL_WINDOW = 5, 20, 300.0
#: A session's validity, in minutes (the core clamps to the same bounds).
MIN_MINUTES, MAX_MINUTES = 5, 24 * 60
MAX_RECTS = 32
PASSWORD_MAX = 1024

STATIC_DIR = Path(__file__).parent / "static" / "pairing"

Rect = tuple[float, float, float, float]
T = TypeVar("T")


class PairingBackend(Protocol):
    """What the page needs from the box (the core implements it; see docs/architecture.md)."""

    def status(self) -> dict[str, Any]:
        """``{"state": "idle|ready|waiting|live|paused|ended|error",
        "signal": "ok|no-signal|no-lock|no-cable|changing|unknown", "clock_ok": bool,
        "error": str | None, "session": None | {"room_name": str, "url": str,
        "expires": int (unix s), "viewer": None | {"name": str | None, "code": str | None,
        "admitted": bool, "connected": bool}}}``"""
        ...

    def open_session(self, *, consent: bool, valid_minutes: int) -> dict[str, Any]:
        """Open a session and return its ``session`` dict (as in :meth:`status`); raises
        :class:`~appliance.errors.InvalidStateError` if one is open or the clock is not
        synchronised (the page shows the message)."""
        ...

    def admit(self) -> None: ...
    def refuse(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def end(self) -> None:
        """Each of these raises InvalidStateError when the state does not allow it."""
        ...

    def preview_jpeg(self) -> bytes | None:
        """The current frame, unmasked, as a small JPEG (for the mask editor); None without a
        signal."""
        ...

    def mask(self) -> list[Rect]:
        """The mask's rectangles as fractions x, y, w, h of the frame."""
        ...

    def set_mask(self, rects: list[Rect]) -> None: ...

    def events(self) -> list[dict[str, Any]]:
        """The event log's entries, oldest first (appliance.eventlog)."""
        ...


class EventRecorder(Protocol):
    def record(self, kind: str, **fields: Any) -> None: ...


TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Live scan sharing",
        "login": "Log in",
        "password": "Pairing password",
        "no_password": "No pairing password is set, so nobody can log in. The technician sets "
        "one as pairing.password in appliance.toml on the box's boot partition, then restarts "
        "the box (the password is then stored only as a hash).",
        "bad_password": "Wrong password.",
        "too_many": "Too many attempts. Wait a few minutes.",
        "logged_out": "You were logged out. Log in again.",
        "logout": "Log out",
        "new_session": "New session",
        "consent": "The patient agreed to share the live picture with one person.",
        "need_consent": "The patient's agreement is needed: tick the box first.",
        "valid": "Link valid for (minutes)",
        "bad_minutes": "The validity is a number of minutes from 5 to 1440.",
        "open": "Open the session",
        "print": "Print the card",
        "admit": "Admit",
        "refuse": "Refuse",
        "pause": "Pause (privacy)",
        "resume": "Resume",
        "end": "End the session",
        "confirm_end": "End the session? The link stops working for good.",
        "state_idle": "No session open.",
        "state_ready": "Waiting: nobody has connected yet.",
        "state_waiting": "Someone is connecting: ask them to read the code, then admit or refuse.",
        "state_live": "Live: the viewer sees the scan.",
        "state_paused": "Paused: the viewer sees a 'paused' screen.",
        "state_ended": "The session has ended.",
        "state_error": "A fault: see the technician (appliance doctor).",
        "signal_lost": "No picture from the scanner (HDMI signal lost).",
        "signal_no-signal": "No picture from the scanner: the cable is in, but no signal.",
        "signal_no-cable": "No picture: the scanner's HDMI cable is not connected.",
        "signal_no-lock": "The scanner's picture cannot be read (a mode the box does not take).",
        "signal_changing": "The scanner's picture is changing mode…",
        "signal_no-device": "The capture hardware is missing: see the technician.",
        "clock": "The box's clock is not set yet (no network time): sessions cannot open.",
        "code": "Verification code",
        "code_pending": "…",
        "name": "Name given:",
        "offline": "The viewer's connection dropped: their phone may come back.",
        "expires": "Link expires at",
        "busy": "The box is busy: try again.",
        "mask": "Privacy mask",
        "mask_help": "Draw rectangles over where the scanner shows the patient's name, id and "
        "date of birth. These areas are blanked (black) in every frame before it is encoded: "
        "they never leave the box. The preview below is the scanner's picture without the mask.",
        "mask_save": "Save the mask",
        "mask_clear": "Remove all",
        "mask_saved": "Mask saved.",
        "mask_empty": "No rectangle: nothing is blanked.",
        "mask_rect": "Rectangle",
        "mask_bad": "Each rectangle is x, y, width, height as fractions of the picture.",
        "mask_too_many": "At most 32 rectangles.",
        "delete": "Delete",
        "no_preview": "No picture from the scanner.",
        "events": "Event log",
        "events_help": "What happened and when, with no personal data.",
        "events_empty": "Nothing yet.",
        "export_json": "Export (JSON)",
        "export_csv": "Export (CSV)",
        "when": "When",
        "what": "What",
        "kind_started": "box started",
        "kind_opened": "session opened",
        "kind_knock": "a viewer knocked",
        "kind_admitted": "viewer admitted",
        "kind_refused": "viewer refused",
        "kind_tamper": "tampered message refused",
        "kind_viewer-left": "viewer left",
        "kind_ended": "session ended",
        "kind_expired": "session expired",
        "kind_login": "staff logged in",
        "kind_login-failed": "failed login",
        "kind_logout": "staff logged out",
        "kind_mask-saved": "privacy mask saved",
        "card_title": "Watch the scan live",
        "card_room": "Room",
        "card_steps": "Scan this code with your phone's camera, or send the link (or a photo of "
        "this card) through your own messenger to the one person who will watch. Only one "
        "phone can watch. When the staff ask, read them the code shown on the screen. The link "
        "stops working at {time}, or when the exam ends. Nothing is recorded.",
        "card_print": "Print",
        "card_back": "Back",
    },
    "fr": {
        "title": "Partage de l'échographie en direct",
        "login": "Connexion",
        "password": "Mot de passe d'appairage",
        "no_password": "Aucun mot de passe n'est défini : personne ne peut se connecter. Le "
        "technicien le définit (pairing.password) dans appliance.toml sur la partition de "
        "démarrage du boîtier, puis redémarre le boîtier (seule une empreinte est gardée).",
        "bad_password": "Mot de passe incorrect.",
        "too_many": "Trop de tentatives. Patientez quelques minutes.",
        "logged_out": "Vous avez été déconnecté. Reconnectez-vous.",
        "logout": "Déconnexion",
        "new_session": "Nouvelle séance",
        "consent": "La patiente accepte de partager l'image en direct avec une personne.",
        "need_consent": "L'accord de la patiente est nécessaire : cochez d'abord la case.",
        "valid": "Lien valable (minutes)",
        "bad_minutes": "La validité est un nombre de minutes de 5 à 1440.",
        "open": "Ouvrir la séance",
        "print": "Imprimer la carte",
        "admit": "Admettre",
        "refuse": "Refuser",
        "pause": "Pause (confidentialité)",
        "resume": "Reprendre",
        "end": "Terminer la séance",
        "confirm_end": "Terminer la séance ? Le lien cessera définitivement de fonctionner.",
        "state_idle": "Aucune séance ouverte.",
        "state_ready": "En attente : personne n'est encore connecté.",
        "state_waiting": "Quelqu'un se connecte : faites lire le code, puis admettez ou refusez.",
        "state_live": "En direct : la personne voit l'examen.",
        "state_paused": "En pause : la personne voit un écran « en pause ».",
        "state_ended": "La séance est terminée.",
        "state_error": "Un défaut : appelez le technicien (appliance doctor).",
        "signal_lost": "Pas d'image de l'échographe (signal HDMI perdu).",
        "signal_no-signal": "Pas d'image de l'échographe : câble branché, mais aucun signal.",
        "signal_no-cable": "Pas d'image : le câble HDMI de l'échographe n'est pas branché.",
        "signal_no-lock": "L'image de l'échographe est illisible (mode non pris en charge).",
        "signal_changing": "L'image de l'échographe change de mode…",
        "signal_no-device": "Le matériel de capture est absent : appelez le technicien.",
        "clock": "L'horloge du boîtier n'est pas encore à l'heure : pas de séance possible.",
        "code": "Code de vérification",
        "code_pending": "…",
        "name": "Nom indiqué :",
        "offline": "La connexion de la personne a été coupée : son téléphone peut revenir.",
        "expires": "Le lien expire à",
        "busy": "Le boîtier est occupé : réessayez.",
        "mask": "Masque de confidentialité",
        "mask_help": "Tracez des rectangles là où l'échographe affiche le nom, l'identifiant et "
        "la date de naissance de la patiente. Ces zones sont effacées (en noir) de chaque image "
        "avant l'encodage : elles ne quittent jamais le boîtier. L'aperçu ci-dessous montre "
        "l'image de l'échographe sans le masque.",
        "mask_save": "Enregistrer le masque",
        "mask_clear": "Tout effacer",
        "mask_saved": "Masque enregistré.",
        "mask_empty": "Aucun rectangle : rien n'est effacé.",
        "mask_rect": "Rectangle",
        "mask_bad": "Chaque rectangle est x, y, largeur, hauteur en fractions de l'image.",
        "mask_too_many": "32 rectangles au plus.",
        "delete": "Supprimer",
        "no_preview": "Pas d'image de l'échographe.",
        "events": "Journal des événements",
        "events_help": "Ce qui s'est passé et quand, sans aucune donnée personnelle.",
        "events_empty": "Rien pour l'instant.",
        "export_json": "Exporter (JSON)",
        "export_csv": "Exporter (CSV)",
        "when": "Quand",
        "what": "Quoi",
        "kind_started": "boîtier démarré",
        "kind_opened": "séance ouverte",
        "kind_knock": "une personne se connecte",
        "kind_admitted": "personne admise",
        "kind_refused": "personne refusée",
        "kind_tamper": "message falsifié refusé",
        "kind_viewer-left": "la personne est partie",
        "kind_ended": "séance terminée",
        "kind_expired": "séance expirée",
        "kind_login": "connexion du personnel",
        "kind_login-failed": "échec de connexion",
        "kind_logout": "déconnexion du personnel",
        "kind_mask-saved": "masque enregistré",
        "card_title": "Suivez l'échographie en direct",
        "card_room": "Salle",
        "card_steps": "Scannez ce code avec l'appareil photo du téléphone, ou envoyez le lien "
        "(ou une photo de cette carte) par votre propre messagerie à la seule personne qui "
        "regardera. Un seul téléphone peut regarder. Quand le personnel le demande, lisez-lui "
        "le code affiché à l'écran. Le lien cesse de fonctionner à {time}, ou à la fin de "
        "l'examen. Rien n'est enregistré.",
        "card_print": "Imprimer",
        "card_back": "Retour",
    },
}
LANGUAGES = ("en", "fr")


def _now() -> float:
    return time.monotonic()


def language() -> str:
    """The page's language, from the browser's Accept-Language (English by default)."""
    best = request.accept_languages.best_match(LANGUAGES, default="en")
    return best if best in TEXT else "en"


class LoginLimiter:
    """Failed logins: at most ``per_address`` per client address and ``overall`` in all, per
    ``window`` seconds. Addresses are held in memory only, for the window, and never logged."""

    def __init__(
        self,
        per_address: int = FAILS_PER_ADDRESS,
        overall: int = FAILS_OVERALL,
        window: float = FAIL_WINDOW,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._per_address, self._overall, self._window = per_address, overall, window
        self._clock = clock or _now
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._all and now - self._all[0] >= self._window:
            self._all.popleft()
        for key, fails in list(self._fails.items()):
            while fails and now - fails[0] >= self._window:
                fails.popleft()
            if not fails:
                del self._fails[key]

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0: now."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            waits = [0.0]
            mine = self._fails.get(address)
            if mine is not None and len(mine) >= self._per_address:
                waits.append(mine[-self._per_address] + self._window - now)
            if len(self._all) >= self._overall:
                waits.append(self._all[-self._overall] + self._window - now)
            return math.ceil(max(waits))

    def failed(self, address: str) -> None:
        with self._lock:
            now = self._clock()
            self._fails.setdefault(address, deque()).append(now)
            self._all.append(now)

    def succeeded(self, address: str) -> None:
        """The right password from ``address``: its own failures are forgotten."""
        with self._lock:
            self._fails.pop(address, None)


class Logins:
    """The logins in progress, by a random token held in the signed session cookie: ended by
    logging out, after ``idle`` seconds without use, after ``lifetime`` seconds in all, and at
    every restart (they live in memory)."""

    def __init__(
        self,
        idle: float = IDLE_MINUTES * 60,
        lifetime: float = LOGIN_HOURS * 3600,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._idle, self._lifetime, self._clock = idle, lifetime, clock or _now
        self._lock = threading.Lock()
        self._active: dict[str, tuple[float, float]] = {}  # token -> (started, last used)

    def start(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            for old, (started, used) in list(self._active.items()):
                if not self._alive(now, started, used):
                    del self._active[old]
            self._active[token] = (now, now)
        return token

    def check(self, token: object, used: bool) -> bool:
        """Whether ``token`` is a live login; ``used``: the staff did something (resets idle)."""
        if not isinstance(token, str):
            return False
        with self._lock:
            now = self._clock()
            times = self._active.get(token)
            if times is None:
                return False
            started, last = times
            if not self._alive(now, started, last):
                del self._active[token]
                return False
            if used:
                self._active[token] = (started, now)
            return True

    def end(self, token: object) -> None:
        with self._lock:
            if isinstance(token, str):
                self._active.pop(token, None)

    def _alive(self, now: float, started: float, used: float) -> bool:
        return now - used < self._idle and now - started < self._lifetime


#: Endpoints open without a login (CSRF still applies to the POSTs).
_PUBLIC = frozenset({"pairing.index", "pairing.login", "pairing.logout", "pairing.static"})
#: Requests the page makes by itself (polls): they do not keep an idle login alive.
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
) -> Blueprint:
    """The pairing page, to mount at ``/pairing/`` on an app set up by :func:`configure`.

    :param backend: the box (see :class:`PairingBackend`).
    :param password_hash: the pairing password's scrypt hash; "" = nobody can log in.
    :param room_name: the box's name (config ``box.name``), on the page and the card.
    :param default_minutes: the validity the form offers (config ``pairing.valid_minutes``).
    :param record: ``EventLog.record``, to log logins, failed logins, logouts and mask changes
        (no address, no name).
    """
    bp = Blueprint(
        "pairing",
        __name__,
        url_prefix="/pairing",
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
        template_folder="templates",
    )
    limiter = limiter or LoginLimiter()
    logins = Logins(idle=idle_minutes * 60)
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

    def csrf_token() -> str:
        token = session.get("csrf")
        if not isinstance(token, str) or not token:
            token = session["csrf"] = secrets.token_urlsafe(32)
            session.permanent = True
        return token

    def check_csrf() -> None:
        """403 unless the request carries the session's token and, when the browser says
        where it comes from, comes from this page's own origin."""
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf", "")
        expected = session.get("csrf")
        if (
            not isinstance(expected, str)
            or not expected
            or not secrets.compare_digest(str(sent).encode(), expected.encode())
        ):
            abort(403)
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            abort(403)
        origin = request.headers.get("Origin")  # "null" for a form under no-referrer
        if origin and origin not in ("null", request.host_url.rstrip("/")):
            abort(403)

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
            **context,
        )
        return make_response(body, status)

    def login_page(error: str = "", status: int = 200) -> Response:
        return render("login.html", status, configured=configured, error=error)

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
        return render("main.html", default_minutes=default_minutes)

    @bp.post("/login")
    def login() -> BaseResponse:
        check_csrf()
        address = request.remote_addr or "?"
        wait = limiter.retry_after(address)
        if wait:
            response = login_page("too_many", 429)
            response.headers["Retry-After"] = str(wait)
            return response
        password = request.form.get("password", "")
        if (
            not configured
            or len(password) > PASSWORD_MAX
            or not verify_password(password, password_hash)
        ):
            limiter.failed(address)
            logger.warning("pairing page: a failed login")
            note("login-failed")
            return login_page("bad_password", 403)
        limiter.succeeded(address)
        logins.end(session.get("staff"))
        session.clear()
        session["staff"] = logins.start()
        session["csrf"] = secrets.token_urlsafe(32)  # a new token for the new login
        session.permanent = True
        logger.info("pairing page: staff logged in")
        note("login")
        return redirect(url_for("pairing.index"), 303)

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
        return jsonify(_call(backend.status))

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
        return jsonify(_call(lambda: backend.open_session(consent=True, valid_minutes=minutes)))

    commands: dict[str, Callable[[], None]] = {
        "admit": backend.admit,
        "refuse": backend.refuse,
        "pause": backend.pause,
        "resume": backend.resume,
        "end": backend.end,
    }

    @bp.post("/api/<command>")
    def act(command: str) -> Response:
        check_csrf()
        if command not in commands:
            abort(404)
        _call(commands[command])
        return jsonify({"ok": True})

    @bp.get("/qr.svg")
    def qr() -> Response:
        info = _call(backend.status).get("session")
        if not info:
            abort(404)
        out = io.BytesIO()
        segno.make(info["url"], error="m", micro=False).save(
            out, kind="svg", scale=10, border=4, xmldecl=False
        )
        return Response(out.getvalue(), mimetype="image/svg+xml")

    @bp.get("/card")
    def card() -> BaseResponse:
        info = _call(backend.status).get("session")
        if not info:
            return redirect(url_for("pairing.index"))
        expires = int(info["expires"])
        until = dt.datetime.fromtimestamp(expires).strftime("%H:%M")  # the page shows local
        steps = {lang: TEXT[lang]["card_steps"].split("{time}", 1) for lang in ("fr", "en")}
        return render(
            "card.html",
            until=until,
            expires=expires,
            expires_iso=dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
            steps=steps,
            texts=TEXT,
            card_room=info.get("room_name") or room_name,
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
        response.headers["Content-Disposition"] = f"attachment; filename={_export_name('json')}"
        return response

    @bp.get("/events.csv")
    def events_csv() -> Response:
        response = Response(events_to_csv(_call(backend.events)), mimetype="text/csv")
        response.headers["Content-Disposition"] = f"attachment; filename={_export_name('csv')}"
        return response

    def _export_name(ext: str) -> str:
        name = "".join(c for c in room_name if c.isalnum() or c == "-") or "box"
        return f"events-{name}-{time.strftime('%Y%m%d-%H%M')}.{ext}"

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


def events_to_csv(entries: list[dict[str, Any]]) -> str:
    """The event log as CSV: time (UTC, ISO 8601), kind, then one column per field."""
    fields = sorted({k for e in entries for k in e} - {"at", "kind"})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["time", "kind", *fields])
    for entry in entries:
        at = dt.datetime.fromtimestamp(int(entry.get("at", 0)), dt.UTC)
        row = [at.strftime("%Y-%m-%dT%H:%M:%SZ"), entry.get("kind", "")]
        row += [_cell(entry.get(k, "")) for k in fields]
        writer.writerow(row)
    return out.getvalue()


def _cell(value: Any) -> str:
    text = str(value)
    # a spreadsheet must not read a cell as a formula
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _call(fn: Callable[[], T]) -> T:
    """Run a backend call; a refusal becomes a 409 with its (fixed, safe) message."""
    try:
        return fn()
    except InvalidStateError as exc:
        abort(make_response(jsonify({"error": str(exc)}), 409))
    except LoopBlockedError:
        abort(make_response(jsonify({"error": TEXT[language()]["busy"]}), 503))


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        return has_request_context() and request.is_secure


def configure(app: Flask, secure_cookies: bool = True) -> None:
    """Session settings for the pairing page on ``app``: a signing key made now (random per
    boot, in memory only), a cookie that is HttpOnly, SameSite=Strict, scoped to /pairing and
    Secure. ``secure_cookies=False`` is only for plain HTTP on loopback (the demo without
    ``--lan``, tests): the cookie is then still Secure on any HTTPS request."""
    app.secret_key = secrets.token_bytes(32)
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="pairing",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_PATH="/pairing",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=IDLE_MINUTES),
        SESSION_REFRESH_EACH_REQUEST=True,
    )
