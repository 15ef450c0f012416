"""The viewer page's packaged files and the policy they are served with.

The relay serves exactly these files (the page that reads the link's secret), byte for byte."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

VIEWER_DIR = Path(str(resources.files("appliance.relay") / "static" / "viewer"))

#: The viewer page loads nothing from anywhere else, and nothing may frame it.
VIEWER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
