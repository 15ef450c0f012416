"""The EDID the box loads into the bridge: it offers only the modes 2 CSI-2 lanes can carry.

The TC358743 overlay runs each lane at 972 Mbit/s (link frequency 486 MHz, DDR), so 2 lanes carry
1944 Mbit/s. The bridge sends each active line within one line time, so a mode fits when
``width * bits_per_pixel / line_time`` stays under that: UYVY (16 bits, Pi 4) fits 1080p50, 720p60,
1280x1024p60 and 1024x768p60 but not 1080p60; 24-bit RGB (Pi 5) fits 1080p30, 720p60 and
1024x768p60 only; 640x480p60, the mandatory fallback, fits both.
:func:`build` makes the EDID (base block 1.3 plus a CEA-861 block with the HDMI vendor block, so
sources send HDMI with audio) and ``hw/edid/make_edid.py`` writes it out.
"""

from __future__ import annotations

from collections.abc import Sequence

from .v4l2 import DV_HSYNC_POS_POL, DV_VSYNC_POS_POL, DvTimings

#: What a scanner may send: CEA-861 and VESA DMT timings.
MODES: dict[str, DvTimings] = {
    "1080p60": DvTimings(1920, 1080, 148_500_000, 88, 44, 148, 4, 5, 36),
    "1080p50": DvTimings(1920, 1080, 148_500_000, 528, 44, 148, 4, 5, 36),
    "1080p30": DvTimings(1920, 1080, 74_250_000, 88, 44, 148, 4, 5, 36),
    "720p60": DvTimings(1280, 720, 74_250_000, 110, 40, 220, 5, 5, 20),
    "1280x1024p60": DvTimings(1280, 1024, 108_000_000, 48, 112, 248, 1, 3, 38),
    "1024x768p60": DvTimings(1024, 768, 65_000_000, 24, 136, 160, 3, 6, 29, polarities=0),
    "640x480p60": DvTimings(640, 480, 25_175_000, 16, 96, 48, 10, 2, 33, polarities=0),
}
#: CEA-861 video identification codes of the CEA modes above.
VICS = {"1080p60": 16, "1080p50": 31, "1080p30": 34, "720p60": 4}

LANE_RATE = 972_000_000  # bit/s per lane (tc358743 overlay: link-frequencies = 486 MHz)
LANES = 2
BITS_PER_PIXEL = {"UYVY": 16, "RGB888": 24}

#: What each board's EDID offers, the preferred mode first.
PI4_MODES = ("1080p30", "1080p50", "720p60", "1280x1024p60", "1024x768p60")
PI5_MODES = ("1080p30", "720p60", "1024x768p60")

_NAME = "US-Capture"
_SIZE_MM = (531, 299)  # a 24" 16:9 panel, for sources that want a physical size


def csi_rate(timings: DvTimings, bits_per_pixel: int) -> float:
    """CSI-2 bit rate (bit/s) the bridge needs to send ``timings`` line by line."""
    line_time = timings.total_width / timings.pixelclock
    return timings.width * bits_per_pixel / line_time


def fits(mode: str, pixel_format: str = "UYVY", lanes: int = LANES) -> bool:
    return csi_rate(MODES[mode], BITS_PER_PIXEL[pixel_format]) <= lanes * LANE_RATE


def checksum_ok(block: bytes) -> bool:
    return len(block) == 128 and sum(block) % 256 == 0


HEADER = b"\x00\xff\xff\xff\xff\xff\xff\x00"


def valid(data: bytes) -> bool:
    """The EDID header, whole 128-byte blocks, every checksum right."""
    blocks = [data[i : i + 128] for i in range(0, len(data), 128)]
    return data.startswith(HEADER) and all(checksum_ok(b) for b in blocks)


def _finish(block: bytearray) -> bytes:
    assert len(block) == 127, len(block)
    block.append((-sum(block)) % 256)
    return bytes(block)


def dtd(t: DvTimings) -> bytes:
    """An 18-byte detailed timing descriptor."""
    hblank = t.hfrontporch + t.hsync + t.hbackporch
    vblank = t.vfrontporch + t.vsync + t.vbackporch
    w_mm, h_mm = _SIZE_MM
    flags = 0x18  # digital separate sync, progressive
    flags |= 0x04 if t.polarities & DV_VSYNC_POS_POL else 0
    flags |= 0x02 if t.polarities & DV_HSYNC_POS_POL else 0
    clock = t.pixelclock // 10_000
    return bytes(
        [
            clock & 0xFF,
            clock >> 8,
            t.width & 0xFF,
            hblank & 0xFF,
            (t.width >> 8) << 4 | hblank >> 8,
            t.height & 0xFF,
            vblank & 0xFF,
            (t.height >> 8) << 4 | vblank >> 8,
            t.hfrontporch & 0xFF,
            t.hsync & 0xFF,
            (t.vfrontporch & 0xF) << 4 | t.vsync & 0xF,
            (t.hfrontporch >> 8) << 6
            | (t.hsync >> 8) << 4
            | (t.vfrontporch >> 4) << 2
            | t.vsync >> 4,
            w_mm & 0xFF,
            h_mm & 0xFF,
            (w_mm >> 8) << 4 | h_mm >> 8,
            0,
            0,
            flags,
        ]
    )


def parse_dtd(d: bytes) -> DvTimings:
    """The inverse of :func:`dtd`, for tests and the doctor."""
    width = d[2] | (d[4] >> 4) << 8
    hblank = d[3] | (d[4] & 0xF) << 8
    height = d[5] | (d[7] >> 4) << 8
    vblank = d[6] | (d[7] & 0xF) << 8
    hfp = d[8] | (d[11] >> 6) << 8
    hsync = d[9] | ((d[11] >> 4) & 3) << 8
    vfp = d[10] >> 4 | ((d[11] >> 2) & 3) << 4
    vsync = d[10] & 0xF | (d[11] & 3) << 4
    pol = (DV_VSYNC_POS_POL if d[17] & 0x04 else 0) | (DV_HSYNC_POS_POL if d[17] & 0x02 else 0)
    clock = (d[0] | d[1] << 8) * 10_000
    return DvTimings(
        width,
        height,
        clock,
        hfp,
        hsync,
        hblank - hfp - hsync,
        vfp,
        vsync,
        vblank - vfp - vsync,
        pol,
    )


def _descriptor(tag: int, payload: bytes) -> bytes:
    return bytes([0, 0, 0, tag, 0]) + payload


def _text(text: str) -> bytes:
    data = text.encode("ascii")[:13]
    return data + (b"\n" + b" " * 12)[: 13 - len(data)]


def _range_limits(modes: Sequence[DvTimings]) -> bytes:
    vrates = [t.fps for t in modes]
    hrates = [t.pixelclock / t.total_width / 1000 for t in modes]
    max_clock = max(t.pixelclock for t in modes)
    payload = bytes(
        [
            int(min(vrates)) - 1,
            int(max(vrates)) + 1,
            int(min(hrates)) - 1,
            int(max(hrates)) + 2,
            -(-max_clock // 10_000_000),  # in 10 MHz steps, rounded up
            0x00,  # no GTF: the source must pick one of the listed modes
        ]
    )
    return _descriptor(0xFD, payload + b"\n" + b" " * 6)


def build(modes: Sequence[str] = PI4_MODES, pixel_format: str = "UYVY") -> bytes:
    """Two 128-byte blocks offering ``modes`` (the first is preferred), each checked to fit."""
    for name in modes:
        if not fits(name, pixel_format):
            raise ValueError(f"{name} does not fit {LANES} CSI-2 lanes as {pixel_format}")
    timings = [MODES[m] for m in modes]
    base = bytearray(b"\x00\xff\xff\xff\xff\xff\xff\x00")
    a, b, c = (ord(ch) - 64 for ch in "UAP")  # manufacturer id, 3 letters of 5 bits
    base += (a << 10 | b << 5 | c).to_bytes(2, "big")
    base += bytes([0x01, 0x00])  # product code
    base += bytes(4)  # no serial number
    base += bytes([1, 2025 - 1990, 1, 3])  # week, year, EDID 1.3
    # digital input, size, gamma 2.2, features: RGB colour, sRGB, preferred timing first
    base += bytes([0x80, _SIZE_MM[0] // 10, _SIZE_MM[1] // 10, 120, 0x0E])
    base += bytes([0xEE, 0x91, 0xA3, 0x54, 0x4C, 0x99, 0x26, 0x0F, 0x50, 0x54])  # sRGB
    # 640x480p60 is every HDMI sink's mandatory fallback (CTA-861); it fits any lane budget.
    established = bytearray([0x20, 0, 0])
    standard = bytearray(b"\x01\x01" * 8)
    if "1024x768p60" in modes:
        established[1] |= 0x08
    if "1280x1024p60" in modes:
        standard[0:2] = bytes([1280 // 8 - 31, 0x80])  # 5:4 aspect, 60 Hz
    base += established + standard
    dtds = [name for name in modes if name in VICS][:2]
    for name in dtds:
        base += dtd(MODES[name])
    for _ in range(2 - len(dtds)):
        base += _descriptor(0x10, bytes(13))  # dummy descriptor
    base += _range_limits([*timings, MODES["640x480p60"]])
    base += _descriptor(0xFC, _text(_NAME))
    base += bytes([1])  # one extension block
    block0 = _finish(base)

    vics = [VICS[m] for m in modes if m in VICS]
    blocks = bytes([0x40 | len(vics), *vics])  # video data block
    blocks += bytes([0x20 | 3, 0x09, 0x07, 0x07])  # audio: LPCM 2 ch, 32-48 kHz, 16-24 bit
    blocks += bytes([0x80 | 3, 0x01, 0x00, 0x00])  # speakers: front left/right
    blocks += bytes([0x60 | 5, 0x03, 0x0C, 0x00, 0x10, 0x00])  # HDMI VSDB, address 1.0.0.0
    blocks += bytes([0xE0 | 2, 0x00, 0x4A])  # video capability: RGB range selectable, underscan
    # underscanned, basic audio, one native DTD (the preferred mode)
    cea = bytearray([0x02, 0x03, 4 + len(blocks), 0xC0 | 1]) + blocks
    for name in modes:
        if name in VICS and name not in dtds:
            cea += dtd(MODES[name])
    cea += bytes(127 - len(cea))
    return block0 + _finish(cea)


def offered_modes(edid: bytes) -> list[DvTimings]:
    """Detailed timings found in an EDID (base and CEA blocks)."""
    out: list[DvTimings] = []
    for off in (54, 72, 90, 108):
        d = edid[off : off + 18]
        if d[0] or d[1]:
            out.append(parse_dtd(d))
    if len(edid) >= 256 and edid[128] == 0x02:
        start = 128 + edid[130]
        while start + 18 <= 255 and (edid[start] or edid[start + 1]):
            out.append(parse_dtd(edid[start : start + 18]))
            start += 18
    return out
