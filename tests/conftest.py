"""Shared fixtures: a whole box running on loopback, and guards for the network discipline."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from blockbuster import BlockBuster
from gpiozero.pins.mock import MockFactory
from hypothesis import settings

from appliance import config as config_mod
from appliance.box import Box, Seams
from appliance.panel import press_pin
from appliance.stream.compat import install_patches
from tests.support.wait import until

# Property-based tests: a modest number of cases in `make test` (the unit tier stays fast);
# `make fuzz` runs the same properties with HYPOTHESIS_PROFILE=fuzz and 2000 each.
settings.register_profile("default", max_examples=40, deadline=None)
settings.register_profile("fuzz", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: What every test box runs with: synthetic source, small and quick, everything on loopback.
TEST_CONFIG: dict[str, Any] = {
    "capture": {"source": "synthetic", "width": 1280, "height": 720, "fps": 30},
    "encode": {"bitrate": 2_000_000, "threads": 1},
    "panel": {"pin_factory": "mock", "hold_time": 0.6, "bounce_time": 0.0},
    "stream": {"ice_addresses": ["127.0.0.1"], "ice_servers": []},
    "web": {"host": "127.0.0.1", "port": 0},
}


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (zeroconf's verify_threads_ended): every thread
    the box, a server or a fixture starts must end when they are stopped."""
    before = set(threading.enumerate())
    yield
    leaked: list[threading.Thread] = []

    def settled() -> bool:
        leaked[:] = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        return not leaked

    try:
        until(settled, 5.0, 0.05)
    except AssertionError:
        pytest.fail(f"threads left running: {sorted(t.name for t in leaked)}")


@pytest.fixture(autouse=True)
def no_blocking_calls_on_the_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test in which the appliance's own code blocks the core's event loop (file or
    socket I/O, sleeping, waiting on a contended lock) instead of handing the work to a thread
    (zeroconf's use of blockbuster).

    The loops watched: a running box's (its thread is named "box"), and an async test's own,
    where the core and the gate run in the unit tests. A sync test's thread may block: Playwright's
    sync API runs a loop of its own there, which is not the appliance's."""
    async_test = inspect.iscoroutinefunction(getattr(request.node, "obj", None))

    def watched() -> bool:
        return async_test or threading.current_thread().name == "box"

    def only_when_watched(allowed: Callable[..., bool]) -> Callable[..., bool]:
        return lambda *args, **kwargs: not watched() or allowed(*args, **kwargs)

    buster = BlockBuster("appliance")
    for function in buster.functions.values():
        function.can_block_predicate = only_when_watched(function.can_block_predicate)
    # aiortc's own: a receiver (the room line's, talk-back) stopping joins its decoder thread,
    # which only finishes the packet in hand (a few ms of Opus); the box's peers close on the
    # loop as aiortc requires
    buster.functions["threading.Lock.acquire"].can_block_in(
        "aiortc/rtcrtpreceiver.py", "__stop_decoder"
    )
    buster.activate()
    try:
        yield
    finally:
        buster.deactivate()


@pytest.fixture(autouse=True)
def loopback_ice() -> None:
    """The process-wide patches, as the box applies them at start-up, with ICE host candidates
    only on 127.0.0.1, for every peer the test makes."""
    install_patches(("127.0.0.1",))


class RunningBox:
    """A box running in its own thread and loop, as `appliance run` runs it."""

    def __init__(
        self,
        cfg: config_mod.Config,
        open_session: bool,
        source: Any = None,
        microphone: Any = None,
    ) -> None:
        self.cfg = cfg
        self.tmp = Path(cfg.box.state_dir).parent
        self.pin_factory = MockFactory()
        self.box: Box | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._fault = ""
        self._warnings: tuple[Any, ...] = ()
        self._microphone = microphone
        self._thread = threading.Thread(
            target=self._main, args=(open_session, source), name="box", daemon=True
        )

    def _main(self, open_session: bool, source: Any) -> None:
        def on_started(box: Box) -> None:
            self.box = box
            self.loop = asyncio.get_running_loop()
            self._started.set()

        async def main() -> None:
            seams = Seams(
                source=source,
                pin_factory=self.pin_factory,
                clock_ok=lambda: True,
                microphone=self._microphone,
            )
            box = await Box.build(self.cfg, seams, fault=self._fault, warnings=self._warnings)
            await box.run(open_session=open_session, started=on_started)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self._error = exc
            self._started.set()

    def start(self) -> RunningBox:
        self._thread.start()
        assert self._started.wait(20), "the box did not start"
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self.loop is not None and self.box is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.box.stop)
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the box did not stop"
        if self._error is not None:
            raise self._error

    # -- conveniences for tests ---------------------------------------------------------------

    @property
    def core(self) -> Any:
        assert self.box is not None
        return self.box.core

    @property
    def url(self) -> str:
        assert self.box is not None
        return self.box.web.url()

    @property
    def viewer_url(self) -> str:
        """The open session's link, as its QR code holds it (waits for the session to open)."""
        import time

        box = self.box
        assert box is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            url = self.call(
                lambda: box.viewer_url() if self.core.state.value not in ("idle", "ended") else None
            )
            if url:
                return str(url)
            time.sleep(0.02)
        raise AssertionError("no session is open")

    @property
    def pairing_url(self) -> str:
        assert self.box is not None
        return self.box.pairing_url

    def box_events(self) -> list[dict[str, Any]]:
        """The box's event log (no personal data in it)."""
        assert self.box is not None
        return list(self.box.events.entries())

    def state(self) -> str:
        return str(self.call(lambda: self.core.state.value))

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on the box's loop and return its result."""
        assert self.loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the box's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def drop_viewers(self) -> None:
        """Cut every viewer's connection from the box's side, as a network drop would."""

        async def drop() -> None:
            assert self.box is not None
            for peer in self.box.viewers.peers:
                await peer.close()

        self.run(drop())

    def press(self, hold: float = 0.05) -> None:
        """Press the panel's button (its MockFactory pin) for ``hold`` seconds."""
        press_pin(self.pin_factory.pin(self.cfg.panel.button_pin), hold)

    def long_press(self) -> None:
        self.press(self.cfg.panel.hold_time + 0.3)

    def wait_state(self, state: str, timeout: float = 10.0) -> None:
        until(lambda: self.state() == state, timeout, what=f"box state {state!r}")


def make_config(**sections: Any) -> config_mod.Config:
    return config_mod.load_dict(config_mod.merge(TEST_CONFIG, sections))


@pytest.fixture
def box_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    boxes: list[RunningBox] = []

    def make(
        open_session: bool = True, source: Any = None, microphone: Any = None, **sections: Any
    ) -> RunningBox:
        state = tmp_path_factory.mktemp("box") / "state"
        sections["box"] = {"state_dir": str(state), **sections.get("box", {})}
        rb = RunningBox(make_config(**sections), open_session, source, microphone)
        boxes.append(rb)
        return rb.start()

    yield make
    for rb in boxes:
        rb.stop()


@pytest.fixture
def running_box(box_factory: Any) -> RunningBox:
    return box_factory()


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium with the project's flags (tests/support/browser.py)."""
    from playwright.sync_api import sync_playwright

    from tests.support import browser

    with sync_playwright() as pw:
        b = browser.launch(pw)
        try:
            yield b
        finally:
            b.close()
