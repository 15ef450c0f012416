// The viewer: reads the key from the link, knocks at the relay with the sealed handshake of
// docs/protocol.md, shows the verification code, plays the stream once admitted, reconnects by
// itself. No third-party code, no build step. Runs in iOS Safari and Android Chrome. What the
// screen shows (texts, the waiting room, the picture's checks) is in screens.js.

import * as Seal from "./seal.js";
import { shareable } from "./controls.js";
import { loadLanguages } from "./i18n.js";
import {
  FINAL, askName, boxGone, boxSaid, canPlay, codeReady, joinAgain, languages, play, recallOutcome,
  rememberOutcome, show, stopPicture, translate, viewer, whenCancelled,
} from "./screens.js";
import { roomLine, roomTrack, talkEnded, talkStatus } from "./talk.js";

// The link's key, taken from the address bar before anything else runs (strip.js, the page's
// first script, already did; this is for a page opened without it).
const FRAGMENT = takeFragment();

function takeFragment() {
  const hash = typeof window.viewerFragment === "string" ? window.viewerFragment : location.hash;
  delete window.viewerFragment;
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return hash.length > 1 ? hash : "";
}

const $ = (id) => document.getElementById(id);

// -- the seat: the key pair and the link's key, kept for the room, wiped at the end -------------
// One IndexedDB record per room: {keys (non-extractable CryptoKey pair), secret, boxKeyHash,
// saved, expires}. Where IndexedDB cannot hold a CryptoKey (iOS private browsing), memory only.
// Records of sessions that are over (or, before the box told us the expiry, a day old) are
// deleted whenever a viewer page opens, so a tab closed early leaves nothing behind for long.
const DB = "appliance-viewer", STORE = "seats";
const DAY = 24 * 3600 * 1000;
const memorySeats = new Map();

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function dbDo(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request && request.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const stale = (seat) => Date.now() > (seat.expires ? seat.expires * 1000 + 60000 : (seat.saved || 0) + DAY);

// Deletes the stale records; returns the rooms they were for.
async function purgeStale() {
  const purged = [];
  try {
    await dbDo("readwrite", (store) => {
      const cursor = store.openCursor();
      cursor.onsuccess = () => {
        const at = cursor.result;
        if (!at) return;
        if (stale(at.value)) { purged.push(at.key); at.delete(); }
        at.continue();
      };
      return null;
    });
  } catch (_) { /* no IndexedDB here: nothing stored */ }
  return purged;
}

async function loadSeat(room) {
  if (memorySeats.has(room)) return memorySeats.get(room);
  try { return (await dbDo("readonly", (s) => s.get(room))) || null; } catch (_) { return null; }
}

async function saveSeat(room, seat) {
  memorySeats.set(room, seat);
  try {
    await dbDo("readwrite", (s) => s.put(seat, room));
  } catch (_) {
    $("memory-only").hidden = false;  // iOS private browsing: a reload loses the seat
  }
}

async function wipeSeat(room) {
  memorySeats.delete(room);
  try { await dbDo("readwrite", (s) => s.delete(room)); } catch (_) { /* nothing stored */ }
}

// -- the relay (docs/protocol.md, "Relay transport") --------------------------------------------
// ``restarted``: a 404 from a relay that just started, whose box may open the room again.
class Refused extends Error {
  constructor(status, code, restarted = false) {
    super(code); this.status = status; this.code = code; this.restarted = restarted;
  }
}

function relay(room) {
  let token = "", after = 0;
  const call = async (method, path, body) => {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(path, {
      method, headers, body: body ? JSON.stringify(body) : undefined,
      cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
    });
    const data = response.status === 204 ? null : await response.json().catch(() => ({}));
    if (!response.ok) throw new Refused(response.status, (data && data.error) || "", Boolean(data && data.restarted));
    return data;
  };
  const base = "/api/rooms/" + encodeURIComponent(room);
  return {
    async knock(wire) { token = (await call("POST", base + "/knock", { blob: JSON.stringify(wire) })).client; },
    async send(wire) { await call("POST", base + "/messages", { blob: JSON.stringify(wire) }); },
    // The next message from the box (long-poll until one comes or ``until`` passes).
    async receive(until = Infinity) {
      while (Date.now() < until) {
        const data = await call("GET", `${base}/messages?after=${after}&wait=20`);
        for (const m of data.messages) {
          after = Math.max(after, m.n);
          try { return JSON.parse(m.blob); } catch (_) { throw new Seal.SealError("not JSON"); }
        }
      }
      throw new Refused(0, "timeout");
    },
    bye(wire) {
      fetch(base + "/messages", {
        method: "POST", keepalive: true, credentials: "omit",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
        body: JSON.stringify({ blob: JSON.stringify(wire) }),
      }).catch(() => {});
    },
  };
}

// -- one connection attempt ---------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

function preferH264(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver?.getCapabilities) return;
  const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
  const rank = (c) => {
    const mime = c.mimeType.toLowerCase();
    if (mime !== "video/h264") return mime === "video/rtx" ? 2 : 9;
    return /profile-level-id=42e0/i.test(c.sdpFmtpLine || "") ? 0 : 1;
  };
  const wanted = codecs.filter((c) => rank(c) < 9).sort((a, b) => rank(a) - rank(b));
  if (wanted.some((c) => c.mimeType.toLowerCase() === "video/h264")) transceiver.setCodecPreferences(wanted);
}

// Why an attempt stopped, from what went wrong (the relay's refusals are unauthenticated: they
// can only stop us, which the relay can anyway). A room the relay does not know (404) is gone for
// good ("vanished": the session ended, or the link is mistyped), unless the relay says it has just
// restarted and its box may open the room again ("gone": final only when it lasts).
// "restarting": the server does not answer (network error, 502, 503, 504).
const REASONS = { taken: "taken", refused: "refused", released: "released", ended: "ended", expired: "expired", bad: "badlink", "no-room": "gone", unknown: "gone" };
const ENDS = { ended: "ended", expired: "expired", refused: "refused", released: "released" };
const UNREACHABLE = new Set([502, 503, 504]);
const GONE_AFTER = 6;          // a room we held: shown as ended after this many in a row
const GONE_AFTER_FIRST = 3;    // a room never reached: shown as an unknown link (mistyped)
const TIMEOUT = 30000;

function stopReason(err) {
  if (err instanceof Seal.Ended) return ENDS[err.reason] || "ended";
  if (err instanceof Seal.SealError) return "badlink";
  if (err instanceof Refused && err.status) {
    if (UNREACHABLE.has(err.status)) return "restarting";
    if (err.status === 410) return err.code === "expired" ? "expired" : "ended";
    if (err.status === 404) return err.restarted ? "gone" : "vanished";
    return REASONS[err.code] || "lost";
  }
  if (err instanceof TypeError) return navigator.onLine === false ? "lost" : "restarting";  // fetch failed
  return "lost";
}

// Resolves with why the attempt ended: "lost" (try again) or a final state.
async function connectOnce(room, seat, name, onReply) {
  const hs = new Seal.ViewerHandshake(room, seat.secret, seat.boxKeyHash, seat.keys, name);
  // a seat the box answered before (a reload) or a code shown before (a reconnection): new code
  const renewed = Boolean(seat.expires || viewer.code);
  const link = relay(room);
  let pc = null;
  let over = false;
  let settle;
  const ended = new Promise((resolve) => { settle = resolve; });
  const finish = (reason) => { over = true; settle(reason); };
  try {
    await link.knock(await hs.knock());
    show("connecting");
    const reply = await hs.openReply(await link.receive(Date.now() + TIMEOUT));
    if (seat.expires !== reply.expires) seat.expires = reply.expires;
    viewer.expires = Math.max(viewer.expires, reply.expires);
    await onReply();
    pc = new RTCPeerConnection({ iceServers: reply.iceServers });
    viewer.pc = pc;
    watchConnection(pc, finish, () => over);
    // Session state from the box, over DTLS. The code shown stays the one computed here: the
    // point of reading it back is that both sides computed it on their own.
    const channel = pc.createDataChannel("status");
    channel.addEventListener("message", (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (_) { return; }
      const end = boxSaid(msg);
      talkStatus(msg);
      if (viewer.expires > seat.expires) seat.expires = viewer.expires;  // extended: kept at the next reply
      if (end) finish(end);
    });
    // The co-parent's sound on or off, told to the box: while on, the box lets this browser hold
    // the picture back to meet the sound (lip sync).
    const tellSound = () => {
      if (channel.readyState === "open") {
        channel.send(JSON.stringify({ sound: document.body.dataset.sound === "on" }));
      }
    };
    document.addEventListener("soundchange", tellSound);
    channel.addEventListener("open", tellSound);
    channel.addEventListener("close", () => document.removeEventListener("soundchange", tellSound));
    channel.addEventListener("close", () => finish(viewer.box === "ended" ? "ended" : "lost"));
    preferH264(pc.addTransceiver("video", { direction: "recvonly" }));
    pc.addTransceiver("audio", { direction: "recvonly" });  // the scanner's sound, if the box sends it
    roomLine(pc, channel);  // the room microphone in, talk-back out (sendrecv, no track yet)
    // the picture and the scanner's sound in one stream; the room's sound plays apart (talk.js)
    const picture = new MediaStream();
    pc.addEventListener("track", (event) => {
      if (roomTrack(event)) return;
      picture.addTrack(event.track);
      play(picture);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc, 3000);
    const offer = pc.localDescription.sdp;
    await link.send(await hs.offer(offer));
    const answer = await hs.openAnswer(await link.receive(Date.now() + TIMEOUT));
    hangUp = async () => link.bye(await hs.seal({ type: "bye" }));
    // Cancel gives the seat up (sealed: only this phone can): the next phone may take it. Set
    // before the waiting room shows its Cancel button.
    whenCancelled(async () => {
      hangUp = null;
      try { link.bye(await hs.seal({ type: "leave" })); } catch (_) { /* over meanwhile */ }
      finish("cancelled");
    });
    // an admitted seat is let straight back in by the box: never "waiting to be let in"
    codeReady(await hs.code(Seal.dtlsFingerprint(offer)), renewed);
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    viewer.attempts = 0;
    notices(hs, link, finish, () => over);
    return await ended;
  } catch (err) {
    return stopReason(err);
  } finally {
    finish("lost");
    hangUp = null;
    whenCancelled(() => {});
    boxGone();
    hs.forget();
    if (pc) pc.close();
  }
}

// Sealed notices from the box through the relay once connected: the session ended, or the staff
// refused us; the relay's own answers (room gone, seat taken) end the attempt too. A message that
// does not open abandons the attempt: the next one knocks again with a fresh salt. The relay not
// answering for a while does not: the picture does not go through it.
async function notices(hs, link, finish, isOver) {
  while (!isOver()) {
    let body;
    try {
      body = await hs.open(await link.receive());
    } catch (err) {
      if (isOver()) return;
      const why = stopReason(err);
      if (err instanceof Refused && err.status && why !== "restarting" && err.status !== 429) { finish(why); return; }
      if (err instanceof Seal.SealError) { finish("lost"); return; }
      await sleep(2000);
      continue;
    }
    if (body.type === "end") {
      finish(ENDS[body.reason] || "ended");
      return;
    }
  }
}

let hangUp = null;
window.addEventListener("pagehide", () => { if (hangUp) hangUp(); });

// -- the connection's health (reconnecting without losing the seat) -----------------------------
// The box's status over the data channel: {"type": "status", "state": ..., "step": "full" |
// "half-rate" | "smaller", "reconnecting": true | false}. The screens render it; this part only
// keeps what the connection needs: whether the seat was admitted (then a new connection never
// shows "waiting to be let in": the box lets the seat straight back in) and the last state.
const RECOVER_MS = 15000;  // a path that went quiet may come back by itself (ICE keeps trying)
const STALL_MS = 2000;     // no new frame for this long while live: say "reconnecting"

function reconnecting(on) {
  if (!viewer.admitted || viewer.reconnecting === on) return;
  // the flag only, through the screens' own path (the screen follows from it)
  boxSaid({ type: "status", state: viewer.box || "live", step: viewer.step, reconnecting: on });
}

// ICE and the frames: "disconnected" or no frame for STALL_MS says reconnecting at once; the
// connection is rebuilt (a new knock and offer on the same seat) when it failed, when it stays
// disconnected for RECOVER_MS, or at once when the phone's network changed (new address).
function watchConnection(pc, finish, isOver) {
  let lostSince = 0;
  pc.addEventListener("connectionstatechange", () => {
    const state = pc.connectionState;
    if (state === "failed" || state === "closed") finish("lost");
    else if (state === "disconnected") {
      reconnecting(true);
      const since = lostSince = Date.now();
      setTimeout(() => {
        if (lostSince === since && pc.connectionState === "disconnected") finish("lost");
      }, RECOVER_MS);
    } else if (state === "connected") {
      lostSince = 0;
    }
  });
  const changed = () => { if (!isOver()) finish("lost"); };
  window.addEventListener("online", changed, { once: true });
  if (navigator.connection && navigator.connection.addEventListener) {
    navigator.connection.addEventListener("change", changed, { once: true });
  }
  let frames = -1, quietSince = Date.now();
  const timer = setInterval(async () => {
    if (isOver()) { clearInterval(timer); return; }
    let decoded = frames;
    try {
      for (const s of (await pc.getStats()).values()) {
        if (s.type === "inbound-rtp" && s.kind === "video") decoded = s.framesDecoded || 0;
      }
    } catch (_) { return; }
    if (decoded !== frames) {
      frames = decoded;
      quietSince = Date.now();
      if (pc.connectionState === "connected") reconnecting(false);
    } else if (viewer.box === "live" && Date.now() - quietSince > STALL_MS) {
      reconnecting(true);
    }
  }, 500);
}

// Whether the room is open, before anything is sealed or asked (docs/protocol.md, "Relay
// transport"): "ended", "expired" or "vanished" (the relay does not know it) at once, else null
// (open, or the relay cannot tell yet: the knocks will find out).
async function roomOver(room) {
  try {
    const response = await fetch("/api/rooms/" + encodeURIComponent(room), {
      cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
    });
    if (response.ok) return null;
    const data = await response.json().catch(() => ({}));
    if (response.status === 410) return data.error === "expired" ? "expired" : "ended";
    if (response.status === 404 && !data.restarted) return "vanished";
  } catch (_) { /* the network: the knocks retry */ }
  return null;
}

const TAKEN_RETRY = 10000;  // a phone turned away knocks again this often, quietly

async function main() {
  await loadLanguages();
  translate();
  languages();
  // Nothing is asked of the relay before this browser is known to play the stream (H.264).
  if (!canPlay()) { show("unsupported"); return; }
  const room = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const expired = (await purgeStale()).includes(room);
  let seat = await loadSeat(room);
  const outcome = seat ? null : await recallOutcome(room);
  if (outcome) { show(outcome); return; }
  // a dead link says so at once: no name asked, no knock
  const over = await roomOver(room);
  if (over) {
    const final = over !== "vanished" ? over : seat && seat.expires ? "ended" : "unknown";
    if (seat && final !== "unknown") await wipeSeat(room);
    if (final !== "unknown") await rememberOutcome(room, final, seat && seat.expires);
    show(final);
    return;
  }
  let name = null;
  // A new key is kept only once the box's signed reply proves it (a damaged link must not replace
  // a good seat), except where there is no seat to lose.
  let pending = false;
  if (FRAGMENT) {
    let key;
    try { key = Seal.parseFragment(FRAGMENT); } catch (_) { show("nokey"); return; }
    if (!seat || !sameKey(seat, key)) {
      shareable(location.origin + location.pathname + FRAGMENT);  // the whole link, key and all
      name = await askName();
      shareable("");  // the key is used now: nothing to share any more
      pending = Boolean(seat);
      seat = { secret: key.secret, boxKeyHash: key.boxKeyHash, keys: await Seal.newSeat(), saved: Date.now(), expires: 0 };
      if (!pending) await saveSeat(room, seat);
    }
  } else if (!seat) {
    show(expired ? "expired" : "nokey");
    return;
  }
  viewer.expires = seat.expires || 0;
  let saved = { ...seat };
  const onReply = async () => {
    if (pending || saved.expires !== seat.expires) await saveSeat(room, seat);
    pending = false;
    saved = { ...seat };
  };
  show("connecting");
  let gone = 0;
  for (;;) {
    let reason = await connectOnce(room, seat, name, onReply);
    const held = Boolean(seat.expires);  // the box answered this seat before
    if (reason === "vanished") reason = held ? "ended" : "unknown";
    gone = reason === "gone" ? gone + 1 : 0;
    let quietly = null;
    if (reason === "gone") {
      reason = gone < (held ? GONE_AFTER : GONE_AFTER_FIRST) ? "lost" : held ? "ended" : "unknown";
      if (reason === "lost" && !held) quietly = "unknown";  // said at once; checked a few times more
    }
    if (["lost", "restarting"].includes(reason) && seat.expires && Date.now() > seat.expires * 1000 + 60000) reason = "expired";
    if (reason === "cancelled") {
      show("cancelled");
      await joinAgain();
      show("connecting");
      continue;
    }
    if (reason === "taken") {
      // another phone holds the seat: say so, and knock again quietly until it is free
      show("taken");
      await sleep(TAKEN_RETRY * (1 + Math.random() / 2));
      continue;
    }
    if (FINAL.has(reason)) {
      // A link that never verified (pending) says nothing about the seat kept for this room.
      if (!pending) {
        if (["ended", "expired", "refused", "released"].includes(reason)) await wipeSeat(room);
        await rememberOutcome(room, reason, seat.expires);
      }
      stopPicture();
      talkEnded();
      viewer.pc = null;
      show(reason);
      return;
    }
    if (quietly) show(quietly);
    else if (reason === "restarting") show("restarting");
    else {
      show("lost");
      reconnecting(true);  // an admitted seat: the screens say "reconnecting"
    }
    viewer.attempts += 1;
    // 1, 2, 4, 8, then 10-15 s, with jitter so that phones do not come back all at once; an
    // admitted seat tries again at once the first time (a network change, a dead path)
    const backoff = viewer.admitted && viewer.attempts === 1
      ? 100 : Math.min(10000, 500 * 2 ** Math.min(viewer.attempts, 5));
    await sleep(backoff * (1 + Math.random() / 2));
  }
}

function sameKey(seat, key) {
  return Seal.b64u(seat.secret) === Seal.b64u(key.secret) && Seal.b64u(seat.boxKeyHash) === Seal.b64u(key.boxKeyHash);
}

main();
