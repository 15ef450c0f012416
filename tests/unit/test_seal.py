"""The Python seal against the shared vectors, and every refusal the protocol demands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.crypto import BoxIdentity
from appliance.session import seal
from appliance.session.seal import SealError

V = json.loads((Path(__file__).parents[1] / "vectors" / "seal-v1.json").read_text())
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
    assert viewer.seal({"type": "bye"}) == V["messages"]["bye"]
    assert viewer.open(V["messages"]["end"]) == {"type": "end", "reason": "ended"}
    second = seal.ViewerHandshake(
        room, secret, box_hash, private("seat_private_pkcs8"), IN["name_2"], u(IN["salt_2"])
    )
    assert second.knock() == V["messages"]["knock_2"]


def test_the_box_side_reproduces_the_vectors_but_its_signature() -> None:
    room, secret, box_hash = IN["room"], u(IN["secret"]), u(IN["box_key_hash"])
    identity = BoxIdentity(private("box_private_pkcs8"))
    assert seal.b64u(identity.public_point) == IN["box_public"]
    knock = seal.open_knock(room, secret, box_hash, V["messages"]["knock"])
    assert knock == seal.Knock(u(IN["salt"]), u(IN["seat_public"]), "Sam")
    assert seal.open_knock(room, secret, box_hash, V["messages"]["knock_2"]).name == IN["name_2"]
    box = seal.BoxHandshake(
        room,
        secret,
        identity,
        knock,
        u(IN["fp_box"]),
        eph_key=private("eph_private_pkcs8"),
        commit_nonce=u(IN["commit_nonce"]),
    )
    reply = box.reply(IN["ice_servers"], IN["expires"])
    expected = V["messages"]["reply"]
    assert {k: reply[k] for k in ("v", "box", "eph", "ct")} == {
        k: expected[k] for k in ("v", "box", "eph", "ct")
    }
    assert reply["sig"] != expected["sig"], "ECDSA is randomised"
    for wire in (reply, expected):  # both signatures verify
        viewer = seal.ViewerHandshake(
            room, secret, box_hash, private("seat_private_pkcs8"), "Sam", u(IN["salt"])
        )
        viewer.open_reply(wire)
    assert box.open(V["messages"]["offer"]) == {"type": "offer", "sdp": IN["offer_sdp"]}
    assert box.answer(IN["answer_sdp"]) == V["messages"]["answer"]
    assert box.code(u(IN["fp_viewer"])) == V["derived"]["code"]
    assert box.open(V["messages"]["bye"]) == {"type": "bye"}
    assert box.seal({"type": "end", "reason": "ended"}) == V["messages"]["end"]
    assert (
        seal.b64u(seal.commitment(u(IN["fp_box"]), u(IN["commit_nonce"])))
        == (V["derived"]["commit"])
    )
    fp = seal.sdp_fingerprint
    assert (fp(IN["offer_sdp"]), fp(IN["answer_sdp"])) == (u(IN["fp_viewer"]), u(IN["fp_box"]))


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
        seal.sdp_fingerprint(two)
    with pytest.raises(SealError):
        seal.sdp_fingerprint("v=0\r\n")


def sealed_knock(room: str, secret: bytes, key_hash: bytes, body: object, salt: bytes) -> dict:
    """A knock with any body at all, sealed with the right key (to test the shape checks)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = seal.knock_key(secret, salt, room, key_hash)
    aad = (seal.LABEL + " knock" + room).encode()
    ct = AESGCM(key).encrypt(bytes(12), json.dumps(body).encode(), aad)
    return {"v": 1, "salt": seal.b64u(salt), "ct": seal.b64u(ct)}


def test_the_box_refuses_a_well_sealed_knock_of_the_wrong_shape(tmp_path) -> None:
    identity, room, secret, viewer, _ = handshake(tmp_path)
    seat = seal.b64u(viewer.seat_pub)
    off_curve = seal.b64u(b"\x04" + bytes(64))
    compressed = seal.b64u(viewer.seat_pub[:33])
    bodies = [
        {"type": "knock"},
        {"type": "hello", "seat": seat},
        {"type": "knock", "seat": off_curve},
        {"type": "knock", "seat": compressed},
        {"type": "knock", "seat": seat, "extra": 1},
        {"type": "knock", "seat": seat, "name": 7},
        {"type": "knock", "seat": seat, "name": "x" * 41},
        {"type": "knock", "seat": seat, "name": "Sam\n<b>"},
        {"type": "knock", "seat": seat, "name": "\ud800"},
        ["knock", seat],
    ]
    for n, body in enumerate(bodies):
        with pytest.raises(SealError):
            seal.open_knock(
                room,
                secret,
                identity.key_hash,
                sealed_knock(room, secret, identity.key_hash, body, bytes([n]) * 32),
            )
    for wire in (
        {**viewer.knock(), "v": True},
        {**viewer.knock(), "v": 1.0},
        {**viewer.knock(), "salt": seal.b64u(bytes(16))},
        {**viewer.knock(), "ct": "not base64!"},
        {**viewer.knock(), "ct": "A"},
    ):
        with pytest.raises(SealError):
            seal.open_knock(room, secret, identity.key_hash, wire)
    ok = {"type": "knock", "seat": seat, "name": "  Léa 👶 "}
    knock = seal.open_knock(
        room,
        secret,
        identity.key_hash,
        sealed_knock(room, secret, identity.key_hash, ok, bytes(32)),
    )
    assert knock.name == "Léa 👶" and "Léa" not in repr(knock), "names stay out of reprs"


def test_the_viewer_sends_a_clean_name() -> None:
    assert seal.sanitize_name("  Sam\u0000\n  ") == "Sam"
    assert seal.sanitize_name("é" * 50) == "é" * 40
    assert seal.sanitize_name(" \t ") is None and seal.sanitize_name(None) is None
    assert seal.clean_name(seal.sanitize_name("x\ud83d" + "y" * 60)) == "x" + "y" * 39


def test_a_replayed_knock_is_refused_by_its_salt_and_the_memory_is_bounded() -> None:
    seen = seal.SeenSalts(capacity=3)
    assert seen.add(b"a") and not seen.add(b"a"), "a replay"
    assert seen.add(b"b") and seen.add(b"c")
    assert seen.add(b"d"), "full: the oldest is forgotten, a new knock is never refused"
    assert len(seen) == 3 and b"a" not in seen and not seen.add(b"d")
    seen.clear()
    assert seen.add(b"a")


def test_a_reply_for_another_knock_or_box_is_refused(tmp_path) -> None:
    identity, room, secret, viewer, box = handshake(tmp_path)
    reply = box.reply([], 2_000_000_000)
    with pytest.raises(RuntimeError):
        box.reply([], 2_000_000_000)  # one reply per handshake
    # the same phone knocking again (new salt): the old reply's transcript does not match
    again = seal.ViewerHandshake(room, secret, identity.key_hash, seat_key=viewer.seat_key)
    again.knock()
    with pytest.raises(SealError, match="signature"):
        again.open_reply(reply)
    # a link naming another box refuses this one's reply
    other = seal.ViewerHandshake(
        room, secret, bytes(32), seat_key=viewer.seat_key, salt=viewer.salt
    )
    with pytest.raises(SealError, match="not from the box"):
        other.open_reply(reply)
    # a reply whose eph is not a point
    with pytest.raises(SealError):
        viewer.open_reply({**reply, "eph": seal.b64u(b"\x04" + bytes(64))})
    bad: Any  # not all dicts: open_reply must refuse any JSON value
    for bad in ({**reply, "v": True}, {**reply, "extra": 1}, [], None):
        with pytest.raises(SealError):
            viewer.open_reply(bad)
    viewer.open_reply(reply)
    with pytest.raises(SealError, match="second"):
        viewer.open_reply(reply)


def test_sealed_messages_do_not_cross_rooms_or_directions(tmp_path) -> None:
    _, room, secret, viewer, box = handshake(tmp_path)
    viewer.open_reply(box.reply([], 2_000_000_000))
    offer = viewer.offer(sdp(bytes(32)))
    # the same keys in another room: the room is in the associated data
    elsewhere = seal.Channel(seal.new_room_id(), box.channel._keys, seal.B2V)
    with pytest.raises(SealError):
        elsewhere.open(offer)
    mine = viewer.seal({"type": "bye"})
    with pytest.raises(SealError):
        viewer.open(mine)  # reflected back to its sender
    for bad in (
        {**offer, "seq": True},
        {**offer, "seq": -1},
        {**offer, "seq": 2**53},
        {**offer, "v": 2},
    ):
        with pytest.raises(SealError):
            box.open(bad)
    assert box.open(offer)["type"] == "offer"


def test_the_viewer_learns_of_an_end_sent_instead_of_the_answer(tmp_path) -> None:
    _, _, _, viewer, box = handshake(tmp_path)
    viewer.open_reply(box.reply([], 2_000_000_000))
    box.open(viewer.offer(sdp(bytes(32))))
    with pytest.raises(seal.Ended) as ended:
        viewer.open_answer(box.seal({"type": "end", "reason": "refused"}))
    assert ended.value.reason == "refused"
    for body in ({"type": "end", "reason": "because"}, {"type": "end"}, {"type": "other"}):
        with pytest.raises(SealError):
            viewer.open_answer(box.seal(body))


def test_forgotten_handshakes_can_neither_seal_nor_open(tmp_path) -> None:
    _, _, _, viewer, box = handshake(tmp_path)
    viewer.open_reply(box.reply([], 2_000_000_000))
    offer = viewer.offer(sdp(bytes(32)))
    box.forget()
    viewer.forget()
    for call in (lambda: box.open(offer), lambda: box.seal({}), lambda: viewer.seal({})):
        with pytest.raises(SealError, match="closed"):
            call()


def test_fingerprints_in_either_case_once_or_repeated() -> None:
    fp = bytes(range(32))
    line = "a=fingerprint:sha-256 " + ":".join(f"{b:02x}" for b in fp)
    assert seal.sdp_fingerprint("v=0\r\n" + line + "\r\n") == fp
    upper = "a=fingerprint:SHA-256 " + ":".join(f"{b:02X}" for b in fp)
    assert seal.sdp_fingerprint(f"v=0\r\n{upper}\r\nm=video\r\n{line}\r\n") == fp
    sha1 = "a=fingerprint:sha-1 " + ":".join(["AA"] * 20)
    assert seal.sdp_fingerprint(f"{sha1}\r\n{line}\r\n") == fp, "other algorithms ignored"
    for bad in (line[:-3], line + ":00", line.replace(":", "", 1) + "0", line.replace("a=", "b=")):
        with pytest.raises(SealError):
            seal.sdp_fingerprint(bad + "\r\n")


#: Unicode category Cf: bidi embeddings, overrides, isolates and marks, zero-width characters,
#: the byte order mark, the soft hyphen.
FORMAT_CHARACTERS = (
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    "\u200b\u200c\u200d\u2060\ufeff\u00ad"
)


def test_format_characters_never_reach_the_staff_page(tmp_path) -> None:
    """A bidi override (U+202E) before "123456" could show it as a fake code: dropped on both
    sides."""
    assert seal.sanitize_name("\u202e123456") == "123456"
    assert seal.sanitize_name("Sam" + FORMAT_CHARACTERS) == "Sam"
    assert seal.sanitize_name(FORMAT_CHARACTERS + " ") is None
    # the box drops them too, from a knock sent by anything but the viewer page
    assert seal.clean_name("\u202e123456") == "123456"
    assert seal.clean_name(f"{FORMAT_CHARACTERS} Léa\u2066 ") == "Léa"
    assert seal.clean_name(FORMAT_CHARACTERS) is None

    identity, room, secret, viewer, _ = handshake(tmp_path)
    body = {"type": "knock", "seat": seal.b64u(viewer.seat_pub), "name": "\u202e123456"}
    wire = sealed_knock(room, secret, identity.key_hash, body, bytes(range(32)))
    assert seal.open_knock(room, secret, identity.key_hash, wire).name == "123456"
