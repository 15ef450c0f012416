"""HdmiSource against the fake TC358743: every signal transition, slates, sizes, rates, frames."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import av
import pytest

from appliance.capture import edid, timestrip
from appliance.capture.base import CapturedFrame, SignalState
from appliance.capture.fake_v4l2 import FakeTC358743
from appliance.capture.hdmi import HdmiSource
from appliance.encode.base import NAL_IDR, NAL_PPS, NAL_SPS, nal_types

EDID = edid.build()
QUICK = {"frame_timeout": 0.3, "retry_interval": 0.2, "slate_interval": 0.25}


class Rig:
    def __init__(self, board: str = "pi4", mode: str | None = "1080p30", **kw: object) -> None:
        self.dev = FakeTC358743(board, mode)
        self.states: list[SignalState] = []
        self.src = HdmiSource(self.dev, EDID, 1920, 1080, 30, on_signal=self.states.append, **kw)  # type: ignore[arg-type]
        self.src.open()

    def read_until(
        self, pred: Callable[[CapturedFrame], bool], timeout: float = 3.0
    ) -> tuple[CapturedFrame, float]:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            f = self.src.read(0.5)
            if f is not None and pred(f):
                return f, time.monotonic() - t0
        raise AssertionError(
            f"nothing matched in {timeout} s; signal {self.src.signal}, states {self.states}"
        )

    def live(self, timeout: float = 3.0) -> CapturedFrame:
        return self.read_until(lambda f: not f.slate, timeout)[0]

    def slate(self, timeout: float = 3.0) -> tuple[CapturedFrame, float]:
        return self.read_until(lambda f: f.slate, timeout)


@pytest.fixture
def rigs() -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(*args: object, **kw: object) -> Rig:
        rig = Rig(*args, **kw)  # type: ignore[arg-type]
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.src.close()


def luma(frame: av.VideoFrame) -> object:
    return frame.to_ndarray()[: frame.height]


@pytest.mark.parametrize("board", ["pi4", "pi5"])
def test_sequence_and_frames_carry_a_readable_time_strip(
    rigs: Callable[..., Rig], board: str
) -> None:
    rig = rigs(board, "1080p30")
    f = rig.live()
    assert f.frame.format.name == "yuv420p" and (f.frame.width, f.frame.height) == (1920, 1080)
    stamp = timestrip.read(luma(f.frame))  # type: ignore[arg-type]
    assert stamp is not None and abs(stamp - timestrip.stamp_ms(f.captured_at)) <= 5
    assert rig.src.signal is SignalState.PRESENT and rig.states == [
        SignalState.PRESENT,
    ]
    assert rig.dev.edid == EDID
    prefix = "subdev:" if board == "pi5" else ""
    assert rig.dev.calls[:7] == [
        "open",
        f"{prefix}S_EDID",
        f"{prefix}SUBSCRIBE_EVENT",
        f"{prefix}QUERY_DV_TIMINGS",
        f"{prefix}S_DV_TIMINGS",
        "S_FMT",
        "STREAMON",
    ]
    # the picture below the strip is the fake's (its bright border), not a slate
    assert luma(f.frame)[1079, 960] > 200  # type: ignore[index]


def test_no_cable_then_plugged_in(rigs: Callable[..., Rig]) -> None:
    rig = rigs("pi4", None, **QUICK)
    assert rig.src.signal is SignalState.NO_CABLE
    s, _ = rig.slate()
    assert (s.frame.width, s.frame.height) == (1920, 1080) and s.frame.format.name == "yuv420p"
    assert timestrip.read(luma(s.frame)) is None  # type: ignore[arg-type]  # slates never carry the strip
    rig.dev.plug("720p60")
    f, took = rig.read_until(lambda f: not f.slate)
    assert (f.frame.width, f.frame.height) == (
        1280,
        720,
    ) and took < 0.5  # the event cuts the retry short
    assert rig.states == [SignalState.NO_CABLE, SignalState.CHANGING, SignalState.PRESENT]


def test_signal_lost_slate_at_once_then_back_live_with_default_timing(
    rigs: Callable[..., Rig],
) -> None:
    rig = rigs("pi4", "1080p30")  # production timings: 1 s frame timeout, 1 s retry, 1 slate/s
    rig.live()
    rig.dev.lose_signal()
    s, took = rig.slate()
    assert took < 0.3 and rig.src.signal is SignalState.NO_SIGNAL
    # one slate a second while the signal stays away
    t0 = time.monotonic()
    rig.slate()
    rig.slate()
    assert 1.6 < time.monotonic() - t0 < 2.6
    rig.dev.plug("1080p30")
    rig.live(timeout=1.5)
    assert rig.states == [
        SignalState.PRESENT,
        SignalState.CHANGING,
        SignalState.NO_SIGNAL,
        SignalState.CHANGING,
        SignalState.PRESENT,
    ]


def test_timeout_without_event_gives_a_slate_within_a_second_of_the_timeout(
    rigs: Callable[..., Rig],
) -> None:
    rig = rigs("pi4", "1080p30")  # frame_timeout 1 s
    rig.live()
    rig.dev.stall()
    t0 = time.monotonic()
    rig.slate(timeout=3)
    took = time.monotonic() - t0
    # the 1 s timeout (counted from the last frame, read a moment before t0), then the slate
    assert 0.7 < took < 2.0, took
    assert rig.src.signal is SignalState.NO_SIGNAL
    rig.dev.stall(False)
    rig.live(timeout=3)
    assert rig.src.signal is SignalState.PRESENT


def test_no_lock(rigs: Callable[..., Rig]) -> None:
    rig = rigs("pi4", "1080p30", **QUICK)
    rig.live()
    rig.dev.lose_lock()
    rig.slate()
    assert rig.src.signal is SignalState.NO_LOCK
    rig.dev.change_mode("1080p30")  # locks again
    rig.live()


def live_at(size: tuple[int, int]) -> Callable[[CapturedFrame], bool]:
    """Matches a live frame of this size."""
    return lambda f: not f.slate and (f.frame.width, f.frame.height) == size


@pytest.mark.parametrize("board", ["pi4", "pi5"])
def test_resolution_changes_reach_the_encoder_as_new_sps_and_idr(
    rigs: Callable[..., Rig], board: str
) -> None:
    from appliance.encode.software import SoftwareEncoder

    rig = rigs(board, "1080p30", **QUICK)
    enc = SoftwareEncoder(1920, 1080, 30, 1_000_000, 2.0, 1)
    sizes: list[tuple[int, int]] = []
    try:
        pts = 0
        for mode, size in (
            ("1080p30", (1920, 1080)),
            ("1280x1024p60", (1280, 1024)),
            ("1080p30", (1920, 1080)),
        ):
            if mode != "1080p30" or sizes:
                rig.dev.change_mode(mode)
            f = rig.read_until(live_at(size))[0]
            pts += 3000
            packets = enc.encode(f.frame, pts)
            while not packets:
                pts += 3000
                packets = enc.encode(rig.live().frame, pts)
            types = nal_types(bytes(packets[0]))
            assert NAL_SPS in types and NAL_PPS in types and NAL_IDR in types, (mode, types)
            sizes.append(size)
            decoder = av.CodecContext.create("h264", "r")
            decoded = [fr for p in packets for fr in decoder.decode(p)]
            decoded += list(decoder.decode(None))
            assert decoded and (decoded[0].width, decoded[0].height) == size
        assert rig.src.timings_applied == 3
    finally:
        enc.close()


@pytest.mark.parametrize(("mode", "fps"), [("1080p60", 30.0), ("1080p50", 25.0), ("1080p30", 30.0)])
def test_fast_inputs_keep_every_other_frame_for_the_hardware_encoder(
    rigs: Callable[..., Rig], mode: str, fps: float
) -> None:
    rig = rigs("pi4", mode, max_fps=30)
    rig.live()
    for _ in range(100):  # until a read waits for the device: what queued up is behind us
        started = time.monotonic()
        if (
            (f := rig.src.read(0.5)) is not None
            and not f.slate
            and time.monotonic() - started > 0.005
        ):
            break
    n0, got, t0 = rig.dev.frames_delivered, 0, time.monotonic()
    while got < 12:
        if (f := rig.src.read(0.5)) is not None and not f.slate:
            got += 1
    delivered = rig.dev.frames_delivered - n0
    assert rig.src.fps == fps
    expected = 2 if fps < 30 or mode == "1080p60" else 1
    assert delivered in range(expected * got - 1, expected * got + 2), (delivered, got)
    assert abs(got / (time.monotonic() - t0) - fps) < fps * 0.35


@pytest.mark.parametrize("mode", ["1280x1024p60", "1024x768p60"])
def test_odd_sizes_stream_natively(rigs: Callable[..., Rig], mode: str) -> None:
    rig = rigs("pi5", mode)
    f = rig.live()
    t = edid.MODES[mode]
    assert (f.frame.width, f.frame.height) == (t.width, t.height) == (rig.src.width, rig.src.height)
    assert timestrip.read(luma(f.frame)) is not None  # type: ignore[arg-type]


def test_device_missing_then_back(rigs: Callable[..., Rig]) -> None:
    dev_missing = FakeTC358743("pi4", "1080p30")
    dev_missing.remove()
    src = HdmiSource(dev_missing, EDID, 1280, 720, 30, **QUICK)  # type: ignore[arg-type]
    try:
        src.open()  # no exception: the slate tells the viewer, the doctor tells the technician
        assert src.signal is SignalState.NO_DEVICE
        f = src.read(1.0)
        while f is None:
            f = src.read(1.0)
        assert f.slate and (f.frame.width, f.frame.height) == (1280, 720)
        dev_missing.remove(present=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            f = src.read(0.5)
            if f is not None and not f.slate:
                break
        assert f is not None and not f.slate and src.signal is SignalState.PRESENT
        # gone while streaming
        dev_missing.remove()
        t0 = time.monotonic()
        while src.signal is not SignalState.NO_DEVICE and time.monotonic() - t0 < 3:
            src.read(0.2)
        assert src.signal is SignalState.NO_DEVICE
    finally:
        src.close()


def test_close_from_another_thread_ends_a_blocked_read(rigs: Callable[..., Rig]) -> None:
    rig = rigs("pi4", None, slate_interval=30.0)
    done = threading.Event()

    def reader() -> None:
        rig.src.read(10.0)
        done.set()

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    rig.src.close()
    assert done.wait(1.0) and time.monotonic() - t0 < 0.5
    t.join()
    rig.src.close()  # idempotent
    assert not rig.dev.streaming


def test_make_source_and_edid_from_config(tmp_path: object) -> None:
    from pathlib import Path

    from appliance import config as config_mod
    from appliance.board import Board, Resolved
    from appliance.capture.registry import load_edid, make_source
    from appliance.config import EncoderKind, SourceKind
    from appliance.errors import ConfigError

    root = Path(str(tmp_path))
    cfg = config_mod.load_dict({})
    resolved = Resolved(Board.PI4, SourceKind.HDMI, EncoderKind.HARDWARE, 30.0)
    heard: list[SignalState] = []
    src = make_source(cfg, resolved, root=root, on_signal=heard.append)
    assert isinstance(src, HdmiSource)
    src.open()  # no bridge under the fake root: no exception, NO_DEVICE and a slate
    try:
        assert src.signal is SignalState.NO_DEVICE and heard == [SignalState.NO_DEVICE]
    finally:
        src.close()
    assert load_edid(cfg, Board.PI4) == edid.build(edid.PI4_MODES, "UYVY")
    assert load_edid(cfg, Board.PI5) == edid.build(edid.PI5_MODES, "RGB888")
    good = root / "edid.bin"
    good.write_bytes(edid.build(edid.PI5_MODES, "RGB888"))
    assert load_edid(cfg.replace(capture={"edid": str(good)}), Board.PI4) == good.read_bytes()
    bad = root / "bad.bin"
    bad.write_bytes(bytes(256))
    with pytest.raises(ConfigError, match="capture.edid"):
        load_edid(cfg.replace(capture={"edid": str(bad)}), Board.PI4)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_edid(cfg.replace(capture={"edid": str(root / "missing.bin")}), Board.PI4)


@pytest.mark.parametrize("encoder", ["software", "hardware"])
def test_pipeline_keeps_one_stream_through_loss_and_size_changes(encoder: str) -> None:
    """HDMI source -> media pipeline -> encoder -> one decoder, as a viewer that never reloads."""
    from appliance.encode.fake_m2m import FakeM2M
    from appliance.encode.hardware import HardwareEncoder
    from appliance.encode.software import SoftwareEncoder
    from appliance.stream.pipeline import MediaPipeline, Mode

    def make_encoder(w: int, h: int, fps: float) -> object:
        if encoder == "hardware":
            return HardwareEncoder(w, h, fps, 1_000_000, 2.0, device=FakeM2M())
        return SoftwareEncoder(w, h, fps, 1_000_000, 2.0, 1)

    dev = FakeTC358743("pi4", "1080p30")
    src = HdmiSource(dev, EDID, max_fps=30 if encoder == "hardware" else None)
    decoder = av.CodecContext.create("h264", "r")
    seen: list[tuple[float, int, int, bool, bool]] = []  # time, w, h, keyframe, has time strip
    lock = threading.Lock()

    def publish(packet: av.Packet) -> None:
        types = nal_types(bytes(packet))
        if packet.is_keyframe:
            assert types[:2] == [NAL_SPS, NAL_PPS] and NAL_IDR in types, types
        for frame in decoder.decode(av.Packet(bytes(packet))):
            strip = timestrip.read(frame.to_ndarray()[: frame.height]) is not None
            with lock:
                seen.append(
                    (time.monotonic(), frame.width, frame.height, packet.is_keyframe, strip)
                )

    def wait_for(
        pred: Callable[[tuple[float, int, int, bool, bool]], bool],
        since: float,
        timeout: float = 3.0,
    ) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with lock:
                hits = [s[0] for s in seen if s[0] >= since and pred(s)]
            if hits:
                return hits[0] - since
            time.sleep(0.02)
        raise AssertionError(f"not seen within {timeout} s: {seen[-3:]}")

    pipeline = MediaPipeline(src, make_encoder, publish)  # type: ignore[arg-type]
    pipeline.set_mode(Mode.LIVE)
    pipeline.set_viewers(1)
    pipeline.start()
    try:
        t = time.monotonic()
        wait_for(lambda s: (s[1], s[2]) == (1920, 1080) and s[4], t)
        t = time.monotonic()
        dev.lose_signal()
        took = wait_for(lambda s: s[3] and not s[4], t)  # a slate keyframe, no time strip
        assert took < 1.0
        t2 = time.monotonic()
        time.sleep(2.6)  # the next two due at about +1 and +2 s, a third not before +3
        with lock:
            slates = [s for s in seen if s[0] >= t2 and not s[4]]
        assert 2 <= len(slates) <= 3 and all(s[3] for s in slates)  # one keyframe a second
        t = time.monotonic()
        dev.plug("1280x1024p60")
        assert wait_for(lambda s: (s[1], s[2]) == (1280, 1024) and s[3] and s[4], t) < 2.0
        t = time.monotonic()
        dev.change_mode("1080p30")
        assert wait_for(lambda s: (s[1], s[2]) == (1920, 1080) and s[3] and s[4], t) < 2.0
    finally:
        pipeline.stop()
    assert not dev.streaming
