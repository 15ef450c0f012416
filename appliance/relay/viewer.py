"""The viewer page's packaged files and the policy they are served with.

The relay serves exactly these files (the page that reads the link's secret), byte for byte."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

VIEWER_DIR = Path(str(resources.files("appliance.relay") / "static" / "viewer"))
#: The viewer's words, one file per language: ``lang/<code>.json`` = {"name": its own name for
#: itself, "text": {...}}. Adding a language is adding one file: the relay lists those present.
LANG_DIR = VIEWER_DIR / "lang"
_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})?")

#: The viewer page loads nothing from anywhere else, and nothing may frame it.
VIEWER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def languages(folder: Path = LANG_DIR) -> list[dict[str, str]]:
    """The languages present: ``[{"code": "fr", "name": "Français"}, ...]``, by code. A file
    with a bad code or no name of its own is left out (the page falls back to English)."""
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            name = json.loads(path.read_text(encoding="utf-8")).get("name")
        except (ValueError, AttributeError):
            continue
        if _CODE.fullmatch(path.stem) and isinstance(name, str) and name.strip():
            found.append({"code": path.stem, "name": name.strip()})
    return found
