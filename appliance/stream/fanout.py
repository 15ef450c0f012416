"""Hands the encoder's packets to every subscribed track, on the event loop.

A new subscriber, and one that overflowed, wait for a keyframe and ask for one
(``NEW_VIEWER``, ``RESYNC``: urgent in the policy, :mod:`appliance.encode.keyframes`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import av

from ..encode.keyframes import KeyframeReason, KeyframeRequests

logger = logging.getLogger(__name__)


class Subscription:
    """One track's queue of packets. It starts at a keyframe and resyncs at one after overflow."""

    def __init__(self, fanout: PacketFanout, maxsize: int) -> None:
        self._fanout = fanout
        self.queue: asyncio.Queue[av.Packet | None] = asyncio.Queue(maxsize)
        self.waiting_for_keyframe = True
        self.dropped = 0

    def offer(self, packet: av.Packet) -> bool:
        """Queue ``packet``; return False when a keyframe is needed to resync."""
        if self.waiting_for_keyframe:
            if not packet.is_keyframe:
                return False
            self.waiting_for_keyframe = False
        try:
            self.queue.put_nowait(packet)
        except asyncio.QueueFull:
            # The viewer cannot keep up: drop what is queued and restart at the next keyframe.
            self.dropped += self.queue.qsize()
            while not self.queue.empty():
                self.queue.get_nowait()
            self.waiting_for_keyframe = True
            return False
        return True

    async def get(self) -> av.Packet | None:
        return await self.queue.get()

    def close(self) -> None:
        self._fanout.unsubscribe(self)
        try:
            self.queue.put_nowait(None)  # wake a waiting recv()
        except asyncio.QueueFull:
            pass


class PacketFanout:
    """Distributes packets to subscriptions; asks the encoder for a keyframe when one needs it."""

    def __init__(self, keyframes: KeyframeRequests, maxsize: int = 30) -> None:
        self._keyframes = keyframes
        self._maxsize = maxsize
        self._subs: list[Subscription] = []

    def subscribe(self) -> Subscription:
        sub = Subscription(self, self._maxsize)
        self._subs.append(sub)
        self._keyframes.keyframe(KeyframeReason.NEW_VIEWER)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, packet: av.Packet) -> None:
        need_keyframe = False
        for sub in self._subs:
            if not sub.offer(packet):
                need_keyframe = True
        if need_keyframe:
            self._keyframes.keyframe(KeyframeReason.RESYNC)

    def publisher(self, loop: asyncio.AbstractEventLoop) -> Callable[[av.Packet], None]:
        """A ``publish`` for the media thread: it hops onto ``loop``."""

        def publish(packet: av.Packet) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.publish, packet)

        return publish
