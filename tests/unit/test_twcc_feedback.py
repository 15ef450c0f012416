"""The transport-cc feedback codec (RTPFB FMT=15): every chunk kind, missing packets, large and
negative deltas, the reference time's wrap, out-of-order messages; round trips (Hypothesis); and
feedback captured from Chromium 156 (tests/fixtures/twcc/, by tests/browser/test_transport_cc.py
under loss, a gap and a cap), which the writer reproduces byte for byte."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.stream.twcc import (
    DELTA_TICK,
    ArrivalClock,
    SendLog,
    TransportFeedback,
    build_feedback,
    packet_results,
    parse_feedback,
    split_compound,
)
from appliance.stream.twcc_compat import TransportCc

CAPTURED = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "twcc").glob("*.bin"))


def _message(base: int, ref: int, chunks: list[int], deltas: bytes, count: int) -> bytes:
    body = struct.pack("!LLHHL", 1, 0xAABBCCDD, base, count, (ref << 8) | 7)
    return body + b"".join(struct.pack("!H", c) for c in chunks) + deltas


def test_a_run_length_chunk() -> None:
    # 0 | 01 | 0000000000011: three packets received, small deltas
    fb = parse_feedback(_message(100, 5, [0x2003], bytes([4, 8, 0]), 3))
    assert fb.base_seq == 100 and fb.reference_time == 5 and fb.fb_count == 7
    assert fb.media_ssrc == 0xAABBCCDD
    assert fb.deltas == (4, 8, 0)
    assert list(fb.arrivals()) == [(100, 5 * 256 + 4), (101, 5 * 256 + 12), (102, 5 * 256 + 12)]


def test_a_run_of_missing_packets_carries_no_deltas() -> None:
    fb = parse_feedback(_message(65534, 0, [0x0004, 0x2001], bytes([9]), 5))
    assert fb.deltas == (None, None, None, None, 9)
    # sequence numbers wrap
    assert [seq for seq, _ in fb.arrivals()] == [65534, 65535, 0, 1, 2]


def test_a_one_bit_vector_stops_at_the_status_count() -> None:
    # 1 | 0 | 10110000000000: received, lost, received, received; 10 bits beyond the count
    fb = parse_feedback(_message(7, 0, [0xAC00], bytes([1, 2, 3]), 4))
    assert fb.deltas == (1, None, 2, 3)


def test_a_two_bit_vector_with_large_and_negative_deltas() -> None:
    # 1 | 1 | 01 10 00 10 01 00 00: small, large, lost, large (negative), small
    deltas = bytes([5]) + struct.pack("!h", 1000) + struct.pack("!h", -40) + bytes([3])
    fb = parse_feedback(_message(0, 0, [0xD899], deltas, 5))
    assert fb.deltas == (5, 1000, None, -40, 3)
    arrivals = [t for _, t in fb.arrivals()]
    assert arrivals == [5, 1005, None, 965, 968]  # a packet may arrive "before" the previous one


def test_malformed_messages_are_refused() -> None:
    good = _message(100, 5, [0x2003], bytes([4, 8, 0]), 3)
    for cut in (8, 17, 18, 19):
        with pytest.raises(ValueError, match="truncated"):
            parse_feedback(good[:cut])
    with pytest.raises(ValueError, match="reserved"):
        parse_feedback(_message(0, 0, [0xF000], b"", 1))  # 1 | 1 | 11 ...: reserved symbol


def test_the_reference_time_wraps_and_out_of_order_messages_keep_their_place() -> None:
    clock = ArrivalClock()
    assert clock.reference_ticks((1 << 24) - 1) == ((1 << 24) - 1) * 256
    assert clock.reference_ticks(0) == (1 << 24) * 256  # 64 ms later, not 12 days earlier
    assert clock.reference_ticks(1) == ((1 << 24) + 1) * 256
    assert clock.reference_ticks(0) == (1 << 24) * 256  # a late message: back where it was
    assert clock.reference_ticks((1 << 24) - 2) == ((1 << 24) - 2) * 256


def test_results_match_the_send_log_across_the_sequence_wrap() -> None:
    log, clock = SendLog(max_age_s=10.0), ArrivalClock()
    for i in range(65_540):
        log.add(1000 + i % 7, i * 0.0001)
    # the newest five: sequence numbers 65535, 0, 1, 2, 3 (unwrapped 65535..65539)
    fb = TransportFeedback(1, 2, 65535, 10, 0, (4, None, 8, 1000, -4))
    results = packet_results(fb, log, clock)
    assert [r.sent.seq for r in results] == [65535, 65536, 65537, 65538, 65539]
    assert [r.sent.size for r in results] == [1000 + s % 7 for s in range(65535, 65540)]
    ticks = [2564, None, 2572, 3572, 3568]
    assert [r.arrival for r in results] == [t * DELTA_TICK if t else None for t in ticks]
    # packets the log forgot are left out
    old = TransportFeedback(1, 2, 5, 10, 0, (4, 4))
    assert packet_results(old, log, clock) == []


deltas = st.one_of(st.none(), st.integers(0, 255), st.integers(-32768, 32767))


@settings(deadline=None, max_examples=100)
@given(
    base=st.integers(0, 0xFFFF),
    ref=st.integers(0, (1 << 24) - 1),
    count=st.integers(0, 255),
    ssrcs=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    statuses=st.one_of(
        st.lists(deltas, min_size=1, max_size=200),
        # long runs: run-length chunks, and vectors between them
        st.lists(st.tuples(deltas, st.integers(1, 40)), min_size=1, max_size=6).map(
            lambda runs: [d for d, n in runs for _ in range(n)]
        ),
    ),
)
def test_written_feedback_reads_back_the_same(
    base: int, ref: int, count: int, ssrcs: tuple[int, int], statuses: list[int | None]
) -> None:
    fb = TransportFeedback(ssrcs[0], ssrcs[1], base, ref, count, tuple(statuses))
    packet = build_feedback(fb)
    assert len(packet) % 4 == 0
    # in a compound packet, between two receiver reports
    report = bytes(RtcpRrPacket(ssrc=1, reports=[RtcpReceiverInfo(2, 0, 0, 0, 0, 0, 0)]))
    payloads, rest = split_compound(report + packet + report)
    assert rest == report + report
    assert [parse_feedback(p) for p in payloads] == [fb]


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_chromiums_feedback_parses_and_is_written_back_byte_for_byte(path: Path) -> None:
    packet = path.read_bytes()
    payloads, rest = split_compound(packet)
    assert len(payloads) == 1 and rest == b""
    fb = parse_feedback(payloads[0])
    assert 0 < len(fb.deltas) < 100
    assert build_feedback(fb) == packet


def test_chromiums_feedback_in_order_gives_rising_arrival_times() -> None:
    """The captured messages, in the order Chromium sent them (one stream): each starts past
    the last one's packets, the arrivals rise, the loss shows as missing packets, and together
    they hold every chunk kind."""
    payloads = [split_compound(p.read_bytes())[0][0] for p in CAPTURED]
    messages = sorted(((parse_feedback(p), p) for p in payloads), key=lambda mp: mp[0].fb_count)
    clock, last_seq, last_arrival, lost, seen, kinds = ArrivalClock(), -1, -1.0, 0, 0, set()
    for fb, payload in messages:
        assert fb.base_seq > last_seq
        last_seq = fb.base_seq + len(fb.deltas) - 1
        ticks = clock.reference_ticks(fb.reference_time)
        arrivals = []
        for delta in fb.deltas:
            if delta is not None:
                ticks += delta
                arrivals.append(ticks * DELTA_TICK)
        assert arrivals[0] >= last_arrival - 0.064, "no message goes back in time"
        last_arrival = arrivals[-1]
        seen += len(fb.deltas)
        lost += fb.deltas.count(None)
        chunk = struct.unpack_from("!H", payload, 16)[0]
        kinds.add("run" if not chunk & 0x8000 else "one-bit" if not chunk & 0x4000 else "two-bit")
    assert seen > 100 and 0.1 < lost / seen < 0.5
    assert kinds == {"run", "one-bit", "two-bit"}, "the fixtures hold every chunk kind"


class _Transport:
    def __init__(self) -> None:
        self.handled: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        pass

    async def _handle_rtcp_data(self, data: bytes) -> None:
        self.handled.append(data)


async def test_feedback_is_taken_out_before_aiortc_parses_the_rest() -> None:
    from appliance.stream.twcc_compat import stamp_transport

    transport = _Transport()

    class Sender:
        _ssrc, _rtx_ssrc = 1, 2

    Sender.transport = transport  # type: ignore[attr-defined]
    twcc: TransportCc = stamp_transport(Sender, 3)
    got: list[TransportFeedback] = []
    twcc.on_feedback = lambda fb, now: got.append(fb)
    chromium = CAPTURED[0].read_bytes()
    report = bytes(RtcpRrPacket(ssrc=1))
    await transport._handle_rtcp_data(chromium)
    assert transport.handled == [] and len(got) == 1  # aiortc never sees it
    await transport._handle_rtcp_data(report + chromium)
    assert transport.handled == [report] and len(got) == 2
    # five packets announced, no chunk: dropped, counted, the report beside it still handled
    truncated = struct.pack("!BBHLLHHL", 0x8F, 205, 4, 1, 2, 0, 5, 0)
    await transport._handle_rtcp_data(truncated + report)
    assert transport.handled[-1] == report
    assert twcc.malformed == 1 and twcc.feedback == 2 and len(got) == 2
    assert list(twcc.captured)[0] == chromium


def test_an_estimator_that_raises_is_warned_about_once_and_rtcp_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    twcc = TransportCc()

    def broken(fb: TransportFeedback, now: float) -> None:
        raise RuntimeError("estimator bug")

    twcc.on_feedback = broken
    report = bytes(RtcpRrPacket(ssrc=1))
    for _ in range(3):
        assert twcc.receive(CAPTURED[0].read_bytes() + report) == report
    assert twcc.failed == 3 and twcc.feedback == 3
    assert sum(1 for r in caplog.records if r.levelname == "ERROR") == 1
