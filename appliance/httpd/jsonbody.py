"""One checked reader for every JSON body the box's pages and the relay accept.

Python's :func:`json.loads` takes ``NaN``, ``Infinity`` and ``-Infinity``, turns ``1e400`` into
infinity, reads a 400-digit integer (which later overflows a float), and nests as deep as the
interpreter's stack. A body read here holds none of that: every number is finite and within
:data:`NUMBER_MAX`, and nothing nests deeper than :data:`MAX_DEPTH`. Anything else is a
:class:`BodyError`, which the routes answer with 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import ApplianceError

#: The largest magnitude a number in a body may have (seconds since the epoch, pixels, minutes).
NUMBER_MAX = 2**53
#: The deepest a body may nest (the protocol's bodies are one or two levels deep).
MAX_DEPTH = 8
#: The longest integer literal read (2**53 has 16 digits).
_MAX_DIGITS = 17


class BodyError(ApplianceError, ValueError):
    """A request body that is not one JSON object of finite, bounded numbers."""


def _constant(name: str) -> Any:
    raise BodyError(f"{name} is not a number a body may hold")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise BodyError("an integer out of range")
    value = int(text)
    if abs(value) > NUMBER_MAX:
        raise BodyError("an integer out of range")
    return value


def _real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > NUMBER_MAX:
        raise BodyError("a number out of range")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                break
            stack.extend((child, depth + 1) for child in _children(item))
    return deepest


def _children(item: dict[str, Any] | list[Any]) -> list[Any]:
    return list(item.values()) if isinstance(item, dict) else item


def loads(raw: bytes | str) -> Any:
    """The JSON value in ``raw``, checked as the module says; BodyError otherwise."""
    try:
        value = json.loads(raw, parse_constant=_constant, parse_int=_integer, parse_float=_real)
    except BodyError:
        raise
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the stack
        raise BodyError("not a JSON body") from None
    if _depth(value) > MAX_DEPTH:
        raise BodyError("a body nested too deep")
    return value


def load_object(raw: bytes | str) -> dict[str, Any]:
    """The JSON object in ``raw`` (the only top-level shape a route takes); BodyError otherwise."""
    value = loads(raw)
    if not isinstance(value, dict):
        raise BodyError("a body must be a JSON object")
    return value


def number(value: object) -> float:
    """``value`` as a float if it is a number from a checked body (not a boolean); BodyError
    otherwise. Numbers from :func:`loads` are already finite and bounded."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BodyError("a number was expected")
    result = float(value)
    if not math.isfinite(result) or abs(result) > NUMBER_MAX:
        raise BodyError("a number out of range")
    return result
