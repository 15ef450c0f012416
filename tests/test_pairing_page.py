"""The pairing page's rules, through Flask's test client: no access without login, no default
password, CSRF, the login rate limit, cookie flags, consent, i18n. The backend here is a small
in-memory stand-in for the core (the whole box is driven through the page in
tests/test_user_story.py)."""

from __future__ import annotations

import re

import pytest

from appliance.errors import InvalidStateError
from appliance.passwords import hash_password, verify_password
from appliance.web.app import create_app

PASSWORD = "correct horse battery"


class Backend:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.state = "idle"
        self.rects: list = []

    def status(self) -> dict:
        return {
            "state": self.state,
            "signal": "present",
            "clock_ok": True,
            "error": None,
            "session": None
            if self.state == "idle"
            else {
                "room_name": "demo",
                "url": "https://r/v/x#k",
                "expires": 2_000_000_000,
                "viewer": None,
            },
        }

    def open_session(self, *, consent: bool, valid_minutes: int) -> dict:
        if not consent:
            raise InvalidStateError("confirm that the patient agreed first")
        self.calls.append(f"open:{valid_minutes}")
        self.state = "ready"
        return self.status()["session"]

    def admit(self) -> None:
        if self.state != "waiting":
            raise InvalidStateError("nobody is waiting to be admitted")
        self.calls.append("admit")

    def refuse(self) -> None:
        self.calls.append("refuse")

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def end(self) -> None:
        self.calls.append("end")

    def preview_jpeg(self):
        return None

    def mask(self) -> list:
        return self.rects

    def set_mask(self, rects) -> None:
        self.rects = [list(r) for r in rects]

    def events(self) -> list:
        return [{"at": 1, "kind": "opened"}]


@pytest.fixture
def backend() -> Backend:
    return Backend()


def make_client(backend, password_hash: str | None = None, secure: bool = False):
    app = create_app(
        backend,
        password_hash=hash_password(PASSWORD) if password_hash is None else password_hash,
        secure_cookies=secure,
        room_name="demo",
    )
    return app.test_client()


def csrf(client) -> str:
    page = client.get("/pairing/").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def login(client, password: str = PASSWORD):
    return client.post("/pairing/login", data={"password": password, "csrf": csrf(client)})


def test_nothing_is_reachable_without_logging_in(backend) -> None:
    client = make_client(backend)
    assert client.get("/pairing/api/status").status_code == 401
    assert (
        client.post("/pairing/api/end", headers={"X-CSRF-Token": csrf(client)}).status_code == 401
    )
    assert client.get("/pairing/qr.svg").status_code == 302
    assert client.get("/pairing/events.json").status_code == 302
    assert backend.calls == []


def test_no_default_password_means_nobody_logs_in(backend) -> None:
    client = make_client(backend, password_hash="")
    page = client.get("/pairing/").get_data(as_text=True)
    assert "pairing.password" in page and 'type="password"' not in page
    for guess in ("", "admin", "password", "appliance"):
        assert login(client, guess).status_code == 403
    assert client.get("/pairing/api/status").status_code == 401


def test_login_sets_a_strict_cookie_and_logout_ends_it(backend) -> None:
    client = make_client(backend, secure=True)
    response = login(client)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/pairing"):
        assert flag in cookie
    client = make_client(backend)
    login(client)
    assert client.get("/pairing/api/status").json["state"] == "idle"
    client.post("/pairing/logout", data={"csrf": csrf(client)})
    assert client.get("/pairing/api/status").status_code == 401


def test_every_post_needs_the_csrf_token(backend) -> None:
    client = make_client(backend)
    assert client.post("/pairing/login", data={"password": PASSWORD}).status_code == 403
    login(client)
    assert client.post("/pairing/api/open", json={"consent": True}).status_code == 403
    assert (
        client.post(
            "/pairing/api/open", json={"consent": True}, headers={"X-CSRF-Token": "forged"}
        ).status_code
        == 403
    )
    assert backend.calls == []
    assert (
        client.post(
            "/pairing/api/open",
            json={"consent": True, "valid_minutes": 30},
            headers={"X-CSRF-Token": csrf(client)},
        ).status_code
        == 200
    )
    assert backend.calls == ["open:30"]


def test_failed_logins_are_limited(backend) -> None:
    client = make_client(backend)
    statuses = [login(client, f"guess {i}").status_code for i in range(6)]
    assert statuses[:5] == [403] * 5 and statuses[5] == 429
    response = login(client)  # even the right password waits now
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0


def test_opening_needs_consent_and_refusals_are_explained(backend) -> None:
    client = make_client(backend)
    login(client)
    token = csrf(client)
    response = client.post(
        "/pairing/api/open", json={"consent": False}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 409 and "agreed" in response.json["error"]
    response = client.post("/pairing/api/admit", headers={"X-CSRF-Token": token})
    assert (
        response.status_code == 409 and response.json["error"] == "nobody is waiting to be admitted"
    )
    assert client.post("/pairing/api/launch", headers={"X-CSRF-Token": token}).status_code == 404


def test_the_mask_is_saved_as_fractions_and_bad_ones_refused(backend) -> None:
    client = make_client(backend)
    login(client)
    token = csrf(client)
    ok = client.post(
        "/pairing/api/mask", json={"rects": [[0.1, 0.2, 0.3, 0.1]]}, headers={"X-CSRF-Token": token}
    )
    assert ok.status_code == 200 and backend.rects == [[0.1, 0.2, 0.3, 0.1]]
    bad = client.post("/pairing/api/mask", json={"rects": [["x"]]}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 400


def test_french_for_a_french_browser_and_a_strict_csp(backend) -> None:
    client = make_client(backend)
    page = client.get("/pairing/", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert "Mot de passe" in page.get_data(as_text=True)
    assert "Pairing password" in client.get(
        "/pairing/", headers={"Accept-Language": "en"}
    ).get_data(as_text=True)
    csp = page.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp
        and "frame-ancestors 'none'" in csp
    )


def test_passwords_are_stored_as_salted_scrypt() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert stored != hash_password(PASSWORD), "salted"
    assert verify_password(PASSWORD, stored) and not verify_password("nope", stored)
    assert not verify_password(PASSWORD, "garbage") and not verify_password("", stored)
    with pytest.raises(ValueError):
        hash_password("")
