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

/** Statuses worth another attempt: a timeout, a throttle, a server error. */
function retryable(status) {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/** The longest wait setTimeout keeps (2^31 - 1 ms); a longer one would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

function checkMs(name, value, { min = 0, optional = false } = {}) {
  if (optional && value === undefined) return;
  if (typeof value !== "number" || !(value >= min) || value > MAX_TIMER_MS) {
    throw new TypeError(`signedFetch: init.${name} must be a number of milliseconds from ${min} to ${MAX_TIMER_MS}`);
  }
}

/**
 * How long a `Retry-After` asks to wait, in milliseconds: delay-seconds, or an HTTP date
 * (its three forms all begin with a day name). `undefined` when absent or unreadable.
 */
function retryAfterMs(value, nowMs) {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/^[A-Za-z]{3}/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
function wait(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => { clearTimeout(timer); reject(signal.reason); };
    const timer = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * One fetch. With `timeoutMs`, it is aborted (a TimeoutError) unless its answer's head
 * arrives in time; the caller's signal still aborts it, and the answer's body, after.
 */
async function attempt(url, init, signal, timeoutMs) {
  if (timeoutMs === undefined) return fetch(url, { ...init, signal });
  // Aborted already (while this attempt was signed): no abort event will come to pass on.
  signal?.throwIfAborted();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(
    new DOMException(`signedFetch: no answer within ${timeoutMs} ms`, "TimeoutError"),
  ), timeoutMs);
  // Both signals, for the head and for the body after. AbortSignal.any holds the caller's
  // signal weakly, so a long-lived signal shared by many calls collects no listeners;
  // where it is missing (Node < 20.3), a listener passes the abort on.
  let combined = controller.signal;
  let onAbort;
  if (signal && typeof AbortSignal.any === "function") {
    combined = AbortSignal.any([signal, controller.signal]);
  } else if (signal) {
    onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  }
  try {
    return await fetch(url, { ...init, signal: combined });
  } catch (e) {
    if (onAbort) signal.removeEventListener("abort", onAbort);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * POSTs `body` to `url` (the worker's route, e.g. `https://shop.example/klaviyo/api/events`)
 * signed with `secret` for the route the URL ends in (`/api/events`; `init.route` names
 * another), with `content-type: application/vnd.api+json` unless `init.headers` sets
 * another. The exact signed bytes are sent. Other `init` fields (headers, signal, ...) go to
 * `fetch`; the method is always POST. Resolves to fetch's Response.
 *
 * Retries (`init.retries`, default 3, so at most 4 attempts) when fetch rejects (a network
 * error, or an attempt over `init.attemptTimeoutMs`) and on 408, 429 and 5xx; never on
 * another status. Each attempt is signed anew, with a `t` later than the one before (the
 * worker accepts a signature once), over the same bytes, copied when called. Between
 * attempts: `init.retryDelayMs` (500) doubling, capped at `init.maxRetryDelayMs` (30 s),
 * with jitter (half of it random); a `Retry-After` (seconds or an HTTP date) is waited at
 * least, and one over the cap ends the retries with that answer. `init.signal` cancels the
 * attempts and the waits (rejecting with its reason). Resolves to the last Response;
 * rejects with the last attempt's error if fetch rejected.
 */
export async function signedFetch(url, body, secret, init = {}) {
  const {
    route = routeOf(url),
    retries = 3,
    retryDelayMs = 500,
    maxRetryDelayMs = 30_000,
    attemptTimeoutMs,
    ...rest
  } = init;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new TypeError("signedFetch: init.retries must be a whole number, 0 or more");
  }
  checkMs("retryDelayMs", retryDelayMs);
  checkMs("maxRetryDelayMs", maxRetryDelayMs);
  checkMs("attemptTimeoutMs", attemptTimeoutMs, { min: 1, optional: true });
  new URL(url); // a TypeError now, not one retried
  // A snapshot: every attempt sends (and signs) these bytes, whatever the caller's buffer becomes.
  const bytes = bytesOf(body).slice();
  const { signal } = rest;
  const base = new Headers(rest.headers);
  if (!base.has("content-type")) base.set("content-type", JSON_API);

  let lastT = -1;
  for (let n = 0; ; n++) {
    signal?.throwIfAborted();
    // A later t than the last attempt's, even within one second: a fresh signature.
    const t = Math.max(Math.floor(Date.now() / 1000), lastT + 1);
    lastT = t;
    const headers = new Headers(base);
    headers.set(SIGNATURE_HEADER, await sign(bytes, secret, { route, now: t * 1000 }));
    const last = n >= retries;
    let res;
    try {
      res = await attempt(url, { ...rest, method: "POST", headers, body: bytes }, signal, attemptTimeoutMs);
    } catch (e) {
      if (last || signal?.aborted) throw e;
    }
    let ms = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** n);
    ms = ms / 2 + Math.random() * (ms / 2);
    if (res) {
      if (last || !retryable(res.status)) return res;
      const asked = retryAfterMs(res.headers.get("retry-after"), Date.now());
      if (asked !== undefined) {
        if (asked > maxRetryDelayMs) return res; // longer than we may wait: the caller decides
        ms = Math.max(ms, asked);
      }
      // Let the connection go: this answer's body is not read.
      res.body?.cancel().catch(() => {});
    }
    await wait(ms, signal);
  }
}
