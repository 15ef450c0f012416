"""The page's one message to the box on the status channel: the co-parent's sound on or off
(lip sync); anything else changes nothing."""

from __future__ import annotations

from appliance.encode.keyframes import KeyframePolicy
from appliance.stream.fanout import PacketFanout
from appliance.stream.feedback import LinkSettings
from appliance.stream.peers import ViewerPeer
from appliance.stream.ratecontrol import RateParams


async def test_only_the_sound_message_moves_the_sound_flag() -> None:
    fanout = PacketFanout(KeyframePolicy())
    peer = ViewerPeer(fanout, None, (), lambda: None, lambda p: None, LinkSettings(RateParams()))
    try:
        feedback = peer.feedback
        assert feedback is not None and feedback.sound_on is False
        peer._viewer_said('{"sound": true}')
        assert feedback.sound_on is True
        for junk in ('{"sound": "on"}', "[1]", "not json", b'{"sound": false}', "x" * 300):
            peer._viewer_said(junk)
            assert feedback.sound_on is True, junk
        peer._viewer_said('{"sound": false, "other": 1}')
        assert feedback.sound_on is False
        peer._viewer_said(" " * 250 + '{"sound": true}')  # over 256 bytes in all: ignored
        assert feedback.sound_on is False
    finally:
        await peer.close()
