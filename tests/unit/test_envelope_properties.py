"""Property-based tests of the sealed-envelope decoders (hypothesis): whatever a relay or a
stranger sends, open_knock, Channel.open and ViewerHandshake.open_reply either open a genuine
message or refuse with SealError; never another exception, and never a secret in a log.

Inputs are arbitrary JSON-like values and the shared vectors' genuine messages with one field
replaced or one byte of a binary field changed (to get past the shape checks into the crypto)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.session import seal
from appliance.session.seal import SealError

V = json.loads((Path(__file__).parents[1] / "vectors" / "seal-v1.json").read_text())
IN, MESSAGES = V["inputs"], V["messages"]
u = seal.unb64u
ROOM, SECRET, BOX_HASH = IN["room"], u(IN["secret"]), u(IN["box_key_hash"])
#: What must never appear in a log line, in any spelling the code could use.
SECRETS = (IN["secret"], SECRET.hex(), V["derived"]["k_b2v"], V["derived"]["k_v2b"])

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=120
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def private(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_der_private_key(u(IN[name]), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


@st.composite
def altered(draw: Any, genuine: dict[str, Any]) -> Any:
    """``genuine`` with one field replaced, removed or added, or one byte of a binary field
    changed; or something else entirely."""
    how = draw(st.sampled_from(["replace", "flip", "drop", "add", "other"]))
    wire = dict(genuine)
    key = draw(st.sampled_from(sorted(wire)))
    if how == "replace":
        wire[key] = draw(json_values)
    elif how == "flip" and isinstance(wire[key], str) and len(wire[key]) > 2:
        try:
            raw = bytearray(u(wire[key]))
        except SealError:
            return wire
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
            wire[key] = seal.b64u(bytes(raw))
    elif how == "drop":
        del wire[key]
    elif how == "add":
        wire[draw(st.text(max_size=6))] = draw(json_values)
    else:
        return draw(json_values)
    return wire


def no_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(secret in text for secret in SECRETS)


@SETTINGS
@given(wire=altered(MESSAGES["knock"]))
def test_a_knock_opens_or_is_refused(wire: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    try:
        knock = seal.open_knock(ROOM, SECRET, BOX_HASH, wire)
    except SealError:
        pass
    else:
        assert knock.salt == u(wire["salt"]), "only a genuine knock opens"
    no_secret_logged(caplog)


@SETTINGS
@given(wire=altered(MESSAGES["offer"]))
def test_a_sealed_message_opens_or_is_refused(wire: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    box = seal.BoxHandshake(
        ROOM,
        SECRET,
        _identity(),
        seal.open_knock(ROOM, SECRET, BOX_HASH, MESSAGES["knock"]),
        u(IN["fp_box"]),
        eph_key=private("eph_private_pkcs8"),
        commit_nonce=u(IN["commit_nonce"]),
    )
    box.reply(IN["ice_servers"], IN["expires"])
    try:
        body = box.open(wire)
    except SealError:
        pass
    else:
        assert isinstance(body, dict)
    no_secret_logged(caplog)


@SETTINGS
@given(wire=altered(MESSAGES["reply"]))
def test_a_reply_opens_or_is_refused(wire: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    viewer = seal.ViewerHandshake(
        ROOM, SECRET, BOX_HASH, private("seat_private_pkcs8"), IN["name"], u(IN["salt"])
    )
    try:
        reply = viewer.open_reply(wire)
    except SealError:
        pass
    else:
        assert reply.expires == IN["expires"], "only the genuine reply opens"
    no_secret_logged(caplog)


@SETTINGS
@given(wire=json_values)
def test_a_channel_refuses_anything_not_sealed_with_its_key(wire: Any) -> None:
    keys = {"b2v": bytes(32), "v2b": bytes([1]) * 32}
    with pytest.raises(SealError):
        seal.Channel(ROOM, keys, "b2v").open(wire)


_IDENTITY: list[Any] = []


def _identity() -> Any:
    from appliance.crypto import BoxIdentity

    if not _IDENTITY:
        _IDENTITY.append(BoxIdentity(private("box_private_pkcs8")))
    return _IDENTITY[0]
