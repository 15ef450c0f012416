"""Privacy in practice: a whole session with the box as its own process (the demo, as a user runs
it, picture and sound; and again with talk-back played on a speaker) writes nothing to disk but
its event log, and no log line holds the secret, a key derived from it, the room id, the viewer's
name or an IP address."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.support.viewer_client import AiortcViewer


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: (size, mtime in ns)."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def assert_wrote_only_the_event_log(root: Path, before: dict, after: dict) -> None:
    """Between two :func:`snapshot` s of ``root``, a session changed no file but the event
    log, and left nothing in its TMPDIR."""
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed <= {".state/events.jsonl"}, f"a session wrote {sorted(changed)}"
    assert not any(root.joinpath("tmp").iterdir()), "nothing in TMPDIR"


class DemoProcess:
    """`appliance run --demo` in a fresh working directory with its own TMPDIR and HOME."""

    def __init__(
        self,
        workdir: Path,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        module: str = "appliance",
    ) -> None:
        """``module``: what runs ``run --demo`` (a test's own wrapper, e.g. with a synthetic
        room microphone at the hardware boundary)."""
        self.workdir = workdir
        self.tmpdir = workdir / "tmp"
        self.tmpdir.mkdir()
        env = {
            **os.environ,
            **(env or {}),
            "TMPDIR": str(self.tmpdir),
            "HOME": str(workdir),
            "PYTHONDONTWRITEBYTECODE": "1",
            # this checkout's code, not whichever one the environment was installed from
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "run", "--demo", "--port", "0", *args],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []

    def wait_line(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise AssertionError(f"no {prefix!r} line; got {self.lines!r}")

    def key(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> str:
        """Stop it like Ctrl-C and return everything it logged."""
        self.proc.send_signal(2)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


async def test_a_session_writes_nothing_but_the_event_log_and_logs_no_secret(tmp_path) -> None:
    demo = DemoProcess(tmp_path)
    try:
        link = demo.wait_line("viewer: ")
        pairing = demo.wait_line("pairing: ")
        # the built-in relay is served by the box's own web server: one port, one certificate
        assert link.split("/v/")[0] == pairing.split("/pairing/")[0]
        await asyncio.sleep(0.5)
        before = snapshot(tmp_path)
        viewer = AiortcViewer(link, name="Camille Dupont", audio=True)
        try:
            await viewer.connect()
            demo.key("")  # admit
            frames = await viewer.frames(30, timeout=15)
            assert len(frames) >= 20
            # the demo's heartbeat was sent too, and no sample of it reaches the disk
            assert await viewer.audio_packets() >= 25, "the sound flowed"
            await viewer.hang_up()
        finally:
            await viewer.close()
        demo.key("l")  # end the session
        await asyncio.sleep(2.0)
        after = snapshot(tmp_path)
    finally:
        logs = demo.stop()

    assert_wrote_only_the_event_log(tmp_path, before, after)
    events = (tmp_path / ".state" / "events.jsonl").read_text()

    secret_b64 = link.split("#", 1)[1].split(".", 1)[0]
    room = viewer.room
    forbidden = {
        "the session secret": secret_b64,
        "the room id": room,
        "the viewer's name": "Camille",
        "the verification code": viewer.code or "no code",
        **{f"derived key {name}": value for name, value in viewer.handshake.derived_keys().items()},
    }
    for what, value in forbidden.items():
        assert value not in logs, f"{what} is in the box's log"
        assert value not in events, f"{what} is in the event log"
    assert "state ready -> waiting" in logs, "the log was captured"
    assert not re.search(r"\b127\.0\.0\.1\b", logs), "an IP address is in the box's log"


def test_a_failed_tls_handshake_is_logged_without_the_clients_address(
    tmp_path, caplog, capfd
) -> None:
    """cheroot reports handshake failures itself; they must go through the scrubbed log."""
    import logging
    import socket

    from appliance import logs
    from appliance.crypto import load_or_create_tls
    from appliance.httpd.server import WebServer

    tls = load_or_create_tls(tmp_path, ["localhost", "127.0.0.1"])
    server = WebServer(lambda env, start: [], "127.0.0.1", 0, str(tls.cert), str(tls.key))
    server.start()
    caplog.set_level(logging.DEBUG)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")  # plain HTTP to a TLS port
            try:
                raw.recv(100)
            except OSError:
                pass  # the server drops it
        time.sleep(0.5)
    finally:
        server.stop()
    out, err = capfd.readouterr()
    assert "127.0.0.1" not in out + err, "cheroot wrote the address to the console"
    scrubbed = [
        logs.scrub(r.getMessage()) for r in caplog.records if r.name.startswith("appliance")
    ]
    assert all("127.0.0.1" not in line for line in scrubbed)


async def test_an_ended_sessions_link_is_dropped_at_once(running_box) -> None:
    """The link (with the secret) lives only as long as its session: after the end nothing the
    box holds gives it out again, before any new session opens (issue 11 item 10)."""
    import urllib.request

    link = running_box.viewer_url
    secret = link.split("#", 1)[1].split(".", 1)[0]
    await asyncio.to_thread(running_box.long_press)
    await asyncio.to_thread(running_box.wait_state, "idle")
    box = running_box.box
    gate = box.core._signalling

    def held() -> list[object]:
        return [
            box.viewer_url(),
            box.core.session,
            box.core.session_view(),
            gate._session,
            gate._attempt,
        ]

    assert running_box.call(held) == [None] * 5

    def public_status() -> str:
        with urllib.request.urlopen(running_box.url + "/api/status") as response:  # noqa: S310
            return str(response.read().decode())

    assert secret not in await asyncio.to_thread(public_status)
    status = running_box.call(lambda: box.core.status())
    assert status.session is None and secret not in repr(status)


class Staff:
    """The staff's pairing page over HTTP, logged in with the demo's printed password."""

    def __init__(self, pairing_url: str, password: str) -> None:
        import http.cookiejar
        import urllib.request

        self.url = pairing_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self._post("login", urllib.parse.urlencode({"password": password, "csrf": self._csrf()}))

    def _csrf(self) -> str:
        page = self.opener.open(self.url, timeout=10).read().decode()
        found = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert found, "the page carries a CSRF token"
        return found.group(1)

    def _post(self, path: str, body: str, kind: str = "application/x-www-form-urlencoded") -> None:
        import urllib.request

        headers = {"Content-Type": kind, "X-CSRF-Token": self._csrf()}
        request = urllib.request.Request(self.url + path, body.encode(), headers, method="POST")
        self.opener.open(request, timeout=10).read()

    def sound(self, switch: str, on: bool) -> None:
        self._post("api/sound", json.dumps({"switch": switch, "on": on}), "application/json")


async def test_talkback_writes_nothing_either(tmp_path) -> None:
    """The same demo process with a speaker (ALSA's ``null`` PCM: it keeps nothing), the staff
    allowing talk-back on the page and the phone talking: still nothing written but the event
    log, which says the switch and the talk without anything personal."""
    from tests.integration.test_room_sound import Voice

    asoundrc = tmp_path / "asoundrc"
    asoundrc.write_text("pcm.roomspk { type null }\n")
    room = tmp_path / "room.toml"
    room.write_text('[room]\nspeaker = "roomspk"\n')
    demo = DemoProcess(tmp_path, ("--config", str(room)), {"ALSA_CONFIG_PATH": str(asoundrc)})
    try:
        password = demo.wait_line("pairing password (this run only): ")
        link = demo.wait_line("viewer: ")
        pairing = demo.wait_line("pairing: ")
        await asyncio.sleep(0.5)
        before = snapshot(tmp_path)
        staff = await asyncio.to_thread(Staff, pairing, password)
        viewer = AiortcViewer(link, name="Camille Dupont", room_line=True, voice=Voice())
        try:
            await viewer.connect()
            demo.key("")  # admit
            assert len(await viewer.frames(10, timeout=15)) >= 5
            await asyncio.to_thread(staff.sound, "talkback", True)
            await asyncio.sleep(0.3)
            viewer.talk(True)  # the phone's voice plays in the room for a second
            await asyncio.sleep(1.0)
            viewer.talk(False)
            await asyncio.sleep(0.3)
            await viewer.hang_up()
        finally:
            await viewer.close()
        demo.key("l")  # end the session
        await asyncio.sleep(2.0)
        after = snapshot(tmp_path)
    finally:
        logs = demo.stop()

    assert_wrote_only_the_event_log(tmp_path, before, after)
    events = [json.loads(line) for line in (tmp_path / ".state" / "events.jsonl").open()]
    kinds = [e["kind"] for e in events]
    assert "sound" in kinds and kinds.count("talk") == 2, kinds
    assert "talk-back playing" in logs, "the voice was played"
    assert "cannot be opened" not in logs and "playback failed" not in logs, "on the speaker"
    assert "Camille" not in logs
