"""The sound's share of the link: the sound keeps its bitrate first and the picture gets the rest;
only a very low estimate squeezes the sound (to 16 kbit/s), set through the media port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from appliance.capture.masks import MaskStore
from appliance.hearing import Hearing
from appliance.sound import synthetic
from appliance.sound.opus import OpusEncoder
from appliance.stream.ladder import LadderStep
from appliance.stream.media import Media
from appliance.stream.pipeline import Mode
from appliance.stream.sound import SoundFanout, SoundPipeline
from appliance.stream.soundshare import SQUEEZED_BPS, SoundShare

FULL = LadderStep(0, "full", 30.0, 1.0)


def test_the_sound_keeps_its_share_and_the_picture_gives_way() -> None:
    share = SoundShare(64_000)
    for link in (4_000_000, 1_000_000, 500_000, 370_000):
        split = share.split(link)
        assert split.sound_bps == 64_000, link  # the sound is whole while the picture shrinks
        assert split.picture_bps == link - 64_000
    low = share.split(280_000)  # a very low estimate: the picture is at its floor already
    assert (low.sound_bps, low.picture_bps) == (SQUEEZED_BPS, 280_000 - SQUEEZED_BPS)
    assert share.split(330_000).sound_bps == SQUEEZED_BPS  # no flapping near the threshold
    assert share.split(400_000).sound_bps == 64_000  # the link came back


def test_a_sound_below_the_squeeze_keeps_its_own_bitrate() -> None:
    assert SoundShare(12_000).split(100_000).sound_bps == 12_000


class Picture:
    """The media thread's side of the port, as recorded."""

    def __init__(self) -> None:
        self.rates: list[tuple[int, LadderStep]] = []

    def set_rate(self, bitrate: int, step: LadderStep) -> None:
        self.rates.append((bitrate, step))

    def set_frame_filter(self, apply: object) -> None:
        pass

    def set_mode(self, mode: Mode) -> None:
        pass

    def set_viewers(self, count: int) -> None:
        pass


def _bytes_per_second(encoder: OpusEncoder, start: int) -> int:
    blocks = [synthetic.render(start + i * 960, 960) for i in range(50)]
    return sum(p.size for b in blocks for p in encoder.encode(synthetic.to_frame(b)))


def test_the_media_port_sets_both_encoders_and_the_sound_shrinks(tmp_path: Path) -> None:
    async def run() -> None:
        encoder = OpusEncoder(64_000)
        sound = SoundPipeline(
            synthetic.SyntheticSound, encoder, SoundFanout(), asyncio.get_running_loop()
        )
        picture = Picture()
        media = Media(picture, MaskStore(tmp_path / "mask.json", ()), sound)  # type: ignore[arg-type]
        full = _bytes_per_second(encoder, 0)
        assert 6_000 <= full <= 10_000  # about 64 kbit/s
        media.set_mode(Mode.LIVE)
        media.set_viewers(1)  # the sound is sending
        media.set_rate(2_000_000, FULL)
        assert picture.rates[-1] == (2_000_000 - 64_000, FULL)
        assert sound.bitrate == 64_000
        media.set_rate(250_000, FULL)
        assert picture.rates[-1] == (250_000 - SQUEEZED_BPS, FULL)
        assert sound.bitrate == SQUEEZED_BPS
        squeezed = _bytes_per_second(encoder, 50 * 960)
        assert encoder.bitrate == SQUEEZED_BPS
        assert squeezed < full / 2.5, (squeezed, full)
        decoded = _decode(encoder, 100 * 960)  # still the heartbeat, at a quarter of the bits
        spectrum = np.abs(np.fft.rfft(decoded))
        hz = (np.argmax(spectrum[1:]) + 1) * 48_000 / len(decoded)
        assert synthetic.BAND[0] - 50 <= hz <= synthetic.BAND[1] + 50

    asyncio.run(run())


def test_only_the_sounds_sending_take_their_share_and_at_once(tmp_path: Path) -> None:
    """The room microphone's bitrate is taken off the picture while the staff have it on; the
    scanner's sound gives its share back while muted; each change applies at once."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        scanner = SoundPipeline(synthetic.SyntheticSound, OpusEncoder(64_000), SoundFanout(), loop)
        room = SoundPipeline(
            synthetic.SyntheticSound, OpusEncoder(32_000), SoundFanout(), loop, enabled=False
        )
        picture = Picture()
        masks = MaskStore(tmp_path / "mask.json", ())
        media = Media(picture, masks, scanner, room=room)  # type: ignore[arg-type]
        media.set_rate(2_000_000, FULL)  # nobody watching: nothing is sent but the picture
        assert picture.rates[-1][0] == 2_000_000
        media.set_mode(Mode.LIVE)
        media.set_viewers(1)
        media.set_hearing(Hearing(scanner=True))
        assert picture.rates[-1][0] == 2_000_000 - 64_000  # at once, not at the next step
        media.set_hearing(Hearing(scanner=True, microphone=True))
        assert picture.rates[-1][0] == 2_000_000 - 64_000 - 32_000
        media.set_rate(1_000_000, FULL)
        assert picture.rates[-1][0] == 1_000_000 - 64_000 - 32_000
        media.set_hearing(Hearing(microphone=True))  # the scanner muted
        assert picture.rates[-1][0] == 1_000_000 - 32_000
        media.set_rate(280_000, FULL)  # a very low estimate while the scanner is muted
        media.set_rate(362_000, FULL)  # back, but within the squeeze's band (less the room's)
        media.set_hearing(Hearing(scanner=True, microphone=True))
        assert scanner.bitrate == SQUEEZED_BPS, "the squeeze followed while muted"
        assert picture.rates[-1][0] == 362_000 - 32_000 - SQUEEZED_BPS
        media.set_mode(Mode.PAUSED)
        assert picture.rates[-1][0] == 362_000
        for pipeline in (scanner, room):
            pipeline.stop()

    asyncio.run(run())


def _decode(encoder: OpusEncoder, start: int) -> np.ndarray:
    import av

    decoder = av.CodecContext.create("libopus", "r")
    out = []
    for i in range(50):
        for packet in encoder.encode(synthetic.to_frame(synthetic.render(start + i * 960, 960))):
            for frame in decoder.decode(packet):
                out.append(frame.to_ndarray().reshape(-1))
    pcm = np.concatenate(out).astype(float)
    return pcm.reshape(-1, 2)[:, 0] if len(pcm) % 2 == 0 else pcm
