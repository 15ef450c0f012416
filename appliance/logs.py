"""Logging set-up, and the scrubber every record goes through (no secrets, no addresses)."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # IPv4 and IPv6 addresses (ICE candidates, peers)
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "<ip>"),
    (re.compile(r"\b(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{1,4}\b", re.I), "<ip>"),
    # SDP bodies and fingerprints
    (
        re.compile(r"a=(?:candidate|fingerprint|ice-ufrag|ice-pwd):\S+(?: [^\r\n]*)?"),
        "a=<redacted>",
    ),
    # URL fragments: the session secret lives after '#'
    (re.compile(r"#[A-Za-z0-9_\-.]{16,}"), "#<redacted>"),
    # long random-looking tokens (keys, ids, secrets in base64url or hex; room ids are 22)
    # (a run of 20+ such characters with a digit, or with both upper and lower case)
    (
        re.compile(
            r"(?<![A-Za-z0-9_\-])"
            r"(?=[A-Za-z0-9_\-]*(?:\d|[A-Z][A-Za-z0-9_\-]*[a-z]|[a-z][A-Za-z0-9_\-]*[A-Z]))"
            r"[A-Za-z0-9_\-]{20,}"
        ),
        "<redacted>",
    ),
]


def scrub(text: str) -> str:
    """Remove addresses, SDP details, URL fragments and long tokens from ``text``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ScrubFilter(logging.Filter):
    """Runs every record's final message through :func:`scrub`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_text is None and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


def setup(level: str = "INFO") -> None:
    """Log to stderr (journald on the box), scrubbed. Only the composition root calls this."""
    handler = logging.StreamHandler()
    handler.addFilter(ScrubFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiortc/aioice log SDP and candidates at debug: keep them quieter than ours
    # httpx logs every request's URL, which holds the room id: only its warnings
    for noisy in ("aiortc", "aioice", "cheroot", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
