"""The envelope's wire format: encodings, links, fingerprints, the knock, replay memory and
the key schedule (docs/protocol.md). The handshakes built on them are in :mod:`.handshake`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ...errors import ApplianceError, SignallingError
from ...vocab import Told

LABEL = "appliance-seal-v1"
VERSION = 1
MAX_NAME = 40
B2V, V2B = "b2v", "v2b"
#: What a sealed "end" may say (appliance.vocab.Told).
END_REASONS = frozenset(Told)


class SealError(SignallingError):
    """A message was refused: tampered, replayed, reordered, forged or malformed."""


class Ended(ApplianceError):
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


def sdp_fingerprint(sdp: str) -> bytes:
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
    """Knock salts seen, to refuse a replayed knock: the ``capacity`` most recent are kept.

    Bounded, and never a lock: when full, the oldest is forgotten rather than every new knock
    refused (thousands of knocks from a leaked link must not shut out the seat's own phone). A
    forgotten salt could be replayed; :class:`~appliance.session.session.Session` keeps the
    salts of the keys that held the seat apart, so such a replay can only be a stranger's old
    knock, which is worth no more than a fresh knock from a holder of the link.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self.capacity = capacity

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, salt: object) -> bool:
        return salt in self._seen

    def add(self, salt: bytes) -> bool:
        """Remember ``salt``; False if it is remembered already (a replay)."""
        if salt in self._seen:
            return False
        self._seen[salt] = None
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
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
