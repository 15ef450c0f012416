"""What the core hears: button presses, typed staff commands, the signalling side's news.

Every change of state arrives as one of these on the core's queue and is handled in order. Staff
commands carry a future for their answer (a refusal is an InvalidStateError with a safe message).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from ..hearing import SoundSwitch
from ..session.session import Session, Verdict
from ..vocab import EndReason

if TYPE_CHECKING:
    from ..stream.peers import ViewerPeer

#: What a staff command answers with.
T = TypeVar("T")


@dataclass(frozen=True)
class Press:
    """The button was pressed: short, or held for the hold time."""

    long: bool = False


# -- staff commands (the pairing page, or a test): each answers through its future ------------


@dataclass(frozen=True)
class StaffCommand(Generic[T]):
    future: asyncio.Future[T] | None = field(default=None, compare=False, kw_only=True)


@dataclass(frozen=True)
class OpenSession(StaffCommand[Session]):
    """Open a session; ``consent``: the patient agreed; ``valid_minutes`` 0 = the default."""

    consent: bool = False
    valid_minutes: int = 0


@dataclass(frozen=True)
class Admit(StaffCommand[None]):
    """Let the waiting viewer see the scan."""


@dataclass(frozen=True)
class Refuse(StaffCommand[None]):
    """Refuse the waiting viewer: the seat is freed and that key banned."""


@dataclass(frozen=True)
class Pause(StaffCommand[None]):
    """Privacy blackout: the viewer sees the "paused" slate."""


@dataclass(frozen=True)
class Resume(StaffCommand[None]):
    """Back to the live picture."""


@dataclass(frozen=True)
class Release(StaffCommand[None]):
    """Let another phone in: the seat (held by a viewer not admitted, or gone) goes to the next
    knock, with a new code to compare."""


@dataclass(frozen=True)
class Extend(StaffCommand[None]):
    """Push the session's expiry by ``minutes`` (0: as far as allowed), never past the longest
    a session may last (config ``pairing.max_minutes`` from its opening)."""

    minutes: int = 0


@dataclass(frozen=True)
class End(StaffCommand[None]):
    """End the session for good."""

    reason: str = EndReason.PAGE


@dataclass(frozen=True)
class SetSound(StaffCommand[None]):
    """Turn one of the staff's sound switches on or off for this session (docs/privacy.md)."""

    switch: SoundSwitch = SoundSwitch.SCANNER
    on: bool = False


# -- from the signalling side and the viewers' peers ---------------------------------------------


@dataclass(frozen=True)
class EndSession:
    """End the session (its expiry timer posts it; a viewer leaving never ends it); ignored
    when none is open."""

    reason: str = EndReason.STAFF


@dataclass(frozen=True)
class ExpiryWarning:
    """The session enters its last minutes: the staff are warned (page and LED)."""


@dataclass(frozen=True)
class VerifiedKnock:
    """A knock whose seal verified (the gate opened it): the core judges it against the seat
    and answers a :class:`~appliance.session.session.Verdict` through ``future`` (the seat is
    written here only, on the core's queue)."""

    salt: bytes
    seat: bytes
    name: str | None
    client: str
    future: asyncio.Future[Verdict] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ViewerAnswered:
    """The box answered the seated viewer's offer; ``code`` is the verification code."""

    peer: ViewerPeer
    code: str


@dataclass(frozen=True)
class ViewerLeft:
    """The seated viewer's connection closed (a drop, a reload, a hang-up)."""

    peer: ViewerPeer


@dataclass(frozen=True)
class ViewerLink:
    """The picture stopped reaching the viewer (``stalled``: no receiver report for
    :data:`~appliance.vocab.STALL_AFTER_S`), or reaches them again."""

    peer: ViewerPeer
    stalled: bool


@dataclass(frozen=True)
class ViewerBye:
    """The viewer hung up on purpose (closed the page)."""


@dataclass(frozen=True)
class ViewerCancel:
    """The viewer gave up its seat (Cancel in the waiting room): the seat is free for the next
    knock, that key is no longer its owner, and nobody is banned."""


@dataclass(frozen=True)
class ViewerTalk:
    """The viewer holds (``on``) or let go of its talk button (its data channel says so); the
    room hears it only while the staff allow talk-back and the picture is live."""

    on: bool


class RelayCall(enum.Enum):
    """The calls to the relay the core starts (appliance.core.relaycalls): each runs beside the
    core, and its outcome comes back as :class:`RelayDone`."""

    OPEN = "open"
    REFUSE = "refuse"
    RELEASE = "release"
    EXTEND = "extend"
    CLOSE = "close"


@dataclass(frozen=True)
class RelayDone:
    """A call to the relay finished, for ``session``: ``error`` is the exception's type name
    (the call failed or timed out), None when it succeeded."""

    call: RelayCall
    session: Session
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class GraceOver:
    """The ended session's grace is over (its viewer had time to read "ended"): its peers are
    closed, the session forgotten, the box IDLE again."""


Event = (
    Press
    | StaffCommand[Session]
    | StaffCommand[None]
    | EndSession
    | ExpiryWarning
    | VerifiedKnock
    | RelayDone
    | GraceOver
    | ViewerAnswered
    | ViewerLeft
    | ViewerLink
    | ViewerBye
    | ViewerCancel
    | ViewerTalk
)
