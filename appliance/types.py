"""Type names shared across layers, defined once. Imports nothing heavy."""

from __future__ import annotations

from typing import Any, Protocol

#: A rectangle as fractions of the picture: x, y, width, height (the privacy mask's unit).
Rect = tuple[float, float, float, float]


class EventRecorder(Protocol):
    """Where accountable events go (appliance.eventlog.EventLog.record): no personal data."""

    def record(self, kind: str, **fields: Any) -> None: ...
