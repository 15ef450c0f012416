"""The sound end to end, box to a real aiortc receiver on loopback: the heartbeat's band arrives
once admitted, in the picture's media stream, stereo with FEC in the answer; no sound packet
arrives before admission or while paused (counted), and it comes back with the picture."""

from __future__ import annotations

import asyncio

import numpy as np

from appliance.sound import synthetic
from tests.support.viewer_client import AiortcViewer
from tests.support.wait import until_async


async def _count_settles(viewer: AiortcViewer) -> int:
    await asyncio.sleep(0.3)  # what was in flight has landed
    return await viewer.audio_packets()


async def _dominant_hz(track: object, seconds: float = 1.0) -> float:
    chunks: list[np.ndarray] = []
    while sum(len(c) for c in chunks) < seconds * 48_000:
        frame = await asyncio.wait_for(track.recv(), 5)  # type: ignore[attr-defined]
        chunks.append(frame.to_ndarray().reshape(-1, 2)[:, 0].astype(float))
    left = np.concatenate(chunks)
    spectrum = np.abs(np.fft.rfft(left))
    return float(np.argmax(spectrum[1:]) + 1) * 48_000 / len(left)


async def test_no_sound_before_admission_nor_while_paused_and_it_resumes_with_the_picture(
    box_factory,
) -> None:
    box = box_factory(audio={"source": "synthetic"})
    viewer = AiortcViewer(box.viewer_url, audio=True)
    try:
        await viewer.connect()
        answer = viewer.pc.remoteDescription.sdp  # type: ignore[union-attr]
        assert "stereo=1;useinbandfec=1" in answer
        msids = {ln.split()[0] for ln in answer.splitlines() if ln.startswith("a=msid:")}
        assert len(msids) == 1, "the picture and the sound are one media stream"
        assert viewer.audio_track is not None
        await asyncio.sleep(1.5)
        assert await viewer.audio_packets() == 0, "no sound before admission"
        assert box.core.status().audio == "idle", "nothing captured before admission"

        await asyncio.to_thread(box.press)  # admit: LIVE
        await until_async(lambda: "live" in viewer.statuses, timeout=10)
        assert len(await viewer.frames(5)) == 5
        hz = await _dominant_hz(viewer.audio_track)
        assert synthetic.BAND[0] - 50 <= hz <= synthetic.BAND[1] + 50, hz
        assert await viewer.audio_packets() >= 40
        assert box.core.status().audio == "present"  # what the staff's page reads

        await asyncio.to_thread(box.press)  # pause
        await until_async(lambda: "paused" in viewer.statuses, timeout=10)
        before = await _count_settles(viewer)
        await asyncio.sleep(1.5)
        assert await viewer.audio_packets() == before, "no sound packet while paused"

        await asyncio.to_thread(box.press)  # resume: the sound and the scan come back together
        resumed = await viewer.frames(20, timeout=5)
        assert any(f.stamp is not None for f in resumed)
        await asyncio.sleep(0.7)
        after = await _count_settles(viewer)
        assert after > before + 10
    finally:
        await viewer.close()


async def test_every_sender_of_a_live_peer_forgets_its_packets_by_age(box_factory) -> None:
    """The sound's sender kept aiortc's own history, keyed by the process-wide 65536 modulus: 22
    minutes of packets, +30 MB in a 40-minute soak. Every sender's history is bounded by age."""
    from appliance.stream import compat

    box = box_factory(audio={"source": "synthetic"})
    viewer = AiortcViewer(box.viewer_url, audio=True)
    try:
        await viewer.connect()
        await asyncio.to_thread(box.press)  # admit: LIVE
        await until_async(lambda: "live" in viewer.statuses, timeout=10)
        await asyncio.sleep(1.0)
        assert await viewer.audio_packets() >= 20

        def histories() -> list[int]:
            peers = list(box.box.viewers.peers)
            senders = [s for peer in peers for s in peer._pc.getSenders()]
            assert {s.kind for s in senders} == {"audio", "video"}
            for sender in senders:
                assert isinstance(compat.rtp_history(sender), compat._TimedHistory), sender.kind
            return [len(compat.rtp_history(s)) for s in senders]

        await asyncio.to_thread(box.call, histories)
    finally:
        await viewer.close()
