"""The process-wide patches of aiortc and aioice: applied once, by the composition root, at
start-up; idempotent; never a side effect of building the viewers or a peer."""

from __future__ import annotations

from typing import Any

import aioice.ice
import aioice.turn
import aiortc.rtcrtpsender
import pytest

from appliance.config import StreamConfig
from appliance.encode.keyframes import KeyframePolicy
from appliance.errors import InvalidStateError
from appliance.stream import compat
from appliance.stream.fanout import PacketFanout
from appliance.stream.feedback import LinkSettings
from appliance.stream.viewers import Viewers
from tests.support.media import RecordingMedia


def _patched() -> tuple[Any, ...]:
    """Every process-wide attribute compat replaces, by identity."""
    return (
        aioice.ice.get_host_addresses,
        aioice.ice.StunProtocol.send_data,
        aioice.turn.TurnClientTcpProtocol._send,
        aiortc.rtcrtpsender.RTP_HISTORY_SIZE,
    )


def _viewers() -> Viewers:
    return Viewers(
        (),
        RecordingMedia(),
        PacketFanout(KeyframePolicy()),
        on_left=lambda peer: None,
        link=LinkSettings.from_config(StreamConfig(), 4_000_000, (1280, 720, 30.0)),
    )


def test_install_patches_is_idempotent() -> None:
    compat.install_patches(("127.0.0.1",))  # the conftest already did: a second call
    first = _patched()
    compat.install_patches(("127.0.0.1",))
    assert _patched() == first
    assert compat.patches_installed()
    assert aiortc.rtcrtpsender.RTP_HISTORY_SIZE == 1 << 16
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]


async def test_building_the_viewers_and_a_peer_patches_nothing() -> None:
    before = _patched()
    viewers = _viewers()
    peer = viewers.make()
    try:
        assert _patched() == before
    finally:
        await viewers.close_all()
        await peer.close()
    assert _patched() == before


def test_the_viewers_refuse_to_start_without_the_patches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "_installed", False)
    with pytest.raises(InvalidStateError):
        _viewers()
