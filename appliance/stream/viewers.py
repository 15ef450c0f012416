"""The one owner of the viewers' peer connections and of the packets' fan-out to them.

Peers are made here for an accepted knock (pending), adopted when the core seats their viewer
(the seated viewer's new connection replaces any previous one), and closed here. Whoever else
holds a peer (the signalling gate answering its offer) gets it from here and gives it back; a
seated viewer's connection closing is reported once through ``on_left``.

While someone watches, a control task runs every ``RATE_PERIOD`` seconds: each adopted peer's
rate controller decides from its RTCP feedback, and the media side (shared by all viewers) gets
the slowest viewer's decision through its port (``MediaControl.set_rate``: the encoder bitrate
and ladder step); the pacers follow their own viewer's target. A peer whose path goes dead (no
receiver report for :data:`~appliance.vocab.STALL_AFTER_S`) or comes back is reported through
``on_health(peer, stalled)``. What a
round asks of the encoder (a keyframe when the path is back, or instead of retransmissions the
budget refused) is the keyframe policy's (:func:`appliance.encode.keyframes.after_round`); a
viewer's PLI/FIR goes to the same port. The viewers' status messages carry the picture step
(``"step"``), ``"reconnecting"`` while the path is stalled, and which feedback the rate follows
(``"rate_control"``: ``"transport-cc"``, the send-side estimator, or ``"receiver-reports"``).
A probe the estimator asks for is sent by the peer (:meth:`ViewerPeer.start_probe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .. import allocator
from ..config import IceServer
from ..encode.keyframes import KeyframeReason, after_round
from ..errors import InvalidStateError
from ..vocab import STALL_AFTER_S
from . import compat
from .fanout import PacketFanout
from .feedback import LinkSettings
from .peers import ViewerPeer
from .ports import MediaControl
from .ratecontrol import RateDecision

logger = logging.getLogger(__name__)

#: How often the rate controllers decide (seconds).
RATE_PERIOD = 0.2
#: this long after the last peer closed, what it left is collected and given back
#: (:func:`appliance.allocator.release_session_memory`)
RELEASE_AFTER_S = 2.0

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
        media: MediaControl,
        fanout: PacketFanout,
        on_left: Callable[[ViewerPeer], None],
        *,
        link: LinkSettings | None = None,
        on_health: OnHealth = viewer_health,
        on_talk: Callable[[bool], None] = lambda on: None,
    ) -> None:
        self._ice_servers = ice_servers
        self._media = media
        self._on_left = on_left
        self._link = link or LinkSettings()
        self._on_health = on_health
        self._on_talk = on_talk
        #: the encoder's packets to every track (built with the media, which publishes to it)
        self.fanout = fanout
        if not compat.patches_installed():  # the root applies them once, at start-up
            raise InvalidStateError("compat.install_patches() was not called at start-up")
        self._pending: set[ViewerPeer] = set()
        self._adopted: list[ViewerPeer] = []
        self._control: asyncio.Task[None] | None = None
        self._status: dict[str, Any] | None = None
        self._extra: dict[str, Any] = {}
        self._release: asyncio.TimerHandle | None = None
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
            self._media.sound_fanout,
            self._ice_servers + tuple(extra_ice),
            on_keyframe_request=self._viewer_asked,
            on_closed=self._closed,
            link=self._link,
            room=self._media.room_fanout,
            talkback=self._media.talkback,
            on_talk=self._talks,
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
        peer.adopted = True
        if peer not in self._adopted:
            self._adopted.append(peer)
            self._media.set_viewers(len(self._adopted))
        if self._control is None or self._control.done():
            self._control = asyncio.ensure_future(self._control_loop())
        return True

    async def release(self, peer: ViewerPeer) -> None:
        """Give back a peer that was not adopted (its attempt was dropped): it is no longer
        pending from this call on, and closed."""
        if peer in self._pending:
            self._pending.discard(peer)
            await self.close(peer)  # reports through _closed

    async def close(self, peer: ViewerPeer) -> None:
        await peer.close()  # reports through _closed

    async def close_all(self) -> None:
        # together: each close may take its CLOSE_WAIT (a TURN server gone); the last one to
        # finish schedules the release. One that fails is logged and the others still close:
        # the core's end of a session, and the box's stop, must go on.
        peers = [*self._pending, *self._adopted]
        try:
            results = await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
            for peer, result in zip(peers, results, strict=True):
                if isinstance(result, Exception):  # its kind only: no address in the log
                    logger.warning(
                        "viewer %s: closing its connection failed (%s)",
                        peer.short_id,
                        type(result).__name__,
                    )
        finally:
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
            refused = peer.feedback.take_refused()
            if peer.pacer is not None:
                peer.pacer.set_target(max(decision.target_bps, decision.sent_bps))
            was_stalled = peer.stalled
            if decision.stalled != was_stalled:
                peer.stalled = decision.stalled
                self._on_health(peer, decision.stalled)
            reason = after_round(refused, was_stalled, decision.stalled)
            if reason is not None:
                self._media.keyframe(reason)
            probe = peer.feedback.take_probe()
            if probe is not None:
                peer.start_probe(probe)
        if not decisions:
            return
        slowest_peer, slowest = min(decisions, key=lambda pd: pd[1].target_bps)
        step = max((d.step for _, d in decisions), key=lambda s: s.level)
        previous, self.decision = self.decision, slowest
        if previous is None or previous.step != step:
            logger.info("picture step %s at %d kbit/s", step.name, slowest.target_bps // 1000)
        self._media.set_rate(slowest.encoder_bps, step)
        mode = slowest_peer.rate_mode
        extra = {
            "step": step.name,
            "reconnecting": any(d.stalled for _, d in decisions),
            "rate_control": mode.value if mode is not None else None,
        }
        if extra != self._extra:
            self._extra = extra
            if self._status is not None:
                self.tell(self._status)

    def _talks(self, peer: ViewerPeer, on: bool) -> None:
        """The phone's talk button; only the seated viewer's connection is heard."""
        if peer in self._adopted:
            self._on_talk(on)

    def _viewer_asked(self) -> None:
        """A viewer's PLI or FIR (through the hook on its sender)."""
        self._media.keyframe(KeyframeReason.PLI)

    def _closed(self, peer: ViewerPeer) -> None:
        self._pending.discard(peer)
        if peer in self._adopted:
            self._adopted.remove(peer)
            self._media.set_viewers(len(self._adopted))
            self._on_left(peer)
        if not self._adopted and not self._pending:
            self._release_later()

    def _release_later(self) -> None:
        """Once nobody is connected: collect and give back what the peers left, a moment later
        (their last references go as their close completes)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the loop: nothing to schedule on
            return
        if self._release is not None:
            self._release.cancel()
        self._release = loop.call_later(RELEASE_AFTER_S, self._release_memory)

    def _release_memory(self) -> None:
        self._release = None
        if not self._adopted and not self._pending:  # nobody came back meanwhile
            allocator.release_session_memory()
