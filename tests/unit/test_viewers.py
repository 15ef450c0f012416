"""The viewers' owner without a network: a viewer left waiting for retransmissions the budget
refused gets a fresh keyframe instead; what the last viewer leaves is collected and given back."""

from __future__ import annotations

from appliance.config import StreamConfig
from appliance.encode.keyframes import KeyframePolicy, KeyframeReason
from appliance.stream.fanout import PacketFanout
from appliance.stream.feedback import LinkSettings
from appliance.stream.viewers import Viewers
from tests.support.media import RecordingMedia


async def test_refused_retransmissions_are_answered_with_a_keyframe() -> None:
    media = RecordingMedia()
    keyframes = media.keyframes
    viewers = Viewers(
        (),
        media,
        PacketFanout(KeyframePolicy()),
        on_left=lambda peer: None,
        link=LinkSettings.from_config(StreamConfig(), 4_000_000, (1280, 720, 30.0)),
    )
    peer = viewers.make()
    try:
        assert await viewers.adopt(peer)
        assert media.counts == [1], "the media side is told who watches"
        feedback = peer.feedback
        assert feedback is not None
        viewers.control_once()
        assert keyframes == []
        # a loss burst: the viewer NACKs far more than a quarter of the rate may resend
        refused = [feedback.allow_rtx(1200) for _ in range(400)].count(False)
        assert refused >= 3
        viewers.control_once()
        assert keyframes == [KeyframeReason.REFUSED_RTX], (
            "a keyframe instead of the refused packets"
        )
        viewers.control_once()
        assert keyframes == [KeyframeReason.REFUSED_RTX], "once per burst"
        feedback.allow_rtx(10**6)  # one refusal alone: a retransmission is not worth an IDR
        viewers.control_once()
        assert keyframes == [KeyframeReason.REFUSED_RTX]
    finally:
        await viewers.close_all()


async def test_what_the_last_viewer_leaves_is_collected_and_given_back(monkeypatch) -> None:
    import asyncio

    from appliance import allocator
    from appliance.stream import viewers as viewers_mod

    released: list[int] = []

    def release() -> int:
        released.append(1)
        return 0

    monkeypatch.setattr(allocator, "release_session_memory", release)
    monkeypatch.setattr(viewers_mod, "RELEASE_AFTER_S", 0.01)
    media = RecordingMedia()
    viewers = Viewers((), media, PacketFanout(KeyframePolicy()), on_left=lambda peer: None)
    first, second = viewers.make(), viewers.make()
    try:
        assert await viewers.adopt(first)
        await viewers.release(second)  # a dropped attempt: the viewer is still there
        await asyncio.sleep(0.05)
        assert released == []
        await viewers.close(first)  # the last one leaves
        await asyncio.sleep(0.05)
        assert released == [1]
    finally:
        await viewers.close_all()
