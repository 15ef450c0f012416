// The sound. The picture autoplays muted (every phone's rule: no autoplay with sound); the
// co-parent's tap on "Tap for sound" unmutes it inside the tap's own handler (the only place
// iOS Safari and Chrome allow it); the same button mutes it again. The page says which it is in
// <body data-sound="none|muted|on"> (the browser tests read it) and, on each change, fires
// "soundchange" on the document (viewer.js tells the box: lip sync while the sound is on). The
// room's sound (talk.js), in its own element, is muted and unmuted with it.
import { T } from "./i18n.js";

const video = document.getElementById("video");
const button = document.getElementById("sound");
const room = document.getElementById("room-audio");  // the room's sound (talk.js) follows
let tapped = false;
let said = "none";

export function drawSound() {
  const has = Boolean((video.srcObject && video.srcObject.getAudioTracks().length) || room.srcObject);
  button.hidden = !has;
  const state = !has ? "none" : video.muted ? "muted" : "on";
  document.body.dataset.sound = state;
  if (state !== said) {
    said = state;
    document.dispatchEvent(new Event("soundchange"));
  }
  button.setAttribute("aria-pressed", String(has && !video.muted));
  const label = video.muted ? (tapped ? T.sound_unmute : T.sound_tap) : T.sound_mute;
  button.textContent = label || button.textContent;
}

button.addEventListener("click", () => {
  tapped = true;
  video.muted = !video.muted;
  room.muted = video.muted;
  if (!video.muted) {
    video.play().catch(() => { video.muted = room.muted = true; drawSound(); });
    if (room.srcObject) room.play().catch(() => {});
  }
  drawSound();
});
video.addEventListener("volumechange", drawSound);
