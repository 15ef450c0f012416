"""A relay that cheats. Whatever the relay can do to a blob (flip a byte, replay, reorder, drop,
move it to another room, forge the box's reply, hand the link to a second phone), the test does
on the way between the real relay and the real box or viewer: the box and the viewer refuse,
no video flows, and the box's event log records the tamper without content."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from appliance.session import seal
from appliance.session.seal import SealError
from tests.support.viewer_client import AiortcViewer, Refused


def flip(wire: dict, key: str = "ct") -> dict:
    """The same message with one byte of ``key`` flipped."""
    raw = bytearray(seal.unb64u(wire[key]))
    raw[len(raw) // 2] ^= 0x01
    return {**wire, key: seal.b64u(bytes(raw))}


async def events(box, kind: str) -> list[dict]:
    """The box's event log entries of ``kind`` (read in a thread: the test runs on a loop)."""
    return [e for e in await asyncio.to_thread(box.box_events) if e["kind"] == kind]


async def refused_knock(viewer: AiortcViewer, wire: dict) -> Refused:
    """Knock with ``wire`` (as the relay would have passed it on) and expect a refusal."""
    viewer.relay = viewer_relay(viewer)
    await viewer.relay.knock(wire)
    with pytest.raises(Refused) as refused:
        await viewer.relay.receive(timeout=10)
    return refused.value


def viewer_relay(viewer: AiortcViewer):
    from tests.support.viewer_client import Relay

    return Relay(viewer.origin, viewer.room)


async def test_a_tampered_knock_is_refused_and_recorded(running_box) -> None:
    viewer = AiortcViewer(running_box.viewer_url)
    viewer.handshake = seal.ViewerHandshake(viewer.room, viewer.secret, viewer.box_key_hash)
    refusal = await refused_knock(viewer, flip(viewer.handshake.knock()))
    assert refusal.status == 403
    assert running_box.state() == "ready"
    tampers = await events(running_box, "tamper")
    assert tampers and set(tampers[-1]) <= {"kind", "at", "what", "count"}


async def test_a_replayed_knock_is_refused_even_from_another_client(running_box) -> None:
    viewer = AiortcViewer(running_box.viewer_url)
    try:
        await viewer.knock()
        wire = viewer.handshake.last_knock
        replayer = AiortcViewer(running_box.viewer_url)
        await refused_knock(replayer, copy.deepcopy(wire))
        assert await events(running_box, "tamper")
    finally:
        await viewer.close()


async def test_a_knock_for_another_room_is_refused(running_box) -> None:
    old = AiortcViewer(running_box.viewer_url)
    old.handshake = seal.ViewerHandshake(old.room, old.secret, old.box_key_hash)
    knock_for_old_room = old.handshake.knock()
    await asyncio.to_thread(running_box.long_press)
    running_box.wait_state("idle")
    await asyncio.to_thread(running_box.press)
    running_box.wait_state("ready")
    new = AiortcViewer(running_box.viewer_url)
    await refused_knock(new, knock_for_old_room)
    assert running_box.state() == "ready"


async def test_a_tampered_or_replayed_offer_gets_no_answer_and_no_video(running_box) -> None:
    viewer = AiortcViewer(running_box.viewer_url)
    try:
        await viewer.knock()
        assert viewer.relay is not None
        offer = viewer.handshake.offer("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
        await viewer.relay.send(flip(offer))
        with pytest.raises((Refused, TimeoutError)):
            await viewer.relay.receive(timeout=3)
        assert await events(running_box, "tamper")
        viewers = running_box.box.viewers
        assert running_box.call(lambda: (viewers.count, viewers.pending)) == (0, 0)
    finally:
        await viewer.close()


async def test_the_viewer_refuses_a_reply_not_signed_by_the_box(running_box) -> None:
    viewer = AiortcViewer(running_box.viewer_url)
    viewer.handshake = seal.ViewerHandshake(viewer.room, viewer.secret, viewer.box_key_hash)
    viewer.relay = viewer_relay(viewer)
    await viewer.relay.knock(viewer.handshake.knock())
    reply = await viewer.relay.receive()
    # a flipped byte anywhere: in the sealed body, the signature, the box's ephemeral key
    for key in ("ct", "sig", "eph", "box"):
        with pytest.raises(SealError):
            viewer.handshake.open_reply(flip(reply, key))
    # an impostor holding the link (the secret) but not the box's signing key
    from appliance.crypto import BoxIdentity

    impostor_dir = running_box.tmp / "impostor"
    impostor = await asyncio.to_thread(BoxIdentity.load_or_create, impostor_dir)
    knock = seal.open_knock(
        viewer.room, viewer.secret, viewer.box_key_hash, viewer.handshake.last_knock
    )
    forged = seal.BoxHandshake(viewer.room, viewer.secret, impostor, knock, b"\x00" * 32)
    with pytest.raises(SealError):
        viewer.handshake.open_reply(forged.reply([], 2_000_000_000))
    viewer.handshake.open_reply(reply)  # the genuine one still opens


async def test_a_second_phone_with_the_same_link_is_refused_while_the_session_lives(
    running_box,
) -> None:
    first = AiortcViewer(running_box.viewer_url)
    second = AiortcViewer(running_box.viewer_url, name="Other")
    try:
        await first.connect()
        with pytest.raises(Refused) as refused:
            await second.connect()
        assert refused.value.reason == "taken"
        await asyncio.to_thread(running_box.press)  # admit the first
        assert len(await first.frames(10)) == 10
        assert json.dumps(await events(running_box, "refused")).count("taken") >= 1
    finally:
        await first.close()
        await second.close()


async def test_a_dropped_reply_costs_only_a_new_knock(running_box) -> None:
    """The relay drops the box's reply: the viewer gets nothing, knocks again with the same seat,
    and the box takes it as the same phone coming back."""
    link = running_box.viewer_url
    first = AiortcViewer(link)
    first.handshake = seal.ViewerHandshake(first.room, first.secret, first.box_key_hash)
    first.relay = viewer_relay(first)
    await first.relay.knock(first.handshake.knock())  # the reply to this is never delivered
    again = AiortcViewer(link, seat_key=first.handshake.seat_key)
    try:
        await again.connect()
        await asyncio.to_thread(running_box.press)
        assert len(await again.frames(10)) == 10
        assert [e.get("returning") for e in await events(running_box, "knock")] == [False, True]
    finally:
        await again.close()
