"""The privacy mask the staff saved (in the box's state directory), owned by the media side.

Built with the pipeline at start, so a saved mask is applied to the picture from the first
frame, with or without the pairing page; the page edits it through the media port.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..config import MaskRect
from ..types import Rect
from .mask import check_rect

logger = logging.getLogger(__name__)


class MaskStore:
    """The privacy mask's rectangles: the config's until the staff save their own, which are
    kept in the box's state directory (they hold no personal data)."""

    def __init__(self, path: Path, default: tuple[MaskRect, ...]) -> None:
        self._path = path
        self._rects = [(r.x, r.y, r.w, r.h) for r in default]
        try:
            saved = json.loads(path.read_text())
            self._rects = [check_rect(r) for r in saved["rects"]]
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored an unreadable saved mask; using the config's")

    def rects(self) -> list[Rect]:
        return list(self._rects)

    def save(self, rects: list[Rect]) -> list[Rect]:
        """Check ``rects`` (ValueError), keep them on disk, and return them as kept."""
        clean = [check_rect(r) for r in rects]
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rects": clean}))
        tmp.replace(self._path)
        self._rects = clean
        return list(clean)
