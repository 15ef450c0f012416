"""The sound beside the picture: the sound thread (source -> Opus -> the loop), the packets'
fan-out to the viewers' audio tracks, and the track aiortc sends.

The sound follows the same mode and viewer count as the picture (:class:`~appliance.stream.
media.Media` sets both in one call, so the slate and the sound come and go together), and the
staff's switch (``set_enabled``: the scanner's mute; the room microphone, a second pipeline, is
off until switched on): it is read, encoded and sent only while LIVE with a viewer and switched
on. Leaving LIVE or switching off closes the source (nothing is heard) and the fan-out's gate
on the loop, which drops what was queued: no sound packet leaves while paused, muted or before
admission. Samples live in memory only, one block at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..errors import DeviceError
from ..sound.base import RATE, SoundSignal, SoundSource
from ..sound.opus import OpusEncoder
from .pipeline import Mode

logger = logging.getLogger(__name__)

#: Seconds between attempts to open a sound card that is missing (a USB adapter unplugged).
REOPEN_AFTER_S = 2.0


class SoundFanout:
    """Hands the encoded sound to every audio track, on the loop, while the gate is open."""

    def __init__(self, maxsize: int = 25) -> None:
        self._maxsize = maxsize  # half a second of 20 ms packets
        self._queues: list[asyncio.Queue[av.Packet | None]] = []
        self.open = False
        self.published = 0

    def subscribe(self) -> asyncio.Queue[av.Packet | None]:
        queue: asyncio.Queue[av.Packet | None] = asyncio.Queue(self._maxsize)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[av.Packet | None]) -> None:
        if queue in self._queues:
            self._queues.remove(queue)
        try:
            queue.put_nowait(None)  # wake a waiting recv()
        except asyncio.QueueFull:
            pass

    def set_open(self, is_open: bool) -> None:
        """Open or close the gate; closing drops every queued packet."""
        self.open = is_open
        if not is_open:
            for queue in self._queues:
                while not queue.empty():
                    queue.get_nowait()

    def publish(self, packet: av.Packet) -> None:
        if not self.open:
            return
        self.published += 1
        for queue in self._queues:
            if queue.full():  # a late viewer hears the newest sound, not an old backlog
                queue.get_nowait()
            queue.put_nowait(packet)


class EncodedAudioTrack(MediaStreamTrack):
    """``recv()`` returns Opus ``av.Packet``: aiortc packs them as they are; silent while the
    fan-out's gate is closed."""

    kind = "audio"

    def __init__(self, fanout: SoundFanout) -> None:
        super().__init__()
        self._fanout = fanout
        self._queue: asyncio.Queue[av.Packet | None] | None = fanout.subscribe()

    async def recv(self) -> av.Packet:
        queue = self._queue
        if queue is None or self.readyState != "live":
            raise MediaStreamError
        packet = await queue.get()
        if packet is None:
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        if self._queue is not None:
            self._fanout.unsubscribe(self._queue)
            self._queue = None
        super().stop()


class SoundPipeline:
    """Runs ``source`` -> Opus -> ``fanout`` (on ``loop``) in its own thread while sending."""

    def __init__(
        self,
        make_source: Callable[[], SoundSource],
        encoder: OpusEncoder,
        fanout: SoundFanout,
        loop: asyncio.AbstractEventLoop,
        *,
        enabled: bool = True,
    ) -> None:
        self._make_source = make_source
        self._encoder = encoder
        self.fanout = fanout
        self._loop = loop
        self._mode = Mode.OFF
        self._viewers = 0
        self._enabled = enabled
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._source: SoundSource | None = None
        self._origin = time.monotonic()
        self.blocks_read = 0
        self.packets_encoded = 0
        self._missing = False  # waiting to open the card again: it is missing
        self._warned = False  # said so in the log (once, until sound comes again)

    @property
    def signal(self) -> SoundSignal:
        """What the source hears now (:class:`~appliance.sound.base.SoundSignal`), for the
        staff's page: ``idle`` while nothing is captured."""
        source = self._source
        if source is not None:
            return source.signal
        return SoundSignal.NO_DEVICE if self._missing and self.sending else SoundSignal.IDLE

    @property
    def bitrate(self) -> int:
        """The sound's bitrate as last set (the encoder takes it at its next frame)."""
        return self._encoder.target_bitrate

    def set_bitrate(self, bitrate: int) -> None:
        """The sound's share of the viewer's link (the rate controller's), at the next frame."""
        self._encoder.set_bitrate(bitrate)

    @property
    def sending(self) -> bool:
        return (
            self._mode is Mode.LIVE and self._viewers > 0 and self._enabled and not self._stopping
        )

    def set_enabled(self, enabled: bool) -> None:
        """The staff's switch as the core derived it (the scanner's mute, the room microphone):
        off closes the source and the gate as a pause does."""
        with self._wake:
            self._enabled = enabled
            self._wake.notify_all()
        self._gate()

    def set_mode(self, mode: Mode) -> None:
        with self._wake:
            self._mode = mode
            self._wake.notify_all()
        self._gate()

    def set_viewers(self, count: int) -> None:
        with self._wake:
            self._viewers = count
            self._wake.notify_all()
        self._gate()

    def _gate(self) -> None:
        """The loop-side gate follows: closed at once when the sound must stop."""
        sending = self.sending
        if self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            running = False
        if running:
            self.fanout.set_open(sending)
        else:
            self._loop.call_soon_threadsafe(self.fanout.set_open, sending)

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="sound", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and release the source. Idempotent."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        source = self._source
        if source is not None:
            source.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._encoder.close()

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    self._wake.wait_for(lambda: self._stopping or self.sending)
                    if self._stopping:
                        return
                self._send_while_live()
        except Exception:
            logger.exception("sound pipeline failed")
            raise

    def _send_while_live(self) -> None:
        """Open the source, send until the mode or the viewers say stop, close it."""
        source = self._make_source()
        try:
            source.open()
        except DeviceError as exc:
            self._wait_to_reopen(str(exc))
            return
        self._missing = False
        self._source = source
        self._encoder.restart_at(int((time.monotonic() - self._origin) * RATE))
        lost = False
        try:
            while self.sending:
                captured = source.read(timeout=0.5)
                if captured is None and source.signal is SoundSignal.NO_DEVICE:
                    lost = True  # unplugged: closed below, opened again after a pause
                    break
                if captured is None or not self.sending:
                    continue
                self.blocks_read += 1
                self._warned = False
                for packet in self._encoder.encode(captured.frame, captured.captured_at):
                    self.packets_encoded += 1
                    self._post(packet)
        finally:
            self._source = None
            source.close()
        if lost:
            self._wait_to_reopen("the sound card stopped")

    def _wait_to_reopen(self, why: str) -> None:
        """The card is missing: say so, and let the next try come after a pause."""
        if not self._warned:
            logger.warning("sound: %s; trying again every %.0f s", why, REOPEN_AFTER_S)
            self._warned = True
        self._missing = True
        with self._wake:
            self._wake.wait_for(lambda: self._stopping or not self.sending, REOPEN_AFTER_S)

    def _post(self, packet: av.Packet) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.fanout.publish, packet)
