"""The pairing page's security headers: the one shared policy (:mod:`appliance.httpd.headers`)
with the page's own, stricter Content-Security-Policy, applied once, by :func:`configure`, to
every response of the app that serves the page."""

from __future__ import annotations

from flask import Flask, Response

from ...httpd.headers import security_headers

#: Scripts and styles from the page's own files only; images also from data: and blob: (the QR
#: code, the preview); nothing inline, nothing from elsewhere, never framed.
PAIRING_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def pairing_headers(response: Response) -> Response:
    """The shared policy with :data:`PAIRING_CSP` (the status, the QR code and the card hold
    the session's link: the policy's ``no-store`` keeps them out of every cache)."""
    return security_headers(response, PAIRING_CSP)


def apply_policy(app: Flask) -> None:
    """Send :func:`pairing_headers` on every response of ``app``."""
    app.after_request(pairing_headers)
