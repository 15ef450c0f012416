"""The two sides of the handshake (docs/protocol.md steps b-d) and the sealed channel after it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .wire import (
    B2V,
    END_REASONS,
    LABEL,
    V2B,
    VERSION,
    Ended,
    Knock,
    SealError,
    Signer,
    _is_int,
    _json,
    _len8,
    _parse,
    _reply_signed_data,
    _u64,
    _utf8,
    b64u,
    commitment,
    der_signature,
    direction_keys,
    knock_key,
    load_point,
    point,
    raw_signature,
    sdp_fingerprint,
    seal_knock,
    transcript,
    unb64u,
    verification_code,
)


class Channel:
    """Both directions of a handshake's sealed channel, with their counters."""

    def __init__(self, room: str, keys: dict[str, bytes], mine: str) -> None:
        self._room = _utf8(room)
        self._keys = keys
        self._mine = mine
        self._theirs = V2B if mine == B2V else B2V
        self._next_out = 0
        self._last_in = -1

    def _aad(self, direction: str, seq: int) -> bytes:
        return _utf8(LABEL) + _len8(self._room) + self._room + _utf8(direction) + _u64(seq)

    def _key(self, direction: str) -> bytes:
        key = self._keys.get(direction)
        if key is None:
            raise SealError("the channel was closed")
        return key

    def seal_bytes(self, body: dict[str, Any]) -> tuple[int, bytes]:
        key = self._key(self._mine)
        seq = self._next_out
        self._next_out += 1
        nonce = bytes(4) + _u64(seq)
        return seq, AESGCM(key).encrypt(nonce, _json(body), self._aad(self._mine, seq))

    def seal(self, body: dict[str, Any]) -> dict[str, Any]:
        seq, ct = self.seal_bytes(body)
        return {"v": VERSION, "seq": seq, "ct": b64u(ct)}

    def open(self, wire: Any) -> dict[str, Any]:
        if not isinstance(wire, dict) or set(wire) != {"v", "seq", "ct"} or wire["v"] != VERSION:
            raise SealError("not a sealed message")
        seq = wire["seq"]
        if not _is_int(wire["v"]) or not _is_int(seq) or not 0 <= seq < 2**53:
            raise SealError("bad sequence number")
        if seq <= self._last_in:
            raise SealError("a replayed or reordered message")
        try:
            plain = AESGCM(self._key(self._theirs)).decrypt(
                bytes(4) + _u64(seq), unb64u(wire["ct"]), self._aad(self._theirs, seq)
            )
        except InvalidTag:
            raise SealError("the message does not open") from None
        self._last_in = seq
        return _parse(plain)

    def forget(self) -> None:
        self._keys = {}


# -- the box's side -------------------------------------------------------------------------------


class BoxHandshake:
    """Steps (b) and (d) for one accepted knock, and the sealed channel after them."""

    def __init__(
        self,
        room: str,
        secret: bytes,
        identity: Signer,
        knock: Knock,
        fp_box: bytes,
        *,
        eph_key: ec.EllipticCurvePrivateKey | None = None,
        commit_nonce: bytes | None = None,
    ) -> None:
        """``eph_key`` and ``commit_nonce`` are fresh randoms; only the test vectors fix them."""
        if len(fp_box) != 32:
            raise ValueError("fp_box is a raw SHA-256 fingerprint")
        self._room = room
        self._secret = secret
        self._identity = identity
        self._box_key_hash = hashlib.sha256(identity.public_point).digest()
        self._fp_box = fp_box
        eph = eph_key or ec.generate_private_key(ec.SECP256R1())
        self._eph_pub = point(eph.public_key())
        self._z = eph.exchange(ec.ECDH(), load_point(knock.seat_pub))
        self._th = transcript(room, self._box_key_hash, knock.salt, knock.seat_pub, self._eph_pub)
        self.channel = Channel(room, direction_keys(secret, self._z, self._th), B2V)
        self._nonce = commit_nonce or secrets.token_bytes(32)
        self._replied = False

    def reply(self, ice_servers: list[dict[str, Any]], expires: int) -> dict[str, Any]:
        """Step (b): the signed reply, sealed as b2v 0. Once per handshake."""
        if self._replied:
            raise RuntimeError("a handshake replies once")
        self._replied = True
        body = {
            "type": "reply",
            "commit": b64u(commitment(self._fp_box, self._nonce)),
            "expires": int(expires),
            "ice_servers": ice_servers,
        }
        _, ct = self.channel.seal_bytes(body)
        sig = raw_signature_from(self._identity, _reply_signed_data(self._th, ct))
        return {
            "v": VERSION,
            "box": b64u(self._identity.public_point),
            "eph": b64u(self._eph_pub),
            "sig": b64u(sig),
            "ct": b64u(ct),
        }

    def open(self, wire: Any) -> dict[str, Any]:
        """The viewer's next sealed message (v2b, in order): the offer, then ``bye``."""
        return self.channel.open(wire)

    def seal(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.channel.seal(body)

    def answer(self, sdp: str) -> dict[str, Any]:
        """Step (d): the answer, with the nonce that opens the reply's commitment."""
        if sdp_fingerprint(sdp) != self._fp_box:
            raise SealError("the answer's fingerprint is not the committed one")
        return self.channel.seal({"type": "answer", "sdp": sdp, "commit_nonce": b64u(self._nonce)})

    def code(self, fp_viewer: bytes) -> str:
        return verification_code(self._secret, self._z, self._th, self._fp_box, fp_viewer)

    def forget(self) -> None:
        self.channel.forget()
        self._secret = self._z = self._nonce = b""


def raw_signature_from(identity: Signer, data: bytes) -> bytes:
    sig = identity.sign(data)
    return sig if len(sig) == 64 else raw_signature(sig)


# -- the viewer's side (the tests' Python viewer; the phone runs seal.js) -------------------------


@dataclass(frozen=True)
class Reply:
    ice_servers: list[dict[str, Any]]
    expires: int


class ViewerHandshake:
    """Steps (a) and (c), checking (b) and (d), as the viewer page does.

    ``seat_key`` is the seat (kept for the session, so a reconnect keeps its place); ``salt`` is
    fresh per knock, fixed only by the test vectors: make a new handshake for every knock.
    """

    def __init__(
        self,
        room: str,
        secret: bytes,
        box_key_hash: bytes,
        seat_key: ec.EllipticCurvePrivateKey | None = None,
        name: str | None = None,
        salt: bytes | None = None,
    ) -> None:
        self.room = room
        self._secret = secret
        self._box_key_hash = box_key_hash
        self.seat_key = seat_key or ec.generate_private_key(ec.SECP256R1())
        self.seat_pub = point(self.seat_key.public_key())
        self.name = name
        self.salt = salt or secrets.token_bytes(32)
        self.channel: Channel | None = None
        self.last_knock: dict[str, Any] | None = None
        self._commit = b""
        self._z = self._th = b""
        self._fp_box = b""

    def knock(self) -> dict[str, Any]:
        """Step (a)."""
        self.last_knock = seal_knock(
            self.room, self._secret, self._box_key_hash, self.salt, self.seat_pub, self.name
        )
        return self.last_knock

    def open_reply(self, wire: Any) -> Reply:
        """Check (b): the box this link names, its signature over the transcript, the seal."""
        if (
            not isinstance(wire, dict)
            or set(wire) != {"v", "box", "eph", "sig", "ct"}
            or wire["v"] != VERSION
            or not _is_int(wire["v"])
        ):
            raise SealError("not a reply")
        if self.channel is not None:
            raise SealError("a second reply")
        box_pub = unb64u(wire["box"])
        if not hmac.compare_digest(hashlib.sha256(box_pub).digest(), self._box_key_hash):
            raise SealError("the reply is not from the box this link names")
        eph_pub = unb64u(wire["eph"])
        eph = load_point(eph_pub)
        ct = unb64u(wire["ct"])
        th = transcript(self.room, self._box_key_hash, self.salt, self.seat_pub, eph_pub)
        try:
            load_point(box_pub).verify(
                der_signature(unb64u(wire["sig"])),
                _reply_signed_data(th, ct),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            raise SealError("the reply's signature does not verify") from None
        z = self.seat_key.exchange(ec.ECDH(), eph)
        channel = Channel(self.room, direction_keys(self._secret, z, th), V2B)
        body = channel.open({"v": VERSION, "seq": 0, "ct": wire["ct"]})
        commit = unb64u(body.get("commit"))
        servers = body.get("ice_servers")
        expires: Any = body.get("expires")
        if (
            set(body) != {"type", "commit", "expires", "ice_servers"}
            or body["type"] != "reply"
            or len(commit) != 32
            or not _is_int(expires)
            or not isinstance(servers, list)
            or not all(isinstance(s, dict) for s in servers)
        ):
            raise SealError("not a reply")
        self.channel, self._z, self._th, self._commit = channel, z, th, commit
        return Reply(servers, expires)

    def _channel(self) -> Channel:
        if self.channel is None:
            raise SealError("no reply yet")
        return self.channel

    def offer(self, sdp: str) -> dict[str, Any]:
        """Step (c): the offer, sealed as v2b 0."""
        return self._channel().seal({"type": "offer", "sdp": sdp})

    def open_answer(self, wire: Any) -> str:
        """Check (d) and return the answer's SDP; :class:`Ended` if the box sent ``end``."""
        body = self._channel().open(wire)
        if body.get("type") == "end":
            raise Ended(_end_reason(body))
        sdp = body.get("sdp")
        if body.get("type") != "answer" or not isinstance(sdp, str):
            raise SealError("not an answer")
        fp_box = sdp_fingerprint(sdp)
        nonce = unb64u(body.get("commit_nonce"))
        if not hmac.compare_digest(commitment(fp_box, nonce), self._commit):
            raise SealError("the answer's fingerprint is not the one the box committed to")
        self._fp_box = fp_box
        return sdp

    def code(self, fp_viewer: bytes) -> str:
        if not self._fp_box:
            raise SealError("no answer yet")
        return verification_code(self._secret, self._z, self._th, self._fp_box, fp_viewer)

    def seal(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._channel().seal(body)

    def open(self, wire: Any) -> dict[str, Any]:
        return self._channel().open(wire)

    def forget(self) -> None:
        if self.channel is not None:
            self.channel.forget()
        self._secret = self._z = self._commit = b""

    def derived_keys(self) -> dict[str, str]:
        """Every key derived from the secret, in the encodings a leak would show (the tests
        search logs for them)."""
        keys = {"knock": knock_key(self._secret, self.salt, self.room, self._box_key_hash)}
        if self.channel is not None:
            keys.update(direction_keys(self._secret, self._z, self._th))
        out: dict[str, str] = {}
        for name, key in keys.items():
            out[f"{name} (base64url)"] = b64u(key)
            out[f"{name} (hex)"] = key.hex()
        return out


def _end_reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if set(body) != {"type", "reason"} or reason not in END_REASONS:
        raise SealError("not an end")
    return str(reason)
