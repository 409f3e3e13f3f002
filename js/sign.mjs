// klaviyo-wasm/sign: signs a request from the shop's backend for the edge worker's
// private-key routes. The worker checks
//   x-klaviyo-edge-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body bytes>")>
// against its EDGE_SIGNING_SECRET, within 5 minutes of its clock (src/edge/auth.rs).
//
// WebCrypto only (globalThis.crypto.subtle), no node: imports: runs in Node >= 20, Deno,
// Bun and workers. Never ship this, or the secret, to a browser.

/** The request header the edge worker reads the signature from. */
export const SIGNATURE_HEADER = "x-klaviyo-edge-signature";

const JSON_API = "application/vnd.api+json";
const encoder = new TextEncoder();

/** The exact bytes of a body: strings as UTF-8 (a BOM is kept), bytes as they are. */
function bytesOf(body) {
  if (typeof body === "string") return encoder.encode(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer || Object.prototype.toString.call(body) === "[object ArrayBuffer]") {
    return new Uint8Array(body);
  }
  throw new TypeError("sign: body must be a string, a Uint8Array or an ArrayBuffer");
}

function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error("sign: WebCrypto (globalThis.crypto.subtle) is not available in this runtime");
  return s;
}

// The key of the last secret used: a backend signs every request with the same one.
let cached = { secret: undefined, key: undefined };

function keyFor(secret) {
  if (typeof secret !== "string" || secret === "") {
    throw new TypeError("sign: secret must be a non-empty string (the worker's EDGE_SIGNING_SECRET)");
  }
  if (cached.secret !== secret) {
    const key = subtle().importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    cached = { secret, key };
    key.catch(() => { if (cached.key === key) cached = { secret: undefined, key: undefined }; });
  }
  return cached.key;
}

function unixSeconds(now) {
  const ms = now === undefined ? Date.now() : Number(now);
  if (!Number.isFinite(ms) || ms < 0) {
    throw new TypeError("sign: now must be a time in milliseconds since the epoch (a number or a Date)");
  }
  return Math.floor(ms / 1000);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * The value of `x-klaviyo-edge-signature` for `body`: `t=<unix seconds>,v1=<lower-case hex
 * HMAC-SHA256(secret, "<t>.<body bytes>")>`. `body` is a string (signed as UTF-8), a
 * Uint8Array (any typed-array view, e.g. a Buffer) or an ArrayBuffer; send exactly these
 * bytes. `now` (milliseconds since the epoch, or a Date; default `Date.now()`) sets `t`.
 */
export async function sign(body, secret, { now } = {}) {
  const bytes = bytesOf(body);
  const t = unixSeconds(now);
  const key = keyFor(secret);
  const prefix = encoder.encode(`${t}.`);
  const message = new Uint8Array(prefix.length + bytes.length);
  message.set(prefix, 0);
  message.set(bytes, prefix.length);
  const mac = new Uint8Array(await subtle().sign("HMAC", await key, message));
  let hex = "";
  for (const b of mac) hex += HEX[b];
  return `t=${t},v1=${hex}`;
}

/**
 * POSTs `body` to `url` (the worker's route, e.g. `https://shop.example/klaviyo/api/events`)
 * signed with `secret`, with `content-type: application/vnd.api+json` unless `init.headers`
 * sets another. The exact signed bytes are sent. Other `init` fields (headers, signal, ...)
 * go to `fetch`; the method is always POST. Resolves to fetch's Response.
 */
export async function signedFetch(url, body, secret, init = {}) {
  const bytes = bytesOf(body);
  const signature = await sign(bytes, secret);
  const headers = new Headers(init.headers);
  if (!headers.has("content-type")) headers.set("content-type", JSON_API);
  headers.set(SIGNATURE_HEADER, signature);
  return fetch(url, { ...init, method: "POST", headers, body: bytes });
}
