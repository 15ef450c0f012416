"""A CSI camera through picamera2 (libcamera), for boxes filming a screen or a probe directly.

picamera2 exists only on Raspberry Pi OS (``apt install python3-picamera2``), so it is imported
when the source opens, never at module import. Frames arrive as YUV420 and leave as yuv420p
``av.VideoFrame``. The TC358743 is not a camera sensor: HDMI goes through
:mod:`appliance.capture.hdmi`, not here.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import av
import numpy as np

from ..errors import DeviceError
from .base import CapturedFrame, SignalState

logger = logging.getLogger(__name__)

INSTALL_HINT = "install it on Raspberry Pi OS with 'sudo apt install python3-picamera2'"


class CameraSource:
    """Frames from CSI camera ``camera_num`` at ``width`` x ``height``, ``fps``."""

    def __init__(self, width: int = 1920, height: int = 1080, fps: float = 30, camera_num: int = 0):
        self._size = (width, height)
        self._fps = float(fps)
        self._camera_num = camera_num
        self._cam: Any = None
        self._job: Any = None
        self._signal = SignalState.NO_DEVICE

    @property
    def width(self) -> int:
        return self._size[0]

    @property
    def height(self) -> int:
        return self._size[1]

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def signal(self) -> SignalState:
        return self._signal

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise DeviceError(f"capture.source = 'camera' needs picamera2: {INSTALL_HINT}") from exc
        try:
            cam = Picamera2(self._camera_num)
        except (IndexError, RuntimeError) as exc:
            raise DeviceError(
                f"no CSI camera {self._camera_num}: check the ribbon, then "
                "'rpicam-hello --list-cameras'"
            ) from exc
        w, h = self._size
        cfg = cam.create_video_configuration(
            main={"size": (w, h), "format": "YUV420"},
            controls={"FrameRate": self._fps},
            buffer_count=4,
        )
        cam.configure(cfg)
        cam.start()
        self._cam = cam
        self._signal = SignalState.PRESENT
        logger.info("camera %d at %dx%d, %.3g fps", self._camera_num, w, h, self._fps)

    def read(self, timeout: float) -> CapturedFrame | None:
        cam = self._cam
        if cam is None:
            time.sleep(timeout)
            return None
        if self._job is None:  # a request still pending from a timed-out read is kept
            self._job = cam.capture_request(wait=False)
        try:
            request = cam.wait(self._job, timeout=timeout)
        except TimeoutError:
            return None
        self._job = None
        try:
            array = request.make_array("main")
        finally:
            request.release()
        return CapturedFrame(frame=_yuv420_frame(array, *self._size), captured_at=time.time())

    def close(self) -> None:
        cam, self._cam, self._job = self._cam, None, None
        self._signal = SignalState.NO_DEVICE
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()


def _yuv420_frame(array: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """picamera2's YUV420 array (rows of ``stride`` bytes, planes back to back) as yuv420p."""
    flat = np.ascontiguousarray(array).reshape(-1)
    stride = flat.size * 2 // (height * 3)
    y_end = stride * height
    c_size = (stride // 2) * (height // 2)
    planes = (
        flat[:y_end].reshape(height, stride)[:, :width],
        flat[y_end : y_end + c_size].reshape(height // 2, stride // 2)[:, : width // 2],
        flat[y_end + c_size : y_end + 2 * c_size].reshape(height // 2, stride // 2)[
            :, : width // 2
        ],
    )
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, src in zip(frame.planes, planes, strict=True):
        dst = np.frombuffer(cast(Any, plane), np.uint8).reshape(-1, plane.line_size)
        dst[: src.shape[0], : src.shape[1]] = src
    return frame
