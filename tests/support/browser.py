"""Launching Debian's headless Chromium the way ARCHITECTURE.md's network discipline demands."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from tests.support.wait import until

CHROMIUM = os.environ.get("APPLIANCE_CHROMIUM", "/usr/bin/chromium")

#: Playwright passes its own --disable-features and the last one wins: merge ours into one list.
_DISABLED_FEATURES = [
    "WebRtcHideLocalIpsWithMdns",  # no mDNS host candidates: they would multicast off the box
    "MediaRouter",
    "DialMediaRouteProvider",
    "OptimizationHints",
    "Translate",
    "AutofillServerCommunication",
    "InterestFeedContentSuggestions",
    "CertificateTransparencyComponentUpdater",
]

CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-default-browser-check",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=" + ",".join(_DISABLED_FEATURES),
]


def chromium_path() -> str:
    """Debian's Chromium, or fail (under CI) / skip (by hand) when it is not installed."""
    if os.path.exists(CHROMIUM) or shutil.which(CHROMIUM):
        return CHROMIUM
    message = f"Debian's chromium is not installed at {CHROMIUM} (make test installs it as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def launch(playwright: Any, **kwargs: Any) -> Any:
    """Launch headless Chromium with the project's flags (never Playwright's own browser)."""
    return playwright.chromium.launch(
        executable_path=chromium_path(),
        headless=True,
        args=CHROMIUM_ARGS + list(kwargs.pop("args", [])),
        **kwargs,
    )


def wait_js(page: Any, expression: str, timeout: float = 15.0) -> Any:
    """Poll ``expression`` until truthy (wait_for_function would eval, which the CSP forbids)."""
    return until(lambda: page.evaluate(expression), timeout, 0.05, expression)


def join(page: Any, link: str, name: str = "Sam") -> str:
    """Open a session link as the co-parent does, give a name, knock; returns the code shown."""
    page.goto(link)
    wait_js(page, "window.viewer && window.viewer.state === 'join'")
    assert "#" not in page.url, "the key left the address bar"
    page.fill("#name", name)
    page.click("#join-button")
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    return str(page.evaluate("window.viewer.code"))
