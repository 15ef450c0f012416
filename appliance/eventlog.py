"""The box's event log: what happened and when, for the clinic's accountability and breach
detection, and nothing personal.

An entry is a kind (``opened``, ``knock``, ``admitted``, ``tamper``, ...), the time in whole Unix
seconds, and a few fields from a whitelist: durations, counts, flags and reasons. A field whose
name is not on the list is refused, and so is a value that could carry something personal: text
is a short lowercase word from the code (letters, spaces and hyphens: no digits, so no ids, codes
or addresses, and no punctuation, so no e-mail addresses or URLs), numbers are bounded. Names,
room ids, keys and addresses therefore cannot reach the log, by mistake or otherwise.

Since it holds no personal data the log lives on disk, in the box's persistent state directory
(``events.jsonl``, one JSON object per line), so it survives restarts. It is bounded: when a new
entry would take the file over ``max_bytes``, the oldest entries are dropped until it is about
half full. Without a path (tests, tools) the same rules apply in memory.

:meth:`EventLog.record` never blocks its caller (the core's loop): the entry is checked there and
the writing is done by the log's own writer thread. An entry the rules refuse is a bug in the
code that made it: it is logged (without its values) and dropped, and the caller goes on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .vocab import KINDS, THROTTLED

logger = logging.getLogger(__name__)

__all__ = ["FIELDS", "KINDS", "THROTTLED", "THROTTLE_SECONDS", "EventLog", "make_entry"]

#: What can happen is :data:`appliance.vocab.KINDS`. The kinds an outsider can cause as often as
#: they like (:data:`appliance.vocab.THROTTLED`: a wrong password, a refused knock, a tampered
#: message) get at most one entry per ``THROTTLE_SECONDS`` for each kind and its fields; what is
#: held back meanwhile is written when the window ends, as one entry with its ``count``. The log
#: keeps the scale of an attack without being flooded by it (a flood would push out the entries
#: the clinic must keep).
THROTTLE_SECONDS = 60.0
#: How often the writer writes what ended windows held back when nothing else is recorded.
RELEASE_EVERY = THROTTLE_SECONDS / 4
#: The only field names an entry may carry: durations (``*_s``, ``valid_minutes``), counts,
#: flags and reasons.
FIELDS = frozenset(
    {
        "reason",
        "what",
        "returning",
        "on_purpose",
        "on",
        "valid_minutes",
        "after_s",
        "duration_s",
        "count",
    }
)
#: A text value: a short fixed word or two from the code.
_WORD = re.compile(r"[a-z][a-z -]{0,23}")
#: Numbers are durations and counts, never ids or phone numbers.
NUMBER_MAX = 10_000_000
MAX_BYTES = 256 * 1024
_MIN_BYTES = 1024


class EventLog:
    """A bounded log of events with no personal data (see the module's docstring).

    :param path: the file (in the persistent state directory), or ``None`` to keep it in memory.
    :param max_bytes: the size the log never exceeds; the oldest entries go first.
    """

    def __init__(
        self,
        path: Path | None,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes < _MIN_BYTES:
            raise ValueError(f"an event log needs at least {_MIN_BYTES} bytes")
        self._clock = clock
        # throttled kinds: (kind, fields) -> [window's end, events held back]
        self._held: dict[tuple[str, tuple[tuple[str, Any], ...]], list[float]] = {}
        self._path = path
        self._max = max_bytes
        self._lock = threading.Lock()
        self._memory: deque[str] = deque()
        self._memory_bytes = 0
        self._warned = False
        self._pending: queue.Queue[str | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._closed = False

    @property
    def path(self) -> Path | None:
        return self._path

    def check(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The entry ``record`` would add; :class:`ValueError` for a kind, field or value that is
        not allowed (for code that wants to know before it records)."""
        return make_entry(kind, time.time(), fields)

    def record(self, kind: str, **fields: Any) -> None:
        """Add an entry now, without blocking: it is written by the log's writer thread. An entry
        the rules refuse is logged as a bug (its kind and field names only) and dropped. A kind
        in :data:`THROTTLED` is held back within its window (see there)."""
        try:
            entry = make_entry(kind, time.time(), fields)
        except ValueError as exc:
            logger.error("bug: an event log entry was refused and dropped: %s", exc)
            return
        self._release_held()
        if kind in THROTTLED and self._hold(kind, dict(fields)):
            return
        self._add(entry)

    def _hold(self, kind: str, fields: dict[str, Any]) -> bool:
        """Whether this event is held back (its window is open); else a window opens for it."""
        count = int(fields.pop("count", 1))
        key = (kind, tuple(sorted(fields.items())))
        now = self._clock()
        with self._lock:
            held = self._held.get(key)
            if held is not None and now < held[0]:
                held[1] += count
                return True
            self._held[key] = [now + THROTTLE_SECONDS, 0]
        return False

    def _release_held(self, final: bool = False) -> None:
        """Write what was held back in every window that has ended (every window, ``final``)."""
        now = self._clock()
        with self._lock:
            ended = [key for key, (end, _) in self._held.items() if final or now >= end]
            released = [(key, self._held.pop(key)[1]) for key in ended]
        for (kind, fields), count in released:
            if count:
                self._add(make_entry(kind, time.time(), {**dict(fields), "count": int(count)}))

    def _add(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        if self._path is None:
            with self._lock:
                self._remember(line)
            return
        with self._lock:
            if self._closed:
                logger.warning("an event was recorded after the log closed: dropped")
                return
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="eventlog", daemon=True)
                self._writer.start()
            self._pending.put(line)

    def flush(self) -> None:
        """Wait until every recorded entry is on disk (or was refused by the disk)."""
        self._pending.join()

    def close(self) -> None:
        """Write what is pending (and held back) and stop the writer thread. Idempotent;
        record() after it drops the entry with a warning."""
        self._release_held(final=True)
        with self._lock:
            self._closed = True
            writer, self._writer = self._writer, None
        if writer is not None:
            self._pending.put(None)
            writer.join(timeout=5)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entries(self) -> list[dict[str, Any]]:
        """Every entry kept, oldest first (a line torn by a power cut is skipped)."""
        self._release_held()
        self.flush()
        with self._lock:
            if self._path is None:
                lines = list(self._memory)
            else:
                try:
                    lines = self._path.read_text(encoding="utf-8").splitlines()
                except FileNotFoundError:
                    return []
                except OSError as exc:
                    logger.warning("the event log cannot be read: %s", type(exc).__name__)
                    return []
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and "kind" in entry and "at" in entry:
                out.append(entry)
        return out

    def _write(self) -> None:
        while True:
            try:
                line = self._pending.get(timeout=RELEASE_EVERY)
            except queue.Empty:  # quiet: write what a window held back, before a power cut can
                self._release_held()
                continue
            try:
                if line is None:
                    return
                assert self._path is not None
                with self._lock:
                    self._append(self._path, line)
            except OSError as exc:
                # the box goes on without its log; warn once, then quietly
                level = logging.DEBUG if self._warned else logging.WARNING
                self._warned = True
                logger.log(level, "the event log cannot be written: %s", type(exc).__name__)
            finally:
                self._pending.task_done()

    # -- storage ----------------------------------------------------------------------------------

    def _remember(self, line: str) -> None:
        size = len(line.encode())
        if self._memory_bytes + size > self._max:
            while self._memory and self._memory_bytes + size > self._max // 2:
                self._memory_bytes -= len(self._memory.popleft().encode())
        self._memory.append(line.rstrip("\n"))
        self._memory_bytes += size

    def _append(self, path: Path, line: str) -> None:
        data = line.encode()
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size + len(data) > self._max:
            self._shrink(path, len(data))
        with path.open("ab+") as out:  # appends always go to the end, wherever we read
            end = out.seek(0, os.SEEK_END)
            if end:
                out.seek(end - 1)
                if out.read(1) != b"\n":
                    data = b"\n" + data  # a line torn by a power cut stays alone, skipped
            out.write(data)

    def _shrink(self, path: Path, room: int) -> None:
        """Drop the oldest whole lines until the file and ``room`` fit in half the bound."""
        lines = path.read_bytes().splitlines(keepends=True)
        kept: list[bytes] = []
        total = room
        for raw in reversed(lines):
            if total + len(raw) > self._max // 2:
                break
            kept.append(raw)
            total += len(raw)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(b"".join(reversed(kept)))
        tmp.replace(path)


def make_entry(kind: str, at: float, fields: dict[str, Any]) -> dict[str, Any]:
    """A checked entry: ``{"at": <unix s>, "kind": kind, **fields}``; ValueError otherwise."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    entry: dict[str, Any] = {"at": int(at), "kind": kind}
    for name, value in fields.items():
        if name not in FIELDS:
            raise ValueError(f"the event log does not take a field named {name!r}")
        entry[name] = _check_value(name, value)
    return entry


def _check_value(name: str, value: Any) -> bool | int | float | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > NUMBER_MAX:
            raise ValueError(f"event field {name!r}: a duration or count within {NUMBER_MAX}")
        return value if isinstance(value, int) else round(value, 3)
    if isinstance(value, str):
        if not _WORD.fullmatch(value):
            raise ValueError(
                f"event field {name!r}: a short lowercase word from the code (no digits, "
                "no punctuation)"
            )
        return value
    raise ValueError(f"event field {name!r} must be a number, a flag or a word")
