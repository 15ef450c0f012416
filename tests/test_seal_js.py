"""The viewer's seal.js in a real Chromium (WebCrypto): it reproduces the shared vectors and
completes a whole handshake with the Python box, refusing what was tampered with."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from appliance.crypto import BoxIdentity
from appliance.session import seal
from appliance.web.app import VIEWER_DIR

pytestmark = pytest.mark.browser

VECTORS = Path(__file__).parent / "vectors" / "seal-v1.json"

HARNESS = """<!doctype html><meta charset="utf-8"><title>seal.js</title>
<script type="module">
import * as Seal from "./seal.js";
window.Seal = Seal;
const u = Seal.unb64u;
async function importSeat(pkcs8, pub) {
  return {
    privateKey: await crypto.subtle.importKey("pkcs8", u(pkcs8), { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]),
    publicKey: await crypto.subtle.importKey("raw", u(pub), { name: "ECDH", namedCurve: "P-256" }, true, []),
  };
}
window.vectors = async (V) => {
  const I = V.inputs, out = {};
  out.k_knock = Seal.b64u(await Seal.knockKey(u(I.secret), u(I.salt), I.room, u(I.box_key_hash)));
  const th = await Seal.transcript(I.room, u(I.box_key_hash), u(I.salt), u(I.seat_public), u(I.eph_public));
  out.transcript = Seal.b64u(th);
  const keys = await Seal.directionKeys(u(I.secret), u(V.derived.z), th);
  out.k_b2v = Seal.b64u(keys.b2v); out.k_v2b = Seal.b64u(keys.v2b);
  out.commit = Seal.b64u(await Seal.commitment(u(I.fp_box), u(I.commit_nonce)));
  const seat = await importSeat(I.seat_private_pkcs8, I.seat_public);
  const hs = new Seal.ViewerHandshake(I.room, u(I.secret), u(I.box_key_hash), seat, I.name, u(I.salt));
  out.knock = await hs.knock();
  out.reply = await hs.openReply(V.messages.reply);
  out.offer = await hs.offer(I.offer_sdp);
  out.answer_sdp = await hs.openAnswer(V.messages.answer);
  out.code = await hs.code(u(I.fp_viewer));
  return out;
};
// A live viewer for the interop test: one handshake kept between calls.
let live = null;
window.liveKnock = async (room, fragment, name) => {
  const key = Seal.parseFragment(fragment);
  live = new Seal.ViewerHandshake(room, key.secret, key.boxKeyHash, await Seal.newSeat(), name);
  return live.knock();
};
window.liveStep = async (step, arg) => {
  try {
    if (step === "reply") return { ok: await live.openReply(arg) };
    if (step === "offer") return { ok: await live.offer(arg) };
    if (step === "answer") return { ok: await live.openAnswer(arg) };
    if (step === "code") return { ok: await live.code(Seal.dtlsFingerprint(arg)) };
  } catch (err) {
    return { error: err instanceof Seal.SealError ? "seal: " + err.message : String(err) };
  }
};
window.ready = true;
</script>"""


@pytest.fixture
def harness(tmp_path):
    shutil.copy(VIEWER_DIR / "seal.js", tmp_path / "seal.js")
    (tmp_path / "index.html").write_text(HARNESS)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))

    class Quiet(handler.func):  # type: ignore[name-defined,misc]
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()


def page_for(chromium, url):
    page = chromium.new_page()
    page.goto(url)
    from tests.browser import wait_js

    wait_js(page, "window.ready === true")
    return page


def test_seal_js_reproduces_the_shared_vectors(chromium, harness) -> None:
    vectors = json.loads(VECTORS.read_text())
    page = page_for(chromium, harness)
    out = page.evaluate("V => window.vectors(V)", vectors)
    for name in ("k_knock", "transcript", "k_b2v", "k_v2b", "commit", "code"):
        assert out[name] == vectors["derived"][name], name
    assert out["knock"] == vectors["messages"]["knock"]
    assert out["offer"] == vectors["messages"]["offer"]
    assert out["reply"] == {
        "iceServers": vectors["inputs"]["ice_servers"],
        "expires": vectors["inputs"]["expires"],
    }
    assert out["answer_sdp"] == vectors["inputs"]["answer_sdp"]


def test_a_javascript_viewer_and_the_python_box_complete_a_handshake(
    chromium, harness, tmp_path
) -> None:
    identity = BoxIdentity.load_or_create(tmp_path / "box")
    room, secret = seal.new_room_id(), seal.new_secret()
    fragment = seal.link("https://x", room, secret, identity.key_hash).split("#")[1]
    page = page_for(chromium, harness)
    step = lambda name, arg: page.evaluate("([s, a]) => window.liveStep(s, a)", [name, arg])  # noqa: E731

    knock = seal.open_knock(
        room,
        secret,
        identity.key_hash,
        page.evaluate("a => window.liveKnock(...a)", [room, fragment, "Léa"]),
    )
    assert knock.name == "Léa"
    fp_box = bytes([0xAB] * 32)
    box = seal.BoxHandshake(room, secret, identity, knock, fp_box)
    reply = box.reply(
        [{"urls": ["turn:127.0.0.1:3478"], "username": "u", "credential": "c"}], 2_000_000_000
    )

    # tampered replies are refused by the JavaScript viewer
    for field in ("ct", "sig", "eph", "box"):
        raw = bytearray(seal.unb64u(reply[field]))
        raw[len(raw) // 2] ^= 1
        assert step("reply", {**reply, field: seal.b64u(bytes(raw))})["error"].startswith("seal:")
    assert step("reply", reply)["ok"]["expires"] == 2_000_000_000

    offer_sdp = "v=0\r\na=fingerprint:sha-256 " + ":".join(["11"] * 32) + "\r\n"
    offer = step("offer", offer_sdp)["ok"]
    assert box.open(offer) == {"type": "offer", "sdp": offer_sdp}

    # an answer whose fingerprint is not the committed one is refused
    forged = box.channel.seal(
        {
            "type": "answer",
            "sdp": "v=0\r\na=fingerprint:sha-256 " + ":".join(["22"] * 32) + "\r\n",
            "commit_nonce": seal.b64u(bytes(32)),
        }
    )
    assert "committed" in step("answer", forged)["error"]
    answer_sdp = "v=0\r\na=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    assert step("answer", box.answer(answer_sdp))["ok"] == answer_sdp
    assert step("code", offer_sdp)["ok"] == box.code(bytes([0x11] * 32))
