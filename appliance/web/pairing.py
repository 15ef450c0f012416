"""The staff's pairing page on the box: log in, open a session, print its QR card, admit or
refuse the viewer, pause, end; the privacy mask editor; the event log. French and English.

Security: no default password (without one configured, nobody can log in and the page says how
to set one); the password is checked against its scrypt hash; a CSRF token on every POST; failed
logins limited per address and overall; the session cookie is HttpOnly, SameSite=Strict and
Secure over HTTPS, and expires when idle; a strict CSP (no inline script or style). Nothing here
logs a password, an address or a name.
"""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..errors import InvalidStateError
from ..passwords import verify_password
from .facade import LoopBlockedError

logger = logging.getLogger(__name__)

PAIRING_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
IDLE_MINUTES = 30
FAILS_PER_ADDRESS, FAILS_OVERALL, FAIL_WINDOW = 5, 20, 300.0

Rect = tuple[float, float, float, float]


class PairingBackend(Protocol):
    """What the page needs from the box (appliance.web.backend.CoreBackend implements it)."""

    def status(self) -> dict[str, Any]: ...
    def open_session(self, *, consent: bool, valid_minutes: int) -> dict[str, Any]: ...
    def admit(self) -> None: ...
    def refuse(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def end(self) -> None: ...
    def preview_jpeg(self) -> bytes | None: ...
    def mask(self) -> list[Rect]: ...
    def set_mask(self, rects: list[Rect]) -> None: ...
    def events(self) -> list[dict[str, Any]]: ...


TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Live scan sharing",
        "login": "Log in",
        "password": "Pairing password",
        "no_password": "No pairing password is set, so nobody can log in. The technician sets "
        "one as pairing.password in appliance.toml on the box's boot partition.",
        "bad_password": "Wrong password.",
        "too_many": "Too many attempts. Wait a few minutes.",
        "logout": "Log out",
        "new_session": "New session",
        "consent": "The patient agreed to share the live picture with one person.",
        "valid": "Link valid for (minutes)",
        "open": "Open the session",
        "print": "Print the card",
        "admit": "Admit",
        "refuse": "Refuse",
        "pause": "Pause (privacy)",
        "resume": "Resume",
        "end": "End the session",
        "confirm_end": "End the session? The link stops working for good.",
        "state_idle": "No session open.",
        "state_ready": "Session open: nobody has connected yet.",
        "state_waiting": "Someone is connecting: check the code, then admit or refuse.",
        "state_live": "Live: the viewer sees the scan.",
        "state_paused": "Paused: the viewer sees a 'paused' screen.",
        "state_ended": "The session has ended.",
        "state_error": "A fault: run `appliance doctor` or see the technician.",
        "signal_lost": "No picture from the scanner (HDMI signal lost).",
        "clock": "The box's clock is not set yet (no network time): sessions cannot open.",
        "code": "Verification code",
        "name": "Name given",
        "expires": "Link expires at",
        "mask": "Privacy mask",
        "mask_help": "Draw rectangles over the patient's name, id and birth date on the "
        "preview. These areas are blanked in every frame before it is encoded: they never "
        "leave the box.",
        "mask_save": "Save the mask",
        "mask_clear": "Remove all",
        "mask_saved": "Mask saved.",
        "no_preview": "No picture from the scanner.",
        "events": "Event log",
        "export": "Export",
        "card_title": "Watch the scan live",
        "card_room": "Room",
        "card_steps": "Scan this code with your phone's camera, or pass the photo of this card "
        "on to the one person who will watch, through your own messenger. Only one phone can "
        "watch. When asked, read the code shown on the screen to the staff. The link stops "
        "working at {time} or when the exam ends. Nothing is recorded.",
    },
    "fr": {
        "title": "Partage de l'échographie en direct",
        "login": "Connexion",
        "password": "Mot de passe d'appairage",
        "no_password": "Aucun mot de passe n'est défini : personne ne peut se connecter. Le "
        "technicien le définit (pairing.password) dans appliance.toml sur la partition de "
        "démarrage du boîtier.",
        "bad_password": "Mot de passe incorrect.",
        "too_many": "Trop de tentatives. Patientez quelques minutes.",
        "logout": "Déconnexion",
        "new_session": "Nouvelle séance",
        "consent": "La patiente accepte de partager l'image en direct avec une personne.",
        "valid": "Lien valable (minutes)",
        "open": "Ouvrir la séance",
        "print": "Imprimer la carte",
        "admit": "Admettre",
        "refuse": "Refuser",
        "pause": "Pause (confidentialité)",
        "resume": "Reprendre",
        "end": "Terminer la séance",
        "confirm_end": "Terminer la séance ? Le lien ne fonctionnera plus.",
        "state_idle": "Aucune séance ouverte.",
        "state_ready": "Séance ouverte : personne n'est encore connecté.",
        "state_waiting": "Quelqu'un se connecte : vérifiez le code, puis admettez ou refusez.",
        "state_live": "En direct : la personne voit l'examen.",
        "state_paused": "En pause : la personne voit un écran « en pause ».",
        "state_ended": "La séance est terminée.",
        "state_error": "Un défaut : lancez `appliance doctor` ou appelez le technicien.",
        "signal_lost": "Pas d'image de l'échographe (signal HDMI perdu).",
        "clock": "L'horloge du boîtier n'est pas encore à l'heure : pas de séance possible.",
        "code": "Code de vérification",
        "name": "Nom indiqué",
        "expires": "Le lien expire à",
        "mask": "Masque de confidentialité",
        "mask_help": "Tracez des rectangles sur le nom, l'identifiant et la date de naissance "
        "de la patiente. Ces zones sont effacées de chaque image avant l'encodage : elles ne "
        "quittent jamais le boîtier.",
        "mask_save": "Enregistrer le masque",
        "mask_clear": "Tout effacer",
        "mask_saved": "Masque enregistré.",
        "no_preview": "Pas d'image de l'échographe.",
        "events": "Journal des événements",
        "export": "Exporter",
        "card_title": "Suivez l'échographie en direct",
        "card_room": "Salle",
        "card_steps": "Scannez ce code avec l'appareil photo du téléphone, ou transmettez la "
        "photo de cette carte à la seule personne qui regardera, par votre propre messagerie. "
        "Un seul téléphone peut regarder. Sur demande, lisez au personnel le code affiché à "
        "l'écran. Le lien cesse de fonctionner à {time} ou à la fin de l'examen. Rien n'est "
        "enregistré.",
    },
}


def language() -> str:
    best = request.accept_languages.best_match(["en", "fr"], default="en")
    return best or "en"


class LoginLimiter:
    """Failed logins: at most FAILS_PER_ADDRESS per address and FAILS_OVERALL in all, per
    FAIL_WINDOW seconds. Addresses are held in memory only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._all and now - self._all[0] > FAIL_WINDOW:
            self._all.popleft()
        for key, fails in list(self._fails.items()):
            while fails and now - fails[0] > FAIL_WINDOW:
                fails.popleft()
            if not fails:
                del self._fails[key]

    def blocked(self, address: str) -> bool:
        with self._lock:
            self._prune(time.monotonic())
            mine = self._fails.get(address, ())
            return len(mine) >= FAILS_PER_ADDRESS or len(self._all) >= FAILS_OVERALL

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._fails.setdefault(address, deque()).append(now)
            self._all.append(now)


def create_pairing_blueprint(
    backend: PairingBackend, password_hash: str, room_name: str
) -> Blueprint:
    bp = Blueprint("pairing", __name__, url_prefix="/pairing")
    limiter = LoginLimiter()

    def csrf_token() -> str:
        token = session.get("csrf")
        if not token:
            token = session["csrf"] = secrets.token_urlsafe(32)
        return str(token)

    def check_csrf() -> None:
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf", "")
        if not sent or not secrets.compare_digest(str(sent), str(session.get("csrf", ""))):
            abort(403)

    def logged_in() -> bool:
        return bool(session.get("staff"))

    def render(template: str, **context: Any) -> str:
        lang = language()
        return render_template(
            f"pairing/{template}",
            t=TEXT[lang],
            lang=lang,
            csrf=csrf_token(),
            room_name=room_name,
            **context,
        )

    @bp.before_request
    def guard() -> Any:
        session.permanent = True
        if request.endpoint in ("pairing.login", "pairing.index") or logged_in():
            return None
        if request.path.startswith("/pairing/api/"):
            return jsonify({"error": "login"}), 401
        return redirect(url_for("pairing.index"))

    @bp.get("/")
    def index() -> Any:
        if not logged_in():
            return render("login.html", configured=bool(password_hash), error="")
        return render("main.html")

    @bp.post("/login")
    def login() -> Any:
        check_csrf()
        address = request.remote_addr or ""
        if limiter.blocked(address):
            response = make_response(
                render("login.html", configured=bool(password_hash), error="too_many"), 429
            )
            response.headers["Retry-After"] = str(int(FAIL_WINDOW))
            return response
        if not password_hash or not verify_password(
            request.form.get("password", ""), password_hash
        ):
            limiter.failed(address)
            logger.warning("pairing page: a failed login")
            return render("login.html", configured=bool(password_hash), error="bad_password"), 403
        session.clear()
        session["staff"] = True
        session["csrf"] = secrets.token_urlsafe(32)
        logger.info("pairing page: staff logged in")
        return redirect(url_for("pairing.index"))

    @bp.post("/logout")
    def logout() -> Any:
        check_csrf()
        session.clear()
        return redirect(url_for("pairing.index"))

    @bp.get("/api/status")
    def status() -> Response:
        return jsonify(_call(backend.status))

    @bp.post("/api/<action>")
    def act(action: str) -> Any:
        check_csrf()
        if action == "open":
            data = request.get_json(silent=True) or {}
            try:
                minutes = int(data.get("valid_minutes") or 90)
            except (TypeError, ValueError):
                return jsonify({"error": "valid_minutes must be a number"}), 400
            result = _call(
                lambda: backend.open_session(
                    consent=data.get("consent") is True, valid_minutes=minutes
                )
            )
            return jsonify(result)
        actions: dict[str, Callable[[], None]] = {
            "admit": backend.admit,
            "refuse": backend.refuse,
            "pause": backend.pause,
            "resume": backend.resume,
            "end": backend.end,
        }
        if action == "mask":
            data = request.get_json(silent=True) or {}
            try:
                rects = [tuple(float(v) for v in r) for r in data.get("rects", [])]
                backend.set_mask(rects)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return jsonify({"error": "rectangles are x, y, w, h fractions"}), 400
            return jsonify({"rects": backend.mask()})
        if action not in actions:
            abort(404)
        _call(actions[action])
        return jsonify({"ok": True})

    @bp.get("/api/mask")
    def mask() -> Response:
        return jsonify({"rects": backend.mask()})

    @bp.get("/preview.jpg")
    def preview() -> Any:
        jpeg = backend.preview_jpeg()
        if jpeg is None:
            return "", 204
        return Response(jpeg, mimetype="image/jpeg")

    def current_link() -> str | None:
        snapshot = _call(backend.status)
        session_info = snapshot.get("session")
        return session_info["url"] if session_info else None

    @bp.get("/qr.svg")
    def qr() -> Any:
        link = current_link()
        if link is None:
            abort(404)
        out = io.BytesIO()
        segno.make(link, error="m").save(out, kind="svg", scale=8, border=2, xmldecl=False)
        return Response(out.getvalue(), mimetype="image/svg+xml")

    @bp.get("/card")
    def card() -> Any:
        snapshot = _call(backend.status)
        info = snapshot.get("session")
        if not info:
            return redirect(url_for("pairing.index"))
        until = datetime.fromtimestamp(info["expires"]).strftime("%H:%M")
        both = {lang: TEXT[lang]["card_steps"].format(time=until) for lang in ("fr", "en")}
        return render("card.html", until=until, steps=both, texts=TEXT)

    @bp.get("/events.json")
    def events() -> Response:
        response = jsonify(backend.events())
        response.headers["Content-Disposition"] = "attachment; filename=events.json"
        return response

    @bp.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = PAIRING_CSP
        return response

    return bp


def _call(fn: Callable[[], Any]) -> Any:
    """Run a backend call; a refusal becomes a 409 with its (fixed, safe) message."""
    try:
        return fn()
    except InvalidStateError as exc:
        abort(make_response(jsonify({"error": str(exc)}), 409))
    except LoopBlockedError:
        abort(make_response(jsonify({"error": "the box is busy: try again"}), 503))


def configure(app: Any, secure_cookies: bool) -> None:
    """Cookie settings for the pairing page; the signing key is random per boot, in memory."""
    import datetime as dt

    app.secret_key = secrets.token_bytes(32)
    app.config.update(
        SESSION_COOKIE_NAME="pairing",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_PATH="/pairing",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=IDLE_MINUTES),
        SESSION_REFRESH_EACH_REQUEST=True,
    )
