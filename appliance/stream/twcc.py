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

import struct
from collections import deque
from collections.abc import Iterator, Sequence
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
class TransportFeedback:
    """One transport-cc feedback message, its fields as on the wire.

    ``deltas`` has one entry per packet from ``base_seq`` on (``len(deltas)`` is the packet status
    count): ``None`` for a packet not received, else its receive delta in 250 us ticks (to the
    previous received packet's; the first received one's to ``reference_time`` x 64 ms)."""

    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    reference_time: int  # 24 bits, 64 ms units
    fb_count: int  # 8 bits, one more with each feedback message
    deltas: tuple[int | None, ...]

    def arrivals(self) -> Iterator[tuple[int, int | None]]:
        """(16-bit sequence number, arrival in ticks since reference time 0, or None) each."""
        ticks = self.reference_time * _TICKS_PER_REFERENCE
        for i, delta in enumerate(self.deltas):
            if delta is not None:
                ticks += delta
            yield (self.base_seq + i) & 0xFFFF, None if delta is None else ticks


def _symbol(delta: int | None) -> int:
    if delta is None:
        return NOT_RECEIVED
    return SMALL if 0 <= delta <= 0xFF else LARGE


def parse_feedback(payload: bytes) -> TransportFeedback:
    """One feedback message from its RTCP payload (after the 4-byte header, padding removed).
    Raises ValueError for a truncated or malformed one."""
    if len(payload) < 16:
        raise ValueError("transport-cc feedback is truncated")
    sender, media, base, count, ref_fb = struct.unpack_from("!LLHHL", payload)
    pos, symbols = 16, list[int]()
    while len(symbols) < count:
        if pos + 2 > len(payload):
            raise ValueError("transport-cc feedback: chunks are truncated")
        (chunk,) = struct.unpack_from("!H", payload, pos)
        pos += 2
        left = count - len(symbols)
        if not chunk & 0x8000:  # run length
            symbols += [(chunk >> 13) & 0x3] * min(chunk & _MAX_RUN, left)
        elif not chunk & 0x4000:  # 14 one-bit symbols
            symbols += [(chunk >> (13 - i)) & 1 for i in range(min(14, left))]
        else:  # 7 two-bit symbols
            symbols += [(chunk >> (12 - 2 * i)) & 3 for i in range(min(7, left))]
    deltas: list[int | None] = []
    for symbol in symbols:
        if symbol == NOT_RECEIVED:
            deltas.append(None)
        elif symbol == SMALL:
            if pos + 1 > len(payload):
                raise ValueError("transport-cc feedback: deltas are truncated")
            deltas.append(payload[pos])
            pos += 1
        elif symbol == LARGE:
            if pos + 2 > len(payload):
                raise ValueError("transport-cc feedback: deltas are truncated")
            deltas.append(struct.unpack_from("!h", payload, pos)[0])
            pos += 2
        else:
            raise ValueError("transport-cc feedback: reserved status symbol")
    return TransportFeedback(sender, media, base, ref_fb >> 8, ref_fb & 0xFF, tuple(deltas))


class _LastChunk:
    """The chunk being filled, as libwebrtc's encoder fills it (so a message this module writes
    is byte for byte the one Chromium writes for the same packets)."""

    def __init__(self) -> None:
        self.symbols: list[int] = []
        self.size = 0

    def can_add(self, symbol: int) -> bool:
        if self.size < 7:
            return True
        if self.size < 14 and LARGE not in self.symbols and symbol != LARGE:
            return True
        return self.size < _MAX_RUN and self._all_same() and self.symbols[0] == symbol

    def add(self, symbol: int) -> None:
        if self.size < 14:
            self.symbols.append(symbol)
        self.size += 1

    def _all_same(self) -> bool:
        return all(s == self.symbols[0] for s in self.symbols)

    def emit(self) -> int:
        """The chunk for what was added (full): run length, 14 one-bit or 7 two-bit symbols (the
        rest stay for the next chunk)."""
        if self._all_same():
            chunk = (self.symbols[0] << 13) | self.size
            self.symbols, self.size = [], 0
            return chunk
        if self.size == 14:
            chunk = self._one_bit()
            self.symbols, self.size = [], 0
            return chunk
        chunk = self._two_bit(7)
        self.symbols, self.size = self.symbols[7:], self.size - 7
        return chunk

    def last(self) -> int:
        if self._all_same():
            return (self.symbols[0] << 13) | self.size
        return self._two_bit(self.size) if self.size <= 7 else self._one_bit()

    def _one_bit(self) -> int:
        chunk = 0x8000
        for i, symbol in enumerate(self.symbols):
            chunk |= symbol << (13 - i)
        return chunk

    def _two_bit(self, count: int) -> int:
        chunk = 0xC000
        for i, symbol in enumerate(self.symbols[:count]):
            chunk |= symbol << (2 * (6 - i))
        return chunk


def _chunks(symbols: Sequence[int]) -> Iterator[int]:
    """The status chunks for ``symbols``, chosen as libwebrtc chooses them."""
    last = _LastChunk()
    for symbol in symbols:
        if not last.can_add(symbol):
            yield last.emit()
        last.add(symbol)
    if last.size:
        yield last.last()


def build_feedback(feedback: TransportFeedback) -> bytes:
    """The whole RTCP packet for ``feedback`` (header included, padded to 32 bits)."""
    if not 0 < len(feedback.deltas) <= 0xFFFF:
        raise ValueError("transport-cc feedback reports 1 to 65535 packets")
    symbols = [_symbol(d) for d in feedback.deltas]
    body = struct.pack(
        "!LLHHL",
        feedback.sender_ssrc,
        feedback.media_ssrc,
        feedback.base_seq & 0xFFFF,
        len(symbols),
        ((feedback.reference_time % _REFERENCE_WRAP) << 8) | (feedback.fb_count & 0xFF),
    )
    body += b"".join(struct.pack("!H", c) for c in _chunks(symbols))
    for delta, symbol in zip(feedback.deltas, symbols, strict=True):
        if symbol == SMALL:
            body += bytes([delta or 0])
        elif symbol == LARGE:
            body += struct.pack("!h", delta)
    padding = -len(body) % 4  # RTCP padding, its count in the last byte (as libwebrtc pads)
    if padding:
        body += b"\x00" * (padding - 1) + bytes([padding])
    first = 0x80 | (0x20 if padding else 0) | TWCC_FMT
    return struct.pack("!BBH", first, RTCP_RTPFB, len(body) // 4) + body


def split_compound(data: bytes) -> tuple[list[bytes], bytes]:
    """The transport-cc feedback payloads in a compound RTCP packet (padding removed), and the
    packet without them (empty when nothing else was in it). Raises ValueError if malformed."""
    feedback, rest, pos = [], b"", 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError("RTCP packet is truncated")
        first, packet_type, length = struct.unpack_from("!BBH", data, pos)
        end = pos + 4 + 4 * length
        if end > len(data):
            raise ValueError("RTCP packet is truncated")
        if packet_type == RTCP_RTPFB and first & 0x1F == TWCC_FMT:
            payload = data[pos + 4 : end]
            if first & 0x20:  # padding
                if not payload or not 0 < payload[-1] <= len(payload):
                    raise ValueError("RTCP padding length is invalid")
                payload = payload[: -payload[-1]]
            feedback.append(payload)
        else:
            rest += data[pos:end]
        pos = end
    return feedback, rest


@dataclass(frozen=True)
class SentPacket:
    """One packet in the send log."""

    seq: int  # unwrapped (keeps counting past 65535)
    size: int  # bytes of RTP (before SRTP)
    sent_at: float  # monotonic seconds
    probe: int = 0  # the probe cluster it belongs to (0: none)


@dataclass(frozen=True)
class PacketResult:
    """A sent packet as the feedback tells it: ``arrival`` on the browser's clock (seconds,
    unwrapped), or None when reported lost."""

    sent: SentPacket
    arrival: float | None


class SendLog:
    """The packets sent on one transport by transport-wide sequence number: the newest
    ``max_packets``, none older than ``max_age_s`` (feedback comes every ~100 ms; a second's is
    lost at most). Hands out the sequence numbers."""

    def __init__(self, max_age_s: float = 3.0, max_packets: int = 8192, start: int = 0) -> None:
        self.max_age_s = max_age_s
        self.max_packets = max_packets
        self._packets: deque[SentPacket] = deque()
        self._next = start  # a recorded trace's log resumes where the recording began

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


class ArrivalClock:
    """Unwraps the 24-bit reference time of successive feedback messages (in any order: each is
    placed nearest the last one's, within half the 12-day wrap)."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._unwrapped = 0

    def reference_ticks(self, reference_time: int) -> int:
        """``reference_time`` unwrapped, in 250 us ticks."""
        if self._last is not None:
            diff = (reference_time - self._last) % _REFERENCE_WRAP
            if diff >= _REFERENCE_WRAP // 2:
                diff -= _REFERENCE_WRAP
            self._unwrapped += diff
        else:
            self._unwrapped = reference_time
        self._last = reference_time
        return self._unwrapped * _TICKS_PER_REFERENCE


def packet_results(
    feedback: TransportFeedback, log: SendLog, clock: ArrivalClock
) -> list[PacketResult]:
    """The packets ``feedback`` reports that the send log still holds, in sequence order."""
    ticks = clock.reference_ticks(feedback.reference_time)
    results = []
    base = log.unwrap(feedback.base_seq)
    for i, delta in enumerate(feedback.deltas):
        if delta is not None:
            ticks += delta
        sent = log.get(base + i)
        if sent is not None:
            results.append(PacketResult(sent, None if delta is None else ticks * DELTA_TICK))
    return results
