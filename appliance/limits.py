"""Bounds that several layers check, defined once (imports nothing).

A session's validity window, in minutes: the config, the pairing page and the core use it."""

from __future__ import annotations

MIN_MINUTES, MAX_MINUTES = 5, 24 * 60


def clamp_minutes(minutes: int) -> int:
    """``minutes`` brought within the validity bounds."""
    return max(MIN_MINUTES, min(MAX_MINUTES, minutes))
