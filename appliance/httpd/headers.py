"""The one security-header policy every page of the box and the relay sends."""

from __future__ import annotations

from flask import Response, request


def policy(csp: str, secure: bool, *, microphone: bool = False) -> dict[str, str]:
    """The headers every response carries (``csp``: the page's own Content-Security-Policy;
    ``secure``: served over HTTPS, so browsers are told to keep to it; ``microphone``: the page
    itself may ask for the microphone (the viewer page, for talk-back, and only when the
    co-parent holds its button); no other page, and never a frame in it)."""
    mic = "(self)" if microphone else "()"
    headers = {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        "Permissions-Policy": f"camera=(), microphone={mic}, geolocation=()",
    }
    if secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def security_headers(response: Response, csp: str, *, microphone: bool = False) -> Response:
    """Add the headers every response carries (a CSP the response set itself is kept)."""
    for name, value in policy(csp, request.is_secure, microphone=microphone).items():
        if name == "Content-Security-Policy":
            response.headers.setdefault(name, value)
        else:
            response.headers[name] = value
    return response
