"""The relay's own config (TOML): where it listens, which boxes it knows, its TURN server."""

from __future__ import annotations

import enum
import hashlib
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config as config_mod
from ..httpd.addresses import parse_networks


@dataclass(frozen=True)
class TurnConfig:
    #: coturn's ``static-auth-secret``, the same on every coturn of the group: lives on the relay
    #: hosts only, never on a box.
    secret: str = ""
    #: Every TURN server's URLs, e.g. ["turn:turn-a.example.org:3478?transport=udp",
    #: "turn:turn-b.example.org:3478?transport=udp"]: boxes and viewers are told all of them and
    #: their ICE tries each, so one coturn down leaves the others.
    urls: tuple[str, ...] = ()
    #: Longest life of minted credentials, in seconds (also capped by the room's expiry).
    ttl: int = field(default=3600, metadata={"min": 60, "max": 24 * 3600})


class StoreKind(enum.Enum):
    """Where the relay keeps its rooms and rate limits."""

    MEMORY = "memory"  # one relay process (and the relay built into a box): nothing to install
    REDIS = "redis"  # several relay processes sharing one Redis ([redis] url)


@dataclass(frozen=True)
class RedisConfig:
    #: e.g. "redis://127.0.0.1:6379/0" (or "rediss://" for TLS, "unix:///run/redis/redis.sock").
    #: Run Redis with nothing persisted: `save ""` and `appendonly no` (docs/relay.md).
    url: str = ""


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: turn:host[:port][?transport=udp|tcp] or turns:host[:port][?transport=tcp] (RFC 7065); a host
#: name or an IPv4 address (the box's aiortc cannot read an IPv6 literal in a TURN URL).
_HOST_PORT = r"[A-Za-z0-9.-]+(?::(?P<port>\d{1,5}))?"
TURN_URLS = (
    re.compile("turn:" + _HOST_PORT + r"(?:\?transport=(?:udp|tcp))?"),
    re.compile("turns:" + _HOST_PORT + r"(?:\?transport=tcp)?"),
)
TURN_EXAMPLE = '"turn:turn-a.clinic.example:3478?transport=udp"'


@dataclass(frozen=True)
class RelayConfig:
    host: str = "127.0.0.1"
    port: int = field(default=8443, metadata={"min": 0, "max": 65535})
    #: PEM files to serve HTTPS directly; empty when a reverse proxy terminates TLS.
    certfile: str = ""
    keyfile: str = ""
    #: SHA-256 (hex) of each box's token: `appliance relay hash-token` makes one.
    boxes: tuple[str, ...] = ()
    #: Reverse proxies in front (addresses or networks, e.g. ["127.0.0.1"]): only a request from
    #: one of these has its X-Forwarded-For believed, and only these may hold more connections
    #: than one client address may. Empty: every request's own address counts.
    trusted_proxies: tuple[str, ...] = ()
    turn: TurnConfig = TurnConfig()
    #: "memory" (one process) or "redis" (shared by several processes; needs [redis] url).
    store: StoreKind = StoreKind.MEMORY
    redis: RedisConfig = RedisConfig()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RelayConfig:
    data: dict[str, Any] = {}
    if path is not None:
        data = config_mod.read_toml(Path(path))
    if overrides:
        data = config_mod.merge(data, overrides)
    relay = config_mod.build(RelayConfig, data)
    for i, value in enumerate(relay.boxes):
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise config_mod.ConfigError(
                f"config key 'boxes[{i}]' must be a token's SHA-256 in hex: "
                "make it with `appliance relay hash-token`"
            )
    for i, value in enumerate(relay.trusted_proxies):
        try:
            parse_networks([value])
        except ValueError:
            raise config_mod.ConfigError(
                f"config key 'trusted_proxies[{i}]' has invalid value {value!r}: expected the "
                'reverse proxy\'s address or network, such as "127.0.0.1" or "10.0.0.0/8"'
            ) from None
    check_turn(relay.turn)
    check_store(relay)
    return relay


def check_turn(turn: TurnConfig) -> None:
    """Every TURN URL is one both a browser and the box's ICE can read; a secret goes with URLs
    (coturn's REST scheme: the relay mints credentials valid on every coturn sharing it)."""
    for i, url in enumerate(turn.urls):
        match = next(filter(None, (pattern.fullmatch(url) for pattern in TURN_URLS)), None)
        if match is None or not 0 < int(match.group("port") or 3478) < 65536:
            raise config_mod.ConfigError(
                f"config key 'turn.urls[{i}]' has invalid value {url!r}: expected a TURN "
                f"server's URL such as {TURN_EXAMPLE}, by host name or IPv4 address (one "
                "entry per server and transport)"
            )
    if turn.urls and not turn.secret:
        raise config_mod.ConfigError(
            "config key 'turn.secret' is needed with turn.urls: set it to coturn's "
            "static-auth-secret (the same on every coturn the urls name)"
        )
    if turn.secret and not turn.urls:
        raise config_mod.ConfigError(
            "config key 'turn.urls' is empty but turn.secret is set: list every coturn's URL, "
            f"such as [{TURN_EXAMPLE}], or remove [turn]"
        )


def check_store(relay: RelayConfig) -> None:
    """A Redis store needs its URL and the ``redis`` package; a URL without it is a mistake."""
    url = relay.redis.url
    if relay.store is StoreKind.MEMORY:
        if url:
            raise config_mod.ConfigError(
                "config key 'redis.url' is set but 'store' is \"memory\": set store = \"redis\" "
                "to share the rooms through Redis, or remove [redis]"
            )
        return
    if not url:
        raise config_mod.ConfigError(
            "config key 'redis.url' is needed with store = \"redis\": set it to the Redis "
            'server\'s URL, such as "redis://127.0.0.1:6379/0"'
        )
    if not url.startswith(REDIS_SCHEMES):
        raise config_mod.ConfigError(
            f"config key 'redis.url' must start with one of {', '.join(REDIS_SCHEMES)}: "
            'such as "redis://127.0.0.1:6379/0"'
        )
    if importlib.util.find_spec("redis") is None:
        raise config_mod.ConfigError(
            "config key 'store' is \"redis\" but the redis package is not installed: "
            "pip install 'appliance[relay,redis]'"
        )
