"""The scanner's HDMI sound: the TC358743's I2S output, an ALSA card of its own.

``dtoverlay=tc358743-audio`` makes the card (``tc358743`` by default). The Pi's I2S is the
clock's slave: the samples come at whatever rate the scanner sends (32, 44.1 or 48 kHz), and a
capture opened at another rate would play at the wrong pitch. So the rate is read from the
bridge's own controls (:class:`AudioControls`: the driver's ``audio_sampling_rate`` and
``audio_present``), the card is opened at that rate, reopened when it changes (a new source, or
the scanner's setting), and resampled here to the 48 kHz the encoder takes. While the scanner
sends no sound the card stays closed and :attr:`HdmiSound.signal` says so (the staff's page
shows it). Read through :class:`~appliance.sound.alsa.AlsaSound`, the same code as any ALSA
PCM; tested here through ALSA's userspace ``file`` plugin and the fake bridge's controls
(tests/integration/test_sound_hdmi.py).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Protocol, runtime_checkable

import av

from ..errors import DeviceError
from .alsa import AlsaSound
from .base import CHANNELS, FRAME_SAMPLES, RATE, CapturedSound, SoundSignal

logger = logging.getLogger(__name__)

#: The bridge's card name under ``dtoverlay=tc358743-audio``.
DEFAULT_CARD = "tc358743"
#: How often the bridge's controls are read while capturing or waiting for sound (seconds).
CHECK_S = 0.25


@runtime_checkable
class AudioControls(Protocol):
    """The bridge's audio controls (:class:`~appliance.capture.bridge.BridgeAudioControls`;
    in tests :class:`~appliance.capture.fake_v4l2.FakeTC358743`)."""

    def read_audio(self) -> tuple[int, bool]:
        """(sampling rate in Hz, 0 = no signal; audio present). OSError: the bridge is gone."""

    def release_audio(self) -> None:
        """Let go of what reading them holds (a device node) until the next read."""


def card_pcm(card: str) -> str:
    """The ALSA PCM for ``card``'s first capture device, converting sample formats (``plughw``:
    the I2S card offers 32-bit frames, a USB adapter may be mono)."""
    return f"plughw:CARD={card},DEV=0"


class HdmiSound:
    """Implements :class:`~appliance.sound.base.SoundSource` on the bridge's I2S card."""

    def __init__(self, controls: AudioControls, pcm: str = card_pcm(DEFAULT_CARD)) -> None:
        self._controls = controls
        self.pcm = pcm
        self.signal = SoundSignal.IDLE
        self.rate = 0  # the rate the card is open at (0: closed)
        self.opened = 0  # how many times the card was opened (a rate change reopens it)
        self._alsa: AlsaSound | None = None
        self._resampler: av.AudioResampler | None = None
        self._ready: collections.deque[CapturedSound] = collections.deque()
        self._in = 0.0  # samples read since opening, in 48 kHz samples
        self._out = 0  # 48 kHz samples handed out since opening
        self._checked = 0.0
        self._closed = threading.Event()

    def open(self) -> None:
        self._closed.clear()
        self._check(force=True)

    def read(self, timeout: float) -> CapturedSound | None:
        deadline = time.monotonic() + timeout
        while not self._closed.is_set():
            if self._ready:
                return self._ready.popleft()
            self._check()
            alsa = self._alsa
            left = deadline - time.monotonic()
            if alsa is None:  # no sound now: look again soon
                if left <= 0 or self._closed.wait(min(CHECK_S, left)):
                    return None
                continue
            captured = alsa.read(timeout=max(left, 0.0))
            if captured is None:
                if alsa.signal is SoundSignal.NO_DEVICE:  # the card went away: look again
                    self._set(SoundSignal.NO_DEVICE, "the HDMI sound card stopped")
                    self._close_card()
                return None
            self._resample(captured)
            if time.monotonic() >= deadline and not self._ready:
                return None
        return None

    def close(self) -> None:
        self._closed.set()
        self._close_card()
        self._controls.release_audio()
        self.signal = SoundSignal.IDLE

    # -- following the bridge -------------------------------------------------------------------

    def _check(self, force: bool = False) -> None:
        """Read the controls (every :data:`CHECK_S`); open, reopen or close the card to match."""
        now = time.monotonic()
        if not force and now - self._checked < CHECK_S:
            return
        self._checked = now
        try:
            rate, present = self._controls.read_audio()
        except OSError as exc:
            self._set(SoundSignal.NO_DEVICE, "the bridge's audio controls cannot be read: %s", exc)
            self._close_card()
            return
        if not present or rate <= 0:
            self._set(SoundSignal.NO_AUDIO, "the scanner sends no sound")
            self._close_card()
            return
        if rate != self.rate or self._alsa is None:
            self._close_card()
            self._open_card(rate)

    def _open_card(self, rate: int) -> None:
        alsa = AlsaSound(self.pcm, rate=rate, channels=CHANNELS)
        try:
            alsa.open()
        except DeviceError as exc:
            self._set(SoundSignal.NO_DEVICE, "%s", exc)
            return
        self._alsa, self.rate = alsa, rate
        self.opened += 1
        self._resampler = av.AudioResampler(
            format="s16", layout="stereo", rate=RATE, frame_size=FRAME_SAMPLES
        )
        self._in, self._out = 0.0, 0
        logger.info("HDMI sound at %d Hz", rate)
        self._set(SoundSignal.PRESENT)

    def _close_card(self) -> None:
        self._ready.clear()
        if self._alsa is not None:
            self._alsa.close()
            self._alsa = None
        self.rate = 0
        self._resampler = None

    def _set(self, signal: SoundSignal, why: str = "", *args: object) -> None:
        if signal is not self.signal and why:
            logger.info(why, *args)
        self.signal = signal

    def _resample(self, captured: CapturedSound) -> None:
        """To 48 kHz stereo in 20 ms blocks, each stamped from the device's own read times (what
        the resampler still holds is counted back from the latest read's end, so the stamps
        never drift from the wall clock, whatever the scanner's clock or an overrun does)."""
        resampler = self._resampler  # None once closed from another thread
        if resampler is None:
            return
        frame = captured.frame
        frame.pts = None
        self._in += frame.samples * RATE / frame.sample_rate
        end = captured.captured_at + frame.samples / frame.sample_rate
        outs = resampler.resample(frame)
        made = sum(out.samples for out in outs)
        at = end - (self._in - self._out) / RATE  # the first new block's first sample
        self._out += made
        for out in outs:
            self._ready.append(CapturedSound(out, at))
            at += out.samples / RATE
