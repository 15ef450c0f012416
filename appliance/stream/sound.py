"""The sound beside the picture: the sound thread (source -> Opus -> the loop), the packets'
fan-out to the viewers' audio tracks, and the track aiortc sends.

The sound follows the same mode and viewer count as the picture (:class:`~appliance.stream.
media.Media` sets both in one call, so the slate and the sound come and go together): it is
read, encoded and sent only while LIVE with a viewer. Leaving LIVE closes the source (nothing
is heard) and the fan-out's gate on the loop, which drops what was queued: no sound packet
leaves while paused or before admission. Samples live in memory only, one block at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..sound.base import RATE, SoundSource
from ..sound.opus import OpusEncoder
from .pipeline import Mode

logger = logging.getLogger(__name__)


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
    ) -> None:
        self._make_source = make_source
        self._encoder = encoder
        self.fanout = fanout
        self._loop = loop
        self._mode = Mode.OFF
        self._viewers = 0
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._source: SoundSource | None = None
        self._origin = time.monotonic()
        self.blocks_read = 0
        self.packets_encoded = 0

    @property
    def sending(self) -> bool:
        return self._mode is Mode.LIVE and self._viewers > 0 and not self._stopping

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
        self._source = source
        source.open()
        self._encoder.restart_at(int((time.monotonic() - self._origin) * RATE))
        try:
            while self.sending:
                captured = source.read(timeout=0.5)
                if captured is None or not self.sending:
                    continue
                self.blocks_read += 1
                for packet in self._encoder.encode(captured.frame, captured.captured_at):
                    self.packets_encoded += 1
                    self._post(packet)
        finally:
            self._source = None
            source.close()

    def _post(self, packet: av.Packet) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.fanout.publish, packet)
