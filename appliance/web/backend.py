"""The pairing page's way into the core (appliance.web.pairing.PairingBackend), from WSGI threads.

Every call hops onto the core's loop through the :class:`~appliance.web.facade.LoopFacade`, so
the core stays the only writer of state; staff commands go through the core's event queue in
order with the button's presses.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..capture.mask import check_rect
from ..config import MaskRect
from ..core import Core
from ..stream.pipeline import MediaPipeline
from ..types import Rect
from .facade import LoopFacade

logger = logging.getLogger(__name__)


class CoreBackend:
    """Implements the pairing page's backend on a running :class:`Core`."""

    def __init__(
        self,
        facade: LoopFacade,
        core: Core,
        entries: Callable[[], list[dict[str, Any]]],
        mask_store: MaskStore,
    ) -> None:
        self._facade = facade
        self._core = core
        self._entries = entries
        self._masks = mask_store

    def status(self) -> dict[str, Any]:
        def snapshot() -> dict[str, Any]:
            status = self._core.status()
            status["session"] = self._core.session_status()
            return status

        result: dict[str, Any] = self._facade.run(snapshot)
        return result

    def open_session(self, *, consent: bool, valid_minutes: int) -> dict[str, Any]:
        self._facade.call(self._core.command("open", consent=consent, valid_minutes=valid_minutes))
        session: dict[str, Any] = self._facade.run(self._core.session_status)
        return session

    def admit(self) -> None:
        self._facade.call(self._core.command("admit"))

    def refuse(self) -> None:
        self._facade.call(self._core.command("refuse"))

    def pause(self) -> None:
        self._facade.call(self._core.command("pause"))

    def resume(self) -> None:
        self._facade.call(self._core.command("resume"))

    def end(self) -> None:
        self._facade.call(self._core.command("end", reason="page"))

    def preview_jpeg(self) -> bytes | None:
        return preview_jpeg(self._core.pipeline)

    def mask(self) -> list[Rect]:
        return self._masks.rects()

    def set_mask(self, rects: list[Rect]) -> None:
        self._masks.save(rects)

    def events(self) -> list[dict[str, Any]]:
        return self._entries()


def preview_jpeg(pipeline: MediaPipeline, width: int = 640) -> bytes | None:
    """The last frame the source gave, unmasked, as a small JPEG (None without a signal)."""
    frame = pipeline.preview()
    if frame is None:
        return None
    image = frame.to_image()
    image.thumbnail((width, width))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70)
    return out.getvalue()


class MaskStore:
    """The privacy mask: the config's rectangles until the staff save their own, which are kept
    in the box's state directory (they hold no personal data) and applied at once."""

    def __init__(
        self, path: Path, default: tuple[MaskRect, ...], apply: Callable[[list[Rect]], None]
    ) -> None:
        self._path = path
        self._apply = apply
        self._rects = [(r.x, r.y, r.w, r.h) for r in default]
        try:
            saved = json.loads(path.read_text())
            self._rects = [check_rect(r) for r in saved["rects"]]
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored an unreadable saved mask; using the config's")
        self._apply(self._rects)

    def rects(self) -> list[Rect]:
        return list(self._rects)

    def save(self, rects: list[Rect]) -> None:
        clean = [check_rect(r) for r in rects]
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rects": clean}))
        tmp.replace(self._path)
        self._rects = clean
        self._apply(clean)
