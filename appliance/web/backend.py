"""The pairing page's way into the core (appliance.web.pairing.PairingBackend), from WSGI threads.

Every call hops onto the core's loop through the :class:`~appliance.web.facade.LoopFacade`, so
the core stays the only writer of state; staff commands go through the core's event queue in
order with the button's presses. The preview and the privacy mask are the media side's, asked
through its port (:class:`~appliance.stream.ports.MediaControl`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..core import (
    Admit,
    Core,
    End,
    Extend,
    OpenSession,
    Pause,
    Refuse,
    Release,
    Resume,
    SessionView,
    SetSound,
    Status,
)
from ..hearing import SoundSwitch
from ..stream.ports import MediaControl
from ..types import Rect
from .facade import LoopFacade
from .preview import SharedPreview

logger = logging.getLogger(__name__)


class CoreBackend:
    """Implements the pairing page's backend on a running :class:`Core`."""

    def __init__(
        self,
        facade: LoopFacade,
        core: Core,
        media: MediaControl,
        entries: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self._facade = facade
        self._core = core
        self._entries = entries
        self._media = media
        self._preview = SharedPreview(media.preview)

    def status(self) -> Status:
        status: Status = self._facade.run(self._core.status)
        return status

    def open_session(self, *, consent: bool, valid_minutes: int) -> SessionView | None:
        self._facade.call(self._core.command(OpenSession(consent, valid_minutes)))
        view: SessionView | None = self._facade.run(self._core.session_view)
        return view

    def admit(self) -> None:
        self._facade.call(self._core.command(Admit()))

    def refuse(self) -> None:
        self._facade.call(self._core.command(Refuse()))

    def pause(self) -> None:
        self._facade.call(self._core.command(Pause()))

    def resume(self) -> None:
        self._facade.call(self._core.command(Resume()))

    def release(self) -> None:
        self._facade.call(self._core.command(Release()))

    def extend(self, minutes: int) -> None:
        self._facade.call(self._core.command(Extend(minutes=minutes)))

    def end(self) -> None:
        self._facade.call(self._core.command(End(reason="page")))

    def set_sound(self, switch: SoundSwitch, on: bool) -> None:
        self._facade.call(self._core.command(SetSound(switch=switch, on=on)))

    def preview_jpeg(self) -> bytes | None:
        return self._preview.jpeg()

    def mask(self) -> list[Rect]:
        return self._media.mask()

    def set_mask(self, rects: list[Rect]) -> None:
        self._media.set_mask(rects)

    def events(self) -> list[dict[str, Any]]:
        return self._entries()
