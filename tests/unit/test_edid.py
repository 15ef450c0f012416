"""The EDID: checksums, the modes it offers, the CSI-2 lane budget, the committed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.capture import edid

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("modes", "fmt"), [(edid.PI4_MODES, "UYVY"), (edid.PI5_MODES, "RGB888")])
def test_blocks_and_checksums(modes: tuple[str, ...], fmt: str) -> None:
    data = edid.build(modes, fmt)
    assert len(data) == 256
    assert data[:8] == b"\x00\xff\xff\xff\xff\xff\xff\x00"
    assert data[126] == 1  # one extension
    assert edid.checksum_ok(data[:128]) and edid.checksum_ok(data[128:])
    assert data[128] == 0x02 and data[129] == 0x03  # CTA-861 revision 3
    broken = bytearray(data)
    broken[60] ^= 1
    assert not edid.checksum_ok(bytes(broken[:128]))


def test_pi4_edid_offers_exactly_the_modes_that_fit() -> None:
    data = edid.build(edid.PI4_MODES, "UYVY")
    offered = edid.offered_modes(data)
    assert offered == [edid.MODES["1080p30"], edid.MODES["1080p50"], edid.MODES["720p60"]]
    assert offered[0] == edid.MODES["1080p30"]  # preferred
    # VICs in the CTA video data block: 34 (1080p30), 31 (1080p50), 4 (720p60); no 1080p60 (16)
    vdb = data[132 : 132 + (data[132] & 0x1F) + 1]
    assert vdb[0] >> 5 == 2 and list(vdb[1:]) == [34, 31, 4]
    assert data[35] == 0x20 and data[36] == 0x08  # 640x480 fallback, 1024x768@60 established
    assert data[38:40] == bytes([129, 0x80])  # standard timing 1280x1024@60
    assert b"US-Capture" in data


def test_pi5_edid_leaves_out_what_24_bit_rgb_cannot_carry() -> None:
    data = edid.build(edid.PI5_MODES, "RGB888")
    assert edid.offered_modes(data) == [edid.MODES["1080p30"], edid.MODES["720p60"]]
    assert data[38:40] == b"\x01\x01"  # no 1280x1024


def test_lane_budget() -> None:
    assert edid.fits("1080p50", "UYVY") and edid.fits("1280x1024p60", "UYVY")
    assert not edid.fits("1080p60", "UYVY")  # 2.07 Gbit/s > 1.944
    assert edid.fits("1080p30", "RGB888") and not edid.fits("1080p50", "RGB888")
    assert not edid.fits("1280x1024p60", "RGB888")
    assert edid.fits("1080p60", "UYVY", lanes=4)
    with pytest.raises(ValueError, match="does not fit"):
        edid.build(("1080p60",), "UYVY")


def test_dtd_round_trip() -> None:
    for t in edid.MODES.values():
        if t.pixelclock % 10_000 == 0:  # a DTD holds the clock in 10 kHz steps (not 25.175 MHz)
            assert edid.parse_dtd(edid.dtd(t)) == t


def test_committed_files_are_current() -> None:
    for name, (modes, fmt) in {
        "appliance-pi4.bin": (edid.PI4_MODES, "UYVY"),
        "appliance-pi5.bin": (edid.PI5_MODES, "RGB888"),
    }.items():
        assert (ROOT / "hw/edid" / name).read_bytes() == edid.build(modes, fmt), name
