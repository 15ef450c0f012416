"""Coverage-guided fuzzing of the relay's handlers (atheris, Flask's test client): the bytes
choose a method, a path, a query, headers and a body, sent with or without the box's token to a
relay holding an open room. An answer of 500 or more, a non-JSON refusal or a logged traceback
is a finding. Run by `make fuzz`."""

from __future__ import annotations

import logging
import sys
import time

import atheris

with atheris.instrument_imports():
    from appliance.relay import paths
    from appliance.relay.app import create_relay_app
    from appliance.relay.config import RelayConfig, hash_token
    from appliance.relay.rooms import Rooms

TOKEN = "box-token-" + "f" * 30
ROOM = "Abcdefghijklmnopqrstuv"
PATHS = paths.every_path(ROOM)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]


class Tracebacks(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            raise AssertionError(f"a traceback was logged: {record.getMessage()}")


logging.getLogger().addHandler(Tracebacks())
logging.getLogger().setLevel(logging.INFO)
logging.getLogger("appliance").propagate = True


STATE: dict = {"runs": 0}


def relay() -> tuple:
    """A relay with an open room and a knocked viewer, made afresh every 500 inputs (so its
    rate limits and bounds are met, but do not answer every later input)."""
    if STATE["runs"] % 500 == 0:
        rooms = Rooms()
        app = create_relay_app(
            RelayConfig(boxes=(hash_token(TOKEN),), trusted_proxies=("127.0.0.1",)), rooms
        )
        rooms.open(hash_token(TOKEN), ROOM, time.time() + 600)
        STATE["client"], STATE["viewer"] = app.test_client(), rooms.knock(ROOM, "blob")
    STATE["runs"] += 1
    return STATE["client"], STATE["viewer"]


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    client, viewer = relay()
    method = METHODS[fdp.ConsumeIntInRange(0, len(METHODS) - 1)]
    if fdp.ConsumeBool():
        path = PATHS[fdp.ConsumeIntInRange(0, len(PATHS) - 1)]
    else:
        path = "/" + fdp.ConsumeUnicodeNoSurrogates(40).lstrip("/")
    query = {
        "after": fdp.ConsumeUnicodeNoSurrogates(12),
        "wait": "0",
        "reason": fdp.ConsumeUnicodeNoSurrogates(8),
    }
    auth = fdp.ConsumeIntInRange(0, 3)
    forwarded = fdp.ConsumeUnicodeNoSurrogates(20).encode("latin-1", "replace").decode("latin-1")
    headers = {"X-Forwarded-For": forwarded}
    if auth == 1:
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif auth == 2:
        headers["Authorization"] = f"Bearer {viewer}"
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        response = client.open(
            path,
            method=method,
            query_string=query,
            data=body,
            headers={**headers, "Content-Type": "application/json"},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
    except (UnicodeError, ValueError):
        return  # the test client cannot build this URL: no request reaches the relay
    if response.status_code >= 500:
        raise AssertionError(f"{method} {path!r}: {response.status_code}")
    if response.status_code >= 400 and method != "HEAD":
        error = response.get_json(silent=True)
        if not isinstance(error, dict) or not isinstance(error.get("error"), str):
            raise AssertionError(f"{method} {path!r}: {response.status_code} without a JSON error")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
