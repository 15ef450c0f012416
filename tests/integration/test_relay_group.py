"""A clinic group's relay with no single point of failure: two `appliance relay serve` processes
(started through the CLI) sharing one Redis, behind Debian's HAProxy terminating TLS, with two
coturn handed out. A real box (its relay client) and a real viewer (aiortc and the seal) go
through the proxy; the proxy sends the box's routes to process A and the viewer's to process B
(tests/support/relay_group.py), and its stats say which process served what."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.core.events import Extend, Release
from appliance.relay.config import hash_token
from tests.support import turn
from tests.support.relay_group import Group, relay_group
from tests.support.viewer_client import AiortcViewer

pytestmark = pytest.mark.slow

TOKEN = "box-token-" + "g" * 30


async def counts(group: Group) -> dict[tuple[str, str], int]:
    """Requests HAProxy sent each (backend, server) so far (read off the loop)."""
    return await asyncio.to_thread(group.proxy.served)


async def open_rooms(group: Group) -> int:
    return await asyncio.to_thread(group.rooms.count)


@pytest.fixture
def group(tmp_path: Path, redis_url: str, redis_client: Any, monkeypatch) -> Iterator[Group]:
    with (
        turn.coturn(tmp_path / "turn-a") as turn_a,
        turn.coturn(tmp_path / "turn-b") as turn_b,
    ):
        urls = [f"turn:127.0.0.1:{port}?transport=udp" for port in (turn_a, turn_b)]
        with relay_group(tmp_path, redis_url, [hash_token(TOKEN)], urls, monkeypatch) as group:
            yield group


async def seated_viewer(box: Any, group: Group) -> AiortcViewer:
    """A viewer knocks, is seated, offers and is answered (sealed both ways), and watches."""
    viewer = AiortcViewer(box.viewer_url, cafile=group.proxy.cafile)
    await viewer.connect()
    await asyncio.to_thread(box.press)
    assert len(await viewer.frames(10, timeout=20)) == 10
    return viewer


async def knocks(box: Any) -> int:
    """The knocks in the box's event log (what the staff see of each phone that knocked)."""
    events = await asyncio.to_thread(box.box_events)
    return sum(1 for e in events if e.get("kind") == "knock")


async def test_a_box_on_process_a_and_a_viewer_on_process_b_complete_a_session(
    group: Group, box_factory
) -> None:
    box = box_factory(relay={"url": group.proxy.url, "token": TOKEN})
    assert box.viewer_url.startswith(group.proxy.url + "/v/"), "the link names the proxy"
    viewer = await seated_viewer(box, group)
    try:
        assert box.state() == "live"
        assert viewer.reply.ice_servers[0]["urls"] == group.turn_urls, "both coturn handed out"
        assert await knocks(box) == 1 and await open_rooms(group) == 1
        # the box's polls and sends went to A only, the viewer's knock, offer and polls to B
        served = await counts(group)
        assert served[("boxes", "a")] > 0 and served[("boxes", "b")] == 0
        assert served[("viewers", "b")] > 0 and served[("viewers", "a")] == 0
        assert " opened (1 open)" in await asyncio.to_thread(group.a.logged)
    finally:
        await viewer.close()
    await asyncio.to_thread(box.long_press)  # the staff end the session
    box.wait_state("idle", timeout=20)
    assert await open_rooms(group) == 0, "the room closed"
    assert await knocks(box) == 1


async def status(box: Any) -> Any:
    """What the staff's page shows (the core's status)."""
    return await asyncio.to_thread(box.call, lambda: box.core.status())


async def staff(box: Any, command: Any) -> Any:
    """A staff command, as the pairing page sends it."""
    return await asyncio.to_thread(box.run, box.core.command(command))


@pytest.mark.parametrize("victim", ["a", "b"])
async def test_either_process_killed_mid_session_the_box_and_the_viewer_go_on_through_the_other(
    group: Group, box_factory, victim: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A is the box's process, B the viewer's. Killed mid-session, either one: the picture
    goes on, the box's client and the viewer reach the other process through the proxy with no
    new knock, the room and the session are still there, the staff see nothing change, and
    sealed messages and staff actions still go both ways; then another phone comes in and the
    next session opens, through the survivor alone."""
    backend = "boxes" if victim == "a" else "viewers"  # whose requests must move
    await go_on_without(group, box_factory, victim, backend, caplog)


@pytest.fixture
def documented_group(
    tmp_path: Path, redis_url: str, redis_client: Any, monkeypatch
) -> Iterator[Group]:
    """The group behind docs/relay.md's own HAProxy configuration (no TURN)."""
    boxes = [hash_token(TOKEN)]
    with relay_group(tmp_path, redis_url, boxes, [], monkeypatch, documented=True) as group:
        yield group


async def test_behind_the_documented_proxy_config_a_process_killed_mid_session_changes_nothing(
    documented_group: Group, box_factory, caplog: pytest.LogCaptureFixture
) -> None:
    """The same, behind docs/relay.md's own HAProxy configuration: both processes active, each
    request to the one with fewer open (the box and the viewer on either, or both)."""
    await go_on_without(documented_group, box_factory, "a", "relays", caplog)


async def go_on_without(
    group: Group, box_factory: Any, victim: str, backend: str, caplog: Any
) -> None:
    """A session through ``group``; ``victim`` killed mid-session; everything goes on."""
    box = box_factory(relay={"url": group.proxy.url, "token": TOKEN})
    viewer = await seated_viewer(box, group)
    killed, survivor = (group.a, group.b) if victim == "a" else (group.b, group.a)
    try:
        before = await status(box)
        assert before.state == "live" and before.error is None and before.viewers == 1
        assert (await knocks(box), await open_rooms(group)) == (1, 1)
        moved = (await counts(group))[(backend, survivor.name)]

        await asyncio.to_thread(killed.kill)
        assert len(await viewer.frames(30, timeout=10)) >= 25, "the picture never stopped"
        # the proxy's health checks take the dead process out (two misses, 1 s here)
        await eventually(lambda: group.proxy.down(killed.name), 10, "the proxy noticing")
        if backend == "boxes":  # the box's long poll was on A: its client polls again, via B
            await eventually(lambda: group.served("boxes", "b") > moved, 30, "the box polling B")
        await staff(box, Extend(minutes=5))  # a staff action through the survivor
        assert viewer.relay is not None
        # a sealed message from the viewer to the box, through the survivor
        await viewer.relay.send(viewer.handshake.seal({"type": "bye"}))
        await eventually(lambda: left(box), 20, "the box hearing the viewer's bye")
        # and one from the box to the viewer: the staff let another phone in
        await staff(box, Release())
        end = viewer.handshake.open(await viewer.relay.receive(timeout=20))
        assert end == {"type": "end", "reason": "released"}

        after = await status(box)
        assert after.error is None and after.session is not None
        assert after.session.url == before.session.url, "the same session"
        assert after.session.expires > before.session.expires, "extended"
        assert (await knocks(box), await open_rooms(group)) == (1, 1), "no new knock, no room"
        assert (await counts(group))[(backend, survivor.name)] > moved, "through the survivor"

        # another phone comes in, its whole handshake through the survivor, and watches
        second = await seated_viewer(box, group)
        await second.close()
        assert await knocks(box) == 2
    finally:
        await viewer.close()
    relay_lines = [r for r in caplog.records if r.name.startswith("appliance.signalling")]
    assert all(r.levelname in ("INFO", "WARNING") for r in relay_lines), "log lines, no error"
    assert not any("opened it again" in r.getMessage() for r in relay_lines), "no reopening"
    await asyncio.to_thread(box.long_press)
    box.wait_state("idle", timeout=20)
    assert await open_rooms(group) == 0, "closed through the survivor"
    await asyncio.to_thread(box.press)  # the next session opens through the survivor too
    await eventually(lambda: group.rooms.count() == 1, 10, "the next session's room")


async def eventually(probe: Any, timeout: float, what: str) -> None:
    """``probe()`` (blocking: run off the loop) until it is true, at most ``timeout`` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(probe):
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not after {timeout} s"
        await asyncio.sleep(0.2)


def left(box: Any) -> bool:
    return any(e.get("kind") == "viewer-left" for e in box.box_events())


def test_the_sample_proxy_configuration_in_docs_relay_md_is_one_haproxy_accepts(
    tmp_path: Path,
) -> None:
    import re
    import subprocess

    from appliance.crypto import load_or_create_tls
    from tests.support.relay_group import REPO, haproxy_path

    text = (REPO / "docs" / "relay.md").read_text()
    (sample,) = re.findall(r"```haproxy\n(.*?)```", text, re.S)
    tls = load_or_create_tls(tmp_path, ["relay.clinic.example"])
    pem = tmp_path / "relay.pem"
    pem.write_bytes(tls.cert.read_bytes() + tls.key.read_bytes())
    config = tmp_path / "haproxy.cfg"
    config.write_text(sample.replace("/etc/haproxy/relay.pem", str(pem)))
    checked = subprocess.run(  # noqa: S603 - Debian's haproxy on our own file
        [haproxy_path(), "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not re.search(r"^\s*(log|option httplog)\b", sample, re.M), "no access log"


async def test_a_poll_cut_by_its_process_s_death_is_answered_through_the_other_without_error(
    documented_group: Group,
) -> None:
    """Behind docs/relay.md's configuration, long polls wait on both processes when A is killed:
    HAProxy sends those on A again to B itself (a GET only reads), so the box hears the next
    knock through B with no error and no pause."""
    import ssl
    import time

    import httpx

    group, rooms = documented_group, [f"room-{i}-" + "r" * 20 for i in range(4)]
    box = {"Authorization": f"Bearer {TOKEN}"}
    trusted = ssl.create_default_context(cafile=group.proxy.cafile)
    async with httpx.AsyncClient(base_url=group.proxy.url, verify=trusted) as http:
        for room in rooms:
            opened = await http.put(
                f"/api/box/rooms/{room}", json={"expires": time.time() + 600}, headers=box
            )
            assert opened.status_code == 201
        polls = [
            asyncio.create_task(
                http.get(f"/api/box/rooms/{room}/messages?after=0&wait=20", headers=box)
            )
            for room in rooms
        ]
        await asyncio.sleep(1.0)
        assert not any(p.done() for p in polls)
        await asyncio.to_thread(group.a.kill)
        await asyncio.sleep(0.5)
        for i, room in enumerate(rooms):  # through B (the viewer's routes)
            forwarded = {"X-Forwarded-For": f"198.18.0.{i + 1}"}
            knocked = await http.post(
                f"/api/rooms/{room}/knock", json={"blob": "k"}, headers=forwarded
            )
            assert knocked.status_code == 202
        for answer in await asyncio.wait_for(asyncio.gather(*polls), 10):
            assert answer.status_code == 200, "no 502: the poll went on through B"
            assert [m["kind"] for m in answer.json()["messages"]] == ["knock"]
