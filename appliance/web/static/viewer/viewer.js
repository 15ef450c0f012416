// The viewer: connects to the box, plays the stream, shows the session state, reconnects.
// No third-party code, no build step. Runs in iOS Safari and Android Chrome.

const TEXT = {
  en: {
    connecting: ["Connecting…", ""],
    waiting: ["Waiting for the sonographer", "The picture appears as soon as the exam starts."],
    live: ["", ""],
    paused: ["Paused", "The sonographer paused the picture. It will be back shortly."],
    ended: ["The session has ended", "Thank you. You can close this page."],
    nosession: ["No session is open", "Waiting for the exam room to open one…"],
    lost: ["Connection lost", "Reconnecting…"],
    unsupported: ["This browser cannot play the stream", "Please open the link in Safari or Chrome."],
    badge: "● Live, not recorded",
    fullscreen: "Full screen",
    notice: "This picture is streamed live from the exam room, encrypted from end to end. Nothing is recorded. Please do not record or share it.",
  },
  fr: {
    connecting: ["Connexion…", ""],
    waiting: ["En attente de l'échographiste", "L'image apparaîtra dès le début de l'examen."],
    live: ["", ""],
    paused: ["En pause", "L'échographiste a mis l'image en pause. Elle va revenir."],
    ended: ["La séance est terminée", "Merci. Vous pouvez fermer cette page."],
    nosession: ["Aucune séance ouverte", "En attente de la salle d'examen…"],
    lost: ["Connexion perdue", "Reconnexion…"],
    unsupported: ["Ce navigateur ne peut pas lire la vidéo", "Ouvrez le lien dans Safari ou Chrome."],
    badge: "● En direct, non enregistré",
    fullscreen: "Plein écran",
    notice: "Cette image est transmise en direct depuis la salle d'examen, chiffrée de bout en bout. Rien n'est enregistré. Merci de ne pas l'enregistrer ni la partager.",
  },
};
const lang = (navigator.language || "en").toLowerCase().startsWith("fr") ? "fr" : "en";
const T = TEXT[lang];

const $ = (id) => document.getElementById(id);
const video = $("video");
const overlay = $("overlay");

// State the tests and benchmarks read; nothing in it is secret.
const viewer = { state: "connecting", pc: null, attempts: 0 };
window.viewer = viewer;

function show(state) {
  viewer.state = state;
  document.body.dataset.state = state;
  const [message, detail] = T[state] || T.connecting;
  $("message").textContent = message;
  $("detail").textContent = detail;
  overlay.hidden = state === "live";
  $("badge").classList.toggle("live", state === "live");
  if (state === "live") keepAwake();
}

function translate() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = T[el.dataset.i18n];
}

// -- the screen stays on while watching ---------------------------------------------------------
let wakeLock = null;
async function keepAwake() {
  if (!("wakeLock" in navigator) || wakeLock) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch (_) { /* not allowed now: fine */ }
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && viewer.state === "live") keepAwake();
});

// -- full screen (iOS only knows the video element's own) ---------------------------------------
$("fullscreen").addEventListener("click", () => {
  const stage = $("stage");
  if (document.fullscreenElement) document.exitFullscreen();
  else if (stage.requestFullscreen) stage.requestFullscreen().catch(() => {});
  else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
});

// -- the connection -----------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

function preferH264(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver?.getCapabilities) return;
  const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
  const rank = (c) => {
    const mime = c.mimeType.toLowerCase();
    if (mime !== "video/h264") return mime === "video/rtx" ? 2 : 9;
    return /profile-level-id=42e0/i.test(c.sdpFmtpLine || "") ? 0 : 1;
  };
  const wanted = codecs.filter((c) => rank(c) < 9).sort((a, b) => rank(a) - rank(b));
  if (wanted.some((c) => c.mimeType.toLowerCase() === "video/h264")) {
    transceiver.setCodecPreferences(wanted);
  }
}

// One connection attempt: resolves when it ends, with the reason.
async function connectOnce(signalling) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  viewer.pc = pc;
  const ended = new Promise((resolve) => {
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") resolve("lost");
      if (pc.connectionState === "disconnected") {
        setTimeout(() => { if (pc.connectionState === "disconnected") resolve("lost"); }, 3000);
      }
    });
    const channel = pc.createDataChannel("status");
    channel.addEventListener("message", (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (_) { return; }
      if (msg.type !== "status" || !(msg.state in TEXT.en)) return;
      show(msg.state);
      if (msg.state === "ended") resolve("ended");
    });
    channel.addEventListener("close", () => resolve(viewer.state === "ended" ? "ended" : "lost"));
  });
  preferH264(pc.addTransceiver("video", { direction: "recvonly" }));
  pc.addEventListener("track", (event) => {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
  });
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIceGathering(pc, 3000);
  let answer;
  try {
    answer = await signalling.offer(pc.localDescription.sdp);
  } catch (err) {
    pc.close();
    return err.reason || "lost";
  }
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  viewer.attempts = 0;
  const reason = await ended;
  signalling.hangup();
  pc.close();
  return reason;
}

// WHEP-style local signalling: POST the offer, the answer comes back.
function localSignalling() {
  let resource = null;
  return {
    async offer(sdp) {
      const response = await fetch("/whep", {
        method: "POST", headers: { "Content-Type": "application/sdp" }, body: sdp,
        cache: "no-store", credentials: "omit",
      });
      if (response.status === 409) throw Object.assign(new Error("no session"), { reason: "nosession" });
      if (response.status !== 201) throw Object.assign(new Error("refused"), { reason: "lost" });
      resource = response.headers.get("Location");
      return response.text();
    },
    hangup() {
      if (resource) fetch(resource, { method: "DELETE", credentials: "omit" }).catch(() => {});
      resource = null;
    },
  };
}

async function main() {
  translate();
  if (!window.RTCPeerConnection) { show("unsupported"); return; }
  show("connecting");
  const signalling = localSignalling();
  for (;;) {
    const reason = await connectOnce(signalling);
    if (reason === "ended") { show("ended"); video.srcObject = null; return; }
    show(reason === "nosession" ? "nosession" : "lost");
    viewer.attempts += 1;
    await sleep(Math.min(10000, 500 * 2 ** Math.min(viewer.attempts, 5)));
  }
}

main();
