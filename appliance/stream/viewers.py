"""The one owner of the viewers' peer connections and of the packets' fan-out to them.

Peers are made here for an accepted knock (pending), adopted when the core seats their viewer
(the seated viewer's new connection replaces any previous one), and closed here. Whoever else
holds a peer (the signalling gate answering its offer) gets it from here and gives it back; a
seated viewer's connection closing is reported once through ``on_left``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import av

from ..config import IceServer
from .fanout import PacketFanout
from .peers import ViewerPeer

logger = logging.getLogger(__name__)


class Viewers:
    """Makes, adopts, drops and closes the viewers' peers; feeds them the encoder's packets."""

    def __init__(
        self,
        ice_servers: tuple[IceServer, ...],
        request_keyframe: Callable[[], None],
        on_count: Callable[[int], None],
        on_left: Callable[[ViewerPeer], None],
    ) -> None:
        self._ice_servers = ice_servers
        self._request_keyframe = request_keyframe
        self._on_count = on_count
        self._on_left = on_left
        self.fanout = PacketFanout(request_keyframe)
        self._pending: set[ViewerPeer] = set()
        self._adopted: list[ViewerPeer] = []

    @property
    def peers(self) -> tuple[ViewerPeer, ...]:
        """The adopted peers (the seated viewer's connection, at most one in practice)."""
        return tuple(self._adopted)

    @property
    def count(self) -> int:
        """How many adopted peers there are (what the media pipeline encodes for)."""
        return len(self._adopted)

    @property
    def pending(self) -> int:
        """How many peers were made for a knock and not adopted (yet)."""
        return len(self._pending)

    def make(self, extra_ice: tuple[IceServer, ...] = ()) -> ViewerPeer:
        """A new peer for an accepted knock, pending until :meth:`adopt`."""
        peer = ViewerPeer(
            self.fanout,
            self._ice_servers + tuple(extra_ice),
            on_keyframe_request=self._request_keyframe,
            on_closed=self._closed,
        )
        self._pending.add(peer)
        return peer

    async def adopt(self, peer: ViewerPeer) -> bool:
        """Make ``peer`` the viewer's connection, closing any other; False if it already closed."""
        if peer not in self._pending and peer not in self._adopted:
            return False
        self._pending.discard(peer)
        for old in list(self._adopted):
            if old is not peer:
                await self.close(old)
        if peer not in self._adopted:
            self._adopted.append(peer)
            self._on_count(len(self._adopted))
        return True

    async def release(self, peer: ViewerPeer) -> None:
        """Give back a peer that was not adopted (its attempt was dropped): it is closed."""
        if peer in self._pending:
            await self.close(peer)

    async def close(self, peer: ViewerPeer) -> None:
        await peer.close()  # reports through _closed

    async def close_all(self) -> None:
        for peer in [*self._pending, *self._adopted]:
            await peer.close()

    def tell(self, status: dict[str, Any]) -> None:
        """Send ``status`` to every adopted viewer (over its DTLS-protected data channel)."""
        for peer in self._adopted:
            peer.send_status(status)

    def publish(self, packet: av.Packet) -> None:
        """Hand an encoded packet to every viewer's track; call on the loop."""
        self.fanout.publish(packet)

    def publisher(self, loop: asyncio.AbstractEventLoop) -> Callable[[av.Packet], None]:
        """A ``publish`` for the media thread: it hops onto ``loop``."""

        def publish(packet: av.Packet) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.publish, packet)

        return publish

    def _closed(self, peer: ViewerPeer) -> None:
        self._pending.discard(peer)
        if peer in self._adopted:
            self._adopted.remove(peer)
            self._on_count(len(self._adopted))
            self._on_left(peer)
