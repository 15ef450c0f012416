"""The event log: whitelisted kinds and fields only, nothing that could be a name, an id or an
address, bounded on disk with the oldest entries dropped first, kept across restarts."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from appliance.eventlog import FIELDS, KINDS, EventLog


@pytest.fixture(params=["disk", "memory"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> EventLog:
    return EventLog(tmp_path / "events.jsonl" if request.param == "disk" else None)


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
    log: EventLog, kind: str, fields: dict[str, object]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the field; any will do
        log.record(kind, **fields)
    assert log.entries() == [], "nothing was written"


def test_the_whitelists_are_small_and_say_what_they_hold() -> None:
    assert {"opened", "knock", "admitted", "refused", "tamper", "ended", "expired"} <= KINDS
    assert {"viewer-left", "login-failed"} <= KINDS
    for field in FIELDS:
        words = set(field.split("_"))
        assert not words & {"name", "id", "ip", "address", "room", "code", "key", "user"}


def test_the_file_is_bounded_and_the_oldest_entries_go_first(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=4096)
    for i in range(500):
        log.record("knock", returning=bool(i % 2), after_s=i)
        assert path.stat().st_size <= 4096
    entries = log.entries()
    assert 20 < len(entries) < 500
    seconds = [e["after_s"] for e in entries]
    assert seconds == list(range(500 - len(entries), 500)), "the newest kept, in order"
    for line in path.read_text().splitlines():
        json.loads(line)  # whole lines only


def test_memory_is_bounded_the_same_way() -> None:
    log = EventLog(None, max_bytes=2048)
    for i in range(300):
        log.record("admitted", after_s=i)
    entries = log.entries()
    assert sum(len(json.dumps(e, separators=(",", ":"))) + 1 for e in entries) <= 2048
    assert entries[-1]["after_s"] == 299


def test_kept_across_restarts_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    EventLog(path).record("opened", valid_minutes=30)
    with path.open("a") as out:
        out.write('{"at": 1, "kind": "kno')  # a power cut in the middle of a write
    again = EventLog(path)
    again.record("ended", reason="button", duration_s=60)
    assert [e["kind"] for e in again.entries()] == ["opened", "ended"]


def test_a_disk_that_cannot_be_written_does_not_stop_the_box(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log = EventLog(tmp_path / "missing-dir" / "events.jsonl")
    for _ in range(3):
        log.record("knock", returning=True)
    assert log.entries() == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "warned once, then quietly"
    assert "missing-dir" not in caplog.text


def test_a_tiny_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        EventLog(None, max_bytes=10)
