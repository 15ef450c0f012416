"""Every use of aiortc's and aioice's private attributes, in one place, for the versions that
pyproject.toml allows (a test checks each one still works, so an upgrade fails loudly here).

- the DTLS certificate's fingerprint before the offer (the box commits to it in its reply);
- PLI/FIR keyframe requests passed on to our own encoder (aiortc handles them only for its own);
- aioice's host addresses confined to the configured ones (the demo and tests: loopback only),
  process-wide or, for the box's own peers, per task (:func:`host_addresses`);
- the process-wide patches (aioice's host addresses, aiortc's history modulus, the bounded send
  buffers) applied once, at start-up, by the composition root: :func:`install_patches`; no
  constructor patches anything;
- the sender's RTCP taps for rate control: receiver report blocks and REMB for its SSRC
  (:func:`tap_rtcp`), the LSR of each sender report it sends (:func:`tap_sender_reports`);
- the RTP leaving the sender: counted, paced, abs-send-time restamped (:func:`tap_rtp_out`);
- the retransmission history kept by time instead of aiortc's 128 packets
  (:func:`keep_rtp_history`);
- send buffers bounded (TURN over TCP, UDP): :func:`bound_send_buffers`;
- the playout-delay header extension negotiated and written (:func:`negotiate_playout_delay`);
- the sound's (the answer's Opus parameters, the room's second audio m-line bundled) are in
  :mod:`appliance.stream.compat_sound`.

Transport-wide congestion control's (negotiation, stamping, the feedback taken out of RTCP,
probes) are in :mod:`appliance.stream.twcc_compat`, tested the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aioice.ice
import aioice.turn
import aiortc.rtcrtpsender
from aiortc import clock as aiortc_clock
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    is_rtcp,
    unpack_remb_fci,
)

from ..errors import SignallingError
from . import compat_turn, rtpinfo

logger = logging.getLogger(__name__)

#: The versions whose private attributes this module was written and tested against.
AIORTC_VERSIONS = (">=1.9", "<1.17")
AIOICE_VERSIONS = (">=0.9", "<0.14")

_original_host_addresses = aioice.ice.get_host_addresses
#: The process-wide confinement (None: aioice's own), and a per-task override.
_confined: list[Any] | None = None
#: whether :func:`install_patches` ran
_installed = False
_task_addresses: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "ice_host_addresses", default=None
)


def dtls_fingerprint(pc: Any) -> bytes:
    """The SHA-256 fingerprint of ``pc``'s DTLS certificate as raw bytes (before any offer)."""
    certificate = pc._RTCPeerConnection__certificates[0]
    for fingerprint in certificate.getFingerprints():
        if fingerprint.algorithm == "sha-256":
            return bytes.fromhex(fingerprint.value.replace(":", ""))
    raise SignallingError("the DTLS certificate has no sha-256 fingerprint")


def hook_keyframe_requests(sender: Any, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the viewer asks ``sender`` for a keyframe (PLI or FIR)."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe


def install_patches(ice_addresses: tuple[str, ...]) -> None:
    """Apply every process-wide patch, at start-up; idempotent (a second call changes only the
    confinement). The composition root calls it before anything makes a peer (the tests'
    conftest does the same):

    - ICE host candidates gathered on ``ice_addresses`` only (:func:`confine_host_addresses`);
    - aiortc's retransmission history keyed by the full sequence number (its modulus 65536,
      for :func:`keep_rtp_history`'s tables);
    - full send buffers dropping instead of queueing (:func:`bound_send_buffers`);
    - every TURN server given allocated on, not only the first (compat_turn.py)."""
    global _installed
    confine_host_addresses(ice_addresses)
    if _installed:
        return
    aiortc.rtcrtpsender.RTP_HISTORY_SIZE = 1 << 16
    bound_send_buffers()
    compat_turn.gather_every_turn_server()
    _installed = True


def patches_installed() -> bool:
    """Whether :func:`install_patches` ran (the viewers refuse to start without it)."""
    return _installed


def confine_host_addresses(addresses: tuple[str, ...]) -> None:
    """Gather ICE host candidates only on ``addresses`` (empty: every interface, aioice's
    default). aioice gathers the address of every interface and skips loopback; the demo and
    the tests confine it, so no candidate and no connectivity check ever leaves the machine."""
    global _confined
    _confined = [ipaddress.ip_address(a) for a in addresses] if addresses else None
    aioice.ice.get_host_addresses = _get_host_addresses
    if _confined:
        logger.info("ICE confined to %d configured address(es)", len(_confined))


@contextlib.contextmanager
def host_addresses(addresses: tuple[str, ...]) -> Iterator[None]:
    """Within this block (this task and the tasks it starts), gather host candidates on
    ``addresses`` only, whatever the process-wide setting (empty: no override). The box's peers
    use it so its media has its own address (the impairment rig's 127.0.0.2) while a viewer in
    the same process (tests) keeps another (:func:`install_patches` installed the hook)."""
    token = _task_addresses.set(tuple(addresses) or None)
    try:
        yield
    finally:
        _task_addresses.reset(token)


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    override = _task_addresses.get()
    parsed = [ipaddress.ip_address(a) for a in override] if override else _confined
    if parsed is None:
        return list(_original_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6))
    return [
        str(a) for a in parsed if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)
    ]


# -- rate control's taps on the sender ---------------------------------------------------------


@dataclass(frozen=True)
class ReportBlock:
    """One RTCP report block about the sender's SSRC, its fields as on the wire."""

    fraction_lost: int  # of 256
    packets_lost: int  # cumulative
    highest_sequence: int  # extended
    jitter: int  # RTP clock units (90 kHz)
    lsr: int
    dlsr: int  # 1/65536 s


def tap_rtcp(
    sender: Any,
    on_report: Callable[[ReportBlock], None],
    on_remb: Callable[[int], None],
    on_nack: Callable[[list[int]], None] = lambda seqs: None,
) -> None:
    """Pass ``sender``'s receiver report blocks (RR and SR), REMB and the sequence numbers each
    NACK asks for to the callbacks, then let aiortc handle the packet as before (it answers a
    NACK from its history: :func:`keep_rtp_history`)."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        try:
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for r in packet.reports:
                    if r.ssrc == sender._ssrc:
                        on_report(
                            ReportBlock(
                                r.fraction_lost,
                                r.packets_lost,
                                r.highest_sequence,
                                r.jitter,
                                r.lsr,
                                r.dlsr,
                            )
                        )
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                on_nack(list(packet.lost))
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                with contextlib.suppress(ValueError):
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    if sender._ssrc in ssrcs:
                        on_remb(int(bitrate))
        except Exception:  # a tap must never break aiortc's own handling
            logger.exception("RTCP tap failed")
        await original(packet)

    sender._handle_rtcp_packet = handle


def tap_sender_reports(sender: Any, on_sent: Callable[[int], None]) -> None:
    """Call ``on_sent(lsr)`` as each sender report leaves: the middle 32 bits of its NTP
    timestamp, which a receiver report echoes as LSR (the caller keeps the time)."""
    original = sender._send_rtcp

    async def send_rtcp(packets: list[Any]) -> None:
        for packet in packets:
            if isinstance(packet, RtcpSrPacket) and packet.ssrc == sender._ssrc:
                on_sent((packet.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF)
        await original(packets)

    sender._send_rtcp = send_rtcp


#: Decides how long to hold an RTP packet of ``n`` bytes before it leaves (seconds).
PaceDelay = Callable[[int], float]


def tap_rtp_out(
    sender: Any,
    on_sent: Callable[[int, bool, int | None, bool], None],
    pace: PaceDelay | None = None,
    allow_rtx: Callable[[int, int | None], bool] = lambda n, seq: True,
    playout_delay_id: int = 0,
    playout_delay: Callable[[], bytes] = lambda: b"\x00\x00\x00",
) -> None:
    """Count the RTP bytes ``sender`` hands its DTLS transport before SRTP (``on_sent(nbytes, rtx,
    seq, keyframe)``: retransmissions flagged, the sequence number of the packets on ``sender``'s
    media SSRC (None for its retransmissions and for the other lines' packets, which share the
    transport under BUNDLE: the sound's numbers are another sequence), whether it starts a
    keyframe of ``sender``'s) and, with ``pace``, hold each packet as long as it says, so a
    frame's packets leave spread out instead of in one burst. aiortc stamps abs-send-time before
    the send; a paced packet gets it again as it leaves (Chrome's bandwidth estimate reads it).
    A retransmission ``allow_rtx(nbytes, original seq)`` refuses is dropped (a NACK storm on a
    lossy link must not take the bandwidth the picture needs). With ``playout_delay_id``, every
    packet carries the playout-delay extension (its 3 bytes from ``playout_delay()``: min and
    max in 10 ms units, 12 bits each)."""
    transport = sender.transport
    original: Callable[[bytes], Awaitable[None]] = transport._send_rtp

    async def send_rtp(data: bytes) -> None:
        if not is_rtcp(data):
            ssrc = int.from_bytes(data[8:12], "big")
            rtx = ssrc == sender._rtx_ssrc
            if rtx and not allow_rtx(len(data), rtpinfo.original_seq(data)):
                return
            key = ssrc == sender._ssrc and rtpinfo.starts_keyframe(data)
            if pace is not None:
                delay = pace(len(data))
                if delay > 0.001:
                    await asyncio.sleep(delay)
                    ext_id = _abs_send_time_id(sender)  # negotiated once sending started
                    if ext_id:
                        data = _restamp_abs_send_time(data, ext_id)
            if playout_delay_id:
                data = add_extension(data, playout_delay_id, playout_delay())
            seq = int.from_bytes(data[2:4], "big") if ssrc == sender._ssrc else None
            on_sent(len(data), rtx, seq, key)
        await original(data)

    transport._send_rtp = send_rtp


def _abs_send_time_id(sender: Any) -> int:
    """The negotiated id of abs-send-time for ``sender`` (0 before negotiation or without)."""
    ids = sender._RTCRtpSender__rtp_header_extensions_map._HeaderExtensionsMap__ids
    return int(ids.abs_send_time or 0)


def _restamp_abs_send_time(data: bytes, ext_id: int) -> bytes:
    """``data`` (an RTP packet) with its abs-send-time extension set to now (RFC 8285 one-byte
    header extensions; anything else is left as it is)."""
    if len(data) < 16 or not data[0] & 0x10:
        return data
    start = 12 + 4 * (data[0] & 0x0F)
    if data[start : start + 2] != b"\xbe\xde":
        return data
    end = start + 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    i = start + 4
    while i < min(end, len(data)):
        byte = data[i]
        if byte == 0:  # padding
            i += 1
            continue
        eid, length = byte >> 4, (byte & 0x0F) + 1
        if eid == 15:
            break
        if eid == ext_id and length == 3:
            stamp = (aiortc_clock.current_ntp_time() >> 14) & 0x00FFFFFF
            return data[: i + 1] + stamp.to_bytes(3, "big") + data[i + 4 :]
        i += 1 + length
    return data


PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"


def negotiate_playout_delay(transceiver: Any, offer_sdp: str) -> int:
    """Accept the playout-delay header extension when the offer has it (Chrome's does): call
    between the remote description and the answer. aiortc answers only the extensions it knows;
    this adds the offer's id to the transceiver's list. Returns the id (0: not offered)."""
    import re

    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

    found = re.search(r"a=extmap:(\d+)(?:/\w+)? " + re.escape(PLAYOUT_DELAY_URI), offer_sdp)
    if found is None:
        return 0
    ext_id = int(found.group(1))
    if not 1 <= ext_id <= 14:
        return 0
    extensions: list[Any] = transceiver._headerExtensions
    if not any(e.uri == PLAYOUT_DELAY_URI for e in extensions):
        extensions.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=PLAYOUT_DELAY_URI))
    return ext_id


def add_extension(data: bytes, ext_id: int, value: bytes) -> bytes:
    """``data`` (an RTP packet) with a one-byte-header extension element (RFC 8285) added."""
    if len(data) < 12 or not 1 <= len(value) <= 16:
        return data
    start = 12 + 4 * (data[0] & 0x0F)
    element = bytes([(ext_id << 4) | (len(value) - 1)]) + value
    if data[0] & 0x10:
        if data[start : start + 2] != b"\xbe\xde":
            return data  # two-byte headers: leave it
        end = start + 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
        body, i = b"", start + 4
        while i < end:  # the elements, without their padding
            if data[i] == 0:
                i += 1
                continue
            length = (data[i] & 0x0F) + 1
            body += data[i : i + 1 + length]
            i += 1 + length
        body += element
        rest = data[end:]
    else:
        body, rest = element, data[start:]
    body += b"\x00" * (-len(body) % 4)
    header = bytes([data[0] | 0x10]) + data[1:start]
    return header + b"\xbe\xde" + (len(body) // 4).to_bytes(2, "big") + body + rest


class _TimedHistory(dict[int, Any]):
    """aiortc's retransmission history (keyed by sequence number once the module's modulus is
    65536), forgetting packets by age: at least ``seconds`` worth whatever the rate, at most
    ``max_packets``."""

    def __init__(self, seconds: float, max_packets: int) -> None:
        super().__init__()
        self.seconds = seconds
        self.max_packets = max_packets
        self._order: deque[tuple[float, int, Any]] = deque()

    def __setitem__(self, key: int, packet: Any) -> None:
        now = time.monotonic()
        super().__setitem__(key, packet)
        order = self._order
        order.append((now, key, packet))
        while order and (now - order[0][0] > self.seconds or len(order) > self.max_packets):
            _, old, kept = order.popleft()
            if super().get(old) is kept:
                super().__delitem__(old)


def keep_rtp_history(sender: Any, seconds: float, max_packets: int = 4096) -> None:
    """Keep ``sender``'s packets for retransmission (NACK) for ``seconds`` instead of aiortc's
    last 128 (a quarter of a second at 4 Mbit/s). aiortc files packets under sequence number
    modulo its ``RTP_HISTORY_SIZE``, which :func:`install_patches` made 65536 for the process
    (every sender keys by the full number); this sender's table forgets by age."""
    sender._RTCRtpSender__rtp_history = _TimedHistory(seconds, max_packets)


def rtp_history(sender: Any) -> dict[int, Any]:
    """``sender``'s retransmission history (tests)."""
    history: dict[int, Any] = sender._RTCRtpSender__rtp_history
    return history


# -- bounded send buffers -----------------------------------------------------------------------

#: Most bytes waiting in a TURN/TCP connection's send buffer before packets are dropped.
TURN_TCP_MAX_BUFFER = 256 * 1024
#: Most bytes waiting in a UDP socket's user-space buffer (asyncio's, when the kernel says
#: EAGAIN) before data packets are dropped.
UDP_MAX_BUFFER = 64 * 1024
#: Most unsent bytes the kernel keeps in a TURN/TCP socket (TCP_NOTSENT_LOWAT): without it the
#: socket's buffer grows by itself to megabytes, seconds of delay under the bound above.
TURN_TCP_NOTSENT_LOWAT = 32 * 1024
_TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)  # Linux's value
_turn_tcp_send = aioice.turn.TurnClientTcpProtocol._send
_udp_send_data = aioice.ice.StunProtocol.send_data
dropped = {"turn_tcp": 0, "udp": 0}


def bound_send_buffers(
    turn_tcp_max: int = TURN_TCP_MAX_BUFFER, udp_max: int = UDP_MAX_BUFFER
) -> None:
    """Drop what would go into a send buffer that is already full instead of queueing it.

    asyncio's transports buffer without limit when the kernel pushes back: on a slow TCP path
    (TURN over TCP) or a full socket buffer the media would queue for seconds, and memory grow,
    instead of being lost. Dropped, it shows as loss (and the delay up to the bound) in the
    viewer's reports, which the rate controller backs off from. STUN (ICE's checks) is never
    dropped here. A TURN/TCP socket also keeps at most ``TURN_TCP_NOTSENT_LOWAT`` unsent bytes
    in the kernel (the rest waits, bounded, in asyncio's buffer above)."""

    def _send(self: Any, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not getattr(self, "_appliance_lowat", False):
            self._appliance_lowat = True
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, TURN_TCP_NOTSENT_LOWAT)
        if transport is not None and transport.get_write_buffer_size() >= turn_tcp_max:
            dropped["turn_tcp"] += 1
            return
        _turn_tcp_send(self, data)

    async def send_data(self: Any, data: bytes, addr: tuple[str, int]) -> None:
        # a relayed candidate's transport is aioice's TurnTransport, which has no buffer of its
        # own (over TCP, the bound above applies to the connection under it)
        buffered = getattr(self.transport, "get_write_buffer_size", None)
        if buffered is not None and buffered() >= udp_max:
            dropped["udp"] += 1
            return
        await _udp_send_data(self, data, addr)

    aioice.turn.TurnClientTcpProtocol._send = _send  # type: ignore[method-assign]
    aioice.ice.StunProtocol.send_data = send_data  # type: ignore[method-assign]
