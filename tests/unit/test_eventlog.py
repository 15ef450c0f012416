"""The event log: whitelisted kinds and fields only, nothing that could be a name, an id or an
address, bounded on disk with the oldest entries dropped first, kept across restarts."""

from __future__ import annotations

import ast
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import appliance
from appliance.eventlog import FIELDS, KINDS, THROTTLE_SECONDS, EventLog

PACKAGE = Path(appliance.__file__).parent
#: The names under which the code hands a kind to the event log (the log's own, and the
#: recorders the core, the gate and the pairing page are given).
RECORDERS = {"record", "_record", "note"}


def recorded_kinds() -> dict[str, str]:
    """Every event kind the package's code records, read from its source: kind -> where."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in RECORDERS and isinstance(first, ast.Constant):
                found.setdefault(str(first.value), f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


@pytest.fixture(params=["disk", "memory"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventLog]:
    with EventLog(tmp_path / "events.jsonl" if request.param == "disk" else None) as log:
        yield log


def test_entries_keep_kind_time_and_fields_in_order(log: EventLog) -> None:
    before = int(time.time())
    log.record("opened", valid_minutes=90)
    log.record("knock", returning=False)
    log.record("admitted", after_s=12)
    log.record("tamper", what="replayed knock")
    log.record("ended", reason="expired", duration_s=5400.25)
    entries = log.entries()
    assert [e["kind"] for e in entries] == ["opened", "knock", "admitted", "tamper", "ended"]
    assert all(before <= e["at"] <= int(time.time()) for e in entries)
    assert entries[0] == {"at": entries[0]["at"], "kind": "opened", "valid_minutes": 90}
    assert entries[4]["reason"] == "expired" and entries[4]["duration_s"] == 5400.25


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("knock", {"name": "Alex"}),  # not a whitelisted field
        ("knock", {"ip": "192.0.2.1"}),
        ("opened", {"room": "abc"}),
        ("opened", {"code": 123456}),
        ("refused", {"reason": "Alex"}),  # a capital: not a word from the code
        ("refused", {"reason": "192.0.2.1"}),  # digits and dots
        ("refused", {"reason": "alex@example.org"}),
        ("refused", {"reason": "q6IbQ-x1"}),  # an id
        ("refused", {"reason": "a" * 30}),  # too long for a fixed word
        ("refused", {"reason": ""}),
        ("ended", {"duration_s": float("nan")}),
        ("ended", {"duration_s": 10**12}),  # a phone number is no duration
        ("ended", {"reason": ["expired"]}),
        ("ended", {"reason": None}),
        ("visited", {}),  # not a kind
    ],
)
def test_anything_that_could_be_personal_is_refused(
    log: EventLog, kind: str, fields: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the field; any will do
        log.check(kind, **fields)
    log.record(kind, **fields)  # a bug in the caller: logged and dropped, never a crash
    assert log.entries() == [], "nothing was written"
    (bug,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert bug.getMessage().startswith("bug: an event log entry was refused")
    for value in fields.values():
        if isinstance(value, str) and value:
            assert value not in bug.getMessage(), "the refused value is not logged"


def test_the_whitelists_are_small_and_say_what_they_hold() -> None:
    assert {"opened", "knock", "admitted", "refused", "tamper", "ended", "extended"} <= KINDS
    assert {"viewer-left", "login-failed"} <= KINDS
    for field in FIELDS:
        words = set(field.split("_"))
        assert not words & {"name", "id", "ip", "address", "room", "code", "key", "user"}


def test_the_file_is_bounded_and_the_oldest_entries_go_first(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=4096)
    for i in range(500):
        log.record("knock", returning=bool(i % 2), after_s=i)
        log.flush()
        assert path.stat().st_size <= 4096
    entries = log.entries()
    assert 20 < len(entries) < 500
    seconds = [e["after_s"] for e in entries]
    assert seconds == list(range(500 - len(entries), 500)), "the newest kept, in order"
    for line in path.read_text().splitlines():
        json.loads(line)  # whole lines only
    log.close()


def test_recording_never_blocks_the_caller_and_close_writes_what_is_pending(
    tmp_path: Path,
) -> None:
    """The core records from its event loop: the disk is the writer thread's, not the caller's."""
    import threading

    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    gate = threading.Event()
    real_append = log._append

    def slow_append(p: Path, line: str) -> None:
        gate.wait(5)  # a slow SD card
        real_append(p, line)

    log._append = slow_append  # type: ignore[method-assign, assignment]  # the bound method, slowed
    log.record("opened", valid_minutes=30)  # returns although the write is held up
    assert not path.exists()
    writer = log._writer
    assert writer is not None and writer.is_alive()
    gate.set()
    log.close()
    assert [e["kind"] for e in EventLog(path).entries()] == ["opened"]
    assert not writer.is_alive(), "the writer stopped"


def test_memory_is_bounded_the_same_way() -> None:
    log = EventLog(None, max_bytes=2048)
    for i in range(300):
        log.record("admitted", after_s=i)
    entries = log.entries()
    assert sum(len(json.dumps(e, separators=(",", ":"))) + 1 for e in entries) <= 2048
    assert entries[-1]["after_s"] == 299


def test_kept_across_restarts_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventLog(path) as first:
        first.record("opened", valid_minutes=30)
    with path.open("a") as out:
        out.write('{"at": 1, "kind": "kno')  # a power cut in the middle of a write
    with EventLog(path) as again:
        again.record("ended", reason="button", duration_s=60)
        assert [e["kind"] for e in again.entries()] == ["opened", "ended"]


def test_a_disk_that_cannot_be_written_does_not_stop_the_box(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with EventLog(tmp_path / "missing-dir" / "events.jsonl") as log:
        for _ in range(3):
            log.record("knock", returning=True)
        assert log.entries() == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "warned once, then quietly"
    assert "missing-dir" not in caplog.text


def test_a_tiny_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        EventLog(None, max_bytes=10)


def test_every_kind_the_code_records_is_one_the_log_keeps_and_none_is_dead() -> None:
    recorded = recorded_kinds()
    assert {"opened", "extended", "login-failed", "tamper"} <= recorded.keys(), "the scan works"
    refused = {kind: where for kind, where in recorded.items() if kind not in KINDS}
    assert not refused, f"recorded but refused by the event log (lost): {refused}"
    assert not KINDS - recorded.keys(), f"listed but never recorded: {KINDS - recorded.keys()}"


def test_an_extend_is_kept(log: EventLog) -> None:
    log.record("extended", valid_minutes=30)
    log.flush()
    assert [(e["kind"], e["valid_minutes"]) for e in log.entries()] == [("extended", 30)]


# -- issue 18, item 3 and 5: what an outsider can trigger is rate-limited -------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_refusals_is_one_entry_a_minute_with_its_count(tmp_path: Path) -> None:
    clock = Clock()
    with EventLog(tmp_path / "events.jsonl", clock=clock) as log:
        log.record("opened", valid_minutes=90)
        for _ in range(4200):  # a link holder's junk knocks, all within the minute
            log.record("refused", reason="bad")
        log.record("login-failed")
        log.record("login-failed")
        assert [e["kind"] for e in log.entries()] == ["opened", "refused", "login-failed"]
        clock.now += THROTTLE_SECONDS
        log.record("refused", reason="bad")  # the next minute's first
        log.record("refused", reason="taken")  # another reason has its own window
        kinds = [(e["kind"], e.get("reason"), e.get("count")) for e in log.entries()]
    assert kinds == [
        ("opened", None, None),
        ("refused", "bad", None),
        ("login-failed", None, None),
        ("refused", "bad", 4199),  # the minute's held-back refusals, counted
        ("login-failed", None, 1),
        ("refused", "bad", None),
        ("refused", "taken", None),
    ]


def test_a_flood_cannot_push_out_what_the_clinic_keeps(tmp_path: Path) -> None:
    clock = Clock()
    with EventLog(tmp_path / "events.jsonl", max_bytes=4096, clock=clock) as log:
        log.record("opened", valid_minutes=90)
        log.record("login")
        for _minute in range(10):
            for _ in range(500):
                log.record("login-failed")
                log.record("tamper", what="knock", count=1)
            clock.now += THROTTLE_SECONDS
        kinds = [e["kind"] for e in log.entries()]
    assert kinds[:2] == ["opened", "login"], "the flood kept to a few lines"
    assert sum(e.get("count", 1) for e in log.entries() if e["kind"] == "login-failed") == 5000


def test_what_is_held_back_is_written_at_close(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventLog(path, clock=Clock()) as log:
        for _ in range(3):
            log.record("tamper", what="knock", count=2)
    with EventLog(path) as again:
        assert [e.get("count") for e in again.entries()] == [2, 4]


def test_what_is_held_back_is_written_when_its_window_ends_without_another_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut after an attack must not lose its count: the writer releases ended windows
    by itself (the review's finding)."""
    from appliance import eventlog

    monkeypatch.setattr(eventlog, "RELEASE_EVERY", 0.02)
    clock = Clock()
    path = tmp_path / "events.jsonl"
    log = EventLog(path, clock=clock)
    try:
        for _ in range(5):
            log.record("login-failed")
        clock.now += THROTTLE_SECONDS
        deadline = time.monotonic() + 0.8
        while '"count":4' not in (path.read_text() if path.exists() else ""):
            assert time.monotonic() < deadline, "the held-back count was not written"
            time.sleep(0.01)
    finally:
        log.close()
