"""Transport-wide congestion control's wire format and bookkeeping: the send log and the feedback
codec (draft-holmer-rmcat-transport-wide-cc-extensions-01). Pure: no aiortc, no I/O.

Every RTP packet leaving a transport carries a 16-bit transport-wide sequence number (stamped in
:mod:`appliance.stream.twcc_compat`); :class:`SendLog` remembers each one's size and send time,
for as long as feedback may take to come back. The viewer's browser answers about every 100 ms
with an RTCP transport-layer feedback message, RTPFB (205) with FMT=15: a base sequence number,
a count, a reference time (24 bits, 64 ms units), the packets' status in chunks and the receive
delta of each packet received (250 us units, relative to the previous one; the first to the
reference time). :func:`parse_feedback` and :func:`build_feedback` read and write it:

* a run-length chunk (``0 SS LLLLLLLLLLLLL``): one status for up to 8191 packets;
* a one-bit status vector (``1 0 ...``): 14 packets, received (small delta) or not;
* a two-bit status vector (``1 1 ...``): 7 packets, not received / small delta (1 byte,
  0-63.75 ms) / large or negative delta (2 bytes, signed).

:func:`packet_results` matches a feedback to the send log: each packet's send time, size and
arrival time (the browser's clock, in seconds, its 24-bit reference time unwrapped by
:class:`ArrivalClock`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

RTCP_RTPFB = 205
TWCC_FMT = 15
#: one receive delta tick (seconds) and one reference time tick (64 ms)
DELTA_TICK = 0.00025
REFERENCE_TICK = 0.064
_TICKS_PER_REFERENCE = 256
_REFERENCE_WRAP = 1 << 24

NOT_RECEIVED, SMALL, LARGE = 0, 1, 2
_MAX_RUN = 0x1FFF


@dataclass(frozen=True)
class SentPacket:
    """One packet in the send log."""

    seq: int  # unwrapped (keeps counting past 65535)
    size: int  # bytes of RTP (before SRTP)
    sent_at: float  # monotonic seconds
    probe: int = 0  # the probe cluster it belongs to (0: none)


class SendLog:
    """The packets sent on one transport by transport-wide sequence number: the newest
    ``max_packets``, none older than ``max_age_s`` (feedback comes every ~100 ms; a second's is
    lost at most). Hands out the sequence numbers."""

    def __init__(self, max_age_s: float = 3.0, max_packets: int = 8192) -> None:
        self.max_age_s = max_age_s
        self.max_packets = max_packets
        self._packets: deque[SentPacket] = deque()
        self._next = 0

    def add(self, size: int, now: float, probe: int = 0) -> int:
        """Log a packet of ``size`` bytes leaving at ``now``; returns its 16-bit sequence number."""
        seq = self._next
        self._next += 1
        packets = self._packets
        packets.append(SentPacket(seq, size, now, probe))
        while packets and (
            len(packets) > self.max_packets or now - packets[0].sent_at > self.max_age_s
        ):
            packets.popleft()
        return seq & 0xFFFF

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def next_seq(self) -> int:
        """The 16-bit sequence number the next packet gets."""
        return self._next & 0xFFFF

    @property
    def last_seq(self) -> int:
        """The newest packet's unwrapped sequence number (-1: none sent)."""
        return self._next - 1

    def unwrap(self, seq16: int) -> int:
        """The unwrapped sequence number nearest the newest sent that ends in ``seq16``."""
        newest = self._next - 1
        diff = (seq16 - newest) & 0xFFFF
        if diff >= 0x8000:
            diff -= 0x10000
        return newest + diff

    def get(self, seq: int) -> SentPacket | None:
        """The logged packet with unwrapped sequence number ``seq``, if still kept."""
        packets = self._packets
        if not packets:
            return None
        i = seq - packets[0].seq
        return packets[i] if 0 <= i < len(packets) else None
