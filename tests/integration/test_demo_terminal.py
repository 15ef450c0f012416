"""`make demo`'s terminal, as a person sees it (issue 14): in a terminal (a pty here) the LED has
a line of its own that log lines and the QR code never run into, in the staff page's words; piped,
the viewer's link is printed with the QR code in plain characters (``--qr``) or a line saying why
it is not and how to get it."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.web.pairing.strings import TEXT

ROOT = Path(__file__).parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
QR_CHARS = set("▀▄█")


def demo_command(tmp_path: Path, *extra: str) -> list[str]:
    config = tmp_path / "demo.toml"  # small and quick; keys in the test's own folder
    config.write_text(
        f'[box]\nstate_dir = "{tmp_path / "state"}"\n'
        "[capture]\nwidth = 768\nheight = 432\nfps = 10\n[encode]\nthreads = 1\n"
    )
    return [sys.executable, "-m", "appliance", "run", "--demo", "--port", "0"] + [
        "--config",
        str(config),
        *extra,
    ]


def run_in_a_terminal(tmp_path: Path, seconds: float) -> str:
    """The demo's whole output to a terminal (stdout and stderr on one pty) for ``seconds``
    after it printed the viewer's QR code, then Ctrl-C."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        demo_command(tmp_path),
        cwd=ROOT,
        stdin=child,
        stdout=child,
        stderr=child,
        env={**os.environ, "COLUMNS": "200", "LINES": "60"},
        start_new_session=True,
    )
    os.close(child)
    out = b""
    deadline, settled = time.monotonic() + 60, None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    out += os.read(main, 65536)
                except OSError:
                    break
            if settled is None and "▄".encode() in out:
                settled = time.monotonic() + seconds
            if settled is not None and time.monotonic() > settled:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(main)
    return out.decode("utf-8", "replace")


def screen_lines(raw: str) -> list[str]:
    """What a terminal shows of each line: a carriage return goes back to the line's start, and
    what follows overwrites (clearing to the end of the line)."""
    return [ANSI.sub("", line.split("\r")[-1]) for line in raw.replace("\r\n", "\n").split("\n")]


def test_the_led_has_a_line_of_its_own_in_the_staff_pages_words(tmp_path: Path) -> None:
    raw = run_in_a_terminal(tmp_path, seconds=3.0)
    lines = screen_lines(raw)
    assert any(line.startswith("viewer: ") for line in lines), raw[-2000:]
    words = TEXT["en"]["state_ready"]  # "Waiting: nobody has connected yet."
    assert words in raw, "the LED line says what the staff page says"
    assert "READY" not in raw and "WAITING" not in raw
    for line in lines:
        if "LED" in line:
            assert not QR_CHARS & set(line), f"the QR code ran into the LED line: {line!r}"
            assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line), f"a log line: {line!r}"
            assert line.strip().startswith("LED"), f"something ran into the LED line: {line!r}"
    qr_rows = [line for line in lines if QR_CHARS & set(line)]
    assert len(qr_rows) > 10 and all(set(row) <= QR_CHARS | {" "} for row in qr_rows), qr_rows[:3]


def run_piped(tmp_path: Path, *extra: str) -> str:
    """The demo's standard output into a pipe, up to 3 s after it printed the viewer's link."""
    proc = subprocess.Popen(
        demo_command(tmp_path, *extra),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    out = b""
    deadline, settled = time.monotonic() + 60, None
    try:
        while time.monotonic() < (settled or deadline):
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
            if settled is None and b"\nviewer: " in out:
                settled = time.monotonic() + 3
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out.decode("utf-8", "replace")


def test_piped_the_demo_says_why_there_is_no_qr_code_and_how_to_get_it(tmp_path: Path) -> None:
    out = run_piped(tmp_path)
    assert re.search(r"^viewer: http://127\.0\.0\.1:\d+/v/", out, re.M), out
    assert not QR_CHARS & set(out)
    assert "not a terminal" in out and "--qr" in out


def test_piped_with_qr_the_demo_prints_it_in_plain_characters(tmp_path: Path) -> None:
    out = run_piped(tmp_path, "--qr")
    assert re.search(r"^viewer: http://", out, re.M), out
    rows = [line for line in out.splitlines() if QR_CHARS & set(line)]
    assert len(rows) > 10 and "\x1b" not in out, "plain characters, no terminal escapes"
