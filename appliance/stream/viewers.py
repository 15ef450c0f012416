"""The one owner of the viewers' peer connections and of the packets' fan-out to them.

Peers are made here for an accepted knock (pending), adopted when the core seats their viewer
(the seated viewer's new connection replaces any previous one), and closed here. Whoever else
holds a peer (the signalling gate answering its offer) gets it from here and gives it back; a
seated viewer's connection closing is reported once through ``on_left``.

While someone watches, a control task runs every ``RATE_PERIOD`` seconds: each adopted peer's rate
controller decides from its RTCP feedback, and the pipeline (shared by all viewers) gets the slowest
viewer's decision through ``on_rate`` (its encoder bitrate and ladder step); the pacers follow their
own viewer's target. A peer whose path goes dead (no receiver report for
:data:`~appliance.vocab.STALL_AFTER_S`) or comes back is reported through ``on_health(peer,
stalled)``; on its return the encoder is asked for a keyframe at once, and so it is when
retransmissions the budget refused leave a viewer waiting for packets that will not come. The
viewers' status messages carry the picture step (``"step"``) and ``"reconnecting"`` while the path
is stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import av

from ..config import IceServer
from ..vocab import STALL_AFTER_S
from . import compat
from .fanout import PacketFanout
from .feedback import LinkSettings
from .ladder import LadderStep
from .peers import ViewerPeer
from .ratecontrol import RateDecision

logger = logging.getLogger(__name__)

#: How often the rate controllers decide (seconds).
RATE_PERIOD = 0.2
#: this many retransmissions refused (over budget) in one round: a keyframe instead (through
#: the pipeline's limiter, as a PLI: at most two a second)
REFUSED_FOR_KEYFRAME = 3

OnRate = Callable[[int, LadderStep], None]
OnHealth = Callable[[ViewerPeer, bool], None]


def viewer_health(peer: ViewerPeer, stalled: bool) -> None:
    """The default health hook: a log line (the box also tells the core, for the staff)."""
    if stalled:
        logger.warning(
            "viewer %s: no receiver report for %.0f s, path stalled", peer.short_id, STALL_AFTER_S
        )
    else:
        logger.info("viewer %s: receiver reports again", peer.short_id)


class Viewers:
    """Makes, adopts, drops and closes the viewers' peers; feeds them the encoder's packets."""

    def __init__(
        self,
        ice_servers: tuple[IceServer, ...],
        request_keyframe: Callable[[], None],
        on_count: Callable[[int], None],
        on_left: Callable[[ViewerPeer], None],
        *,
        link: LinkSettings | None = None,
        on_rate: OnRate | None = None,
        on_health: OnHealth = viewer_health,
        first_keyframe: Callable[[], None] | None = None,
    ) -> None:
        self._ice_servers = ice_servers
        self._request_keyframe = request_keyframe
        self._on_count = on_count
        self._on_left = on_left
        self._link = link or LinkSettings()
        self._on_rate = on_rate
        self._on_health = on_health
        self._first_keyframe = first_keyframe
        # a new subscriber (or one resyncing) has no picture: its keyframe skips the limiter
        self.fanout = PacketFanout(first_keyframe or request_keyframe)
        compat.bound_send_buffers()
        self._pending: set[ViewerPeer] = set()
        self._adopted: list[ViewerPeer] = []
        self._control: asyncio.Task[None] | None = None
        self._status: dict[str, Any] | None = None
        self._extra: dict[str, Any] = {}
        #: the decision the pipeline follows (the slowest viewer's), for logs, tests and bench
        self.decision: RateDecision | None = None

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
            link=self._link,
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
        if self._control is None or self._control.done():
            self._control = asyncio.ensure_future(self._control_loop())
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
        control, self._control = self._control, None
        if control is not None:
            control.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await control

    def tell(self, status: dict[str, Any]) -> None:
        """Send ``status`` to every adopted viewer (over its DTLS-protected data channel), with
        the picture step and whether the box is waiting for the path to come back."""
        self._status = status
        message = {**status, **self._extra}
        for peer in self._adopted:
            peer.send_status(message)

    # -- rate control ---------------------------------------------------------------------------

    async def _control_loop(self) -> None:
        while self._adopted:
            await asyncio.sleep(RATE_PERIOD)
            try:
                self.control_once()
            except Exception:  # noqa: BLE001 - never lose the loop to one bad decision
                logger.exception("rate control failed")

    def control_once(self) -> None:
        """One round: every adopted peer's controller decides; the pipeline follows the
        slowest; health changes are reported. Called every ``RATE_PERIOD`` (tests: directly)."""
        decisions: list[tuple[ViewerPeer, RateDecision]] = []
        for peer in list(self._adopted):
            if peer.feedback is None:
                continue
            decision = peer.feedback.update()
            decisions.append((peer, decision))
            if peer.feedback.take_refused() >= REFUSED_FOR_KEYFRAME and not decision.stalled:
                # the viewer waits for packets the budget will not resend: a fresh picture at
                # the new rate costs less than the backlog and ends the wait (limited as a PLI)
                self._request_keyframe()
            if peer.pacer is not None:
                peer.pacer.set_target(max(decision.target_bps, decision.sent_bps))
            if decision.stalled != peer.stalled:
                peer.stalled = decision.stalled
                self._on_health(peer, decision.stalled)
                if not decision.stalled:  # the path is back: a fresh picture at once
                    (self._first_keyframe or self._request_keyframe)()
        if not decisions:
            return
        slowest = min(decisions, key=lambda pd: pd[1].target_bps)[1]
        step = max((d.step for _, d in decisions), key=lambda s: s.level)
        previous, self.decision = self.decision, slowest
        if previous is None or previous.step != step:
            logger.info("picture step %s at %d kbit/s", step.name, slowest.target_bps // 1000)
        if self._on_rate is not None:
            self._on_rate(slowest.encoder_bps, step)
        extra = {"step": step.name, "reconnecting": any(d.stalled for _, d in decisions)}
        if extra != self._extra:
            self._extra = extra
            if self._status is not None:
                self.tell(self._status)

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
