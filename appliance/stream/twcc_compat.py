"""Transport-wide congestion control through aiortc's private attributes (the rest are in
:mod:`appliance.stream.compat`; a test checks each one still works at the pinned versions).

aiortc can read and write the transport-wide sequence number header extension (``rtp.py``) but
never answers it, writes no ``a=rtcp-fb:<pt> transport-cc``, stamps nothing and parses the
feedback (RTPFB FMT=15) as a generic NACK. Here:

- :func:`negotiate_transport_cc`: the answer carries the extension and the feedback on exactly
  the m-lines whose offer has both (Chromium turns TWCC off when the two disagree; an older
  Firefox offers it on video only and rejects an answer that adds it to audio);
- :func:`stamp_transport`: one sequence counter per DTLS transport (shared by the bundle),
  stamped on every RTP packet leaving through it for the senders that negotiated it
  (retransmissions included), each noted in the transport's send log;
- :func:`tap_transport_feedback`: the transport-cc feedback taken out of each compound RTCP
  packet before aiortc parses it, and handed to the transport's callback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters

logger = logging.getLogger(__name__)

TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


def _sections(sdp: str) -> list[str]:
    """The offer's media sections (each from its ``m=`` line to the next)."""
    return ["m=" + part for part in re.split(r"(?:^|\r?\n)m=", sdp)[1:]]


def offered_transport_cc(offer_sdp: str, mid: str) -> tuple[int, set[int]]:
    """What the offer's m-line ``mid`` says of TWCC: the extension's id (0: none) and the payload
    types with ``a=rtcp-fb:<pt> transport-cc`` (``*`` stands for every one: -1)."""
    for section in _sections(offer_sdp):
        if not re.search(r"^a=mid:" + re.escape(mid) + r"\s*$", section, re.M):
            continue
        found = re.search(
            r"^a=extmap:(\d+)(?:/\w+)? " + re.escape(TWCC_URI) + r"\s*$", section, re.M
        )
        ext_id = int(found.group(1)) if found else 0
        types = {
            -1 if pt == "*" else int(pt)
            for pt in re.findall(r"^a=rtcp-fb:(\d+|\*) transport-cc\s*$", section, re.M)
        }
        return ext_id, types
    return 0, set()


def negotiate_transport_cc(transceiver: Any, offer_sdp: str) -> int:
    """Answer the transport-wide-cc extension and ``transport-cc`` feedback where ``transceiver``'s
    m-line in the offer has both: call between the remote description and the answer. Both or
    neither: the extension with a one-byte id (1-14) and the feedback on at least one answered
    codec. Returns the extension's id (0: not negotiated on this m-line)."""
    mid = transceiver.mid
    if mid is None:
        return 0
    ext_id, types = offered_transport_cc(offer_sdp, str(mid))
    codecs: list[Any] = transceiver._codecs
    chosen = [c for c in codecs if -1 in types or c.payloadType in types]
    if not 1 <= ext_id <= 14 or not chosen:
        return 0
    extensions: list[Any] = transceiver._headerExtensions
    if not any(e.uri == TWCC_URI for e in extensions):
        extensions.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=TWCC_URI))
    for codec in chosen:
        if not any(f.type == "transport-cc" for f in codec.rtcpFeedback):
            codec.rtcpFeedback.append(RTCRtcpFeedback(type="transport-cc"))
    return ext_id
