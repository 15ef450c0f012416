// The staff's pairing page: the status every second without reloading, the staff's commands,
// the privacy mask editor and the event log. No third-party code; a tablet's browser is enough.

const app = document.getElementById("app");
const T = JSON.parse(app.dataset.texts);
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
  return new Date(unixSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

// -- status ---------------------------------------------------------------------------------------

let lastLink = null;
let qrVersion = 0;

function render(status) {
  const state = status.state;
  const signal = status.signal || "unknown";
  document.body.dataset.state = state;
  document.body.dataset.signal = signal;
  $("state-text").textContent = T["state_" + state] || state;

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
    $("viewer-offline").hidden = viewer.connected !== false;
  }

  $("admit").hidden = state !== "waiting";
  $("refuse").hidden = state !== "waiting";
  $("pause").hidden = state !== "live";
  $("resume").hidden = state !== "paused";
  $("end").hidden = !OPEN_STATES.includes(state);
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

for (const action of ["admit", "refuse", "pause", "resume", "end"]) {
  $(action).addEventListener("click", async () => {
    if (action === "end" && !window.confirm(T.confirm_end)) return;
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
  } catch (e) {
    showError(e.message);
  }
  refresh();
});

// -- the privacy mask editor: rectangles as fractions of the picture -----------------------------

let rects = [];
const wrap = $("preview-wrap");

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
    div.className = "rect";
    div.textContent = String(i + 1);
    place(div, r);
    layer.append(div);

    const item = document.createElement("li");
    item.textContent = `${T.mask_rect} ${i + 1}: x ${percent(r[0])}, y ${percent(r[1])}, ${percent(r[2])} × ${percent(r[3])}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "quiet";
    remove.textContent = T.delete;
    remove.addEventListener("click", () => { rects.splice(i, 1); drawRects(); });
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
    $("mask-saved").hidden = true;
  }
  drawRects();
}
wrap.addEventListener("pointerup", (event) => finish(event, true));
wrap.addEventListener("pointercancel", (event) => finish(event, false));

$("mask-save").addEventListener("click", async () => {
  try {
    showError("");
    rects = (await post("api/mask", { rects })).rects;
    drawRects();
    $("mask-saved").hidden = false;
  } catch (e) {
    showError(e.message);
  }
});
$("mask-clear").addEventListener("click", () => { rects = []; $("mask-saved").hidden = true; drawRects(); });

async function loadMask() {
  try {
    rects = (await getJSON("api/mask")).rects;
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

function describe(entry) {
  const details = Object.entries(entry)
    .filter(([key]) => key !== "at" && key !== "kind")
    .map(([key, value]) => `${key}: ${value}`)
    .join(", ");
  const what = T["kind_" + entry.kind] || entry.kind;
  return details ? `${what} (${details})` : what;
}

async function refreshEvents() {
  try {
    const entries = await getJSON("api/events");
    const rows = entries.slice(-50).reverse().map((entry) => {
      const tr = document.createElement("tr");
      const when = document.createElement("td");
      when.textContent = new Date(entry.at * 1000).toLocaleString();
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

drawRects();
loadMask();
poll();
whileVisible(wrap, refreshPreview, 1500);
whileVisible($("event-log"), refreshEvents, 5000);
