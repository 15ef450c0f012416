"""CameraSource: importable without picamera2, a clear error without it, and its use of the API."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import numpy as np
import pytest

from appliance.capture.base import SignalState
from appliance.errors import DeviceError


def test_open_without_picamera2_raises_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    from appliance.capture.camera import CameraSource

    src = CameraSource()
    with pytest.raises(DeviceError, match="picamera2") as info:
        src.open()
    assert isinstance(info.value, OSError)
    assert src.signal is SignalState.NO_DEVICE
    src.close()


class FakeRequest:
    def __init__(self, w: int, h: int, stride: int) -> None:
        self.array = np.zeros((h * 3 // 2, stride), np.uint8)
        flat = self.array.reshape(-1)
        flat[: h * stride].reshape(h, stride)[:, :w] = 200
        flat[h * stride : h * stride + (stride // 2) * (h // 2)] = 90
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        assert name == "main"
        return self.array

    def release(self) -> None:
        self.released = True


class FakePicamera2:
    instances: list[FakePicamera2] = []

    def __init__(self, num: int = 0) -> None:
        if num > 0:
            raise IndexError("list index out of range")  # what picamera2 raises for no camera
        self.config: dict[str, Any] = {}
        self.started = self.closed = False
        self.pending = 0
        self.requests: list[FakeRequest] = []
        FakePicamera2.instances.append(self)

    def create_video_configuration(
        self, main: dict[str, Any], controls: dict[str, Any], buffer_count: int
    ) -> dict[str, Any]:
        return {"main": main, "controls": controls, "buffer_count": buffer_count}

    def configure(self, cfg: dict[str, Any]) -> None:
        self.config = cfg

    def start(self) -> None:
        self.started = True

    def capture_request(self, wait: bool) -> object:
        assert wait is False
        self.pending += 1
        return object()

    def wait(self, job: object, timeout: float) -> FakeRequest:
        if len(self.requests) == 0 and self.pending == 1 and timeout < 0.05:
            raise TimeoutError
        w, h = self.config["main"]["size"]
        req = FakeRequest(w, h, stride=(w + 63) // 64 * 64)
        self.requests.append(req)
        return req

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


def test_frames_through_a_stand_in_picamera2(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    camera = importlib.import_module("appliance.capture.camera")
    src = camera.CameraSource(1000, 562, 25)  # a width whose rows are padded (stride 1024)
    src.open()
    cam = FakePicamera2.instances[-1]
    assert cam.started and cam.config["main"] == {"size": (1000, 562), "format": "YUV420"}
    assert cam.config["controls"] == {"FrameRate": 25.0}
    assert src.read(0.01) is None  # timed out: the pending request is kept, not leaked
    f = src.read(1.0)
    assert f is not None and cam.pending == 1 and cam.requests[-1].released
    arr = f.frame.to_ndarray()
    assert (f.frame.width, f.frame.height, f.frame.format.name) == (1000, 562, "yuv420p")
    assert (arr[:562] == 200).all() and (arr[562 : 562 + 562 // 4] == 90).all()
    src.close()
    assert cam.closed and src.signal is SignalState.NO_DEVICE
    with pytest.raises(DeviceError, match="no CSI camera 1"):
        camera.CameraSource(camera_num=1).open()
