"""The one security-header policy every page of the box and the relay sends."""

from __future__ import annotations

from flask import Response, request


def security_headers(response: Response, csp: str, *, microphone: bool = False) -> Response:
    """Add the headers every response carries; ``csp`` is the page's own Content-Security-Policy.
    ``microphone``: the page itself may ask for the microphone (the viewer page, for talk-back,
    and only when the co-parent holds its button); no other page, and never a frame in it."""
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    mic = "(self)" if microphone else "()"
    response.headers["Permissions-Policy"] = f"camera=(), microphone={mic}, geolocation=()"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response
