"""Many staff tablets at once never take the box down: parallel requests for the mask editor's
preview (``preview.jpg``) against a real running box while the picture is live. Before the fix,
every request converted the media thread's shared frame on its own web thread (``to_image``,
libswscale through the frame's one reformatter) and the box died of a segfault with two tablets
open; now the media thread hands over an independent picture, at most one per interval, and its
JPEG is shared by every request."""

from __future__ import annotations

import asyncio
import http.client
import http.cookies
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from appliance.web.preview import PREVIEW_INTERVAL
from tests.support.viewer_client import AiortcViewer

PASSWORD = "preview-stress-password"
THREADS = 16
REQUESTS = 12  # per thread


class Staff:
    """One logged-in pairing page, over plain HTTP on loopback (the test box has no TLS)."""

    def __init__(self, url: str) -> None:
        found = re.match(r"http://([^/]+)(/.*)", url)
        assert found, url
        self.host, self.base = found.group(1), found.group(2)
        self.cookie = ""

    def request(self, method: str, path: str, body: str = "", **headers: str) -> Any:
        conn = http.client.HTTPConnection(self.host, timeout=30)
        try:
            if self.cookie:
                headers["Cookie"] = self.cookie
            conn.request(method, self.base + path, body or None, headers)
            response = conn.getresponse()
            data = response.read()
            for value in response.headers.get_all("Set-Cookie") or []:
                jar = http.cookies.SimpleCookie(value)
                self.cookie = "; ".join(f"{k}={m.value}" for k, m in jar.items())
            return response.status, response.headers.get("Content-Type", ""), data
        finally:
            conn.close()

    def log_in(self) -> None:
        _, _, page = self.request("GET", "")
        found = re.search(rb'name="csrf-token" content="([^"]+)"', page)
        assert found
        token = found.group(1).decode()
        status, _, _ = self.request(
            "POST",
            "login",
            f"password={PASSWORD}&csrf={token}",
            **{"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 303, "logged in"


def hammer(staff: Staff) -> list[tuple[int, str, bytes]]:
    """THREADS threads, REQUESTS preview requests each, all at once."""
    start = threading.Barrier(THREADS)

    def one_tablet() -> list[tuple[int, str, bytes]]:
        start.wait(10)
        return [staff.request("GET", "preview.jpg") for _ in range(REQUESTS)]

    with ThreadPoolExecutor(THREADS, thread_name_prefix="tablet") as pool:
        futures = [pool.submit(one_tablet) for _ in range(THREADS)]
        return [answer for future in futures for answer in future.result(120)]


async def test_parallel_previews_while_live_never_crash_and_cost_one_conversion_per_interval(
    box_factory,
) -> None:
    box = box_factory(pairing={"password": PASSWORD})
    viewer = AiortcViewer(box.viewer_url)
    try:
        await viewer.connect()
        await asyncio.to_thread(box.press)  # admitted: the media thread encodes the scan
        assert len(await viewer.frames(10)) == 10
        staff = Staff(box.pairing_url)
        await asyncio.to_thread(staff.log_in)
        made_before = box.box.pipeline.previews_made
        began = time.monotonic()
        answers = await asyncio.to_thread(hammer, staff)
        elapsed = time.monotonic() - began
        made = box.box.pipeline.previews_made - made_before
        # the box is alive and still streaming to the viewer
        assert box.state() == "live"
        assert len(await viewer.frames(10, timeout=15)) == 10
    finally:
        await viewer.close()
    assert len(answers) == THREADS * REQUESTS
    assert {status for status, _, _ in answers} == {200}
    assert all(kind == "image/jpeg" and body[:2] == b"\xff\xd8" for _, kind, body in answers)
    assert 1 <= made <= elapsed / PREVIEW_INTERVAL + 2, (
        f"{made} conversions for {len(answers)} requests in {elapsed:.1f} s: one per interval"
    )
