// The viewer page's screens and picture: which screen shows (in the phone's language, i18n.js),
// the waiting room (elapsed time, cancel), the picture's own checks (LIVE only while decoded frames
// advance; a quality meter from getStats), full screen, the portrait hint, controls that hide in
// landscape, and the outcome a phone remembers about a finished link (keyed by a hash of the room
// id: no secret). viewer.js does the connecting and calls in here; nothing here talks to the relay.

import { T, i18n } from "./i18n.js";
import { canShare, endsSoon, languagePicker } from "./controls.js";
import { drawSound } from "./sound.js";
import { drawTalk } from "./talk.js";

// Screens with a spinner (something is under way) and screens with nothing more to come.
// "taken" is neither: the page knocks again quietly, and joins once the seat is free.
const BUSY = new Set(["connecting", "admission", "starting", "delayed", "restarting", "lost", "taken"]);
export const FINAL = new Set(["ended", "expired", "refused", "released", "badlink", "nokey", "unknown", "unsupported"]);
// What the box's status and sealed "end" may say.
const END_REASONS = { ended: "ended", expired: "expired", refused: "refused", released: "released" };
const STEPS = new Set(["full", "half-rate", "smaller"]);

const $ = (id) => document.getElementById(id);
const video = $("video");

// State the tests and benchmarks read; nothing in it is secret (the code is shown on screen).
// state: the screen; box: what the box last said (waiting, live, paused, ended); quality: the meter.
// renewed: this code replaced an earlier one (a reload, a reconnection: new keys, a new code);
// expires: the session's end (unix seconds), from the box's signed reply and its status.
export const viewer = {
  state: "connecting", box: null, pc: null, attempts: 0, code: null, step: null,
  quality: null, frames: 0, waitingSince: 0, renewed: false, expires: 0,
};
// Screens on which the session's coming end is said.
const WATCHING = new Set(["admission", "starting", "live", "delayed", "paused"]);
window.viewer = viewer;

export function show(state) {
  const was = viewer.state;
  viewer.state = state;
  document.body.dataset.state = state;
  const [message, detail] = T[state] || T.connecting || [$("message").textContent, ""];
  $("message").textContent = message;
  $("detail").textContent = detail;
  const waiting = state === "admission" && Boolean(viewer.code);
  $("code").hidden = !waiting;
  if (waiting) $("code").textContent = viewer.code.slice(0, 3) + " " + viewer.code.slice(3);
  $("how").hidden = !waiting;
  $("new-code").hidden = !(waiting && viewer.renewed);
  $("share").hidden = !(state === "join" && canShare());
  endsSoon(viewer.expires, WATCHING.has(state));
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

// Every word on the page in the phone's language (again after the viewer picks another one).
export function translate() {
  document.documentElement.lang = i18n.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    if (typeof T[el.dataset.i18n] === "string") el.textContent = T[el.dataset.i18n];
  }
  drawQuality();
}

// The language picker, and the page redrawn in the language picked.
export function languages() {
  languagePicker(() => { translate(); show(viewer.state); drawSound(); drawTalk(); });
}

// -- the waiting room ------------------------------------------------------------------------------
function mss(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}
function tickElapsed() {
  $("elapsed").textContent = (T.waited || "{time}").replace("{time}", mss(Date.now() - viewer.waitingSince));
}
setInterval(() => {
  if (viewer.state === "admission") tickElapsed();
  endsSoon(viewer.expires, WATCHING.has(viewer.state));
}, 1000);

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
  if (Number.isSafeInteger(msg.expires) && msg.expires > 0) viewer.expires = msg.expires;  // an extension
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
export function codeReady(code, renewed) {
  viewer.code = code;
  viewer.renewed = renewed;
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

// -- the sound's part of the meter: concealed samples and stalls, from the audio inbound-rtp -------
const SOUND_STALL_MS = 1500; // no sound packet for this long while live: "sound interrupted"
const SOUND_SETTLE_MS = 3000; // the jitter buffer's start conceals a little: not counted
const sound = { received: -1, movedAt: 0, seenAt: 0, since: 0, window: [] };

function hearSound(s, now) {
  if (!s) return null;
  if (now - sound.seenAt > 2 * SOUND_STALL_MS) {  // (back) to live: start afresh
    sound.movedAt = sound.since = now;
    sound.window = [];
  }
  sound.seenAt = now;
  if (s.packetsReceived !== sound.received) {
    if (now - sound.movedAt > SOUND_STALL_MS) {  // back after a stall (said as such): start afresh
      sound.window = [];
      sound.since = now;
    }
    sound.received = s.packetsReceived;
    sound.movedAt = now;
  }
  const settled = now - sound.since >= SOUND_SETTLE_MS;
  if (settled && typeof s.concealedSamples === "number" && typeof s.totalSamplesReceived === "number") {
    sound.window.push([now, s.concealedSamples, s.totalSamplesReceived]);
    while (sound.window.length > 2 && sound.window[0][0] < now - WINDOW_MS) sound.window.shift();
  }
  const first = sound.window[0], last = sound.window[sound.window.length - 1];
  const samples = first && last ? last[2] - first[2] : 0;
  const concealed = samples > 0 ? (last[1] - first[1]) / samples : 0;
  return { concealed: Math.round(concealed * 1000) / 10, stalled: now - sound.movedAt > SOUND_STALL_MS };
}

// -- the quality meter: frames per second, freezes and round-trip time from getStats; the sound's
// concealed samples (percent, over the window) and stalls when the stream has sound -------------
async function measure() {
  const now = performance.now();
  let fps = null, rtt = null, heard = null;
  const pc = viewer.pc;
  if (pc && now - picture.statsAt >= 1000) {
    picture.statsAt = now;
    try {
      const stats = await pc.getStats();
      let pair = null, audio = null;
      for (const s of stats.values()) {
        if (s.type === "inbound-rtp" && s.kind === "audio") audio = s;
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
      heard = hearSound(audio, now);
    } catch (_) { /* closed meanwhile */ }
  } else if (viewer.quality) {
    ({ fps, rtt, sound: heard } = viewer.quality);
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
  const soundScore = !heard ? 3 : heard.stalled || heard.concealed > 10 ? 1 : heard.concealed > 2 ? 2 : 3;
  const bars = Math.min(fpsScore, freezeScore, rttScore, soundScore);
  viewer.quality = { bars, fps: Math.round(fps * 10) / 10, freezes, rtt, step: viewer.step, sound: heard };
  drawQuality();
}

function drawQuality() {
  const q = viewer.quality;
  const meter = $("quality");
  meter.dataset.bars = q ? String(q.bars) : "3";
  const words = T.quality || [];
  const heard = q && q.sound;
  const soundWord = !heard ? "" : heard.stalled ? T.sound_stalled : heard.concealed > 2 ? T.sound_choppy : "";
  const label = [words[(q ? q.bars : 3) - 1] || "", soundWord || ""].filter(Boolean).join(". ");
  meter.setAttribute("aria-label", label);
  meter.title = label;
  $("sound-quality").hidden = !soundWord;
  $("sound-quality").textContent = soundWord || "";
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
  if (video.srcObject !== stream) {  // the picture and the sound come as one stream
    video.srcObject = stream;
    video.play().catch(() => {});
  }
  drawSound();
}
export function stopPicture() {
  video.srcObject = null;
}

drawQuality();
watchFrames();
