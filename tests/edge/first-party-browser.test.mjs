// The first-party visitor cookie in Chromium, deployed as a shop deploys it: the shop's
// own origin serves the page and routes /klaviyo/* to the edge worker (Miniflare), so the
// worker's cookie is the shop's. Storage is then wiped as Safari wipes it, and the next
// events must still be the same visitor's.
//   node --test tests/edge/first-party-browser.test.mjs   (needs dist/web and dist/edge built)
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startEdge, launchChromium, shopperUserAgent, waitFor, WEB_DIR, COMPANY_ID } from './harness.mjs';
import { repoFile, mimeFor } from '../support/static.mjs';

const PREFIX = '/klaviyo';
let shop;
let edge;
let browser;

/**
 * The shop: its files, and /klaviyo/* passed to the worker as a route of the shop's zone
 * would be. `hold(path)` keeps requests to a path (or `METHOD path`) unanswered until
 * `release()`; `log`
 * records when each request to the worker began and ended.
 */
async function startShop(workerUrl, plainUrl) { // workerUrl(): where /klaviyo/* goes; plainUrl(): /plain/* (a proxy that is not the worker)
  const held = new Set();
  const failing = new Set();
  const dropping = new Set();
  let waiting = [];
  const log = [];
  let html = '';
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://shop.invalid');
    if (url.pathname === '/shop.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
      return;
    }
    const plain = url.pathname.startsWith('/plain/');
    if (!url.pathname.startsWith(`${PREFIX}/`) && !plain) {
      const file = repoFile(url.pathname, ['/tests/edge/', '/dist/web/']);
      try {
        const data = await readFile(file);
        res.writeHead(200, { 'content-type': mimeFor(file), 'cache-control': 'no-store' });
        res.end(data);
      } catch {
        res.writeHead(404);
        res.end();
      }
      return;
    }
    const entry = { path: url.pathname, method: req.method, start: Date.now(), end: 0, cookie: Boolean(req.headers.cookie) };
    log.push(entry);
    const chunks = [];
    for await (const c of req) chunks.push(c);
    if (held.has(url.pathname) || held.has(`${req.method} ${url.pathname}`)) await new Promise((resolve) => waiting.push(resolve));
    if (dropping.has(`${req.method} ${url.pathname}`)) {
      req.socket.destroy(); // the page's fetch fails (a network error, not an answer)
      entry.end = Date.now();
      return;
    }
    if (failing.has(`${req.method} ${url.pathname}`)) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('down');
      entry.end = Date.now();
      return;
    }
    const headers = {};
    for (const k of ['cookie', 'origin', 'content-type', 'user-agent', 'revision']) {
      if (req.headers[k]) headers[k] = req.headers[k];
    }
    const body = ['GET', 'HEAD'].includes(req.method) ? undefined : Buffer.concat(chunks);
    const answer = await fetch(plain ? plainUrl() + req.url.slice('/plain'.length) : workerUrl() + req.url, { method: req.method, headers, body });
    const out = {};
    answer.headers.forEach((v, k) => { if (k !== 'set-cookie' && k !== 'content-length' && k !== 'content-encoding') out[k] = v; });
    const cookies = answer.headers.getSetCookie();
    if (cookies.length) out['set-cookie'] = cookies;
    const data = Buffer.from(await answer.arrayBuffer());
    res.writeHead(answer.status, out);
    res.end(data);
    entry.end = Date.now();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  // localhost: a secure context for Chromium, so the worker's Secure cookie is kept.
  const origin = `http://localhost:${server.address().port}`;
  return {
    origin,
    log,
    hold: (p) => held.add(p),
    /** `METHOD path` answered 500 by the shop, until `release()`. */
    fail: (p) => failing.add(p),
    /** The page at /shop.html. */
    setPage: (text) => { html = text; },
    /** `METHOD path`: the connection dropped, unanswered, until `release()`. */
    drop: (p) => dropping.add(p),
    release: () => { held.clear(); failing.clear(); dropping.clear(); waiting.forEach((r) => r()); waiting = []; },
    /** Passes on the latest held request alone; the others, and the hold, stay. */
    releaseNewest: () => waiting.pop()?.(),
    /** Passes on the earliest held request alone. */
    releaseOldest: () => waiting.shift()?.(),
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

before(async () => {
  if (!existsSync(path.join(WEB_DIR, 'index.js'))) throw new Error('dist/web is missing: run `bash .ci/build.sh` first');
  edge = await startEdge();
  // The shop listens first, so that the worker can allow its origin.
  let target = '';
  shop = await startShop(() => target, () => edge.emu.url);
  edge.worker = await edge.start({ ROUTE_PREFIX: PREFIX, ALLOWED_ORIGINS: shop.origin }, [], 'shop');
  target = edge.worker.url;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => {});
  await shop?.close();
  await edge?.close();
});

beforeEach(() => edge.emu.reset());

async function openShop(context, query = '') {
  const page = await context.newPage();
  const u = `${shop.origin}/tests/edge/page.html?companyId=${COMPANY_ID}&apiBase=${encodeURIComponent(shop.origin + PREFIX)}${query}`;
  await page.goto(u);
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.ready), '1', await page.evaluate(() => window.initError));
  return page;
}

/** The profile attributes of each accepted event named `metric` (single or bulk). */
function eventsOf(metric) {
  return edge.emu.requests({ pathPrefix: '/client/', accepted: true }).requests.flatMap((r) => {
    const a = r.body.data.attributes;
    const events = r.path === '/client/event-bulk-create' ? a.events.data.map((e) => e.attributes) : r.path === '/client/events' ? [a] : [];
    return events.filter((e) => e.metric.data.attributes.name === metric).map(() => a.profile.data.attributes);
  });
}

async function track(page, metric) {
  await page.evaluate(async (m) => { window.kl.track(m, {}); await window.kl.flush(); }, metric);
  return waitFor(() => eventsOf(metric)[0], { timeout: 10_000, what: `${metric} at Klaviyo` });
}

/** The snippet as the worker serves it, its only setting the worker's URL of the script. */
async function workerSnippet() {
  const snippet = await (await fetch(`${shop.origin}${PREFIX}/script/snippet.min.js`)).text();
  const src = `${shop.origin}${PREFIX}/script/klaviyo-wasm.js`;
  const pasted = snippet.replace(/"\/klaviyo-wasm\/klaviyo-wasm\.js"\)\s*;?\s*$/, `${JSON.stringify(src)});`);
  assert.notEqual(pasted, snippet, 'the snippet ends with the script URL to replace');
  return pasted;
}

// Unfiltered: the cookie's path is the worker's prefix, and it is Secure.
const visitorCookie = async (context) => (await context.cookies()).find((c) => c.name === 'kw_visitor');

test('storage wiped as Safari wipes it: after a reload the events carry the same anonymous_id and _kx', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context, '&_kx=KX.from.email');
    const first = await track(page, 'First Visit');
    assert.equal(first._kx, 'KX.from.email');
    const cookie = await waitFor(() => visitorCookie(context), { what: 'the first-party cookie' });
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, PREFIX);
    assert.ok(cookie.expires * 1000 - Date.now() > 399 * 24 * 3600 * 1000, 'kept 400 days');
    // Safari's 7 days pass: script storage is gone, the server's cookie is not.
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await page.waitForSelector('body[data-ready]', { state: 'attached' });
    const after = await track(page, 'After Wipe');
    assert.equal(after.anonymous_id, first.anonymous_id, 'the same anonymous profile');
    assert.equal(after._kx, 'KX.from.email', 'the email click is remembered');
    // And the page itself adopted it, for what it stores next.
    await waitFor(() => page.evaluate((a) => window.kl.anonymousId === a, first.anonymous_id), { what: 'the page adopting the kept id' });
  } finally {
    await context.close();
  }
});

test('a forged or unsigned cookie is ignored', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    await context.addCookies([{ name: 'kw_visitor', value: `v1|anon-forged|kx-forged|${'0'.repeat(64)}`, url: shop.origin + PREFIX + '/' }]);
    const page = await openShop(context);
    const sent = await track(page, 'With Forged Cookie');
    assert.notEqual(sent.anonymous_id, 'anon-forged');
    assert.equal(sent._kx, undefined);
    assert.notEqual(await page.evaluate(() => window.kl.anonymousId), 'anon-forged');
  } finally {
    await context.close();
  }
});

test('consent denied clears the cookie', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context);
    await track(page, 'Before Denial');
    await waitFor(() => visitorCookie(context), { what: 'the cookie' });
    await page.evaluate(() => window.kl.setConsent('denied'));
    await waitFor(async () => !(await visitorCookie(context)), { what: 'the cookie cleared' });
  } finally {
    await context.close();
  }
});

test('a denial made after close() clears the cookie too', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context);
    await track(page, 'Before Close And Denial');
    await waitFor(() => visitorCookie(context), { what: 'the cookie' });
    await page.evaluate(() => { window.kl.close(); window.kl.setConsent('denied'); });
    await waitFor(async () => !(await visitorCookie(context)), { what: 'the cookie cleared' });
  } finally {
    await context.close();
  }
});

test('a page that starts denied clears the cookie too (its denial is carried out before the wasm loads)', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context);
    await track(page, 'Before A Denied Page');
    await waitFor(() => visitorCookie(context), { what: 'the cookie' });
    await page.close(); // (an open tab would clear it on hearing the withdrawal)
    const denied = await openShop(context, '&consent=denied');
    assert.equal(await denied.evaluate(() => window.kl.consent), 'denied');
    await waitFor(async () => !(await visitorCookie(context)), { what: 'the cookie cleared' });
  } finally {
    await context.close();
  }
});

test('a denial and a grant in one task: the cookie ends with the new visitor (the grant\'s POST waits for the denial\'s DELETE)', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context);
    await track(page, 'Before The Change Of Mind');
    await waitFor(() => visitorCookie(context), { what: 'the cookie' });
    const before = await page.evaluate(() => window.kl.anonymousId);
    // The worker is slow to clear the cookie: a POST sent beside the DELETE would be
    // answered first, and then cleared.
    shop.hold(`DELETE ${PREFIX}/id`);
    const after = await page.evaluate(() => { window.kl.setConsent('denied'); window.kl.setConsent('granted'); return window.kl.anonymousId; });
    assert.notEqual(after, before, 'a grant after a denial is a new profile');
    const del = await waitFor(() => shop.log.find((e) => e.method === 'DELETE' && e.path === `${PREFIX}/id`), { what: 'the DELETE at the shop' });
    // A POST sent beside the DELETE reaches the shop within milliseconds: give it a
    // second to show up (the fixed library sends none before the DELETE is answered).
    await waitFor(() => shop.log.some((e) => e.method === 'POST' && e.start >= del.start), { timeout: 1000, what: 'a POST' }).catch(() => {});
    shop.release();
    const stored = () => page.evaluate(async (url) => {
      const r = await fetch(url, { credentials: 'include' });
      return r.ok ? (await r.json()).anonymous_id : null;
    }, `${shop.origin}${PREFIX}/id`);
    await waitFor(async () => (await stored()) === after, { what: 'the cookie to hold the new visitor' });
    // Settled: the grant's POST started once the DELETE was answered, and nothing
    // cleared the cookie afterwards.
    await waitFor(() => shop.log.filter((e) => e.path === `${PREFIX}/id`).every((e) => e.end), { what: 'every /id answered' });
    const posts = shop.log.filter((e) => e.method === 'POST' && e.path === `${PREFIX}/id` && e.start >= del.start);
    assert.ok(posts.length > 0 && posts.every((e) => e.start >= del.end), `the POST waited for the DELETE: ${JSON.stringify(shop.log.slice(-4))}`);
    assert.equal(await stored(), after);
  } finally {
    shop.release();
    await context.close();
  }
});

/** The visitor in the cookie (its value is `v1|anonymous_id|_kx|tag`), or null. */
const cookieVisitor = async (context) => (await visitorCookie(context))?.value.split('|')[1] ?? null;

/**
 * A returning visitor whose identity Safari wiped: the page asks the worker's cookie for
 * it (`GET /id`), and the shop holds that request. Returns the page, the visitor the
 * cookie holds, and the held request's log entry.
 */
async function askingTheCookie(context, metric) {
  const page = await openShop(context);
  const first = await track(page, metric);
  await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
  // The identity goes; what the page learnt of the worker stays.
  await page.evaluate((k) => localStorage.removeItem(k), `klaviyo:${COMPANY_ID}:id`);
  shop.hold(`GET ${PREFIX}/id`);
  const mark = shop.log.length;
  await page.reload();
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
  const get = await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'GET' && e.path === `${PREFIX}/id`), { what: 'the GET /id (held)' });
  return { page, old: first.anonymous_id, get, mark };
}

/** `/id` requests at the shop since `mark` that started after `entry` was answered. */
const idAfter = (mark, entry) => shop.log.slice(mark).filter((e) => e.path === `${PREFIX}/id` && e !== entry && e.start >= entry.end);

test('storage wiped: a call made while the page asks the cookie for its visitor, sent after the answer (the shop failed it first), is the cookie\'s visitor\'s', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const { page, old, mark } = await askingTheCookie(context, 'Before A Retried Call');
    for (const route of ['events', 'event-bulk-create']) shop.fail(`POST ${PREFIX}/client/${route}`);
    const madeUp = await page.evaluate(() => { window.kl.track('Made Before The Answer', {}); return window.kl.anonymousId; });
    assert.notEqual(madeUp, old);
    await waitFor(() => shop.log.slice(mark).find((e) => e.path.startsWith(`${PREFIX}/client/`) && e.end), { what: 'the call failed once' });
    // The GET is answered (and the shop's calls again); the page takes the cookie's
    // visitor, and the call goes again after its backoff, its body as it was made.
    shop.release();
    await waitFor(() => page.evaluate((a) => window.kl.anonymousId === a, old), { what: 'the page taking the cookie\'s visitor' });
    const sent = await waitFor(() => eventsOf('Made Before The Answer')[0], { timeout: 15_000, what: 'the retried call at Klaviyo' });
    // Before, the page marked it as its own visitor's once the GET had answered, and the
    // worker kept the made-up id: the returning visitor's event on a profile of its own.
    assert.equal(sent.anonymous_id, old, "the cookie's visitor");
  } finally {
    shop.release();
    await context.close();
  }
});

test('a denial while the page asks the cookie for its visitor: the answer is dropped, and the cookie stays cleared', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const { page, get, mark } = await askingTheCookie(context, 'Before A Denial In Flight');
    await page.evaluate(() => window.kl.setConsent('denied'));
    // The worker answers the GET now, with the visitor the denial forgot. (Chromium's
    // cache holds the DELETE to the same URL until then.)
    shop.release();
    const del = await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'DELETE' && e.end), { what: 'the DELETE answered' });
    await waitFor(() => get.end, { what: 'the GET answered' });
    // A POST would follow the answer within milliseconds: a second to show up.
    await waitFor(() => idAfter(mark, del).some((e) => e.method === 'POST'), { timeout: 1000, what: 'a POST' }).catch(() => {});
    assert.deepEqual(idAfter(mark, del).map((e) => e.method), [], 'nothing written after the denial');
    assert.equal(await cookieVisitor(context), null, 'still cleared');
    assert.equal(await page.evaluate(() => window.kl.anonymousId), null);
  } finally {
    shop.release();
    await context.close();
  }
});

/**
 * While the page's GET /id is held, `change` (run in the page) gives the visitor a new
 * anonymous id; the worker then answers the GET with the old one. The page and the
 * cookie must keep the new visitor.
 */
async function keepsTheNewVisitor(metric, change) {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const { page, old, get } = await askingTheCookie(context, `Before ${metric}`);
    const fresh = await page.evaluate(change);
    assert.notEqual(fresh, old);
    // (Chromium's cache holds a DELETE, and so a grant's POST, until the GET is answered.)
    shop.release();
    await waitFor(() => get.end, { what: 'the GET answered' });
    await waitFor(async () => (await cookieVisitor(context)) === fresh, { what: 'the cookie to hold the new visitor' });
    // Taking the answer would change the page's visitor within milliseconds: a second to show up.
    await waitFor(() => page.evaluate((f) => window.kl.anonymousId !== f, fresh), { timeout: 1000, what: 'another visitor' }).catch(() => {});
    assert.equal(await page.evaluate(() => window.kl.anonymousId), fresh, 'the page keeps the new visitor');
    assert.equal((await track(page, `After ${metric}`)).anonymous_id, fresh);
    assert.equal(await cookieVisitor(context), fresh, 'and so does the cookie');
  } finally {
    shop.release();
    await context.close();
  }
}

test('a denial and a grant while the page asks the cookie for its visitor: the forgotten visitor is not taken back', () => keepsTheNewVisitor('A Change Of Mind', () => {
  window.kl.setConsent('denied');
  window.kl.setConsent('granted');
  return window.kl.anonymousId;
}));

test('a logout (reset) while the page asks the cookie for its visitor: the logged-out visitor is not taken back', () => keepsTheNewVisitor('A Logout', () => {
  window.kl.reset();
  return window.kl.anonymousId;
}));

test('a logout (reset) and a new login: the next events are the new visitor\'s, though the cookie still names the old one until the worker has it', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context, '&_kx=KX.of.the.first');
    const first = await track(page, 'Before The Logout');
    assert.equal(first._kx, 'KX.of.the.first');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    // The worker is slow to take the new visitor: its cookie names the first one meanwhile.
    shop.hold(`POST ${PREFIX}/id`);
    const fresh = await page.evaluate(async () => {
      window.kl.reset();
      window.kl.identify({ email: 'second@example.com' });
      window.kl.track('After The Logout', {});
      await window.kl.flush();
      return window.kl.anonymousId;
    });
    assert.notEqual(fresh, first.anonymous_id);
    const after = await waitFor(() => eventsOf('After The Logout')[0], { what: 'the event at Klaviyo' });
    assert.equal(after.email, 'second@example.com');
    assert.equal(after.anonymous_id, fresh, "the new visitor's id, not the cookie's");
    assert.equal(after._kx, undefined, "nor the first visitor's email click");
    shop.release();
    await waitFor(async () => (await cookieVisitor(context)) === fresh, { what: 'the cookie to hold the new visitor' });
    // Once it does, the calls carry it again.
    assert.equal((await track(page, 'Once The Cookie Knows')).anonymous_id, fresh);
  } finally {
    shop.release();
    await context.close();
  }
});

test('a logout while consent is pending, then the grant: the held calls are the new visitor\'s', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const first = await track(await openShop(context, '&_kx=KX.of.the.first'), 'Before A Pending Logout');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    // The next page starts pending (a consent banner not answered yet).
    const page = await openShop(context, '&consent=pending');
    shop.hold(`POST ${PREFIX}/id`);
    const fresh = await page.evaluate(async () => {
      window.kl.reset();
      window.kl.identify({ email: 'second@example.com' });
      window.kl.track('Held Until The Grant', {});
      window.kl.setConsent('granted');
      await window.kl.flush();
      return window.kl.anonymousId;
    });
    const after = await waitFor(() => eventsOf('Held Until The Grant')[0], { what: 'the event at Klaviyo' });
    assert.equal(after.anonymous_id, fresh, "the new visitor's id, not the cookie's");
    assert.equal(after._kx, undefined);
  } finally {
    shop.release();
    await context.close();
  }
});

test('storage wiped, then a logout before the worker has answered: the cookie\'s visitor is neither sent nor taken back', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context, '&_kx=KX.of.the.first');
    const first = await track(page, 'Before The Wipe');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await page.waitForSelector('body[data-ready]', { state: 'attached' });
    // The page knows nothing of the worker yet (that was in storage): it logs out at once.
    const fresh = await page.evaluate(async () => {
      window.kl.reset();
      window.kl.track('Logged Out After The Wipe', {});
      await window.kl.flush();
      return window.kl.anonymousId;
    });
    const after = await waitFor(() => eventsOf('Logged Out After The Wipe')[0], { what: 'the event at Klaviyo' });
    assert.equal(after.anonymous_id, fresh, "the new visitor's id, not the cookie's");
    assert.equal(after._kx, undefined);
    await waitFor(async () => (await cookieVisitor(context)) === fresh, { what: 'the cookie to hold the new visitor' });
    assert.equal(await page.evaluate(() => window.kl.anonymousId), fresh, 'not taken back from the cookie');
  } finally {
    shop.release();
    await context.close();
  }
});

test('a logout on a page whose apiBase is a proxy but not the worker: the calls carry the shop\'s cookies again at its first answer', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await context.newPage();
    await page.goto(`${shop.origin}/tests/edge/page.html?companyId=${COMPANY_ID}&apiBase=${encodeURIComponent(`${shop.origin}/plain`)}`);
    await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
    await page.evaluate(() => { document.cookie = 'shop_session=1; path=/'; });
    await track(page, 'Through A Plain Proxy');
    const mark = shop.log.length;
    await page.evaluate(() => window.kl.reset());
    // The first call after the reset may go without cookies; once the proxy has answered
    // as no worker does, they carry them again (before, never again on that page).
    let n = 0;
    await waitFor(async () => {
      await track(page, `After A Logout Through A Plain Proxy ${n += 1}`);
      return shop.log.slice(mark).filter((e) => e.path.startsWith('/plain/client/')).at(-1)?.cookie;
    }, { timeout: 10_000, what: 'a /client call with the shop\'s cookies' });
  } finally {
    await context.close();
  }
});

test('a first visit: a call made before a logout and retried after the worker has the new visitor keeps the visitor it was made with', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context);
    const first = await track(page, 'First Call Of A First Visit');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    for (const route of ['events', 'event-bulk-create']) shop.fail(`POST ${PREFIX}/client/${route}`);
    const mark = shop.log.length;
    await page.evaluate(() => { window.kl.identify({ email: 'first@example.com' }); window.kl.track('Logged In, Retried', {}); });
    await waitFor(() => shop.log.slice(mark).find((e) => e.path.startsWith(`${PREFIX}/client/`) && e.end), { what: 'the call failed once' });
    const next = await page.evaluate(() => { window.kl.reset(); return window.kl.anonymousId; });
    await waitFor(async () => (await cookieVisitor(context)) === next, { what: 'the cookie to hold the new visitor' });
    shop.release();
    const sent = await waitFor(() => eventsOf('Logged In, Retried')[0], { timeout: 15_000, what: 'the retried call at Klaviyo' });
    // Unmarked, the worker would put the cookie's visitor (the next one) in it, with the
    // logged-out customer's email.
    assert.equal(sent.anonymous_id, first.anonymous_id);
    assert.equal(sent.email, 'first@example.com');
  } finally {
    shop.release();
    await context.close();
  }
});

/** A page whose whole storage was wiped (the worker's mark too), reloaded: it knows
 * nothing of the worker until a call is answered. Returns the page and the cookie's visitor. */
async function wipedWhole(context, metric) {
  const page = await openShop(context, '&_kx=KX.of.the.forgotten');
  const first = await track(page, metric);
  await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
  return { page, old: first.anonymous_id };
}

test('storage wiped whole, then a denial and a grant (straight, or through pending) before the page knows the worker: the events and the cookie are the new visitor\'s', async () => {
  for (const [how, answers] of [['', ['denied', 'granted']], [' Through Pending', ['denied', 'pending', 'granted']]]) {
    const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
    try {
      const { page, old } = await wipedWhole(context, `Before A Change Of Mind On A Wiped Page${how}`);
      const metric = `After A Change Of Mind On A Wiped Page${how}`;
      const fresh = await page.evaluate(async ([m, all]) => {
        for (const a of all) window.kl.setConsent(a);
        window.kl.track(m, {});
        await window.kl.flush();
        return window.kl.anonymousId;
      }, [metric, answers]);
      assert.notEqual(fresh, old);
      const sent = await waitFor(() => eventsOf(metric)[0], { what: 'the event at Klaviyo' });
      // Before, the worker put the cookie's visitor in the call, the page then asked the
      // cookie (GET /id), took that visitor back and wrote it again. (The denial could not
      // clear the cookie: the page did not know the worker, and sends no DELETE to an
      // apiBase that may be none.)
      assert.equal(sent.anonymous_id, fresh, `the new visitor's id, not the forgotten one's${how}`);
      assert.equal(sent._kx, undefined);
      await waitFor(async () => (await cookieVisitor(context)) === fresh, { what: 'the cookie to hold the new visitor' });
      assert.equal(await page.evaluate(() => window.kl.anonymousId), fresh, 'not taken back');
      assert.equal((await track(page, `Later On A Wiped Page${how}`)).anonymous_id, fresh);
    } finally {
      await context.close();
    }
  }
});

test('a logout whose POST /id fails: the calls carry the shop\'s cookies again once it has failed, and the new visitor\'s, not the cookie\'s', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context, '&_kx=KX.of.the.first');
    const first = await track(page, 'Before A Failed Logout');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    shop.fail(`POST ${PREFIX}/id`);
    const mark = shop.log.length;
    const fresh = await page.evaluate(() => { window.kl.reset(); return window.kl.anonymousId; });
    await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'POST' && e.path === `${PREFIX}/id` && e.end), { what: 'the failed POST /id' });
    // The page reads the failure a moment after the shop sent it: calls until then may
    // still go without cookies. Without cookies for good, a shop behind a challenge
    // (cf_clearance) would lose its calls.
    let n = 0;
    await waitFor(async () => {
      await track(page, `After A Failed Id ${n += 1}`);
      return shop.log.slice(mark).filter((e) => e.path.startsWith(`${PREFIX}/client/`)).at(-1)?.cookie;
    }, { timeout: 10_000, what: 'a /client call with the shop\'s cookies' });
    // The cookie still names the logged-out visitor; the calls are the new one's
    // (before, the worker put the cookie's ids in them until a later POST /id landed).
    assert.equal(await cookieVisitor(context), first.anonymous_id);
    const after = eventsOf(`After A Failed Id ${n}`)[0];
    assert.equal(after.anonymous_id, fresh, "the new visitor's id, not the cookie's");
    assert.equal(after._kx, undefined, "nor the logged-out visitor's email click");
  } finally {
    shop.release();
    await context.close();
  }
});

test('a logout whose POST /id never answers: the calls carry the shop\'s cookies again once it has timed out (10 s), and the new visitor\'s, in a browser without AbortSignal.timeout too', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  // As in Safari 15.4 to 15.6, which the package supports.
  await context.addInitScript(() => { delete AbortSignal.timeout; });
  try {
    const page = await openShop(context, '&_kx=KX.of.the.first');
    const first = await track(page, 'Before A Hung Logout');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    shop.hold(`POST ${PREFIX}/id`);
    const mark = shop.log.length;
    const fresh = await page.evaluate(() => { window.kl.reset(); return window.kl.anonymousId; });
    await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'POST' && e.path === `${PREFIX}/id`), { what: 'the POST /id (held)' });
    // Before, a request that never ends left the page's calls without cookies for good.
    let n = 0;
    await waitFor(async () => {
      await track(page, `After A Hung Id ${n += 1}`);
      return shop.log.slice(mark).filter((e) => e.path.startsWith(`${PREFIX}/client/`)).at(-1)?.cookie;
    }, { timeout: 25_000, interval: 500, what: 'a /client call with the shop\'s cookies' });
    const after = eventsOf(`After A Hung Id ${n}`)[0];
    assert.equal(after.anonymous_id, fresh, "the new visitor's id, not the cookie's");
    assert.equal(after._kx, undefined, "nor the logged-out visitor's email click");
  } finally {
    shop.release();
    await context.close();
  }
});

test('two logouts in quick succession: the cookie ends with the second visitor, whichever POST /id the shop passes on first', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context, '&_kx=KX.of.the.first');
    const first = await track(page, 'Before Two Logouts');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    shop.hold(`POST ${PREFIX}/id`);
    const mark = shop.log.length;
    const last = await page.evaluate(() => { window.kl.reset(); window.kl.reset(); return window.kl.anonymousId; });
    const posts = () => shop.log.slice(mark).filter((e) => e.method === 'POST' && e.path === `${PREFIX}/id`);
    await waitFor(() => posts().length, { what: 'a POST /id (held)' });
    // Before, the second went at once too: a second for it to show up (now it waits).
    await waitFor(() => posts().length >= 2, { timeout: 1000 }).catch(() => {});
    // The newest held one goes first: before, that was the second visitor's, and the
    // first's, passed on after it, left the cookie naming a visitor the page had dropped.
    const released = posts().at(-1);
    shop.releaseNewest();
    await waitFor(() => released.end, { what: 'the released POST /id answered' });
    shop.release();
    await waitFor(async () => posts().length >= 2 && posts().every((e) => e.end), { what: 'both POST /id answered' });
    assert.equal(await cookieVisitor(context), last, "the cookie names the page's visitor");
    const after = await track(page, 'After Two Logouts');
    assert.equal(after.anonymous_id, last);
    assert.equal(after._kx, undefined, "no email click of a visitor logged out");
  } finally {
    shop.release();
    await context.close();
  }
});

test('a denial while a POST /id is still out: the cookie stays cleared when that write lands after the DELETE', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context);
    const first = await track(page, 'Before A Late Write');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    shop.hold(`POST ${PREFIX}/id`);
    const mark = shop.log.length;
    await page.evaluate(() => window.kl.reset());
    const post = await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'POST' && e.path === `${PREFIX}/id`), { what: 'the POST /id (held)' });
    await page.evaluate(() => window.kl.setConsent('denied'));
    await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'DELETE' && e.end), { what: 'the DELETE answered' });
    assert.equal(await cookieVisitor(context), null, 'cleared by the DELETE');
    shop.release();
    await waitFor(() => post.end, { what: 'the late POST /id answered' });
    // The write the page made before its denial lands last; the page clears it again.
    await waitFor(async () => (await cookieVisitor(context)) === null && shop.log.slice(mark).filter((e) => e.method === 'DELETE' && e.end).length === 2, { what: 'the cookie cleared again' });
  } finally {
    shop.release();
    await context.close();
  }
});

test('a denial long after the last write sends one DELETE; a grant right after it waits for every DELETE of the denial', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const page = await openShop(context);
    const first = await track(page, 'Before Deny And Grant');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    const settledPosts = shop.log.filter((e) => e.method === 'POST' && e.path === `${PREFIX}/id`);
    await waitFor(() => settledPosts.every((e) => e.end), { what: 'every POST /id answered' });
    // No write out: the denial's DELETE goes once (before, twice on every denial).
    let mark = shop.log.length;
    await page.evaluate(() => window.kl.setConsent('denied'));
    await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'DELETE' && e.end), { what: 'the DELETE answered' });
    await page.evaluate(() => { window.kl.setConsent('granted'); window.kl.track('After The Grant', {}); return window.kl.flush(); });
    const granted = await page.evaluate(() => window.kl.anonymousId);
    await waitFor(async () => (await cookieVisitor(context)) === granted, { what: 'the cookie naming the granted visitor' });
    assert.deepEqual(shop.log.slice(mark).filter((e) => e.path === `${PREFIX}/id`).map((e) => e.method), ['DELETE', 'POST']);
    // A write out at the denial: two DELETEs (at once, and after that write). The shop
    // passes on the newest first; the grant's POST must wait for the other one too.
    shop.hold(`POST ${PREFIX}/id`);
    shop.hold(`DELETE ${PREFIX}/id`);
    mark = shop.log.length;
    await page.evaluate(() => window.kl.reset());
    const ids = () => shop.log.slice(mark).filter((e) => e.path === `${PREFIX}/id`);
    await waitFor(() => ids().length === 1, { what: 'the reset\'s POST /id (held)' });
    await page.evaluate(() => window.kl.setConsent('denied'));
    await waitFor(() => ids().length === 2, { what: 'the first DELETE (held)' });
    shop.releaseOldest(); // the reset's POST; the first DELETE stays held
    const [post] = ids();
    await waitFor(() => post.end && ids().length === 3, { what: 'the POST answered, the second DELETE (held)' });
    await page.evaluate(() => window.kl.setConsent('granted'));
    const last = await page.evaluate(() => window.kl.anonymousId);
    shop.releaseNewest(); // the second DELETE; the first is still held
    await waitFor(() => ids()[2].end, { what: 'the second DELETE answered' });
    // The grant's POST waits for both: before, it went now, and the first DELETE,
    // passed on after it, cleared the granted visitor's cookie.
    await waitFor(() => ids().length >= 4, { timeout: 1000 }).catch(() => {});
    assert.deepEqual(ids().map((e) => e.method), ['POST', 'DELETE', 'DELETE'], 'no POST before every DELETE is answered');
    shop.release();
    await waitFor(async () => ids().length === 4 && ids().every((e) => e.end) && (await cookieVisitor(context)) === last, { what: 'the cookie naming the granted visitor' });
  } finally {
    shop.release();
    await context.close();
  }
});

test('a denial\'s DELETE that fails (the connection dropped) throws nothing into the page', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  const errors = [];
  try {
    const page = await openShop(context);
    page.on('pageerror', (e) => errors.push(e.message));
    const first = await track(page, 'Before A Dropped Delete');
    await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
    shop.hold(`POST ${PREFIX}/id`);
    shop.drop(`DELETE ${PREFIX}/id`);
    const mark = shop.log.length;
    await page.evaluate(() => window.kl.reset());
    await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'POST'), { what: 'the reset\'s POST /id (held)' });
    await page.evaluate(() => window.kl.setConsent('denied'));
    await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'DELETE' && e.end), { what: 'the first DELETE dropped' });
    // The second DELETE goes once the POST is answered: by then the first one's failure
    // has been handled, or reported as an unhandled rejection.
    shop.releaseNewest();
    const post = shop.log.slice(mark).find((e) => e.method === 'POST');
    // (Chromium may try a dropped DELETE twice itself.)
    await waitFor(() => post.end && shop.log.slice(mark).some((e) => e.method === 'DELETE' && e.end && e.start >= post.end), { what: 'the second DELETE dropped' });
    await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));
    assert.deepEqual(errors, [], 'no unhandled rejection');
  } finally {
    shop.release();
    await context.close();
  }
});

test('a denial while the first answer that shows the worker is on its way: nothing of the worker is stored, and no cookie is written', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  shop.hold(`${PREFIX}/client/events`);
  try {
    const mark = shop.log.length;
    const page = await openShop(context);
    await page.evaluate(() => window.kl.track('Before The Worker Is Known', {}));
    const first = await waitFor(() => shop.log.slice(mark).find((e) => e.path.startsWith(`${PREFIX}/client/`)), { what: 'the first /client request (held)' });
    await page.evaluate(() => window.kl.setConsent('denied'));
    shop.release();
    await waitFor(() => first.end, { what: 'the first /client request answered' });
    // The page would write the cookie within milliseconds of that answer: a second to show up.
    await waitFor(() => shop.log.slice(mark).some((e) => e.method === 'POST' && e.path === `${PREFIX}/id`), { timeout: 1000, what: 'a POST /id' }).catch(() => {});
    assert.deepEqual(shop.log.slice(mark).filter((e) => e.path === `${PREFIX}/id` && e.method !== 'DELETE').map((e) => e.method), [], 'no /id written or asked after the denial');
    assert.equal(await cookieVisitor(context), null, 'no cookie');
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('klaviyo:') && !k.endsWith(':consent'))), [`klaviyo:${COMPANY_ID}:denied`], 'nothing stored but the denial (its time)');
  } finally {
    shop.release();
    await context.close();
  }
});

test('a worker that answers /id slowly or not at all delays no call', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  shop.hold(`${PREFIX}/id`);
  try {
    const mark = shop.log.length;
    const page = await openShop(context);
    await track(page, 'While Id Hangs');
    // /id is asked once the first answer shows the worker, so it may reach the shop just after.
    const idReq = await waitFor(() => {
      const asked = shop.log.slice(mark).filter((r) => r.path === `${PREFIX}/id`);
      return asked.length ? asked : null;
    }, { what: '/id asked' });
    assert.ok(idReq.every((r) => r.end === 0), '/id is still unanswered');
    const mine = shop.log.slice(mark);
    const sent = mine.find((r) => r.path === `${PREFIX}/client/events` && r.end > 0);
    assert.ok(sent, 'the event went while /id hung');
  } finally {
    shop.release();
    await context.close();
  }
});

test('the snippet of the worker: an init pushed after the async script ran still wins (consent pending: nothing sent until the grant)', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const pasted = await workerSnippet();
    // A parser-blocking script the shop holds keeps the page's next script back until
    // ours has run, as a slow theme script or a large page does.
    shop.hold(`GET ${PREFIX}/health`);
    shop.setPage(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script>${pasted}</script>
<script src="${PREFIX}/health"></script>
<script>klaviyoWasm.push(["init", { consent: "pending", activeOnSite: "manual" }]); klaviyoWasm.push(["track", "Before The Consent", {}]);</script>
</head><body>shop</body></html>`);
    const page = await context.newPage();
    const warnings = [];
    page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
    const mark = shop.log.length;
    await page.goto(`${shop.origin}/shop.html`, { waitUntil: 'commit' });
    await waitFor(() => page.evaluate(() => window.klaviyoWasm?.loaded === true), { timeout: 15_000, what: 'our script ran' });
    shop.release();
    await page.waitForFunction(() => document.readyState !== 'loading');
    assert.equal(await page.evaluate(() => window.klaviyoWasm.tracker?.consent), 'pending', 'the init\'s consent');
    await page.evaluate(() => window.klaviyoWasm.tracker.ready.then(() => window.klaviyoWasm.tracker.flush()));
    assert.deepEqual(shop.log.slice(mark).filter((e) => e.path.startsWith(`${PREFIX}/client/`)), [], 'nothing sent while pending');
    await page.evaluate(() => window.klaviyoWasm.push(['consent', 'granted']));
    await waitFor(() => eventsOf('Before The Consent')[0], { timeout: 15_000, what: 'the event once granted' });
    await page.evaluate(() => window.klaviyoWasm.tracker.flush());
    assert.deepEqual(eventsOf('Active on Site'), [], 'activeOnSite manual, as the init said');
    assert.deepEqual(warnings.filter((w) => w.includes('already initialised')), []);
  } finally {
    shop.release();
    await context.close();
  }
});

test('the script-tag page loads both files from the worker: two requests, the right types, from cache the next time', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const pasted = await workerSnippet();
    shop.setPage(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script>${pasted}</script>
<script>klaviyoWasm.push(["track", "Script Tag Event", { n: 1 }]);</script>
</head><body>shop</body></html>`);
    const page = await context.newPage();
    const files = [];
    page.on('response', (r) => { if (r.url().includes(`${PREFIX}/script/`)) files.push({ url: r.url(), type: r.headers()['content-type'] }); });
    const mark = shop.log.length;
    await page.goto(`${shop.origin}/shop.html`);
    await waitFor(() => eventsOf('Script Tag Event')[0], { timeout: 15_000, what: 'the script tag\'s event at Klaviyo' });
    const fetched = shop.log.slice(mark).filter((r) => r.path.startsWith(`${PREFIX}/script/`));
    assert.deepEqual(fetched.map((r) => r.path).sort(), [`${PREFIX}/script/klaviyo-wasm.js`, `${PREFIX}/script/klaviyo_wasm_bg.wasm`], 'two requests');
    const type = (name) => files.find((f) => f.url.endsWith(name))?.type;
    assert.equal(type('klaviyo-wasm.js'), 'text/javascript; charset=utf-8');
    assert.equal(type('klaviyo_wasm_bg.wasm'), 'application/wasm');
    // The next page of the visit: both from the browser's cache, nothing asked of the worker.
    const again = shop.log.length;
    await page.goto(`${shop.origin}/shop.html`);
    await waitFor(() => eventsOf('Script Tag Event').length >= 2, { timeout: 15_000, what: 'the second page\'s event' });
    assert.deepEqual(shop.log.slice(again).filter((r) => r.path.startsWith(`${PREFIX}/script/`)), [], 'served from cache');
  } finally {
    await context.close();
  }
});

/** A returning visitor's identity, wiped as Safari wipes it (the worker's cookie keeps
 * it): a first page tracks, then its identity is removed and the page closed. Returns
 * the visitor. */
async function wipedVisitor(context, metric) {
  const page = await openShop(context, '&_kx=KX.of.the.returning');
  const first = await track(page, metric);
  await waitFor(async () => (await cookieVisitor(context)) === first.anonymous_id, { what: 'the cookie' });
  await page.evaluate((k) => localStorage.removeItem(k), `klaviyo:${COMPANY_ID}:id`);
  await page.close();
  return { old: first.anonymous_id };
}

const ready = (page) => page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
const storedId = (page) => page.evaluate((k) => JSON.parse(localStorage.getItem(k) || 'null')?.anonymous_id, `klaviyo:${COMPANY_ID}:id`);

test('storage wiped: a tab opened while another asks the cookie for the visitor takes the made-up id for no visitor of its own: it writes nothing over the cookie, and both tabs\' events are the cookie\'s visitor\'s', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const { old } = await wipedVisitor(context, 'Before A Second Tab');
    shop.hold(`GET ${PREFIX}/id`);
    const mark = shop.log.length;
    const first = await openShop(context);
    // The first tab has stored the id it made up meanwhile; its question is unanswered.
    const madeUp = await waitFor(() => storedId(first), { what: 'the made-up id stored' });
    assert.notEqual(madeUp, old);
    const second = await openShop(context);
    assert.equal(await second.evaluate(() => window.kl.anonymousId), madeUp);
    for (const [i, p] of [first, second].entries()) await p.evaluate((m) => window.kl.track(m, {}), `Wiped, Tab ${i}`);
    // Both go while the question is out, unmarked: the worker puts the cookie's visitor
    // in them. Before, the second tab took the made-up id for its visitor: it wrote it
    // to the cookie (POST /id; the returning visitor was gone for good if the first
    // tab's question reached the worker after it) and marked its calls as its own.
    for (const i of [0, 1]) assert.equal((await waitFor(() => eventsOf(`Wiped, Tab ${i}`)[0], { what: `tab ${i}'s event` })).anonymous_id, old);
    assert.deepEqual(shop.log.slice(mark).filter((e) => e.method === 'POST' && e.path === `${PREFIX}/id`), [], 'no POST /id while the cookie is asked');
    assert.equal(await cookieVisitor(context), old);
    shop.release();
    for (const p of [first, second]) await waitFor(() => p.evaluate((a) => window.kl.anonymousId === a, old), { what: 'both tabs taking the cookie\'s visitor' });
    await waitFor(() => shop.log.slice(mark).filter((e) => e.path === `${PREFIX}/id`).every((e) => e.end), { what: 'every /id answered' });
    assert.equal(await cookieVisitor(context), old);
    assert.equal((await track(second, 'Wiped, Tab 1, Later')).anonymous_id, old);
  } finally {
    shop.release();
    await context.close();
  }
});

/**
 * Two trackers of the shop made in one task on a page whose identity was wiped (`whole`:
 * the whole storage, the worker's mark too): each starts before the other has written
 * the id it made up, and each hears the other's write (as two tabs of a restored session
 * do). Each tracks at once, with its own made-up id. The cookie's GET /id is held; with
 * the mark kept, Klaviyo fails the calls until it is answered (they go again after it);
 * without it, the calls go and their answers show the worker. A tab opened next must ask
 * too, and all must end on the cookie's visitor without writing over it.
 */
async function restoredSession(whole) {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const { old } = await wipedVisitor(context, `Before A Restored Session${whole ? ', Wiped Whole' : ''}`);
    shop.hold(`GET ${PREFIX}/id`);
    if (!whole) for (const route of ['events', 'event-bulk-create']) shop.fail(`POST ${PREFIX}/client/${route}`);
    const mark = shop.log.length;
    shop.setPage(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module">
${whole ? 'localStorage.clear();' : ''}
const { Klaviyo } = await import('/dist/web/index.js');
const o = { companyId: ${JSON.stringify(COMPANY_ID)}, apiBase: ${JSON.stringify(shop.origin + PREFIX)}, activeOnSite: 'manual' };
window.all = [Klaviyo.create(o), Klaviyo.create(o)];
window.all.forEach((k, i) => k.track('Restored, Tracker ' + i + ${JSON.stringify(whole ? ', Whole' : '')}, {}));
await Promise.all(window.all.map((k) => k.ready));
document.body.dataset.ready = '1';
</script></head><body></body></html>`);
    const page = await context.newPage();
    await page.goto(`${shop.origin}/shop.html`);
    await ready(page);
    const ids = () => page.evaluate(() => window.all.map((k) => k.anonymousId));
    // One visitor in both and in storage (before, they swapped ids: the tracker that
    // wrote last kept another visitor than storage, for good).
    await waitFor(async () => {
      const [a, b] = await ids();
      return a === b && a === (await storedId(page));
    }, { what: 'one visitor in both trackers and storage' });
    // The calls have been answered (failed; or delivered, showing the worker) and the
    // cookie asked.
    await waitFor(() => shop.log.slice(mark).filter((e) => e.path.startsWith(`${PREFIX}/client/`) && e.end).length >= 1, { what: 'a call answered' });
    await waitFor(() => shop.log.slice(mark).some((e) => e.method === 'GET' && e.path === `${PREFIX}/id`), { what: 'the cookie asked' });
    // A tab opened now finds a made-up id as its identity: it asks too.
    const next = await openShop(context);
    assert.equal(await next.evaluate(() => window.kl.anonymousId), (await ids())[0]);
    assert.deepEqual(shop.log.slice(mark).filter((e) => e.method === 'POST' && e.path === `${PREFIX}/id`), [], 'no POST /id while the cookie is asked');
    assert.equal(await cookieVisitor(context), old);
    shop.release();
    // Each call (made with either made-up id, retried after the answer where Klaviyo
    // failed it) is the cookie's visitor's.
    for (const i of [0, 1]) {
      const metric = `Restored, Tracker ${i}${whole ? ', Whole' : ''}`;
      const sent = await waitFor(() => eventsOf(metric)[0], { timeout: 20_000, what: `tracker ${i}'s event` });
      assert.equal(sent.anonymous_id, old, metric);
    }
    await waitFor(async () => (await ids()).every((a) => a === old), { what: 'both trackers taking the cookie\'s visitor' });
    await waitFor(() => next.evaluate((a) => window.kl.anonymousId === a, old), { what: 'the next tab too' });
    await waitFor(() => shop.log.slice(mark).filter((e) => e.path === `${PREFIX}/id`).every((e) => e.end), { what: 'every /id answered' });
    assert.equal(await cookieVisitor(context), old);
  } finally {
    shop.release();
    await context.close();
  }
}

test('storage wiped: two trackers that start together (as two tabs of a restored session) end with one visitor, the cookie\'s: neither they nor a tab opened next write a made-up id over it, and their calls, retried after the answer, are its visitor\'s', () => restoredSession(false));

test('storage wiped whole (the worker\'s mark too): two trackers that start together and a tab opened next write no made-up id over the cookie, once their calls\' answers show the worker, and end on its visitor', () => restoredSession(true));

test('storage wiped: a GET /id that fails writes nothing over the cookie, the calls are still the cookie\'s visitor\'s, and the next page asks again', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    const { old } = await wipedVisitor(context, 'Before A Failed Question');
    shop.fail(`GET ${PREFIX}/id`);
    const mark = shop.log.length;
    const page = await openShop(context);
    const get = await waitFor(() => shop.log.slice(mark).find((e) => e.method === 'GET' && e.path === `${PREFIX}/id` && e.end), { what: 'the GET /id failed' });
    assert.equal((await track(page, 'After A Failed Question')).anonymous_id, old);
    // Before, the page wrote its made-up id to the cookie once the question failed: the
    // returning visitor was gone. A POST would follow within milliseconds: a second to show up.
    await waitFor(() => idAfter(mark, get).some((e) => e.method === 'POST'), { timeout: 1000, what: 'a POST' }).catch(() => {});
    assert.deepEqual(idAfter(mark, get).map((e) => e.method), [], 'nothing written');
    assert.equal(await cookieVisitor(context), old);
    shop.release();
    // The next page finds the made-up id as its identity: it asks, and takes the visitor.
    await page.reload();
    await ready(page);
    await waitFor(() => page.evaluate((a) => window.kl.anonymousId === a, old), { what: 'the next page taking the cookie\'s visitor' });
    assert.equal((await track(page, 'After The Next Question')).anonymous_id, old);
  } finally {
    shop.release();
    await context.close();
  }
});

test('storage wiped: a page denied before its wasm has loaded stores nothing, not even the id it would have asked the cookie about', async () => {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  try {
    await wipedVisitor(context, 'Before A Denial While Loading');
    shop.setPage(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module">
const { Klaviyo } = await import('/dist/web/index.js');
window.kl = Klaviyo.create({ companyId: ${JSON.stringify(COMPANY_ID)}, apiBase: ${JSON.stringify(shop.origin + PREFIX)}, activeOnSite: 'manual' });
window.kl.setConsent('denied'); // the loading window: the core starts granted, then replays this
await window.kl.ready;
await window.kl.flush();
document.body.dataset.ready = '1';
</script></head><body></body></html>`);
    const page = await context.newPage();
    await page.goto(`${shop.origin}/shop.html`);
    await ready(page);
    await waitFor(async () => !(await visitorCookie(context)), { what: 'the cookie cleared' });
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('klaviyo:'))), [`klaviyo:${COMPANY_ID}:denied`], 'nothing but the time of the denial');
  } finally {
    await context.close();
  }
});
