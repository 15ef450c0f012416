"""The box's relay.url must be https: the box's token travels in every request to it."""

from __future__ import annotations

import pytest

from appliance import config as config_mod
from appliance.errors import ConfigError


@pytest.mark.parametrize(
    "url",
    [
        "http://relay.clinic.example",
        "http://192.168.1.10:8443",
        "ftp://relay.clinic.example",
        "relay.clinic.example",
        "https://",
        "http://[::1",
        "http://user:hunter2@relay.clinic.example/",
    ],
)
def test_a_relay_url_that_is_not_https_is_refused_with_the_fix(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config_mod.load_dict({"relay": {"url": url, "token": "t" * 30}})
    message = str(refused.value)
    assert "relay.url" in message and "https://" in message
    assert "hunter2" not in message, "the URL's user information is never shown"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://relay.clinic.example",
        "https://relay.clinic.example:8443/base/",
        "http://127.0.0.1:8080",
        "http://localhost:9000",
    ],
)
def test_https_and_plain_http_to_this_machine_are_accepted(url: str) -> None:
    assert config_mod.load_dict({"relay": {"url": url}}).relay.url == url
