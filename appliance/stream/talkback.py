"""Talk-back: the phone's voice, played in the room on the speakerphone, only while the core says
it is heard (:attr:`appliance.hearing.Hearing.talkback`: the staff allowed it, the picture is
live, the co-parent holds the talk button).

The viewer's audio track (the room's m-line, sendrecv) is always read on the loop, so aiortc's
receive queue never grows; its frames are dropped unless playing. Playing frames go to the
speaker thread through a small queue (a late block is dropped, never piled up); the thread opens
the speaker when the first frame comes and closes it as soon as playing stops, so the device is
held only while the phone talks. Samples live in memory only, one block at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..errors import DeviceError

logger = logging.getLogger(__name__)

#: At most this many 20 ms blocks wait for the speaker (a backlog is dropped, not played late).
QUEUE_BLOCKS = 10


class Speaker(Protocol):
    """A playback device (appliance.sound.speaker.AlsaSpeaker)."""

    def open(self) -> None: ...
    def write(self, frame: av.AudioFrame) -> None: ...
    def close(self) -> None: ...


class TalkBack:
    """Reads the viewers' voice tracks and plays them while :meth:`set_playing` says so."""

    def __init__(self, make_speaker: Callable[[], Speaker]) -> None:
        self._make_speaker = make_speaker
        self._playing = False
        self._queue: queue.Queue[av.AudioFrame | None] = queue.Queue(QUEUE_BLOCKS)
        self._readers: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        #: blocks received from phones, and blocks handed to the speaker (tests, the bench)
        self.received = 0
        self.played = 0

    @property
    def playing(self) -> bool:
        return self._playing

    def set_playing(self, on: bool) -> None:
        """Play the phone's voice (``on``), or drop it; on the loop."""
        if on == self._playing:
            return
        self._playing = on
        if not on:
            self._drain()
            self._put(None)  # the speaker closes now
        logger.info("talk-back %s", "playing" if on else "stopped")

    def attach(self, track: MediaStreamTrack, current: Callable[[], bool]) -> None:
        """Read a viewer's voice track until it ends (on the loop); its frames may be played
        only while ``current()`` (the seated viewer's adopted connection, not a pending one)."""
        task = asyncio.ensure_future(self._read(track, current))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    async def _read(self, track: MediaStreamTrack, current: Callable[[], bool]) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.received += 1
            if self._playing and current() and isinstance(frame, av.AudioFrame):
                self._put(frame)

    def _put(self, frame: av.AudioFrame | None) -> None:
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            if frame is None:  # the stop must get through: drop the backlog instead
                self._drain()
                self._queue.put_nowait(None)

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    # -- the speaker thread ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="talkback", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop playing, end the speaker thread and release the speaker. Idempotent. The
        readers end with their tracks (their peers close)."""
        self._playing = False
        self._stopping.set()
        self._drain()
        self._put(None)
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        speaker: Speaker | None = None
        failed = False  # the speaker would not open: not tried again until the next talk
        try:
            while not self._stopping.is_set():
                frame = self._queue.get()
                if frame is None:
                    if speaker is not None:
                        speaker.close()
                        speaker = None
                    failed = False
                    continue
                if speaker is None and not failed:
                    speaker, failed = self._open()
                if speaker is not None:
                    speaker.write(frame)
                    self.played += 1
        except Exception:
            logger.exception("talk-back playback failed")
        finally:
            if speaker is not None:
                speaker.close()

    def _open(self) -> tuple[Speaker | None, bool]:
        speaker = self._make_speaker()
        try:
            speaker.open()
        except DeviceError as exc:
            logger.warning("talk-back: %s", exc)
            return None, True
        return speaker, False
