"""The seat, for the core: the knocks it judges, the viewer it admits, refuses or lets go, the
viewer's connections adopted and lost. Runs on the core's loop, in its event order."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..errors import InvalidStateError
from ..session.session import Verdict
from ..state import State
from ..vocab import OPEN_STATES
from .base import CoreBase
from .events import RelayCall, VerifiedKnock

if TYPE_CHECKING:
    from ..stream.peers import ViewerPeer

logger = logging.getLogger(__name__)


class SeatKeeper(CoreBase):
    """Who holds the session's one seat, and what the staff decide about them."""

    def _knock(self, knock: VerifiedKnock) -> Verdict:
        """Judge a verified knock against the seat; an accepted one takes (or keeps) it."""
        session = self.session
        if session is None or self._state not in OPEN_STATES:
            return Verdict.TAKEN
        verdict = session.judge(knock.salt, knock.seat)
        if verdict is Verdict.TAKEN and session.turn_away(knock.seat):
            self._record("refused", reason="taken")  # once per phone: it keeps knocking
        if verdict in (Verdict.NEW, Verdict.RETURNING):
            session.seat(knock.seat, knock.name, knock.client)
            self._record("knock", returning=verdict is Verdict.RETURNING)
            if self._state is State.READY:
                self._set_state(State.WAITING)
        return verdict

    def _code_shown(self) -> bool:
        viewer = self.session.viewer if self.session is not None else None
        return viewer is not None and viewer.code is not None

    def _admit(self) -> None:
        assert self.session is not None
        viewer = self.session.viewer
        if viewer is None:
            raise InvalidStateError("nobody is waiting to be admitted")
        viewer.admitted = True
        self._record("admitted", after_s=round(time.monotonic() - self.session.opened_at))
        self._set_state(State.LIVE)

    async def _refuse(self) -> None:
        """The staff refused the seat's holder: its key is banned, the seat free; the phone is
        told "refused" beside the core."""
        session = self.session
        assert session is not None
        viewer = session.viewer
        if viewer is not None:
            self._relay.start(RelayCall.REFUSE, session, self._signalling.refuse(session, viewer))
        session.refuse()
        self._record("refused")
        await self._viewers.close_all()
        self._set_state(State.READY)

    async def _release(self, by_viewer: bool = False) -> None:
        """Let another phone in: the holder is told "released" (beside the core) and dropped, not
        banned, the seat is free; or the holder gave the seat up itself (``by_viewer``)."""
        session = self.session
        assert session is not None
        assert session.viewer is not None
        if by_viewer:
            self._record("viewer-left", on_purpose=True, reason="cancelled")
        else:
            viewer = session.viewer
            self._relay.start(RelayCall.RELEASE, session, self._signalling.release(session, viewer))
            self._record("refused", reason="released")
        session.release()
        await self._viewers.close_all()
        self._set_state(State.READY)

    async def _adopt(self, peer: ViewerPeer, code: str) -> None:
        """The seated viewer's new connection replaces any previous one."""
        session = self.session
        if session is None or session.viewer is None or self._state not in OPEN_STATES:
            await self._viewers.release(peer)
            return
        if not await self._viewers.adopt(peer):
            return  # it closed before its turn
        session.viewer.new_code(code)
        session.viewer.connected = True
        session.viewer.left_at = None
        session.viewer.stalled = False
        if self._state is State.READY:
            self._set_state(State.WAITING)
        if self._state is State.WAITING and self._settings.pre_admit:
            logger.warning("pre-admission is on: the viewer is admitted without the staff")
            self._admit()
        self._viewers.tell(self.viewer_message())

    def _viewer_left(self, on_purpose: bool = False) -> None:
        """The seated viewer is gone (a drop, or the page closed): the seat stays theirs and
        nothing ends; the staff see since when."""
        session = self.session
        viewer = session.viewer if session is not None else None
        if viewer is None or (self._viewers.count and not on_purpose):
            return
        viewer.connected = viewer.stalled = False
        if viewer.left_at is None:
            viewer.left_at = time.monotonic()
        if self._state is State.WAITING and not viewer.admitted:
            self._set_state(State.READY)
