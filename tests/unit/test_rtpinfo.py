"""Reading an outgoing RTP packet for the retransmission budget: a keyframe's start, and the
packet a retransmission carries again."""

from __future__ import annotations

from appliance.stream.rtpinfo import original_seq, payload_offset, starts_keyframe


def rtp(payload: bytes, *, seq: int = 7, extension: bytes = b"") -> bytes:
    """An RTP packet (payload type 102) with one-byte header extensions ``extension``."""
    first = 0x90 if extension else 0x80
    header = bytes([first, 102]) + seq.to_bytes(2, "big") + bytes(8)
    if extension:
        padded = extension + bytes(-len(extension) % 4)
        header += b"\xbe\xde" + (len(padded) // 4).to_bytes(2, "big") + padded
    return header + payload


def test_a_keyframe_starts_with_its_sps_or_its_idr() -> None:
    transport_cc = bytes([0x11, 0x00, 0x2A])  # id 1, two bytes: a transport-wide number
    stap_a = bytes([24]) + (4).to_bytes(2, "big") + bytes([0x67, 0x42, 0, 0x1F])  # SPS first
    assert starts_keyframe(rtp(stap_a, extension=transport_cc))
    assert starts_keyframe(rtp(bytes([0x65, 0x88])))  # a whole IDR slice
    assert starts_keyframe(rtp(bytes([0x7C, 0x85, 0x88])))  # FU-A, start bit, IDR
    assert not starts_keyframe(rtp(bytes([0x7C, 0x05, 0x88])))  # FU-A, IDR, not its start
    assert not starts_keyframe(rtp(bytes([0x7C, 0x81, 0x9A])))  # FU-A start of a P slice
    assert not starts_keyframe(rtp(bytes([0x41, 0x9A])))  # a whole P slice
    assert not starts_keyframe(b"\x80\x66")  # too short
    assert not starts_keyframe(rtp(b"", extension=transport_cc))


def test_a_retransmission_names_the_packet_it_repeats() -> None:
    extension = bytes([0x11, 0x00, 0x2B])
    assert original_seq(rtp((4660).to_bytes(2, "big") + b"\x7c\x85", extension=extension)) == 4660
    assert original_seq(rtp(b"\x01")) is None
    header = rtp(b"", extension=extension)
    assert payload_offset(header) == len(header)
    assert payload_offset(header[:14]) is None  # the extension's header cut short
