"""The staff's pairing page on the box: log in, open a session, show and print its QR card, admit
or refuse the viewer, pause, resume, end; the privacy mask editor; the event log. In every
language of strings/ (French and English), by the staff's choice or the browser's language.

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

from .auth import LoginLimiter, Logins, configure
from .backend import PairingBackend
from .export import events_to_csv
from .policy import PAIRING_CSP
from .routes import STATIC_DIR, create_pairing_blueprint
from .strings import LANGUAGES, TEXT, language

__all__ = [
    "LANGUAGES",
    "PAIRING_CSP",
    "STATIC_DIR",
    "TEXT",
    "LoginLimiter",
    "Logins",
    "PairingBackend",
    "configure",
    "create_pairing_blueprint",
    "events_to_csv",
    "language",
]
