"""The pairing page's logins: the failed-login limiter, the logins in progress, CSRF, and the
signed session cookie's settings. Nothing here logs a password or an address."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from flask import Flask, abort, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface

from ...httpd.addresses import address_key
from .policy import apply_policy

#: A login ends after this long without the staff doing anything (the status poll does not count).
IDLE_MINUTES = 30
#: ... and after this long in all.
LOGIN_HOURS = 12
#: Failed logins: at most this many per client address and overall, per window (seconds).
FAILS_PER_ADDRESS, FAILS_OVERALL, FAIL_WINDOW = 5, 20, 300.0
#: Password checks (scrypt, 16 MiB and tens of milliseconds each) running at once, and how long a
#: login waits for its turn before it is told to try again.
CHECKS_AT_ONCE, CHECK_QUEUE_SECONDS = 2, 10.0
#: Addresses the limiter remembers at most (an IPv6 client counts by its /64); past it the one
#: whose last failure is oldest is forgotten, so a full table never refuses a new address.
MAX_ADDRESSES = 4096
#: A browser that logged in here before carries this signed cookie (a random token, nothing
#: about anyone): it keeps a budget of failures of its own, outside the address and overall
#: limits, so an attack from many addresses never locks the staff's tablets out and one typo
#: during an attack costs nothing. The signing key is made at each start, like the login's, so
#: a cookie counts until the box restarts (at most DEVICE_DAYS); after a restart the tablet is
#: an address like any other until it logs in again.
DEVICE_COOKIE, DEVICE_DAYS = "pairing_device", 30


def _now() -> float:
    return time.monotonic()


class LoginLimiter:
    """Failed logins: at most ``per_address`` per client address per ``window`` seconds. Past
    ``overall`` failures in all (many addresses guessing), an address that has already failed
    waits for the window, while one that has not may still try: the staff's own tablet logs in
    during an attack. Each attempt is counted before its password is checked (:meth:`attempt`),
    so concurrent guesses cannot all slip through; :attr:`checks` limits how many passwords are
    checked at once. Addresses are held in memory only, for the window, and never logged."""

    def __init__(
        self,
        per_address: int = FAILS_PER_ADDRESS,
        overall: int = FAILS_OVERALL,
        window: float = FAIL_WINDOW,
        clock: Callable[[], float] | None = None,
        checks_at_once: int = CHECKS_AT_ONCE,
    ) -> None:
        self._per_address, self._overall, self._window = per_address, overall, window
        self._clock = clock or (lambda: _now())
        self._lock = threading.Lock()
        # failures by key, the key failed least recently first
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque(maxlen=overall)  # the latest failures, all addresses
        self.checks = threading.BoundedSemaphore(checks_at_once)

    @staticmethod
    def _key(address: str, device: str | None) -> str:
        return f"device {device}" if device else address_key(address)

    def _count(self, key: str, now: float) -> None:
        fails = self._fails.pop(key, None) or deque(maxlen=self._per_address)
        fails.append(now)
        self._fails[key] = fails
        while len(self._fails) > MAX_ADDRESSES:
            self._fails.popitem(last=False)
        if not key.startswith("device "):
            self._all.append(now)

    def _prune(self, now: float) -> None:
        """Forget failures older than the window: the keys whose last failure is (they come
        first), at once; a kept key's older ones when it is next looked at."""
        while self._all and now - self._all[0] >= self._window:
            self._all.popleft()
        while self._fails:
            key, fails = next(iter(self._fails.items()))
            if now - fails[-1] < self._window:
                break
            del self._fails[key]

    def _wait(self, key: str, now: float) -> float:
        mine = self._fails.get(key)
        while mine and now - mine[0] >= self._window:
            mine.popleft()
        if not mine:
            return 0.0  # a new address may try even under an attack from many
        if len(mine) >= self._per_address:
            return mine[-self._per_address] + self._window - now
        if len(self._all) >= self._overall and not key.startswith("device "):
            return mine[-1] + self._window - now  # under attack: one guess per window
        return 0.0

    def retry_after(self, address: str, device: str | None = None) -> int:
        """Seconds until ``address`` (or the browser with ``device``'s cookie) may try again;
        0: now."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            return math.ceil(max(0.0, self._wait(self._key(address, device), now)))

    def attempt(self, address: str, device: str | None = None) -> int:
        """Count an attempt from ``address`` (by ``device``, a browser that logged in here
        before, when it has one) as failed unless :meth:`succeeded` follows: 0 if it may check
        its password now, else the seconds to wait (nothing counted)."""
        key = self._key(address, device)
        with self._lock:
            now = self._clock()
            self._prune(now)
            wait = self._wait(key, now)
            if wait > 0:
                return math.ceil(wait)
            self._count(key, now)
            return 0

    def failed(self, address: str, device: str | None = None) -> None:
        """A failure from ``address`` not counted by :meth:`attempt`."""
        with self._lock:
            self._count(self._key(address, device), self._clock())

    def succeeded(self, address: str, device: str | None = None) -> None:
        """The right password from ``address``: its own failures are forgotten."""
        key = self._key(address, device)
        with self._lock:
            fails = self._fails.pop(key, None)
            if fails and not key.startswith("device "):
                try:
                    self._all.remove(fails[-1])  # its last attempt was this success
                except ValueError:
                    pass


class DeviceCookies:
    """The signed cookie of a browser that logged in here before: ``<token>.<HMAC>`` with a key
    made at each start. It identifies a browser to the limiter, nothing more (it logs nobody
    in)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _sign(self, token: str) -> str:
        return hmac.new(self._key, token.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> str:
        token = secrets.token_urlsafe(12)
        return f"{token}.{self._sign(token)}"

    def read(self, value: str | None) -> str | None:
        """The token of a cookie this box signed; None for anything else."""
        text = value or ""
        token, _, signature = text.partition(".")
        if not token or len(text) > 80 or not text.isascii():
            return None
        return token if hmac.compare_digest(signature, self._sign(token)) else None


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
        self._idle, self._lifetime = idle, lifetime
        self._clock = clock or (lambda: _now())
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


def csrf_token() -> str:
    """The login's CSRF token (made on first use), kept in the signed session cookie."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
        session.permanent = True
    return token


def check_csrf() -> None:
    """403 unless the request carries the session's token and, when the browser says where it
    comes from, comes from this page's own origin."""
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
    ``--lan``, tests): the cookie is then still Secure on any HTTPS request. Every response of
    ``app`` gets the page's security headers (:mod:`.policy`), once."""
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
    apply_policy(app)
