// The room's sound line: the room microphone (when the staff switch it on) and talk-back (when
// the staff allow it). Every connection offers a second audio m-line, sendrecv, with no track:
// it asks for nothing and sends nothing until the co-parent holds "Hold to talk". The first hold
// asks for the microphone (getUserMedia, HTTPS only); the track is then kept for the page's life
// and only its `enabled` flag follows the button (iOS: never stop it and ask again), put on each
// new connection's sender with replaceTrack (no renegotiation: the line was sendrecv from the
// start). While held the page tells the box {"type": "talk", "on": true} on the status channel;
// the box plays the voice only while the staff allow it and the picture is live. The button is
// there only when allowed, and says "The room hears you" while held. The room's sound plays in
// its own <audio>, muted and unmuted with the picture's sound (sound.js).
import { T } from "./i18n.js";
import { drawSound } from "./sound.js";

const button = document.getElementById("talk");
const room = document.getElementById("room-audio");
const line = { transceiver: null, channel: null, allowed: false, live: false, held: false };
let mic = null;        // the microphone's track, once the co-parent allowed it
let asking = null;     // getUserMedia under way (the first hold)
let denied = false;

// A new connection: its room line (before the offer), and where to say the button's state.
export function roomLine(pc, channel) {
  line.channel = channel;
  line.allowed = line.live = line.held = false;
  line.transceiver = pc.addTransceiver("audio", { direction: "sendrecv" });
  if (mic) { mic.enabled = false; line.transceiver.sender.replaceTrack(mic).catch(() => {}); }
  draw();
}

// The remote track of the room line (the room microphone): true when it was, so the caller
// keeps it out of the picture's stream.
export function roomTrack(event) {
  if (!line.transceiver || event.transceiver !== line.transceiver) return false;
  room.srcObject = new MediaStream([event.track]);
  room.muted = document.getElementById("video").muted;  // heard once the co-parent tapped for sound
  room.play().catch(() => {});
  drawSound();
  return true;
}

// The box's status: whether talk-back is allowed now, whether the room is heard.
export function talkStatus(msg) {
  if (!msg || msg.type !== "status") return;
  line.live = msg.state === "live";
  line.allowed = msg.talkback === true && line.live;
  document.body.dataset.room = msg.microphone === true ? "on" : "off";
  if (!line.allowed) release();
  draw();
}

// The session is over for this phone: the microphone is given back.
export function talkEnded() {
  release();
  line.allowed = false;
  if (mic) { mic.stop(); mic = null; }
  draw();
}

function say(on) {
  const channel = line.channel;
  if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "talk", on }));
}

async function press() {
  if (!line.allowed || line.held) return;
  line.held = true;
  draw();
  if (!mic) {
    asking = asking || navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    }).then((stream) => {
      mic = stream.getAudioTracks()[0];
      mic.enabled = false;
      denied = false;
      return mic;
    }).catch(() => { denied = true; return null; }).finally(() => { asking = null; });
    const track = await asking;
    if (!track) { line.held = false; draw(); return; }
    if (line.transceiver) await line.transceiver.sender.replaceTrack(track).catch(() => {});
  }
  if (!line.held || !line.allowed || !mic) return;  // let go while the phone asked
  mic.enabled = true;
  say(true);
  draw();
}

function release() {
  if (!line.held) return;
  line.held = false;
  if (mic) mic.enabled = false;
  say(false);
  draw();
}

export function drawTalk() { draw(); }

function draw() {
  button.hidden = !line.allowed;
  const talking = line.held && Boolean(mic) && mic.enabled;
  document.body.dataset.talk = !line.allowed ? "off" : talking ? "talking" : "allowed";
  button.setAttribute("aria-pressed", String(talking));
  const label = talking ? T.talk_held : denied ? T.talk_denied : line.held ? T.talk_asking : T.talk;
  button.textContent = label || button.textContent;
}

// Held with a finger, a mouse or the keyboard; let go anywhere (or the page hidden) stops it.
button.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  if (button.setPointerCapture) button.setPointerCapture(event.pointerId);
  press();
});
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) button.addEventListener(type, release);
button.addEventListener("contextmenu", (event) => event.preventDefault());  // a long press is not a menu
button.addEventListener("keydown", (event) => {
  if ((event.key === " " || event.key === "Enter") && !event.repeat) { event.preventDefault(); press(); }
});
button.addEventListener("keyup", (event) => { if (event.key === " " || event.key === "Enter") release(); });
document.addEventListener("visibilitychange", () => { if (document.hidden) release(); });
