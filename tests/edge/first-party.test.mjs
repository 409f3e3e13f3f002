// The visitor through the first-party worker, in workerd (Miniflare) against the Klaviyo
// emulator (which validates every body against the OpenAPI subset): its address as
// `location.ip`, the first-party visitor cookie (`/id`) and its identity restored on
// `/client` calls, bots' calls dropped, and the script-tag files served first-party.
//   node --test tests/edge/first-party.test.mjs        (needs `bash .ci/build.sh edge` first)
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { startEdge, besideOurs, readResponse, COMPANY_ID, SHOP_ORIGIN, JSON_API, REVISION, ROOT } from './harness.mjs';

let edge;
let w;

before(async () => {
  edge = await startEdge();
  w = edge.worker;
});
after(async () => { await edge?.close(); });
beforeEach(() => edge.emu.reset());

const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const q = `?company_id=${COMPANY_ID}`;

const profile = (attrs) => ({ data: { type: 'profile', attributes: attrs } });
const bodies = {
  '/client/events': (attrs) => ({ data: { type: 'event', attributes: {
    properties: { n: randomBytes(3).toString('hex') },
    metric: { data: { type: 'metric', attributes: { name: 'Viewed Product' } } },
    profile: profile(attrs),
  } } }),
  '/client/profiles': (attrs) => profile(attrs),
  '/client/event-bulk-create': (attrs) => ({ data: { type: 'event-bulk-create', attributes: {
    profile: profile(attrs),
    events: { data: [{ type: 'event', attributes: { properties: {}, metric: { data: { type: 'metric', attributes: { name: 'Viewed Product' } } } } }] },
  } } }),
  // A subscription's profile takes no anonymous_id (the page's core leaves it out).
  '/client/subscriptions': ({ anonymous_id, ...attrs }) => ({ data: { type: 'subscription', attributes: {
    profile: { data: { type: 'profile', attributes: { ...attrs, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } } } },
  }, relationships: { list: { data: { type: 'list', id: 'Xy12Ab' } } } } }),
  // Identifiers only.
  '/client/back-in-stock-subscriptions': ({ email }) => ({ data: { type: 'back-in-stock-subscription', attributes: {
    channels: ['EMAIL'], profile: profile({ email }),
  }, relationships: { variant: { data: { type: 'catalog-variant', id: '$custom:::$default:::SKU-1' } } } } }),
};

/** What the emulator received on `route`: the profile attributes of each accepted body. */
function received(route) {
  const reqs = edge.emu.requests({ path: route }).requests;
  for (const r of reqs) assert.equal(r.status, 202, `${route}: the emulator refused ${JSON.stringify(r.body).slice(0, 300)}`);
  return reqs.map((r) => (route === '/client/profiles' ? r.body.data.attributes : r.body.data.attributes.profile.data.attributes));
}

async function page(route, attrs, headers = {}, worker = w) {
  return worker.call(route + q, {
    method: 'POST',
    headers: { 'content-type': JSON_API, revision: REVISION, origin: SHOP_ORIGIN, 'user-agent': SAFARI, ...headers },
    body: JSON.stringify(bodies[route](attrs)),
  });
}

test('the visitor address reaches Klaviyo as location.ip on every /client route with a profile', async () => {
  for (const route of Object.keys(bodies).filter((r) => !r.includes('back-in-stock'))) {
    const res = await page(route, { email: 'ann@example.com', anonymous_id: 'a-1' }, { 'cf-connecting-ip': '203.0.113.7' });
    assert.equal(res.status, 202, `${route}: ${res.text}`);
    const [attrs] = received(route);
    assert.equal(attrs.location?.ip, '203.0.113.7', route);
    assert.equal(attrs.email, 'ann@example.com');
  }
  // IPv6 as well, and beside a location the page gave.
  await page('/client/events', { anonymous_id: 'a-2', location: { zip: '02110' } }, { 'cf-connecting-ip': '2001:db8::7' });
  assert.deepEqual(received('/client/events').at(-1).location, { ip: '2001:db8::7', zip: '02110' });
});

test("the visitor's browser reaches Klaviyo as the call's user-agent on every /client route, and nothing else of the page's request", async () => {
  for (const route of Object.keys(bodies)) {
    const res = await page(route, { email: 'ann@example.com' }, { 'accept-language': 'de-CH', cookie: 'shop_session=1' });
    assert.equal(res.status, 202, `${route}: ${res.text}`);
    const [r] = edge.emu.requests({ path: route }).requests.slice(-1);
    // Not the worker's own (workerd's fetch names none): Klaviyo sees the shopper's browser.
    assert.equal(r.headers['user-agent'], SAFARI, route);
    assert.equal(r.headers['accept-language'], undefined, route);
    assert.equal(r.headers.cookie, undefined, route);
  }
  // Each call its own visitor's, though the worker keeps one upstream set-up between
  // calls: another browser, then none (never the one before).
  const firefox = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
  for (const ua of [firefox, null, SAFARI]) {
    const headers = { 'content-type': JSON_API, revision: REVISION, origin: SHOP_ORIGIN, ...(ua ? { 'user-agent': ua } : {}) };
    const body = JSON.stringify(bodies['/client/events']({ email: 'ann@example.com' }));
    // node:http names no user agent of its own, where fetch would.
    const res = await w.raw('/client/events' + q, { headers, body });
    assert.equal(res.status, 202, res.text);
    const [r] = edge.emu.requests({ path: '/client/events' }).requests.slice(-1);
    assert.equal(r.headers['user-agent'], ua ?? undefined, String(ua));
  }
});

test('never when the body has a location.ip, nor with FORWARD_VISITOR_IP=false', async () => {
  await page('/client/events', { anonymous_id: 'a-1', location: { ip: '198.51.100.4' } }, { 'cf-connecting-ip': '203.0.113.7' });
  assert.equal(received('/client/events')[0].location.ip, '198.51.100.4');
  const off = await edge.start({ FORWARD_VISITOR_IP: 'false' }, [], 'no-ip');
  edge.emu.reset();
  await page('/client/events', { anonymous_id: 'a-1' }, { 'cf-connecting-ip': '203.0.113.7' }, off);
  assert.equal(received('/client/events')[0].location, undefined);
});

test('a forged x-forwarded-for is ignored by default', async () => {
  await page('/client/events', { anonymous_id: 'a-1' }, { 'cf-connecting-ip': '203.0.113.7', 'x-forwarded-for': '198.51.100.66' });
  assert.equal(received('/client/events')[0].location.ip, '203.0.113.7');
});

test('a crawler sends nothing upstream; a browser does; a low bot score counts as a crawler', async () => {
  const bot = await page('/client/events', { anonymous_id: 'a-1' }, { 'user-agent': GOOGLEBOT });
  assert.equal(bot.status, 202);
  assert.equal(bot.headers['x-klaviyo-edge-bot'], 'user-agent');
  assert.equal(edge.emu.requests({ pathPrefix: '/client/' }).count, 0, 'nothing upstream');
  const person = await page('/client/events', { anonymous_id: 'a-1' });
  assert.equal(person.status, 202);
  assert.equal(person.headers['x-klaviyo-edge-bot'], undefined);
  assert.equal(received('/client/events').length, 1);
  // Bot Management's score, as Cloudflare hands it to the worker in request.cf, with
  // BOT_SCORE_MIN set (unset, scores are not read).
  const scoring = await edge.start({ BOT_SCORE_MIN: '30' }, [], 'scores');
  const scored = await scoring.mf.dispatchFetch(`http://localhost/client/events${q}`, {
    method: 'POST',
    headers: { 'content-type': JSON_API, origin: SHOP_ORIGIN, 'user-agent': SAFARI },
    body: JSON.stringify(bodies['/client/events']({ anonymous_id: 'a-1' })),
    cf: { botManagement: { score: 3 } },
  });
  assert.equal(scored.status, 202);
  assert.equal(scored.headers.get('x-klaviyo-edge-bot'), 'score');
  assert.equal(received('/client/events').length, 1, 'still one');
});

test('/id sets a signed first-party cookie; the next /client calls carry its visitor; a forged one is ignored', async () => {
  const set = await w.call('/id', {
    method: 'POST',
    headers: { origin: SHOP_ORIGIN, 'content-type': 'text/plain' },
    body: JSON.stringify({ anonymous_id: 'anon-kept-1', _kx: 'kx.kept.1' }),
  });
  assert.equal(set.status, 204, set.text);
  const line = set.headers['set-cookie'];
  assert.match(line, /^kw_visitor=v1\|anon-kept-1\|kx\.kept\.1\|[0-9a-f]{64}; Max-Age=34560000; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
  const cookie = line.split(';')[0];
  const got = await w.call('/id', { headers: { cookie } });
  assert.deepEqual(got.json, { anonymous_id: 'anon-kept-1', _kx: 'kx.kept.1' });
  // Storage wiped: the page made a new anonymous id; Klaviyo still gets the kept one.
  await page('/client/events', { anonymous_id: 'fresh-after-wipe' }, { cookie });
  const [attrs] = received('/client/events');
  assert.equal(attrs.anonymous_id, 'anon-kept-1');
  assert.equal(attrs._kx, 'kx.kept.1');
  // Forged: the value changed, or signed with another key.
  edge.emu.reset();
  const forged = cookie.replace('anon-kept-1', 'anon-forged');
  await page('/client/events', { anonymous_id: 'fresh' }, { cookie: forged });
  assert.equal(received('/client/events')[0].anonymous_id, 'fresh');
  assert.deepEqual((await w.call('/id', { headers: { cookie: forged } })).json, {});
  // Cleared.
  const del = await w.call('/id', { method: 'DELETE', headers: { origin: SHOP_ORIGIN, cookie } });
  assert.equal(del.status, 204);
  assert.match(del.headers['set-cookie'], /^kw_visitor=; Max-Age=0;/);
  // Another origin can neither set nor read it.
  const evil = await w.call('/id', { method: 'POST', headers: { origin: 'https://evil.example' }, body: '{"anonymous_id":"x"}' });
  assert.equal(evil.status, 403);
  assert.equal(evil.headers['set-cookie'], undefined);
  assert.equal((await w.call('/id', { headers: { origin: 'https://evil.example', cookie } })).status, 403);
});

test("the cookie's visitor is added only where the route's profile takes it: Klaviyo accepts every call", async () => {
  const set = await w.call('/id', {
    method: 'POST',
    headers: { origin: SHOP_ORIGIN, 'content-type': 'text/plain' },
    body: JSON.stringify({ anonymous_id: 'anon-kept-2', _kx: 'kx.kept.2' }),
  });
  const cookie = set.headers['set-cookie'].split(';')[0];
  for (const route of Object.keys(bodies)) {
    const res = await page(route, { email: 'ann@example.com', anonymous_id: 'fresh' }, { cookie, 'cf-connecting-ip': '203.0.113.7' });
    assert.equal(res.status, 202, `${route}: ${res.text}`);
  }
  // received() fails on any call the emulator refused (an unknown member is a 400, as at Klaviyo).
  // They name someone (an email): no _kx beside it, which may be another person's click.
  for (const route of ['/client/events', '/client/profiles', '/client/event-bulk-create']) {
    const [attrs] = received(route);
    assert.deepEqual([attrs.anonymous_id, attrs._kx, attrs.location?.ip], ['anon-kept-2', undefined, '203.0.113.7'], route);
  }
  const [sub] = received('/client/subscriptions');
  assert.deepEqual([sub.anonymous_id, sub._kx, sub.location?.ip], [undefined, undefined, '203.0.113.7']);
  // Calls that name nobody get the cookie's _kx too.
  for (const route of ['/client/events', '/client/profiles', '/client/event-bulk-create']) {
    const res = await page(route, { first_name: 'Ann', anonymous_id: 'fresh' }, { cookie, 'cf-connecting-ip': '203.0.113.7' });
    assert.equal(res.status, 202, `${route}: ${res.text}`);
    const attrs = received(route).at(-1);
    assert.deepEqual([attrs.anonymous_id, attrs._kx, attrs.location?.ip], ['anon-kept-2', 'kx.kept.2', '203.0.113.7'], route);
  }
  const bis = edge.emu.requests({ path: '/client/back-in-stock-subscriptions' }).requests;
  assert.deepEqual(bis.map((r) => [r.status, r.body.data.attributes.profile.data.attributes]), [[202, { email: 'ann@example.com' }]]);
});

test('ALLOW_NULL_ORIGIN: a sandboxed frame (Origin: null) reaches Klaviyo on every /client route, unmarked and without the cookie; never /id nor the browser path', async () => {
  // The shop's cookie, as a forged header would bring it (the browser sends none from an opaque origin).
  const set = await w.call('/id', { method: 'POST', headers: { origin: SHOP_ORIGIN, 'content-type': 'text/plain' }, body: '{"anonymous_id":"anon-kept-3","_kx":"kx.kept.3"}' });
  const framed = { origin: 'null', cookie: set.headers['set-cookie'].split(';')[0], 'cf-connecting-ip': '203.0.113.7' };
  const refused = await page('/client/events', { anonymous_id: 'frame-1' }, framed);
  assert.deepEqual([refused.status, refused.headers['access-control-allow-origin']], [403, undefined], 'off by default');
  const on = await edge.start({ ALLOW_NULL_ORIGIN: 'true' }, [], 'sandboxed');
  const preflight = await on.call('/client/events' + q, { method: 'OPTIONS', headers: { origin: 'null', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,revision' } });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers['access-control-allow-origin'], 'null');
  assert.equal(preflight.headers['access-control-allow-credentials'], undefined);
  for (const route of Object.keys(bodies)) {
    const res = await page(route, { email: 'ann@example.com', anonymous_id: 'frame-1' }, framed, on);
    assert.equal(res.status, 202, `${route}: ${res.text}`);
    const h = res.headers;
    assert.deepEqual([h['access-control-allow-origin'], h.vary, h['access-control-expose-headers']], ['null', 'Origin', 'retry-after, x-klaviyo-edge'], route);
    // No credentials, no cookie written, and no word of a cookie the frame cannot use.
    assert.deepEqual([h['access-control-allow-credentials'], h['set-cookie'], h['x-klaviyo-edge']], [undefined, undefined, undefined], route);
    const [r] = edge.emu.requests({ path: route }).requests.slice(-1);
    assert.deepEqual([r.headers['user-agent'], r.headers.cookie], [SAFARI, undefined], route);
  }
  for (const route of ['/client/events', '/client/profiles', '/client/event-bulk-create']) {
    const [attrs] = received(route);
    assert.deepEqual([attrs.anonymous_id, attrs._kx, attrs.location?.ip], ['frame-1', undefined, '203.0.113.7'], route);
  }
  // The visitor cookie's route and the unsigned browser path stay the shop's pages' alone.
  for (const method of ['GET', 'POST', 'DELETE', 'OPTIONS']) {
    const id = await on.call('/id', { method, headers: { origin: 'null', cookie: framed.cookie }, body: method === 'POST' ? '{"anonymous_id":"x"}' : undefined });
    assert.deepEqual([id.status, id.headers['access-control-allow-origin'], id.headers['set-cookie']], [403, undefined, undefined], `${method} /id`);
    assert.ok(!id.text.includes('anon-kept-3'), `${method} /id`);
  }
  const checkout = bodies['/client/events']({ email: 'ann@example.com' });
  checkout.data.attributes.metric.data.attributes.name = 'Started Checkout'; // a metric pages may send
  const browserPath = (origin) => on.call('/api/events', { method: 'POST', headers: { origin, 'content-type': JSON_API, revision: REVISION }, body: JSON.stringify(checkout) });
  const fromFrame = await browserPath('null');
  assert.deepEqual([fromFrame.status, fromFrame.json?.errors?.[0]?.code, fromFrame.headers['access-control-allow-origin']], [403, 'forbidden_origin', undefined]);
  assert.equal((await on.call('/api/events', { method: 'OPTIONS', headers: { origin: 'null' } })).status, 403);
  assert.equal((await browserPath(SHOP_ORIGIN)).status, 202, "the same call from the shop's page");
  assert.equal(edge.emu.requests({ path: '/api/events' }).count, 1);
});

test('ALLOW_NULL_ORIGIN: sandboxed frames are rate-gated per network, in buckets apart from the shop\'s pages', async () => {
  // 10 a minute: one call at once.
  const on = await edge.start({ ALLOW_NULL_ORIGIN: 'true', BROWSER_RATE_PER_MINUTE: '10' }, [], 'sandboxed-rate');
  const call = (origin, ip) => page('/client/events', { anonymous_id: 'frame-2' }, { origin, 'cf-connecting-ip': ip }, on);
  assert.equal((await call('null', '203.0.113.7')).status, 202);
  const over = await call('null', '203.0.113.7');
  assert.equal(over.status, 429, over.text);
  assert.deepEqual([over.headers['retry-after'], over.headers['access-control-allow-origin']], ['60', 'null']);
  assert.equal((await call('null', '198.51.100.1')).status, 202, 'another network');
  assert.equal((await call(SHOP_ORIGIN, '203.0.113.7')).status, 202, "the shop's page from that network");
  assert.equal(received('/client/events').length, 3);
});

test("ALLOW_NULL_ORIGIN: where no Cloudflare edge set it (workerd, a request without cf), a frame's own cf-connecting-ip makes no new bucket", async () => {
  // A direct socket gives requests no `cf`, as workerd run outside Cloudflare does.
  const mf = new Miniflare(besideOurs({ ...edge.bindings, ALLOW_NULL_ORIGIN: 'true', BROWSER_RATE_PER_MINUTE: '10' }, []));
  try {
    await mf.ready;
    const url = String(await mf.unsafeGetDirectURL('ours')).replace(/\/$/, '');
    const bare = { call: async (p, init) => readResponse(await fetch(url + p, init), `no cf: ${p}`) };
    const statuses = async (origin) => {
      const out = [];
      for (let i = 1; i <= 4; i++) out.push((await page('/client/events', { anonymous_id: 'frame-3' }, { origin, 'cf-connecting-ip': `192.0.2.${i}` }, bare)).status);
      return out;
    };
    assert.deepEqual(await statuses('null'), [202, 429, 429, 429], 'one bucket for every frame there');
    assert.deepEqual(await statuses(SHOP_ORIGIN), [202, 202, 202, 202], "the shop's pages are not gated");
  } finally {
    await mf.dispose();
  }
});

test('the script-tag files are served first-party: types, ETag, cache, the version path, 304', async () => {
  const dist = (f) => readFileSync(path.join(ROOT, 'dist/script', f));
  const js = await w.call('/script/klaviyo-wasm.js');
  assert.equal(js.status, 200);
  assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(js.headers['cache-control'], 'public, max-age=300');
  assert.equal(js.headers['x-content-type-options'], 'nosniff');
  // The script knows the worker: company id and apiBase where the page gave none, and
  // with the worker's company id it waits for the HTML, so a later init still wins.
  assert.ok(js.text.startsWith(`(function(d){if(d){if(!d.companyId){d.companyId="${COMPANY_ID}";d.waitForInit="";}d.apiBase=d.apiBase||"${w.url}";}})`), js.text.slice(0, 200));
  assert.ok(js.text.endsWith(dist('klaviyo-wasm.js').toString('utf8')), 'then the script as built');
  const wasm = await fetch(`${w.url}/script/klaviyo_wasm_bg.wasm`);
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
  assert.equal(wasm.headers.get('access-control-allow-origin'), '*');
  assert.ok(Buffer.from(await wasm.arrayBuffer()).equals(dist('klaviyo_wasm_bg.wasm')));
  const snippet = await w.call('/script/snippet.min.js');
  assert.equal(snippet.text, dist('snippet.min.js').toString('utf8'));
  // The versioned path: cached for a year.
  const version = js.headers['x-klaviyo-script-version'];
  assert.match(version, /^\d+\.\d+\.\d+-[0-9a-f]{8}$/);
  const pinned = await w.call(`/script/${version}/klaviyo_wasm_bg.wasm`);
  assert.equal(pinned.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal((await w.call('/script/0.0.0-00000000/klaviyo-wasm.js')).status, 404);
  // Revalidation.
  const etag = wasm.headers.get('etag');
  const again = await w.call('/script/klaviyo_wasm_bg.wasm', { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  assert.equal(again.text, '');
  const head = await fetch(`${w.url}/script/klaviyo-wasm.js`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('etag'), js.headers.etag);
  // Off.
  const off = await edge.start({ SERVE_SCRIPT: 'false' }, [], 'no-script');
  assert.equal((await off.call('/script/klaviyo-wasm.js')).status, 404);
});
