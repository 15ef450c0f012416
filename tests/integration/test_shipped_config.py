"""The box as the image ships it: the sample appliance.toml (LAN only: every address, TLS on, no
external relay) with a password added, through first boot, opens a session and a viewer watches."""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path

from appliance import firstboot
from tests.conftest import RunningBox
from tests.support.viewer_client import AiortcViewer

SAMPLE = Path(__file__).parents[2] / "image-build" / "boot" / "appliance.toml"


async def test_the_shipped_config_opens_a_session_and_a_viewer_watches(tmp_path: Path) -> None:
    boot = tmp_path / "bootfs" / "appliance.toml"
    boot.parent.mkdir()
    text = SAMPLE.read_text(encoding="utf-8")
    assert 'password = ""' in text and 'host = "0.0.0.0"' in text and "tls = true" in text
    boot.write_text(text.replace('password = ""', 'password = "staff pass phrase"', 1))
    state = tmp_path / "state"
    result = await asyncio.to_thread(firstboot.apply, boot, state, False)
    assert result.ok, result.fault
    cfg, fault = await asyncio.to_thread(firstboot.load_box_config, boot, state)
    assert fault == "" and cfg.web.host == "0.0.0.0" and cfg.web.tls and not cfg.relay.url
    # The only changes: a free port instead of 443, and ICE on the test's loopback-only network.
    cfg = cfg.replace(web={"port": 0}, stream={"ice_addresses": ["127.0.0.1"]})

    box = RunningBox(cfg, open_session=False)
    await asyncio.to_thread(box.start)
    try:
        await asyncio.to_thread(box.press)  # the sonographer opens a session with the button
        link = await asyncio.to_thread(lambda: box.viewer_url)
        parts = urllib.parse.urlsplit(link)
        assert parts.scheme == "https" and parts.hostname == "echo-1.local", "the QR names the box"
        # the phone resolves echo-1.local to the box (mDNS); here that is loopback
        local = parts._replace(netloc=f"127.0.0.1:{parts.port}").geturl()
        viewer = AiortcViewer(local, cafile=str(state / "tls.crt"))
        try:
            await viewer.connect()
            await asyncio.to_thread(box.wait_state, "waiting")
            await asyncio.to_thread(box.press)  # admitted
            assert len(await viewer.frames(10, timeout=15)) == 10
        finally:
            await viewer.close()
    finally:
        await asyncio.to_thread(box.stop)
