// The edge worker (dist/edge/worker.mjs) in Miniflare against the Klaviyo emulator.
//   node --test tests/edge/edge.test.mjs        (needs `bash .ci/build.sh edge` first)
// Every response the worker gives is kept (harness responseLog) and scanned for the configured
// secrets; every request the emulator and the webhook sink received is scanned too.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { sample } from '../emulator/fixtures.mjs';
import {
  startEdge, edgeSignature, signedHeaders, webhookRequest, webhookBody, findSecrets, leaksInLog, responseLog,
  waitFor, sleep, sha256, nowSeconds, COMPANY_ID, REVISION, SHOP_ORIGIN, JSON_API,
} from './harness.mjs';

let edge; // emulator + sink + main worker
let w; // the main worker
let S; // its secrets
const upstreamLeaks = []; // secrets found in what the emulator / sink received

before(async () => {
  edge = await startEdge();
  w = edge.worker;
  S = edge.secrets;
  console.log(`# edge build ${edge.build}; worker ${w.url}; emulator ${edge.emu.url}`);
});

after(async () => { await edge?.close(); });

beforeEach(() => {
  edge?.emu.reset();
  edge?.sink.clear();
});

afterEach(() => {
  if (!edge) return;
  const seen = JSON.stringify(edge.emu.requests());
  const found = findSecrets(seen, S);
  if (found.length) upstreamLeaks.push({ where: 'emulator records', secrets: found });
  const sunk = findSecrets(JSON.stringify(edge.sink.received), S);
  if (sunk.length) upstreamLeaks.push({ where: 'webhook sink', secrets: sunk });
});

// ---------- helpers ----------

const body = (name) => JSON.stringify(sample(name));

/** Asserts no configured secret is in this response (body or headers); returns it. */
function clean(res) {
  const leaked = [...findSecrets(res.text, S), ...findSecrets(JSON.stringify(res.headers), S)];
  assert.deepEqual(leaked, [], `${res.label} (${res.status}) leaks ${leaked.join(', ')}`);
  return res;
}

async function call(p, init, worker = w) {
  return clean(await worker.call(p, init));
}

function clientPost(route, raw, { origin = SHOP_ORIGIN, companyId = COMPANY_ID, headers = {}, worker } = {}) {
  const h = { 'content-type': JSON_API, revision: REVISION, ...headers };
  if (origin !== null) h.origin = origin;
  const q = companyId === null ? '' : `?company_id=${encodeURIComponent(companyId)}`;
  return call(`/client/${route}${q}`, { method: 'POST', headers: h, body: raw }, worker);
}

/** POST /api/<route>: signed by default (`sign: false` for a browser call; `t`, `secret` to vary). */
function apiPost(route, raw, { sign = true, t, secret, origin, headers = {}, worker } = {}) {
  const h = sign
    ? signedHeaders(secret ?? S.EDGE_SIGNING_SECRET, raw, { t, path: `/api/${route}` })
    : { 'content-type': JSON_API, revision: REVISION };
  if (origin) h.origin = origin;
  Object.assign(h, headers);
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  return call(`/api/${route}`, { method: 'POST', headers: h, body: raw }, worker);
}

function webhookPost(req, worker) {
  return call('/webhooks/klaviyo', { method: 'POST', headers: req.headers, body: req.body }, worker);
}

/** A JSON:API error answer: status, content type, {errors:[{status, code, title, detail}]}. */
function assertError(res, status, { pointer, detail } = {}) {
  assert.equal(res.status, status, `${res.label}: expected ${status}, got ${res.status}: ${res.text.slice(0, 300)}`);
  assert.match(res.headers['content-type'] || '', /^application\/vnd\.api\+json/, `${res.label}: content-type`);
  assert.ok(res.json && Array.isArray(res.json.errors) && res.json.errors.length > 0, `${res.label}: JSON:API errors: ${res.text.slice(0, 300)}`);
  for (const e of res.json.errors) {
    assert.equal(Number(e.status), status, `${res.label}: errors[].status`);
    for (const f of ['code', 'title', 'detail']) assert.equal(typeof e[f], 'string', `${res.label}: errors[].${f} is a string`);
  }
  if (pointer !== undefined) {
    const pointers = res.json.errors.map((e) => e.source?.pointer);
    assert.ok(pointers.includes(pointer), `${res.label}: a source.pointer ${pointer} (got ${JSON.stringify(pointers)})`);
  }
  if (detail !== undefined) {
    const details = res.json.errors.map((e) => e.detail).join(' | ');
    assert.ok(details.includes(detail), `${res.label}: detail mentions ${detail} (got ${details})`);
  }
  return res;
}

const upstream = (filter = {}) => edge.emu.requests(filter);

/**
 * A /client body as the worker sends it: as received, plus the caller's address as its
 * profile's `location.ip` (Miniflare's `cf-connecting-ip` is 127.0.0.1) on the routes
 * whose profile takes a location (first-party.test.mjs tests that addition itself).
 */
function asSent(raw, route = 'events') {
  const b = JSON.parse(raw);
  if (route === 'back-in-stock-subscriptions') return b;
  const attrs = route === 'profiles' ? b.data.attributes : b.data.attributes.profile.data.attributes;
  if (attrs.location?.ip === undefined) attrs.location = { ip: '127.0.0.1', ...attrs.location };
  return b;
}
const upstreamCount = () => edge.emu.requests().count;

function assertCors(res, origin = SHOP_ORIGIN) {
  assert.equal(res.headers['access-control-allow-origin'], origin, `${res.label}: Access-Control-Allow-Origin`);
  assert.match(res.headers.vary || '', /origin/i, `${res.label}: Vary: Origin`);
}

function assertExposesRetryAfter(res) {
  assert.match(res.headers['access-control-expose-headers'] || '', /retry-after/i, `${res.label}: Access-Control-Expose-Headers has Retry-After`);
}

function assertNoCors(res) {
  assert.equal(res.headers['access-control-allow-origin'], undefined, `${res.label}: no Access-Control-Allow-Origin`);
}

// ---------- health, routing ----------

test('GET /health answers 200 JSON', async () => {
  const res = await call('/health');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'] || '', /json/);
  assert.ok(res.json && typeof res.json === 'object', `JSON body: ${res.text}`);
});

test('unknown routes answer 404 (JSON:API) and forward nothing', async () => {
  assertError(await call('/nope'), 404);
  assertError(await call('/client/nope?company_id=AbC123', { method: 'POST', headers: { 'content-type': JSON_API, origin: SHOP_ORIGIN }, body: body('clientEvent') }), 404);
  assertError(await call('/client/events/extra?company_id=AbC123', { method: 'POST', headers: { 'content-type': JSON_API }, body: body('clientEvent') }), 404);
  // Not an open proxy for the rest of the private API.
  const raw = body('createProfile');
  assertError(await call('/api/profiles', { method: 'POST', headers: signedHeaders(S.EDGE_SIGNING_SECRET, raw, { path: '/api/profiles' }), body: raw }), 404);
  assertError(await call('/api/profiles', { headers: signedHeaders(S.EDGE_SIGNING_SECRET, '', { path: '/api/profiles', method: 'GET' }) }), 404);
  assert.equal(upstreamCount(), 0);
});

test('wrong methods answer 405 (JSON:API) naming the methods the route takes, in the detail and Allow, and forward nothing', async () => {
  assertError(await call('/client/events?company_id=AbC123'), 405);
  assertError(await call('/api/events'), 405);
  assertError(await call('/api/profile-import', { method: 'DELETE' }), 405);
  assertError(await call('/api/events', { method: 'PUT', headers: signedHeaders(S.EDGE_SIGNING_SECRET, '{}'), body: '{}' }), 405);
  assertError(await call('/webhooks/klaviyo'), 405);
  const health = await call('/health', { method: 'POST', body: '{}' });
  assertError(health, 405, { detail: 'this route takes GET and HEAD' });
  assert.equal(health.headers.allow, 'GET, HEAD');
  const api = await call('/api/events');
  assertError(api, 405, { detail: 'this route takes POST' });
  assert.equal(api.headers.allow, 'POST');
  assert.equal(upstreamCount(), 0);
});

// ---------- CORS preflight ----------

test('OPTIONS from an allowed origin: 204 with CORS headers', async () => {
  for (const p of ['/client/events?company_id=AbC123', '/client/event-bulk-create?company_id=AbC123', '/api/events']) {
    const res = await call(p, {
      method: 'OPTIONS',
      headers: { origin: SHOP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,revision' },
    });
    assert.equal(res.status, 204, `${p}: ${res.status} ${res.text}`);
    assertCors(res);
    assert.match(res.headers['access-control-allow-methods'] || '', /POST/, 'Allow-Methods has POST');
    assert.match(res.headers['access-control-allow-methods'] || '', /OPTIONS/, 'Allow-Methods has OPTIONS');
    const allowHeaders = (res.headers['access-control-allow-headers'] || '').toLowerCase();
    assert.ok(allowHeaders.includes('content-type') && allowHeaders.includes('revision'), `Allow-Headers: ${allowHeaders}`);
    assert.ok(Number(res.headers['access-control-max-age']) > 0, 'Access-Control-Max-Age');
  }
  assert.equal(upstream().preflights.length, 0, 'preflights are answered by the worker, not forwarded');
});

test('OPTIONS from a foreign, look-alike, null or missing origin: 403 without CORS headers', async () => {
  for (const origin of ['https://evil.example', 'https://shop.example.evil.test', 'http://shop.example', 'https://sub.shop.example', 'null', undefined]) {
    const headers = { 'access-control-request-method': 'POST' };
    if (origin !== undefined) headers.origin = origin;
    const res = await call('/client/events?company_id=AbC123', { method: 'OPTIONS', headers });
    assert.equal(res.status, 403, `origin ${origin}: ${res.status}`);
    assertNoCors(res);
  }
});

// ---------- /client proxy ----------

const CLIENT_ROUTES = [
  ['events', 'clientEvent'],
  ['profiles', 'clientProfile'],
  ['subscriptions', 'clientSubscription'],
  ['event-bulk-create', 'bulkClientEvents'],
  ['back-in-stock-subscriptions', 'backInStock'],
];

for (const [route, fixture] of CLIENT_ROUTES) {
  test(`POST /client/${route}: forwarded with company_id and revision, no cookie or authorization; 202 with CORS`, async () => {
    const raw = body(fixture);
    const res = await clientPost(route, raw, {
      headers: { cookie: '__kla_id=secretcookie; session=s3ss10n', authorization: 'Bearer browser-token-xyz' },
    });
    assert.equal(res.status, 202, `${res.status}: ${res.text}`);
    assertCors(res);
    assertExposesRetryAfter(res);
    const seen = upstream({ path: `/client/${route}` });
    assert.equal(seen.count, 1, 'one upstream request');
    const [r] = seen.requests;
    assert.equal(r.accepted, true, `emulator accepted it: ${JSON.stringify(r.errors)}`);
    assert.equal(r.query.company_id, COMPANY_ID);
    assert.equal(r.headers.revision, REVISION);
    assert.equal(r.hasAuth, false, 'no Authorization forwarded to /client');
    assert.equal(r.headers.cookie, undefined, 'no Cookie forwarded');
    assert.deepEqual(r.body, asSent(raw, route), 'body forwarded unchanged but for the visitor\'s address');
    assert.equal(upstreamCount(), 1, 'nothing else sent upstream');
  });
}

test('POST /client/events without Origin (server to server) is forwarded', async () => {
  const res = await clientPost('events', body('clientEvent'), { origin: null });
  assert.equal(res.status, 202, res.text);
  assert.equal(upstream({ path: '/client/events', accepted: true }).count, 1);
});

test('POST /client/events: the revision header is passed on; without one, KLAVIYO_REVISION (default 2026-07-15)', async () => {
  let res = await clientPost('events', body('clientEvent'), { headers: { revision: '2025-10-15' } });
  assert.equal(res.status, 202, res.text);
  res = await call('/client/events?company_id=AbC123', { method: 'POST', headers: { 'content-type': JSON_API, origin: SHOP_ORIGIN }, body: body('clientEvent') });
  assert.equal(res.status, 202, res.text);
  const revs = upstream({ path: '/client/events' }).requests.map((r) => r.headers.revision);
  assert.deepEqual(revs, ['2025-10-15', REVISION]);
});

test('POST /client/*: company_id other than KLAVIYO_PUBLIC_KEY (or none) -> 403, nothing forwarded', async () => {
  for (const companyId of ['XyZ789', 'abc123', '', null]) {
    const res = await clientPost('events', body('clientEvent'), { companyId });
    assertError(res, 403);
  }
  assertError(await clientPost('profiles', body('clientProfile'), { companyId: 'XyZ789' }), 403);
  assert.equal(upstreamCount(), 0);
});

test('POST /client/*: an Origin that is not allowed -> 403 without CORS headers, nothing forwarded', async () => {
  for (const origin of ['https://evil.example', 'https://shop.example.evil.test', 'http://shop.example', 'null']) {
    const res = await clientPost('events', body('clientEvent'), { origin });
    assertError(res, 403);
    assertNoCors(res);
  }
  assert.equal(upstreamCount(), 0);
});

test('POST /client/events: malformed JSON -> 400', async () => {
  const res = await clientPost('events', '{"data": {"type": "event",');
  assertError(res, 400);
});

// ---------- /api, signed by the shop's backend ----------

const API_ROUTES = [
  ['events', 'apiEvent'],
  ['event-bulk-create-jobs', 'bulkEventsJob'],
  ['profile-import', 'profileImport'],
  ['profile-subscription-bulk-create-jobs', 'bulkSubscribe'],
];

for (const [route, fixture] of API_ROUTES) {
  test(`POST /api/${route} (signed): forwarded with the private key and revision; upstream status passed back`, async () => {
    const raw = body(fixture);
    const res = await apiPost(route, raw, { headers: { cookie: 'session=s3ss10n' } });
    const seen = upstream({ path: `/api/${route}` });
    assert.equal(seen.count, 1, `one upstream request (worker said ${res.status}: ${res.text.slice(0, 300)})`);
    const [r] = seen.requests;
    assert.equal(r.accepted, true, `emulator accepted it: ${JSON.stringify(r.errors)}`);
    assert.equal(r.authKeyHash, sha256(S.KLAVIYO_PRIVATE_KEY), 'Authorization: Klaviyo-API-Key <KLAVIYO_PRIVATE_KEY>');
    assert.equal(r.headers.revision, REVISION);
    assert.equal(r.headers.cookie, undefined, 'no Cookie forwarded');
    const sent = structuredClone(r.body);
    // Events without a time: the time the worker accepted them (its retries are then the
    // same event, at the time it happened), unique_id or not (the bulk fixture's have one).
    const accepted = (attributes) => {
      assert.match(attributes.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      delete attributes.time;
    };
    if (route === 'events') accepted(sent.data.attributes);
    if (route === 'event-bulk-create-jobs') {
      for (const entry of sent.data.attributes['events-bulk-create'].data) {
        for (const e of entry.attributes.events.data) accepted(e.attributes);
      }
    }
    assert.deepEqual(sent, JSON.parse(raw), 'body forwarded unchanged (but those times)');
    assert.equal(res.status, r.status, 'the upstream status is passed back');
    assert.ok(res.status >= 200 && res.status < 300);
  });
}

test('POST /api/events: a signature 200 s old is still accepted', async () => {
  const res = await apiPost('events', body('apiEvent'), { t: nowSeconds() - 200 });
  assert.equal(res.status, 202, res.text);
  assert.equal(upstream({ path: '/api/events', accepted: true }).count, 1);
});

test('POST /api/events: missing, wrong-secret, expired, future, tampered or malformed signatures -> 401, nothing forwarded', async () => {
  const raw = body('apiEvent');
  const t = nowSeconds();
  const cases = {
    missing: { 'content-type': JSON_API, revision: REVISION },
    'wrong secret': signedHeaders('not-the-secret', raw),
    'expired (t = now - 400 s)': signedHeaders(S.EDGE_SIGNING_SECRET, raw, { t: t - 400 }),
    'future (t = now + 400 s)': signedHeaders(S.EDGE_SIGNING_SECRET, raw, { t: t + 400 }),
    'tampered body': signedHeaders(S.EDGE_SIGNING_SECRET, raw.replace('Placed Order', 'Placed Order ')),
    'signed another timestamp': { ...signedHeaders(S.EDGE_SIGNING_SECRET, raw, { t }), 'x-klaviyo-edge-signature': edgeSignature(S.EDGE_SIGNING_SECRET, raw, t).replace(`t=${t}`, `t=${t - 1}`) },
    'no t': { ...signedHeaders(S.EDGE_SIGNING_SECRET, raw), 'x-klaviyo-edge-signature': edgeSignature(S.EDGE_SIGNING_SECRET, raw).split(',')[1] },
    'no v2': { ...signedHeaders(S.EDGE_SIGNING_SECRET, raw), 'x-klaviyo-edge-signature': `t=${t}` },
    'empty': { ...signedHeaders(S.EDGE_SIGNING_SECRET, raw), 'x-klaviyo-edge-signature': '' },
    'garbage': { ...signedHeaders(S.EDGE_SIGNING_SECRET, raw), 'x-klaviyo-edge-signature': 't=abc,v2=zz' },
    'truncated v2': { ...signedHeaders(S.EDGE_SIGNING_SECRET, raw), 'x-klaviyo-edge-signature': edgeSignature(S.EDGE_SIGNING_SECRET, raw).slice(0, -2) },
    'the secret itself as v2': { ...signedHeaders(S.EDGE_SIGNING_SECRET, raw), 'x-klaviyo-edge-signature': `t=${t},v2=${S.EDGE_SIGNING_SECRET}` },
    'signed for another route': signedHeaders(S.EDGE_SIGNING_SECRET, raw, { path: '/api/profile-import' }),
    'version 1 (no route)': { ...signedHeaders(S.EDGE_SIGNING_SECRET, raw), 'x-klaviyo-edge-signature': `t=${t},v1=${createHmac('sha256', S.EDGE_SIGNING_SECRET).update(`${t}.${raw}`).digest('hex')}` },
  };
  for (const [name, headers] of Object.entries(cases)) {
    const res = await call('/api/events', { method: 'POST', headers, body: raw });
    assertError(res, 401);
    assert.equal(upstreamCount(), 0, `${name}: nothing forwarded`);
  }
  // The tampered case above signs a different text than it sends; check it is really rejected
  // for the body, not for something else: the same headers with the signed text go through.
  const signedText = raw.replace('Placed Order', 'Placed Order ');
  const ok = await call('/api/events', { method: 'POST', headers: signedHeaders(S.EDGE_SIGNING_SECRET, signedText), body: signedText });
  assert.equal(ok.status, 202, ok.text);
});

test('POST /api/* other than /api/events: unsigned from an allowed browser origin -> refused (401/403), nothing forwarded', async () => {
  // The spec names no status for this case (only /api/events takes browser calls): either
  // "not authenticated" (401) or "not allowed" (403) will do, as long as nothing goes upstream.
  for (const [route, fixture] of API_ROUTES.slice(1)) {
    const res = await apiPost(route, body(fixture), { sign: false, origin: SHOP_ORIGIN });
    assert.ok([401, 403].includes(res.status), `/api/${route}: ${res.status} ${res.text}`);
    assertError(res, res.status);
  }
  assert.equal(upstreamCount(), 0);
});

// ---------- /api/events from a browser (unsigned) ----------

test('POST /api/events unsigned from an allowed origin with an allowed metric: forwarded with the private key, CORS', async () => {
  const raw = body('apiEvent'); // metric "Placed Order", listed in BROWSER_SERVER_METRICS
  const res = await apiPost('events', raw, { sign: false, origin: SHOP_ORIGIN });
  assert.equal(res.status, 202, res.text);
  assertCors(res);
  const [r] = upstream({ path: '/api/events' }).requests;
  assert.ok(r && r.accepted, 'emulator accepted it');
  assert.equal(r.authKeyHash, sha256(S.KLAVIYO_PRIVATE_KEY));
});

test('POST /api/events unsigned from an allowed origin, metric not in BROWSER_SERVER_METRICS -> 403, nothing forwarded', async () => {
  const ev = sample('apiEvent');
  for (const name of ['Viewed Product', 'placed order', 'Placed Order ', 'Placed']) {
    ev.data.attributes.metric.data.attributes.name = name;
    assertError(await apiPost('events', JSON.stringify(ev), { sign: false, origin: SHOP_ORIGIN }), 403);
  }
  assert.equal(upstreamCount(), 0);
});

test('POST /api/events unsigned and without Origin -> 401, nothing forwarded', async () => {
  assertError(await apiPost('events', body('apiEvent'), { sign: false }), 401);
  assert.equal(upstreamCount(), 0);
});

// A wrong origin is a 403 (the issue: "Wrong origin: 403"), even when it is also unsigned.
test('POST /api/events unsigned from an Origin that is not allowed -> 403, no CORS, nothing forwarded', async () => {
  for (const origin of ['https://evil.example', 'https://shop.example.evil.test', 'null']) {
    const res = await apiPost('events', body('apiEvent'), { sign: false, origin });
    assertError(res, 403);
    assertNoCors(res);
  }
  assert.equal(upstreamCount(), 0);
});

// ---------- body validation ----------

test('POST /api/events (signed) with no metric name -> 400 naming /data/attributes/metric/data/attributes/name, nothing forwarded', async () => {
  const ev = sample('apiEvent');
  delete ev.data.attributes.metric.data.attributes.name;
  assertError(await apiPost('events', JSON.stringify(ev)), 400, { pointer: '/data/attributes/metric/data/attributes/name' });
  ev.data.attributes.metric.data.attributes.name = '';
  assertError(await apiPost('events', JSON.stringify(ev)), 400, { pointer: '/data/attributes/metric/data/attributes/name' });
  assert.equal(upstreamCount(), 0);
});

test('POST /api/events (browser) with no metric name -> 400 or 403, nothing forwarded', async () => {
  const ev = sample('apiEvent');
  delete ev.data.attributes.metric.data.attributes.name;
  const res = await apiPost('events', JSON.stringify(ev), { sign: false, origin: SHOP_ORIGIN });
  assert.ok([400, 403].includes(res.status), `${res.status}: ${res.text}`);
  assertError(res, res.status);
  assert.equal(upstreamCount(), 0);
});

test('POST /api/* (signed) with bodies that are not the documented shape -> 400 with a pointer, nothing forwarded', async () => {
  for (const [route] of API_ROUTES) {
    for (const bad of ['{}', '{"data":null}', '[]', '{"data":{"type":"wrong","attributes":{}}}']) {
      const res = await apiPost(route, bad);
      assertError(res, 400);
      // "" points at the whole body (RFC 6901): a top-level array is not a JSON:API document.
      const pointers = res.json.errors.map((e) => e.source?.pointer).filter((p) => typeof p === 'string');
      assert.ok(pointers.some((p) => p === '' || p.startsWith('/')), `/api/${route} ${bad}: a source.pointer (got ${JSON.stringify(res.json.errors)})`);
    }
  }
  assert.equal(upstreamCount(), 0);
});

test('POST /api/events (signed) with malformed JSON -> 400, nothing forwarded', async () => {
  for (const bad of ['{"data": {', 'not json', '']) {
    assertError(await apiPost('events', bad), 400);
  }
  assert.equal(upstreamCount(), 0);
});

// ---------- body size ----------

/** A clientEvent padded with a property so that its JSON is exactly `bytes` long. */
function paddedEvent(bytes, fixture = 'clientEvent') {
  const ev = sample(fixture);
  ev.data.attributes.properties.pad = '';
  const base = Buffer.byteLength(JSON.stringify(ev));
  ev.data.attributes.properties.pad = 'x'.repeat(bytes - base);
  const raw = JSON.stringify(ev);
  assert.equal(Buffer.byteLength(raw), bytes);
  return raw;
}

// Large bodies go over their own connection (worker.raw): a refused upload may leave a pooled
// keep-alive connection unusable, which would fail the next test for the wrong reason.
async function rawPost(p, headers, raw, worker = w) {
  return clean(await worker.raw(p, { method: 'POST', headers, body: raw }));
}
const clientHeaders = { 'content-type': JSON_API, revision: REVISION, origin: SHOP_ORIGIN };

test('bodies over MAX_BODY_BYTES -> 413 before they are read, nothing forwarded; exactly the limit passes', async () => {
  // A small limit: the worker answers a declared-too-large body without reading it, and
  // a client still sending megabytes would see its connection reset instead.
  const LIMIT = 65536;
  const v = await edge.start({ MAX_BODY_BYTES: String(LIMIT) }, [], 'limit');
  assertError(await rawPost('/client/events?company_id=AbC123', clientHeaders, paddedEvent(LIMIT + 1), v), 413);
  const rawApi = paddedEvent(LIMIT + 1, 'apiEvent');
  assertError(await rawPost('/api/events', signedHeaders(S.EDGE_SIGNING_SECRET, rawApi), rawApi, v), 413);
  const hook = webhookRequest(S.KLAVIYO_WEBHOOK_SECRET, { body: 'x'.repeat(LIMIT + 1) });
  assertError(await rawPost('/webhooks/klaviyo', hook.headers, hook.body, v), 413);
  assert.equal(upstreamCount(), 0);
  const res = await rawPost('/client/events?company_id=AbC123', clientHeaders, paddedEvent(LIMIT), v);
  assert.equal(res.status, 202, `exactly ${LIMIT} bytes: ${res.status} ${res.text.slice(0, 200)}`);
  assert.equal(upstream({ path: '/client/events', accepted: true }).count, 1);
  await v.close();
});

test('the default MAX_BODY_BYTES is 5 MiB, Klaviyo\'s own ceiling (the core\'s limit too)', async () => {
  const res = await rawPost('/client/events?company_id=AbC123', clientHeaders, paddedEvent(2 * 1048576));
  assert.equal(res.status, 202, `2 MiB: ${res.status} ${res.text.slice(0, 200)}`);
});

test('a streamed (chunked, no Content-Length) body over MAX_BODY_BYTES -> 413, nothing forwarded', async () => {
  const chunks = Array.from({ length: 96 }, () => 'x'.repeat(64 * 1024)); // 6 MiB
  assertError(await rawPost('/client/events?company_id=AbC123', clientHeaders, chunks), 413);
  assert.equal(upstreamCount(), 0);
  // A small chunked body is fine.
  const raw = body('clientEvent');
  const res = await rawPost('/client/events?company_id=AbC123', clientHeaders, [raw.slice(0, 10), raw.slice(10)]);
  assert.equal(res.status, 202, res.text);
});

test('concurrent /client calls, declared and streamed, each forward their own body exactly once', async () => {
  // The worker awaits each body read through a per-isolate slot table (src/edge/executor.rs);
  // 40 requests in flight at once must neither swap nor lose a body.
  const sent = Array.from({ length: 40 }, (_, i) => {
    const ev = sample('clientEvent');
    ev.data.attributes.properties = { n: i, tag: `concurrent-${i}` };
    return JSON.stringify(ev);
  });
  const answers = await Promise.all(sent.map((raw, i) => (i % 2
    ? clientPost('events', raw)
    : rawPost('/client/events?company_id=AbC123', clientHeaders, [raw.slice(0, 7), raw.slice(7)]))));
  assert.deepEqual(answers.map((r) => r.status), sent.map(() => 202));
  const seen = upstream({ path: '/client/events' });
  assert.equal(seen.count, sent.length);
  const got = seen.requests.map((r) => r.body.data.attributes.properties.n).sort((a, b) => a - b);
  assert.deepEqual(got, sent.map((_, i) => i), 'each body once');
  for (const r of seen.requests) {
    assert.deepEqual(r.body, asSent(sent[r.body.data.attributes.properties.n]), 'forwarded unchanged but for the visitor\'s address');
  }
});

test('errors answered to an allowed Origin carry CORS headers (else the browser sees a network error and retries)', async () => {
  // The 413 with a small limit: a client still writing megabytes when the worker answers
  // and closes can have that answer reset away by TCP (see the limit test above).
  const small = await edge.start({ MAX_BODY_BYTES: '65536' }, [], 'cors-413');
  try {
    const cases = [
      ['company_id mismatch 403', () => clientPost('events', body('clientEvent'), { companyId: 'XyZ789' })],
      ['malformed JSON 400', () => clientPost('events', '{"data": {')],
      ['413', () => rawPost('/client/events?company_id=AbC123', clientHeaders, paddedEvent(65536 + 1), small)],
      ['browser metric 403', () => {
        const ev = sample('apiEvent');
        ev.data.attributes.metric.data.attributes.name = 'Viewed Product';
        return apiPost('events', JSON.stringify(ev), { sign: false, origin: SHOP_ORIGIN });
      }],
      ['browser event without metric name', () => {
        const ev = sample('apiEvent');
        delete ev.data.attributes.metric.data.attributes.name;
        return apiPost('events', JSON.stringify(ev), { sign: false, origin: SHOP_ORIGIN });
      }],
    ];
    const missing = [];
    for (const [name, send] of cases) {
      const res = await send();
      assert.ok(res.status >= 400, `${name}: ${res.status}`);
      if (res.headers['access-control-allow-origin'] !== SHOP_ORIGIN) missing.push(`${name} (${res.status})`);
    }
    assert.deepEqual(missing, [], 'errors without Access-Control-Allow-Origin');
    assert.equal(upstreamCount(), 0);
  } finally {
    await small.close();
  }
});

// ---------- webhooks ----------

test('POST /webhooks/klaviyo, valid: 200 {"ok":true} and the raw body is POSTed to WEBHOOK_FORWARD_URL', async () => {
  const req = webhookRequest(S.KLAVIYO_WEBHOOK_SECRET, { body: JSON.stringify(webhookBody(), null, 1) + '\n' });
  const res = await webhookPost(req);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { ok: true });
  const got = await waitFor(() => edge.sink.received[0], { what: 'the forwarded webhook' });
  assert.equal(got.method, 'POST');
  assert.equal(got.body, req.body, 'the raw body, byte for byte');
  await sleep(200);
  assert.equal(edge.sink.received.length, 1, 'forwarded once');
  assert.equal(upstreamCount(), 0, 'nothing sent to Klaviyo');
});

test('POST /webhooks/klaviyo with a timestamp 200 s old is accepted', async () => {
  const res = await webhookPost(webhookRequest(S.KLAVIYO_WEBHOOK_SECRET, { timestamp: nowSeconds() - 200 }));
  assert.equal(res.status, 200, res.text);
});

test('POST /webhooks/klaviyo: bad, missing, stale, future, tampered, id mismatch -> 401, nothing forwarded', async () => {
  const secret = S.KLAVIYO_WEBHOOK_SECRET;
  const original = JSON.stringify(webhookBody());
  const t = nowSeconds();
  const cases = {
    'wrong secret': webhookRequest(secret, { signWith: 'whsec_wrong' }),
    'no Klaviyo-Signature': webhookRequest(secret, { omit: ['klaviyo-signature'] }),
    'no Klaviyo-Timestamp': webhookRequest(secret, { omit: ['klaviyo-timestamp'] }),
    'no Klaviyo-Webhook-Id': webhookRequest(secret, { omit: ['klaviyo-webhook-id'] }),
    'replayed (timestamp now - 400 s)': webhookRequest(secret, { timestamp: t - 400 }),
    'from the future (now + 400 s)': webhookRequest(secret, { timestamp: t + 400 }),
    'tampered body': webhookRequest(secret, { body: original.replace('sent_sms', 'received_sms'), signBody: original }),
    'header webhook id differs from meta': webhookRequest(secret, { webhookId: '01JWEBHOOKAAAA', headerWebhookId: '01JWEBHOOKBBBB' }),
    'signature over body only (no timestamp)': (() => {
      const r = webhookRequest(secret, { body: original });
      r.headers['klaviyo-signature'] = webhookRequest(secret, { body: original, timestamp: '' }).headers['klaviyo-signature'];
      return r;
    })(),
    'empty signature': (() => { const r = webhookRequest(secret); r.headers['klaviyo-signature'] = ''; return r; })(),
    'signature of another timestamp': (() => {
      const r = webhookRequest(secret, { timestamp: t });
      r.headers['klaviyo-timestamp'] = String(t - 1);
      return r;
    })(),
    'the secret itself as signature': (() => { const r = webhookRequest(secret); r.headers['klaviyo-signature'] = secret; return r; })(),
  };
  for (const [name, req] of Object.entries(cases)) {
    const res = await webhookPost(req);
    assert.equal(res.status, 401, `${name}: ${res.status} ${res.text}`);
    assertError(res, 401);
  }
  // Barrier: one valid webhook after the bad ones; it must be the only thing forwarded.
  const good = webhookRequest(secret);
  assert.equal((await webhookPost(good)).status, 200);
  await waitFor(() => edge.sink.received.length >= 1, { what: 'the valid webhook' });
  await sleep(200);
  assert.deepEqual(edge.sink.received.map((r) => r.body), [good.body], 'only the valid webhook was forwarded');
});

test('POST /webhooks/klaviyo: ISO 8601 / millisecond timestamps, if accepted at all, are held to the same 300 s window', async () => {
  const secret = S.KLAVIYO_WEBHOOK_SECRET;
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  // Fresh: optional in the spec (200 if supported, 401 if only unix seconds are).
  for (const ts of [iso(Date.now()), String(Date.now())]) {
    const res = await webhookPost(webhookRequest(secret, { timestamp: ts }));
    assert.ok([200, 401].includes(res.status), `fresh ${ts}: ${res.status} ${res.text}`);
  }
  // Stale or in the future: always refused, whatever the format.
  for (const ts of [iso(Date.now() - 400_000), iso(Date.now() + 400_000), String(Date.now() - 400_000), String(Date.now() + 400_000), '2026-13-45T99:99:99Z', 'yesterday']) {
    const res = await webhookPost(webhookRequest(secret, { timestamp: ts }));
    assert.equal(res.status, 401, `timestamp ${ts}: ${res.status} ${res.text}`);
  }
});

test('POST /webhooks/klaviyo: a validly signed body that is not JSON -> 400, nothing forwarded', async () => {
  const res = await webhookPost(webhookRequest(S.KLAVIYO_WEBHOOK_SECRET, { body: '{"data": [' }));
  assertError(res, 400);
  const good = webhookRequest(S.KLAVIYO_WEBHOOK_SECRET);
  assert.equal((await webhookPost(good)).status, 200);
  await waitFor(() => edge.sink.received.length >= 1, { what: 'the valid webhook' });
  await sleep(200);
  assert.deepEqual(edge.sink.received.map((r) => r.body), [good.body]);
});

test('POST /webhooks/klaviyo without WEBHOOK_FORWARD_URL: 200 {"ok":true}', async () => {
  const v = await edge.start({}, ['WEBHOOK_FORWARD_URL'], 'no-forward');
  const res = await webhookPost(webhookRequest(S.KLAVIYO_WEBHOOK_SECRET), v);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { ok: true });
  await v.close();
});

// ---------- settings ----------

test('settings: MAX_BODY_BYTES, KLAVIYO_REVISION and ALLOWED_ORIGINS with spaces are honoured', async () => {
  const v = await edge.start({
    MAX_BODY_BYTES: '4096',
    KLAVIYO_REVISION: '2026-01-15',
    ALLOWED_ORIGINS: ` https://other.example , ${SHOP_ORIGIN} `,
  }, [], 'settings');
  assertError(await rawPost('/client/events?company_id=AbC123', clientHeaders, paddedEvent(4097), v), 413);
  assert.equal(upstreamCount(), 0);
  let res = await rawPost('/client/events?company_id=AbC123', clientHeaders, paddedEvent(4096), v);
  assert.equal(res.status, 202, res.text);
  assertCors(res);
  res = await clientPost('events', body('clientEvent'), { worker: v, origin: 'https://other.example' });
  assert.equal(res.status, 202, res.text);
  assertCors(res, 'https://other.example');
  res = await apiPost('events', body('apiEvent'), { worker: v, headers: { revision: undefined } });
  assert.equal(res.status, 202, res.text);
  const [r] = upstream({ path: '/api/events' }).requests;
  assert.equal(r.headers.revision, '2026-01-15', 'KLAVIYO_REVISION is used upstream');
  await v.close();
});

// A required setting that is missing: 500 naming it, no secret in the answer, nothing forwarded.
const MISSING = [
  ['KLAVIYO_PRIVATE_KEY', 'POST /api/events (signed)', null, (v) => apiPost('events', body('apiEvent'), { worker: v })],
  ['KLAVIYO_PRIVATE_KEY', 'POST /api/profile-import (signed), set but empty', { KLAVIYO_PRIVATE_KEY: '' }, (v) => apiPost('profile-import', body('profileImport'), { worker: v })],
  ['KLAVIYO_PRIVATE_KEY', 'POST /api/events (browser)', null, (v) => apiPost('events', body('apiEvent'), { worker: v, sign: false, origin: SHOP_ORIGIN })],
  ['EDGE_SIGNING_SECRET', 'POST /api/event-bulk-create-jobs (signed)', null, (v) => apiPost('event-bulk-create-jobs', body('bulkEventsJob'), { worker: v })],
  ['KLAVIYO_PUBLIC_KEY', 'POST /client/events', null, (v) => clientPost('events', body('clientEvent'), { worker: v })],
  ['KLAVIYO_WEBHOOK_SECRET', 'POST /webhooks/klaviyo', null, (v) => webhookPost(webhookRequest(S.KLAVIYO_WEBHOOK_SECRET), v)],
];

for (const [setting, what, overrides, send] of MISSING) {
  test(`missing ${setting}: ${what} -> 500 naming it, no secret in the answer, nothing forwarded`, async () => {
    const v = overrides ? await edge.start(overrides, [], `empty ${setting}`) : await edge.start({}, [setting], `no ${setting}`);
    try {
      const res = await send(v); // `call` already checked for secrets
      assertError(res, 500, { detail: setting });
      assert.equal(upstreamCount(), 0);
    } finally {
      await v.close();
    }
  });
}

// A setting given but unusable: every route, /health too, is a 500 naming it and what it
// must be, never its value. A binding given as a [vars] string of its name would
// otherwise be taken as absent, its safeguard silently off.
const UNUSABLE = [
  ['DELIVERY_QUEUE', 'klaviyo-deliveries', /must be a Queue binding/],
  ['DELIVERY_DEAD_LETTERS', 'klaviyo-deliveries-dead', /must be a Queue binding/],
  ['REPLAY_GUARD', 'ReplayGuard', /must be a Durable Object namespace binding/],
  ['REPLAY_KV', 'replay', /must be a KV namespace binding/],
  ['BROWSER_RATE_LIMITER', '1001', /must be a rate-limit binding/],
  ['ALLOWED_ORIGINS', '*', /must list origins like https:\/\/shop\.example/],
  ['ALLOWED_ORIGINS', 'https://shop.example/klaviyo', /must list origins/],
  ['ROUTE_PREFIX', '/klaviyo/*', /must be a plain path/],
  ['ALLOW_NULL_ORIGIN', 'yes', /must be true or false/],
  // Sandboxed frames are no origin of the shop's: their own setting is named.
  ['ALLOWED_ORIGINS', 'https://shop.example,null', /not null: see ALLOW_NULL_ORIGIN/],
];

for (const [setting, value, reason] of UNUSABLE) {
  test(`${setting} = ${JSON.stringify(value)}: every route, /health too, -> 500 bad_setting naming it, nothing forwarded`, async () => {
    const v = await edge.start({ [setting]: value }, [], `unusable ${setting}`);
    try {
      for (const res of [
        await call('/health', { method: 'GET' }, v),
        await clientPost('events', body('clientEvent'), { worker: v }),
        await apiPost('events', body('apiEvent'), { worker: v }),
      ]) {
        assertError(res, 500, { detail: setting });
        assert.equal(res.json.errors[0].code, 'bad_setting');
        assert.match(res.json.errors[0].detail, reason);
        assert.ok(!res.text.includes(value) || value === '*', `${res.label}: the value is not echoed`);
      }
      assert.equal(upstreamCount(), 0);
    } finally {
      await v.close();
    }
  });
}

// ---------- upstream faults ----------

test('upstream 429 with Retry-After 5: 429 passed back with Retry-After (exposed to the browser), not retried', async () => {
  edge.emu.addFault({ path: '/client/events', status: 429, retryAfter: 5 });
  const res = await clientPost('events', body('clientEvent'));
  assert.equal(res.status, 429, res.text);
  assert.equal(res.headers['retry-after'], '5');
  assertCors(res);
  assertExposesRetryAfter(res);
  assert.equal(upstream({ path: '/client/events' }).count, 1, 'not retried inside the request');
});

test('upstream 429 with Retry-After 5 on /api/events (signed): 429 with Retry-After', async () => {
  edge.emu.addFault({ path: '/api/events', status: 429, retryAfter: 5 });
  const res = await apiPost('events', body('apiEvent'));
  assert.equal(res.status, 429, res.text);
  assert.equal(res.headers['retry-after'], '5');
  assert.equal(upstream({ path: '/api/events' }).count, 1);
});

test('upstream 429 with Retry-After 1: retried once inside the request -> 202', async () => {
  edge.emu.addFault({ path: '/client/events', status: 429, retryAfter: 1 });
  const raw = body('clientEvent');
  const res = await clientPost('events', raw);
  assert.equal(res.status, 202, res.text);
  const seen = upstream({ path: '/client/events' });
  assert.deepEqual(seen.requests.map((r) => r.status), [429, 202]);
  assert.deepEqual(seen.requests[1].body, asSent(raw));
});

test('upstream 429 with Retry-After 1 twice: one retry only, then 429 passed back', async () => {
  edge.emu.addFault({ path: '/client/events', status: 429, retryAfter: 1, count: 2 });
  const res = await clientPost('events', body('clientEvent'));
  assert.equal(res.status, 429, res.text);
  assert.ok(res.headers['retry-after'] !== undefined, 'Retry-After passed back');
  assert.equal(upstream({ path: '/client/events' }).count, 2);
});

test('upstream 503 twice then 202: retried -> 202, the emulator saw 3 identical requests', async () => {
  edge.emu.addFault({ path: '/client/events', status: 503, count: 2 });
  const raw = body('clientEvent');
  const res = await clientPost('events', raw);
  assert.equal(res.status, 202, res.text);
  const seen = upstream({ path: '/client/events' });
  assert.deepEqual(seen.requests.map((r) => r.status), [503, 503, 202]);
  for (const r of seen.requests) {
    assert.deepEqual(r.body, asSent(raw));
    assert.equal(r.headers.revision, REVISION);
  }
});

test('upstream 500 once on /api/events (signed): retried with the key -> 202, both attempts the same event (the time the worker accepted it)', async () => {
  // The event has neither unique_id nor time: had the first attempt reached Klaviyo, a
  // retry without a time would be a second event, timed when it arrived.
  edge.emu.addFault({ path: '/api/events', status: 500 });
  const before = Math.floor(Date.now() / 1000);
  const res = await apiPost('events', body('apiEvent'));
  const after = Math.ceil(Date.now() / 1000);
  assert.equal(res.status, 202, res.text);
  const seen = upstream({ path: '/api/events' });
  assert.deepEqual(seen.requests.map((r) => r.status), [500, 202]);
  for (const r of seen.requests) assert.equal(r.authKeyHash, sha256(S.KLAVIYO_PRIVATE_KEY));
  const [first, second] = seen.requests.map((r) => r.body);
  assert.deepEqual(second, first, 'the retry is the same body');
  const time = Date.parse(first.data.attributes.time) / 1000;
  assert.ok(time >= before && time <= after, `timed when accepted: ${first.data.attributes.time}`);
  const { time: _, ...rest } = first.data.attributes;
  assert.deepEqual(rest, sample('apiEvent').data.attributes, 'the rest as sent');
});

test('upstream 503 on every attempt: 502 JSON:API error after a bounded number of attempts', async () => {
  edge.emu.addFault({ path: '/client/events', status: 503, count: 50 });
  const t0 = Date.now();
  const res = await clientPost('events', body('clientEvent'));
  const ms = Date.now() - t0;
  assertError(res, 502);
  assertCors(res);
  const n = upstream({ path: '/client/events' }).count;
  assert.ok(n >= 2 && n <= 5, `bounded attempts (2..5), got ${n}`);
  assert.ok(ms < 20_000, `answered in ${ms} ms`);
});

test('upstream drops the connection once: retried -> 202', async () => {
  edge.emu.addFault({ path: '/client/events', drop: true });
  const res = await clientPost('events', body('clientEvent'));
  assert.equal(res.status, 202, res.text);
  const seen = upstream({ path: '/client/events' });
  assert.equal(seen.count, 2);
  assert.equal(seen.requests[0].fault, 'drop');
  assert.equal(seen.requests[1].status, 202);
});

test('upstream 400: passed back as is, not retried', async () => {
  edge.emu.addFault({ path: '/client/events', status: 400 });
  const res = await clientPost('events', body('clientEvent'));
  assertError(res, 400);
  assertCors(res);
  assert.equal(upstream({ path: '/client/events' }).count, 1);
});

test('upstream unreachable (KLAVIYO_API_BASE on a closed port): 502 after retries, no secret in the answer', async () => {
  const v = await edge.start({ KLAVIYO_API_BASE: 'http://127.0.0.1:9' }, [], 'unreachable');
  try {
    const t0 = Date.now();
    assertError(await apiPost('events', body('apiEvent'), { worker: v }), 502);
    assertError(await clientPost('events', body('clientEvent'), { worker: v }), 502);
    assert.ok(Date.now() - t0 < 40_000);
  } finally {
    await v.close();
  }
});

test('upstream that never answers: each attempt with the private key times out (UPSTREAM_TIMEOUT_MS), then 502', async () => {
  const v = await edge.start({ UPSTREAM_TIMEOUT_MS: '300' }, [], 'timeout');
  try {
    edge.emu.addFault({ hold: true, count: 3, path: '/api/events' });
    const t0 = Date.now();
    assertError(await apiPost('events', body('apiEvent'), { worker: v }), 502);
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 10_000, `took ${took} ms`);
  } finally {
    edge.emu.release();
    await v.close();
  }
});

test('a /client call leaves the deadline to its caller: the worker sets no timer of its own on it', async () => {
  // With UPSTREAM_TIMEOUT_MS applied, three held attempts would end in a 502 after about
  // 1.5 s (3 x 300 ms plus 200 + 400 ms of backoff); the caller waits 3 s.
  const v = await edge.start({ UPSTREAM_TIMEOUT_MS: '300' }, [], 'client-deadline');
  try {
    edge.emu.addFault({ hold: true, count: 3, path: '/client/events' });
    const before = edge.emu.requests({ path: '/client/events' }).count;
    const t0 = Date.now();
    const outcome = await fetch(`${v.url}/client/events?company_id=${COMPANY_ID}`, {
      method: 'POST',
      headers: { 'content-type': JSON_API, revision: REVISION, origin: SHOP_ORIGIN },
      body: body('clientEvent'),
      signal: AbortSignal.timeout(3000),
    }).then((r) => `answered ${r.status}`, (e) => e.name);
    assert.equal(outcome, 'TimeoutError', 'the caller gave up first');
    assert.ok(Date.now() - t0 >= 2900);
    assert.equal(edge.emu.requests({ path: '/client/events' }).count - before, 1, 'one upstream attempt, never timed out and retried');
  } finally {
    edge.emu.release();
    await v.close();
  }
});

// ---------- secrets, across everything ----------

test('no secret in any response the worker gave in this run, nor in anything sent upstream', () => {
  assert.ok(responseLog.length > 50, `responses scanned: ${responseLog.length}`);
  assert.deepEqual(leaksInLog(S), [], 'secrets in worker responses');
  assert.deepEqual(upstreamLeaks, [], 'secrets in what the emulator / webhook sink received');
  console.log(`# scanned ${responseLog.length} worker responses`);
});
