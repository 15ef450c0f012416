"""What the core needs of the layers below it, as protocols: the signalling side and the viewers'
peers. The composition root hands it the real ones (signalling.gate.Gate, stream.viewers.Viewers);
the unit tests hand it in-memory ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..session.session import Session, Viewer

if TYPE_CHECKING:
    from ..stream.peers import ViewerPeer

#: What the viewer's page is told over its data channel (docs/protocol.md, "status").
ViewerMessage = dict[str, object]


class Signalling(Protocol):
    """What the core asks of the signalling side (appliance.signalling.gate.Gate). The core runs
    every call beside its loop (appliance.core.relaycalls), never inside a handler."""

    async def open(self, session: Session) -> None:
        """Open the session's room at the relay and start answering knocks."""

    async def refuse(self, session: Session, viewer: Viewer) -> None:
        """Tell a viewer it was refused (its key is banned), and the relay to drop it."""

    async def release(self, session: Session, viewer: Viewer) -> None:
        """Tell a viewer its seat went to another phone (not banned), and the relay to drop it."""

    async def close(self, session: Session, reason: str) -> None:
        """Tell the viewer the session is over, close the room, stop answering."""

    async def extend(self, session: Session, expires: int) -> None:
        """Tell the relay the session's room now lives until ``expires``."""


class ViewerPool(Protocol):
    """What the core needs of the viewers' peers (appliance.stream.viewers.Viewers)."""

    @property
    def count(self) -> int: ...

    async def adopt(self, peer: ViewerPeer) -> bool: ...
    async def release(self, peer: ViewerPeer) -> None: ...
    async def close_all(self) -> None: ...
    def tell(self, status: ViewerMessage) -> None: ...
