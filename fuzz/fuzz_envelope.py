"""Coverage-guided fuzzing of the sealed-envelope decoders (atheris): the bytes become a JSON
value (or stay bytes), which open_knock, Channel.open and ViewerHandshake.open_reply must open
or refuse with SealError. Any other exception is a finding. Run by `make fuzz`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from cryptography.hazmat.primitives import serialization

    from appliance.crypto import BoxIdentity
    from appliance.session import seal
    from appliance.session.seal import SealError

V = json.loads((Path(__file__).parents[1] / "tests" / "vectors" / "seal-v1.json").read_text())
IN, MESSAGES = V["inputs"], V["messages"]
u = seal.unb64u
ROOM, SECRET, BOX_HASH = IN["room"], u(IN["secret"]), u(IN["box_key_hash"])


def key(name: str):  # noqa: ANN201
    return serialization.load_der_private_key(u(IN[name]), None)


IDENTITY = BoxIdentity(key("box_private_pkcs8"))
KNOCK = seal.open_knock(ROOM, SECRET, BOX_HASH, MESSAGES["knock"])


def wire_from(fdp: atheris.FuzzedDataProvider, template: dict) -> object:
    """A message built from the fuzzer's bytes: a genuine one with fields replaced, dropped,
    added or with bytes changed (to reach past the shape checks into the crypto), or any JSON."""
    if fdp.ConsumeIntInRange(0, 3) == 0:
        text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text
    wire = dict(template)
    for field in sorted(template):
        op = fdp.ConsumeIntInRange(0, 6)
        if op == 1:
            wire[field] = fdp.ConsumeUnicodeNoSurrogates(64)
        elif op == 2:
            wire[field] = fdp.ConsumeInt(9)
        elif op == 3:
            del wire[field]
        elif op == 4 and isinstance(wire[field], str) and wire[field]:
            raw = bytearray(u(wire[field]))
            raw[fdp.ConsumeIntInRange(0, len(raw) - 1)] ^= fdp.ConsumeIntInRange(1, 255)
            wire[field] = seal.b64u(bytes(raw))
        elif op == 5:
            wire[field] = seal.b64u(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 128)))
        elif op == 6:
            wire[field] = [fdp.ConsumeBool()] if fdp.ConsumeBool() else {"": None}
    if fdp.ConsumeBool():
        wire[fdp.ConsumeUnicodeNoSurrogates(4)] = None
    return wire


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 2)
    if which == 0:
        try:
            seal.open_knock(ROOM, SECRET, BOX_HASH, wire_from(fdp, MESSAGES["knock"]))
        except SealError:
            pass
    elif which == 1:
        box = seal.BoxHandshake(ROOM, SECRET, IDENTITY, KNOCK, u(IN["fp_box"]))
        box.reply([], IN["expires"])
        try:
            box.open(wire_from(fdp, MESSAGES["offer"]))
        except SealError:
            pass
    else:
        viewer = seal.ViewerHandshake(
            ROOM, SECRET, BOX_HASH, key("seat_private_pkcs8"), IN["name"], u(IN["salt"])
        )
        try:
            viewer.open_reply(wire_from(fdp, MESSAGES["reply"]))
        except SealError:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
