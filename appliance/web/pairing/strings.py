"""The pairing page's words, French and English, kept as data files (strings/<lang>.json)."""

from __future__ import annotations

import json
from importlib import resources

from flask import request

LANGUAGES = ("en", "fr")


def _load(lang: str) -> dict[str, str]:
    text = (resources.files(__package__) / "strings" / f"{lang}.json").read_text("utf-8")
    table: dict[str, str] = json.loads(text)
    return table


#: Every text by language; both catalogues have the same keys (a test checks).
TEXT: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}


def language() -> str:
    """The page's language, from the browser's Accept-Language (English by default)."""
    best = request.accept_languages.best_match(LANGUAGES, default="en")
    return best if best in TEXT else "en"
