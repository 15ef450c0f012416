"""Privacy in practice with the room's own sound on as well: the demo as its own process, its room
microphone on (the synthetic sound standing for the capture card: tests/support/demo_room.py) and
talk-back allowed by the staff on their page, the phone talking (a 440 Hz tone) into the box's
speaker (the real ALSA path: ALSA's ``file`` plugin over ``null``, writing into /dev/null). The
session writes nothing to disk but its event log: no sample of the room, nor of the phone's voice,
and no log line holds the viewer's name."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from tests.integration.test_privacy import DemoProcess, assert_wrote_only_the_event_log, snapshot
from tests.integration.test_room_sound import Voice
from tests.support.viewer_client import AiortcViewer

ROOM = '[room]\nmicrophone = "roommic"\nspeaker = "roomspk"\n'
SPEAKER = 'pcm.roomspk {\n  type file\n  slave.pcm { type null }\n  file "/dev/null"\n}\n'


def staff_switch(pairing: str, password: str, switches: dict[str, bool]) -> None:
    """The staff log in to their page and turn ``switches`` (its own API, as its buttons do)."""
    # the demo's own self-signed certificate, on loopback
    with httpx.Client(verify=False, follow_redirects=True, timeout=20) as client:  # noqa: S501
        page = client.get(pairing).text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token is not None
        client.post(pairing + "login", data={"password": password, "csrf": token.group(1)})
        page = client.get(pairing).text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token is not None, "logged in"
        for switch, on in switches.items():
            answer = client.post(
                pairing + "api/sound",
                json={"switch": switch, "on": on},
                headers={"X-CSRF-Token": token.group(1)},
            )
            assert answer.status_code == 200, answer.text


def banner_password(demo: DemoProcess) -> str:
    """The demo's pairing password (its banner may come before the session's lines)."""
    prefix = "pairing password (this run only): "
    for line in demo.lines:
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return demo.wait_line(prefix)


async def test_the_room_microphone_and_talk_back_write_nothing(tmp_path: Path) -> None:
    (tmp_path / "room.toml").write_text(ROOM)
    (tmp_path / "asoundrc").write_text(SPEAKER)
    demo = DemoProcess(
        tmp_path,
        ("--config", str(tmp_path / "room.toml")),
        {"ALSA_CONFIG_PATH": str(tmp_path / "asoundrc")},
        module="tests.support.demo_room",
    )
    try:
        link = demo.wait_line("viewer: ")
        pairing = demo.wait_line("pairing: ")
        password = banner_password(demo)
        await asyncio.sleep(0.5)
        before = snapshot(tmp_path)
        viewer = AiortcViewer(link, name="Camille Dupont", room_line=True, voice=Voice())
        try:
            await viewer.connect()
            demo.key("")  # admit
            assert len(await viewer.frames(10, timeout=15)) >= 5
            switches = {"microphone": True, "talkback": True}
            await asyncio.to_thread(staff_switch, pairing, password, switches)
            viewer.talk(True)  # the button held: the box plays the phone's voice
            await asyncio.sleep(3.0)
            assert await viewer.room_packets() >= 50, "the room microphone was heard"
            viewer.talk(False)
            await viewer.hang_up()
        finally:
            await viewer.close()
        demo.key("l")  # end the session
        await asyncio.sleep(2.0)
        after = snapshot(tmp_path)
    finally:
        logs = demo.stop()

    assert "talk-back playing" in logs and "talk-back stopped" in logs, "the phone was heard"
    assert "cannot be opened" not in logs and "ALSA playback" not in logs, "played on the PCM"
    assert_wrote_only_the_event_log(tmp_path, before, after)
    events = (tmp_path / ".state" / "events.jsonl").read_text()
    for text in (logs, events):
        assert "Camille" not in text and viewer.room not in text
