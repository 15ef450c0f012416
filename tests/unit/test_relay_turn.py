"""Several TURN servers: relay.toml lists every coturn's URLs (one shared secret), the relay
hands out all of them, a wrong one is a config error naming its key and the fix; the box's ICE
takes every TURN URL it is told of (appliance/stream/compat_turn.py), not only aiortc's first."""

from __future__ import annotations

import aioice.ice
import aioice.turn
import pytest
from aiortc import RTCIceGatherer, RTCIceServer

from appliance.errors import ConfigError
from appliance.relay.config import load
from appliance.relay.turn import mint_turn
from appliance.stream import compat_turn

A = "turn:turn-a.clinic.example:3478?transport=udp"
B = "turn:turn-b.clinic.example:3478?transport=udp"


def test_the_relay_hands_out_every_turn_server_with_one_credential() -> None:
    config = load(None, {"turn": {"secret": "shared", "urls": [A, B, "turns:192.0.2.7"]}})
    (server,) = mint_turn(config, "Abcdefghijklmnopqrstuv", 600)
    assert server["urls"] == [A, B, "turns:192.0.2.7"]
    assert server["username"] and server["credential"]


@pytest.mark.parametrize(
    ("turn", "wrong"),
    [
        ({"secret": "s", "urls": [A, "stun:turn-b.clinic.example"]}, r"'turn.urls\[1\]'.*turn:"),
        ({"secret": "s", "urls": ["turn:h?transport=tls"]}, r"'turn.urls\[0\]'.*such as"),
        ({"secret": "s", "urls": ["turn:h:70000"]}, r"'turn.urls\[0\]'"),
        ({"secret": "s", "urls": ["turn:[2001:db8::1]:3478"]}, r"'turn.urls\[0\]'.*host name"),
        ({"urls": [A, B]}, r"'turn.secret'.*static-auth-secret"),
        ({"secret": "s"}, r"'turn.urls' is empty.*list every coturn"),
    ],
)
def test_a_wrong_turn_config_names_the_key_and_the_fix(turn: dict, wrong: str) -> None:
    with pytest.raises(ConfigError, match=wrong):
        load(None, {"turn": turn})


def test_the_box_ice_takes_every_turn_url_it_is_told_of() -> None:
    servers = [
        RTCIceServer("stun:127.0.0.1:3478"),
        RTCIceServer([A, "turn:10.0.0.9:3478?transport=tcp"], "u", "c"),
        RTCIceServer(["turns:turn-b.clinic.example:5349?transport=tcp", A], "u2", "c2"),
    ]
    found = compat_turn.turn_servers(servers)
    assert [(s.address, s.transport, s.ssl, s.username) for s in found] == [
        (("turn-a.clinic.example", 3478), "udp", False, "u"),
        (("10.0.0.9", 3478), "tcp", False, "u"),
        (("turn-b.clinic.example", 5349), "tcp", True, "u2"),
        (("turn-a.clinic.example", 3478), "udp", False, "u2"),  # other credentials
    ]
    gatherer = RTCIceGatherer(iceServers=servers)  # install_patches ran (tests/conftest.py)
    connection = gatherer._connection
    assert getattr(connection, compat_turn.TURN) == found, "every one, in order"
    assert connection.turn_server is None, "none by aioice itself (it would take the first)"
    # what the patch uses of aioice, by name: an upgrade that moves one fails here
    assert isinstance(connection._protocols, list)
    assert connection._transport_policy in tuple(aioice.ice.TransportPolicy)
    for name in ("StunProtocol", "candidate_foundation", "candidate_priority"):
        assert callable(getattr(aioice.ice, name)), name
    assert callable(aioice.turn.create_turn_endpoint)
