"""The pairing page's login under attack (Flask's test client, no socket): guesses from many
addresses do not lock the staff out, concurrent guesses from one address are counted before
their passwords are checked, and only a few password checks run at once."""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask

from appliance.passwords import hash_password
from appliance.web import pairing
from appliance.web.pairing import configure, create_pairing_blueprint
from tests.unit.conftest import CHEAP_SCRYPT
from tests.unit.test_pairing_page import Backend, csrf

PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD, n=CHEAP_SCRYPT)


def make_client() -> Any:
    app = Flask("login-test")
    configure(app, secure_cookies=True)
    app.register_blueprint(create_pairing_blueprint(Backend(), HASH, "salle-2"))
    return app.test_client()


def login(client: Any, password: str, address: str, token: str | None = None) -> int:
    response = client.post(
        "/pairing/login",
        data={"password": password, "csrf": token or csrf(client)},
        environ_base={"REMOTE_ADDR": address},
    )
    return int(response.status_code)


def test_guesses_from_four_addresses_do_not_lock_out_the_staff() -> None:
    client = make_client()
    for n in range(1, 5):  # 5 wrong passwords from each of 4 addresses: 20 in all
        for i in range(5):
            assert login(client, f"guess {i}", f"10.0.0.{n}") == 403
    tablet = client.application.test_client()
    assert login(tablet, PASSWORD, "10.0.0.200") == 303, "the staff's tablet still logs in"
    assert login(client, PASSWORD, "10.0.0.1") == 429, "an address that failed 5 times waits"


class CountingCheck:
    """verify_password, counted, slow enough for concurrent requests to overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = self.running = self.most = 0

    def __call__(self, password: str, stored: str) -> bool:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return False


def guess_together(monkeypatch, addresses: list[str]) -> CountingCheck:
    check = CountingCheck()
    monkeypatch.setattr(pairing.login_routes, "verify_password", check)
    app_client = make_client()
    token = csrf(app_client)
    cookie = app_client.get_cookie("pairing", path="/pairing")
    assert cookie is not None
    start = threading.Barrier(len(addresses))

    def one(address: str) -> None:
        client = app_client.application.test_client()
        client.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
        start.wait(5)
        login(client, "guess", address, token)

    threads = [threading.Thread(target=one, args=(a,)) for a in addresses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return check


def test_forty_concurrent_guesses_from_one_address_check_five_passwords(monkeypatch) -> None:
    check = guess_together(monkeypatch, ["10.0.0.7"] * 40)
    assert check.calls == pairing.auth.FAILS_PER_ADDRESS, f"{check.calls} passwords checked"


def test_only_a_few_password_checks_run_at_once(monkeypatch) -> None:
    check = guess_together(monkeypatch, [f"10.0.1.{i}" for i in range(12)])
    assert check.calls == 12
    assert check.most <= pairing.auth.CHECKS_AT_ONCE, f"{check.most} scrypt runs at once"


def test_an_ipv6_client_counts_by_its_64() -> None:
    client = make_client()
    for i in range(5):
        assert login(client, "guess", f"2001:db8:7:7::{i + 1:x}") == 403
    assert login(client, PASSWORD, "2001:db8:7:7::99") == 429, "the same /64 waits"


# -- issue 18, item 5: a full table, and the staff's own tablets during an attack ------------------


def test_a_full_table_never_refuses_a_new_address_and_stays_bounded() -> None:
    limiter = pairing.auth.LoginLimiter()
    for i in range(pairing.auth.MAX_ADDRESSES + 4):  # each sends one wrong password
        assert limiter.attempt(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") == 0
    assert len(limiter._fails) <= pairing.auth.MAX_ADDRESSES
    app = Flask("login-test")
    configure(app, secure_cookies=True)
    app.register_blueprint(create_pairing_blueprint(Backend(), HASH, "salle-2", limiter=limiter))
    client = app.test_client()
    assert login(client, PASSWORD, "192.0.2.77") == 303, "the right password from a new address"


def logout(client: Any) -> None:
    client.post("/pairing/logout", data={"csrf": csrf(client)})


def attack(client: Any, addresses: int = 25) -> None:
    for n in range(addresses):
        assert login(client, "guess", f"10.9.0.{n + 1}") == 403


def test_a_tablet_that_logged_in_before_is_not_locked_out_by_an_attack_or_a_typo() -> None:
    client = make_client()
    assert login(client, PASSWORD, "10.0.0.5") == 303
    cookie = client.get_cookie("pairing_device", path="/pairing")
    assert cookie is not None and cookie.http_only and cookie.secure
    assert cookie.same_site == "Strict"
    logout(client)
    attack(client.application.test_client())  # past the overall cap: under attack
    assert login(client, "typo", "10.0.0.5") == 403
    assert login(client, PASSWORD, "10.0.0.5") == 303, "the tablet's typo cost nothing"
    other = client.application.test_client()
    assert login(other, "typo", "10.0.0.6") == 403
    assert login(other, PASSWORD, "10.0.0.6") == 429, "without the cookie: one guess a window"


def test_a_tablet_s_own_budget_is_still_five_guesses() -> None:
    client = make_client()
    assert login(client, PASSWORD, "10.0.0.5") == 303
    logout(client)
    for _ in range(5):
        assert login(client, "guess", "10.0.0.5") == 403
    assert login(client, PASSWORD, "10.0.0.5") == 429


def test_a_forged_device_cookie_counts_for_nothing() -> None:
    client = make_client()
    attack(client)
    client.set_cookie("pairing_device", "abcdefgh." + "0" * 32, path="/pairing")
    assert login(client, "typo", "10.0.0.7") == 403
    assert login(client, PASSWORD, "10.0.0.7") == 429


def test_a_device_cookie_that_is_not_ascii_counts_for_nothing_and_breaks_nothing() -> None:
    client = make_client()
    client.set_cookie("pairing_device", "abcdé.0123", path="/pairing")
    assert login(client, PASSWORD, "10.0.0.8") == 303, "not a 500"
