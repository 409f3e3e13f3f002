// Tests for the Klaviyo emulator itself: node --test tests/emulator/
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from './server.mjs';
import {
  sample, endpoints, fixtureNames, sharedExamples, clientHeaders, apiHeaders, bulkEvent,
  COMPANY_ID, PRIVATE_KEY, REVISION,
} from './fixtures.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let emu;

const withCompany = (p, companyId = COMPANY_ID) => (companyId === null ? p : `${p}?company_id=${companyId}`);

/** fetch + parsed body. */
async function call(method, p, { body, headers, raw } = {}) {
  const res = await fetch(emu.url + p, {
    method,
    headers,
    body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  return { status: res.status, headers: res.headers, text, json };
}

const postClient = (p, body, opts = {}) =>
  call('POST', withCompany(p, opts.companyId), { body, headers: clientHeaders(opts), ...opts.extra });
const postApi = (p, body, opts = {}) => call('POST', p, { body, headers: apiHeaders(opts) });
const admin = (method, p, body) => call(method, `/__admin/${p}`, { body });
const addFault = (rule) => admin('POST', 'faults', rule);

/** Plain node:http request, for full control over Origin and preflight headers. */
function rawRequest(method, p, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(emu.url + p, { method, headers }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

function assertJsonApiErrors(r, status) {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type'), /application\/vnd\.api\+json/);
  assert.ok(Array.isArray(r.json.errors) && r.json.errors.length > 0, 'errors array');
  for (const e of r.json.errors) {
    for (const k of ['id', 'code', 'title', 'detail']) assert.equal(typeof e[k], 'string', `error.${k}`);
    assert.equal(e.status, status);
    assert.match(e.id, /^[0-9a-f-]{36}$/);
  }
  return r.json.errors;
}

const eventWithId = (uniqueId) => {
  const b = sample('clientEvent');
  b.data.attributes.unique_id = uniqueId;
  return b;
};

async function waitFor(predicate, timeoutMs = 2000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('timed out waiting');
}

before(async () => { emu = await startEmulator(); });
after(async () => { await emu.close(); });
beforeEach(() => emu.reset());

describe('valid bodies', () => {
  test('the shared examples are accepted', async () => {
    const ex = sharedExamples();
    assert.equal((await postClient('/client/events', ex.create_client_event)).status, 202);
    assert.equal((await postClient('/client/profiles', ex.create_client_profile)).status, 202);
    assert.equal((await postApi('/api/events', ex.create_event)).status, 202);
    const s = emu.requests();
    assert.deepEqual(s.requests.map((r) => r.operationId), ['create_client_event', 'create_client_profile', 'create_event']);
    assert.equal(s.accepted, 3);
    assert.deepEqual(s.uniqueIdCounts, { 'evt-0001-viewed-product': 1, 'order-1234': 1 });
  });

  test('every fixture is accepted, with a body that matches the response schema', async () => {
    for (const name of fixtureNames) {
      if (!endpoints[name]) continue;
      const [, p] = endpoints[name];
      const r = p.startsWith('/client/') ? await postClient(p, sample(name)) : await postApi(p, sample(name));
      const rec = emu.requests().requests.at(-1);
      assert.ok(r.status >= 200 && r.status < 300, `${name}: ${r.status} ${r.text}`);
      if (r.status === 202 || r.status === 204) {
        assert.equal(r.text, '', `${name} answers with an empty body`);
      } else {
        const validate = emu.responseValidator(rec.operationId, r.status);
        assert.ok(validate(r.json), `${name} response: ${JSON.stringify(validate.errors)}`);
      }
    }
  });

  test('202 for every 202 operation; 204 for add_profiles_to_list', async () => {
    assert.equal((await postClient('/client/subscriptions', sample('clientSubscription'))).status, 202);
    assert.equal((await postClient('/client/back-in-stock-subscriptions', sample('backInStock'))).status, 202);
    assert.equal((await postClient('/client/event-bulk-create', sample('bulkClientEvents'))).status, 202);
    assert.equal((await postApi('/api/event-bulk-create-jobs', sample('bulkEventsJob'))).status, 202);
    assert.equal((await postApi('/api/profile-subscription-bulk-create-jobs', sample('bulkSubscribe'))).status, 202);
    assert.equal((await postApi('/api/lists/Y6nRLr/relationships/profiles', sample('addToList'))).status, 204);
  });

  test('OpenAPI nullable: null is accepted where the spec says nullable', async () => {
    const b = sample('clientEvent');
    Object.assign(b.data.attributes, { value: null, time: null, unique_id: null, value_currency: null });
    b.data.attributes.profile.data.attributes.location = { latitude: null, longitude: 12.5, city: null };
    assert.equal((await postClient('/client/events', b)).status, 202);
    const p = sample('clientProfile');
    p.data.meta = { patch_properties: { unset: null } };
    assert.equal((await postClient('/client/profiles', p)).status, 202);
  });

  test('application/json is accepted too, a trailing slash as well', async () => {
    assert.equal((await postClient('/client/events/', sample('clientEvent'), { contentType: 'application/json' })).status, 202);
    assert.equal(emu.requests().requests[0].contentType, 'application/json');
  });

  test('profile-import answers 201 when created, 200 when updated; PATCH and GET see it', async () => {
    const first = await postApi('/api/profile-import', sample('profileImport'));
    assert.equal(first.status, 201);
    const again = sample('profileImport');
    again.data.attributes.first_name = 'Sarah';
    const second = await postApi('/api/profile-import', again);
    assert.equal(second.status, 200);
    assert.equal(second.json.data.id, first.json.data.id);
    assert.equal(second.json.data.attributes.first_name, 'Sarah');
    const id = first.json.data.id;
    const patched = await call('PATCH', `/api/profiles/${id}`, { body: sample('updateProfile', id), headers: apiHeaders() });
    assert.equal(patched.status, 200, patched.text);
    const list = await call('GET', `/api/profiles?filter=${encodeURIComponent(`equals(email,"${sample('profileImport').data.attributes.email}")`)}`, { headers: apiHeaders() });
    assert.equal(list.status, 200);
    assert.equal(list.json.data.length, 1);
    assert.ok(emu.responseValidator('get_profiles', 200)(list.json));
    const dup = await postApi('/api/profiles', sample('profileImport'));
    assertJsonApiErrors(dup, 409);
  });

  test('GET campaigns (needs filter) and flows', async () => {
    const ok = await call('GET', `/api/campaigns?filter=${encodeURIComponent("equals(messages.channel,'email')")}`, { headers: apiHeaders() });
    assert.equal(ok.status, 200);
    assert.ok(emu.responseValidator('get_campaigns', 200)(ok.json));
    const errs = assertJsonApiErrors(await call('GET', '/api/campaigns', { headers: apiHeaders() }), 400);
    assert.equal(errs[0].source.parameter, 'filter');
    assert.equal((await call('GET', '/api/flows', { headers: apiHeaders() })).status, 200);
  });
});

describe('invalid requests', () => {
  test('missing metric name -> 400 pointing at it', async () => {
    const b = sample('clientEvent');
    delete b.data.attributes.metric.data.attributes.name;
    const errs = assertJsonApiErrors(await postClient('/client/events', b), 400);
    assert.equal(errs[0].code, 'invalid');
    assert.equal(errs[0].title, 'Invalid input.');
    assert.equal(errs[0].source.pointer, '/data/attributes/metric/data/attributes/name');
    const rec = emu.requests().requests[0];
    assert.equal(rec.accepted, false);
    assert.equal(rec.status, 400);
    assert.equal(rec.errors[0].pointer, '/data/attributes/metric/data/attributes/name');
  });

  test('profile without identifier -> 400 (event, api event, client profile, subscription)', async () => {
    const ev = sample('clientEvent');
    ev.data.attributes.profile.data.attributes = { first_name: 'Anon' };
    assertJsonApiErrors(await postClient('/client/events', ev), 400);
    assertJsonApiErrors(await postApi('/api/events', ev), 400);
    assertJsonApiErrors(await postClient('/client/profiles', { data: { type: 'profile', attributes: { first_name: 'x' } } }), 400);
    const sub = sample('clientSubscription');
    sub.data.attributes.profile.data.attributes = { external_id: 'only-external' };
    assertJsonApiErrors(await postClient('/client/subscriptions', sub), 400);
    // any single identifier is enough for events
    for (const attrs of [{ external_id: 'c-1' }, { anonymous_id: 'a-1' }, { _kx: 'kx' }, { phone_number: '+15005550006' }]) {
      ev.data.attributes.profile.data.attributes = attrs;
      assert.equal((await postClient('/client/events', ev)).status, 202, JSON.stringify(attrs));
    }
    ev.data.attributes.profile.data = { type: 'profile', id: '01GDDKASAP8TKDDA2GRZDSVP4H', attributes: {} };
    assert.equal((await postClient('/client/events', ev)).status, 202);
  });

  test('a member a resource does not define -> 400 naming it, as Klaviyo answers (at any depth)', async () => {
    // A subscription's profile takes no anonymous_id; a back-in-stock profile takes
    // identifiers only (no _kx, no location).
    const sub = sample('clientSubscription');
    sub.data.attributes.profile.data.attributes.anonymous_id = 'a-1';
    let errs = assertJsonApiErrors(await postClient('/client/subscriptions', sub), 400);
    assert.equal(errs[0].source.pointer, '/data/attributes/profile/data/attributes/anonymous_id');
    assert.equal(errs[0].detail, "'anonymous_id' is not a valid field for the resource 'profile'.");
    delete sub.data.attributes.profile.data.attributes.anonymous_id;
    sub.data.attributes.profile.data.attributes._kx = 'kx';
    assert.equal((await postClient('/client/subscriptions', sub)).status, 202);
    for (const extra of [{ _kx: 'kx' }, { anonymous_id: 'a-1' }, { location: { ip: '203.0.113.9' } }]) {
      const bis = sample('backInStock');
      Object.assign(bis.data.attributes.profile.data.attributes, extra);
      errs = assertJsonApiErrors(await postClient('/client/back-in-stock-subscriptions', bis), 400);
      assert.match(errs[0].detail, /is not a valid field for the resource 'profile'/, JSON.stringify(extra));
    }
    // The event resource's own attributes are closed too; its free-form `properties` are not.
    const ev = sample('clientEvent');
    ev.data.attributes.properties = { anything: 1, nested: { deep: true } };
    assert.equal((await postClient('/client/events', ev)).status, 202);
    ev.data.attributes.colour = 'red';
    errs = assertJsonApiErrors(await postClient('/client/events', ev), 400);
    assert.equal(errs[0].detail, "'colour' is not a valid field for the resource 'event'.");
  });

  test('bad identifiers and times -> 400', async () => {
    const ev = sample('clientEvent');
    ev.data.attributes.profile.data.attributes = { phone_number: '5005550006' };
    assertJsonApiErrors(await postClient('/client/events', ev), 400);
    ev.data.attributes.profile.data.attributes = { email: 'not-an-email' };
    assertJsonApiErrors(await postClient('/client/events', ev), 400);
    const old = sample('clientEvent');
    old.data.attributes.time = '1989-12-31T23:59:59Z';
    assertJsonApiErrors(await postClient('/client/events', old), 400);
    old.data.attributes.time = 'yesterday';
    assert.equal(assertJsonApiErrors(await postClient('/client/events', old), 400)[0].source.pointer, '/data/attributes/time');
  });

  test('revision header missing or malformed -> 400', async () => {
    for (const revision of [null, '2026-7-15', 'latest', '2026-02-30']) {
      const errs = assertJsonApiErrors(await postClient('/client/events', sample('clientEvent'), { revision }), 400);
      assert.equal(errs[0].source.parameter, 'revision');
    }
    assert.equal((await postClient('/client/events', sample('clientEvent'), { revision: `${REVISION}.pre` })).status, 202);
  });

  test('company_id missing or malformed -> 400', async () => {
    for (const companyId of [null, 'ABC', 'ABC-12']) {
      const errs = assertJsonApiErrors(await postClient('/client/events', sample('clientEvent'), { companyId }), 400);
      assert.equal(errs[0].source.parameter, 'company_id');
    }
  });

  test('the record can be read for one shop: companyId filters by the company_id parameter', async () => {
    for (const companyId of [COMPANY_ID, COMPANY_ID, 'XyZ789']) {
      assert.equal((await postClient('/client/events', sample('clientEvent'), { companyId })).status, 202);
    }
    assert.equal(emu.requests().count, 3);
    assert.equal(emu.requests({ companyId: COMPANY_ID }).count, 2);
    assert.equal(emu.requests({ companyId: 'XyZ789', accepted: true }).count, 1);
    assert.equal((await admin('GET', 'requests?companyId=XyZ789')).json.count, 1);
  });

  test('Authorization missing or malformed on /api -> 401', async () => {
    assertJsonApiErrors(await postApi('/api/events', sample('apiEvent'), { key: null }), 401);
    const bearer = await call('POST', '/api/events', { body: sample('apiEvent'), headers: { ...clientHeaders(), authorization: `Bearer ${PRIVATE_KEY}` } });
    assertJsonApiErrors(bearer, 401);
    assertJsonApiErrors(await call('GET', '/api/flows', { headers: clientHeaders() }), 401);
    assert.equal(emu.requests({ accepted: false }).count, 3);
  });

  test('bulk: repeated unique_id fails the whole request; >1000 events too; shared profile needs an identifier', async () => {
    const b = sample('bulkClientEvents');
    b.data.attributes.events.data[1].attributes.unique_id = 'bulk-1';
    const errs = assertJsonApiErrors(await postClient('/client/event-bulk-create', b), 400);
    assert.equal(errs[0].source.pointer, '/data/attributes/events/data/1/attributes/unique_id');
    const s = emu.requests();
    assert.deepEqual(s.requests[0].uniqueIds, ['bulk-1', 'bulk-1']);
    assert.equal(s.acceptedUniqueIds, 0);

    const big = sample('bulkClientEvents');
    big.data.attributes.events.data = Array.from({ length: 1001 }, (_, i) => bulkEvent('Viewed Product', { unique_id: `u-${i}` }));
    assertJsonApiErrors(await postClient('/client/event-bulk-create', big), 400);
    big.data.attributes.events.data.pop();
    assert.equal((await postClient('/client/event-bulk-create', big)).status, 202);

    const anon = sample('bulkClientEvents');
    anon.data.attributes.profile.data.attributes = {};
    assertJsonApiErrors(await postClient('/client/event-bulk-create', anon), 400);
    const job = sample('bulkEventsJob');
    job.data.attributes['events-bulk-create'].data[0].attributes.profile.data.attributes = { first_name: 'x' };
    assertJsonApiErrors(await postApi('/api/event-bulk-create-jobs', job), 400);
  });

  test('bad JSON, empty body, wrong content type, unknown route, wrong method', async () => {
    const bad = await call('POST', withCompany('/client/events'), { raw: '{"data":', headers: clientHeaders() });
    assert.equal(assertJsonApiErrors(bad, 400)[0].code, 'parse_error');
    assert.equal(emu.requests().requests[0].body, '{"data":', 'unparseable bodies are recorded as text');
    assertJsonApiErrors(await call('POST', withCompany('/client/events'), { raw: '', headers: clientHeaders() }), 400);
    assertJsonApiErrors(await postClient('/client/events', sample('clientEvent'), { contentType: 'text/plain' }), 415);
    assertJsonApiErrors(await postClient('/client/nope', {}), 404);
    assertJsonApiErrors(await call('GET', withCompany('/client/events'), { headers: clientHeaders() }), 405);
    assert.equal(emu.requests().requests.at(-2).operationId, null);
  });
});

describe('records', () => {
  test('Authorization is masked; only a sha256 of the key is kept', async () => {
    await postApi('/api/events', sample('apiEvent'));
    const rec = emu.requests().requests[0];
    assert.equal(rec.headers.authorization, 'Klaviyo-API-Key ***');
    assert.equal(rec.hasAuth, true);
    assert.equal(rec.authKeyHash, createHash('sha256').update(PRIVATE_KEY).digest('hex'));
    const all = await admin('GET', 'requests');
    assert.ok(!all.text.includes(PRIVATE_KEY));
    assert.deepEqual(rec.query, {});
    assert.equal(typeof rec.at, 'number');
  });

  test('acceptedUniqueIds / duplicateUniqueIds count what was accepted on the wire', async () => {
    await postClient('/client/events', eventWithId('A'));
    await postClient('/client/events', eventWithId('A')); // a retry of something already accepted
    await postClient('/client/events', eventWithId('B'));
    const rejected = eventWithId('C');
    delete rejected.data.attributes.metric;
    await postClient('/client/events', rejected);
    await postClient('/client/event-bulk-create', sample('bulkClientEvents'));
    const s = (await admin('GET', 'requests')).json;
    assert.equal(s.count, 5);
    assert.equal(s.accepted, 4);
    assert.equal(s.rejected, 1);
    assert.deepEqual(s.uniqueIdCounts, { A: 2, B: 1, 'bulk-1': 1, 'bulk-2': 1 });
    assert.equal(s.acceptedUniqueIds, 4);
    assert.equal(s.duplicateUniqueIds, 1);
    const filtered = (await admin('GET', 'requests?path=/client/events&accepted=true')).json;
    assert.equal(filtered.count, 3);
    assert.equal(filtered.acceptedUniqueIds, 2);
  });

  test('reset clears records and faults', async () => {
    await postClient('/client/events', sample('clientEvent'));
    await addFault({ status: 500 });
    await admin('POST', 'reset');
    assert.equal((await admin('GET', 'requests')).json.count, 0);
    assert.deepEqual((await admin('GET', 'faults')).json.faults, []);
    assert.equal((await admin('GET', 'health')).status, 200);
  });
});

describe('CORS', () => {
  test('preflight answers 204 with the allow headers', async () => {
    const r = await rawRequest('OPTIONS', withCompany('/client/events'), {
      origin: 'https://shop.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type,revision',
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], 'https://shop.example');
    assert.match(r.headers['access-control-allow-methods'], /POST/);
    assert.match(r.headers['access-control-allow-methods'], /PATCH/);
    assert.match(r.headers['access-control-allow-headers'], /revision/);
    assert.ok(Number(r.headers['access-control-max-age']) > 0);
    const s = emu.requests();
    assert.equal(s.count, 0, 'preflights are not API requests');
    assert.equal(s.preflights.length, 1);
    const noOrigin = await rawRequest('OPTIONS', '/client/events', {});
    assert.equal(noOrigin.headers['access-control-allow-origin'], '*');
    assert.match(noOrigin.headers['access-control-allow-headers'], /authorization/);
  });

  test('actual responses carry the Origin and expose Retry-After unless configured not to', async () => {
    const h = { ...clientHeaders(), origin: 'https://shop.example' };
    await addFault({ status: 429, retryAfter: 7, count: 2 });
    const shown = await rawRequest('POST', withCompany('/client/events'), h, sample('clientEvent'));
    assert.equal(shown.status, 429);
    assert.equal(shown.headers['access-control-allow-origin'], 'https://shop.example');
    assert.match(shown.headers['access-control-expose-headers'], /Retry-After/i);

    assert.deepEqual((await admin('POST', 'config', { exposeRetryAfter: false })).json.exposeRetryAfter, false);
    const hidden = await rawRequest('POST', withCompany('/client/events'), h, sample('clientEvent'));
    assert.equal(hidden.status, 429);
    assert.equal(hidden.headers['retry-after'], '7', 'the header is still sent, just not exposed');
    assert.ok(!/retry-after/i.test(hidden.headers['access-control-expose-headers'] || ''));
    assert.equal(hidden.headers['access-control-allow-origin'], 'https://shop.example');

    emu.reset();
    assert.equal((await admin('GET', 'config')).json.exposeRetryAfter, true, 'reset restores the start options');
  });

  test('admin API is CORS-enabled', async () => {
    const r = await rawRequest('GET', '/__admin/health', { origin: 'http://localhost:5173' });
    assert.equal(r.headers['access-control-allow-origin'], 'http://localhost:5173');
  });
});

describe('faults', () => {
  test('429 with Retry-After, then normal service', async () => {
    await addFault({ status: 429, retryAfter: 3 });
    const r = await postClient('/client/events', eventWithId('R1'));
    assertJsonApiErrors(r, 429);
    assert.equal(r.json.errors[0].code, 'throttled');
    assert.equal(r.headers.get('retry-after'), '3');
    assert.equal((await postClient('/client/events', eventWithId('R1'))).status, 202);
    const s = emu.requests();
    assert.equal(s.requests[0].fault, 'status:429');
    assert.equal(s.requests[0].status, 429);
    assert.deepEqual(s.requests[0].uniqueIds, ['R1']);
    assert.deepEqual(s.uniqueIdCounts, { R1: 1 }, 'only the accepted attempt counts');
  });

  test('rateLimit plays a steady limit: limit requests pass per window, the rest get 429 with the wait until a slot frees', async () => {
    await addFault({ rateLimit: { limit: 2, windowMs: 3_000 }, path: '/client/events' });
    const statuses = [];
    for (const id of ['L1', 'L2', 'L3']) statuses.push((await postClient('/client/events', eventWithId(id))).status);
    assert.deepEqual(statuses, [202, 202, 429]);
    const refused = await postClient('/client/events', eventWithId('L3'));
    assertJsonApiErrors(refused, 429);
    const wait = Number(refused.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 3, `Retry-After ${wait}`);
    // Other paths are not limited.
    assert.equal((await postApi('/api/events', sample('apiEvent'))).status, 202);
    assert.deepEqual(emu.requests().uniqueIdCounts, { L1: 1, L2: 1 }, 'refused ones are not accepted');
    assert.equal(emu.requests().requests[2].fault, 'rate:2/3000ms');
    await assert.rejects(addFault({ rateLimit: { limit: 0, windowMs: 1 } }).then((r) => { if (r.status >= 400) throw new Error(r.json.errors?.[0]?.detail); }));
  });

  test('503 and stacked rules apply in order; path and count restrict them', async () => {
    await addFault({ status: 503, count: 2, path: '/api/' });
    await addFault({ status: 500 });
    assert.equal((await postClient('/client/events', sample('clientEvent'))).status, 500, 'first matching rule is the /client one');
    assert.equal((await postApi('/api/events', sample('apiEvent'))).status, 503);
    assert.equal((await postApi('/api/events', sample('apiEvent'))).status, 503);
    assert.equal((await postApi('/api/events', sample('apiEvent'))).status, 202);
    assert.equal((await postClient('/client/events', sample('clientEvent'))).status, 202);
  });

  test('drop destroys the connection without an answer', async () => {
    await addFault({ drop: true });
    await assert.rejects(postClient('/client/events', eventWithId('D1')));
    const rec = emu.requests().requests[0];
    assert.equal(rec.fault, 'drop');
    assert.equal(rec.status, null);
    assert.equal(rec.pending, false);
    assert.equal(emu.requests().rejected, 1);
    assert.deepEqual(rec.body.data.attributes.unique_id, 'D1', 'the body was read first');
    assert.equal((await postClient('/client/events', eventWithId('D1'))).status, 202);
  });

  test('delay alone delays a normal answer; combined with status it delays the fault', async () => {
    await addFault({ delayMs: 150 });
    let t = Date.now();
    assert.equal((await postClient('/client/events', sample('clientEvent'))).status, 202);
    assert.ok(Date.now() - t >= 140);
    await addFault({ delayMs: 100, status: 503 });
    t = Date.now();
    assert.equal((await postClient('/client/events', sample('clientEvent'))).status, 503);
    assert.ok(Date.now() - t >= 90);
    assert.equal(emu.requests().requests[1].fault, 'delay:100+status:503');
  });

  test('hold keeps the answer until released, then validates normally', async () => {
    await addFault({ hold: true, count: 2 });
    const ok = postClient('/client/events', sample('clientEvent'));
    const bad = postClient('/client/events', { data: {} });
    await waitFor(async () => (await admin('GET', 'requests')).json.pending === 2);
    assert.equal((await admin('GET', 'faults')).json.held, 2);
    assert.deepEqual((await admin('POST', 'release', { count: 1 })).json, { released: 1 });
    assert.equal((await ok).status, 202);
    assert.equal((await admin('POST', 'release')).json.released, 1);
    assertJsonApiErrors(await bad, 400);
    const s = emu.requests();
    assert.equal(s.pending, 0);
    assert.deepEqual(s.requests.map((r) => r.fault), ['hold', 'hold']);
  });

  test('probability faults are seeded and repeatable; count caps them', async () => {
    async function run() {
      emu.reset();
      await addFault({ status: 503, probability: 0.4, seed: 42 });
      const statuses = [];
      for (let i = 0; i < 30; i += 1) statuses.push((await postClient('/client/events', sample('clientEvent'))).status);
      return statuses;
    }
    const a = await run();
    const b = await run();
    assert.deepEqual(a, b);
    const faulted = a.filter((s) => s === 503).length;
    assert.ok(faulted > 3 && faulted < 27, `faulted ${faulted}/30`);
    assert.ok(a.every((s) => s === 503 || s === 202));

    emu.reset();
    await addFault({ status: 503, probability: 1, count: 2 });
    const capped = [];
    for (let i = 0; i < 4; i += 1) capped.push((await postClient('/client/events', sample('clientEvent'))).status);
    assert.deepEqual(capped, [503, 503, 202, 202]);
  });

  test('module API addFault/clearFaults; bad rules are refused', async () => {
    emu.addFault({ status: 500, count: 5 });
    emu.clearFaults();
    assert.equal((await postClient('/client/events', sample('clientEvent'))).status, 202);
    assert.equal((await addFault({ stauts: 500 })).status, 400);
    assert.equal((await addFault({ count: 1 })).status, 400);
    assert.equal((await admin('DELETE', 'faults')).status, 200);
  });
});

describe('connections', () => {
  test('keep-alive connections are reused; fetch keepalive works', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const reused = [];
    for (let i = 0; i < 3; i += 1) {
      await new Promise((resolve, reject) => {
        const req = http.request(emu.url + withCompany('/client/events'), { method: 'POST', agent, headers: clientHeaders() }, (res) => {
          res.resume();
          res.on('end', () => { assert.equal(res.statusCode, 202); resolve(); });
        });
        req.on('error', reject);
        reused.push(req.reusedSocket);
        req.end(JSON.stringify(sample('clientEvent')));
      });
    }
    agent.destroy();
    assert.deepEqual(reused, [false, true, true]);
    const r = await fetch(emu.url + withCompany('/client/events'), {
      method: 'POST', keepalive: true, headers: clientHeaders(), body: JSON.stringify(sample('clientEvent')),
    });
    assert.equal(r.status, 202);
  });

  test('CLI prints its URL and serves', async () => {
    const child = spawn(process.execPath, [path.join(here, 'server.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c) => {
          out += c;
          if (out.includes('\n')) resolve(out.split('\n')[0]);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}`)));
      });
      const m = /^Klaviyo emulator listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      assert.ok(m, line);
      assert.equal((await fetch(`${m[1]}/__admin/health`)).status, 200);
    } finally {
      child.kill('SIGTERM');
    }
  });

  test('logging never prints bodies or identifiers', async () => {
    const logged = [];
    const orig = console.log;
    const quiet = await startEmulator({ log: true });
    console.log = (...a) => logged.push(a.join(' '));
    try {
      const b = sample('clientEvent');
      await fetch(quiet.url + withCompany('/client/events'), { method: 'POST', headers: clientHeaders(), body: JSON.stringify(b) });
      await fetch(quiet.url + '/api/events', { method: 'POST', headers: apiHeaders(), body: '{}' });
    } finally {
      console.log = orig;
      await quiet.close();
    }
    assert.equal(logged.length, 2);
    const text = logged.join('\n');
    assert.ok(!text.includes('@') && !text.includes(PRIVATE_KEY) && !text.includes(COMPANY_ID), text);
  });
});
