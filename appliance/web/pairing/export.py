"""The event log's exports: CSV a spreadsheet opens safely, and the download's file name."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from typing import Any


def events_to_csv(entries: list[dict[str, Any]]) -> str:
    """The event log as CSV: time (UTC, ISO 8601), kind, then one column per field."""
    fields = sorted({k for e in entries for k in e} - {"at", "kind"})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["time", "kind", *fields])
    for entry in entries:
        at = dt.datetime.fromtimestamp(int(entry.get("at", 0)), dt.UTC)
        row = [at.strftime("%Y-%m-%dT%H:%M:%SZ"), entry.get("kind", "")]
        row += [_cell(entry.get(k, "")) for k in fields]
        writer.writerow(row)
    return out.getvalue()


def _cell(value: Any) -> str:
    text = str(value)
    # a spreadsheet must not read a cell as a formula
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_name(room_name: str, ext: str) -> str:
    """``events-<room>-<yyyymmdd-hhmm>.<ext>``, with only safe characters."""
    name = "".join(c for c in room_name if c.isalnum() or c == "-") or "box"
    return f"events-{name}-{time.strftime('%Y%m%d-%H%M')}.{ext}"
