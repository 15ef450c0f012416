// The privacy mask editor: rectangles as fractions of the picture, drawn over the scanner's
// picture (unmasked), saved to the box.

import { $, T, getBlob, getJSON, loggedOut, post, showError, whileVisible } from "./common.js";

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

async function refreshPreview() {
  try {
    const response = await getBlob("preview.jpg");
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

drawRects();
loadMask();
whileVisible(wrap, refreshPreview, 1500);
