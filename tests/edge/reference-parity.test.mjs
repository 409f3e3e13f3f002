// The edge bench's "same steps in JavaScript" (tests/bench/same-steps-worker.mjs) does the
// work ours does on a page's `/client` call: both run in one workerd (Miniflare) with the same
// settings, each request goes to both, and they must answer alike (status, headers, body) and
// send Klaviyo (the emulator) the same request, byte for byte in length and member order.
// Without this, `ours ÷ JavaScript` in `npm run bench:edge` could compare unequal work.
//   node --test tests/edge/reference-parity.test.mjs        (needs `bash .ci/build.sh edge` first)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Miniflare } from 'miniflare';
import { sample } from '../emulator/fixtures.mjs';
import { startEmulator } from '../emulator/server.mjs';
import { SAME_STEPS_JS_WORKER } from '../bench/reference-workers.mjs';
import {
  besideOurs, fullBindings, makeSecrets, isEdgeBuilt, NOT_BUILT, COMPANY_ID, SHOP_ORIGIN, JSON_API, REVISION,
} from './harness.mjs';

let emu;
let mf;
let secrets;
const base = {};

before(async () => {
  if (!isEdgeBuilt()) throw new Error(NOT_BUILT);
  emu = await startEmulator({ port: 0 });
  secrets = makeSecrets();
  const bindings = fullBindings({ emu, secrets });
  mf = new Miniflare(besideOurs(bindings, [{ name: 'samesteps', modules: true, script: SAME_STEPS_JS_WORKER, bindings }]));
  await mf.ready;
  for (const name of ['ours', 'samesteps']) base[name] = String(await mf.unsafeGetDirectURL(name)).replace(/\/$/, '');
});
after(async () => {
  await mf?.dispose();
  await emu?.close();
});

// On Cloudflare every request carries `cf-connecting-ip`, set by Cloudflare's edge; Miniflare's
// direct sockets add none, so the tests (and the bench) send it as Cloudflare would.
const VISITOR = { 'cf-connecting-ip': '198.51.100.7' };

// Answer headers that are the runtime's, not the worker's.
const RUNTIME_HEADERS = new Set(['date', 'content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive']);

/** One request to one worker: its answer, and what reached the emulator. */
async function through(name, { path = `/client/events?company_id=${COMPANY_ID}`, method = 'POST', headers = {}, body, fault }) {
  emu.reset();
  if (fault) await fetch(`${emu.url}/__admin/faults`, { method: 'POST', body: JSON.stringify(fault) });
  // A header given as null is not sent.
  const sent = Object.entries({ 'content-type': JSON_API, revision: REVISION, origin: SHOP_ORIGIN, ...VISITOR, ...headers })
    .filter(([, v]) => v !== null);
  const res = await fetch(base[name] + path, { method, headers: sent, body });
  const text = await res.text();
  const answer = {
    status: res.status,
    headers: [...res.headers].filter(([k]) => !RUNTIME_HEADERS.has(k)).sort(),
    body: text.startsWith('{') ? JSON.parse(text) : text,
  };
  // The emulator gives each error a new id.
  for (const e of answer.body?.errors ?? []) delete e.id;
  const upstream = emu.requests().requests.map((r) => ({
    path: r.path, query: r.query, length: r.headers['content-length'], contentType: r.contentType,
    revision: r.headers.revision, body: JSON.stringify(r.body),
  }));
  return { answer, sent: upstream };
}

async function same(label, request, check = () => {}) {
  const ours = await through('ours', request);
  const js = await through('samesteps', request);
  assert.deepEqual(js, ours, `${label}: the JavaScript steps differ from ours`);
  check(ours);
  return ours;
}

const json = (o) => JSON.stringify(o);
const event = (profile, properties = '{}') => `{"data":{"type":"event","attributes":{"properties":${properties},`
  + `"metric":{"data":{"type":"metric","attributes":{"name":"Viewed Product"}}},`
  + `"profile":{"data":{"type":"profile","attributes":${profile}}}}}}`;

function visitorCookie(anon, kx) {
  const key = createHmac('sha256', secrets.EDGE_SIGNING_SECRET).update('klaviyo-wasm visitor id').digest();
  const payload = `v1|${anon}|${kx}`;
  return `kw_visitor=${payload}|${createHmac('sha256', key).update(payload).digest('hex')}`;
}

test('the bench\'s own request: forwarded with the visitor\'s address added, answered 202 with the mark', async () => {
  await same('bench request', { body: json(sample('clientEvent')) }, (r) => {
    assert.equal(r.answer.status, 202);
    assert.equal(r.sent.length, 1);
    assert.match(r.sent[0].body, /"location":\{"ip":"198\.51\.100\.7"\}/);
    assert.ok(r.answer.headers.some(([k, v]) => k === 'x-klaviyo-edge' && v === 'id'));
  });
});

test('the visitor\'s address: into a location without one, never over the page\'s own', async () => {
  await same('location without ip', { body: event('{"email":"a@example.com","location":{"city":"Oslo"}}') },
    (r) => assert.match(r.sent[0].body, /"location":\{"ip":"[^"]+","city":"Oslo"\}/));
  await same('empty location', { body: event('{"email":"a@example.com","location":{}}') },
    (r) => assert.match(r.sent[0].body, /"location":\{"ip":"[^"]+"\}/));
  await same('location with ip', { body: event('{"email":"a@example.com","location":{"ip":"203.0.113.9"}}') },
    (r) => assert.match(r.sent[0].body, /"ip":"203\.0\.113\.9"/));
  await same('location null', { body: event('{"email":"a@example.com","location":null}') });
  await same('an IPv6 visitor', { headers: { 'cf-connecting-ip': '2001:DB8:0:0::7' }, body: event('{}') },
    (r) => assert.match(r.sent[0].body, /"ip":"2001:db8::7"/));
  await same('an IPv4-mapped visitor', { headers: { 'cf-connecting-ip': '::ffff:203.0.113.5' }, body: event('{}') },
    (r) => assert.match(r.sent[0].body, /"ip":"203\.0\.113\.5"/));
  await same('no address', { headers: { 'cf-connecting-ip': '' }, body: event('{}') },
    (r) => assert.doesNotMatch(r.sent[0].body, /location/));
  await same('empty attributes', { body: event('{}') });
  await same('spaced body', { body: JSON.stringify(JSON.parse(event('{"email":"a@example.com"}')), null, 2) });
  await same('profile route', { path: `/client/profiles?company_id=${COMPANY_ID}`, body: json(sample('clientProfile')) });
  await same('subscription route', { path: `/client/subscriptions?company_id=${COMPANY_ID}`, body: json(sample('clientSubscription')) });
});

test('the first-party cookie: its id replaces the body\'s, its _kx goes in where there is none and the body names nobody', async () => {
  const cookie = visitorCookie('anon-from-cookie', 'kx-from-cookie');
  await same('cookie, body without ids', { headers: { cookie }, body: event('{"first_name":"Ann"}') },
    (r) => assert.match(r.sent[0].body, /"anonymous_id":"anon-from-cookie","_kx":"kx-from-cookie"/));
  // A body that names someone gets no _kx beside it (perhaps another person's click).
  await same('cookie, body naming someone', { headers: { cookie }, body: event('{"email":"a@example.com"}') },
    (r) => assert.doesNotMatch(r.sent[0].body, /_kx/));
  await same('cookie, body naming nobody with a null email', { headers: { cookie }, body: event('{"email":null}') },
    (r) => assert.match(r.sent[0].body, /"_kx":"kx-from-cookie"/));
  await same('cookie, body with another id', { headers: { cookie }, body: event('{"anonymous_id":"other","_kx":"k"}') },
    (r) => assert.match(r.sent[0].body, /"anonymous_id":"anon-from-cookie","_kx":"k"/));
  await same('cookie with a wrong tag', { headers: { cookie: `${cookie.slice(0, -2)}00` }, body: event('{"email":"a@example.com"}') },
    (r) => assert.doesNotMatch(r.sent[0].body, /anon-from-cookie/));
});

test('bodies refused before Klaviyo: duplicate keys, not JSON, not UTF-8, serde_json\'s limits', async () => {
  const refused = (r) => { assert.equal(r.answer.status, 400); assert.equal(r.sent.length, 0); };
  await same('duplicate metric name', { body: event('{"email":"a@example.com"}').replace('"name":"Viewed Product"', '"name":"Viewed Product","name":"Placed Order"') }, (r) => {
    refused(r);
    assert.equal(r.answer.body.errors[0].source.pointer, '/data/attributes/metric/data/attributes/name');
  });
  await same('duplicate through an escape', { body: event('{"email":"a@example.com","em\\u0061il":"b@example.com"}') }, refused);
  await same('duplicate key in an array', { body: event('{"email":"a@example.com"}', '{"items":[{"a/b~":1,"a/b~":2}]}') }, (r) => {
    refused(r);
    assert.equal(r.answer.body.errors[0].source.pointer, '/data/attributes/properties/items/0/a~1b~0');
  });
  await same('not JSON', { body: '{"data":' }, refused);
  await same('a byte order mark', { body: `\ufeff${event('{}')}` }, refused);
  await same('not UTF-8', { body: new Uint8Array([0x7b, 0xff, 0x7d]) }, refused);
  await same('a number beyond f64', { body: event('{"email":"a@example.com"}', '{"n":[1,1e400]}') }, (r) => {
    refused(r);
    assert.equal(r.answer.body.errors[0].source.pointer, '/data/attributes/properties/n/1');
  });
  await same('a lone surrogate', { body: event('{"email":"a@example.com"}', '{"s":"\\ud800x"}') }, refused);
  // The body, data, attributes and properties objects are 4 levels.
  await same('128 levels deep', { body: event('{}', `{"d":${'['.repeat(124)}${']'.repeat(124)}}`) }, refused);
  await same('127 levels deep', { body: event('{"email":"a@example.com"}', `{"d":${'['.repeat(123)}${']'.repeat(123)}}`) },
    (r) => assert.equal(r.sent.length, 1));
});

test('calls answered from the head: bots, another company, another origin, no origin, preflight, GET', async () => {
  const body = json(sample('clientEvent'));
  await same('a crawler', { headers: { 'user-agent': 'Mozilla/5.0 (compatible; Googlebot/2.1)' }, body }, (r) => {
    assert.equal(r.answer.status, 202);
    assert.equal(r.sent.length, 0);
  });
  await same('another company', { path: '/client/events?company_id=XyZ789', body }, (r) => assert.equal(r.answer.status, 403));
  await same('another origin', { headers: { origin: 'https://evil.example' }, body }, (r) => assert.equal(r.answer.status, 403));
  await same('an origin spelt with a slash and capitals', { headers: { origin: 'HTTPS://SHOP.EXAMPLE/' }, body },
    (r) => assert.equal(r.answer.status, 202));
  await same('no origin (a server\'s call)', { headers: { origin: null }, body }, (r) => {
    assert.equal(r.answer.status, 202);
    assert.ok(!r.answer.headers.some(([k]) => k.startsWith('access-control-')));
  });
  await same('no revision: the configured one', { headers: { revision: null }, body }, (r) => assert.equal(r.sent[0].revision, REVISION));
  await same('preflight', { method: 'OPTIONS' }, (r) => assert.equal(r.answer.status, 204));
  await same('GET', { method: 'GET' }, (r) => assert.equal(r.answer.status, 405));
  await same('an unknown /client route', { path: `/client/nothing?company_id=${COMPANY_ID}`, body }, (r) => assert.equal(r.answer.status, 404));
});

test('Klaviyo\'s refusals and failures: passed on, retried, or a 502', async () => {
  const body = json(sample('clientEvent'));
  await same('Klaviyo answers 429, Retry-After 30', { body, fault: { status: 429, retryAfter: 30, path: '/client/events' } }, (r) => {
    assert.equal(r.answer.status, 429);
    assert.ok(r.answer.headers.some(([k, v]) => k === 'retry-after' && v === '30'));
  });
  await same('Klaviyo answers 503 once', { body, fault: { status: 503, path: '/client/events' } }, (r) => {
    assert.equal(r.answer.status, 202);
    assert.equal(r.sent.length, 2);
  });
  await same('Klaviyo answers 400', { body: event('{}') }, (r) => assert.equal(r.answer.status, 400));
});
