"""What the pairing page needs from the box: the one interface its routes call."""

from __future__ import annotations

from typing import Any, Protocol

from ...core.views import SessionView, Status
from ...hearing import SoundSwitch
from ...types import Rect


class PairingBackend(Protocol):
    """What the page needs from the box (the core implements it; see docs/architecture.md)."""

    def status(self) -> Status:
        """The box's state, HDMI signal, clock, fault and open session (appliance.core.views)."""
        ...

    def open_session(self, *, consent: bool, valid_minutes: int) -> SessionView | None:
        """Open a session and return its view; raises
        :class:`~appliance.errors.InvalidStateError` if one is open or the clock is not
        synchronised (the page shows the message)."""
        ...

    def admit(self) -> None: ...
    def refuse(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def release(self) -> None:
        """Let another phone in: the seat goes to the next knock (with a new code)."""
        ...

    def extend(self, minutes: int) -> None:
        """Push the expiry by ``minutes``, never past the longest a session may last."""
        ...

    def end(self) -> None:
        """Each of these raises InvalidStateError when the state does not allow it."""
        ...

    def set_sound(self, switch: SoundSwitch, on: bool) -> None:
        """Turn a sound switch for the open session (the scanner's sound, the room microphone,
        talk-back); InvalidStateError when the box has none or the state does not allow it."""
        ...

    def preview_jpeg(self) -> bytes | None:
        """The current frame, unmasked, as a small JPEG (for the mask editor); None without a
        signal."""
        ...

    def mask(self) -> list[Rect]:
        """The mask's rectangles as fractions x, y, w, h of the frame."""
        ...

    def set_mask(self, rects: list[Rect]) -> None: ...

    def events(self) -> list[dict[str, Any]]:
        """The event log's entries, oldest first (appliance.eventlog)."""
        ...
