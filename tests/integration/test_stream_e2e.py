"""End to end with two real aiortc peers on loopback: the box and a viewer, through the relay and
the sealed handshake (docs/protocol.md), as a phone would."""

from __future__ import annotations

import asyncio

import pytest

from appliance.capture import timestrip
from tests.support.viewer_client import AiortcViewer, Refused
from tests.support.wait import until_async

wait_for = until_async


async def test_frames_arrive_decode_and_carry_an_advancing_time_strip(running_box) -> None:
    viewer = AiortcViewer(running_box.viewer_url)
    try:
        await viewer.connect()
        await wait_for(lambda: running_box.state() == "waiting")
        await wait_for(lambda: "waiting" in viewer.statuses)
        # both sides show the same verification code before admission
        session = running_box.call(lambda: running_box.core.session_view())
        assert viewer.code is not None and len(viewer.code) == 6 and viewer.code.isdigit()
        assert session.viewer.code == viewer.code and session.viewer.name == "Sam"
        # nothing is sent before the press admits the viewer
        assert await viewer.frames(1, timeout=1.5) == []

        await asyncio.to_thread(running_box.press)
        frames = await viewer.frames(45, timeout=15)
        assert len(frames) >= 40
        assert viewer.codec() == "video/H264"
        assert (frames[0].frame.width, frames[0].frame.height) == (1280, 720)
        stamps = [f.stamp for f in frames if f.stamp is not None]
        assert len(stamps) == len(frames), "every live frame carries a readable strip"
        assert stamps == sorted(stamps) and stamps[-1] - stamps[0] > 1000
        # the strip is the capture time: it lags the arrival by well under a second here
        lag = timestrip.latency_ms(stamps[-1], frames[-1].arrived)
        assert 0 <= lag < 1000
        assert "live" in viewer.statuses
    finally:
        await viewer.close()


async def test_pause_sends_the_slate_and_resume_brings_the_scan_back(running_box) -> None:
    viewer = AiortcViewer(running_box.viewer_url)
    try:
        await viewer.connect()
        await asyncio.to_thread(running_box.press)
        assert len(await viewer.frames(10)) == 10
        await asyncio.to_thread(running_box.press)
        await wait_for(lambda: "paused" in viewer.statuses)
        # what was in flight (a scan frame encoded as the pause came) may still arrive: until
        # the slate, after which frames come in order
        for _ in range(100):
            if any(f.stamp is None for f in await viewer.frames(1, timeout=3.0)):
                break
        paused = await viewer.frames(2, timeout=3.0)
        assert paused, "the paused slate keeps arriving, about once a second"
        assert all(f.stamp is None for f in paused), "no scan picture while paused"
        await asyncio.to_thread(running_box.press)
        resumed = await viewer.frames(20, timeout=5)
        assert any(f.stamp is not None for f in resumed)
    finally:
        await viewer.close()


async def test_a_picture_loss_indication_makes_the_encoder_send_a_keyframe(running_box) -> None:
    viewer = AiortcViewer(running_box.viewer_url)
    try:
        await viewer.connect()
        await asyncio.to_thread(running_box.press)
        await viewer.frames(70, timeout=10)  # past the first keyframe
        box_peer = running_box.call(lambda: running_box.box.viewers.peers[0])
        before = box_peer.keyframe_requests
        keyframes_before = running_box.call(lambda: running_box.box.pipeline.keyframes_encoded)
        # the viewer's receiver asks for a picture, as a browser does after a loss
        assert viewer.pc is not None
        receiver = viewer.pc.getTransceivers()[0].receiver
        # the SSRC the box sends from: aiortc keeps it only in a private (name-mangled) table
        sender_ssrc = next(iter(receiver._RTCRtpReceiver__remote_streams))  # type: ignore[attr-defined]
        await receiver._send_rtcp_pli(sender_ssrc)
        await wait_for(lambda: box_peer.keyframe_requests > before)
        # the GOP is 10 s: a keyframe within 2 s is the one the PLI asked for (it may wait the
        # limiter's 0.5 s gap after another, and a 720p IDR on a busy machine)
        await wait_for(
            lambda: (
                running_box.call(lambda: running_box.box.pipeline.keyframes_encoded)
                > keyframes_before
            ),
            timeout=2.0,
        )
    finally:
        await viewer.close()


async def test_long_press_drops_the_viewer_and_refuses_new_ones_until_a_new_session(
    running_box,
) -> None:
    link = running_box.viewer_url
    viewer = AiortcViewer(link)
    try:
        await viewer.connect()
        await asyncio.to_thread(running_box.press)
        await viewer.frames(5)
        await asyncio.to_thread(running_box.long_press)
        await wait_for(lambda: "ended" in viewer.statuses)
        pc = viewer.pc
        assert pc is not None
        await wait_for(lambda: pc.connectionState in ("closed", "failed"), timeout=15)
        running_box.wait_state("idle")
    finally:
        await viewer.close()
    # the old link is dead for good: the room is gone and the same phone cannot come back
    late = AiortcViewer(link, seat_key=viewer.seat_key)
    try:
        with pytest.raises(Refused) as refused:
            await late.connect()
        assert refused.value.status in (404, 410)
    finally:
        await late.close()
    await asyncio.to_thread(running_box.press)  # IDLE: a short press opens a new session
    running_box.wait_state("ready")
    assert running_box.viewer_url != link


async def test_over_https_with_the_boxs_own_certificate(box_factory) -> None:
    """What `--lan` turns on: the pairing page and the built-in relay (so the viewer page) over
    TLS with the certificate the box made, which a client can pin (its fingerprint is on the
    box's label and in `appliance doctor`)."""
    import ssl
    import urllib.request

    box = box_factory(web={"tls": True})
    cert = str(box.box.tls_certificate)
    assert box.pairing_url.startswith("https://") and box.viewer_url.startswith("https://")

    def fetch(context: ssl.SSLContext) -> tuple[int, str]:
        with urllib.request.urlopen(box.pairing_url, context=context, timeout=10) as page:
            return page.status, page.headers["Set-Cookie"]

    status, cookie = await asyncio.to_thread(fetch, ssl.create_default_context(cafile=cert))
    assert status == 200 and "Secure" in cookie
    with pytest.raises(urllib.error.URLError):  # an unpinned client does not trust it
        await asyncio.to_thread(fetch, ssl.create_default_context())
    viewer = AiortcViewer(box.viewer_url, cafile=cert)
    try:
        await viewer.connect()
        await asyncio.to_thread(box.press)
        assert len(await viewer.frames(10)) == 10
    finally:
        await viewer.close()


async def test_media_keeps_flowing_through_a_relay_restart_and_new_sessions_work_after(
    box_factory,
) -> None:
    """The relay is only the rendezvous: once connected, the picture does not depend on it; when
    it comes back (having forgotten everything), the box opens its room again and a new session
    works."""
    from appliance.relay.config import RelayConfig, hash_token
    from tests.integration.test_signalling_client import free_port, restart_on, start_relay

    token = "box-token-" + "r" * 30
    port = free_port()
    relay = await start_relay(RelayConfig(port=port, boxes=(hash_token(token),)))
    try:
        box = box_factory(relay={"url": relay.url, "token": token})
        viewer = AiortcViewer(box.viewer_url)
        try:
            await viewer.connect()
            await asyncio.to_thread(box.press)
            assert len(await viewer.frames(10)) == 10
            await asyncio.to_thread(relay.stop)  # the relay goes down mid-exam
            during = await viewer.frames(45, timeout=10)
            assert len(during) >= 40, "the picture kept flowing without the relay"
            relay = await restart_on(port, token)
            # the box notices the forgotten room and opens it again
            await until_async(relay.rooms.count, 20, 0.1, "the box reopening its room")
        finally:
            await viewer.close()
        await asyncio.to_thread(box.long_press)
        box.wait_state("idle")
        await asyncio.to_thread(box.press)  # a new session, through the restarted relay
        fresh = AiortcViewer(box.viewer_url)
        try:
            await fresh.connect()
            await asyncio.to_thread(box.press)
            assert len(await fresh.frames(10)) == 10
        finally:
            await fresh.close()
    finally:
        await asyncio.to_thread(relay.stop)
