// The viewer's controls beside the screens: the language picker, "Send this link" on the join
// screen (the whole link, with its key: the address bar no longer has it), the picture enlarged
// without turning the phone, and the session's end announced in its last minutes.

import { T, choose, i18n } from "./i18n.js";

const $ = (id) => document.getElementById(id);

// -- the language: every language present, each by its own name; the choice is kept ------------
export function languagePicker(redraw) {
  const picker = $("lang");
  picker.replaceChildren(...i18n.languages.map((l) => new Option(l.name, l.code)));
  picker.value = i18n.lang;
  picker.hidden = i18n.languages.length < 2;
  picker.addEventListener("change", async () => {
    await choose(picker.value);
    picker.setAttribute("aria-label", T.language || "Language");
    redraw();
  });
  picker.setAttribute("aria-label", T.language || "Language");
}

// -- "Send this link": only on the join screen, only before the key is used ---------------------
let link = "";
export function shareable(whole) {
  link = whole;
  if (!whole) {
    $("share-link").value = "";
    $("share-manual").hidden = $("share-copied").hidden = true;
  }
}
export const canShare = () => Boolean(link);

$("share-button").addEventListener("click", async () => {
  if (!link) return;
  if (navigator.share) {
    try { await navigator.share({ url: link }); return; } catch (err) { if (err && err.name === "AbortError") return; }
  }
  if (navigator.clipboard && navigator.clipboard.writeText) {
    try { await navigator.clipboard.writeText(link); $("share-copied").hidden = false; return; } catch (_) { /* below */ }
  }
  $("share-link").value = link;
  $("share-manual").hidden = false;
  $("share-link").select();
});

// -- the picture enlarged: it fills the screen's height, the sides reached by sliding -------------
const screen = $("screen");
export function zoom(on) {
  document.body.classList.toggle("zoomed", on);
  $("zoom").setAttribute("aria-pressed", String(on));
  $("zoom").textContent = (on ? T.zoom_out : T.zoom) || $("zoom").textContent;
  screen.scrollLeft = on ? (screen.scrollWidth - screen.clientWidth) / 2 : 0;
}
$("zoom").addEventListener("click", () => zoom(!document.body.classList.contains("zoomed")));
$("video").addEventListener("dblclick", () => zoom(!document.body.classList.contains("zoomed")));

// -- the session's end, said from five minutes before (the box's signed expiry, or its update) ---
const WARN_MS = 5 * 60 * 1000;
export function endsSoon(expires, watching) {
  const end = expires * 1000;
  const soon = Boolean(expires) && watching && Date.now() >= end - WARN_MS && Date.now() < end;
  $("ends").hidden = !soon;
  if (soon) {
    const time = new Date(end).toLocaleTimeString(i18n.lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    $("ends").textContent = (T.ends || "{time}").replace("{time}", time);
  }
}
