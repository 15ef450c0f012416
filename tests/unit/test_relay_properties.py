"""Property-based tests of the relay's handlers (hypothesis, Flask's test client): arbitrary
paths, methods, query values, JSON bodies and headers, with and without the box's token and a
viewer's, against a relay holding an open room. Every answer is a success or a clean refusal
(below 500, a JSON error), never a traceback, and no log line holds a token, a room id, a blob
or an address."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.relay import paths
from appliance.relay.app import create_relay_app
from appliance.relay.config import RelayConfig, hash_token
from appliance.relay.rooms import Rooms

TOKEN = "box-token-" + "p" * 30
ROOM = "Abcdefghijklmnopqrstuv"
BLOB = "blob-" + "q" * 20
ADDRESS = "198.51.100.23"

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
segment = st.one_of(
    st.sampled_from(
        ["api", "box", "rooms", "v", ROOM, "messages", "knock", "refuse", "turn", "ping", ".."]
    ),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
)
numbers = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-1", "0", "25", "1.5", "", "0x1", "9" * 30]),
    st.text(max_size=12),
)


@st.composite
def requests(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["known", "any"]))
    if kind == "known":
        path = draw(st.sampled_from([*paths.every_path(ROOM), "/v/viewer.js"]))
    else:
        raw = "/" + "/".join(draw(st.lists(segment, min_size=1, max_size=6)))
        path = "/" + urllib.parse.quote(raw.lstrip("/"), safe="/%")  # as it comes on the wire
    query = draw(
        st.dictionaries(st.sampled_from(["after", "wait", "reason", "x"]), numbers, max_size=3)
    )
    if "wait" in query:
        query["wait"] = query["wait"] if query["wait"] not in ("25",) else "0"
    body = draw(st.one_of(st.none(), json_values, st.binary(max_size=64)))
    auth = draw(st.sampled_from(["box", "viewer", "none", "junk"]))
    headers = {}
    if auth == "junk":
        headers["Authorization"] = draw(
            st.text(alphabet=st.characters(max_codepoint=255, blacklist_characters="\r\n"))
        )
    headers["X-Forwarded-For"] = draw(st.sampled_from(["", "203.0.113.1", "garbage, ::1"]))
    return {
        "method": draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])),
        "path": path,
        "query": query,
        "body": body,
        "auth": auth,
        "headers": headers,
    }


def relay() -> tuple[Any, str]:
    rooms = Rooms()
    app = create_relay_app(
        RelayConfig(boxes=(hash_token(TOKEN),), trusted_proxies=("127.0.0.1",)), rooms
    )
    rooms.open(hash_token(TOKEN), ROOM, time.time() + 600)
    viewer = rooms.knock(ROOM, BLOB)
    return app.test_client(), viewer


# Half the profile's cases: each is a whole request through Flask (the unit tier's 1 s).
@settings(SETTINGS, max_examples=max(1, settings().max_examples // 2))
@given(request=requests())
def test_every_request_gets_an_answer_or_a_clean_refusal(
    request: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    client, viewer = relay()
    headers = dict(request["headers"])
    if request["auth"] == "box":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif request["auth"] == "viewer":
        headers["Authorization"] = f"Bearer {viewer}"
    if "wait" in request["query"]:
        request["query"]["wait"] = "0"  # no long poll in a property test
    body = request["body"]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.open(
        request["path"],
        method=request["method"],
        query_string=request["query"],
        data=data,
        headers={**headers, "Content-Type": "application/json"},
        environ_base={"REMOTE_ADDR": ADDRESS},
    )
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        error = response.get_json(silent=True)
        assert isinstance(error, dict) and isinstance(error.get("error"), str), (
            response.status_code,
            response.get_data()[:200],
        )
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (TOKEN, ROOM, viewer, BLOB, ADDRESS, "203.0.113.1"):
        assert secret not in logged
