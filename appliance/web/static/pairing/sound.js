// The knock's chime: a tone made here (WebAudio). The staff's choice (on or off) is kept on this
// tablet (localStorage), so a reload keeps the sound on. Browsers let a page make sound only
// after a user gesture: until the staff touch the page, a reloaded page whose sound is on says
// the browser holds it back, with a one-tap button to turn it back on.

import { $, pairing } from "./common.js";

const KEY = "pairing.sound";
let audio = null;

function chosen() {
  try { return localStorage.getItem(KEY); } catch (e) { return null; }
}

function choose(value) {
  try { localStorage.setItem(KEY, value); } catch (e) { /* private browsing: not kept */ }
}

function shown() {
  const running = audio !== null && audio.state === "running";
  const on = chosen() === "on";
  pairing.sound = audio ? audio.state : "off";
  $("sound").hidden = running || on;
  $("sound-blocked").hidden = running || !on; // on, but the browser holds it back
  $("sound-on").hidden = !running;
}

function start() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  if (!audio) {
    audio = new Context();
    audio.addEventListener("statechange", shown);
  }
  if (audio.state === "suspended") audio.resume().then(shown, shown);
  shown();
}

function turnOn() {
  choose("on");
  start();
}

function turnOff() {
  choose("off");
  if (audio) audio.suspend().then(shown, shown);
  shown();
}

export function chime() {
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

// The first tap or key anywhere turns the sound on, unless the staff turned it off.
function gesture(event) {
  if (chosen() === "off" || event.target.closest("#sound-off")) return;
  turnOn();
}

for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, gesture, { capture: true });
}
$("sound").addEventListener("click", turnOn);
$("sound-blocked").addEventListener("click", turnOn);
$("sound-off").addEventListener("click", turnOff);
if (chosen() === "on") start(); // kept from before the reload
shown();
