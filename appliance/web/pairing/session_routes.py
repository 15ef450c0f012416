"""The session on the pairing page: its status, opening it, the staff's commands, the QR card."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import asdict

import segno
from flask import Blueprint, Response, abort, jsonify, redirect, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...hearing import SoundSwitch
from ...limits import MAX_MINUTES, MIN_MINUTES
from .auth import check_csrf
from .page import Page, call, error, json_object, whole_number
from .strings import TEXT


class SessionRoutes:
    """One exam's session, seen and steered by the staff (the core decides; see PairingBackend)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        backend = page.backend
        self.commands: dict[str, Callable[[], None]] = {
            "admit": backend.admit,
            "refuse": backend.refuse,
            "pause": backend.pause,
            "resume": backend.resume,
            "end": backend.end,
            "release": backend.release,
        }

    def register(self, bp: Blueprint) -> None:
        bp.get("/api/status")(self.status)
        bp.post("/api/open")(self.open_session)
        bp.post("/api/extend")(self.extend)
        bp.post("/api/sound")(self.sound)
        bp.post("/api/<command>")(self.act)
        bp.get("/qr.svg")(self.qr)
        bp.get("/card")(self.card)

    def status(self) -> Response:
        current = call(self.page.backend.status)
        if current.session is not None:
            # While a session is open the page is in use even when nobody touches it (the staff
            # are scanning): its polls keep the login alive, up to the login's lifetime.
            self.page.logged_in(used=True)
        return jsonify(current.to_json())

    def open_session(self) -> Response:
        check_csrf()
        data = json_object()
        if data is None or data.get("consent") is not True:
            return error("need_consent")
        minutes = whole_number(data.get("valid_minutes", self.page.default_minutes))
        if minutes is None or not MIN_MINUTES <= minutes <= MAX_MINUTES:
            return error("bad_minutes")
        backend = self.page.backend
        view = call(lambda: backend.open_session(consent=True, valid_minutes=minutes))
        return jsonify(asdict(view) if view is not None else None)

    def extend(self) -> Response:
        """Extend the session by the minutes the staff chose (the core caps it)."""
        check_csrf()
        data = json_object()
        minutes = whole_number(data.get("minutes")) if data is not None else None
        if minutes is None or not 1 <= minutes <= MAX_MINUTES:
            return error("bad_extend")
        backend = self.page.backend
        call(lambda: backend.extend(minutes))
        return jsonify({"ok": True})

    def sound(self) -> Response:
        """Turn one of the staff's sound switches: ``{"switch": "microphone", "on": true}``."""
        check_csrf()
        data = json_object() or {}
        on, name = data.get("on"), data.get("switch")
        if not isinstance(on, bool) or not isinstance(name, str) or name not in set(SoundSwitch):
            return error("bad_sound")
        switch = SoundSwitch(name)
        backend = self.page.backend
        call(lambda: backend.set_sound(switch, on))
        return jsonify({"ok": True})

    def act(self, command: str) -> Response:
        check_csrf()
        if command not in self.commands:
            abort(404)
        call(self.commands[command])
        return jsonify({"ok": True})

    def qr(self) -> Response:
        info = call(self.page.backend.status).session
        if info is None:
            abort(404)
        out = io.BytesIO()
        segno.make(info.url, error="m", micro=False).save(
            out, kind="svg", scale=10, border=4, xmldecl=False
        )
        return Response(out.getvalue(), mimetype="image/svg+xml")

    def card(self) -> BaseResponse:
        info = call(self.page.backend.status).session
        if info is None:
            return redirect(url_for("pairing.index"))
        expires = int(info.expires)
        until = dt.datetime.fromtimestamp(expires).strftime("%H:%M")  # the page shows local
        steps = {lang: TEXT[lang]["card_step_end"].split("{time}", 1) for lang in ("fr", "en")}
        return self.page.render(
            "card.html",
            until=until,
            expires=expires,
            expires_iso=dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
            steps=steps,
            texts=TEXT,
            card_room=info.room_name or self.page.room_name,
        )
