"""What the core needs of the layers below it, as protocols: the signalling side and the viewers'
peers. The composition root hands it the real ones (signalling.gate.Gate, stream.viewers.Viewers);
the unit tests hand it in-memory ones."""

from __future__ import annotations

from typing import Any, Protocol

from ..session.session import Session, Viewer


class Signalling(Protocol):
    """What the core asks of the signalling side (appliance.signalling.gate.Gate)."""

    async def open(self, session: Session) -> None:
        """Open the session's room at the relay and start answering knocks."""

    async def refuse(self, session: Session, viewer: Viewer) -> None:
        """Tell a viewer it was refused, and the relay to drop it."""

    async def close(self, session: Session, reason: str) -> None:
        """Tell the viewer the session is over, close the room, stop answering."""

    async def extend(self, session: Session) -> None:
        """Tell the relay the session's new expiry."""


class ViewerPool(Protocol):
    """What the core needs of the viewers' peers (appliance.stream.viewers.Viewers)."""

    @property
    def count(self) -> int: ...

    async def adopt(self, peer: Any) -> bool: ...
    async def release(self, peer: Any) -> None: ...
    async def close_all(self) -> None: ...
    def tell(self, status: dict[str, Any]) -> None: ...
