"""The front panel: one momentary button and one LED, through gpiozero.

The only module that imports gpiozero. Short press and long press (held for ``hold_time``)
are reported through ``on_press(long)``, called on a gpiozero thread: the caller hops onto the
loop. The LED shows a pattern that is a pure function of the state (appliance.state).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

from gpiozero import LED, Button, Device, Factory

from .config import PanelConfig, PinFactoryKind
from .errors import DeviceError
from .state import LED_STEP, State, led_pattern

logger = logging.getLogger(__name__)


#: gpiozero's pin factory (tests: ``MockFactory()``), for the box's seams.
PinFactory: TypeAlias = Factory


def make_pin_factory(kind: PinFactoryKind) -> PinFactory:
    """gpiozero's MockFactory for the demo and tests, else gpiozero's default (lgpio on a Pi 5)."""
    if kind is PinFactoryKind.MOCK:
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    return None  # gpiozero picks: lgpio, RPi.GPIO, pigpio, native


class Panel:
    """Button and LED on the configured pins."""

    def __init__(
        self,
        config: PanelConfig,
        on_press: Callable[[bool], None],
        pin_factory: Any = None,
    ) -> None:
        self._on_press = on_press
        self._held = False
        # Debounced here as well as by the pin driver: some drivers (and the mock) do not.
        self._bounce = config.bounce_time
        self._pressed_at: float | None = None
        self._released_at = -1.0
        try:
            self.button = Button(
                config.button_pin,
                pull_up=True,
                bounce_time=config.bounce_time or None,
                hold_time=config.hold_time,
                pin_factory=pin_factory,
            )
            self.led = LED(config.led_pin, pin_factory=pin_factory)
        except Exception as exc:  # gpiozero raises many kinds: pin in use, no factory...
            raise DeviceError(
                f"cannot use the panel's GPIO pins (BCM {config.button_pin} button, "
                f"BCM {config.led_pin} LED): {exc} (on the box: check panel.button_pin and "
                "panel.led_pin and what holds them with appliance doctor; off a Raspberry Pi: "
                'set panel.pin_factory = "mock", or run with --demo)'
            ) from exc
        self.led.source_delay = LED_STEP
        self.button.when_pressed = self._when_pressed
        self.button.when_held = self._when_held
        self.button.when_released = self._when_released
        self.pattern = ""
        # Changing the LED's pattern stops gpiozero's blink thread and waits for it: done on the
        # panel's own thread, so the core's loop never waits for the LED.
        self._led_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="led")
        self._closed = False

    def _when_pressed(self) -> None:
        self._pressed_at = time.monotonic()

    def _when_held(self) -> None:
        self._held = True
        logger.debug("button held")
        self._on_press(True)

    def _when_released(self) -> None:
        now = time.monotonic()
        pressed_at, self._pressed_at = self._pressed_at, None
        if self._held:
            self._held = False
            self._released_at = now
            return
        if pressed_at is None or now - pressed_at < self._bounce:
            return  # contact bounce, not a press
        if now - self._released_at < self._bounce:
            return
        self._released_at = now
        logger.debug("button pressed")
        self._on_press(False)

    def show(self, state: State, expiring: bool = False, microphone: bool = False) -> None:
        """Set the LED to ``state``'s pattern, the room microphone's or the expiry warning's
        (applied on the panel's thread, at once)."""
        pattern = led_pattern(state, expiring, microphone)
        if pattern == self.pattern or self._closed:
            return
        self.pattern = pattern
        self._led_worker.submit(self._apply, pattern)

    def _apply(self, pattern: str) -> None:
        self.led.source = None
        if set(pattern) == {"1"}:
            self.led.on()
        elif set(pattern) == {"0"}:
            self.led.off()
        else:
            self.led.source = itertools.cycle(c == "1" for c in pattern)

    def close(self) -> None:
        """Release the pins. Idempotent."""
        self._closed = True
        self._led_worker.shutdown(wait=True)
        self.led.source = None
        for device in (self.button, self.led):
            device.close()


def mock_pin(panel: Panel, which: str) -> Any:
    """The MockPin behind the button or LED (demo and tests)."""
    device: Device = panel.button if which == "button" else panel.led
    return device.pin


def press_pin(pin: Any, hold: float) -> None:
    """Hold a MockFactory button pin low for ``hold`` seconds, then release it (the demo's
    terminal and the tests press the button this one way)."""
    pin.drive_low()
    time.sleep(hold)
    pin.drive_high()
