// The viewer's words. One JSON file per language, lang/<code>.json = {"name": what the language
// calls itself, "text": {...}}; the relay lists the files present (lang/), so adding a language
// is adding one file. A language file is data, never code: it cannot reach the link's key. The
// phone's choice is remembered (localStorage "viewer-lang"); the browser's language is the
// default; a word a file lacks is said in English.

export const T = {};
export const i18n = { lang: "en", languages: [{ code: "en", name: "English" }] };

const KEY = "viewer-lang";
const CODE = /^[a-z]{2,3}(-[a-z0-9]{2,8})?$/;

async function json(path) {
  const response = await fetch(path, { cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

function preferred(codes) {
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const lower = String(tag).toLowerCase();
    if (codes.includes(lower)) return lower;
    if (codes.includes(lower.split("-")[0])) return lower.split("-")[0];
  }
  return "en";
}

function remembered() {
  try { return localStorage.getItem(KEY); } catch (_) { return null; }
}

// Loads the list and the phone's language (its remembered choice, else the browser's).
export async function loadLanguages() {
  try {
    const listed = (await json("lang/")).languages.filter((l) => CODE.test(l.code) && typeof l.name === "string");
    if (listed.length) i18n.languages = listed;
  } catch (_) { /* English only */ }
  const codes = i18n.languages.map((l) => l.code);
  const chosen = remembered();
  await use(codes.includes(chosen) ? chosen : preferred(codes));
}

async function use(code) {
  let words = {};
  try { words = (await json("lang/en.json")).text; } catch (_) { /* the page's own English */ }
  if (code !== "en") {
    try { words = { ...words, ...(await json(`lang/${code}.json`)).text }; } catch (_) { code = "en"; }
  }
  for (const key of Object.keys(T)) delete T[key];
  Object.assign(T, words);
  i18n.lang = code;
}

// The viewer picked a language: kept on this phone for the next time.
export async function choose(code) {
  if (!i18n.languages.some((l) => l.code === code)) return;
  try { localStorage.setItem(KEY, code); } catch (_) { /* not kept */ }
  await use(code);
}
