"""The staff's sound switches on the pairing page: ``api/sound`` reaches the box through the same
backend as every staff command, needs the login's CSRF token, refuses a bad body, shows the box's
refusal, and the page carries the switches' words in both languages."""

from __future__ import annotations

from typing import Any

from tests.unit.test_pairing_page import Backend, backend, logged_in  # noqa: F401 - a fixture


def test_a_sound_switch_reaches_the_box(backend: Backend) -> None:  # noqa: F811
    client, headers = logged_in(backend)
    body = {"switch": "microphone", "on": True}
    assert client.post("/pairing/api/sound", json=body).status_code == 403, "CSRF"
    response = client.post("/pairing/api/sound", json=body, headers=headers)
    assert response.status_code == 409 and response.json["error"] == "no session is open"
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    for switch, on in (("microphone", True), ("scanner", False), ("talkback", True)):
        response = client.post(
            "/pairing/api/sound", json={"switch": switch, "on": on}, headers=headers
        )
        assert response.json == {"ok": True}
    assert backend.calls[1:] == [
        "sound:microphone:True",
        "sound:scanner:False",
        "sound:talkback:True",
    ]


def test_a_bad_sound_body_is_refused(backend: Backend) -> None:  # noqa: F811
    client, headers = logged_in(backend)
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    bad: tuple[dict[str, Any], ...] = (
        {"switch": "camera", "on": True},
        {"switch": "microphone", "on": 1},
        {"switch": []},
    )
    for body in bad:
        response = client.post("/pairing/api/sound", json=body, headers=headers)
        assert response.status_code == 400
        assert response.json["error"] == "Choose a sound switch, on or off."
    assert len(backend.calls) == 1, "nothing reached the box"


def test_the_page_has_the_switches_in_both_languages(backend: Backend) -> None:  # noqa: F811
    client, _ = logged_in(backend)
    page = client.get("/pairing/").get_data(as_text=True)
    assert 'id="switch-microphone"' in page and "Who hears what" in page
    client.set_cookie("pairing_lang", "fr", path="/pairing")
    page = client.get("/pairing/").get_data(as_text=True)
    assert "Qui entend quoi" in page
