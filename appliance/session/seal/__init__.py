"""The signalling envelope of docs/protocol.md, in Python (the box, and the tests' viewer).

The viewer page implements the same in WebCrypto (``relay/static/viewer/seal.js``); both reproduce
the shared vectors in ``tests/vectors/seal-v1.json``. Every refusal raises :class:`SealError`
(a ``ValueError``) with a short message that holds nothing secret.

- Links: :func:`new_room_id`, :func:`new_secret`, :func:`link`, :func:`parse_fragment`,
  :func:`sdp_fingerprint` (the sha-256 ``a=fingerprint`` of an SDP, raw bytes).
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

from .handshake import (
    BoxHandshake,
    Channel,
    Reply,
    ViewerHandshake,
    raw_signature_from,
)
from .wire import (
    B2V,
    END_REASONS,
    LABEL,
    MAX_NAME,
    V2B,
    VERSION,
    Ended,
    Knock,
    SealError,
    SeenSalts,
    Signer,
    b64u,
    clean_name,
    commitment,
    der_signature,
    direction_keys,
    knock_key,
    link,
    load_point,
    new_room_id,
    new_secret,
    open_knock,
    parse_fragment,
    point,
    raw_signature,
    sanitize_name,
    sdp_fingerprint,
    seal_knock,
    transcript,
    unb64u,
    verification_code,
)

__all__ = [
    "B2V",
    "V2B",
    "BoxHandshake",
    "Channel",
    "END_REASONS",
    "Ended",
    "Knock",
    "LABEL",
    "MAX_NAME",
    "Reply",
    "SealError",
    "SeenSalts",
    "Signer",
    "VERSION",
    "ViewerHandshake",
    "b64u",
    "clean_name",
    "commitment",
    "der_signature",
    "direction_keys",
    "sdp_fingerprint",
    "knock_key",
    "link",
    "load_point",
    "new_room_id",
    "new_secret",
    "open_knock",
    "parse_fragment",
    "point",
    "raw_signature",
    "raw_signature_from",
    "sanitize_name",
    "seal_knock",
    "transcript",
    "unb64u",
    "verification_code",
]
