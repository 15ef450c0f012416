"""TURN with a real coturn on loopback: credentials the relay mints work and expired ones do not;
a viewer forced to relay-only ICE watches the scan through TURN, and the TURN traffic never shows
the encoder's parameter sets (the media is SRTP: TURN sees only ciphertext)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from pathlib import Path

import pytest
from aioice import turn as aioice_turn

from appliance.capture.synthetic import SyntheticSource
from appliance.encode.base import iter_nal_units
from appliance.encode.software import SoftwareEncoder
from appliance.relay.config import RelayConfig, TurnConfig, hash_token
from appliance.relay.server import RelayServer
from appliance.relay.turn import mint_turn
from tests.support import turn
from tests.support.browser import join, wait_js

TOKEN = "box-token-" + "t" * 30
ROOM = "Turnroomturnroomturnro"
PROBE = (Path(__file__).parents[1] / "support" / "probe.js").read_text()
RELAY_ONLY = """
(() => {
  const Native = window.RTCPeerConnection;
  function RelayOnly(config, ...rest) {
    return new Native({ ...(config || {}), iceTransportPolicy: "relay" }, ...rest);
  }
  RelayOnly.prototype = Native.prototype;
  window.RTCPeerConnection = RelayOnly;
})();
"""


class Sink(asyncio.DatagramProtocol):
    """Ignores whatever comes back through the allocation."""


async def allocate(port: int, username: str, password: str) -> None:
    transport, _ = await asyncio.wait_for(
        aioice_turn.create_turn_endpoint(Sink, ("127.0.0.1", port), username, password), 10
    )
    transport.close()


async def test_minted_credentials_allocate_and_expired_ones_are_refused(tmp_path) -> None:
    with turn.coturn(tmp_path) as port:
        cfg = RelayConfig(turn=TurnConfig(secret=turn.SECRET, urls=(f"turn:127.0.0.1:{port}",)))
        (server,) = mint_turn(cfg, ROOM, 300)
        await allocate(port, server["username"], server["credential"])

        expired = f"{int(time.time()) - 60}:abcdef01"
        credential = base64.b64encode(
            hmac.new(turn.SECRET.encode(), expired.encode(), hashlib.sha1).digest()
        ).decode()
        with pytest.raises(Exception, match="401|Unauthorized|438|error"):
            await allocate(port, expired, credential)
        with pytest.raises(Exception, match="401|Unauthorized|error"):
            await allocate(port, server["username"], "not-the-credential")


def parameter_sets(width: int, height: int) -> list[bytes]:
    """The SPS and PPS the box's encoder writes at this size (what a leak would show)."""
    source = SyntheticSource(width, height, 30)
    source.open()
    encoder = SoftwareEncoder(width, height, 30, 2_000_000, 2.0, 1)
    captured = source.read(1.0)
    assert captured is not None
    data = b"".join(bytes(p) for p in encoder.encode(captured.frame, 0))
    units = [u for u in iter_nal_units(data) if u[0] & 0x1F in (7, 8)]
    assert len(units) == 2, "the keyframe carries SPS and PPS"
    return units


@pytest.mark.browser
def test_a_relay_only_viewer_watches_through_turn_which_sees_only_ciphertext(
    box_factory, chromium, tmp_path
) -> None:
    with turn.coturn(tmp_path) as port:
        tap = turn.UdpTap(("127.0.0.1", port))
        relay = RelayServer(
            RelayConfig(
                port=0,
                boxes=(hash_token(TOKEN),),
                turn=TurnConfig(
                    secret=turn.SECRET, urls=(f"turn:127.0.0.1:{tap.port}?transport=udp",)
                ),
            )
        ).start()
        try:
            box = box_factory(relay={"url": relay.url, "token": TOKEN})
            page = chromium.new_page()
            page.add_init_script(RELAY_ONLY)
            page.add_init_script(PROBE)
            join(page, box.viewer_url)
            box.press()
            wait_js(page, "window.probe.stamped >= 20", timeout=30)
            local_type = page.evaluate(
                """(async () => {
                  const stats = await window.viewer.pc.getStats();
                  for (const s of stats.values()) {
                    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
                      return stats.get(s.localCandidateId).candidateType;
                    }
                  }
                  return null;
                })()"""
            )
            assert local_type == "relay", "the viewer's media went through TURN"
        finally:
            relay.stop()
            tap.close()
        captured = tap.data()
        assert len(captured) > 100_000, "the media crossed the tap"
        for unit in parameter_sets(1280, 720):
            assert unit not in captured, "a parameter set crossed TURN in the clear"
