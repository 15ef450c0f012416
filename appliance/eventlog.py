"""The box's event log: what happened, when, for the clinic's accountability and breach
detection, and nothing personal. Kept in the state directory, bounded in size.

Only whitelisted field names are stored, with numbers, booleans or short fixed words as values:
no names, ids, addresses or free text can slip in.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

KINDS = frozenset(
    {"opened", "knock", "admitted", "refused", "tamper", "ended", "viewer-left", "started"}
)
FIELDS = frozenset(
    {"reason", "what", "returning", "on_purpose", "valid_minutes", "after_s", "duration_s"}
)
#: Values of the string fields: fixed words the code uses, never anything a user typed.
WORD_MAX = 24
MAX_BYTES = 256 * 1024


class EventLog:
    def __init__(self, path: Path | None, max_bytes: int = MAX_BYTES) -> None:
        self._path = path
        self._max = max_bytes
        self._lock = threading.Lock()
        self._memory: list[dict[str, Any]] = []

    def record(self, kind: str, **fields: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        entry: dict[str, Any] = {"at": int(time.time()), "kind": kind}
        for name, value in fields.items():
            if name not in FIELDS:
                raise ValueError(f"event field {name!r} is not allowed in the event log")
            if isinstance(value, str) and (len(value) > WORD_MAX or not _word(value)):
                raise ValueError(f"event field {name!r} must be a short fixed word")
            if not isinstance(value, str | int | float | bool):
                raise ValueError(f"event field {name!r} must be a number, boolean or word")
            entry[name] = value
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock:
            if self._path is None:
                self._memory.append(entry)
                del self._memory[: max(0, len(self._memory) - 2000)]
                return
            try:
                self._append(line)
            except OSError as exc:
                logger.warning("the event log cannot be written: %s", type(exc).__name__)

    def _append(self, line: str) -> None:
        assert self._path is not None
        size = self._path.stat().st_size if self._path.exists() else 0
        if size + len(line) > self._max:
            # keep the newer half: the log is bounded, the oldest entries go first
            lines = self._path.read_text().splitlines(keepends=True)
            keep = lines[len(lines) // 2 :]
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text("".join(keep))
            tmp.replace(self._path)
        with self._path.open("a", encoding="utf-8") as out:
            out.write(line)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._path is None:
                return list(self._memory)
            try:
                text = self._path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def _word(value: str) -> bool:
    return all(c.isalnum() or c in "-_ " for c in value)
