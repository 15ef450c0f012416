// The signalling envelope of docs/protocol.md, in WebCrypto: the viewer's side of the handshake.
// The box runs the same in Python (appliance/session/seal.py); both check tests/vectors/seal-v1.json.
// Points are 65-byte uncompressed P-256, signatures raw r||s, all binary in JSON is base64url.

const LABEL = "appliance-seal-v1";
const VERSION = 1;
const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export class SealError extends Error {}

export function b64u(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function unb64u(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) throw new SealError("not base64url");
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const utf8 = (s) => enc.encode(s);
const len8 = (bytes) => { if (bytes.length > 255) throw new SealError("field too long"); return Uint8Array.of(bytes.length); };
function u64(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}
const sha256 = async (...parts) => new Uint8Array(await subtle.digest("SHA-256", concat(...parts)));

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export async function hkdf(ikm, salt, info, length = 32) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8);
  return new Uint8Array(bits);
}

async function gcm(keyBytes, usage) {
  return subtle.importKey("raw", keyBytes, { name: "AES-GCM" }, false, [usage]);
}

async function gcmEncrypt(keyBytes, nonce, aad, plain) {
  const key = await gcm(keyBytes, "encrypt");
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, plain));
}

async function gcmDecrypt(keyBytes, nonce, aad, ct) {
  const key = await gcm(keyBytes, "decrypt");
  try {
    return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, ct));
  } catch (_) {
    throw new SealError("the message does not open");
  }
}

function parse(plain) {
  let body;
  try { body = JSON.parse(dec.decode(plain)); } catch (_) { throw new SealError("not JSON"); }
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new SealError("not an object");
  return body;
}

// -- links and fingerprints -----------------------------------------------------------------------

export function parseFragment(fragment) {
  const parts = fragment.replace(/^#/, "").split(".");
  if (parts.length !== 2) throw new SealError("not a session link");
  const secret = unb64u(parts[0]), boxKeyHash = unb64u(parts[1]);
  if (secret.length !== 32 || boxKeyHash.length !== 32) throw new SealError("not a session link");
  return { secret, boxKeyHash };
}

export function dtlsFingerprint(sdp) {
  const found = new Set();
  for (const m of sdp.matchAll(/^a=fingerprint:sha-256 ([0-9A-Fa-f:]{95})\s*$/gim)) found.add(m[1].toUpperCase());
  if (found.size !== 1) throw new SealError("the description must carry exactly one sha-256 fingerprint");
  const hex = [...found][0].replace(/:/g, "");
  return Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
}

// -- keys -----------------------------------------------------------------------------------------

export async function newSeat() {
  return subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
}

export async function publicPoint(keyPair) {
  return new Uint8Array(await subtle.exportKey("raw", keyPair.publicKey));
}

async function ecdh(privateKey, point) {
  let pub;
  try {
    pub = await subtle.importKey("raw", point, { name: "ECDH", namedCurve: "P-256" }, false, []);
  } catch (_) {
    throw new SealError("not a point on P-256");
  }
  return new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: pub }, privateKey, 256));
}

export async function knockKey(secret, salt, room, boxKeyHash) {
  const r = utf8(room);
  return hkdf(secret, salt, concat(utf8(LABEL + " knock"), len8(r), r, boxKeyHash));
}

export async function transcript(room, boxKeyHash, salt, seatPub, ephPub) {
  const r = utf8(room);
  return sha256(utf8(LABEL + " transcript"), len8(r), r, boxKeyHash, salt, seatPub, ephPub);
}

export async function directionKeys(secret, z, th) {
  return {
    b2v: await hkdf(secret, z, concat(utf8(LABEL + " b2v"), th)),
    v2b: await hkdf(secret, z, concat(utf8(LABEL + " v2b"), th)),
  };
}

export async function commitment(fpBox, nonce) {
  return sha256(utf8(LABEL + " commit"), fpBox, nonce);
}

export async function verificationCode(secret, z, th, fpBox, fpViewer) {
  const raw = await hkdf(secret, z, concat(utf8(LABEL + " code"), th, fpBox, fpViewer), 4);
  const n = new DataView(raw.buffer).getUint32(0);
  return String(n % 1000000).padStart(6, "0");
}

// -- the sealed channel ---------------------------------------------------------------------------

export class Channel {
  constructor(room, keys, mine) {
    this.room = utf8(room);
    this.keys = keys;
    this.mine = mine;
    this.theirs = mine === "b2v" ? "v2b" : "b2v";
    this.nextOut = 0;
    this.lastIn = -1;
  }

  aad(dir, seq) { return concat(utf8(LABEL), len8(this.room), this.room, utf8(dir), u64(seq)); }

  async seal(body) {
    const seq = this.nextOut++;
    const ct = await gcmEncrypt(this.keys[this.mine], concat(new Uint8Array(4), u64(seq)),
      this.aad(this.mine, seq), utf8(JSON.stringify(body)));
    return { v: VERSION, seq, ct: b64u(ct) };
  }

  async open(wire) {
    if (!wire || wire.v !== VERSION || !Number.isSafeInteger(wire.seq) || wire.seq < 0 || typeof wire.ct !== "string"
      || Object.keys(wire).length !== 3) throw new SealError("not a sealed message");
    if (wire.seq <= this.lastIn) throw new SealError("a replayed or reordered message");
    const plain = await gcmDecrypt(this.keys[this.theirs], concat(new Uint8Array(4), u64(wire.seq)),
      this.aad(this.theirs, wire.seq), unb64u(wire.ct));
    this.lastIn = wire.seq;
    return parse(plain);
  }
}

// -- the viewer's handshake -----------------------------------------------------------------------

export class ViewerHandshake {
  // seat: a non-extractable ECDH key pair (kept for the room); salt: fresh per knock.
  constructor(room, secret, boxKeyHash, seat, name = null, salt = null) {
    this.room = room;
    this.secret = secret;
    this.boxKeyHash = boxKeyHash;
    this.seat = seat;
    this.name = name;
    this.salt = salt || globalThis.crypto.getRandomValues(new Uint8Array(32));
    this.channel = null;
  }

  async knock() {
    this.seatPub = await publicPoint(this.seat);
    const body = { type: "knock", seat: b64u(this.seatPub) };
    if (this.name) body.name = this.name.slice(0, 40);
    const key = await knockKey(this.secret, this.salt, this.room, this.boxKeyHash);
    const ct = await gcmEncrypt(key, new Uint8Array(12), concat(utf8(LABEL + " knock"), utf8(this.room)),
      utf8(JSON.stringify(body)));
    return { v: VERSION, salt: b64u(this.salt), ct: b64u(ct) };
  }

  async openReply(wire) {
    if (!wire || Object.keys(wire).sort().join() !== "box,ct,eph,sig,v" || wire.v !== VERSION) {
      throw new SealError("not a reply");
    }
    const boxPub = unb64u(wire.box);
    if (!equal(await sha256(boxPub), this.boxKeyHash)) throw new SealError("the reply is not from the box this link names");
    const ephPub = unb64u(wire.eph);
    const ct = unb64u(wire.ct);
    const sig = unb64u(wire.sig);
    const th = await transcript(this.room, this.boxKeyHash, this.salt, this.seatPub, ephPub);
    let verified = false;
    try {
      const key = await subtle.importKey("raw", boxPub, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
      verified = sig.length === 64 && await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, sig,
        concat(utf8(LABEL + " reply"), th, await sha256(ct)));
    } catch (_) {
      verified = false;
    }
    if (!verified) throw new SealError("the reply's signature does not verify");
    const z = await ecdh(this.seat.privateKey, ephPub);
    const channel = new Channel(this.room, await directionKeys(this.secret, z, th), "v2b");
    const body = await channel.open({ v: VERSION, seq: 0, ct: wire.ct });
    const commit = unb64u(body.commit);
    if (body.type !== "reply" || commit.length !== 32 || !Array.isArray(body.ice_servers)
      || !Number.isInteger(body.expires)) throw new SealError("not a reply");
    this.channel = channel;
    this.z = z;
    this.th = th;
    this.commit = commit;
    return { iceServers: body.ice_servers, expires: body.expires };
  }

  async offer(sdp) {
    if (!this.channel) throw new SealError("no reply yet");
    return this.channel.seal({ type: "offer", sdp });
  }

  async openAnswer(wire) {
    if (!this.channel) throw new SealError("no reply yet");
    const body = await this.channel.open(wire);
    if (body.type !== "answer" || typeof body.sdp !== "string") throw new SealError("not an answer");
    const fpBox = dtlsFingerprint(body.sdp);
    if (!equal(await commitment(fpBox, unb64u(body.commit_nonce)), this.commit)) {
      throw new SealError("the answer's fingerprint is not the one the box committed to");
    }
    this.fpBox = fpBox;
    return body.sdp;
  }

  async code(fpViewer) {
    if (!this.fpBox) throw new SealError("no answer yet");
    return verificationCode(this.secret, this.z, this.th, this.fpBox, fpViewer);
  }

  async seal(body) { return this.channel.seal(body); }

  async open(wire) { return this.channel.open(wire); }
}
