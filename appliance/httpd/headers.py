"""The one security-header policy every page of the box and the relay sends."""

from __future__ import annotations

from flask import Response, request


def security_headers(response: Response, csp: str) -> Response:
    """Add the headers every response carries; ``csp`` is the page's own Content-Security-Policy."""
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response
