// The event log: what happened and when, with no personal data, in the page's words.

import { $, T, LOCALE, getJSON, whileVisible } from "./common.js";

// Durations in words; other values through the catalogue when it knows them.
function shown(key, value) {
  if (typeof value === "number" && (key.endsWith("_s") || key === "valid_minutes")) {
    const seconds = key === "valid_minutes" ? value * 60 : value;
    if (seconds < 60) return T.seconds.replace("{n}", String(seconds));
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return T.minutes.replace("{n}", String(minutes));
    return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
  }
  return T["value_" + String(value)] || String(value);
}

// A field's label may depend on the entry's kind ("count" of what: messages, rectangles).
function label(kind, key) {
  return T["field_" + key + "@" + kind] || T["field_" + key] || key;
}

function describe(entry) {
  const colon = T.colon;
  const details = Object.entries(entry)
    .filter(([key]) => key !== "at" && key !== "kind")
    .map(([key, value]) => label(entry.kind, key) + colon + shown(key, value))
    .join(", ");
  const what = T["kind_" + entry.kind] || entry.kind;
  return details ? `${what} (${details})` : what;
}

function whenText(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleString(LOCALE, {
    day: "2-digit", month: "2-digit", year: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

async function refreshEvents() {
  try {
    const entries = await getJSON("api/events");
    const rows = entries.slice(-50).reverse().map((entry) => {
      const tr = document.createElement("tr");
      const when = document.createElement("td");
      when.textContent = whenText(entry.at);
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

whileVisible($("event-log"), refreshEvents, 5000);
