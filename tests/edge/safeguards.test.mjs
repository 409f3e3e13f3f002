// The worker's safeguards, each shown holding in real workerd
// (Miniflare) against the Klaviyo emulator; and the server-side order and list routes.
//   node --test tests/edge/safeguards.test.mjs        (needs `bash .ci/build.sh edge` first)
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sample } from '../emulator/fixtures.mjs';
import {
  startEdge, signedHeaders, edgeSignature, forwardSignature, webhookRequest, findSecrets, nowSeconds,
  COMPANY_ID, SHOP_ORIGIN, JSON_API, waitFor,
} from './harness.mjs';

let edge;
let w;
let S;

before(async () => {
  edge = await startEdge();
  w = edge.worker;
  S = edge.secrets;
});
after(async () => { await edge?.close(); });
beforeEach(() => {
  edge.emu.reset();
  edge.sink.clear();
});

/** The emulator's records of requests to `path`. */
const upstream = (p) => edge.emu.requests().requests.filter((r) => r.path === p);
const upstreamCount = () => edge.emu.requests().requests.length;

function clean(res) {
  const leaked = [...findSecrets(res.text, S), ...findSecrets(JSON.stringify(res.headers), S)];
  assert.deepEqual(leaked, [], `${res.label} leaks ${leaked.join(', ')}`);
  return res;
}

async function post(p, raw, headers, worker = w) {
  return clean(await worker.call(p, { method: 'POST', headers, body: raw }));
}

const signed = (p, raw, opts = {}, worker = w) => post(p, raw, signedHeaders(S.EDGE_SIGNING_SECRET, raw, { path: p, ...opts }), worker);
const browser = (raw, worker = w, extra = {}) => post('/api/events', raw, { 'content-type': JSON_API, origin: SHOP_ORIGIN, ...extra }, worker);

/** An /api/events body whose metric members are `members` (raw JSON text). */
function eventWith(members, profile = '{"email":"ann@example.com"}') {
  return `{"data":{"type":"event","attributes":{"properties":{"n":"${randomBytes(4).toString('hex')}"},`
    + `"metric":{"data":{"type":"metric","attributes":{${members}}}},`
    + `"profile":{"data":{"type":"profile","attributes":${profile}}}}}}`;
}

function assertError(res, status) {
  assert.equal(res.status, status, `${res.label}: ${res.status} ${res.text.slice(0, 300)}`);
  assert.ok(Array.isArray(res.json?.errors) && res.json.errors.length > 0, `${res.label}: a JSON:API error`);
}

test('a duplicate metric name cannot slip past BROWSER_SERVER_METRICS (or anywhere else)', async () => {
  // Read first, "Started Checkout" is allowed; Klaviyo reads the last, "Placed Order".
  const forged = eventWith('"name":"Started Checkout","name":"Placed Order"');
  const res = await browser(forged);
  assertError(res, 400);
  assert.match(res.json.errors[0].source.pointer, /\/metric\/data\/attributes\/name$/);
  assertError(await signed('/api/events', forged), 400);
  assertError(await post(`/client/events?company_id=${COMPANY_ID}`, '{"data":{"type":"event","type":"x"}}', { 'content-type': JSON_API, origin: SHOP_ORIGIN }), 400);
  assert.equal(upstreamCount(), 0, 'nothing forwarded');
});

test('an upstream redirect is not followed, so the private key never travels; KLAVIYO_API_BASE must be https', async () => {
  const thief = [];
  const server = http.createServer((req, res) => { thief.push(req.headers); res.end('{}'); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const elsewhere = `http://127.0.0.1:${server.address().port}/steal`;
    edge.emu.addFault({ path: '/api/events', status: 307, headers: { location: elsewhere } });
    const res = await signed('/api/events', eventWith('"name":"Placed Order"'));
    assertError(res, 502);
    assert.match(res.json.errors[0].detail, /redirect/);
    assert.equal(thief.length, 0, 'the redirect target heard nothing');
    assert.equal(upstream('/api/events').length, 1, 'and it was not retried');
  } finally {
    server.close();
  }
  const plain = await edge.start({ KLAVIYO_API_BASE: 'http://a.klaviyo.example' }, [], 'http-base');
  const res = await signed('/api/events', eventWith('"name":"Placed Order"'), {}, plain);
  assertError(res, 500);
  assert.match(res.json.errors[0].detail, /KLAVIYO_API_BASE/);
  await plain.close();
});

test('a signature timestamp at the ends of i64 is stale, not wrapped to fresh', async () => {
  for (const t of ['-9223372036854775808', '9223372036854775807', String(nowSeconds() - 301)]) {
    const raw = eventWith('"name":"Placed Order"');
    const sig = edgeSignature(S.EDGE_SIGNING_SECRET, raw, t);
    const res = await post('/api/events', raw, { 'content-type': JSON_API, 'x-klaviyo-edge-signature': sig });
    assertError(res, 401);
  }
  const hook = webhookRequest(S.KLAVIYO_WEBHOOK_SECRET, { timestamp: '-9223372036854775808' });
  assertError(await post('/webhooks/klaviyo', hook.body, hook.headers), 401);
  assert.equal(upstreamCount(), 0);
});

test('the signature covers the exact bytes; a BOM stays, bad UTF-8 is a 400', async () => {
  const raw = eventWith('"name":"Placed Order"');
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(raw)]);
  const t = nowSeconds();
  const sig = (bytes) => edgeSignature(S.EDGE_SIGNING_SECRET, bytes, t);
  // Signed over the bytes with their BOM: authentic (not 401), then not JSON (400).
  let res = await post('/api/events', bom, { 'content-type': JSON_API, 'x-klaviyo-edge-signature': sig(bom) });
  assertError(res, 400);
  const latin1 = Buffer.from('{"data":"caf\xe9"}', 'latin1');
  res = await post('/api/events', latin1, { 'content-type': JSON_API, 'x-klaviyo-edge-signature': sig(latin1) });
  assertError(res, 400);
  assert.match(res.json.errors[0].detail, /UTF-8/);
  assert.equal(upstreamCount(), 0);
});

test('the signature and the origin are checked before the body is parsed', async () => {
  // A wrong signature on broken JSON: 401 (parsing first answered 400).
  const res = await post('/api/events', '{"data": {', { 'content-type': JSON_API, 'x-klaviyo-edge-signature': `t=${nowSeconds()},v2=${'0'.repeat(64)}` });
  assertError(res, 401);
  // An unsigned body from nowhere: refused from the head alone, before a byte of it is sent.
  assertError(clean(await w.head('/api/events', { headers: { 'content-type': JSON_API } })), 401);
  assertError(clean(await w.head('/api/events', { headers: { 'content-type': JSON_API, origin: 'https://evil.example' } })), 403);
  assert.equal(upstreamCount(), 0);
});

test('a replayed signature is refused, for backend calls and webhooks', async () => {
  const raw = eventWith('"name":"Placed Order"');
  const headers = signedHeaders(S.EDGE_SIGNING_SECRET, raw);
  assert.equal((await post('/api/events', raw, headers)).status, 202);
  const again = await post('/api/events', raw, headers);
  assertError(again, 401);
  assert.match(again.json.errors[0].detail, /already used/);
  assert.equal(upstream('/api/events').length, 1, 'forwarded once');
  const hook = webhookRequest(S.KLAVIYO_WEBHOOK_SECRET);
  assert.equal((await post('/webhooks/klaviyo', hook.body, hook.headers)).status, 200);
  assertError(await post('/webhooks/klaviyo', hook.body, hook.headers), 401);
});

test('the webhook forward is signed with a key of its own direction, so its receiver can trust it', async () => {
  const hook = webhookRequest(S.KLAVIYO_WEBHOOK_SECRET);
  assert.equal((await post('/webhooks/klaviyo', hook.body, hook.headers)).status, 200);
  await waitFor(() => edge.sink.received.length === 1, { what: 'the forwarded webhook' });
  const got = edge.sink.received[0];
  assert.equal(got.body, hook.body);
  const m = /^t=(\d+),v2=([0-9a-f]{64})$/.exec(got.headers['x-klaviyo-edge-signature']);
  assert.ok(m, `signed: ${got.headers['x-klaviyo-edge-signature']}`);
  assert.equal(got.headers['x-klaviyo-edge-signature'], forwardSignature(S.EDGE_SIGNING_SECRET, got.body, m[1]));
});

test('with a KV namespace bound as REPLAY_KV, a replay to another isolate is refused too', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kw-kv-'));
  const options = { kvNamespaces: ['REPLAY_KV'], kvPersist: dir };
  const a = await edge.start({}, [], 'isolate-a', options);
  const b = await edge.start({}, [], 'isolate-b', options);
  try {
    const raw = eventWith('"name":"Placed Order"');
    const headers = signedHeaders(S.EDGE_SIGNING_SECRET, raw);
    assert.equal((await post('/api/events', raw, headers, a)).status, 202);
    assertError(await post('/api/events', raw, headers, b), 401);
    assert.equal(upstream('/api/events').length, 1);
    // Without the binding each isolate only knows its own.
    const c = await edge.start({}, [], 'isolate-c');
    assert.equal((await post('/api/events', raw, headers, c)).status, 202, 'best-effort without KV (documented)');
    await c.close();
  } finally {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Retry-After as an HTTP date is honoured (retried once when it is at most 1 s away)', async () => {
  const soon = new Date(Date.now() + 900).toUTCString();
  edge.emu.addFault({ path: '/api/events', status: 429, retryAfter: soon });
  const res = await signed('/api/events', eventWith('"name":"Placed Order"'));
  assert.equal(res.status, 202, res.text);
  assert.equal(upstream('/api/events').length, 2, 'one retry');
  const later = new Date(Date.now() + 60_000).toUTCString();
  edge.emu.addFault({ path: '/api/events', status: 429, retryAfter: later });
  const passed = await signed('/api/events', eventWith('"name":"Placed Order"'));
  assert.equal(passed.status, 429);
  assert.equal(passed.headers['retry-after'], later);
});

test('the unsigned browser path carries identifiers only, and each client is rate limited', async () => {
  const attrs = await browser(eventWith('"name":"Started Checkout"', '{"email":"ann@example.com","first_name":"Eve"}'));
  assertError(attrs, 403);
  assert.match(attrs.json.errors[0].source.pointer, /first_name/);
  // One identifier names the shopper; two would be joined by the private key (a victim's
  // email beside the caller's phone number), which a /client event can never do.
  const before = upstream('/api/events').length;
  const joined = await browser(eventWith('"name":"Started Checkout"', '{"email":"ann@example.com","phone_number":"+15005550006"}'));
  assertError(joined, 403);
  assert.equal(joined.json.errors[0].source.pointer, '/data/attributes/profile/data/attributes/phone_number');
  assert.equal(upstream('/api/events').length, before, 'nothing forwarded');
  const limited = await edge.start({ BROWSER_RATE_PER_MINUTE: '10' }, [], 'rate');
  try {
    const ip = { 'cf-connecting-ip': '203.0.113.7' };
    assert.equal((await browser(eventWith('"name":"Started Checkout"'), limited, ip)).status, 202);
    const second = await browser(eventWith('"name":"Started Checkout"'), limited, ip);
    assertError(second, 429);
    assert.equal(second.headers['retry-after'], '60');
    assert.equal(second.headers['access-control-allow-origin'], SHOP_ORIGIN, 'a browser can read it');
    assert.equal((await browser(eventWith('"name":"Started Checkout"'), limited, { 'cf-connecting-ip': '198.51.100.1' })).status, 202, 'another client');
  } finally {
    await limited.close();
  }
});

test('with Cloudflare\'s rate-limit binding (BROWSER_RATE_LIMITER) the binding decides', async () => {
  const bound = await edge.start({}, [], 'ratelimit-binding', { ratelimits: { BROWSER_RATE_LIMITER: { simple: { limit: 2, period: 60 } } } });
  try {
    const ip = { 'cf-connecting-ip': '203.0.113.9' };
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await browser(eventWith('"name":"Started Checkout"'), bound, ip)).status);
    assert.deepEqual(statuses, [202, 202, 429, 429]);
  } finally {
    await bound.close();
  }
});

test('orders: a placed order becomes Placed Order + Ordered Product per line in one bulk job, accepted by the spec', async () => {
  const order = {
    order_id: `o-${randomBytes(4).toString('hex')}`,
    value: 59.97,
    value_currency: 'usd',
    // The buyer's name and address travel with the order (a guest's first order is often
    // all Klaviyo learns of them).
    profile: { email: 'ann@example.com', first_name: 'Ann', last_name: 'Hundred', location: { city: 'Hartfield', country: 'United Kingdom', zip: 'TN7 4AB' } },
    items: [
      { product_id: 'p1', name: 'Pooh', quantity: 3, price: 19.99, sku: 'SKU-1', categories: ['Kids'] },
      { product_id: 42, name: 'Piglet', quantity: 1, price: 0 },
    ],
    properties: { DiscountCode: 'WELCOME' },
  };
  const res = await signed('/api/orders', JSON.stringify(order));
  assert.equal(res.status, 202, res.text);
  const [job] = upstream('/api/event-bulk-create-jobs');
  assert.equal(job.accepted, true, JSON.stringify(job.errors));
  const events = job.body.data.attributes['events-bulk-create'].data[0].attributes.events.data;
  assert.deepEqual(job.body.data.attributes['events-bulk-create'].data[0].attributes.profile.data.attributes, order.profile);
  assert.deepEqual(events.map((e) => e.attributes.metric.data.attributes.name), ['Placed Order', 'Ordered Product', 'Ordered Product']);
  assert.deepEqual(events.map((e) => e.attributes.unique_id), [order.order_id, `${order.order_id}-0`, `${order.order_id}-1`]);
  assert.equal(events[0].attributes.value, 59.97);
  assert.equal(events[1].attributes.value, 59.97, 'row total 19.99 × 3, exact');
  assert.equal(events[0].attributes.properties.DiscountCode, 'WELCOME');
  for (const [route, metric, value] of [['fulfilled', 'Fulfilled Order', 59.97], ['cancelled', 'Cancelled Order', 59.97], ['refunded', 'Refunded Order', 59.97]]) {
    edge.emu.reset();
    // A different body per call: a signature is spent once, whatever the path.
    const r = await signed(`/api/orders/${route}`, JSON.stringify({ ...order, value, properties: { Route: route } }));
    assert.equal(r.status, 202, `${route}: ${r.text}`);
    const [j] = upstream('/api/event-bulk-create-jobs');
    assert.equal(j.accepted, true, JSON.stringify(j.errors));
    const evs = j.body.data.attributes['events-bulk-create'].data[0].attributes.events.data;
    assert.deepEqual(evs.map((e) => [e.attributes.metric.data.attributes.name, e.attributes.value]), [[metric, value]]);
  }
  // A past order imported: Klaviyo takes the job's backfill mark (no flow starts).
  edge.emu.reset();
  const past = await signed('/api/orders', JSON.stringify({ ...order, order_id: `${order.order_id}-old`, time: '2021-03-01T10:00:00Z', backfill: true }));
  assert.equal(past.status, 202, past.text);
  const [old] = upstream('/api/event-bulk-create-jobs');
  assert.equal(old.accepted, true, JSON.stringify(old.errors));
  const entry = old.body.data.attributes['events-bulk-create'].data[0].attributes;
  assert.equal(entry.backfill, true);
  assert.equal(entry.events.data[0].attributes.time, '2021-03-01T10:00:00Z');
  edge.emu.reset();
  assertError(await signed('/api/orders', JSON.stringify({ ...order, value: -1 })), 400);
  assertError(await signed('/api/orders/cancelled', JSON.stringify({ ...order, value: -59.97 })), 400);
  assertError(await signed('/api/orders', JSON.stringify({ ...order, time: '2026-11-20' })), 400);
  assertError(await post('/api/orders', JSON.stringify(order), { 'content-type': JSON_API, origin: SHOP_ORIGIN }), 403);
  assert.equal(upstreamCount(), 0);
});

test('lists: members without an id are imported first, then all are added to the list with the key', async () => {
  const email = `list-${randomBytes(4).toString('hex')}@example.com`;
  const body = JSON.stringify({ profiles: [{ id: '01HZZZZZZZZZZZZZZZZZZZZZZZ' }, { email }] });
  const res = await signed('/api/lists/Y6nRLr/profiles', body);
  assert.equal(res.status, 204, res.text);
  const [imp] = upstream('/api/profile-import');
  assert.equal(imp.accepted, true, JSON.stringify(imp.errors));
  assert.equal(imp.body.data.attributes.email, email);
  const [add] = upstream('/api/lists/Y6nRLr/relationships/profiles');
  assert.equal(add.accepted, true, JSON.stringify(add.errors));
  assert.equal(add.body.data.length, 2);
  assert.equal(add.body.data[0].id, '01HZZZZZZZZZZZZZZZZZZZZZZZ');
  assert.ok(add.hasAuth, 'the private key went with it');
  assertError(await signed('/api/lists/Y6nRLr/profiles', '{"profiles":[]}'), 400);
  assertError(await post('/api/lists/Y6nRLr/profiles', body, { 'content-type': JSON_API }), 401);
});
