"""The signalling envelope of docs/protocol.md, in Python (the box, and the tests' viewer).

The viewer page implements the same in WebCrypto (``relay/static/viewer/seal.js``); both reproduce
the shared vectors in ``tests/vectors/seal-v1.json``. Every refusal raises :class:`SealError`
(a ``ValueError``) with a short message that holds nothing secret.

- Links: :func:`new_room_id`, :func:`new_secret`, :func:`link`, :func:`parse_fragment`,
  :func:`dtls_fingerprint` (the sha-256 ``a=fingerprint`` of an SDP, raw bytes).
- Box side: :func:`open_knock` → :class:`Knock`; :class:`SeenSalts` refuses a replayed knock;
  :class:`BoxHandshake` (``reply``, ``open``, ``answer``, ``seal``, ``code``, ``forget``).
- Viewer side: :class:`ViewerHandshake` (``knock``, ``open_reply`` → :class:`Reply`, ``offer``,
  ``open_answer``, ``seal``, ``open``, ``code``, ``forget``). ``open_answer`` raises
  :class:`Ended` when the box sent a sealed ``end`` instead of its answer.
- The steps, for the vectors: :func:`knock_key`, :func:`transcript`, :func:`direction_keys`,
  :func:`commitment`, :func:`verification_code`, :class:`Channel`.

Keys and secrets live in memory only. ``forget()`` drops a handshake's references to them; Python
cannot overwrite memory (``bytes`` are immutable, and ``cryptography`` keeps its own copies in
OpenSSL until the objects are freed), so forgetting means: unreachable at once, freed by the
garbage collector, never written to disk, a log or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LABEL = "appliance-seal-v1"
VERSION = 1
MAX_NAME = 40
B2V, V2B = "b2v", "v2b"
END_REASONS = frozenset({"ended", "expired", "refused"})


class SealError(ValueError):
    """A message was refused: tampered, replayed, reordered, forged or malformed."""


class Ended(Exception):
    """The box sent a (valid, sealed) ``end`` where the viewer expected its answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Signer(Protocol):
    """The box's long-term identity (appliance.crypto.BoxIdentity)."""

    @property
    def public_point(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


# -- encodings ------------------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: Any) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise SealError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def _len8(data: bytes) -> bytes:
    if len(data) > 255:
        raise SealError("field too long")
    return bytes([len(data)])


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _json(obj: Any) -> bytes:
    """Compact JSON, keys in the order given, non-ASCII as UTF-8 (what JSON.stringify writes)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _parse(plain: bytes) -> dict[str, Any]:
    def no_constant(name: str) -> None:
        raise ValueError(name)

    try:
        body = json.loads(plain.decode("utf-8"), parse_constant=no_constant)
    except ValueError:
        raise SealError("not JSON") from None
    if not isinstance(body, dict):
        raise SealError("not an object")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def point(key: ec.EllipticCurvePublicKey) -> bytes:
    """A P-256 public key as its 65-byte uncompressed point."""
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def load_point(data: bytes) -> ec.EllipticCurvePublicKey:
    """A 65-byte uncompressed P-256 point, checked to be on the curve."""
    if len(data) != 65 or data[0] != 4:
        raise SealError("not an uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise SealError("not a point on P-256") from None


def raw_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def der_signature(raw: bytes) -> bytes:
    if len(raw) != 64:
        raise SealError("not a raw P-256 signature")
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


# -- links and fingerprints ---------------------------------------------------------------------


def new_room_id() -> str:
    """22 characters of base64url: 16 random bytes."""
    return b64u(secrets.token_bytes(16))


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def link(origin: str, room: str, secret: bytes, box_key_hash: bytes) -> str:
    """The QR code's content: the key material is in the fragment, which never leaves the phone."""
    return f"{origin.rstrip('/')}/v/{room}#{b64u(secret)}.{b64u(box_key_hash)}"


def parse_fragment(fragment: str) -> tuple[bytes, bytes]:
    """(secret, box key hash) from a link's fragment (with or without its ``#``)."""
    parts = fragment.removeprefix("#").split(".")
    if len(parts) != 2:
        raise SealError("not a session link")
    secret, key_hash = unb64u(parts[0]), unb64u(parts[1])
    if len(secret) != 32 or len(key_hash) != 32:
        raise SealError("not a session link")
    return secret, key_hash


_FINGERPRINT = re.compile(
    r"^a=fingerprint:sha-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})[ \t]*\r?$",
    re.MULTILINE | re.IGNORECASE,
)


def dtls_fingerprint(sdp: str) -> bytes:
    """The SHA-256 DTLS fingerprint in ``sdp`` as raw bytes (other algorithms are ignored).
    The same value may be repeated (session and media level); two different ones are refused:
    the code must cover exactly one certificate."""
    found = {bytes.fromhex(m.replace(":", "")) for m in _FINGERPRINT.findall(sdp)}
    if len(found) != 1:
        raise SealError("the description must carry exactly one sha-256 fingerprint")
    return found.pop()


# -- the knock (a) --------------------------------------------------------------------------------


def knock_key(secret: bytes, salt: bytes, room: str, box_key_hash: bytes) -> bytes:
    room_b = _utf8(room)
    info = _utf8(LABEL + " knock") + _len8(room_b) + room_b + box_key_hash
    return _hkdf(secret, salt, info)


def _knock_aad(room: str) -> bytes:
    return _utf8(LABEL + " knock") + _utf8(room)


def clean_name(name: Any) -> str | None:
    """A display name as the protocol allows it: a string of at most 40 characters (code points)
    with no control character and no lone surrogate, anything else refused; format characters
    (bidi overrides and isolates, zero-width ones: they could make it show as a fake code) are
    dropped; blank is no name."""
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise SealError("bad name")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise SealError("bad name")
    return _without_format(name).strip() or None


def sanitize_name(name: str | None) -> str | None:
    """What a viewer sends of the name typed: control characters, lone surrogates and format
    characters dropped, cut to 40 characters, blank is no name (seal.js does the same)."""
    if not name:
        return None
    kept = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cs", "Cf"))
    return kept.strip()[:MAX_NAME].strip() or None


def _without_format(name: str) -> str:
    return "".join(c for c in name if unicodedata.category(c) != "Cf")


@dataclass(frozen=True)
class Knock:
    salt: bytes
    seat_pub: bytes
    #: What the viewer typed, for the staff's page only (kept out of reprs and logs).
    name: str | None = field(repr=False)


def seal_knock(
    room: str, secret: bytes, box_key_hash: bytes, salt: bytes, seat_pub: bytes, name: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "knock", "seat": b64u(seat_pub)}
    name = sanitize_name(name)
    if name:
        body["name"] = name
    key = knock_key(secret, salt, room, box_key_hash)
    ct = AESGCM(key).encrypt(bytes(12), _json(body), _knock_aad(room))
    return {"v": VERSION, "salt": b64u(salt), "ct": b64u(ct)}


def open_knock(room: str, secret: bytes, box_key_hash: bytes, wire: Any) -> Knock:
    """Open a knock (the box's side). The caller refuses a salt it has seen (:class:`SeenSalts`,
    through ``Session.judge``): the seal alone cannot tell a replay."""
    if not isinstance(wire, dict) or set(wire) != {"v", "salt", "ct"} or wire["v"] != VERSION:
        raise SealError("not a knock")
    if not _is_int(wire["v"]):
        raise SealError("not a knock")
    salt = unb64u(wire["salt"])
    if len(salt) != 32:
        raise SealError("bad salt")
    key = knock_key(secret, salt, room, box_key_hash)
    try:
        plain = AESGCM(key).decrypt(bytes(12), unb64u(wire["ct"]), _knock_aad(room))
    except InvalidTag:
        raise SealError("the knock does not open") from None
    body = _parse(plain)
    if not set(body) <= {"type", "seat", "name"} or body.get("type") != "knock":
        raise SealError("not a knock")
    seat = unb64u(body.get("seat"))
    load_point(seat)
    return Knock(salt, seat, clean_name(body.get("name")))


class SeenSalts:
    """The knock salts a session has accepted, to refuse a replayed knock.

    Bounded, and failing closed: once ``capacity`` salts are held every further knock is refused
    (a session sees a handful; thousands of valid knocks mean the link is being abused).
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._seen: set[bytes] = set()
        self.capacity = capacity

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, salt: bytes) -> bool:
        """Remember ``salt``; False if it was seen before (a replay) or there is no more room."""
        if salt in self._seen or len(self._seen) >= self.capacity:
            return False
        self._seen.add(salt)
        return True

    def clear(self) -> None:
        self._seen.clear()


# -- the keys after the knock ---------------------------------------------------------------------


def transcript(
    room: str, box_key_hash: bytes, salt: bytes, seat_pub: bytes, eph_pub: bytes
) -> bytes:
    room_b = _utf8(room)
    return _sha256(
        _utf8(LABEL + " transcript"), _len8(room_b), room_b, box_key_hash, salt, seat_pub, eph_pub
    )


def direction_keys(secret: bytes, z: bytes, th: bytes) -> dict[str, bytes]:
    return {
        B2V: _hkdf(secret, z, _utf8(LABEL + " b2v") + th),
        V2B: _hkdf(secret, z, _utf8(LABEL + " v2b") + th),
    }


def commitment(fp_box: bytes, nonce: bytes) -> bytes:
    return _sha256(_utf8(LABEL + " commit"), fp_box, nonce)


def verification_code(secret: bytes, z: bytes, th: bytes, fp_box: bytes, fp_viewer: bytes) -> str:
    """Six digits (as a string without the space the screens put in the middle)."""
    raw = _hkdf(secret, z, _utf8(LABEL + " code") + th + fp_box + fp_viewer, 4)
    return f"{int.from_bytes(raw, 'big') % 1_000_000:06d}"


def _reply_signed_data(th: bytes, ct: bytes) -> bytes:
    return _utf8(LABEL + " reply") + th + _sha256(ct)


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
        if dtls_fingerprint(sdp) != self._fp_box:
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
        fp_box = dtls_fingerprint(sdp)
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
