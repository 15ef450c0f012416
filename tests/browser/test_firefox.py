"""A second browser engine: Debian's firefox-esr as the co-parent's phone, driven over WebDriver
BiDi by puppeteer-core from a small Node script (tests/support/firefox.mjs), against a whole box
on loopback. Firefox as shipped has no H.264 for WebRTC: the page must say so before it knocks
(the box sees nothing, so logs no tamper). With the test-only prefs that let it decode H.264 with
the system's libavcodec: join, the code, admission, frames whose time strip advances, the scanner's
sound after the page's own "Tap for sound" (a WebAudio analyser finds the heartbeat's band), a
reload back to the seat, the end.

Firefox gathers ICE candidates only on the default route's interface unless the page has a camera
or microphone (PeerConnectionImpl's default-address-only mode: its pref can only force it on), and
finds that interface by connecting a UDP socket to 8.8.8.8, which sends nothing. The tests'
namespace has no default route, so that connect fails and Firefox gathers no candidate at all
(MOZ_LOG=nicer:5 says "use only default local addresses: yes", then mtransport "ICE FAILED:
Couldn't gather ICE candidates ... error=3"); a phone on the guests' Wi-Fi has a default route. So,
in that namespace only, the watching test gives loopback a documentation address (RFC 5737) and a
default route through it (the `default_route` fixture): Firefox offers a host candidate on that
address, which the box on 127.0.0.1 reaches over loopback. Loopback stays the namespace's only
interface: nothing can leave it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.sound import synthetic
from appliance.stream.feedback import RateMode
from tests.support.wait import until

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "tests" / "support" / "firefox.mjs"
FIREFOX = os.environ.get("APPLIANCE_FIREFOX", "/usr/bin/firefox-esr")


def needed() -> str:
    """node, firefox-esr and puppeteer-core (make setup), or fail under CI / skip by hand."""
    node = shutil.which("node")
    missing = []
    if node is None:
        missing.append("node")
    if not os.path.exists(FIREFOX):
        missing.append(f"firefox-esr at {FIREFOX}")
    if not (ROOT / "node_modules" / "puppeteer-core").is_dir():
        missing.append("puppeteer-core (npm ci)")
    if missing:
        message = "missing: " + ", ".join(missing) + " (make setup installs them as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert node is not None
    return node


class Firefox:
    """The Node script as a child process: JSON lines out, words in."""

    def __init__(self, env: dict[str, str] | None = None, **args: Any) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [needed(), str(SCRIPT), json.dumps(args)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1", **(env or {})},
        )

    def step(self, name: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise AssertionError(f"firefox.mjs stopped before {name}: {self.proc.stderr.read()}")
        out: dict[str, Any] = json.loads(line)
        assert out["step"] == name, out
        return out

    def tell(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)


def test_firefox_as_shipped_is_told_it_cannot_play_and_never_knocks(running_box) -> None:
    needed()
    firefox = Firefox(mode="unsupported", link=running_box.viewer_url, h264=False)
    try:
        assert firefox.step("browser")["h264"] is False, "Firefox as shipped: no H.264"
        shown = firefox.step("shown")
    finally:
        firefox.close()
    assert shown["state"] == "unsupported"
    assert shown["message"] == "This browser cannot play the stream"
    assert "#" not in shown["url"], "the key left the address bar"
    kinds = [e["kind"] for e in running_box.box_events()]
    assert "tamper" not in kinds and "knock" not in kinds, kinds
    assert running_box.state() == "ready"


#: TEST-NET-2 (RFC 5737): documentation only, never routed anywhere.
HOST_ADDRESS = "198.51.100.1"


def ip(*args: str) -> None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    subprocess.run(["ip", *args], check=True, env={**os.environ, "PATH": path})  # noqa: S603,S607


@pytest.fixture
def default_route() -> Iterator[None]:
    """In the tests' own loopback-only namespace (tests/run.sh as root), a default route through
    loopback with a host address on it, for the length of one test: Firefox's ICE gathers only on
    the default route's interface (the module's docstring). Outside that namespace the machine's
    own default route does it, and nothing is changed."""
    if os.environ.get("APPLIANCE_IN_NETNS") != "1" or os.geteuid() != 0:
        yield
        return
    interfaces = {name for _, name in socket.if_nameindex()}
    assert interfaces == {"lo"}, f"not the loopback-only namespace: {interfaces}"
    ip("address", "add", f"{HOST_ADDRESS}/32", "dev", "lo")
    try:
        ip("route", "add", "default", "dev", "lo", "src", HOST_ADDRESS)
        try:
            yield
        finally:
            ip("route", "del", "default", "dev", "lo")
    finally:
        ip("address", "del", f"{HOST_ADDRESS}/32", "dev", "lo")


def null_sound_output(tmp: Path) -> dict[str, str]:
    """Firefox runs a page's WebAudio graph only with an audio output, and the tests' namespace
    has no sound card: a home whose ALSA default is the userspace ``null`` PCM (no device, nothing
    kept) gives it one. It runs the graph faster than real time, which the test's analyser does
    not mind (it looks for the loudest band, not for timing)."""
    home = tmp / "firefox-home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
    return {"HOME": str(home)}


def watch(link: str) -> dict[str, Any]:
    return {"mode": "watch", "link": link, "h264": True}


@pytest.mark.usefixtures("default_route")
def test_firefox_with_h264_joins_watches_hears_comes_back_and_sees_the_end(box_factory) -> None:
    needed()
    running_box: Any = box_factory(audio={"source": "synthetic"})
    firefox = Firefox(env=null_sound_output(running_box.tmp), **watch(running_box.viewer_url))
    try:
        assert firefox.step("browser")["h264"] is True
        code = firefox.step("code")
        assert "#" not in code["url"]
        session = running_box.call(lambda: running_box.core.session_view())
        assert session.viewer.code == code["code"], "the staff and the phone see the same code"
        running_box.press()  # admit
        firefox.tell("admitted")
        live = firefox.step("live")
        stamps = live["stamps"]
        assert len(stamps) >= 10 and stamps == sorted(stamps) and stamps[-1] > stamps[0]
        assert live["codec"]["mimeType"].lower() == "video/h264"
        # Firefox offers transport-cc as Chromium does: the box's estimator hears from it
        peer = running_box.call(lambda: running_box.box.viewers.peers[0])
        assert peer.rate_mode is RateMode.TRANSPORT_CC
        until(lambda: running_box.call(lambda: peer.twcc.feedback) >= 5, 5, 0.1, "feedback")
        assert running_box.call(lambda: peer.twcc.malformed) == 0
        heard = firefox.step("heard")
        assert heard["sound"] == "on", "unmuted by the tap"
        assert heard["context"]["state"] == "running", heard
        assert synthetic.BAND[0] - 60 <= heard["hz"] <= synthetic.BAND[1] + 60, heard
        assert heard["energy"] > 0
        back = firefox.step("back")
        assert "#" not in back["url"]
        assert running_box.state() == "live", "the same phone came back, no re-admission"
        running_box.long_press()
        firefox.tell("ended")
        firefox.step("ended")
    finally:
        firefox.close()
    assert firefox.proc.returncode == 0
