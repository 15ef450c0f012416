"""Short-lived TURN credentials, minted by the relay only at the box's request (the shared
secret stays on the relay host)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from .config import RelayConfig
from .rooms import room_hash


def mint_turn(config: RelayConfig, room: str, ttl: float) -> list[dict[str, Any]]:
    """coturn's REST scheme (``use-auth-secret``): username ``<expiry>:<tag>``, password
    base64(HMAC-SHA1(secret, username))."""
    if not config.turn.secret or not config.turn.urls:
        return []
    expiry = int(time.time() + max(1.0, min(ttl, config.turn.ttl)))
    username = f"{expiry}:{room_hash(room)[:8]}"
    digest = hmac.new(config.turn.secret.encode(), username.encode(), hashlib.sha1).digest()
    credential = base64.b64encode(digest).decode()
    return [{"urls": list(config.turn.urls), "username": username, "credential": credential}]
