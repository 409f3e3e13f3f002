// Shared harness for the edge-worker tests (tests/edge/) and the bench (tests/bench/edge-bench.mjs):
// the Klaviyo emulator (port 0), Miniflare v4 running dist/edge/worker.mjs with bindings that
// point at it, request signing (node:crypto), Klaviyo system-webhook requests, a tiny HTTP sink
// for forwarded webhooks, a static server + Debian Chromium for the browser test, and polling
// helpers (no fixed sleeps).
//
// Every response read through `readResponse` (all `worker.call`s) is kept in `responseLog`, so a
// test can scan everything the worker ever answered for configured secrets.
import http from 'node:http';
import path from 'node:path';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import { startEmulator } from '../emulator/server.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// EDGE_DIST overrides where the built worker is read from (default dist/edge).
export const EDGE_DIR = process.env.EDGE_DIST ? path.resolve(process.env.EDGE_DIST) : path.join(ROOT, 'dist/edge');
export const WORKER_PATH = path.join(EDGE_DIR, 'worker.mjs');
export const WEB_DIR = path.join(ROOT, 'dist/web');

export const COMPANY_ID = 'AbC123';
export const REVISION = '2026-07-15';
export const SHOP_ORIGIN = 'https://shop.example';
// Recent enough for workerd's own safety defaults; the worker sets `redirect: "manual"` on
// every upstream call regardless (it never relies on the runtime to strip Authorization).
export const COMPATIBILITY_DATE = '2026-04-01';
export const JSON_API = 'application/vnd.api+json';

export const sha256 = (s) => createHash('sha256').update(s).digest('hex');
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const nowSeconds = () => Math.floor(Date.now() / 1000);

export function isEdgeBuilt() {
  return existsSync(WORKER_PATH);
}

export const NOT_BUILT = 'dist/edge/worker.mjs is missing: run `bash .ci/build.sh edge` first';

/** sha256 (first 12 hex) and mtime of the built worker + wasm: which build a run tested. */
export function edgeBuildId(dir = EDGE_DIR) {
  try {
    const h = createHash('sha256');
    for (const f of ['worker.mjs', 'klaviyo_edge_bg.wasm']) {
      const p = path.join(dir, f);
      if (existsSync(p)) h.update(readFileSync(p));
    }
    return `${h.digest('hex').slice(0, 12)} (${statSync(path.join(dir, 'worker.mjs')).mtime.toISOString()})`;
  } catch {
    return 'none';
  }
}

/**
 * Distinctive, random-looking secrets for one run (so a leak is unmistakable when grepped).
 * The private key has the `pk_` shape of a real Klaviyo private key.
 */
export function makeSecrets() {
  const hex = (n) => randomBytes(n).toString('hex');
  return {
    KLAVIYO_PRIVATE_KEY: `pk_${hex(17)}`,
    EDGE_SIGNING_SECRET: `edgesig_${hex(20)}`,
    KLAVIYO_WEBHOOK_SECRET: `whsec_${hex(20)}`,
  };
}

/** The forms in which a secret could leak: raw, URL-encoded, base64 (std and url), hex. */
function leakForms(value) {
  const b = Buffer.from(value);
  return [value, encodeURIComponent(value), b.toString('base64'), b.toString('base64url'), b.toString('hex')]
    .filter((v, i, a) => a.indexOf(v) === i);
}

/** Names of the secrets found in `text` (any form). */
export function findSecrets(text, secrets) {
  const hay = String(text);
  return Object.entries(secrets)
    .filter(([, v]) => v && leakForms(v).some((f) => hay.includes(f)))
    .map(([k]) => k);
}

/** Everything the worker answered during this process (see readResponse). */
export const responseLog = [];

/** Reads a fetch Response fully into a plain snapshot and logs it. */
export async function readResponse(res, label = '') {
  const text = await res.text();
  const headers = {};
  res.headers.forEach((v, k) => { headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`; });
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  const snap = { label, status: res.status, headers, text, json };
  responseLog.push(snap);
  return snap;
}

/** All secret leaks across `responseLog`: [{label, status, secrets, where}]. */
export function leaksInLog(secrets, log = responseLog) {
  const out = [];
  for (const r of log) {
    const inBody = findSecrets(r.text, secrets);
    const inHeaders = findSecrets(JSON.stringify(r.headers), secrets);
    if (inBody.length || inHeaders.length) out.push({ label: r.label, status: r.status, body: inBody, headers: inHeaders });
  }
  return out;
}

/**
 * One request over its own connection (node:http, no keep-alive), for bodies the worker may
 * refuse before reading them (413): a refused upload can leave a pooled connection unusable.
 * `body` is a string/Buffer or an array of chunks (sent chunked, without Content-Length).
 */
export function rawRequest(url, { method = 'POST', headers = {}, body, label = '' } = {}) {
  return new Promise((resolve, reject) => {
    let done = false;
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        done = true;
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        const hdrs = {};
        for (const [k, v] of Object.entries(res.headers)) hdrs[k] = Array.isArray(v) ? v.join(', ') : v;
        const snap = { label: label || `${method} ${new URL(url).pathname}`, status: res.statusCode, headers: hdrs, text, json };
        responseLog.push(snap);
        resolve(snap);
      });
      res.on('error', (e) => { if (!done) reject(e); });
    });
    // The server may answer and close while the body is still going out (EPIPE/ECONNRESET):
    // that only matters if no answer came.
    req.on('error', (e) => { setTimeout(() => { if (!done) reject(e); }, 500); });
    if (Array.isArray(body)) {
      (async () => {
        for (const c of body) {
          if (req.destroyed || done) return;
          if (!req.write(c)) await new Promise((r) => { req.once('drain', r); req.once('close', r); });
        }
        req.end();
      })().catch(() => {});
    } else {
      req.end(body);
    }
  });
}

/**
 * Sends a POST's head (chunked, so a body is announced) and not one byte of its body, and
 * resolves with the answer: a worker that answers refuses the request from its head alone,
 * unread. Rejects after `timeout` ms without an answer (a worker waiting for the body).
 */
export function headOnly(url, { headers = {}, timeout = 5000, label = '' } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked' }, agent: false });
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`no answer within ${timeout} ms to the head alone`)); }, timeout);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        const snap = { label: label || `POST ${new URL(url).pathname} (head only)`, status: res.statusCode, headers: res.headers, text, json };
        responseLog.push(snap);
        resolve(snap);
      });
    });
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.flushHeaders();
  });
}

// ---------- signing ----------

/**
 * `X-Klaviyo-Edge-Signature` for one call:
 * `t=<unix s>,v2=<hex HMAC-SHA256(secret, "<t>\n<METHOD>\n<path>\n<body>")>`. `rawBody` is a string
 * (UTF-8) or bytes; `path` is the URL's path as the worker receives it.
 */
export function edgeSignature(secret, rawBody, t = nowSeconds(), { method = 'POST', path = '/api/events' } = {}) {
  const v2 = createHmac('sha256', secret).update(`${t}\n${method}\n${path}\n`).update(rawBody).digest('hex');
  return `t=${t},v2=${v2}`;
}

/** The signature the worker puts on a webhook it forwards (its key derived for that direction). */
export function forwardSignature(secret, rawBody, t) {
  const key = createHmac('sha256', secret).update('klaviyo-wasm webhook forward').digest();
  return `t=${t},v2=${createHmac('sha256', key).update(`${t}\nPOST\n/webhooks/klaviyo\n`).update(rawBody).digest('hex')}`;
}

/** Headers for a backend-signed /api request (`path` defaults to /api/events). */
export function signedHeaders(secret, rawBody, { t, path, method, revision = REVISION, extra = {} } = {}) {
  const h = { 'content-type': JSON_API, 'x-klaviyo-edge-signature': edgeSignature(secret, rawBody, t, { path, method }), ...extra };
  if (revision !== null) h.revision = revision;
  return h;
}

/** A signed POST to worker `name` of Miniflare `mf` (a fresh signature unless `headers`
 * given): the answer read, and the headers sent. */
export async function signedPost(mf, name, secret, route, body, { headers } = {}) {
  const worker = await mf.getWorker(name);
  const h = headers ?? signedHeaders(secret, body, { path: route });
  const res = await worker.fetch(`https://shop.example${route}`, { method: 'POST', headers: h, body });
  return { ...(await readResponse(res, `${name}: POST ${route}`)), sent: h };
}

/** One order of two units in the worker's own format (`/api/orders`). */
export const orderBody = (orderId) => JSON.stringify({
  order_id: orderId,
  value: 19.98,
  profile: { email: 'ann@example.com' },
  items: [{ product_id: 'p-1', name: 'Pooh', quantity: 2, price: 9.99 }],
});

/** A Klaviyo system-webhook body (`meta.klaviyo_webhook_id` = webhookId). */
export function webhookBody({ webhookId = '01JWEBHOOK0000000000000001', accountId = COMPANY_ID, topic = 'event:klaviyo.sent_sms', externalId } = {}) {
  return {
    data: [{
      external_id: externalId ?? `ext-${randomBytes(6).toString('hex')}`,
      payload: {
        type: 'event',
        id: '4vRpBT8KbJ',
        attributes: {
          timestamp: nowSeconds(),
          event_properties: { 'Message Name': 'Welcome SMS' },
          datetime: new Date().toISOString(),
          uuid: '5f1f7d00-0000-11ef-8000-6f0a1e4d0b1c',
        },
        relationships: { metric: { data: { type: 'metric', id: 'SxZdGV' } }, profile: { data: { type: 'profile', id: '01GDDKASAP8TKDDA2GRZDSVP4H' } } },
      },
      topic,
    }],
    meta: { klaviyo_account_id: accountId, klaviyo_webhook_id: webhookId, timestamp: new Date().toISOString() },
  };
}

/** `Klaviyo-Signature`: hex HMAC-SHA256(secret, raw body + timestamp header value). */
export function webhookSignature(secret, rawBody, timestamp) {
  return createHmac('sha256', secret).update(rawBody + String(timestamp)).digest('hex');
}

/**
 * A signed webhook request: {body (raw text), headers}. Options: `timestamp` (header value,
 * default now in unix seconds), `webhookId` (in body meta and header), `headerWebhookId`
 * (overrides the header only), `signWith` (secret; default `secret`), `signBody` (sign
 * another text than the one sent), `omit` (header names to leave out).
 */
export function webhookRequest(secret, {
  timestamp = nowSeconds(), webhookId = '01JWEBHOOK0000000000000001', headerWebhookId, signWith = secret,
  body, signBody, omit = [],
} = {}) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body ?? webhookBody({ webhookId }));
  const headers = {
    'content-type': 'application/json',
    'klaviyo-signature': webhookSignature(signWith, signBody ?? raw, timestamp),
    'klaviyo-timestamp': String(timestamp),
    'klaviyo-webhook-id': headerWebhookId ?? webhookId,
  };
  for (const h of omit) delete headers[h.toLowerCase()];
  return { body: raw, headers };
}

// ---------- workers ----------

/** Bindings for the worker: every setting configured, pointing at `emu`. */
export function fullBindings({ emu, secrets, origins = [], forwardUrl, metrics = ['Placed Order', 'Started Checkout'], extra = {} }) {
  const b = {
    ...secrets,
    KLAVIYO_PUBLIC_KEY: COMPANY_ID,
    ALLOWED_ORIGINS: [SHOP_ORIGIN, ...origins].join(','),
    KLAVIYO_API_BASE: emu.url,
    BROWSER_SERVER_METRICS: metrics.join(','),
    ...extra,
  };
  if (forwardUrl) b.WEBHOOK_FORWARD_URL = forwardUrl;
  return b;
}

/** Miniflare options for dist/edge (ES modules incl. the .js glue; the .wasm as CompiledWasm). */
export function miniflareOptions(bindings, { port = 0, extra = {} } = {}) {
  return {
    ...extra,
    scriptPath: WORKER_PATH,
    modules: true,
    modulesRoot: EDGE_DIR,
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
      // The script-tag files the worker serves (text, and the .wasm as bytes).
      { type: 'Text', include: ['**/*.txt'] },
      { type: 'Data', include: ['**/*.bin'] },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    bindings,
    host: '127.0.0.1',
    port,
  };
}

/**
 * Miniflare options for one workerd running ours (with `bindings`) and `others` (more
 * workers' options), each on a socket of its own (no entry worker in between), as the
 * benches and the parity test compare them. `ours` is the name of ours.
 */
export function besideOurs(bindings, others) {
  const { host: _host, port: _port, ...ours } = miniflareOptions(bindings);
  const socket = [{ host: '127.0.0.1', port: 0 }];
  return {
    host: '127.0.0.1',
    port: 0,
    workers: [
      { ...ours, name: 'ours', unsafeDirectSockets: socket },
      ...others.map((w) => ({ compatibilityDate: ours.compatibilityDate, ...w, unsafeDirectSockets: socket })),
    ],
  };
}

/**
 * A Miniflare instance running the worker. `url` is its origin (no trailing slash);
 * `call(path, init)` fetches it over real HTTP and returns a logged snapshot.
 */
export async function startWorker(bindings, { label = 'worker', options = {} } = {}) {
  if (!isEdgeBuilt()) throw new Error(NOT_BUILT);
  // `options`: more Miniflare options (KV namespaces, rate limiters, persistence).
  const mf = new Miniflare(miniflareOptions(bindings, { extra: options }));
  let url;
  try {
    url = String(await mf.ready).replace(/\/$/, '');
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw e;
  }
  const call = async (p, init = {}) => {
    const res = await fetch(url + p, { redirect: 'manual', ...init });
    return readResponse(res, `${label}: ${init.method || 'GET'} ${p}`);
  };
  /** Like call, over a fresh connection (see rawRequest). */
  const raw = (p, init = {}) => rawRequest(url + p, { ...init, label: `${label}: ${init.method || 'POST'} ${p} (raw)` });
  /** A POST's head alone, its body never sent (see headOnly). */
  const head = (p, init = {}) => headOnly(url + p, { ...init, label: `${label}: POST ${p} (head only)` });
  return { mf, url, bindings, call, raw, head, close: () => mf.dispose() };
}

/** A tiny HTTP server that records every request (for WEBHOOK_FORWARD_URL), each with the
 * status it was `answered`; `setStatus(n)` changes that status (a receiver that is down). */
export async function startSink({ status = 200 } = {}) {
  const received = [];
  let answer = status;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, headers: { ...req.headers }, body: Buffer.concat(chunks).toString('utf8'), answered: answer });
      res.writeHead(answer, { 'content-type': 'application/json' });
      res.end(answer < 300 ? '{"ok":true}' : '{"ok":false}');
    });
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    received,
    setStatus: (n) => { answer = n; },
    clear: () => { received.length = 0; },
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/**
 * The emulator + a webhook sink + the worker with every setting. `extraOrigins` are added to
 * ALLOWED_ORIGINS (e.g. the browser test page's origin). `start(overrides, omit)` starts another
 * worker on the same emulator with settings changed or removed (for the missing-config tests).
 */
export async function startEdge({ extraOrigins = [], emulator = {}, bindings = {} } = {}) {
  if (!isEdgeBuilt()) throw new Error(NOT_BUILT);
  const emu = await startEmulator({ port: 0, ...emulator });
  const sink = await startSink();
  const secrets = makeSecrets();
  const base = fullBindings({ emu, secrets, origins: extraOrigins, forwardUrl: sink.url, extra: bindings });
  const extra = [];
  let worker;
  try {
    worker = await startWorker(base, { label: 'main' });
  } catch (e) {
    await sink.close();
    await emu.close();
    throw e;
  }
  return {
    emu,
    sink,
    secrets,
    worker,
    bindings: base,
    build: edgeBuildId(),
    /** Another worker: `overrides` replace bindings, `omit` lists settings to leave out. */
    async start(overrides = {}, omit = [], label = 'variant', options = {}) {
      const b = { ...base, ...overrides };
      for (const k of omit) delete b[k];
      const w = await startWorker(b, { label, options });
      extra.push(w);
      return w;
    },
    close: async () => {
      for (const w of extra) await w.close().catch(() => {});
      await worker.close().catch(() => {});
      await sink.close();
      await emu.close();
    },
  };
}

// ---------- browser ----------

export { CHROMIUM_ARGS, waitFor, launchChromium, shopperUserAgent } from '../support/browser.mjs';
import { serveRepo } from '../support/static.mjs';

/** Serves only /tests/edge/ and /dist/web/ from the repo (GET, never cached); `options` as serveRepo's. */
export const startStaticServer = (options) => serveRepo(['/tests/edge/', '/dist/web/'], options);

// ---------- polling ----------

