// The viewer: reads the key from the link, knocks at the relay with the sealed handshake of
// docs/protocol.md, shows the verification code, plays the stream once admitted, reconnects by
// itself. No third-party code, no build step. Runs in iOS Safari and Android Chrome.

import * as Seal from "./seal.js";

const TEXT = {
  en: {
    connecting: ["Connecting…", ""],
    join: ["Watch the scan live", "You will be connected to the exam room. The staff will let you in."],
    admission: ["Waiting to be let in", "If the staff ask, read them this code:"],
    waiting: ["Waiting for the sonographer", "The picture appears as soon as the exam starts."],
    live: ["", ""],
    paused: ["Paused", "The sonographer paused the picture. It will be back shortly."],
    ended: ["The session has ended", "Thank you. You can close this page."],
    expired: ["This link has expired", "Ask the exam room for a new one if the exam goes on."],
    refused: ["The exam room did not let you in", "You can close this page."],
    taken: ["Someone is already watching", "Only one phone can watch this exam."],
    badlink: ["This link cannot be verified", "It may have been altered. Open it again from the card."],
    nokey: ["This link is incomplete", "Open it again from the card or the message you received."],
    lost: ["Connection lost", "Reconnecting…"],
    unsupported: ["This browser cannot play the stream", "Please open the link in Safari or Chrome."],
    badge: "● Live, not recorded",
    fullscreen: "Full screen",
    name: "Your first name (optional, shown to the staff)",
    join_button: "Join",
    memoryOnly: "This browser cannot keep your seat: reloading the page will lose it.",
    notice: "This picture is streamed live from the exam room, encrypted from end to end. Nothing is recorded. Please do not record or share it.",
  },
  fr: {
    connecting: ["Connexion…", ""],
    join: ["Suivre l'échographie en direct", "Vous allez être mis en relation avec la salle d'examen. Le personnel vous fera entrer."],
    admission: ["En attente d'admission", "Si le personnel vous le demande, lisez-lui ce code :"],
    waiting: ["En attente de l'échographiste", "L'image apparaîtra dès le début de l'examen."],
    live: ["", ""],
    paused: ["En pause", "L'échographiste a mis l'image en pause. Elle va revenir."],
    ended: ["La séance est terminée", "Merci. Vous pouvez fermer cette page."],
    expired: ["Ce lien a expiré", "Demandez-en un nouveau à la salle d'examen si l'examen continue."],
    refused: ["La salle d'examen ne vous a pas admis", "Vous pouvez fermer cette page."],
    taken: ["Quelqu'un regarde déjà", "Un seul téléphone peut suivre cet examen."],
    badlink: ["Ce lien ne peut pas être vérifié", "Il a peut-être été modifié. Ouvrez-le à nouveau depuis la carte."],
    nokey: ["Ce lien est incomplet", "Ouvrez-le à nouveau depuis la carte ou le message reçu."],
    lost: ["Connexion perdue", "Reconnexion…"],
    unsupported: ["Ce navigateur ne peut pas lire la vidéo", "Ouvrez le lien dans Safari ou Chrome."],
    badge: "● En direct, non enregistré",
    fullscreen: "Plein écran",
    name: "Votre prénom (facultatif, visible du personnel)",
    join_button: "Rejoindre",
    memoryOnly: "Ce navigateur ne peut pas garder votre place : recharger la page la fera perdre.",
    notice: "Cette image est transmise en direct depuis la salle d'examen, chiffrée de bout en bout. Rien n'est enregistré. Merci de ne pas l'enregistrer ni la partager.",
  },
};
const lang = (navigator.language || "en").toLowerCase().startsWith("fr") ? "fr" : "en";
const T = TEXT[lang];
const FINAL = new Set(["ended", "expired", "refused", "taken", "badlink", "nokey", "unsupported"]);

const $ = (id) => document.getElementById(id);
const video = $("video");
const overlay = $("overlay");

// State the tests and benchmarks read; nothing in it is secret (the code is shown on screen).
const viewer = { state: "connecting", pc: null, attempts: 0, code: null };
window.viewer = viewer;

function show(state) {
  viewer.state = state;
  document.body.dataset.state = state;
  const [message, detail] = T[state] || T.connecting;
  $("message").textContent = message;
  $("detail").textContent = detail;
  const withCode = (state === "admission" || state === "waiting") && viewer.code;
  $("code").hidden = !withCode;
  if (withCode) $("code").textContent = viewer.code.slice(0, 3) + " " + viewer.code.slice(3);
  $("join").hidden = state !== "join";
  overlay.hidden = state === "live";
  $("badge").classList.toggle("live", state === "live");
  if (state === "live") keepAwake();
}

function translate() {
  document.documentElement.lang = lang;
  $("name").previousElementSibling.textContent = T.name;
  $("join-button").textContent = T.join_button;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    if (typeof T[el.dataset.i18n] === "string") el.textContent = T[el.dataset.i18n];
  }
}

// -- the screen stays on while watching ---------------------------------------------------------
let wakeLock = null;
async function keepAwake() {
  if (!("wakeLock" in navigator) || wakeLock) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch (_) { /* not allowed now: fine */ }
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && viewer.state === "live") keepAwake();
});

// -- full screen (iOS only knows the video element's own) ---------------------------------------
$("fullscreen").addEventListener("click", () => {
  const stage = $("stage");
  if (document.fullscreenElement) document.exitFullscreen();
  else if (stage.requestFullscreen) stage.requestFullscreen().catch(() => {});
  else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
});

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
class Refused extends Error {
  constructor(status, code) { super(code); this.status = status; this.code = code; }
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
    if (!response.ok) throw new Refused(response.status, (data && data.error) || "");
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

// The relay's refusals (unauthenticated: they can only stop us, which the relay can anyway).
// "no-room" may be a relay that restarted and forgot the room until the box opens it again: it
// is final only when it lasts (GONE_AFTER attempts in a row).
const REASONS = { taken: "taken", refused: "refused", ended: "ended", bad: "badlink", "no-room": "gone" };
const GONE_AFTER = 6;
const ENDS = { ended: "ended", expired: "expired", refused: "refused" };
const TIMEOUT = 30000;

// Resolves with why the attempt ended: "lost" (try again) or a final state.
async function connectOnce(room, seat, name) {
  const hs = new Seal.ViewerHandshake(room, seat.secret, seat.boxKeyHash, seat.keys, name);
  const link = relay(room);
  let pc = null;
  let over = false;
  let settle;
  const ended = new Promise((resolve) => { settle = resolve; });
  const finish = (reason) => { over = true; settle(reason); };
  try {
    await link.knock(await hs.knock());
    const reply = await hs.openReply(await link.receive(Date.now() + TIMEOUT));
    if (seat.expires !== reply.expires) {
      seat.expires = reply.expires;
      await saveSeat(room, seat);
    }
    pc = new RTCPeerConnection({ iceServers: reply.iceServers });
    viewer.pc = pc;
    watchConnection(pc, finish, () => over);
    // Session state from the box, over DTLS. The code shown stays the one computed here: the
    // point of reading it back is that both sides computed it on their own.
    const channel = pc.createDataChannel("status");
    channel.addEventListener("message", (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (_) { return; }
      if (!msg || msg.type !== "status") return;
      if (onStatus(msg) === "ended") finish("ended");
    });
    channel.addEventListener("close", () => finish(viewer.state === "ended" ? "ended" : "lost"));
    preferH264(pc.addTransceiver("video", { direction: "recvonly" }));
    pc.addEventListener("track", (event) => {
      video.srcObject = event.streams[0] || new MediaStream([event.track]);
      video.play().catch(() => {});
    });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc, 3000);
    const offer = pc.localDescription.sdp;
    await link.send(await hs.offer(offer));
    const answer = await hs.openAnswer(await link.receive(Date.now() + TIMEOUT));
    viewer.code = await hs.code(Seal.dtlsFingerprint(offer));
    // an admitted seat is let straight back in by the box: never "waiting to be let in"
    if (!viewer.admitted && viewer.state !== "live" && viewer.state !== "paused") show("admission");
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    viewer.attempts = 0;
    hangUp = async () => link.bye(await hs.seal({ type: "bye" }));
    notices(hs, link, finish, () => over);
    return await ended;
  } catch (err) {
    if (err instanceof Seal.Ended) return ENDS[err.reason] || "ended";
    if (err instanceof Seal.SealError) return "badlink";
    if (err instanceof Refused && err.status) return REASONS[err.code] || "lost";
    return "lost";
  } finally {
    finish("lost");
    hangUp = null;
    hs.forget();
    if (pc) pc.close();
  }
}

// Sealed notices from the box through the relay once connected: the session ended, or the staff
// refused us; the relay's own answers (room gone, seat taken) end the attempt too. A message that
// does not open abandons the attempt: the next one knocks again with a fresh salt.
async function notices(hs, link, finish, isOver) {
  while (!isOver()) {
    let body;
    try {
      body = await hs.open(await link.receive());
    } catch (err) {
      if (isOver()) return;
      if (err instanceof Refused && err.status) { finish(REASONS[err.code] || "lost"); return; }
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

function onStatus(msg, fromBox = true) {
  const state = msg.state === "waiting" ? "admission" : msg.state;
  if (!["admission", "live", "paused", "ended"].includes(state)) return null;
  if (state === "live" || state === "paused") viewer.admitted = true;
  if (typeof msg.step === "string") viewer.step = msg.step;
  viewer.reconnecting = msg.reconnecting === true;
  viewer.lastState = state;
  if (viewer.reconnecting) viewer.everReconnecting = true;
  if (fromBox && (state !== "admission" || !viewer.admitted)) show(state);
  window.dispatchEvent(new CustomEvent("viewer-status", { detail: { ...msg, state } }));
  return state;
}

function reconnecting(on) {
  if (!viewer.admitted || viewer.reconnecting === on) return;
  const msg = { type: "status", state: viewer.lastState || "live", step: viewer.step, reconnecting: on };
  onStatus(msg, false);  // the flag only: the screen stays as it is
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
    } else if (viewer.lastState === "live" && Date.now() - quietSince > STALL_MS) {
      reconnecting(true);
    }
  }, 500);
}

function askName() {
  show("join");
  return new Promise((resolve) => {
    $("join").addEventListener("submit", (event) => {
      event.preventDefault();
      resolve($("name").value.trim() || null);
    }, { once: true });
  });
}

async function main() {
  translate();
  if (!window.RTCPeerConnection || !globalThis.crypto?.subtle) { show("unsupported"); return; }
  const room = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const expired = (await purgeStale()).includes(room);
  let seat = await loadSeat(room);
  let name = null;
  if (location.hash.length > 1) {
    let key;
    try { key = Seal.parseFragment(location.hash); } catch (_) { show("nokey"); return; }
    history.replaceState(null, "", location.pathname);  // the key leaves the address bar at once
    if (!seat || !sameKey(seat, key)) {
      name = await askName();
      seat = { secret: key.secret, boxKeyHash: key.boxKeyHash, keys: await Seal.newSeat(), saved: Date.now(), expires: 0 };
      await saveSeat(room, seat);
    }
  } else if (!seat) {
    show(expired ? "expired" : "nokey");
    return;
  }
  show("connecting");
  let gone = 0;
  for (;;) {
    let reason = await connectOnce(room, seat, name);
    gone = reason === "gone" ? gone + 1 : 0;
    if (reason === "gone") reason = gone >= GONE_AFTER ? "ended" : "lost";
    if (reason === "lost" && seat.expires && Date.now() > seat.expires * 1000 + 60000) reason = "expired";
    if (FINAL.has(reason)) {
      if (["ended", "expired", "refused"].includes(reason)) await wipeSeat(room);
      video.srcObject = null;
      viewer.pc = null;
      show(reason);
      return;
    }
    show("lost");
    reconnecting(true);
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
