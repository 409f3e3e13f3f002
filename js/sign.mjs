// klaviyo-wasm/sign: signs a request from the shop's backend for the edge worker's
// private-key routes, and checks the webhooks the worker forwards. The worker checks
//   x-klaviyo-edge-signature: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, "<t>\n<METHOD>\n<path>\n<body bytes>")>
// against its EDGE_SIGNING_SECRET, within 5 minutes of its clock (src/edge/auth.rs). The
// path is the worker's route below its ROUTE_PREFIX (/api/orders), wherever the worker is
// mounted: a signature authorises one call on one route.
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

function checkSecret(secret) {
  if (typeof secret !== "string" || secret === "") {
    throw new TypeError("sign: secret must be a non-empty string (the worker's EDGE_SIGNING_SECRET)");
  }
}

function hmacKey(raw) {
  return subtle().importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

function keyFor(secret) {
  checkSecret(secret);
  if (cached.secret !== secret) {
    const key = hmacKey(encoder.encode(secret));
    cached = { secret, key };
    key.catch(() => { if (cached.key === key) cached = { secret: undefined, key: undefined }; });
  }
  return cached.key;
}

/** The label the worker derives its webhook-forward key with. */
const FORWARD_LABEL = "klaviyo-wasm webhook forward";
/** The route a forwarded webhook's signature names. */
const FORWARD_PATH = "/webhooks/klaviyo";

/** The key forwarded webhooks are signed with: HMAC-SHA256(secret, FORWARD_LABEL). */
async function forwardKey(secret) {
  const derived = await subtle().sign("HMAC", await keyFor(secret), encoder.encode(FORWARD_LABEL));
  return hmacKey(derived);
}

function unixSeconds(now) {
  const ms = now === undefined ? Date.now() : Number(now);
  if (!Number.isFinite(ms) || ms < 0) {
    throw new TypeError("sign: now must be a time in milliseconds since the epoch (a number or a Date)");
  }
  return Math.floor(ms / 1000);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function checkRoute(method, route) {
  if (typeof method !== "string" || !/^[A-Z]+$/.test(method)) {
    throw new TypeError("sign: method must be an upper-case HTTP method such as \"POST\"");
  }
  if (typeof route !== "string" || !route.startsWith("/") || /[?#\s]/.test(route)) {
    throw new TypeError("sign: route must be the worker's route, such as \"/api/orders\" (no query)");
  }
}

// The worker's signed routes, at the end of a URL's path (after any ROUTE_PREFIX).
const ROUTE = /\/api\/(?:events|event-bulk-create-jobs|profile-import|profile-subscription-bulk-create-jobs|orders(?:\/(?:fulfilled|cancelled|refunded))?|lists\/[A-Za-z0-9]{1,64}\/profiles)$/;

/** The worker's route a URL names: its path from the first place a signed route begins. */
function routeOf(url) {
  const path = new URL(url).pathname;
  const m = ROUTE.exec(path);
  if (!m) {
    throw new TypeError(`signedFetch: ${path} ends in no route of the worker (/api/events, /api/orders, ...); pass init.route`);
  }
  return m[0];
}

/** The hex tag of "<t>\n<method>\n<path>\n<body bytes>" under `key`. */
async function tag(key, t, method, path, bytes) {
  const head = encoder.encode(`${t}\n${method}\n${path}\n`);
  const message = new Uint8Array(head.length + bytes.length);
  message.set(head, 0);
  message.set(bytes, head.length);
  const mac = new Uint8Array(await subtle().sign("HMAC", await key, message));
  let hex = "";
  for (const b of mac) hex += HEX[b];
  return hex;
}

/**
 * The value of `x-klaviyo-edge-signature` for one call: `t=<unix seconds>,v2=<lower-case hex
 * HMAC-SHA256(secret, "<t>\\n<METHOD>\\n<route>\\n<body bytes>")>`. `route` (required) is the
 * worker's route below its ROUTE_PREFIX, e.g. `/api/orders`; `method` defaults to `POST`.
 * `body` is a string (signed as UTF-8), a Uint8Array (any typed-array view, e.g. a Buffer) or
 * an ArrayBuffer; send exactly these bytes. `now` (milliseconds since the epoch, or a Date;
 * default `Date.now()`) sets `t`.
 */
export async function sign(body, secret, { now, method = "POST", route } = {}) {
  const bytes = bytesOf(body);
  const t = unixSeconds(now);
  checkRoute(method, route);
  return `t=${t},v2=${await tag(keyFor(secret), t, method, route, bytes)}`;
}

/**
 * Whether `header` (the `x-klaviyo-edge-signature` of a webhook the worker forwarded to
 * your WEBHOOK_FORWARD_URL) signs `body` (the exact bytes received) with the key the worker
 * derives from `secret` (its EDGE_SIGNING_SECRET) for forwards, within 5 minutes of `now`.
 * A forward's signature is never a valid backend call, and the other way round.
 */
export async function verifyForward(body, header, secret, { now } = {}) {
  const bytes = bytesOf(body);
  checkSecret(secret);
  const m = /^\s*t=(-?\d+)\s*,\s*v2=([0-9a-fA-F]{64})\s*$/.exec(typeof header === "string" ? header : "");
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(unixSeconds(now) - t) > 300) return false;
  const want = await tag(forwardKey(secret), m[1], "POST", FORWARD_PATH, bytes);
  // Compared over every character, whatever differs first.
  const got = m[2].toLowerCase();
  let diff = 0;
  for (let i = 0; i < want.length; i++) diff |= want.charCodeAt(i) ^ got.charCodeAt(i);
  return diff === 0;
}

/**
 * POSTs `body` to `url` (the worker's route, e.g. `https://shop.example/klaviyo/api/events`)
 * signed with `secret` for the route the URL ends in (`/api/events`; `init.route` names
 * another), with `content-type: application/vnd.api+json` unless `init.headers` sets
 * another. The exact signed bytes are sent. Other `init` fields (headers, signal, ...) go to
 * `fetch`; the method is always POST. Resolves to fetch's Response.
 */
export async function signedFetch(url, body, secret, init = {}) {
  const { route = routeOf(url), ...rest } = init;
  const bytes = bytesOf(body);
  const signature = await sign(bytes, secret, { route });
  const headers = new Headers(rest.headers);
  if (!headers.has("content-type")) headers.set("content-type", JSON_API);
  headers.set(SIGNATURE_HEADER, signature);
  return fetch(url, { ...rest, method: "POST", headers, body: bytes });
}
