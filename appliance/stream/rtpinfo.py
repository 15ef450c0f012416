"""What the retransmission budget needs to know of an outgoing RTP packet, read from its bytes:
whether it starts an H.264 keyframe (an IDR, or the SPS/PPS before one: RFC 6184's single NAL
unit, STAP-A and FU-A start), and which packet a retransmission carries again (RFC 4588's
original sequence number, the first two bytes of the RTX payload). Pure; malformed packets
answer False / None."""

from __future__ import annotations

#: NAL unit types: an IDR slice, a sequence parameter set
_IDR, _SPS = 5, 7
_STAP_A, _FU_A = 24, 28


def payload_offset(data: bytes) -> int | None:
    """Where the payload of the RTP packet ``data`` starts (after CSRCs and extensions)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    return offset if offset <= len(data) else None


def starts_keyframe(data: bytes) -> bool:
    """Whether the H.264 RTP packet ``data`` begins a keyframe (its SPS, or its IDR's start)."""
    at = payload_offset(data)
    if at is None or at >= len(data):
        return False
    nal = data[at] & 0x1F
    if nal == _STAP_A and len(data) > at + 3:
        nal = data[at + 3] & 0x1F
    elif nal == _FU_A and len(data) > at + 1:
        fu = data[at + 1]
        return bool(fu & 0x80) and fu & 0x1F in (_IDR, _SPS)
    return nal in (_IDR, _SPS)


def original_seq(rtx: bytes) -> int | None:
    """The sequence number of the packet the RTX packet ``rtx`` retransmits."""
    at = payload_offset(rtx)
    if at is None or len(rtx) < at + 2:
        return None
    return int.from_bytes(rtx[at : at + 2], "big")
