// The staff's pairing page: the status every second without reloading, the staff's commands,
// the privacy mask editor and the event log. No third-party code; a tablet's browser is enough.

const app = document.getElementById("app");
const T = JSON.parse(app.dataset.texts);
const LANG = app.dataset.lang === "fr" ? "fr" : "en";
const LOCALE = LANG === "fr" ? "fr-FR" : "en-GB";  // 24 h times in both
const TITLE = document.title;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);

// "ok" is the backend contract's word for a picture; "present" is the capture's own.
const GOOD_SIGNALS = ["ok", "present", "unknown"];
const OPEN_STATES = ["ready", "waiting", "live", "paused"];

function loggedOut() {
  location.reload(); // the server shows the login page
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  if (response.status === 401) loggedOut();
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || String(response.status));
  return data;
}

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (response.status === 401) { loggedOut(); throw new Error("login"); }
  if (!response.ok) throw new Error(String(response.status));
  return response.json();
}

function showError(message) {
  $("error-text").hidden = !message;
  $("error-text").textContent = message || "";
}

function hhmm(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

function mss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

// State the tests read (nothing secret: what the page shows).
const pairing = { chimes: 0, sound: "off" };
window.pairing = pairing;

// -- the knock's chime: a tone made here (WebAudio), once the staff touched the page --------------
// Browsers let a page make sound only after a user gesture: the first tap or key anywhere on the
// page (or the "knock sound" button) starts the audio.
let audio = null;

function unlockSound() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  if (!audio) audio = new Context();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  soundShown();
}

function soundShown() {
  pairing.sound = audio ? audio.state : "off";
  const on = audio !== null && audio.state === "running";
  $("sound").hidden = on;
  $("sound-on").hidden = !on;
}

function chime() {
  pairing.chimes += 1;
  if (!audio || audio.state !== "running") return;
  const now = audio.currentTime;
  // two soft notes, a fifth apart: heard across the room, not alarming
  for (const [at, freq] of [[0, 880], [0.18, 1318.5]]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + at);
    gain.gain.exponentialRampToValueAtTime(0.3, now + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.45);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + at);
    osc.stop(now + at + 0.5);
  }
}

for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, unlockSound, { capture: true });
}
$("sound").addEventListener("click", unlockSound);

// -- status ---------------------------------------------------------------------------------------

let lastLink = null;
let qrVersion = 0;
let lastKnock = null;  // the code of the last knock chimed for

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

  const noPicture = !GOOD_SIGNALS.includes(signal);
  $("signal-text").hidden = !noPicture;
  $("signal-text").textContent = noPicture ? T["signal_" + signal] || T.signal_lost : "";
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

  $("expiring").hidden = !(session && session.expiring && OPEN_STATES.includes(state));
  if (session && session.expiring) {
    $("expiring-text").textContent = T.expiring.replace("{time}", hhmm(session.expires));
    $("extend").hidden = !session.extend_to;
    if (session.extend_to) $("extend").textContent = T.extend.replace("{time}", hhmm(session.extend_to));
  }

  $("admit").hidden = state !== "waiting";
  $("admit").disabled = !(viewer && viewer.code);  // the code first: it is what the staff check
  $("refuse").hidden = state !== "waiting";
  $("pause").hidden = state !== "live";
  $("resume").hidden = state !== "paused";
  $("end").hidden = !OPEN_STATES.includes(state);
  $("end-row").hidden = $("end").hidden;
  $("new-session").hidden = state !== "idle";
  $("open").disabled = status.clock_ok === false;

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
  try {
    render(await getJSON("api/status"));
  } catch (e) {
    // the box is busy or restarting: the next poll tries again
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, 1000);
}

// The commands that cannot be taken back ask first.
const CONFIRM = { end: "confirm_end", refuse: "confirm_refuse", release: "confirm_release" };

for (const action of ["admit", "refuse", "pause", "resume", "end", "release", "extend"]) {
  $(action).addEventListener("click", async () => {
    if (CONFIRM[action] && !window.confirm(T[CONFIRM[action]])) return;
    try {
      showError("");
      await post("api/" + action);
    } catch (e) {
      showError(e.message);
    }
    refresh();
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

// -- the privacy mask editor: rectangles as fractions of the picture -----------------------------

let rects = [];
let unsaved = false;  // rectangles drawn or deleted since the last save
const wrap = $("preview-wrap");

function changed(dirty) {
  unsaved = dirty;
  $("mask-unsaved").hidden = !dirty;
  $("mask-editor").classList.toggle("unsaved", dirty);
  if (dirty) $("mask-saved").hidden = true;
}

function place(div, r) {
  div.style.left = r[0] * 100 + "%";
  div.style.top = r[1] * 100 + "%";
  div.style.width = r[2] * 100 + "%";
  div.style.height = r[3] * 100 + "%";
}

const percent = (v) => Math.round(v * 1000) / 10 + "%";

function drawRects() {
  const layer = $("rects");
  const list = $("mask-list");
  layer.replaceChildren();
  list.replaceChildren();
  rects.forEach((r, i) => {
    const div = document.createElement("div");
    div.className = unsaved ? "rect unsaved" : "rect";
    div.textContent = String(i + 1);
    place(div, r);
    layer.append(div);

    const item = document.createElement("li");
    item.textContent = `${T.mask_rect} ${i + 1}: x ${percent(r[0])}, y ${percent(r[1])}, ${percent(r[2])} × ${percent(r[3])}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "quiet";
    remove.textContent = T.delete;
    remove.addEventListener("click", () => { rects.splice(i, 1); changed(true); drawRects(); });
    item.append(remove);
    list.append(item);
  });
  $("mask-empty").hidden = rects.length > 0;
}

function fraction(event) {
  const box = wrap.getBoundingClientRect();
  return [
    Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
    Math.min(1, Math.max(0, (event.clientY - box.top) / box.height)),
  ];
}

function spanned(a, b) {
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1])];
}

let start = null;
let drawing = null;

wrap.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  start = fraction(event);
  drawing = document.createElement("div");
  drawing.className = "rect drawing";
  place(drawing, [start[0], start[1], 0, 0]);
  $("rects").append(drawing);
  wrap.setPointerCapture(event.pointerId);
});
wrap.addEventListener("pointermove", (event) => {
  if (start && drawing) place(drawing, spanned(start, fraction(event)));
});
function finish(event, keep) {
  if (!start) return;
  const r = spanned(start, fraction(event));
  start = null;
  if (drawing) drawing.remove();
  drawing = null;
  if (keep && r[2] > 0.005 && r[3] > 0.005) {
    rects.push(r);
    changed(true);
  }
  drawRects();
}
wrap.addEventListener("pointerup", (event) => finish(event, true));
wrap.addEventListener("pointercancel", (event) => finish(event, false));

$("mask-save").addEventListener("click", async () => {
  try {
    showError("");
    rects = (await post("api/mask", { rects })).rects;
    changed(false);
    drawRects();
    $("mask-saved").hidden = false;
  } catch (e) {
    showError(e.message);
  }
});
$("mask-clear").addEventListener("click", () => { rects = []; changed(true); drawRects(); });
window.addEventListener("beforeunload", (event) => { if (unsaved) event.preventDefault(); });

async function loadMask() {
  try {
    rects = (await getJSON("api/mask")).rects;
    changed(false);
    drawRects();
  } catch (e) {
    // the editor starts empty; saving still works
  }
}

// The preview (the scanner's picture, unmasked) and the event log are fetched only while they
// are on screen and the tab is visible: no work for the box otherwise.
function whileVisible(element, refresh, period) {
  let onScreen = false;
  let timer = null;
  const tick = async () => {
    timer = null;
    if (!onScreen || document.hidden) return;
    await refresh();
    if (timer === null) timer = setTimeout(tick, period);
  };
  const kick = () => {
    if (onScreen && !document.hidden && timer === null) { timer = setTimeout(tick, 0); }
  };
  new IntersectionObserver((seen) => {
    onScreen = seen.some((entry) => entry.isIntersecting);
    kick();
  }).observe(element);
  document.addEventListener("visibilitychange", kick);
}

async function refreshPreview() {
  try {
    const response = await fetch("preview.jpg", { credentials: "same-origin" });
    if (response.status === 401) { loggedOut(); return; }
    const img = $("preview");
    if (response.status === 200) {
      const old = img.src;
      img.src = URL.createObjectURL(await response.blob());
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      $("no-preview").hidden = true;
    } else {
      $("no-preview").hidden = false;
    }
  } catch (e) {
    // the next refresh tries again
  }
}

// -- the event log --------------------------------------------------------------------------------

// Durations in words; other values through the catalogue when it knows them.
function shown(key, value) {
  if (typeof value === "number" && (key.endsWith("_s") || key === "valid_minutes")) {
    const seconds = key === "valid_minutes" ? value * 60 : value;
    if (seconds < 60) return T.seconds.replace("{n}", String(seconds));
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return T.minutes.replace("{n}", String(minutes));
    return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
  }
  return T["value_" + String(value)] || String(value);
}

function describe(entry) {
  const colon = LANG === "fr" ? " : " : ": ";
  const details = Object.entries(entry)
    .filter(([key]) => key !== "at" && key !== "kind")
    .map(([key, value]) => (T["field_" + key] || key) + colon + shown(key, value))
    .join(", ");
  const what = T["kind_" + entry.kind] || entry.kind;
  return details ? `${what} (${details})` : what;
}

function whenText(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleString(LOCALE, {
    day: "2-digit", month: "2-digit", year: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

async function refreshEvents() {
  try {
    const entries = await getJSON("api/events");
    const rows = entries.slice(-50).reverse().map((entry) => {
      const tr = document.createElement("tr");
      const when = document.createElement("td");
      when.textContent = whenText(entry.at);
      const what = document.createElement("td");
      what.textContent = describe(entry);
      tr.append(when, what);
      return tr;
    });
    $("events").replaceChildren(...rows);
    $("events-empty").hidden = rows.length > 0;
  } catch (e) {
    // the next refresh tries again
  }
}

soundShown();
drawRects();
loadMask();
poll();
whileVisible(wrap, refreshPreview, 1500);
whileVisible($("event-log"), refreshEvents, 5000);
