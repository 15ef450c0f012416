"""The pairing page's words, one data file per language (strings/<code>.json).

Adding a language is adding its file: the languages are the files present, each with the same
keys (a test checks), its own name in ``_name`` (what the page's language switch shows) and its
locale in ``_locale`` (how times are written). The staff's choice is kept in a cookie; without
one, the browser's Accept-Language decides (English by default).
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.abc import Traversable

from flask import request

#: The cookie that keeps the staff's choice of language (on the pairing page's path).
LANG_COOKIE = "pairing_lang"
DEFAULT = "en"


def load_texts(folder: Traversable) -> dict[str, dict[str, str]]:
    """Every ``<code>.json`` in ``folder``, by language code."""
    texts: dict[str, dict[str, str]] = {}
    for item in sorted(folder.iterdir(), key=lambda f: f.name):
        if item.name.endswith(".json"):
            table: dict[str, str] = json.loads(item.read_text("utf-8"))
            texts[item.name.removesuffix(".json")] = table
    return texts


#: Every text by language.
TEXT: dict[str, dict[str, str]] = load_texts(resources.files(__package__) / "strings")
LANGUAGES = tuple(TEXT)


def languages() -> list[tuple[str, str]]:
    """(code, the language's own name) for each language, for the page's switch."""
    return [(code, TEXT[code]["_name"]) for code in LANGUAGES]


def language() -> str:
    """The page's language: the staff's choice (a cookie), else the browser's Accept-Language,
    else English."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in TEXT:
        return chosen
    best = request.accept_languages.best_match(LANGUAGES, default=DEFAULT)
    return best if best in TEXT else DEFAULT
