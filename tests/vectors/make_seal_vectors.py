"""Makes tests/vectors/seal-v1.json: fixed inputs, and what docs/protocol.md derives from them.

Run it (``python -m tests.vectors.make_seal_vectors``) only when the protocol changes, and then
bump its version: both implementations must reproduce these bytes. ECDSA signatures are
randomised, so the vector holds one valid signature to verify, not to reproduce; every other
value is fixed by the inputs. The keys are small fixed scalars: test keys, never used anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.crypto import BoxIdentity
from appliance.session import seal


def key(n: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(n, ec.SECP256R1())


def pkcs8(k: ec.EllipticCurvePrivateKey) -> str:
    return seal.b64u(
        k.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def fingerprint_line(fp: bytes) -> str:
    return "a=fingerprint:sha-256 " + ":".join(f"{b:02X}" for b in fp)


def main() -> None:
    room = "Q2xpbmljUm9vbUlkMTIzNA"
    secret = bytes(range(32))
    salt = bytes(range(100, 132))
    identity_key = key(0x1D3471)
    identity = BoxIdentity(identity_key)
    seat, eph = key(0x5EA7), key(0xE9E)
    fp_box, fp_viewer = bytes([0xB0] * 32), bytes([0x71] * 32)
    nonce = bytes([0x4E] * 32)
    offer_sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n" + fingerprint_line(fp_viewer) + "\r\n"
    answer_sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n" + fingerprint_line(fp_box) + "\r\n"
    ice = [{"urls": ["turn:turn.example.org:3478"], "username": "1:ab", "credential": "c"}]
    # a second knock, with another salt, for a name outside ASCII (UTF-8 in the JSON)
    salt2, name2 = bytes(range(200, 232)), "Léa-Zoë 👶"

    viewer = seal.ViewerHandshake(
        room, secret, identity.key_hash, seat_key=seat, name="Sam", salt=salt
    )
    knock = viewer.knock()
    opened = seal.open_knock(room, secret, identity.key_hash, knock)
    box = seal.BoxHandshake(room, secret, identity, opened, fp_box, eph_key=eph, commit_nonce=nonce)
    reply = box.reply(ice, 1_900_000_000)
    viewer.open_reply(reply)
    offer = viewer.offer(offer_sdp)
    box.open(offer)
    answer = box.answer(answer_sdp)
    viewer.open_answer(answer)
    bye = viewer.seal({"type": "bye"})
    box.open(bye)
    end = box.seal({"type": "end", "reason": "ended"})
    viewer.open(end)
    knock2 = seal.ViewerHandshake(
        room, secret, identity.key_hash, seat_key=seat, name=name2, salt=salt2
    ).knock()
    th = seal.transcript(
        room, identity.key_hash, salt, viewer.seat_pub, seal.point(eph.public_key())
    )
    z = eph.exchange(ec.ECDH(), seat.public_key())
    keys = seal.direction_keys(secret, z, th)
    vectors = {
        "about": "docs/protocol.md, version 1; made by tests/vectors/make_seal_vectors.py",
        "inputs": {
            "room": room,
            "secret": seal.b64u(secret),
            "salt": seal.b64u(salt),
            "name": "Sam",
            "box_public": seal.b64u(identity.public_point),
            "box_key_hash": seal.b64u(identity.key_hash),
            "box_private_pkcs8": pkcs8(identity_key),
            "seat_private_pkcs8": pkcs8(seat),
            "seat_public": seal.b64u(viewer.seat_pub),
            "eph_private_pkcs8": pkcs8(eph),
            "eph_public": seal.b64u(seal.point(eph.public_key())),
            "fp_box": seal.b64u(fp_box),
            "fp_viewer": seal.b64u(fp_viewer),
            "commit_nonce": seal.b64u(nonce),
            "offer_sdp": offer_sdp,
            "answer_sdp": answer_sdp,
            "ice_servers": ice,
            "expires": 1_900_000_000,
            "salt_2": seal.b64u(salt2),
            "name_2": name2,
        },
        "derived": {
            "k_knock": seal.b64u(seal.knock_key(secret, salt, room, identity.key_hash)),
            "z": seal.b64u(z),
            "transcript": seal.b64u(th),
            "k_b2v": seal.b64u(keys["b2v"]),
            "k_v2b": seal.b64u(keys["v2b"]),
            "commit": seal.b64u(seal.commitment(fp_box, nonce)),
            "code": box.code(fp_viewer),
        },
        "messages": {
            "knock": knock,
            "reply": reply,
            "offer": offer,
            "answer": answer,
            "bye": bye,
            "end": end,
            "knock_2": knock2,
        },
    }
    out = Path(__file__).with_name("seal-v1.json")
    out.write_text(json.dumps(vectors, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
