"""Backends chosen by config string (capture/registry.py, encode/registry.py): the whole box on the
HDMI path over the fake TC358743 and the M2M encoder path over the fake device, as the demo
(`--source hdmi-fake --encoder hardware-fake`), the benchmarks and the image's smoke test run it."""

from __future__ import annotations

import asyncio

from appliance.capture.hdmi import HdmiSource
from appliance.encode.hardware import HardwareEncoder
from tests.support.viewer_client import AiortcViewer


async def test_the_fake_hdmi_bridge_and_fake_hardware_encoder_chosen_by_config(
    box_factory,
) -> None:
    box = box_factory(
        capture={"source": "hdmi-fake", "width": 1920, "height": 1080},
        encode={"encoder": "hardware-fake"},
    )
    viewer = AiortcViewer(box.viewer_url)
    try:
        await viewer.connect()
        await asyncio.to_thread(box.wait_state, "waiting")
        await asyncio.to_thread(box.press)
        frames = await viewer.frames(12, timeout=20)
        assert len(frames) == 12
        stamps = [f.stamp for f in frames if f.stamp is not None]
        assert len(stamps) >= 10 and stamps == sorted(stamps), "the fake scanner's time strip"
        pipeline = box.box.pipeline
        assert isinstance(pipeline.source, HdmiSource)
        assert isinstance(pipeline.encoder, HardwareEncoder), "the M2M path, over its fake"
    finally:
        await viewer.close()
