// Who hears what: the session's three sound switches (the scanner's sound, the room microphone,
// talk-back), each shown with what it means now, and turned through the box's core like every
// staff command (api/sound). The room microphone going on is loud on the page, as on the box's
// LED; the box turns it off by itself at every pause.

import { $, T, post, showError } from "./common.js";

const SWITCHES = ["scanner", "microphone", "talkback"];
const OPEN_STATES = ["ready", "waiting", "live", "paused"];
let current = {};
let after = () => {};

function line(key) {
  const li = document.createElement("li");
  li.textContent = T[key] || key;
  return li;
}

export function renderHearing(status) {
  const sound = status.sound;
  const open = Boolean(sound && OPEN_STATES.includes(status.state));
  $("hearing").hidden = !open;
  document.body.dataset.microphone = open && sound.microphone ? "live" : "off";
  if (!open) return;
  current = sound.switches;
  const lines = [];
  if ("scanner" in current) lines.push(current.scanner ? "hearing_scanner_on" : "hearing_scanner_muted");
  if ("microphone" in current && !sound.microphone) lines.push("hearing_microphone_off");
  if ("talkback" in current) lines.push(current.talkback ? "hearing_talkback_allowed" : "hearing_talkback_off");
  $("hearing-list").replaceChildren(...lines.map(line));
  $("hearing-microphone-live").hidden = !sound.microphone;
  $("hearing-talking").hidden = !sound.talkback;
  for (const name of SWITCHES) {
    const button = $("switch-" + name);
    const has = name in current;
    button.hidden = !has || (name === "microphone" && status.state !== "live" && !current[name]);
    if (!has) continue;
    const on = current[name];
    // what pressing it does: the scanner's is a mute, the others switch on
    button.textContent = T[`switch_${name}_${on ? "off" : "on"}`];
    button.setAttribute("aria-pressed", String(on));
  }
}

export function initHearing(refresh) {
  after = refresh;
  for (const name of SWITCHES) {
    $("switch-" + name).addEventListener("click", async () => {
      try {
        showError("");
        await post("api/sound", { switch: name, on: !current[name] });
      } catch (e) {
        showError(e.message);
      }
      after();
    });
  }
}
