"""Coverage-guided fuzzing of what reads a request before any handler does (atheris): the front's
verdict on a request's bytes so far (`httpd/request.py`) and the one checked JSON body reader
(`httpd/jsonbody.py`). A crash, a verdict outside the known ones, a "complete" request whose body
is not all there, or a body value with a number that is not finite and bounded is a finding.
Run by `make fuzz`."""

from __future__ import annotations

import math
import re
import sys

import atheris

with atheris.instrument_imports():
    from appliance.httpd import jsonbody, request

LENGTH = re.compile(rb"\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*\r", re.IGNORECASE)
VERDICTS = {request.WAIT, request.COMPLETE, 400, 411, 413, 417, 431}


def check_numbers(value: object) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            if not math.isfinite(item) or abs(item) > jsonbody.NUMBER_MAX:
                raise AssertionError(f"a number out of bounds came through: {item!r}")


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    verdict = request.judge(raw)
    if verdict not in VERDICTS:
        raise AssertionError(f"unknown verdict {verdict}")
    if verdict == request.COMPLETE:
        end = raw.find(b"\r\n\r\n")
        found = LENGTH.search(b"\n" + raw[:end]) if end >= 0 else None
        if found is not None:
            assert len(raw) >= end + 4 + int(found.group(1)), "complete without its whole body"
    else:
        assert verdict == request.WAIT or request.refusal(verdict).startswith(b"HTTP/1.1 ")
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        value = jsonbody.loads(body)
    except jsonbody.BodyError:
        return
    check_numbers(value)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
