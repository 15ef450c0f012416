"""A box with a faulty appliance.toml says what is wrong on the pairing page's login too (issue 9
item 2): the staff and the technician see it wherever they open the page, before logging in."""

from __future__ import annotations

from typing import Any

from flask import Flask

from appliance.core.views import Status
from appliance.web.app import create_app

FAULT = (
    "2 problems:\n- line 3: unknown config key 'box.nmae'; did you mean 'box.name'?\n"
    "- line 8: config key 'web.port' has invalid value 99999: expected a value from 0 to 65535"
)


class FaultyBox:
    def __init__(self, error: str | None) -> None:
        self.error = error

    def status(self) -> Status:
        return Status("error" if self.error else "idle", "ok", 0, True, self.error)

    def __getattr__(self, name: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"the login page called {name}")

        return called


def app(error: str | None) -> Flask:
    return create_app(FaultyBox(error), password_hash="scrypt$x", secure_cookies=False)


def test_the_fault_is_on_the_login_page_line_by_line() -> None:
    page = app(FAULT).test_client().get("/pairing/").get_data(as_text=True)
    assert 'id="fault"' in page
    assert "line 3: unknown config key &#39;box.nmae&#39;" in page
    assert "line 8: config key &#39;web.port&#39;" in page
    french = app(FAULT).test_client().get("/pairing/", headers={"Accept-Language": "fr"})
    assert "Un défaut" in french.get_data(as_text=True)


def test_no_fault_no_banner() -> None:
    assert 'id="fault"' not in app(None).test_client().get("/pairing/").get_data(as_text=True)
