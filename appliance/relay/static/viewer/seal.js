// The signalling envelope of docs/protocol.md, in WebCrypto: the viewer's side of the handshake.
// The box runs the same in Python (appliance/session/seal.py); both reproduce
// tests/vectors/seal-v1.json. Points are 65-byte uncompressed P-256, signatures raw r||s, every
// binary value in JSON is base64url. Standard APIs only (iOS Safari, Android Chrome): no BigInt,
// no top-level await.
//
// Viewer side: new ViewerHandshake(room, secret, boxKeyHash, seat, name) then knock(),
// openReply(wire) -> {iceServers, expires}, offer(sdp), openAnswer(wire) -> sdp (throws Ended
// when the box sent "end" instead), code(fpViewer) -> "123456", seal(body), open(wire), forget().
// Every refusal throws SealError. The steps are exported too, for the shared vectors.

const LABEL = "appliance-seal-v1";
const VERSION = 1;
const MAX_NAME = 40;
const END_REASONS = ["ended", "expired", "refused", "released"];
const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export class SealError extends Error {}

// The box sent a sealed "end" (reason: ended, expired, refused or released) where its answer was
// expected.
export class Ended extends Error {
  constructor(reason) { super(reason); this.reason = reason; }
}

export function b64u(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function unb64u(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new SealError("not base64url");
  }
  let s;
  try {
    s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  } catch (_) {
    throw new SealError("not base64url");
  }
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const utf8 = (s) => enc.encode(s);
function len8(bytes) {
  if (bytes.length > 255) throw new SealError("field too long");
  return Uint8Array.of(bytes.length);
}
// 8 bytes big-endian; sequence numbers stay below 2^53, so two 32-bit halves do (no BigInt).
function u64(n) {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(n / 0x100000000));
  view.setUint32(4, n >>> 0);
  return out;
}
const sha256 = async (...parts) => new Uint8Array(await subtle.digest("SHA-256", concat(...parts)));

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

const sameKeys = (obj, keys) => Object.keys(obj).sort().join() === [...keys].sort().join();
const isObject = (x) => !!x && typeof x === "object" && !Array.isArray(x);

export async function hkdf(ikm, salt, info, length = 32) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8);
  return new Uint8Array(bits);
}

async function gcmEncrypt(keyBytes, nonce, aad, plain) {
  const key = await subtle.importKey("raw", keyBytes, { name: "AES-GCM" }, false, ["encrypt"]);
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, plain));
}

async function gcmDecrypt(keyBytes, nonce, aad, ct) {
  const key = await subtle.importKey("raw", keyBytes, { name: "AES-GCM" }, false, ["decrypt"]);
  try {
    return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, ct));
  } catch (_) {
    throw new SealError("the message does not open");
  }
}

function parse(plain) {
  let body;
  try { body = JSON.parse(dec.decode(plain)); } catch (_) { throw new SealError("not JSON"); }
  if (!isObject(body)) throw new SealError("not an object");
  return body;
}

// -- links, names and fingerprints ----------------------------------------------------------------

// {secret, boxKeyHash} from a link's fragment (with or without its "#").
export function parseFragment(fragment) {
  const parts = fragment.replace(/^#/, "").split(".");
  if (parts.length !== 2) throw new SealError("not a session link");
  const secret = unb64u(parts[0]), boxKeyHash = unb64u(parts[1]);
  if (secret.length !== 32 || boxKeyHash.length !== 32) throw new SealError("not a session link");
  return { secret, boxKeyHash };
}

// What is sent of the name typed: no control characters, lone surrogates or format characters
// (Unicode Cf: bidi overrides, zero-width ones, which could show it as a fake code), at most 40
// characters (code points, as the box counts), blank is no name.
export function sanitizeName(name) {
  if (!name) return null;
  const kept = Array.from(String(name)).filter((c) => {
    const cp = c.codePointAt(0);
    return !(cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || (cp >= 0xd800 && cp <= 0xdfff) || /\p{Cf}/u.test(c));
  });
  return Array.from(kept.join("").trim()).slice(0, MAX_NAME).join("").trim() || null;
}

// The sha-256 DTLS fingerprint of an SDP as raw bytes; repeated is fine, two different refused.
export function dtlsFingerprint(sdp) {
  const found = new Set();
  const line = /^a=fingerprint:sha-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})[ \t]*\r?$/gim;
  for (const m of String(sdp).matchAll(line)) found.add(m[1].toUpperCase());
  if (found.size !== 1) throw new SealError("the description must carry exactly one sha-256 fingerprint");
  const hex = [...found][0].replace(/:/g, "");
  return Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
}

// -- keys -----------------------------------------------------------------------------------------

// The seat: a non-extractable ECDH key pair (its public key can still be exported as raw).
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

  key(dir) {
    if (!this.keys) throw new SealError("the channel was closed");
    return this.keys[dir];
  }

  async seal(body) {
    const key = this.key(this.mine);
    const seq = this.nextOut++;
    const ct = await gcmEncrypt(key, concat(new Uint8Array(4), u64(seq)), this.aad(this.mine, seq),
      utf8(JSON.stringify(body)));
    return { v: VERSION, seq, ct: b64u(ct) };
  }

  async open(wire) {
    if (!isObject(wire) || !sameKeys(wire, ["v", "seq", "ct"]) || wire.v !== VERSION) {
      throw new SealError("not a sealed message");
    }
    if (!Number.isSafeInteger(wire.seq) || wire.seq < 0) throw new SealError("bad sequence number");
    if (wire.seq <= this.lastIn) throw new SealError("a replayed or reordered message");
    const plain = await gcmDecrypt(this.key(this.theirs), concat(new Uint8Array(4), u64(wire.seq)),
      this.aad(this.theirs, wire.seq), unb64u(wire.ct));
    this.lastIn = wire.seq;
    return parse(plain);
  }

  forget() { this.keys = null; }
}

// -- the viewer's handshake -----------------------------------------------------------------------

export class ViewerHandshake {
  // seat: the room's ECDH key pair (kept across reconnects); salt: fresh for every knock, given
  // only by the vectors. Make a new handshake for every knock.
  constructor(room, secret, boxKeyHash, seat, name = null, salt = null) {
    this.room = room;
    this.secret = secret;
    this.boxKeyHash = boxKeyHash;
    this.seat = seat;
    this.name = sanitizeName(name);
    this.salt = salt || globalThis.crypto.getRandomValues(new Uint8Array(32));
    this.channel = null;
  }

  // (a)
  async knock() {
    this.seatPub = await publicPoint(this.seat);
    const body = { type: "knock", seat: b64u(this.seatPub) };
    if (this.name) body.name = this.name;
    const key = await knockKey(this.secret, this.salt, this.room, this.boxKeyHash);
    const ct = await gcmEncrypt(key, new Uint8Array(12), concat(utf8(LABEL + " knock"), utf8(this.room)),
      utf8(JSON.stringify(body)));
    return { v: VERSION, salt: b64u(this.salt), ct: b64u(ct) };
  }

  // (b): the box this link names, its signature over the transcript, then the seal.
  async openReply(wire) {
    if (!isObject(wire) || !sameKeys(wire, ["v", "box", "eph", "sig", "ct"]) || wire.v !== VERSION) {
      throw new SealError("not a reply");
    }
    if (this.channel) throw new SealError("a second reply");
    if (!this.seatPub) throw new SealError("no knock yet");
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
    if (!sameKeys(body, ["type", "commit", "expires", "ice_servers"]) || body.type !== "reply"
      || !Number.isSafeInteger(body.expires) || !Array.isArray(body.ice_servers)
      || !body.ice_servers.every(isObject)) throw new SealError("not a reply");
    const commit = unb64u(body.commit);
    if (commit.length !== 32) throw new SealError("not a reply");
    this.channel = channel;
    this.z = z;
    this.th = th;
    this.commit = commit;
    return { iceServers: body.ice_servers, expires: body.expires };
  }

  // (c)
  async offer(sdp) {
    return this.seal({ type: "offer", sdp });
  }

  // (d): the answer's fingerprint must open the reply's commitment.
  async openAnswer(wire) {
    const body = await this.open(wire);
    if (body.type === "end") {
      if (!sameKeys(body, ["type", "reason"]) || !END_REASONS.includes(body.reason)) throw new SealError("not an end");
      throw new Ended(body.reason);
    }
    if (body.type !== "answer" || typeof body.sdp !== "string") throw new SealError("not an answer");
    const fpBox = dtlsFingerprint(body.sdp);
    if (!equal(await commitment(fpBox, unb64u(body.commit_nonce)), this.commit)) {
      throw new SealError("the answer's fingerprint is not the one the box committed to");
    }
    this.fpBox = fpBox;
    return body.sdp;
  }

  // Six digits from the secret, the ECDH result and both DTLS fingerprints.
  async code(fpViewer) {
    if (!this.fpBox) throw new SealError("no answer yet");
    return verificationCode(this.secret, this.z, this.th, this.fpBox, fpViewer);
  }

  async seal(body) {
    if (!this.channel) throw new SealError("no reply yet");
    return this.channel.seal(body);
  }

  async open(wire) {
    if (!this.channel) throw new SealError("no reply yet");
    return this.channel.open(wire);
  }

  // Drop the references to the keys (JavaScript cannot overwrite memory: the garbage collector
  // frees them; the seat itself stays with the page until the session ends).
  forget() {
    if (this.channel) this.channel.forget();
    this.secret = this.z = this.th = this.commit = null;
  }
}
