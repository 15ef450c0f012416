"""A box with a faulty appliance.toml says so on the pairing page, but the details only after the
login (issue 14 item 12): before it, anyone on the LAN reads only that the box needs its
technician; the staff logged in read what is wrong (the page's status), and how many warnings the
settings have."""

from __future__ import annotations

from typing import Any

from flask import Flask

from appliance.core.views import Status
from appliance.passwords import hash_password
from appliance.web.app import create_app

from .test_pairing_page import csrf

FAULT = (
    "2 problems:\n- line 3: config key 'box.name' has invalid value 'Salle 2': expected a host "
    "name label\n"
    "- line 8: config key 'web.port' has invalid value 99999: expected a value from 0 to 65535"
)
PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD)


class FaultyBox:
    def __init__(self, error: str | None) -> None:
        self.error = error

    def status(self) -> Status:
        return Status("error" if self.error else "idle", "ok", 0, True, self.error)

    def __getattr__(self, name: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"the login page called {name}")

        return called


def app(error: str | None, warnings: int = 0) -> Flask:
    return create_app(
        FaultyBox(error), password_hash=HASH, secure_cookies=False, config_warnings=warnings
    )


def logged_in(flask_app: Flask) -> Any:
    client = flask_app.test_client()
    client.post("/pairing/login", data={"password": PASSWORD, "csrf": csrf(client)})
    return client


def test_before_the_login_the_page_says_only_that_the_box_needs_its_technician() -> None:
    page = app(FAULT).test_client().get("/pairing/").get_data(as_text=True)
    assert 'id="fault"' in page and "This box needs its technician" in page
    for detail in ("box.name", "Salle 2", "web.port", "99999", "line 3"):
        assert detail not in page, f"{detail!r} shown to anyone on the LAN"
    french = app(FAULT).test_client().get("/pairing/", headers={"Accept-Language": "fr"})
    assert "besoin de son technicien" in french.get_data(as_text=True)


def test_no_fault_no_banner() -> None:
    assert 'id="fault"' not in app(None).test_client().get("/pairing/").get_data(as_text=True)


def test_after_the_login_the_staff_see_how_many_warnings_the_settings_have() -> None:
    before = app(None, warnings=2).test_client().get("/pairing/").get_data(as_text=True)
    assert "warning" not in before
    page = logged_in(app(None, warnings=2)).get("/pairing/").get_data(as_text=True)
    assert "The box&#39;s settings have 2 warning(s): ask the technician" in page
    quiet = logged_in(app(None)).get("/pairing/").get_data(as_text=True)
    assert 'id="config-warnings"' not in quiet


def test_after_the_login_the_fault_is_in_the_status() -> None:
    client = logged_in(app(FAULT))
    assert client.get("/pairing/api/status").get_json()["error"] == FAULT
