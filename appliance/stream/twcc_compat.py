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

import asyncio
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters
from aiortc.rtp import is_rtcp

from .compat import add_extension
from .twcc import SendLog, TransportFeedback, parse_feedback, split_compound

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


class TransportCc:
    """One DTLS transport's transport-wide congestion control: its sequence counter and send log
    (every sender on the transport that negotiated the extension stamps from it), and who gets
    the feedback (:func:`tap_transport_feedback`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = SendLog()
        self.clock = clock
        #: SSRC (media and RTX) -> the extension's id on that sender's m-line
        self.ids: dict[int, int] = {}
        #: the probe cluster the packets leaving now belong to (0: none; set by the prober)
        self.probe = 0
        self.stamped = 0
        #: given each feedback message as it arrives (the estimator's adapter)
        self.on_feedback: Callable[[TransportFeedback, float], None] | None = None
        self.feedback = 0  # messages parsed
        self.malformed = 0
        self.failed = 0  # the estimator raised on them (warned once, then debug)
        #: the last compound RTCP packets that carried feedback, as received (for the tests'
        #: fixtures: sequence numbers and timings only)
        self.captured: deque[bytes] = deque(maxlen=16)

    def receive(self, data: bytes) -> bytes:
        """Take the feedback out of a compound RTCP packet (``data``, decrypted), hand each
        message on, and return what is left for aiortc (empty: nothing)."""
        try:
            payloads, rest = split_compound(data)
        except ValueError:
            return data  # aiortc's parser says what is wrong with it
        if not payloads:
            return data
        self.captured.append(data)
        now = self.clock()
        for payload in payloads:
            try:
                message = parse_feedback(payload)
            except ValueError:
                self.malformed += 1
                if self.malformed == 1:
                    logger.warning("a malformed transport-cc feedback message (dropped)")
                continue
            self.feedback += 1
            if self.on_feedback is not None:
                try:
                    self.on_feedback(message, now)
                except Exception:  # the estimator must never break aiortc's RTCP handling
                    self.failed += 1
                    log = logger.exception if self.failed == 1 else logger.debug
                    log("transport-cc feedback not taken (the first of its kind is logged)")
        return rest

    def stamp(self, data: bytes) -> bytes:
        """``data`` (an RTP packet) with the next sequence number, logged; as it is if its SSRC
        did not negotiate the extension."""
        if len(data) < 12:
            return data
        ext_id = self.ids.get(int.from_bytes(data[8:12], "big"))
        if not ext_id:
            return data
        now = self.clock()
        stamped = add_extension(data, ext_id, self.log.next_seq.to_bytes(2, "big"))
        self.log.add(len(stamped), now, self.probe)
        self.stamped += 1
        return stamped


def stamp_transport(
    sender: Any, ext_id: int, clock: Callable[[], float] = time.monotonic
) -> TransportCc:
    """Stamp every RTP packet ``sender`` sends (its media and RTX SSRC) with its transport's
    sequence counter, the extension's id ``ext_id``. One :class:`TransportCc` per DTLS transport
    (the bundle's senders share it); call after the answer (bundling may change the transport)
    and before :func:`appliance.stream.compat.tap_rtp_out`, so a paced packet is stamped and
    logged as it leaves, not as it is queued."""
    transport = sender.transport
    twcc: TransportCc | None = getattr(transport, "_appliance_twcc", None)
    if twcc is None:
        twcc = TransportCc(clock)
        original: Callable[[bytes], Awaitable[None]] = transport._send_rtp
        state = twcc

        async def send_rtp(data: bytes) -> None:
            if not is_rtcp(data):
                data = state.stamp(data)
            await original(data)

        transport._send_rtp = send_rtp
        _tap_feedback(transport, twcc)
        transport._appliance_twcc = twcc
    twcc.ids[sender._ssrc] = ext_id
    twcc.ids[sender._rtx_ssrc] = ext_id
    return twcc


def _tap_feedback(transport: Any, twcc: TransportCc) -> None:
    """Take transport-cc feedback out of every RTCP packet ``transport`` receives before aiortc
    parses it (aiortc reads RTPFB FMT=15 as a generic NACK and would route it to a sender)."""
    original: Callable[[bytes], Awaitable[None]] = transport._handle_rtcp_data

    async def handle_rtcp_data(data: bytes) -> None:
        try:
            rest = twcc.receive(data)
        except Exception:  # a tap must never break aiortc's own handling
            logger.exception("transport-cc feedback tap failed")
            rest = data
        if rest:
            await original(rest)

    transport._handle_rtcp_data = handle_rtcp_data


async def send_probe(
    sender: Any,
    twcc: TransportCc,
    cluster: int,
    extra_bps: int,
    duration_s: float,
    grant: Callable[[int], None],
) -> int:
    """A probe: retransmissions of ``sender``'s newest packets, ``extra_bps`` above the media for
    ``duration_s``, through the same path as every packet (the pacer, the stamping); every
    packet leaving meanwhile is marked ``cluster`` in the send log. ``grant(nbytes)`` is called
    before each (the retransmission budget lets it through). Returns how many were sent; none
    without RTX (a resent packet on the media SSRC would be a duplicate) or history."""
    history: dict[int, Any] = sender._RTCRtpSender__rtp_history
    if sender._RTCRtpSender__rtx_payload_type is None or not history:
        return 0
    recent = list(history.items())[-32:]
    size = sum(len(p.payload) + 30 for _, p in recent) / len(recent)
    count = max(1, math.ceil(extra_bps * duration_s / 8 / size))
    gap = duration_s / count
    twcc.probe = cluster
    try:
        for i in range(count):
            seq, packet = recent[-1 - i % len(recent)]
            grant(len(packet.payload) + 30)
            await sender._retransmit(seq)
            await asyncio.sleep(gap)
    finally:
        twcc.probe = 0
    return count
