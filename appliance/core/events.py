"""What the core hears: button presses, typed staff commands, the signalling side's news.

Every change of state arrives as one of these on the core's queue and is handled in order. Staff
commands carry a future for their answer (a refusal is an InvalidStateError with a safe message).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..session.session import Verdict
    from ..stream.peers import ViewerPeer


@dataclass(frozen=True)
class Press:
    """The button was pressed: short, or held for the hold time."""

    long: bool = False


# -- staff commands (the pairing page, or a test): each answers through its future ------------


@dataclass(frozen=True)
class StaffCommand:
    future: asyncio.Future[Any] | None = field(default=None, compare=False, kw_only=True)


@dataclass(frozen=True)
class OpenSession(StaffCommand):
    """Open a session; ``consent``: the patient agreed; ``valid_minutes`` 0 = the default."""

    consent: bool = False
    valid_minutes: int = 0


@dataclass(frozen=True)
class Admit(StaffCommand):
    """Let the waiting viewer see the scan."""


@dataclass(frozen=True)
class Refuse(StaffCommand):
    """Refuse the waiting viewer: the seat is freed and that key banned."""


@dataclass(frozen=True)
class Pause(StaffCommand):
    """Privacy blackout: the viewer sees the "paused" slate."""


@dataclass(frozen=True)
class Resume(StaffCommand):
    """Back to the live picture."""


@dataclass(frozen=True)
class Release(StaffCommand):
    """Let another phone in: the seat (held by a viewer not admitted, or gone) goes to the next
    knock, with a new code to compare."""


@dataclass(frozen=True)
class Extend(StaffCommand):
    """Push the session's expiry by ``minutes`` (0: as far as allowed), never past the longest
    a session may last (config ``pairing.max_minutes`` from its opening)."""

    minutes: int = 0


@dataclass(frozen=True)
class End(StaffCommand):
    """End the session for good."""

    reason: str = "page"


# -- from the signalling side and the viewers' peers ---------------------------------------------


@dataclass(frozen=True)
class EndSession:
    """End the session (expiry, the viewer's hang-up grace); ignored when none is open."""

    reason: str = "staff"


@dataclass(frozen=True)
class ExpiryWarning:
    """The session enters its last minutes: the staff are warned (page and LED)."""


@dataclass(frozen=True)
class Knock:
    """A knock whose seal verified: the core judges it against the seat and answers a
    :class:`~appliance.session.session.Verdict` through ``future`` (the seat is written here
    only, on the core's queue)."""

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


Event = (
    Press
    | StaffCommand
    | EndSession
    | ExpiryWarning
    | Knock
    | ViewerAnswered
    | ViewerLeft
    | ViewerLink
    | ViewerBye
    | ViewerCancel
)
