"""The box's security gate (appliance.signalling.gate) against in-memory layers below it: a fake
relay link that delivers blobs and records what the box sends, fake peers, and a judge that
seats knocks the way the core does. No socket, no browser, no aiortc peer."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest

from appliance.crypto import BoxIdentity
from appliance.session import seal
from appliance.session.session import Session, Verdict
from appliance.signalling.gate import Gate, GateHooks, TamperLog


def fingerprint_sdp(fp: bytes) -> str:
    pairs = ":".join(f"{b:02X}" for b in fp)
    return f"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 {pairs}\r\n"


class FakePeer:
    def __init__(self) -> None:
        self.dtls_fingerprint = secrets.token_bytes(32)
        self.released = False
        self.offers: list[str] = []

    async def answer(self, offer_sdp: str) -> str:
        self.offers.append(offer_sdp)
        return fingerprint_sdp(self.dtls_fingerprint)


class FakeRelay:
    """The relay as the gate sees it: blobs in through ``deliver``, everything out recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], bool]] = []
        self.refused: list[tuple[str, str]] = []
        self.rooms: list[str] = []
        self.on_message: Any = None

    async def open_room(self, room: str, expires: int) -> None:
        self.rooms.append(room)

    async def close_room(self, room: str, reason: str = "ended") -> None:
        self.rooms.remove(room)
        self.closed_as = reason

    async def extend_room(self, room: str, expires: int) -> None:
        self.extended = expires

    async def receive(self, room: str, on_message: Any) -> None:
        self.on_message = on_message
        await asyncio.Event().wait()  # until the gate cancels it

    async def send(self, room: str, client: str, blob: str, seat: bool = False) -> None:
        self.sent.append((client, json.loads(blob), seat))

    async def refuse(self, room: str, client: str, reason: str) -> None:
        self.refused.append((client, reason))

    async def mint_turn(self, room: str, ttl: int) -> list[dict[str, Any]]:
        return []

    async def deliver(self, client: str, kind: str, wire: Any) -> None:
        await asyncio.sleep(0)  # let the gate's receive task start
        blob = wire if isinstance(wire, str) else json.dumps(wire)
        await self.on_message(client, kind, blob)


class Recorder:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def record(self, kind: str, **fields: Any) -> None:
        self.entries.append((kind, fields))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.entries]


class Rig:
    def __init__(self, identity: BoxIdentity) -> None:
        self.identity = identity
        self.session = Session.new(self.identity.key_hash, 30)
        self.relay = FakeRelay()
        self.events = Recorder()
        self.peers: list[FakePeer] = []
        self.answered: list[tuple[FakePeer, str]] = []
        self.byes = 0
        self.leaves = 0

        async def judge(salt: bytes, seat: bytes, name: str | None, client: str) -> Verdict:
            verdict = self.session.judge(salt, seat)  # what the core does, on its queue
            if verdict in (Verdict.NEW, Verdict.RETURNING):
                self.session.seat(seat, name, client)
            return verdict

        def make_peer(ice: Any) -> FakePeer:
            peer = FakePeer()
            self.peers.append(peer)
            return peer

        async def release(peer: FakePeer) -> None:
            peer.released = True

        def bye() -> None:
            self.byes += 1

        def leave() -> None:
            self.leaves += 1

        self.gate = Gate(
            self.relay,
            self.identity,
            self.events,
            GateHooks(
                judge=judge,
                answered=lambda peer, code: self.answered.append((peer, code)),
                bye=bye,
                leave=leave,
                make_peer=make_peer,
                release_peer=release,
            ),
        )

    def viewer(self, name: str | None = "Sam", seat_key: Any = None) -> seal.ViewerHandshake:
        s = self.session
        return seal.ViewerHandshake(s.room, s.secret, s.box_key_hash, seat_key=seat_key, name=name)


@pytest.fixture
async def rig(tmp_path: Any) -> Any:
    rig = Rig(await asyncio.to_thread(BoxIdentity.load_or_create, tmp_path))
    await rig.gate.open(rig.session)
    yield rig
    await rig.gate.close(rig.session, "staff")


def flip(wire: dict[str, Any], field: str = "ct") -> dict[str, Any]:
    raw = bytearray(seal.unb64u(wire[field]))
    raw[len(raw) // 2] ^= 0x01
    return {**wire, field: seal.b64u(bytes(raw))}


async def test_a_good_knock_gets_a_signed_reply_then_an_answer_and_the_same_code(rig) -> None:
    viewer = rig.viewer()
    await rig.relay.deliver("c1", "knock", viewer.knock())
    ((client, reply, seat),) = rig.relay.sent
    assert client == "c1" and seat is True, "the reply grants the seat"
    viewer.open_reply(reply)  # signed by the box this link names
    assert rig.session.viewer is not None and rig.session.viewer.name == "Sam"

    offer_fp = secrets.token_bytes(32)
    await rig.relay.deliver("c1", "message", viewer.offer(fingerprint_sdp(offer_fp)))
    answer = viewer.open_answer(rig.relay.sent[-1][1])
    assert seal.sdp_fingerprint(answer) == rig.peers[0].dtls_fingerprint
    ((peer, code),) = rig.answered
    assert peer is rig.peers[0] and code == viewer.code(offer_fp), "both sides show one code"
    assert "tamper" not in rig.events.kinds()


async def test_a_tampered_knock_is_refused_as_bad_and_no_peer_is_made(rig) -> None:
    await rig.relay.deliver("c1", "knock", flip(rig.viewer().knock()))
    assert rig.relay.refused == [("c1", "bad")] and rig.peers == [] and rig.relay.sent == []
    assert rig.events.entries == [("tamper", {"what": "knock", "count": 1})]
    await rig.relay.deliver("c2", "knock", "not json at all")
    assert rig.relay.refused[-1] == ("c2", "bad") and rig.peers == []


async def test_tampering_is_logged_at_most_once_a_minute_with_its_count(rig) -> None:
    """A stranger with the room id can send junk all day: the event log is not flooded."""
    for i in range(10):
        await rig.relay.deliver(f"c{i}", "knock", "junk")
    assert rig.events.entries == [("tamper", {"what": "knock", "count": 1})]
    assert len(rig.relay.refused) == 10, "each is still refused"
    rig.gate._tampers._since -= TamperLog.WINDOW  # a minute later
    await rig.relay.deliver("c10", "knock", "junk")
    assert rig.events.entries[-1] == ("tamper", {"what": "knock", "count": 10})


async def test_a_replayed_knock_is_refused_and_recorded_as_tampering(rig) -> None:
    wire = rig.viewer().knock()
    await rig.relay.deliver("c1", "knock", wire)
    await rig.relay.deliver("c9", "knock", wire)  # the same bytes from someone else
    assert rig.relay.refused == [("c9", "bad")]
    assert ("tamper", {"what": "replayed knock", "count": 1}) in rig.events.entries
    assert len(rig.peers) == 1


async def test_a_second_phone_is_told_taken_and_the_seat_holder_can_come_back(rig) -> None:
    first = rig.viewer()
    await rig.relay.deliver("c1", "knock", first.knock())
    await rig.relay.deliver("c2", "knock", rig.viewer("Other").knock())
    assert rig.relay.refused == [("c2", "taken")] and len(rig.peers) == 1
    assert ("refused", {"reason": "taken"}) not in rig.events.entries, "the core records it"
    # the same phone (same seat key) knocks again after a reload: a new attempt, same seat
    again = rig.viewer(seat_key=first.seat_key)
    await rig.relay.deliver("c3", "knock", again.knock())
    assert len(rig.peers) == 2 and rig.peers[0].released, "the old attempt's peer is given back"
    assert rig.relay.sent[-1][0] == "c3" and rig.session.viewer.client == "c3"


async def test_a_tampered_offer_drops_the_attempt_and_its_peer(rig) -> None:
    viewer = rig.viewer()
    await rig.relay.deliver("c1", "knock", viewer.knock())
    viewer.open_reply(rig.relay.sent[0][1])
    await rig.relay.deliver("c1", "message", flip(viewer.offer(fingerprint_sdp(b"\x01" * 32))))
    assert rig.relay.refused == [("c1", "bad")] and rig.peers[0].released
    assert rig.answered == [] and ("tamper", {"what": "message", "count": 1}) in rig.events.entries
    assert rig.peers[0].offers == [], "nothing of a tampered offer reached the peer"


async def test_messages_from_a_stale_connection_are_ignored_and_bye_is_heard(rig) -> None:
    viewer = rig.viewer()
    await rig.relay.deliver("c1", "knock", viewer.knock())
    viewer.open_reply(rig.relay.sent[0][1])
    await rig.relay.deliver("c-old", "message", viewer.seal({"type": "bye"}))
    assert rig.byes == 0 and rig.relay.refused == []
    await rig.relay.deliver("c1", "message", viewer.seal({"type": "bye"}))
    assert rig.byes == 1


async def test_a_sealed_leave_gives_the_seat_up_and_drops_the_attempt(rig) -> None:
    viewer = rig.viewer()
    await rig.relay.deliver("c1", "knock", viewer.knock())
    viewer.open_reply(rig.relay.sent[0][1])
    await rig.relay.deliver("c-old", "message", viewer.seal({"type": "leave"}))
    assert rig.leaves == 0, "only the seat's current connection may give it up"
    await rig.relay.deliver("c1", "message", viewer.seal({"type": "leave"}))
    assert rig.leaves == 1 and rig.peers[0].released


async def test_closing_tells_the_seated_viewer_it_ended(rig) -> None:
    viewer = rig.viewer()
    await rig.relay.deliver("c1", "knock", viewer.knock())
    viewer.open_reply(rig.relay.sent[0][1])
    await rig.gate.close(rig.session, "expired")
    with pytest.raises(seal.Ended, match="expired"):
        viewer.open_answer(rig.relay.sent[-1][1])
    await rig.gate.open(rig.session)  # the fixture closes it again


async def test_a_failing_relay_is_logged_without_the_room_and_the_gate_goes_on(
    rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing the relay fails at is swallowed silently (issue 15, item 5): each failure is a
    log line naming the exception's type, never the room or the phone's handle."""
    viewer = rig.viewer()
    await rig.relay.deliver("c1", "knock", viewer.knock())

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError(f"the relay said no about room {rig.session.room}")

    rig.relay.refuse = broken
    rig.relay.send = broken
    await rig.relay.deliver("c2", "knock", "junk")  # tampering: refused as "bad"
    await rig.gate.refuse(rig.session, rig.session.viewer)
    assert rig.peers[0].released, "the attempt is dropped even so"
    lines = [r.getMessage() for r in caplog.records if r.name == "appliance.signalling.gate"]
    assert any("turn a knock away: ConnectionError" in line for line in lines)
    assert any("drop a phone: ConnectionError" in line for line in lines)
    assert any("its session is over: ConnectionError" in line for line in lines)
    assert rig.session.room not in caplog.text and "c1" not in " ".join(lines)


async def test_releasing_tells_the_phone_released_not_refused(rig) -> None:
    """The staff let another phone in: the seat's holder hears "released" (sealed, and from
    the relay), is dropped, and is not banned (issue 15, item 4)."""
    viewer = rig.viewer()
    await rig.relay.deliver("c1", "knock", viewer.knock())
    viewer.open_reply(rig.relay.sent[0][1])
    await rig.gate.release(rig.session, rig.session.viewer)
    with pytest.raises(seal.Ended, match="released"):
        viewer.open_answer(rig.relay.sent[-1][1])
    assert rig.relay.refused == [("c1", "released")] and rig.peers[0].released


async def test_closing_takes_the_session_first_so_the_next_one_is_not_closed_with_it(rig) -> None:
    """The core closes a room beside its loop and may open the next session meanwhile."""
    old = rig.session
    closing = asyncio.ensure_future(rig.gate.close(old, "page"))
    await asyncio.sleep(0)  # it has taken the old session's state
    rig.session = Session.new(rig.identity.key_hash, 30)
    await rig.gate.open(rig.session)
    await closing
    await rig.relay.deliver("c1", "knock", rig.viewer().knock())
    assert len(rig.peers) == 1, "the new session still answers knocks"
