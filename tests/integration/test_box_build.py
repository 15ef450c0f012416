"""The box's assembly: each part built by its own builder before whatever uses it; a failure in
a late builder stops what the earlier ones started; the saved privacy mask belongs to the media
side and is applied without the pairing page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import av
import pytest
from gpiozero.pins.mock import MockFactory

from appliance import assembly
from appliance.board import resolve
from appliance.box import Box, Seams
from appliance.capture.synthetic import SyntheticSource
from appliance.demo import DEMO_OVERRIDES
from appliance.httpd.server import WebServer
from appliance.stream.pipeline import Mode
from tests.conftest import make_config


class ClosingSource(SyntheticSource):
    """The synthetic source, telling whether it was closed."""

    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_a_failure_in_the_last_builder_stops_what_the_earlier_ones_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers: list[WebServer] = []

    class RecordingServer(WebServer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            servers.append(self)

    def broken_pages(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected: the pages cannot be built")

    monkeypatch.setattr(assembly, "WebServer", RecordingServer)
    monkeypatch.setattr(assembly, "create_app", broken_pages)
    source = ClosingSource(1280, 720, 30)
    config = make_config(box={"state_dir": str(tmp_path / "state")})
    seams = Seams(source=source, pin_factory=MockFactory(), clock_ok=lambda: True)
    with pytest.raises(RuntimeError, match="injected"):
        asyncio.run(Box.build(config, seams))
    # the web server and the built-in relay were started (their threads: the autouse guard
    # fails the test if any is left), and the media's source was given: all stopped again
    [server] = servers
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    assert source.closed, "the media builder's source was closed"


async def test_the_media_builder_applies_the_saved_mask_from_the_first_frame(
    tmp_path: Path,
) -> None:
    rects = [[r["x"], r["y"], r["w"], r["h"]] for r in DEMO_OVERRIDES["mask"]["rects"]]
    state = tmp_path / "state"
    state.mkdir()
    (state / "mask.json").write_text(json.dumps({"rects": rects}))
    config = make_config(box={"state_dir": str(state)}, encode={"encoder": "software"})
    loop = asyncio.get_running_loop()
    with contextlib.ExitStack() as undo:
        media, fanout = await asyncio.to_thread(
            assembly.build_media, config, resolve(config), Seams(), state, loop, undo
        )
        assert media.mask() == [tuple(r) for r in rects], "the saved mask, not the config's"
        subscription = fanout.subscribe()
        media.start()
        media.set_viewers(1)
        media.set_mode(Mode.LIVE)
        frame = await _first_picture(subscription)
        await asyncio.to_thread(media.stop)
    x, y, w, h = SyntheticSource(1280, 720, 30).banner_rect
    assert (frame.width, frame.height) == (1280, 720)
    banner = frame.to_ndarray(format="gray")[y : y + h, x : x + w]
    assert int(banner.max()) < 40, "the banner's text was encoded: the saved mask not applied"


async def _first_picture(subscription: Any) -> av.VideoFrame:
    """The first picture decoded from the packets the media side publishes."""
    decoder = av.CodecContext.create("h264", "r")
    for _ in range(30):
        packet = await asyncio.wait_for(subscription.get(), 10)
        assert packet is not None
        for frame in decoder.decode(packet):
            return frame
    raise AssertionError("no picture decoded")
