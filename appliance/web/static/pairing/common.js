// What every part of the staff's page shares: its words, the box's API (with a clear message in
// the page's language when the box does not answer), and times in the page's locale.

export const app = document.getElementById("app");
export const T = JSON.parse(app.dataset.texts);
export const LOCALE = T._locale || "en-GB";
export const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;

// State the tests read (nothing secret: what the page shows).
export const pairing = { chimes: 0, sound: "off", box: "ok" };
window.pairing = pairing;

/** The box did not answer at all (stopped, unplugged, off the network, or too slow). */
export class BoxGone extends Error {
  constructor() {
    super(T.not_done_gone);
  }
}

export function loggedOut() {
  location.reload(); // the server shows the login page
}

async function send(path, options, timeout) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  try {
    return await fetch(path, { ...options, credentials: "same-origin", signal: controller.signal });
  } catch (e) {
    throw new BoxGone(); // never the browser's own "Failed to fetch"
  } finally {
    clearTimeout(timer);
  }
}

function failed(status, data) {
  return new Error((data && data.error) || T.not_done_error.replace("{status}", String(status)));
}

export async function post(path, body) {
  const response = await send(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
  }, 8000);
  if (response.status === 401) loggedOut();
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw failed(response.status, data);
  return data;
}

export async function getJSON(path, timeout = 3000) {
  const response = await send(path, {}, timeout);
  if (response.status === 401) { loggedOut(); throw new Error("login"); }
  if (!response.ok) throw failed(response.status, await response.json().catch(() => ({})));
  return response.json();
}

export async function getBlob(path) {
  return send(path, {}, 5000);
}

export function showError(message) {
  $("error-text").hidden = !message;
  $("error-text").textContent = message || "";
}

export function hhmm(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

export function mss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

/** A duration in the page's words: "15 min", "1 h", "1 h 30 min". */
export function duration(minutes) {
  if (minutes < 60) return T.minutes.replace("{n}", String(minutes));
  const rest = minutes % 60;
  const hours = T.hours.replace("{n}", String(Math.floor(minutes / 60)));
  return rest ? `${hours} ${String(rest).padStart(2, "0")} min` : hours;
}

// The preview (the scanner's picture, unmasked) and the event log are fetched only while they
// are on screen and the tab is visible: no work for the box otherwise.
export function whileVisible(element, refresh, period) {
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
