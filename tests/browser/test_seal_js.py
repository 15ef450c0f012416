"""The viewer's seal.js in a real Chromium (WebCrypto), on a page served from loopback with the
viewer's own CSP: it reproduces the shared vectors, agrees with the Python seal on fingerprints
and names, and completes whole handshakes with the Python box, refusing what was tampered with."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.crypto import BoxIdentity
from appliance.relay.viewer import VIEWER_CSP, VIEWER_DIR
from appliance.session import seal
from tests.support.browser import wait_js

pytestmark = pytest.mark.browser

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "seal-v1.json").read_text())

PAGE = """<!doctype html><meta charset="utf-8"><title>seal.js</title>
<script type="module" src="harness.js"></script>"""

# Runs as a module script under script-src 'self': no inline code, no eval.
HARNESS = """import * as Seal from "./seal.js";
const u = Seal.unb64u;
window.violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.violations.push(e.violatedDirective));

async function importSeat(pkcs8, pub) {
  return {
    privateKey: await crypto.subtle.importKey("pkcs8", u(pkcs8), { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]),
    publicKey: await crypto.subtle.importKey("raw", u(pub), { name: "ECDH", namedCurve: "P-256" }, true, []),
  };
}

window.vectors = async (V) => {
  const I = V.inputs, M = V.messages, out = {};
  out.k_knock = Seal.b64u(await Seal.knockKey(u(I.secret), u(I.salt), I.room, u(I.box_key_hash)));
  const th = await Seal.transcript(I.room, u(I.box_key_hash), u(I.salt), u(I.seat_public), u(I.eph_public));
  out.transcript = Seal.b64u(th);
  const keys = await Seal.directionKeys(u(I.secret), u(V.derived.z), th);
  out.k_b2v = Seal.b64u(keys.b2v);
  out.k_v2b = Seal.b64u(keys.v2b);
  out.commit = Seal.b64u(await Seal.commitment(u(I.fp_box), u(I.commit_nonce)));
  out.code_direct = await Seal.verificationCode(u(I.secret), u(V.derived.z), th, u(I.fp_box), u(I.fp_viewer));
  out.fp_box = Seal.b64u(Seal.dtlsFingerprint(I.answer_sdp));
  out.fp_viewer = Seal.b64u(Seal.dtlsFingerprint(I.offer_sdp));
  const seat = await importSeat(I.seat_private_pkcs8, I.seat_public);
  const hs = new Seal.ViewerHandshake(I.room, u(I.secret), u(I.box_key_hash), seat, I.name, u(I.salt));
  out.knock = await hs.knock();
  out.reply = await hs.openReply(M.reply);
  out.offer = await hs.offer(I.offer_sdp);
  out.answer_sdp = await hs.openAnswer(M.answer);
  out.code = await hs.code(u(I.fp_viewer));
  out.bye = await hs.seal({ type: "bye" });
  out.end = await hs.open(M.end);
  const second = new Seal.ViewerHandshake(I.room, u(I.secret), u(I.box_key_hash), seat, I.name_2, u(I.salt_2));
  out.knock_2 = await second.knock();
  return out;
};

// Live handshakes the test drives step by step, by id.
const live = new Map();
window.make = async (id, room, fragment, name, seatOf) => {
  const key = Seal.parseFragment(fragment);
  const seat = seatOf ? live.get(seatOf).seat : await Seal.newSeat();
  live.set(id, new Seal.ViewerHandshake(room, key.secret, key.boxKeyHash, seat, name));
  return Seal.b64u(await Seal.publicPoint(seat));
};
window.step = async (id, method, arg) => {
  const hs = live.get(id);
  try {
    if (method === "code") return { ok: await hs.code(Seal.dtlsFingerprint(arg)) };
    if (method === "forget") { hs.forget(); return { ok: true }; }
    return { ok: await hs[method](arg) };
  } catch (err) {
    if (err instanceof Seal.Ended) return { ended: err.reason };
    return { error: err instanceof Seal.SealError ? "seal: " + err.message : "other: " + err };
  }
};
window.fingerprint = (sdp) => {
  try { return Seal.b64u(Seal.dtlsFingerprint(sdp)); } catch (err) { return err instanceof Seal.SealError ? null : "other"; }
};
window.fragment = (text) => {
  try { const k = Seal.parseFragment(text); return [Seal.b64u(k.secret), Seal.b64u(k.boxKeyHash)]; }
  catch (err) { return err instanceof Seal.SealError ? null : "other"; }
};
window.sanitizeName = (name) => Seal.sanitizeName(name);
window.seatIsPrivate = async () => {
  const seat = await Seal.newSeat();
  let exported = true;
  try { await crypto.subtle.exportKey("pkcs8", seat.privateKey); } catch (_) { exported = false; }
  return { extractable: seat.privateKey.extractable, exported, raw: (await Seal.publicPoint(seat)).length };
};
window.ready = true;
"""


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(VIEWER_DIR / "seal.js", root / "seal.js")
    (root / "harness.js").write_text(HARNESS)
    (root / "index.html").write_text(PAGE)
    (root / "favicon.ico").write_bytes(b"")  # so that the only console errors are the test's

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {".js": "text/javascript", ".html": "text/html"}

        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", VIEWER_CSP)
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def page(chromium: Any, harness: str) -> Iterator[Any]:
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    response = page.goto(harness)
    assert response.headers["content-security-policy"] == VIEWER_CSP
    wait_js(page, "window.ready === true")
    try:
        yield page
        assert page.evaluate("window.violations") == [], "the viewer's CSP allowed it all"
        assert errors == []
    finally:
        page.close()


def flip(wire: dict, field: str = "ct") -> dict:
    raw = bytearray(seal.unb64u(wire[field]))
    raw[len(raw) // 2] ^= 1
    return {**wire, field: seal.b64u(bytes(raw))}


def sdp(fp: bytes) -> str:
    return "v=0\r\na=fingerprint:sha-256 " + ":".join(f"{b:02X}" for b in fp) + "\r\n"


class JsViewer:
    """One ViewerHandshake in the page."""

    def __init__(self, page: Any, id: str) -> None:
        self.page, self.id = page, id

    def __call__(self, method: str, arg: Any = None) -> dict[str, Any]:
        return dict(
            self.page.evaluate("([i, m, a]) => window.step(i, m, a)", [self.id, method, arg])
        )


def js_viewer(
    page: Any, id: str, room: str, fragment: str, name: str | None = None, seat_of: str = ""
) -> tuple[JsViewer, bytes]:
    seat = page.evaluate("a => window.make(...a)", [id, room, fragment, name, seat_of])
    return JsViewer(page, id), seal.unb64u(seat)


@pytest.fixture
def box_session(tmp_path: Path) -> tuple[BoxIdentity, str, bytes, str]:
    identity = BoxIdentity.load_or_create(tmp_path / "box")
    room, secret = seal.new_room_id(), seal.new_secret()
    fragment = seal.link("https://x", room, secret, identity.key_hash).split("#")[1]
    return identity, room, secret, fragment


def test_seal_js_reproduces_the_shared_vectors(page) -> None:
    out = page.evaluate("V => window.vectors(V)", VECTORS)
    derived, inputs, messages = VECTORS["derived"], VECTORS["inputs"], VECTORS["messages"]
    for name in ("k_knock", "transcript", "k_b2v", "k_v2b", "commit", "code"):
        assert out[name] == derived[name], name
    assert out["code_direct"] == derived["code"]
    assert (out["fp_box"], out["fp_viewer"]) == (inputs["fp_box"], inputs["fp_viewer"])
    for name in ("knock", "offer", "bye", "knock_2"):
        assert out[name] == messages[name], name
    assert out["reply"] == {"iceServers": inputs["ice_servers"], "expires": inputs["expires"]}
    assert out["answer_sdp"] == inputs["answer_sdp"]
    assert out["end"] == {"type": "end", "reason": "ended"}


def test_seal_js_and_python_read_fingerprints_links_and_names_alike(page) -> None:
    fp = bytes(range(32))
    lower = "a=fingerprint:sha-256 " + ":".join(f"{b:02x}" for b in fp)
    upper = "a=fingerprint:SHA-256 " + ":".join(f"{b:02X}" for b in fp)
    other = sdp(bytes(32))
    sdps = [
        f"v=0\r\n{lower}\r\n",
        f"v=0\r\n{upper}\r\nm=video\r\n{lower}\r\n",
        f"a=fingerprint:sha-1 {':'.join(['AA'] * 20)}\r\n{lower}\n",
        f"{lower}\r\n{other}",
        lower[:-3] + "\r\n",
        lower + ":00\r\n",
        lower.replace(":", "", 1) + "0\r\n",
        "v=0\r\n",
        f" {lower}\r\n",
    ]
    for text in sdps:
        try:
            expected: str | None = seal.b64u(seal.sdp_fingerprint(text))
        except seal.SealError:
            expected = None
        assert page.evaluate("s => window.fingerprint(s)", text) == expected, repr(text)

    good = seal.b64u(bytes(range(32))) + "." + seal.b64u(bytes(range(32, 64)))
    for text in (good, "#" + good, "", "a.b", good + ".x", good[:-1], good.replace("A", "+")):
        try:
            secret, key_hash = seal.parse_fragment(text)
            expected_pair: list[str] | None = [seal.b64u(secret), seal.b64u(key_hash)]
        except seal.SealError:
            expected_pair = None
        assert page.evaluate("s => window.fragment(s)", text) == expected_pair, repr(text)

    for name in ("Sam", "  Léa  ", "x\u0000y\u0085z", "é" * 50, "👶" * 45, " \t ", "a\ud83d", ""):
        js = page.evaluate("s => window.sanitizeName(s)", name)
        assert js == seal.sanitize_name(name), repr(name)
        assert js is None or seal.clean_name(js) == js, "the box accepts what the page sends"


def test_a_name_with_a_bidi_override_arrives_without_it(page, box_session) -> None:
    """U+202E before "123456" could show the name as a fake verification code on the staff page:
    the page drops format characters (Unicode Cf) as the Python side does."""
    cf = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u200b\u200d\ufeff"
    for name in ("\u202e123456", f"Sam{cf}", f" {cf} ", f"L\u2066éa\u2069 \u202e{'x' * 45}"):
        js = page.evaluate("s => window.sanitizeName(s)", name)
        assert js == seal.sanitize_name(name), repr(name)
        assert js is None or not any(c in js for c in cf), repr(js)
    identity, room, secret, fragment = box_session
    js_hs, _ = js_viewer(page, "bidi", room, fragment, "\u202e123456")
    knock = seal.open_knock(room, secret, identity.key_hash, js_hs("knock")["ok"])
    assert knock.name == "123456"


def test_the_seat_is_not_extractable(page) -> None:
    assert page.evaluate("window.seatIsPrivate()") == {
        "extractable": False,
        "exported": False,
        "raw": 65,
    }


def test_a_javascript_viewer_and_the_python_box_complete_a_handshake(page, box_session) -> None:
    identity, room, secret, fragment = box_session
    js, seat = js_viewer(page, "a", room, fragment, "  Léa\n")
    knock = seal.open_knock(room, secret, identity.key_hash, js("knock")["ok"])
    assert knock.name == "Léa" and knock.seat_pub == seat
    fp_box = bytes([0xAB] * 32)
    box = seal.BoxHandshake(room, secret, identity, knock, fp_box)
    turn = [{"urls": ["turn:127.0.0.1:3478"], "username": "u", "credential": "c"}]
    reply = box.reply(turn, 2_000_000_000)

    for field in ("ct", "sig", "eph", "box"):  # a tampered reply is refused
        assert js("openReply", flip(reply, field))["error"].startswith("seal:"), field
    assert js("openReply", {**reply, "v": 2})["error"].startswith("seal:")
    assert js("openReply", reply)["ok"] == {"iceServers": turn, "expires": 2_000_000_000}
    assert js("openReply", reply)["error"] == "seal: a second reply"

    offer_sdp = sdp(bytes([0x11] * 32))
    offer = js("offer", offer_sdp)["ok"]
    assert box.open(offer) == {"type": "offer", "sdp": offer_sdp}

    # an answer for another certificate than the committed one is refused
    forged = box.channel.seal(
        {"type": "answer", "sdp": sdp(bytes([0x22] * 32)), "commit_nonce": seal.b64u(bytes(32))}
    )
    assert "committed" in js("openAnswer", forged)["error"]
    answer = box.answer(sdp(fp_box))
    assert js("openAnswer", flip(answer))["error"] == "seal: the message does not open"
    assert js("openAnswer", answer)["ok"] == sdp(fp_box)
    assert js("openAnswer", answer)["error"] == "seal: a replayed or reordered message"
    assert js("code", offer_sdp)["ok"] == box.code(bytes([0x11] * 32))

    # after the answer: sealed messages both ways, in order only, never reflected
    bye = js("seal", {"type": "bye"})["ok"]
    assert js("open", bye)["error"].startswith("seal:"), "its own message sent back"
    assert box.open(bye) == {"type": "bye"}
    end = box.seal({"type": "end", "reason": "expired"})
    older = box.seal({"type": "x"})
    assert js("open", {**end, "seq": end["seq"] + 5})["error"].startswith("seal:")
    assert js("open", older)["ok"] == {"type": "x"}
    assert js("open", end)["error"] == "seal: a replayed or reordered message"
    assert js("forget")["ok"] is True
    assert js("seal", {"type": "bye"})["error"] == "seal: the channel was closed"


def test_the_javascript_viewer_refuses_another_box_and_a_foreign_reply(
    page, box_session, tmp_path
) -> None:
    identity, room, secret, fragment = box_session
    impostor = BoxIdentity.load_or_create(tmp_path / "impostor")
    js, _ = js_viewer(page, "b", room, fragment)
    knock = seal.open_knock(room, secret, identity.key_hash, js("knock")["ok"])
    forged = seal.BoxHandshake(room, secret, impostor, knock, bytes(32)).reply([], 1)
    assert "not from the box" in js("openReply", forged)["error"]
    assert (
        "signature" in js("openReply", {**forged, "box": seal.b64u(identity.public_point)})["error"]
    )
    # the same seat knocking again: a reply made for its previous knock does not verify
    genuine = seal.BoxHandshake(room, secret, identity, knock, bytes(32)).reply([], 1)
    again, _ = js_viewer(page, "b2", room, fragment, seat_of="b")
    again_knock = seal.open_knock(room, secret, identity.key_hash, again("knock")["ok"])
    assert again_knock.seat_pub == knock.seat_pub and again_knock.salt != knock.salt
    assert "signature" in again("openReply", genuine)["error"]
    assert js("openReply", genuine)["ok"]["expires"] == 1


def test_the_javascript_viewer_learns_of_an_end_sent_instead_of_the_answer(
    page, box_session
) -> None:
    identity, room, secret, fragment = box_session
    js, _ = js_viewer(page, "c", room, fragment)
    knock = seal.open_knock(room, secret, identity.key_hash, js("knock")["ok"])
    box = seal.BoxHandshake(room, secret, identity, knock, bytes(32))
    js("openReply", box.reply([], 2_000_000_000))
    box.open(js("offer", sdp(bytes(32)))["ok"])
    assert js("openAnswer", box.seal({"type": "end", "reason": "what"}))["error"].startswith(
        "seal:"
    )
    assert js("openAnswer", box.seal({"type": "end", "reason": "refused"})) == {"ended": "refused"}
