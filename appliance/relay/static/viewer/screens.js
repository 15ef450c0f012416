// The viewer page's screens and picture: every text in French and English, which screen shows,
// the waiting room (elapsed time, cancel), the picture's own checks (LIVE only while decoded frames
// advance; a quality meter from getStats), full screen, the portrait hint, controls that hide in
// landscape, and the outcome a phone remembers about a finished link (keyed by a hash of the room
// id: no secret). viewer.js does the connecting and calls in here; nothing here talks to the relay.

const TEXT = {
  en: {
    connecting: ["Connecting…", ""],
    join: ["Watch the scan live", "You will be connected to the exam room. The staff will let you in."],
    admission: ["Waiting to be let in", "If the staff ask, read them this code:"],
    starting: ["The picture is starting…", ""],
    delayed: ["The picture is delayed", "Reconnecting…"],
    live: ["", ""],
    paused: ["Paused", "The sonographer paused the picture. It will be back shortly."],
    ended: ["The session has ended", "Thank you. You can close this page."],
    expired: ["This link has expired", "Ask the exam room for a new one if the exam goes on."],
    refused: ["The exam room did not let you in", "You can close this page."],
    released: ["The exam room let another phone in", "Your place was given to another phone. You can close this page."],
    taken: ["Someone is already watching", "Only one phone can watch this exam."],
    badlink: ["This link cannot be verified", "It may have been damaged or altered. Open it again from the card or the message you received."],
    nokey: ["This link is incomplete", "Open it again from the card or the message you received."],
    unknown: ["Unknown link", "No exam room knows this link: it may be mistyped. Open it again from the card or the message you received."],
    restarting: ["The exam room is restarting", "Trying again in a moment…"],
    lost: ["Connection lost", "Reconnecting…"],
    cancelled: ["You left the waiting room", "You can join again while the link is valid."],
    unsupported: ["This browser cannot play the stream", "Open the link again (from the card or the message) in an up-to-date Safari or Chrome."],
    badge: "● Live, not recorded",
    fullscreen: "Full screen",
    name: "Your first name (optional, shown to the staff)",
    join_button: "Join",
    cancel: "Cancel",
    again: "Join again",
    how: "The staff will phone you and ask for this code: it shows them that the picture goes to you.",
    waited: "Waiting for {time}",
    rotate: "Turn your phone sideways for a larger picture.",
    quality: ["Picture quality: poor", "Picture quality: fair", "Picture quality: good"],
    step_half: "Weak network: fewer images per second",
    step_smaller: "Weak network: smaller picture",
    memoryOnly: "This browser cannot keep your seat: reloading the page will lose it.",
    notice: "This picture is streamed live from the exam room, encrypted from end to end. Nothing is recorded. Please do not record or share it.",
  },
  fr: {
    connecting: ["Connexion…", ""],
    join: ["Suivre l'échographie en direct", "Vous allez être mis en relation avec la salle d'examen. Le personnel vous fera entrer."],
    admission: ["En attente d'admission", "Si le personnel vous le demande, lisez-lui ce code :"],
    starting: ["L'image arrive…", ""],
    delayed: ["L'image est retardée", "Reconnexion…"],
    live: ["", ""],
    paused: ["En pause", "L'échographiste a mis l'image en pause. Elle va revenir."],
    ended: ["La séance est terminée", "Merci. Vous pouvez fermer cette page."],
    expired: ["Ce lien a expiré", "Demandez-en un nouveau à la salle d'examen si l'examen continue."],
    refused: ["La salle d'examen ne vous a pas admis", "Vous pouvez fermer cette page."],
    released: ["La salle d'examen a fait entrer un autre téléphone", "Votre place a été donnée à un autre téléphone. Vous pouvez fermer cette page."],
    taken: ["Quelqu'un regarde déjà", "Un seul téléphone peut suivre cet examen."],
    badlink: ["Ce lien ne peut pas être vérifié", "Il a peut-être été abîmé ou modifié. Ouvrez-le à nouveau depuis la carte ou le message reçu."],
    nokey: ["Ce lien est incomplet", "Ouvrez-le à nouveau depuis la carte ou le message reçu."],
    unknown: ["Lien inconnu", "Aucune salle d'examen ne connaît ce lien : il est peut-être mal recopié. Ouvrez-le à nouveau depuis la carte ou le message reçu."],
    restarting: ["La salle d'examen redémarre", "Nouvel essai dans un instant…"],
    lost: ["Connexion perdue", "Reconnexion…"],
    cancelled: ["Vous avez quitté la salle d'attente", "Vous pouvez revenir tant que le lien est valable."],
    unsupported: ["Ce navigateur ne peut pas lire la vidéo", "Ouvrez à nouveau le lien (depuis la carte ou le message) dans Safari ou Chrome à jour."],
    badge: "● En direct, non enregistré",
    fullscreen: "Plein écran",
    name: "Votre prénom (facultatif, visible du personnel)",
    join_button: "Rejoindre",
    cancel: "Annuler",
    again: "Revenir",
    how: "Le personnel vous appellera et vous demandera ce code : il lui montre que l'image vous parvient bien à vous.",
    waited: "En attente depuis {time}",
    rotate: "Tournez le téléphone pour agrandir l'image.",
    quality: ["Qualité de l'image : faible", "Qualité de l'image : moyenne", "Qualité de l'image : bonne"],
    step_half: "Réseau faible : moins d'images par seconde",
    step_smaller: "Réseau faible : image plus petite",
    memoryOnly: "Ce navigateur ne peut pas garder votre place : recharger la page la fera perdre.",
    notice: "Cette image est transmise en direct depuis la salle d'examen, chiffrée de bout en bout. Rien n'est enregistré. Merci de ne pas l'enregistrer ni la partager.",
  },
};
export const lang = (navigator.language || "en").toLowerCase().startsWith("fr") ? "fr" : "en";
const T = TEXT[lang];

// Screens with a spinner (something is under way) and screens with nothing more to come.
const BUSY = new Set(["connecting", "admission", "starting", "delayed", "restarting", "lost"]);
export const FINAL = new Set(["ended", "expired", "refused", "released", "taken", "badlink", "nokey", "unknown", "unsupported"]);
// What the box's status and sealed "end" may say.
const END_REASONS = { ended: "ended", expired: "expired", refused: "refused", released: "released" };
const STEPS = new Set(["full", "half-rate", "smaller"]);

const $ = (id) => document.getElementById(id);
const video = $("video");

// State the tests and benchmarks read; nothing in it is secret (the code is shown on screen).
// state: the screen; box: what the box last said (waiting, live, paused, ended); quality: the meter.
export const viewer = {
  state: "connecting", box: null, pc: null, attempts: 0, code: null, step: null,
  quality: null, frames: 0, waitingSince: 0,
};
window.viewer = viewer;

export function show(state) {
  const was = viewer.state;
  viewer.state = state;
  document.body.dataset.state = state;
  const [message, detail] = T[state] || T.connecting;
  $("message").textContent = message;
  $("detail").textContent = detail;
  const waiting = state === "admission" && Boolean(viewer.code);
  $("code").hidden = !waiting;
  if (waiting) $("code").textContent = viewer.code.slice(0, 3) + " " + viewer.code.slice(3);
  $("how").hidden = !waiting;
  $("cancel").hidden = !waiting;
  $("elapsed").hidden = !waiting;
  if (waiting && was !== "admission") viewer.waitingSince = Date.now();
  if (waiting) tickElapsed();
  $("again").hidden = state !== "cancelled";
  $("spinner").hidden = !BUSY.has(state);
  $("join").hidden = state !== "join";
  $("overlay").hidden = state === "live";
  // "Live, not recorded", the meter and "Full screen" only over a picture.
  $("bar").hidden = state !== "live";
  $("badge").classList.toggle("live", state === "live");
  if (state === "live" && was !== "live") { keepAwake(); controlsShown(); }
  if (state !== "live") controlsPinned();
  portraitHint();
}

export function translate() {
  document.documentElement.lang = lang;
  $("name").previousElementSibling.textContent = T.name;
  $("join-button").textContent = T.join_button;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    if (typeof T[el.dataset.i18n] === "string") el.textContent = T[el.dataset.i18n];
  }
}

// -- the waiting room ------------------------------------------------------------------------------
function mss(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}
function tickElapsed() {
  $("elapsed").textContent = T.waited.replace("{time}", mss(Date.now() - viewer.waitingSince));
}
setInterval(() => { if (viewer.state === "admission") tickElapsed(); }, 1000);

// The viewer gives up waiting: viewer.js hangs up (resolves with "cancelled"); "Join again" goes on.
let onCancel = () => {};
let onAgain = () => {};
export function whenCancelled(fn) { onCancel = fn; }
export function joinAgain() { return new Promise((resolve) => { onAgain = resolve; }); }
$("cancel").addEventListener("click", () => onCancel());
$("again").addEventListener("click", () => onAgain());

export function askName() {
  show("join");
  return new Promise((resolve) => {
    $("join").addEventListener("submit", (event) => {
      event.preventDefault();
      resolve($("name").value.trim() || null);
    }, { once: true });
  });
}

// -- what the box says (the data channel's status) -------------------------------------------------
// Returns the end's reason when the session is over for this phone, else null.
export function boxSaid(msg) {
  if (!msg || msg.type !== "status") return null;
  if (STEPS.has(msg.step)) viewer.step = msg.step;
  if (msg.state === "ended") {
    viewer.box = "ended";
    return END_REASONS[msg.reason] || "ended";
  }
  if (!["waiting", "live", "paused"].includes(msg.state)) return null;
  const before = viewer.box;
  viewer.box = msg.state;
  if (msg.state === "live" || msg.state === "paused") viewer.admitted = true;
  viewer.reconnecting = msg.reconnecting === true;
  if (msg.state === "live" && before !== "live") picture.liveSince = performance.now();
  render();
  return null;
}

// The connection is gone (viewer.js reconnects): the box's word no longer holds.
export function boxGone() {
  viewer.box = null;
  viewer.reconnecting = false;
}

// The code is ready (computed here, never the box's): the waiting room, unless already in.
export function codeReady(code) {
  viewer.code = code;
  // an admitted seat coming back is let straight in by the box: never "waiting to be let in"
  if (viewer.admitted || viewer.box === "live" || viewer.box === "paused") render();
  else show("admission");
}

// The screen that follows from the box's state and the picture itself.
function render() {
  if (viewer.box === "waiting") { if (viewer.code) show("admission"); return; }
  if (viewer.box === "paused") { show("paused"); return; }
  if (viewer.box !== "live") return;
  const now = performance.now();
  if (!viewer.reconnecting && picture.last > picture.liveSince && now - picture.last < STALE_MS) show("live");
  else if (!viewer.reconnecting && picture.last <= picture.liveSince && now - picture.liveSince < START_MS) show("starting");
  else show("delayed");
}

// -- the picture's own checks: LIVE only while decoded frames advance ------------------------------
const STALE_MS = 2500;   // no new frame for this long: "delayed"
const START_MS = 4000;   // the first frame may take this long after admission
const WINDOW_MS = 10000; // the quality meter looks this far back
const picture = { last: 0, liveSince: 0, gaps: [], freezes: [], videoTime: -1, decoded: -1, statsAt: 0, decodedAt: 0 };

function framePresented(now) {
  if (picture.last) {
    const gap = now - picture.last;
    picture.gaps.push([now, gap]);
    while (picture.gaps.length && picture.gaps[0][0] < now - WINDOW_MS) picture.gaps.shift();
    if (gap > freezeGap()) picture.freezes.push(now);
  }
  picture.last = now;
  viewer.frames += 1;
}

// A freeze is a gap between presented frames well beyond the usual one (the definition of
// WebRTC's freezeCount, measured here: freezeCount reads 0 for a freeze that never ends).
function freezeGap() {
  const recent = picture.gaps.slice(-30).map((g) => g[1]);
  const mean = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : 33;
  return Math.max(3 * mean, mean + 150, 250);
}

function watchFrames() {
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
    const onFrame = (now) => { framePresented(now); video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);
  }
  // Where frames are not reported (and as a second witness): the video's clock moving on.
  setInterval(() => {
    const t = video.currentTime;
    if (t !== picture.videoTime && !video.paused && video.readyState >= 2) {
      if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) framePresented(performance.now());
      picture.videoTime = t;
    }
  }, 100);
  setInterval(() => {
    if (viewer.box === "live") render();
    if (viewer.state === "live" || viewer.state === "delayed") measure();
  }, 500);
}

// -- the quality meter: frames per second, freezes and round-trip time from getStats ---------------
async function measure() {
  const now = performance.now();
  let fps = null, rtt = null;
  const pc = viewer.pc;
  if (pc && now - picture.statsAt >= 1000) {
    picture.statsAt = now;
    try {
      const stats = await pc.getStats();
      let pair = null;
      for (const s of stats.values()) {
        if (s.type === "inbound-rtp" && s.kind === "video") {
          if (typeof s.framesDecoded === "number") {
            if (picture.decoded >= 0 && s.framesDecoded > picture.decoded && picture.decodedAt) {
              fps = ((s.framesDecoded - picture.decoded) * 1000) / (now - picture.decodedAt);
            }
            picture.decoded = s.framesDecoded;
            picture.decodedAt = now;
          }
          if (typeof s.framesPerSecond === "number") fps = s.framesPerSecond;
        }
        if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
        if (!pair && s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
      }
      if (pair && typeof pair.currentRoundTripTime === "number") rtt = pair.currentRoundTripTime;
    } catch (_) { /* closed meanwhile */ }
  } else if (viewer.quality) {
    ({ fps, rtt } = viewer.quality);
  }
  if (fps === null) {
    const recent = picture.gaps.filter((g) => g[0] > now - 2000);
    fps = recent.length ? recent.length / 2 : 0;
  }
  const recentFreezes = picture.freezes.filter((t) => t > now - WINDOW_MS).length;
  const frozenNow = picture.last && now - picture.last > freezeGap();
  const freezes = recentFreezes + (frozenNow ? 1 : 0);
  const expected = viewer.step === "half-rate" ? 15 : 30;
  const fpsScore = fps >= expected * 0.6 ? 3 : fps >= expected * 0.3 ? 2 : 1;
  const freezeScore = frozenNow || recentFreezes >= 3 ? 1 : recentFreezes ? 2 : 3;
  const rttScore = rtt === null || rtt < 0.25 ? 3 : rtt < 0.6 ? 2 : 1;
  const bars = Math.min(fpsScore, freezeScore, rttScore);
  viewer.quality = { bars, fps: Math.round(fps * 10) / 10, freezes, rtt, step: viewer.step };
  drawQuality();
}

function drawQuality() {
  const q = viewer.quality;
  const meter = $("quality");
  meter.dataset.bars = q ? String(q.bars) : "3";
  meter.setAttribute("aria-label", T.quality[(q ? q.bars : 3) - 1]);
  meter.title = T.quality[(q ? q.bars : 3) - 1];
  const step = viewer.step === "half-rate" ? T.step_half : viewer.step === "smaller" ? T.step_smaller : "";
  $("step").hidden = !step;
  $("step").textContent = step;
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

// -- portrait: a hint to turn the phone; landscape: the controls hide after 3 s ----------------------
const portrait = window.matchMedia("(orientation: portrait)");
const HIDE_MS = 3000;
let hideTimer = null;

function portraitHint() {
  $("rotate").hidden = !(viewer.state === "live" && portrait.matches);
}

function controlsShown() {
  document.body.classList.remove("controls-hidden");
  clearTimeout(hideTimer);
  hideTimer = null;
  if (viewer.state === "live" && !portrait.matches) {
    hideTimer = setTimeout(() => {
      if (viewer.state === "live" && !portrait.matches) document.body.classList.add("controls-hidden");
    }, HIDE_MS);
  }
}
function controlsPinned() {
  clearTimeout(hideTimer);
  hideTimer = null;
  document.body.classList.remove("controls-hidden");
}
portrait.addEventListener("change", () => { portraitHint(); if (viewer.state === "live") controlsShown(); });
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => { if (viewer.state === "live") controlsShown(); });
}

// -- can this browser play the stream at all (before any knock) ------------------------------------
export function canPlay() {
  if (!window.RTCPeerConnection || !globalThis.crypto?.subtle) return false;
  const caps = window.RTCRtpReceiver?.getCapabilities?.("video");
  if (!caps) return true;  // cannot tell: try
  return caps.codecs.some((c) => c.mimeType.toLowerCase() === "video/h264");
}

// -- the outcome of a finished link, remembered without any secret ---------------------------------
// localStorage "outcome:<hex SHA-256 of the room id>" = {outcome, until (ms)}: until the link's
// expiry (a day when the phone never learnt it). Reopening the link then says how it ended.
const OUTCOME = "outcome:";
const DAY = 24 * 3600 * 1000;

async function roomTag(room) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(room));
  return OUTCOME + Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function rememberOutcome(room, outcome, expires) {
  if (!["ended", "expired", "refused"].includes(outcome)) return;
  const until = expires ? expires * 1000 + 60000 : Date.now() + DAY;
  try { localStorage.setItem(await roomTag(room), JSON.stringify({ outcome, until })); } catch (_) { /* not kept */ }
}

export async function recallOutcome(room) {
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const key = localStorage.key(i);
      if (!key || !key.startsWith(OUTCOME)) continue;
      let until = 0;
      try { until = JSON.parse(localStorage.getItem(key)).until; } catch (_) { /* damaged */ }
      if (!(Date.now() < until)) localStorage.removeItem(key);
    }
    const kept = localStorage.getItem(await roomTag(room));
    return kept ? JSON.parse(kept).outcome : null;
  } catch (_) {
    return null;
  }
}

// -- the video ----------------------------------------------------------------------------------
export function play(stream) {
  video.srcObject = stream;
  video.play().catch(() => {});
}
export function stopPicture() {
  video.srcObject = null;
}

drawQuality();
watchFrames();
