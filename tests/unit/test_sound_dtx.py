"""The silence gate (Opus DTX outside the codec): silence sends a packet every 400 ms instead of
every 20 ms, the heartbeat is never cut, and sound after silence goes out at once."""

from __future__ import annotations

import numpy as np

from appliance.sound import dtx, synthetic
from appliance.sound.base import FRAME_SAMPLES, RATE
from appliance.sound.opus import OpusEncoder


def _frames(samples: np.ndarray) -> list[np.ndarray]:
    return [samples[i : i + FRAME_SAMPLES] for i in range(0, len(samples), FRAME_SAMPLES)]


def _encode(
    encoder: OpusEncoder, samples: np.ndarray, sizes: list[int] | None = None
) -> list[list[int]]:
    """The pts of the packets each 20 ms block gives (their sizes into ``sizes``)."""
    out = []
    for block in _frames(samples):
        packets = encoder.encode(synthetic.to_frame(block))
        out.append([p.pts or 0 for p in packets])
        if sizes is not None:
            sizes += [p.size for p in packets]
    return out


def _heartbeat(start_s: float, seconds: float) -> np.ndarray:
    return synthetic.render(int(start_s * RATE) + 300, int(seconds * RATE))


def test_silence_sends_a_packet_every_400_ms_and_sound_resumes_at_once() -> None:
    encoder = OpusEncoder(64_000)
    assert encoder.dtx
    beating = _encode(encoder, _heartbeat(10, 2.0))
    assert sum(map(len, beating)) >= 99, "the heartbeat is never gated (its pauses are short)"
    sizes: list[int] = []
    silent = _encode(encoder, np.zeros((4 * RATE, 2), np.int16), sizes)  # 200 blocks of silence
    sent = sum(map(len, silent))
    hangover = dtx.HANGOVER_FRAMES + 1
    assert sent <= hangover + 200 // dtx.KEEPALIVE_FRAMES + 1, sent  # ~20, not 200
    # after the hangover, DTX frames: the TOC byte alone (a browser plays comfort noise)
    assert set(sizes[hangover:]) == {1} and min(sizes[: dtx.HANGOVER_FRAMES]) > 1
    assert sum(sizes) < 0.15 * 200 * sizes[0]  # silence costs a fraction of its packets' bytes
    gaps = np.diff([pts for block in silent[hangover + 1 :] for pts in block])
    assert set(gaps) == {dtx.KEEPALIVE_FRAMES * FRAME_SAMPLES}  # the RTP timestamps jump
    resumed = _encode(encoder, _heartbeat(20, 0.2))
    first_loud = (len(beating) + len(silent)) * FRAME_SAMPLES  # that block's first sample
    assert resumed[0], "the first block with sound in it is sent at once"
    assert resumed[0][-1] > first_loud - FRAME_SAMPLES  # its own packet, not an old one
    assert all(resumed), "and every block after it"


def test_without_the_gate_silence_costs_a_packet_every_20_ms() -> None:
    encoder = OpusEncoder(64_000, dtx=False)
    silent = _encode(encoder, np.zeros((2 * RATE, 2), np.int16))
    assert sum(map(len, silent)) >= 99


def test_a_line_in_noise_floor_is_silence_a_voice_is_not() -> None:
    rng = np.random.default_rng(1)
    hiss = (rng.standard_normal((FRAME_SAMPLES, 2)) * 10).astype(np.int16)  # about -70 dBFS
    assert dtx.level_dbfs(hiss) < dtx.THRESHOLD_DBFS
    t = np.arange(FRAME_SAMPLES) / RATE
    quiet_voice = (np.sin(2 * np.pi * 200 * t) * 300).astype(np.int16)  # about -43 dBFS
    assert dtx.level_dbfs(quiet_voice) > dtx.THRESHOLD_DBFS
    gate = dtx.SilenceGate()
    held = [gate.send(hiss) for _ in range(100)]
    assert held.count(True) <= dtx.HANGOVER_FRAMES + 100 // dtx.KEEPALIVE_FRAMES
    assert gate.send(quiet_voice) and not gate.closed


def test_a_dtx_frame_decodes_to_silence() -> None:
    import av

    from appliance.sound.opus import TIME_BASE, dtx_frame

    encoder = OpusEncoder(64_000, dtx=False)
    packet = encoder.encode(synthetic.to_frame(synthetic.render(0, FRAME_SAMPLES)))[0]
    frame = dtx_frame(packet)
    assert frame.size == 1 and frame.pts == packet.pts
    frame.time_base = TIME_BASE
    decoder = av.CodecContext.create("libopus", "r")
    (decoded,) = decoder.decode(frame)
    assert decoded.samples == FRAME_SAMPLES and not decoded.to_ndarray().any()
