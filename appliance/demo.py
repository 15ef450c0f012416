"""The demo: its config overrides, and its terminal (Enter = short press, "l" then Enter = long
press, the LED drawn live).

The key presses drive gpiozero's MockFactory pins, so the real Button code (bounce, hold time)
runs unchanged; the LED is read back from its mock pin. In a terminal the LED has the bottom line
to itself: everything else (log lines, links, the QR code) is written above it through
:meth:`Terminal.above`. It says what the staff's page says, in the page's own words.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO, cast

import segno

from .panel import Panel, mock_pin, press_pin
from .state import State
from .web.pairing.strings import TEXT

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
    # The heartbeat's Doppler-like sound: the phone plays it after one tap.
    "audio": {"source": "synthetic"},
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


#: Said instead of the QR code when the output is not a terminal (piped, to a file).
NO_QR = (
    "(no QR code: the output is not a terminal; open the viewer link above, or run with --qr, "
    "e.g. make demo DEMO_ARGS=--qr, to print it in plain characters)"
)


def print_session(box: Box, out: TextIO = sys.stdout, qr: bool | None = None) -> None:
    """For every session the demo opens: the viewer's link and the pairing page on lines of
    their own, then the link as a QR code in plain (Unicode block) characters: in a terminal, or
    anywhere with ``qr``; else a line saying why not and how to get it."""
    viewer = box.viewer_url()
    if viewer is None:
        return
    print(f"viewer: {viewer}", file=out, flush=True)
    print(f"pairing: {box.pairing_url}", file=out, flush=True)
    if qr or qr is None and out.isatty():
        drawn = io.StringIO()
        segno.make(viewer, error="m").terminal(out=drawn, compact=True)
        out.write(drawn.getvalue())  # at once: nothing else lands between its rows
        out.flush()
    else:
        print(NO_QR, file=out, flush=True)


def led_words(state: State, lang: str = "en") -> str:
    """What the staff's page says in ``state`` (its strings), for the demo's LED line."""
    return TEXT[lang].get(f"state_{state.value}", state.value)


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
    """Reads key presses from stdin and draws the LED, in daemon threads.

    In a terminal the LED is drawn on the last line, redrawn in place; whatever else is printed
    goes through :meth:`above`, which clears that line, writes, and draws it again, so nothing
    runs into it. Elsewhere (piped) every change of state is a line of its own."""

    def __init__(self, panel: Panel, hold_time: float, out: TextIO = sys.stdout) -> None:
        self._panel = panel
        self._hold_time = hold_time
        self._out = out
        self._state = State.IDLE
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._status = ""  # the LED line as drawn ("" while none is)

    def start(self, stdin: TextIO = sys.stdin) -> None:
        threading.Thread(target=self._read_keys, args=(stdin,), name="keys", daemon=True).start()
        if self._out.isatty():
            threading.Thread(target=self._draw_led, name="led", daemon=True).start()

    def above(self, stream: TextIO) -> TextIO:
        """``stream`` (this terminal's stdout or stderr) as a file whose whole lines are written
        above the LED line (for print and for logging's handler)."""
        return cast(TextIO, _Above(self, stream))

    def write_above(self, stream: TextIO, text: str) -> None:
        with self._lock:
            if self._status:
                self._out.write("\r\x1b[K")
                self._out.flush()
            stream.write(text)
            stream.flush()
            if self._status:
                self._out.write(self._status)
                self._out.flush()

    def state_changed(self, old: Any, new: State) -> None:
        self._state = new
        if not self._out.isatty():
            led = "on" if self._panel.led.value else "off"
            print(
                f"[LED {led}, pattern {self._panel.pattern}] {led_words(new)}",
                file=self._out,
                flush=True,
            )

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._status:
                self._out.write("\r\x1b[K")
                self._out.flush()
            self._status = ""

    def _read_keys(self, stdin: TextIO) -> None:
        for line in stdin:
            if self._stop.is_set():
                return
            key = line.strip().lower()
            if key == "l":
                hold = self._hold_time + 0.3
                self.write_above(self._out, f"(holding the button for {hold:.1f} s)\n")
                press(self._panel, hold)
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
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._status = f" LED {dot}  {led_words(self._state)}"
                    self._out.write(f"\r\x1b[K{self._status}")
                    self._out.flush()


class _Above(io.TextIOBase):
    """A text stream whose complete lines :class:`Terminal` writes above its LED line."""

    def __init__(self, terminal: Terminal, stream: TextIO) -> None:
        self._terminal = terminal
        self._stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" not in self._pending:
                return len(text)
            lines, _, self._pending = self._pending.rpartition("\n")
        self._terminal.write_above(self._stream, lines + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()
