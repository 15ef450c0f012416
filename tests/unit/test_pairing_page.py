"""The pairing page's rules, through Flask's test client: no access without a login, no default
password, CSRF on every POST, the login rate limit, cookie flags and the login's end, consent,
the staff's commands, the QR code and the card, the mask, the event log and its exports, French
and English, the CSP. Chromium drives the page itself in tests/browser/test_pairing_browser.py, and the
whole box through it in tests/browser/test_user_story.py."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask

from appliance.core.views import EndedView, SessionView, SoundView, Status, ViewerView
from appliance.errors import InvalidStateError
from appliance.eventlog import EventLog
from appliance.hearing import SoundSwitch
from appliance.httpd.headers import security_headers
from appliance.passwords import hash_password
from appliance.web import pairing
from appliance.web.app import create_app
from appliance.web.facade import LoopBlockedError
from appliance.web.pairing import configure, create_pairing_blueprint
from tests.unit.conftest import CHEAP_SCRYPT

PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD, n=CHEAP_SCRYPT)
LINK = "https://relay.test/v/room#secret.hash"
STATIC = pairing.STATIC_DIR


class Backend:
    """An in-memory stand-in for the core's PairingBackend (appliance.web.backend.CoreBackend
    on a running box is covered end to end by tests/browser/test_user_story.py). It keeps the states
    and refusals the page must show, to the core's contract (admit needs the viewer's code,
    refuse any seat holder not admitted, release gives the seat to the next knock, extend pushes
    the expiry to ``extend_to`` once), and records every call."""

    EXPIRES = 2_000_000_000

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.state = "idle"
        self.signal = "ok"
        self.audio = "off"
        self.clock_ok = True
        self.viewer: ViewerView | None = None
        self.rects: list[tuple[float, float, float, float]] = []
        self.jpeg: bytes | None = None
        self.log = EventLog(None)
        #: Entries shown after the log's own (fixed times, for the page's formatting).
        self.extra_events: list[dict[str, Any]] = []
        self.expires = self.EXPIRES
        self.expiring = False
        self.extend_to: int | None = None
        self.ended: EndedView | None = None
        #: The core's loop does not answer (the page gets 503s), as a stuck box's would.
        self.stuck = False
        self.turned_away = 0
        #: who hears what, as the core's view says it (None: a box without sound)
        self.sound: SoundView | None = None

    def status(self) -> Status:
        if self.stuck:
            raise LoopBlockedError("the core did not answer")
        session = None
        if self.state != "idle":
            session = SessionView(
                "salle-2",
                LINK,
                self.expires,
                self.viewer,
                expiring=self.expiring,
                extend_to=self.extend_to,
                turned_away=self.turned_away,
            )
        return Status(
            self.state,
            self.signal,
            int(self.viewer is not None),
            self.clock_ok,
            None,
            session,
            self.ended,
            self.sound,
            audio=self.audio,
        )

    def open_session(self, *, consent: bool, valid_minutes: int) -> SessionView | None:
        if self.state != "idle":
            raise InvalidStateError("a session is already open: end it first")
        if not self.clock_ok:
            raise InvalidStateError("the clock is not synchronised yet (no NTP)")
        self.calls.append(f"open:{consent}:{valid_minutes}")
        self.state = "ready"
        self.log.record("opened", valid_minutes=valid_minutes)
        return self.status().session

    def _need(self, state: str, message: str) -> None:
        if self.state != state:
            raise InvalidStateError(message)

    def admit(self) -> None:
        self._need("waiting", "nobody is waiting to be admitted")
        if self.viewer is None or not self.viewer.code:
            raise InvalidStateError("the viewer's code is not there yet")
        self.calls.append("admit")
        self.state = "live"
        self.viewer = replace(self.viewer, admitted=True)

    def refuse(self) -> None:
        if self.viewer is None or self.viewer.admitted:
            raise InvalidStateError("nobody is waiting to be refused")
        self.calls.append("refuse")
        self.state, self.viewer = "ready", None

    def pause(self) -> None:
        self._need("live", "the picture is not live")
        self.calls.append("pause")
        self.state = "paused"

    def resume(self) -> None:
        self._need("paused", "the picture is not paused")
        self.calls.append("resume")
        self.state = "live"

    def release(self) -> None:
        if self.viewer is None:
            raise InvalidStateError("no phone to replace")
        self.calls.append("release")
        self.state, self.viewer = "ready", None

    def set_sound(self, switch: SoundSwitch, on: bool) -> None:
        if self.state == "idle":
            raise InvalidStateError("no session is open")
        self.calls.append(f"sound:{switch.value}:{on}")
        if self.sound is not None:  # as the core derives it, while live
            switches = {**self.sound.switches, switch.value: on}
            heard = {switch.value: on} if switch is not SoundSwitch.TALKBACK else {}
            self.sound = replace(self.sound, switches=switches, **heard)

    def extend(self, minutes: int) -> None:
        if self.state == "idle":
            raise InvalidStateError("no session is open")
        if self.extend_to is None:
            raise InvalidStateError("the session cannot be extended further")
        self.calls.append(f"extend:{minutes}")
        self.expires = min(self.expires + minutes * 60, self.extend_to)
        self.expiring = False
        if self.expires >= self.extend_to:
            self.extend_to = None

    def end(self, reason: str = "page", at: int = 1_750_000_000) -> None:
        if self.stuck:
            raise LoopBlockedError("the core did not answer")
        if self.state == "idle":
            raise InvalidStateError("no session is open")
        self.calls.append("end")
        self.state, self.viewer = "idle", None
        self.ended = EndedView(reason, at)

    def preview_jpeg(self) -> bytes | None:
        return self.jpeg

    def mask(self) -> list[tuple[float, float, float, float]]:
        return list(self.rects)

    def set_mask(self, rects: list[tuple[float, float, float, float]]) -> None:
        self.calls.append(f"mask:{len(rects)}")
        self.rects = list(rects)

    def events(self) -> list[dict[str, Any]]:
        return self.log.entries() + self.extra_events

    def knock(self, name: str | None = "Alex", code: str | None = "123456") -> None:
        self.state = "waiting"
        self.viewer = ViewerView(name, code, admitted=False, connected=True)

    def stalled(self, stalled: bool) -> None:
        """The picture stopped reaching the seat holder (or reaches them again)."""
        assert self.viewer is not None
        self.viewer = replace(self.viewer, reconnecting=stalled)

    def left(self, seconds: int) -> None:
        """The seat holder's connection dropped ``seconds`` ago."""
        assert self.viewer is not None
        self.viewer = replace(self.viewer, connected=False, left_s=seconds)


@pytest.fixture
def backend() -> Backend:
    return Backend()


def make_app(backend: Backend, password_hash: str = HASH, **kwargs: Any) -> Flask:
    """The blueprint alone on a bare app, Secure cookies on (Werkzeug's test client sends them
    over its plain HTTP)."""
    app = Flask("pairing-test")
    configure(app, secure_cookies=True)
    app.register_blueprint(create_pairing_blueprint(backend, password_hash, "salle-2", **kwargs))
    return app


def make_client(backend: Backend, password_hash: str = HASH, **kwargs: Any) -> Any:
    return make_app(backend, password_hash, **kwargs).test_client()


def csrf(client: Any) -> str:
    page = client.get("/pairing/").get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def login(client: Any, password: str = PASSWORD, address: str = "127.0.0.1") -> Any:
    return client.post(
        "/pairing/login",
        data={"password": password, "csrf": csrf(client)},
        environ_base={"REMOTE_ADDR": address},
    )


def logged_in(backend: Backend, **kwargs: Any) -> tuple[Any, dict[str, str]]:
    client = make_client(backend, **kwargs)
    assert login(client).status_code == 303
    return client, {"X-CSRF-Token": csrf(client)}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The page's monotonic clock, moved by hand (no sleeping)."""
    fake = Clock()
    monkeypatch.setattr(pairing.auth, "_now", fake)
    return fake


# -- access ----------------------------------------------------------------------------------------


def test_nothing_is_reachable_without_logging_in(backend: Backend) -> None:
    client = make_client(backend)
    token = csrf(client)
    for path in ("api/status", "api/mask", "api/events"):
        assert client.get(f"/pairing/{path}").status_code == 401, path
    for path in ("qr.svg", "card", "preview.jpg", "events.json", "events.csv"):
        response = client.get(f"/pairing/{path}")
        assert response.status_code == 302 and response.location.endswith("/pairing/"), path
    for command in ("open", "admit", "refuse", "pause", "resume", "end", "mask"):
        response = client.post(
            f"/pairing/api/{command}", json={"consent": True}, headers={"X-CSRF-Token": token}
        )
        assert response.status_code == 401, command
    assert backend.calls == []
    # the login page and its stylesheet are open
    assert client.get("/pairing/").status_code == 200
    assert client.get("/pairing/static/pairing.css").status_code == 200


def test_no_default_password_means_nobody_logs_in(backend: Backend) -> None:
    client = make_client(backend, password_hash="")
    page = client.get("/pairing/").get_data(as_text=True)
    assert "pairing.password" in page and "appliance.toml" in page
    assert 'type="password"' not in page, "no login form without a password"
    for guess in ("", "admin", "password", "appliance", "salle-2"):
        assert login(client, guess).status_code == 403
    assert client.get("/pairing/api/status").status_code == 401
    french = client.get("/pairing/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "pairing.password" in french and "Aucun mot de passe" in french


def test_login_sets_a_strict_short_cookie_and_a_new_csrf_token(backend: Backend) -> None:
    client = make_client(backend)
    before = csrf(client)
    response = login(client)
    assert response.status_code == 303 and response.location.endswith("/pairing/")
    cookie = response.headers["Set-Cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/pairing", "Expires="):
        assert flag in cookie, flag
    assert PASSWORD not in cookie
    assert csrf(client) != before, "a login gets a fresh CSRF token"
    assert client.get("/pairing/api/status").json["state"] == "idle"


def test_logout_ends_the_login_even_for_a_copy_of_the_cookie(backend: Backend) -> None:
    client, headers = logged_in(backend)
    copied = client.get_cookie("pairing", path="/pairing").value
    response = client.post("/pairing/logout", data={"csrf": headers["X-CSRF-Token"]})
    assert response.status_code == 303
    assert client.get("/pairing/api/status").status_code == 401
    thief = make_app_client_with_cookie(client, copied)
    assert thief.get("/pairing/api/status").status_code == 401, "the old cookie is dead"


def make_app_client_with_cookie(client: Any, value: str) -> Any:
    other = client.application.test_client()
    other.set_cookie("pairing", value, path="/pairing")
    return other


def test_a_login_ends_when_idle_and_polls_do_not_keep_it(backend: Backend, clock: Clock) -> None:
    client, _ = logged_in(backend, idle_minutes=30)
    clock.now += 20 * 60
    assert client.get("/pairing/api/status").status_code == 200  # a poll: not activity
    clock.now += 11 * 60
    assert client.get("/pairing/api/status").status_code == 401
    page = client.get("/pairing/").get_data(as_text=True)
    assert "logged out" in page and 'type="password"' in page

    client, _ = logged_in(backend, idle_minutes=30)
    for _ in range(3):
        clock.now += 20 * 60
        assert client.get("/pairing/").status_code == 200  # the staff use the page
    assert client.get("/pairing/api/status").status_code == 200
    clock.now += pairing.auth.LOGIN_HOURS * 3600
    assert client.get("/pairing/").get_data(as_text=True).count('type="password"') == 1


def test_every_post_needs_the_csrf_token_of_this_login(backend: Backend) -> None:
    client = make_client(backend)
    assert client.post("/pairing/login", data={"password": PASSWORD}).status_code == 403
    assert (
        client.post("/pairing/login", data={"password": PASSWORD, "csrf": "forged"}).status_code
        == 403
    )
    client, headers = logged_in(backend)
    other, other_headers = logged_in(backend)
    for bad in ({}, {"X-CSRF-Token": "forged"}, other_headers):
        for command, body in (("open", {"consent": True}), ("mask", {"rects": []})):
            response = client.post(f"/pairing/api/{command}", json=body, headers=bad)
            assert response.status_code == 403, (command, bad)
    assert client.post("/pairing/logout", data={}).status_code == 403
    cross = {**headers, "Origin": "https://evil.test"}
    assert (
        client.post("/pairing/api/open", json={"consent": True}, headers=cross).status_code == 403
    )
    site = {**headers, "Sec-Fetch-Site": "cross-site"}
    assert client.post("/pairing/api/open", json={"consent": True}, headers=site).status_code == 403
    assert backend.calls == []
    assert client.get("/pairing/api/status").status_code == 200, "still logged in"
    same = {**headers, "Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    response = client.post("/pairing/api/open", json={"consent": True}, headers=same)
    assert response.status_code == 200 and backend.calls == ["open:True:90"]


def test_failed_logins_are_limited_per_address_and_overall(backend: Backend, clock: Clock) -> None:
    client = make_client(backend)
    statuses = [login(client, f"guess {i}", "10.0.0.1").status_code for i in range(6)]
    assert statuses == [403] * 5 + [429]
    response = login(client, PASSWORD, "10.0.0.1")  # even the right password waits now
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= pairing.auth.FAIL_WINDOW
    tablet = client.application.test_client  # the staff's own browser, not the guesser's
    assert login(tablet(), PASSWORD, "10.0.0.2").status_code == 303, "others can still log in"

    for n in range(3, 6):  # 5 + 15 = 20 failures in all, from four addresses
        for i in range(5):
            assert login(client, f"guess {i}", f"10.0.0.{n}").status_code == 403
    assert login(client, "one guess", "10.0.0.8").status_code == 403
    response = login(client, PASSWORD, "10.0.0.8")
    assert response.status_code == 429, "past the overall limit: one guess per address"
    assert login(tablet(), PASSWORD, "10.0.0.9").status_code == 303, "the staff still log in"
    clock.now += pairing.auth.FAIL_WINDOW + 1
    assert login(client, PASSWORD, "10.0.0.1").status_code == 303, "the window passed"


def test_a_successful_login_forgets_that_address_s_failures(backend: Backend) -> None:
    client = make_client(backend)
    for i in range(4):
        login(client, f"typo {i}")
    assert login(client).status_code == 303
    for i in range(4):
        assert login(client, f"typo {i}").status_code == 403


def test_logins_are_logged_and_recorded_without_password_or_address(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    log = EventLog(None)
    client = make_client(backend, record=log.record)
    caplog.set_level(logging.DEBUG)
    login(client, "hunter2-but-longer", "192.0.2.77")
    login(client, PASSWORD, "192.0.2.77")
    token = csrf(client)
    client.post(
        "/pairing/api/mask", json={"rects": [[0.1, 0.1, 0.2, 0.2]]}, headers={"X-CSRF-Token": token}
    )
    client.post("/pairing/logout", data={"csrf": token})
    for secret in ("hunter2-but-longer", PASSWORD, "192.0.2.77"):
        assert secret not in caplog.text
        assert secret not in json.dumps(log.entries())
    assert [(e["kind"], {k for k in e if k not in ("at", "kind")}) for e in log.entries()] == [
        ("login-failed", set()),
        ("login", set()),
        ("mask-saved", {"count"}),
        ("logout", set()),
    ]


# -- status and commands ---------------------------------------------------------------------------


def test_the_status_is_json_and_never_cached(backend: Backend) -> None:
    client, _ = logged_in(backend)
    backend.state = "ready"
    response = client.get("/pairing/api/status")
    assert response.json == backend.status().to_json()
    assert response.headers["Cache-Control"] == "no-store"
    backend.knock("Alex", "654321")
    viewer = client.get("/pairing/api/status").json["session"]["viewer"]
    assert viewer == {
        "name": "Alex",
        "code": "654321",
        "admitted": False,
        "connected": True,
        "left_s": None,
        "reconnecting": False,
        "code_at": None,
        "code_renewed": False,
        "connecting": False,
    }


def test_opening_needs_the_patient_s_consent(backend: Backend) -> None:
    client, headers = logged_in(backend)
    for body in ({}, {"consent": False}, {"consent": "yes"}, {"consent": 1}, [True]):
        response = client.post("/pairing/api/open", json=body, headers=headers)
        assert response.status_code == 400 and "agreement" in response.json["error"]
    for minutes in (4, 1441, "90", True, 90.5, None):
        response = client.post(
            "/pairing/api/open",
            json={"consent": True, "valid_minutes": minutes},
            headers=headers,
        )
        assert response.status_code == 400 and "minutes" in response.json["error"], minutes
    assert backend.calls == [], "nothing reached the box"
    response = client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    assert response.status_code == 200 and response.json["url"] == LINK
    assert backend.calls == ["open:True:90"], "the default validity is 90 minutes"


def test_refusals_from_the_box_are_shown(backend: Backend) -> None:
    client, headers = logged_in(backend, default_minutes=45)
    backend.clock_ok = False
    response = client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    assert response.status_code == 409 and "clock" in response.json["error"]
    backend.clock_ok = True
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    response = client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    assert response.status_code == 409 and "already open" in response.json["error"]
    response = client.post("/pairing/api/admit", headers=headers)
    assert response.status_code == 409
    assert response.json["error"] == "nobody is waiting to be admitted"
    assert client.post("/pairing/api/launch", headers=headers).status_code == 404
    assert backend.calls == ["open:True:45"]


def test_the_staff_s_commands_reach_the_box(backend: Backend) -> None:
    client, headers = logged_in(backend)
    client.post("/pairing/api/open", json={"consent": True, "valid_minutes": 30}, headers=headers)
    backend.knock()
    for command in ("refuse",):
        assert client.post(f"/pairing/api/{command}", headers=headers).json == {"ok": True}
    backend.knock()
    for command in ("admit", "pause", "resume", "end"):
        assert client.post(f"/pairing/api/{command}", headers=headers).status_code == 200
    assert backend.calls == ["open:True:30", "refuse", "admit", "pause", "resume", "end"]
    assert client.get("/pairing/api/status").json["state"] == "idle"


# -- QR code and card ------------------------------------------------------------------------------


def test_the_qr_code_is_made_here_and_only_while_a_session_is_open(backend: Backend) -> None:
    client, headers = logged_in(backend)
    assert client.get("/pairing/qr.svg").status_code == 404
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    response = client.get("/pairing/qr.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-store", "it holds the session's key"
    svg = response.get_data(as_text=True)
    assert "<svg" in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_the_card_is_a6_in_both_languages_with_no_patient_data(backend: Backend) -> None:
    client, headers = logged_in(backend)
    assert client.get("/pairing/card").status_code == 302, "no card without a session"
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    backend.knock("Alex Martin", "123456")
    page = client.get("/pairing/card").get_data(as_text=True)
    assert "salle-2" in page
    assert "Suivez l'échographie en direct" in page or "Suivez l&#39;échographie" in page
    assert "Watch the scan live" in page
    assert "one person" in page and "seule personne" in page
    assert "messenger" in page and "messagerie" in page
    assert page.count('class="until"') == 3 and 'data-expires="2000000000"' in page
    assert re.search(r'class="until" datetime="[^"]+">\d\d:\d\d<', page)
    assert "Alex" not in page and "123456" not in page and LINK not in page
    assert "card.css" in page and "card.js" in page
    css = (STATIC / "card.css").read_text()
    assert re.search(r"@page\s*\{[^}]*size:\s*A6", css)


# -- the mask, the preview, the event log ----------------------------------------------------------


def test_the_mask_is_saved_as_fractions_and_bad_ones_refused(backend: Backend) -> None:
    client, headers = logged_in(backend)
    ok = client.post(
        "/pairing/api/mask",
        json={"rects": [[0.1, 0.2, 0.3, 0.1], [0.9, 0.9, 0.5, 0.5]]},
        headers=headers,
    )
    assert ok.status_code == 200
    assert backend.rects == [
        (0.1, 0.2, 0.3, 0.1),
        (0.9, 0.9, pytest.approx(0.1), pytest.approx(0.1)),
    ]
    assert client.get("/pairing/api/mask").json["rects"][0] == [0.1, 0.2, 0.3, 0.1]
    bad_bodies = [
        {"rects": [["x", 0, 0, 0]]},
        {"rects": [[0.1, 0.2, 0.3]]},
        {"rects": [[-0.1, 0.2, 0.3, 0.1]]},
        {"rects": [[0.1, 1.2, 0.3, 0.1]]},
        {"rects": [[0.1, 0.2, 0.0, 0.1]]},
        {"rects": [{"x": 0.1}]},
        {"rects": "all"},
        {"rects": [[0.1, 0.1, 0.1, 0.1]] * (pairing.mask_routes.MAX_RECTS + 1)},
        {},
    ]
    for body in bad_bodies:
        assert client.post("/pairing/api/mask", json=body, headers=headers).status_code == 400
    nan = client.post(
        "/pairing/api/mask",
        data='{"rects": [[NaN, 0, 0.1, 0.1]]}',
        content_type="application/json",
        headers=headers,
    )
    assert nan.status_code == 400
    assert backend.calls == ["mask:2"], "only the good mask reached the box"
    assert client.post("/pairing/api/mask", json={"rects": []}, headers=headers).json == {
        "rects": []
    }


def test_the_preview_is_the_backend_s_jpeg_or_nothing(backend: Backend) -> None:
    client, _ = logged_in(backend)
    assert client.get("/pairing/preview.jpg").status_code == 204
    backend.jpeg = b"\xff\xd8 a jpeg \xff\xd9"
    response = client.get("/pairing/preview.jpg")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data == backend.jpeg and response.headers["Cache-Control"] == "no-store"


def test_the_event_log_is_shown_and_exported(backend: Backend) -> None:
    client, headers = logged_in(backend)
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    backend.log.record("knock", returning=False)
    backend.log.record("ended", reason="expired", duration_s=5400)
    shown = client.get("/pairing/api/events").json
    assert [e["kind"] for e in shown] == ["opened", "knock", "ended"]

    exported = client.get("/pairing/events.json")
    assert exported.headers["Content-Disposition"].startswith("attachment; filename=events-")
    assert exported.json == shown

    as_csv = client.get("/pairing/events.csv")
    assert as_csv.mimetype == "text/csv" and "attachment" in as_csv.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert [r["kind"] for r in rows] == ["opened", "knock", "ended"]
    assert rows[2]["reason"] == "expired" and rows[2]["duration_s"] == "5400"
    assert rows[0]["valid_minutes"] == "90" and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0]["time"]
    )


def test_csv_cells_cannot_become_spreadsheet_formulas() -> None:
    text = pairing.events_to_csv([{"at": 0, "kind": "ended", "reason": "=cmd"}])
    assert "'=cmd" in text


# -- languages, CSP, mounting ----------------------------------------------------------------------


def test_french_or_english_by_the_browser_s_language(backend: Backend) -> None:
    client, headers = logged_in(backend)
    fr = client.get("/pairing/", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    page = fr.get_data(as_text=True)
    assert '<html lang="fr">' in page and "Nouvelle séance" in page
    assert "La patiente accepte de partager l" in page
    en = client.get("/pairing/", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    assert '<html lang="en">' in en and "New session" in en
    assert "The patient agreed to share the live picture with one person" in en
    de = client.get("/pairing/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="en">' in de
    refused = client.post(
        "/pairing/api/open",
        json={"consent": False},
        headers={**headers, "Accept-Language": "fr"},
    )
    assert "accord de la patiente" in refused.json["error"]
    assert set(pairing.TEXT["fr"]) == set(pairing.TEXT["en"]), "every text in both languages"


def test_a_strict_csp_and_nothing_inline_or_from_elsewhere(backend: Backend) -> None:
    client, headers = logged_in(backend)
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    for path in ("/pairing/", "/pairing/card"):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        page = response.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "no inline script"
        assert " style=" not in page and "<style" not in page, "no inline style"
        assert not re.search(r'(src|href)="(https?:)?//', page), "nothing from elsewhere"
    for name in ("pairing.js", "card.js", "pairing.css", "card.css"):
        text = (STATIC / name).read_text()
        assert "http://" not in text and "https://" not in text, name


def test_mounted_in_the_box_s_app(backend: Backend) -> None:
    app = create_app(backend, password_hash=HASH, secure_cookies=True, room_name="salle-2")
    client = app.test_client()
    page = client.get("/pairing/").get_data(as_text=True)
    for asset in re.findall(r'(?:href|src)="(/[^"]+)"', page):
        assert client.get(asset).status_code == 200, asset
    assert login(client).status_code == 303
    status = client.get("/pairing/api/status").json
    assert status is not None and status["state"] == "idle"
    assert app.secret_key and len(app.secret_key) >= 32
    other = create_app(backend, password_hash=HASH, secure_cookies=True, room_name="salle-2")
    assert other.secret_key != app.secret_key, "a key made at each start, never stored"


def test_cookies_are_secure_over_https_even_with_the_loopback_flag(backend: Backend) -> None:
    app = Flask("pairing-test")
    configure(app, secure_cookies=False)  # plain HTTP on loopback only (demo, tests)
    app.register_blueprint(create_pairing_blueprint(backend, HASH, "salle-2"))
    plain = app.test_client().get("/pairing/")
    assert "Secure" not in plain.headers["Set-Cookie"]
    over_tls = app.test_client().get("/pairing/", base_url="https://localhost")
    assert "Secure" in over_tls.headers["Set-Cookie"]


# -- issue 9: the login while a session is open, the contract's commands, the card -----------------


def test_the_login_stays_alive_while_a_session_is_open(backend: Backend, clock: Clock) -> None:
    client, headers = logged_in(backend, idle_minutes=30)
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    for _ in range(4):  # two hours of scanning with nobody touching the tablet
        clock.now += 25 * 60
        assert client.get("/pairing/api/status").status_code == 200
    backend.end()
    clock.now += 25 * 60
    assert client.get("/pairing/api/status").status_code == 200, "the last poll counted"
    clock.now += 6 * 60
    assert client.get("/pairing/api/status").status_code == 401, "no session: polls are passive"


def test_release_extend_and_the_contract_s_refusals(backend: Backend) -> None:
    client, headers = logged_in(backend)
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    backend.knock("Alex", None)
    response = client.post("/pairing/api/admit", headers=headers)
    assert response.status_code == 409, "no admission before the code is there"
    backend.knock("Alex", "123456")
    assert client.post("/pairing/api/admit", headers=headers).status_code == 200
    assert client.post("/pairing/api/refuse", headers=headers).status_code == 409
    backend.left(75)
    viewer = client.get("/pairing/api/status").json["session"]["viewer"]
    assert viewer["connected"] is False and viewer["left_s"] == 75
    assert client.post("/pairing/api/release", headers=headers).status_code == 200
    assert client.get("/pairing/api/status").json["session"]["viewer"] is None

    extend = "/pairing/api/extend"
    assert client.post(extend, json={"minutes": 15}, headers=headers).status_code == 409
    backend.expiring, backend.extend_to = True, Backend.EXPIRES + 3600
    session = client.get("/pairing/api/status").json["session"]
    assert session["expiring"] is True and session["extend_to"] == Backend.EXPIRES + 3600
    for bad in ({}, {"minutes": "15"}, {"minutes": True}, {"minutes": 0}, {"minutes": 1441}):
        assert client.post(extend, json=bad, headers=headers).status_code == 400, bad
    assert client.post(extend, json={"minutes": 15}, headers=headers).status_code == 200
    session = client.get("/pairing/api/status").json["session"]
    assert session["expires"] == Backend.EXPIRES + 900, "by the minutes chosen"
    assert client.post(extend, json={"minutes": 60}, headers=headers).status_code == 200
    session = client.get("/pairing/api/status").json["session"]
    assert session["expires"] == Backend.EXPIRES + 3600 and session["extend_to"] is None
    assert backend.calls[-4:] == ["admit", "release", "extend:15", "extend:60"]


def test_the_card_reads_at_9_to_10_points_and_asks_for_the_link_not_a_photo(
    backend: Backend,
) -> None:
    client, headers = logged_in(backend)
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    page = client.get("/pairing/card").get_data(as_text=True)
    assert "not a photo of this card" in page and "plutôt qu'une photo" in page.replace(
        "&#39;", "'"
    )
    css = (STATIC / "card.css").read_text()
    body = re.search(r"\.card \{[^}]*font-size:\s*([\d.]+)pt", css)
    assert body and 9 <= float(body.group(1)) <= 10, "the card's text is 9-10 pt"


# -- issue 14: the language switch, why the session ended ------------------------------------------


def test_the_staff_choose_the_language_and_it_is_kept(backend: Backend) -> None:
    client, headers = logged_in(backend)
    page = client.get("/pairing/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="fr">' in page
    for code, name in (("en", "English"), ("fr", "Français")):  # each by its own name
        assert f'name="lang" value="{code}" lang="{code}"' in page and f">{name}</button>" in page
    chosen = client.post("/pairing/lang", data={"lang": "en", "csrf": headers["X-CSRF-Token"]})
    assert chosen.status_code == 303
    cookie = chosen.headers["Set-Cookie"]
    assert "pairing_lang=en" in cookie and "Path=/pairing" in cookie and "SameSite=Strict" in cookie
    page = client.get("/pairing/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="en">' in page, "the choice wins over the browser's language"
    refused = client.post(
        "/pairing/api/open", json={}, headers={**headers, "Accept-Language": "fr"}
    )
    assert "patient's agreement" in refused.json["error"], "the API answers in it too"
    assert client.post("/pairing/lang", data={"lang": "fr"}).status_code == 403, "CSRF"
    client.post("/pairing/lang", data={"lang": "xx", "csrf": headers["X-CSRF-Token"]})
    page = client.get("/pairing/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="en">' in page, "an unknown language changes nothing"


def test_the_login_page_has_the_switch_too(backend: Backend) -> None:
    client = make_client(backend)
    page = client.get("/pairing/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'id="password"' in page and ">Français</button>" in page
    token = csrf(client)
    client.post("/pairing/lang", data={"lang": "fr", "csrf": token})
    assert '<html lang="fr">' in client.get("/pairing/").get_data(as_text=True)


def test_a_language_is_one_file(tmp_path: Any) -> None:
    """The languages are the files present: a third one is found, with its own name."""
    from appliance.web.pairing.strings import load_texts

    for code in pairing.LANGUAGES:
        (tmp_path / f"{code}.json").write_text(json.dumps(pairing.TEXT[code]))
    (tmp_path / "de.json").write_text(
        json.dumps({**pairing.TEXT["en"], "_name": "Deutsch", "_locale": "de-DE"})
    )
    (tmp_path / "notes.txt").write_text("not a language")
    found = load_texts(tmp_path)
    assert sorted(found) == sorted([*pairing.LANGUAGES, "de"])
    assert found["de"]["_name"] == "Deutsch"
    assert set(pairing.LANGUAGES) >= {"en", "fr"}
    for code in pairing.LANGUAGES:
        assert set(pairing.TEXT[code]) == set(pairing.TEXT["en"]), f"{code}: the same keys"
        assert pairing.TEXT[code]["_name"] and pairing.TEXT[code]["_locale"]


def test_the_status_says_how_and_when_the_last_session_ended(backend: Backend) -> None:
    client, headers = logged_in(backend)
    assert client.get("/pairing/api/status").json["ended"] is None
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    client.post("/pairing/api/end", headers=headers)
    assert client.get("/pairing/api/status").json["ended"] == {
        "reason": "page",
        "at": 1_750_000_000,
    }


# -- issue 15: one checked JSON reader, one header policy ------------------------------------------


def test_a_body_the_checked_reader_refuses_is_a_400_on_every_route(backend: Backend) -> None:
    """The page's JSON bodies go through httpd.jsonbody, as the relay's do: a 400-digit integer,
    1e400, NaN or a body nested past its depth is a 400 with the route's own message, never a
    500, and never reaches the box."""
    client, headers = logged_in(backend)
    huge = "1" + "0" * 400
    nested = "[" * 5000 + "]" * 5000
    bodies = {
        "mask": [
            f'{{"rects": [[{huge}, 0, 0.1, 0.1]]}}',
            '{"rects": [[1e400, 0, 0.1, 0.1]]}',
            '{"rects": [[0.1, 0.1, 0.1, 0.1]], "x": ' + nested + "}",
            '{"rects": ' + "[" * 20 + "]" * 20 + "}",
        ],
        "open": [
            f'{{"consent": true, "valid_minutes": {huge}}}',
            '{"consent": true, "valid_minutes": NaN}',
            '{"consent": true, "x": ' + nested + "}",
        ],
        "extend": [f'{{"minutes": {huge}}}', '{"minutes": 1e400}', nested],
    }
    expected = {"mask": "mask_bad", "open": "need_consent", "extend": "bad_extend"}
    for route, raw in bodies.items():
        for body in raw:
            response = client.post(
                f"/pairing/api/{route}", data=body, content_type="application/json", headers=headers
            )
            assert response.status_code == 400, (route, body[:40])
            assert response.json["error"] == pairing.TEXT["en"][expected[route]], route
    assert backend.calls == [], "nothing reached the box"


#: What a response may carry besides the security policy: its content and the login's cookies.
CONTENT_HEADERS = {
    "Content-Type",
    "Content-Length",
    "Content-Disposition",
    "Set-Cookie",
    "Vary",
    "Location",
    "Retry-After",
    "ETag",
    "Last-Modified",
    "Date",
    "Accept-Ranges",
}


def _policy(app: Flask, secure: bool) -> dict[str, str]:
    base = "https://localhost" if secure else "http://localhost"
    with app.test_request_context(base_url=base):
        headers = security_headers(Flask.response_class(), pairing.PAIRING_CSP).headers
        return {name: value for name, value in headers if name not in CONTENT_HEADERS}


@pytest.mark.parametrize("secure", [False, True])
def test_every_response_carries_exactly_the_one_policy_s_headers_once(
    backend: Backend, secure: bool
) -> None:
    """One policy (httpd.headers with the page's CSP), applied once: the box's app and the
    blueprint on an app set up by ``configure`` send exactly its headers, each once, on pages,
    the API, static files, redirects, refusals and 404s; nothing re-sets them over it."""
    base = "https://localhost" if secure else "http://localhost"
    for app in (create_app(backend, password_hash=HASH, room_name="salle-2"), make_app(backend)):
        policy = _policy(app, secure)
        assert policy["Content-Security-Policy"] == pairing.PAIRING_CSP
        assert ("Strict-Transport-Security" in policy) is secure
        client = app.test_client()
        paths = ["/pairing/", "/pairing/static/pairing.js", "/pairing/api/status", "/nowhere"]
        if app.name != "pairing-test":
            paths += ["/", "/api/status"]
        responses = [client.get(path, base_url=base) for path in paths]
        responses.append(client.post("/pairing/api/admit", base_url=base))  # 401
        responses.append(client.post("/pairing/login", data={"password": "x"}, base_url=base))
        for response in responses:
            names = {name for name, _ in response.headers}
            security = {name: response.headers.getlist(name) for name in names - CONTENT_HEADERS}
            assert security == {name: [value] for name, value in policy.items()}, (
                response.request.path
            )
