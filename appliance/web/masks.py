"""The privacy mask's rectangles as the staff keep them (in the box's state directory)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ..capture.mask import check_rect
from ..config import MaskRect
from ..types import Rect

logger = logging.getLogger(__name__)


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
