"""The pairing page's door: the login guard, the index, login, logout and the language choice."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...passwords import verify_password
from .auth import CHECK_QUEUE_SECONDS, DEVICE_COOKIE, DEVICE_DAYS, check_csrf
from .page import Page
from .strings import LANG_COOKIE, TEXT

logger = logging.getLogger(__name__)

PASSWORD_MAX = 1024

#: Endpoints open without a login (CSRF still applies to the POSTs).
PUBLIC = frozenset(
    {"pairing.index", "pairing.login", "pairing.logout", "pairing.static", "pairing.choose_lang"}
)
#: Requests the page makes by itself (polls): they do not keep an idle login alive, except the
#: status poll while a session is open (see ``SessionRoutes.status``).
PASSIVE = frozenset({"pairing.status", "pairing.preview", "pairing.events_api", "pairing.mask_get"})


class LoginRoutes:
    """Who may use the page: every other route is behind :meth:`guard`."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def register(self, bp: Blueprint) -> None:
        bp.before_request(self.guard)
        bp.get("/")(self.index)
        bp.post("/login")(self.login)
        bp.post("/lang")(self.choose_lang)
        bp.post("/logout")(self.logout)

    def guard(self) -> Any:
        if request.endpoint in PUBLIC:
            return None
        if self.page.logged_in(used=request.endpoint not in PASSIVE):
            return None
        if request.method != "GET" or "/api/" in request.path:
            return jsonify({"error": "login"}), 401
        return redirect(url_for("pairing.index"))

    def index(self) -> Response:
        page = self.page
        if not page.logged_in(used=True):
            return page.login_page("logged_out" if session.get("staff") else "")
        return page.render(
            "main.html",
            default_minutes=page.default_minutes,
            config_warnings=page.config_warnings,
        )

    def login(self) -> BaseResponse:
        check_csrf()
        page, limiter = self.page, self.page.limiter
        address = request.remote_addr or "?"
        device = page.devices.read(request.cookies.get(DEVICE_COOKIE))  # logged in here before
        # counted before the password is checked: concurrent guesses cannot all get through
        wait = limiter.attempt(address, device)
        if wait:
            return page.too_many(wait)
        if not limiter.checks.acquire(timeout=CHECK_QUEUE_SECONDS):
            return page.too_many(1)  # counted as failed: a flood of logins is not a way in
        try:
            right = self._right(request.form.get("password", ""))
        finally:
            limiter.checks.release()
        if not right:
            logger.warning("pairing page: a failed login")
            page.note("login-failed")
            return page.login_page("bad_password", 403)
        limiter.succeeded(address, device)
        return self._start()

    def _right(self, password: str) -> bool:
        return (
            self.page.configured
            and len(password) <= PASSWORD_MAX
            and verify_password(password, self.page.password_hash)
        )

    def _start(self) -> BaseResponse:
        """A new login for this browser, and the cookie that says it logged in here before."""
        page = self.page
        page.logins.end(session.get("staff"))
        session.clear()
        session["staff"] = page.logins.start()
        session["csrf"] = secrets.token_urlsafe(32)  # a new token for the new login
        session.permanent = True
        logger.info("pairing page: staff logged in")
        page.note("login")
        response = redirect(url_for("pairing.index"), 303)
        response.set_cookie(
            DEVICE_COOKIE,
            page.devices.issue(),
            max_age=DEVICE_DAYS * 86400,
            path="/pairing",
            secure=current_app.session_interface.get_cookie_secure(current_app),
            httponly=True,
            samesite="Strict",
        )
        return response

    def choose_lang(self) -> BaseResponse:
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

    def logout(self) -> BaseResponse:
        check_csrf()
        if self.page.logged_in():
            self.page.note("logout")
        self.page.logins.end(session.get("staff"))
        session.clear()
        return redirect(url_for("pairing.index"), 303)
