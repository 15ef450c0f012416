// The staff's pairing page: the status every second without reloading, the staff's commands,
// and what the page says when the box stops answering. The knock's sound, who hears what (the
// sound switches), the privacy mask editor and the event log are modules of their own. No third-party code; a tablet's browser
// is enough.

import { $, T, duration, getJSON, hhmm, mss, pairing, post, showError } from "./common.js";
import "./eventlog.js";
import { initHearing, renderHearing } from "./hearing.js";
import "./mask.js";
import { chime } from "./sound.js";

const TITLE = document.title;

// "ok" is the backend contract's word for a picture; "present" is the capture's own.
const GOOD_SIGNALS = ["ok", "present", "unknown"];
const OPEN_STATES = ["ready", "waiting", "live", "paused"];
// The colour of each headline: good (green), warn (amber), bad (red), the rest neutral.
const TONES = { live: "good", unseen: "warn", waiting: "warn", error: "bad", gone: "bad" };
const TONE_CLASSES = ["tone-good", "tone-warn", "tone-bad", "tone-neutral"];
// What "extend" offers, in minutes (the box caps each at the longest a session may last).
const EXTEND_CHOICES = [15, 30, 60];
// Polls that fail in a row (a second apart) before the page says the box is not answering.
const GONE_AFTER = 2;

function tone(element, name) {
  element.classList.remove(...TONE_CLASSES);
  element.classList.add("tone-" + (name || "neutral"));
}

// -- the box not answering ------------------------------------------------------------------------

let failures = 0;

function boxGone(gone) {
  pairing.box = gone ? "gone" : "ok";
  document.body.dataset.box = pairing.box;
  $("box-gone").hidden = !gone;
  $("app").classList.toggle("stale", gone); // what is shown may be out of date: greyed
  if (gone) {
    document.body.dataset.state = "unknown";
    document.title = TITLE;
    $("state-text").textContent = T.state_gone;
    tone($("state-text"), TONES.gone);
    tone($("status-box"), TONES.gone);
  }
}

// -- status ---------------------------------------------------------------------------------------

let lastLink = null;
let qrVersion = 0;
let lastKnock = null;  // the code of the last knock chimed for
let extendKey = null;  // the expiry and limit the extend buttons were made for

function renderExtend(session) {
  const key = session && session.extend_to ? `${session.expires}-${session.extend_to}` : null;
  $("extend").hidden = key === null;
  if (key === extendKey) return; // unchanged: keep the buttons (a tap may be under way)
  extendKey = key;
  const options = [];
  let last = session ? session.expires : 0;
  for (const minutes of key === null ? [] : EXTEND_CHOICES) {
    const until = Math.min(session.expires + minutes * 60, session.extend_to);
    if (until <= last) continue; // the maximum is already offered
    last = until;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "quiet extend-option";
    button.dataset.minutes = String(minutes);
    button.textContent = T.extend_option
      .replace("{duration}", duration(Math.round((until - session.expires) / 60)))
      .replace("{time}", hhmm(until));
    button.addEventListener("click", () => command("extend", { minutes }));
    options.push(button);
  }
  $("extend-options").replaceChildren(...options);
}

function render(status) {
  const state = status.state;
  const signal = status.signal || "unknown";
  document.body.dataset.state = state;
  document.body.dataset.signal = signal;
  // Live, but the picture is not reaching the phone (dropped, or the path is dead): say so.
  const viewing = status.session && status.session.viewer;
  const unseen = viewing && (viewing.connected === false || viewing.reconnecting === true);
  const key = state === "live" && unseen ? "state_live_unseen" : "state_" + state;
  // a code that replaced an earlier one (the phone reconnected), another phone turned away
  const notes = [viewing && viewing.code_renewed && viewing.code && !viewing.admitted ? T.code_new.replace("{time}", hhmm(viewing.code_at)) : "", status.session && status.session.turned_away ? T.turned_away : ""];
  $("state-text").textContent = [T[key] || state, ...notes.filter(Boolean)].join(" ");
  const headline = TONES[state === "live" && unseen ? "unseen" : state];
  tone($("state-text"), headline);
  tone($("status-box"), headline);

  const ended = state === "idle" ? status.ended : null;
  $("ended").hidden = !ended;
  if (ended) {
    $("ended").textContent = (T["ended_" + ended.reason] || T.ended_other).replace("{time}", hhmm(ended.at));
  }

  const noPicture = !GOOD_SIGNALS.includes(signal);
  $("signal-text").hidden = !noPicture;
  $("signal-text").className = signal === "no-device" ? "error" : "warn"; // no hardware: a fault
  $("signal-text").textContent = noPicture ? T["signal_" + signal] || T.signal_lost : "";
  // the sound, while it is captured: the scanner sends none, or the sound card is missing
  const sound = ["no-audio", "no-device"].includes(status.audio) ? T["audio_" + status.audio] : "";
  $("sound-text").hidden = !sound;
  $("sound-text").className = status.audio === "no-device" ? "error" : "warn";
  $("sound-text").textContent = sound || "";
  $("clock-text").hidden = status.clock_ok !== false;
  $("fault-text").hidden = !(state === "error" && status.error);
  $("fault-text").textContent = state === "error" ? status.error || "" : "";

  const session = status.session;
  const viewer = session && session.viewer;
  $("viewer").hidden = !viewer;
  if (viewer) {
    const code = viewer.code || "";
    $("code").textContent = code ? code.slice(0, 3) + " " + code.slice(3) : T.code_pending;
    $("viewer-name-row").hidden = !viewer.name;
    $("viewer-name").textContent = viewer.name || "";
    const left = viewer.connected === false && typeof viewer.left_s === "number";
    $("viewer-offline").hidden = viewer.connected !== false || left || viewer.connecting === true;
    $("viewer-left").hidden = !left;
    $("viewer-reconnecting").hidden = viewer.reconnecting !== true;
    if (left) $("viewer-left-text").textContent = T.left.replace("{time}", mss(viewer.left_s));
  }

  // Someone knocked: a chime and "(1)" in the tab's title, until the staff answer.
  const knocked = state === "waiting" && viewer && !viewer.admitted;
  document.title = knocked ? "(1) " + TITLE : TITLE;
  const knock = knocked ? viewer.code || "?" : null;
  if (knock && knock !== lastKnock) chime();
  lastKnock = knock;

  const expiring = Boolean(session && session.expiring && OPEN_STATES.includes(state));
  $("expiring").hidden = !expiring;
  if (expiring) $("expiring-text").textContent = T.expiring.replace("{time}", hhmm(session.expires));
  renderExtend(expiring ? session : null);

  $("admit").hidden = state !== "waiting";
  $("admit").disabled = !(viewer && viewer.code);  // the code first: it is what the staff check
  $("refuse").hidden = state !== "waiting";
  $("pause").hidden = state !== "live";
  $("resume").hidden = state !== "paused";
  $("end").hidden = !OPEN_STATES.includes(state);
  $("end-row").hidden = $("end").hidden;
  $("new-session").hidden = state !== "idle";
  $("open").disabled = status.clock_ok === false;

  renderHearing(status);

  $("session").hidden = !session || !OPEN_STATES.includes(state);
  if (session) {
    if (session.url !== lastLink) {
      lastLink = session.url;
      qrVersion += 1; // a new session, a new code (the link itself never goes in a URL)
      $("qr").src = "qr.svg?v=" + qrVersion + "-" + Date.now();
    }
    $("expires").textContent = hhmm(session.expires);
  } else {
    lastLink = null;
  }
}

async function refresh() {
  let status;
  try {
    status = await getJSON("api/status");
  } catch (e) {
    if (e.message === "login") return;
    failures += 1; // the box is restarting, unplugged or stuck: the next poll tries again
    if (failures >= GONE_AFTER) boxGone(true);
    return;
  }
  failures = 0;
  if (pairing.box === "gone") {
    boxGone(false);
    showError(""); // what failed while the box was away is no longer the news
  }
  render(status);
}

async function poll() {
  await refresh();
  setTimeout(poll, 1000);
}

// Every command says why when it did nothing: the box's refusal, or that the box is not answering.
async function command(action, body) {
  try {
    showError("");
    await post("api/" + action, body);
  } catch (e) {
    showError(e.message);
  }
  refresh();
}

// The commands that cannot be taken back ask first.
const CONFIRM = { end: "confirm_end", refuse: "confirm_refuse", release: "confirm_release" };

for (const action of ["admit", "refuse", "pause", "resume", "end", "release"]) {
  $(action).addEventListener("click", async () => {
    if (CONFIRM[action] && !window.confirm(T[CONFIRM[action]])) return;
    await command(action);
  });
}

$("open-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!$("consent").checked) { showError(T.need_consent); return; }
  try {
    showError("");
    await post("api/open", { consent: true, valid_minutes: Math.round(Number($("valid").value)) });
    $("consent").checked = false;
    $("valid").value = $("valid").defaultValue;  // the next session starts from the configured default
  } catch (e) {
    showError(e.message);
  }
  refresh();
});

// The forms that leave the page (log out, language) say so too when the box is not answering,
// instead of the browser's own error page.
for (const form of document.querySelectorAll("header form")) {
  form.addEventListener("submit", (event) => {
    if (pairing.box !== "gone") return;
    event.preventDefault();
    showError(T.not_done_gone);
  });
}

initHearing(refresh);
poll();
