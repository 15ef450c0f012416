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


#: What ``page.evaluate`` raises while the page is between two documents (a form posted, a
#: reload): the old context is gone, or the new one has no ``document.body`` yet.
BETWEEN_DOCUMENTS = ("Execution context was destroyed", "Cannot read properties of null")


def wait_js(page: Any, expression: str, timeout: float = 15.0) -> Any:
    """Poll ``expression`` until truthy (wait_for_function would eval, which the CSP forbids).
    A page between two documents is "not yet", not a failure; anything else raised is."""

    def probe() -> Any:
        try:
            return page.evaluate(expression)
        except Exception as exc:  # playwright's Error, imported lazily by the browser tests
            if any(text in str(exc) for text in BETWEEN_DOCUMENTS):
                return None
            raise

    return until(probe, timeout, 0.05, expression)


def join(page: Any, link: str, name: str = "Sam") -> str:
    """Open a session link as the co-parent does, give a name, knock; returns the code shown."""
    page.goto(link)
    wait_js(page, "window.viewer && window.viewer.state === 'join'")
    assert "#" not in page.url, "the key left the address bar"
    page.fill("#name", name)
    page.click("#join-button")
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    return str(page.evaluate("window.viewer.code"))
