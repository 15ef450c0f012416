"""The demo: its config overrides, and its terminal (Enter = short press, "l" then Enter = long
press, the LED drawn live).

The key presses drive gpiozero's MockFactory pins, so the real Button code (bounce, hold time)
runs unchanged; the LED is read back from its mock pin.
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

import segno

from .panel import Panel, mock_pin, press_pin
from .state import State

if TYPE_CHECKING:
    from .box import Box

#: The demo's stand-ins at the hardware and network boundary: mock pins, loopback only. They also
#: apply to a box's own config run with --demo (the image's smoke test).
DEMO_BOUNDARY: dict[str, Any] = {
    "panel": {"pin_factory": "mock"},
    "stream": {"ice_addresses": ["127.0.0.1"], "ice_servers": []},
    "web": {"host": "127.0.0.1"},
}
#: What the demo runs with on top of the config: the boundary's stand-ins, the synthetic scanner
#: (``--source`` and ``--encoder`` choose other backends, e.g. hdmi-fake and hardware-fake).
DEMO_OVERRIDES: dict[str, Any] = {
    **DEMO_BOUNDARY,
    "capture": {"source": "synthetic"},
    # The phantom's stand-in patient banner, blanked before encoding (below the time strip).
    "mask": {
        "scanner": "synthetic phantom",
        "rects": [{"x": 0.69, "y": 0.05, "w": 0.28, "h": 0.08}],
    },
}


def print_banner(pairing_url: str, password: str, out: TextIO = sys.stdout) -> None:
    """What the demo prints once: the pairing page, its password, the keys."""
    print(f"pairing: {pairing_url}", file=out, flush=True)
    if password:
        print(f"pairing password (this run only): {password}", file=out, flush=True)
    print(
        'Press Enter for a short press, "l" then Enter for a long press, Ctrl-C to stop.',
        file=out,
        flush=True,
    )


def print_session(box: Box, out: TextIO = sys.stdout) -> None:
    """For every session the demo opens: the viewer's link and the pairing page on lines of
    their own, then the link as a terminal QR code."""
    viewer = box.viewer_url()
    if viewer is None:
        return
    print(f"viewer: {viewer}", file=out, flush=True)
    print(f"pairing: {box.pairing_url}", file=out, flush=True)
    if out.isatty():
        segno.make(viewer, error="m").terminal(out=out, compact=True)


def lan_address() -> str:
    """This machine's address on its LAN (for --lan): the source address the kernel would use
    towards a documentation-only address. A UDP connect sends no packet."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, nothing is sent
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def press(panel: Panel, hold: float) -> None:
    """Press the mock button for ``hold`` seconds (a long press when hold > hold_time)."""
    press_pin(mock_pin(panel, "button"), hold)


class Terminal:
    """Reads key presses from stdin and draws the LED, in daemon threads."""

    def __init__(self, panel: Panel, hold_time: float, out: TextIO = sys.stdout) -> None:
        self._panel = panel
        self._hold_time = hold_time
        self._out = out
        self._state = State.IDLE
        self._stop = threading.Event()

    def start(self, stdin: TextIO = sys.stdin) -> None:
        threading.Thread(target=self._read_keys, args=(stdin,), name="keys", daemon=True).start()
        if self._out.isatty():
            threading.Thread(target=self._draw_led, name="led", daemon=True).start()

    def state_changed(self, old: Any, new: State) -> None:
        self._state = new
        if not self._out.isatty():
            led = "on" if self._panel.led.value else "off"
            print(
                f"[LED {led}, pattern {self._panel.pattern}] {new.value}",
                file=self._out,
                flush=True,
            )

    def stop(self) -> None:
        self._stop.set()

    def _read_keys(self, stdin: TextIO) -> None:
        for line in stdin:
            if self._stop.is_set():
                return
            key = line.strip().lower()
            if key == "l":
                print(
                    f"(holding the button for {self._hold_time + 0.3:.1f} s)",
                    file=self._out,
                    flush=True,
                )
                press(self._panel, self._hold_time + 0.3)
            elif key == "":
                press(self._panel, 0.1)

    def _draw_led(self) -> None:
        pin = mock_pin(self._panel, "led")
        shown = None
        while not self._stop.wait(0.05):
            lit = bool(pin.state)
            frame = (lit, self._state)
            if frame != shown:
                shown = frame
                dot = "\x1b[1;31m●\x1b[0m" if lit else "○"
                self._out.write(f"\r\x1b[K LED {dot}  {self._state.value.upper():8s}")
                self._out.flush()
