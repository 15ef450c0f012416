"""How one setting's value is checked and converted: its type, its bounds, its pattern.

The loader (:mod:`appliance.config`) walks the dataclasses; each leaf value comes through
:func:`convert`, which names the key, the bad value (never a secret's) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from . import validators
from .errors import ConfigError

#: Builds a nested config table: (its dataclass, the data, the key prefix) -> the dataclass.
Table = Callable[[Any, Any, str], Any]


def describe(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "a table"
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"a list of {describe(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


def convert(tp: Any, value: Any, key: str, meta: Any, table: Table) -> Any:
    """``value`` as the setting ``key`` of type ``tp`` takes it, checked against its ``meta``
    bounds; a nested table is built by ``table``. A :class:`ConfigError` names the key and the
    fix, never a secret's value."""

    def bad(allowed: str) -> ConfigError:
        text = "(not shown: a secret)" if meta.get("secret") else shown(value)
        return ConfigError(
            f"config key {key!r} has invalid value {text}: expected {allowed}", key=key
        )

    if dataclasses.is_dataclass(tp):
        return table(tp, value, key + ".")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise bad(describe(tp)) from None
    origin = typing.get_origin(tp)
    if origin is tuple:
        (item,) = (a for a in typing.get_args(tp) if a is not Ellipsis)
        if not isinstance(value, list | tuple):
            raise bad(describe(tp))
        return tuple(convert(item, v, f"{key}[{i}]", {}, table) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise bad(describe(tp))  # pragma: no cover - no union-typed settings yet
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        try:
            value = float(value)
        except OverflowError:
            raise bad("a number") from None
        if math.isnan(value):
            raise bad("a number")
    elif tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        if meta.get("nonblank") and value and not value.strip():
            raise ConfigError(f"config key {key!r} is only spaces: {meta['nonblank']}", key=key)
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise bad(f"a value from {lo} to {hi}")
    if meta.get("multiple") and value % meta["multiple"]:
        raise bad(f"a multiple of {meta['multiple']}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise bad("one of " + ", ".join(repr(c) for c in choices))
    if meta.get("pattern") == "hostname" and not validators.is_hostname_label(value):
        raise bad("a host name label: 1-63 lowercase letters, digits or '-', not starting with '-'")
    if meta.get("pattern") == "relay-url":
        validators.check_relay_url(value)
    if meta.get("pattern") == "alsa-card" and value and not validators.is_alsa_card(value):
        raise bad(
            "an ALSA card name as 'arecord -l' shows it in brackets (letters, digits, '_' or "
            "'-', at most 15), e.g. 'tc358743' or 'Device', not a PCM like 'hw:1'"
        )
    return value


def shown(value: Any) -> str:
    """A bad value as an error message shows it: a scalar as written, a table or list only by its
    kind (it may hold a secret one level down, e.g. ``wifi.password = ["..."]``)."""
    return kind(value) if isinstance(value, dict | list | tuple) else repr(value)


def kind(value: Any) -> str:
    """What a value is, not what it holds: what stands where a section was expected may be a
    secret written in the wrong place (``pairing = "..."``)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return "true or false" if isinstance(value, bool) else describe(type(value))
