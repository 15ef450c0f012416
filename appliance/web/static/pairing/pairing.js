// The staff's pairing page: live status without reloading, the actions, the mask editor.
// No third-party code; runs in any current browser on a tablet.

const app = document.getElementById("app");
const T = JSON.parse(app.dataset.texts);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || String(response.status));
  return data;
}

function showError(message) {
  $("error-text").hidden = !message;
  $("error-text").textContent = message || "";
}

let lastLink = null;

function render(status) {
  const state = status.state;
  document.body.dataset.state = state;
  $("state-text").textContent = T["state_" + state] || state;
  $("signal-text").hidden = !(status.signal && !["present", "unknown"].includes(status.signal) && state !== "idle");
  $("clock-text").hidden = status.clock_ok !== false;
  const session = status.session;
  const viewer = session && session.viewer;
  $("viewer").hidden = !viewer;
  if (viewer) {
    const code = viewer.code || "";
    $("code").textContent = code ? code.slice(0, 3) + " " + code.slice(3) : "…";
    $("viewer-name-row").hidden = !viewer.name;
    $("viewer-name").textContent = viewer.name || "";
  }
  $("admit").hidden = state !== "waiting";
  $("refuse").hidden = state !== "waiting";
  $("pause").hidden = state !== "live";
  $("resume").hidden = state !== "paused";
  $("end").hidden = !["ready", "waiting", "live", "paused"].includes(state);
  $("new-session").hidden = state !== "idle";
  $("session").hidden = !session;
  if (session) {
    if (session.url !== lastLink) {
      lastLink = session.url;
      $("qr").src = "qr.svg?" + Date.now();
    }
    $("expires").textContent = new Date(session.expires * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  } else {
    lastLink = null;
  }
}

async function refresh() {
  try {
    const response = await fetch("api/status", { credentials: "same-origin" });
    if (response.status === 401) { location.reload(); return; }
    render(await response.json());
  } catch (e) {
    /* the box is restarting: try again */
  }
}

for (const action of ["admit", "refuse", "pause", "resume", "end"]) {
  $(action).addEventListener("click", async () => {
    const question = $(action).dataset.confirm;
    if (question && !confirm(question)) return;
    try { showError(""); await post("api/" + action); } catch (e) { showError(e.message); }
    refresh();
  });
}

$("open-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    showError("");
    await post("api/open", { consent: $("consent").checked, valid_minutes: Number($("valid").value) });
    $("consent").checked = false;
  } catch (e) { showError(e.message); }
  refresh();
});

// -- the mask editor: rectangles as fractions of the picture ------------------------------------
let rects = [];
const wrap = $("preview-wrap");

function drawRects() {
  const layer = $("rects");
  layer.replaceChildren();
  rects.forEach((r, i) => {
    const div = document.createElement("div");
    div.className = "rect";
    div.style.left = r[0] * 100 + "%"; div.style.top = r[1] * 100 + "%";
    div.style.width = r[2] * 100 + "%"; div.style.height = r[3] * 100 + "%";
    const remove = document.createElement("button");
    remove.type = "button"; remove.textContent = "×";
    remove.addEventListener("pointerdown", (e) => e.stopPropagation());
    remove.addEventListener("click", () => { rects.splice(i, 1); drawRects(); });
    div.append(remove);
    layer.append(div);
  });
}

let start = null;
function fraction(event) {
  const box = wrap.getBoundingClientRect();
  return [
    Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
    Math.min(1, Math.max(0, (event.clientY - box.top) / box.height)),
  ];
}
wrap.addEventListener("pointerdown", (event) => { start = fraction(event); wrap.setPointerCapture(event.pointerId); });
wrap.addEventListener("pointerup", (event) => {
  if (!start) return;
  const end = fraction(event);
  const r = [Math.min(start[0], end[0]), Math.min(start[1], end[1]), Math.abs(end[0] - start[0]), Math.abs(end[1] - start[1])];
  start = null;
  if (r[2] > 0.005 && r[3] > 0.005) { rects.push(r); drawRects(); }
});

$("mask-save").addEventListener("click", async () => {
  try {
    const saved = await post("api/mask", { rects });
    rects = saved.rects; drawRects();
    $("mask-saved").hidden = false;
    setTimeout(() => { $("mask-saved").hidden = true; }, 3000);
  } catch (e) { showError(e.message); }
});
$("mask-clear").addEventListener("click", () => { rects = []; drawRects(); });

async function loadMask() {
  const response = await fetch("api/mask", { credentials: "same-origin" });
  if (response.ok) { rects = (await response.json()).rects; drawRects(); }
}

async function refreshPreview() {
  const response = await fetch("preview.jpg", { credentials: "same-origin" });
  const img = $("preview");
  if (response.status === 200) {
    const url = URL.createObjectURL(await response.blob());
    const old = img.src;
    img.src = url;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    $("no-preview").hidden = true;
  } else {
    $("no-preview").hidden = false;
  }
}

async function refreshEvents() {
  const response = await fetch("events.json", { credentials: "same-origin" });
  if (!response.ok) return;
  const rows = (await response.json()).slice(-20).reverse().map((e) => {
    const tr = document.createElement("tr");
    const when = document.createElement("td");
    when.textContent = new Date(e.at * 1000).toLocaleString();
    const what = document.createElement("td");
    what.textContent = e.kind + Object.entries(e).filter(([k]) => !["at", "kind"].includes(k)).map(([k, v]) => ` ${k}=${v}`).join("");
    tr.append(when, what);
    return tr;
  });
  $("events").replaceChildren(...rows);
}

refresh(); loadMask(); refreshPreview(); refreshEvents();
setInterval(refresh, 1000);
setInterval(refreshPreview, 3000);
setInterval(refreshEvents, 5000);
