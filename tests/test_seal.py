"""The Python seal against the shared vectors, and every refusal the protocol demands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.crypto import BoxIdentity
from appliance.session import seal
from appliance.session.seal import SealError

V = json.loads((Path(__file__).parent / "vectors" / "seal-v1.json").read_text())
IN = V["inputs"]
u = seal.unb64u


def private(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_der_private_key(u(IN[name]), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def flip(wire: dict, field: str = "ct") -> dict:
    raw = bytearray(u(wire[field]))
    raw[len(raw) // 2] ^= 1
    return {**wire, field: seal.b64u(bytes(raw))}


def test_python_reproduces_the_vectors() -> None:
    room, secret, salt = IN["room"], u(IN["secret"]), u(IN["salt"])
    box_hash = u(IN["box_key_hash"])
    d = V["derived"]
    assert seal.b64u(seal.knock_key(secret, salt, room, box_hash)) == d["k_knock"]
    th = seal.transcript(room, box_hash, salt, u(IN["seat_public"]), u(IN["eph_public"]))
    assert seal.b64u(th) == d["transcript"]
    keys = seal.direction_keys(secret, u(d["z"]), th)
    assert (seal.b64u(keys["b2v"]), seal.b64u(keys["v2b"])) == (d["k_b2v"], d["k_v2b"])
    viewer = seal.ViewerHandshake(
        room, secret, box_hash, seat_key=private("seat_private_pkcs8"), name=IN["name"], salt=salt
    )
    assert viewer.knock() == V["messages"]["knock"]
    reply = viewer.open_reply(V["messages"]["reply"])  # the fixed signature verifies
    assert reply.expires == IN["expires"] and reply.ice_servers == IN["ice_servers"]
    assert viewer.offer(IN["offer_sdp"]) == V["messages"]["offer"]
    assert viewer.open_answer(V["messages"]["answer"]) == IN["answer_sdp"]
    assert viewer.code(u(IN["fp_viewer"])) == d["code"]
    # and the box's side gives the same bytes (but the randomised signature)
    knock = seal.open_knock(room, secret, box_hash, V["messages"]["knock"])
    assert knock.name == "Sam" and knock.seat_pub == u(IN["seat_public"])


def handshake(tmp_path: Path):
    identity = BoxIdentity.load_or_create(tmp_path)
    room, secret = seal.new_room_id(), seal.new_secret()
    viewer = seal.ViewerHandshake(room, secret, identity.key_hash, name="Sam")
    knock = seal.open_knock(room, secret, identity.key_hash, viewer.knock())
    box = seal.BoxHandshake(room, secret, identity, knock, bytes([1] * 32))
    return identity, room, secret, viewer, box


def sdp(fp: bytes) -> str:
    return "v=0\r\na=fingerprint:sha-256 " + ":".join(f"{b:02X}" for b in fp) + "\r\n"


def test_a_full_exchange_agrees_on_the_code(tmp_path) -> None:
    _, _, _, viewer, box = handshake(tmp_path)
    viewer.open_reply(box.reply([], 2_000_000_000))
    assert box.open(viewer.offer(sdp(bytes(32))))["sdp"] == sdp(bytes(32))
    viewer.open_answer(box.answer(sdp(bytes([1] * 32))))
    assert viewer.code(bytes(32)) == box.code(bytes(32))
    assert len(viewer.code(bytes(32))) == 6 and viewer.code(bytes(32)).isdigit()
    assert viewer.code(bytes(32)) != box.code(bytes([2] * 32)), "the code covers the fingerprints"


def test_the_box_refuses_tampered_or_foreign_knocks(tmp_path) -> None:
    identity, room, secret, viewer, _ = handshake(tmp_path)
    wire = viewer.knock()
    for bad in (flip(wire), flip(wire, "salt"), {**wire, "v": 2}, {**wire, "extra": 1}, "x", {}):
        with pytest.raises(SealError):
            seal.open_knock(room, secret, identity.key_hash, bad)
    with pytest.raises(SealError):
        seal.open_knock(seal.new_room_id(), secret, identity.key_hash, wire)  # another room
    with pytest.raises(SealError):
        seal.open_knock(room, seal.new_secret(), identity.key_hash, wire)  # another link


def test_the_viewer_refuses_a_forged_or_altered_reply(tmp_path) -> None:
    identity, room, secret, viewer, box = handshake(tmp_path)
    reply = box.reply([], 2_000_000_000)
    for field in ("ct", "sig", "eph", "box"):
        with pytest.raises(SealError):
            viewer.open_reply(flip(reply, field))
    impostor = BoxIdentity.load_or_create(tmp_path / "impostor")
    knock = seal.open_knock(room, secret, identity.key_hash, viewer.last_knock)
    forged = seal.BoxHandshake(room, secret, impostor, knock, bytes(32)).reply([], 1)
    with pytest.raises(SealError, match="not from the box"):
        viewer.open_reply(forged)
    # the impostor claiming the real box's public key cannot sign for it
    with pytest.raises(SealError, match="signature"):
        viewer.open_reply({**forged, "box": seal.b64u(identity.public_point)})
    viewer.open_reply(reply)


def test_replayed_reordered_and_misdirected_messages_are_refused(tmp_path) -> None:
    _, _, _, viewer, box = handshake(tmp_path)
    viewer.open_reply(box.reply([], 2_000_000_000))
    first, second = viewer.seal({"n": 1}), viewer.seal({"n": 2})
    assert box.open(second) == {"n": 2}
    with pytest.raises(SealError, match="replayed or reordered"):
        box.open(first)  # older
    with pytest.raises(SealError, match="replayed or reordered"):
        box.open(second)  # again
    mine = box.seal({"type": "end"})
    with pytest.raises(SealError):
        box.open({**mine, "seq": 99})  # the box's own message sent back: wrong direction
    with pytest.raises(SealError):
        box.open(flip(viewer.seal({"n": 3})))


def test_a_rewritten_fingerprint_in_the_answer_breaks_the_commitment(tmp_path) -> None:
    _, _, _, viewer, box = handshake(tmp_path)
    viewer.open_reply(box.reply([], 2_000_000_000))
    with pytest.raises(SealError, match="committed"):
        box.answer(sdp(bytes([9] * 32)))  # the box itself refuses to answer with another cert
    # a forger with the keys of this channel but another certificate is caught by the viewer
    other = box.channel.seal(
        {"type": "answer", "sdp": sdp(bytes([9] * 32)), "commit_nonce": seal.b64u(bytes(32))}
    )
    with pytest.raises(SealError, match="committed"):
        viewer.open_answer(other)


def test_links_and_fingerprints_parse_strictly() -> None:
    secret, key_hash = bytes(range(32)), bytes(range(32, 64))
    link = seal.link("https://relay.example", "Room", secret, key_hash)
    assert link.startswith("https://relay.example/v/Room#")
    assert seal.parse_fragment(link.split("#")[1]) == (secret, key_hash)
    for bad in ("", "abc", "a.b.c", seal.b64u(secret) + "." + seal.b64u(b"short")):
        with pytest.raises(SealError):
            seal.parse_fragment(bad)
    two = sdp(bytes(32)) + sdp(bytes([1] * 32))
    with pytest.raises(SealError):
        seal.dtls_fingerprint(two)
    with pytest.raises(SealError):
        seal.dtls_fingerprint("v=0\r\n")
