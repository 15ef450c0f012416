"""What runs as a program of its own: a fresh interpreter without the Pi's libraries, the EDID script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_needs_no_picamera2() -> None:
    code = (
        "import sys; sys.modules['picamera2'] = None\n"  # any import of it now fails
        "import appliance.capture.camera as c\n"
        "src = c.CameraSource(640, 480, 30)\n"
        "assert 'picamera2' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "try:\n"
        "    src.open()\n"
        "except c.DeviceError as exc:\n"
        "    print('ERR', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "ERR capture.source = 'camera' needs picamera2" in out.stdout
    assert "apt install python3-picamera2" in out.stdout


def test_the_edid_script_finds_the_committed_files_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "hw/edid/make_edid.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
