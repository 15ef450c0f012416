"""The viewers' owner without a network: a viewer left waiting for retransmissions the budget
refused gets a fresh keyframe instead; what the last viewer leaves is collected and given back."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

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


async def test_the_viewers_are_closed_together() -> None:
    """Each close may wait its CLOSE_WAIT (a TURN server gone): the box's stop and the end of
    a session wait for the slowest, not for their sum."""
    import asyncio

    viewers = Viewers((), RecordingMedia(), PacketFanout(KeyframePolicy()), on_left=lambda p: None)
    peers = [viewers.make(), viewers.make()]
    closing: set[int] = set()
    both = asyncio.Event()

    def slow(peer: Any) -> Callable[[], Coroutine[Any, Any, None]]:
        close = peer.close

        async def closed() -> None:
            closing.add(id(peer))
            if len(closing) == len(peers):
                both.set()
            await asyncio.wait_for(both.wait(), 5)  # only if the other is closing meanwhile
            await close()

        return closed

    for peer in peers:
        peer.close = slow(peer)  # type: ignore[method-assign]
    await viewers.close_all()
    assert closing == {id(peer) for peer in peers}


async def test_a_close_that_fails_is_logged_and_the_others_still_close(caplog) -> None:
    """The end of a session and the box's stop go on past one connection whose close failed:
    the other closes, the rate control stops, and the log names the failure's kind only."""
    viewers = Viewers((), RecordingMedia(), PacketFanout(KeyframePolicy()), on_left=lambda p: None)
    failing, other = viewers.make(), viewers.make()
    assert await viewers.adopt(other)
    control = viewers._control
    assert control is not None and not control.done()

    async def fails() -> None:
        raise OSError("198.51.100.7:3478 unreachable")

    failing.close = fails  # type: ignore[method-assign]
    await viewers.close_all()
    assert other.connection_state == "closed"
    assert control.done(), "the rate control stopped"
    assert "closing its connection failed (OSError)" in caplog.text
    assert "198.51.100.7" not in caplog.text, "no address in the log"
