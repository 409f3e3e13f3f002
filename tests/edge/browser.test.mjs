// End to end in Debian's Chromium: a shop page (its origin in ALLOWED_ORIGINS) runs the browser
// package with the edge worker (Miniflare) as apiBase; the worker forwards to the emulator.
//   node --test tests/edge/browser.test.mjs   (needs dist/web and dist/edge built)
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { sample } from '../emulator/fixtures.mjs';
import {
  startEdge, startStaticServer, launchChromium, shopperUserAgent, waitFor, findSecrets, sha256, ROOT, WEB_DIR, COMPANY_ID, REVISION, JSON_API,
} from './harness.mjs';

let site;
let edge;
let browser;

before(async () => {
  if (!existsSync(path.join(WEB_DIR, 'index.js'))) throw new Error('dist/web is missing: run `bash .ci/build.sh` first');
  // A sandboxed frame's opaque origin fetches the package and its .wasm cross-origin.
  site = await startStaticServer({ headersFor: () => ({ 'Access-Control-Allow-Origin': '*' }) });
  edge = await startEdge({ extraOrigins: [site.url] });
  browser = await launchChromium();
  console.log(`# page ${site.url}; worker ${edge.worker.url}; emulator ${edge.emu.url}; edge build ${edge.build}; root ${ROOT}`);
});

after(async () => {
  await browser?.close().catch(() => {});
  await edge?.close();
  await site?.close();
});

beforeEach(() => { edge?.emu.reset(); });

/**
 * A fresh context + page on the shop, with everything the page did on the network recorded.
 * `sandboxed`: the shop's page runs in an iframe with `sandbox="allow-scripts"` (an opaque
 * origin, as Shopify runs a custom pixel), and `frame` is that iframe.
 */
async function openShop({ worker = edge.worker, sandboxed = false } = {}) {
  const context = await browser.newContext({ userAgent: shopperUserAgent(browser) });
  const page = await context.newPage();
  const pageErrors = [];
  const requests = [];
  const responses = [];
  const consoleErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.stack || e.message));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('request', (r) => requests.push({ url: r.url(), method: r.method() }));
  const reading = [];
  page.on('response', (r) => {
    reading.push((async () => {
      let text = '';
      try { text = await r.text(); } catch { /* preflights and aborted bodies */ }
      let headers;
      // A response that comes after the test closed its context (a keepalive request of
      // the closing page) can no longer be read; nothing waits for it then.
      try { headers = await r.allHeaders(); } catch { return; }
      responses.push({ url: r.url(), status: r.status(), headers, text });
    })());
  });
  /** Waits until every response seen so far has been read into `responses`. */
  const settled = async () => { await Promise.all(reading); };
  const u = new URL('/tests/edge/page.html', site.url);
  u.searchParams.set('companyId', COMPANY_ID);
  u.searchParams.set('apiBase', worker.url);
  let frame = page.mainFrame();
  if (sandboxed) {
    await page.setContent(`<iframe sandbox="allow-scripts" src="${u.href}"></iframe>`);
    frame = await (await page.waitForSelector('iframe')).contentFrame();
  } else {
    await page.goto(u.href);
  }
  await frame.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
  const state = await frame.evaluate(() => document.body.dataset.ready);
  if (state !== '1') throw new Error(`page did not start: ${await frame.evaluate(() => window.initError)}`);
  return { context, page, frame, pageErrors, consoleErrors, requests, responses, settled, close: () => context.close().catch(() => {}) };
}

/** Metric names in an accepted /client/events or /client/event-bulk-create record. */
function metricsOf(r) {
  const attrs = r.body?.data?.attributes;
  if (!attrs) return [];
  if (r.path === '/client/events') return [attrs.metric?.data?.attributes?.name];
  if (r.path === '/client/event-bulk-create') return (attrs.events?.data || []).map((e) => e.attributes?.metric?.data?.attributes?.name);
  return [];
}

function acceptedMetrics() {
  return edge.emu.requests({ pathPrefix: '/client/', accepted: true }).requests.flatMap(metricsOf);
}

/** No configured secret in anything the page received from the worker. */
function assertNoSecretsIn(responses) {
  const leaks = responses.flatMap((r) => findSecrets(r.text + JSON.stringify(r.headers), edge.secrets).map((s) => `${s} in ${r.url}`));
  assert.deepEqual(leaks, []);
}

test('identify, viewedProduct, addedToCart + flush in Chromium: the emulator accepts them, sent through the worker', async () => {
  const shop = await openShop();
  try {
    const email = 'ann.edge@klaviyo-demo.com';
    const result = await shop.page.evaluate(async (email) => {
      await window.kl.identify({ email, first_name: 'Ann' });
      window.kl.viewedProduct({
        ProductID: '1111', ProductName: 'Winnie the Pooh', Price: 9.99,
        URL: 'https://shop.example/p/1111', ImageURL: 'https://shop.example/p/1111.jpg', Categories: ['Kids'],
      });
      window.kl.addedToCart({ ProductID: '1111', ProductName: 'Winnie the Pooh', Quantity: 2, Price: 9.99 });
      return window.kl.flush();
    }, email);

    await waitFor(() => {
      const m = acceptedMetrics();
      return m.includes('Viewed Product') && m.includes('Added to Cart');
    }, { what: 'Viewed Product and Added to Cart accepted by the emulator' });
    const profiles = edge.emu.requests({ path: '/client/profiles', accepted: true });
    assert.ok(profiles.count >= 1, 'identify reached /client/profiles');
    assert.equal(profiles.requests[0].body.data.attributes.email, email);

    const all = edge.emu.requests({ pathPrefix: '/client/' });
    assert.equal(all.rejected, 0, `nothing rejected upstream: ${JSON.stringify(all.requests.filter((r) => !r.accepted).map((r) => [r.path, r.status, r.errors]))}`);
    for (const r of all.requests) {
      assert.equal(r.query.company_id, COMPANY_ID);
      assert.equal(r.hasAuth, false);
      assert.equal(r.headers.cookie, undefined);
      assert.equal(r.headers.revision, REVISION);
    }
    // Events carry the identified profile.
    const bodies = edge.emu.requests({ pathPrefix: '/client/event', accepted: true }).requests.map((r) => r.body.data.attributes);
    for (const a of bodies) assert.equal((a.profile?.data?.attributes ?? {}).email, email);

    await shop.settled();
    // The page only ever talked to the worker (and its own origin); the emulator saw no preflight.
    const foreign = shop.requests.filter((r) => !r.url.startsWith(site.url) && !r.url.startsWith(edge.worker.url) && !r.url.startsWith('data:'));
    assert.deepEqual(foreign, [], 'no request from the page to anything but the shop and the worker');
    assert.ok(shop.requests.some((r) => r.url.startsWith(`${edge.worker.url}/client/`)), 'the page sent to the worker');
    assert.equal(edge.emu.requests().preflights.length, 0, 'the browser never reached the emulator directly');
    const answers = shop.responses.filter((r) => r.url.startsWith(`${edge.worker.url}/client/`) && r.status !== 204);
    assert.ok(answers.length >= 2 && answers.every((r) => r.status === 202), `worker answers: ${answers.map((r) => r.status)}`);
    assert.equal(answers[0].headers['access-control-allow-origin'], site.url);

    assert.equal(result.failed, 0, `flush: ${JSON.stringify(result)}`);
    assert.equal(await shop.page.evaluate(() => window.kl.pending()), 0);
    assert.deepEqual(await shop.page.evaluate(() => window.reports), [], 'onError got nothing');
    assert.deepEqual(shop.pageErrors, []);
    assertNoSecretsIn(shop.responses);
  } finally {
    await shop.close();
  }
});

test('a 429 with Retry-After 2 through the worker: the page reads Retry-After (exposed) and resends in time', async () => {
  const shop = await openShop();
  try {
    // Only the event request: anything else the page sends must not consume the fault.
    edge.emu.addFault({ path: '/client/event', status: 429, retryAfter: 2 });
    const t0 = Date.now();
    const first = await shop.page.evaluate(() => {
      window.kl.track('Edge Retry Test', { n: 1 });
      return window.kl.flush();
    });
    await waitFor(() => acceptedMetrics().includes('Edge Retry Test'), { timeout: 15_000, what: 'the event accepted after the 429' });
    const ms = Date.now() - t0;
    const seen = edge.emu.requests({ pathPrefix: '/client/event' });
    assert.equal(seen.requests[0].status, 429, `first attempt was throttled (flush: ${JSON.stringify(first)})`);
    // Without an exposed Retry-After the queue waits at least 10 s; with it, about 2 s.
    assert.ok(ms < 8_000, `accepted ${ms} ms after the 429 (Retry-After visible to the page)`);
    await shop.settled();
    const throttled = shop.responses.find((r) => r.status === 429);
    assert.ok(throttled, 'the page received the 429');
    assert.equal(throttled.headers['retry-after'], '2');
    assert.equal(await shop.page.evaluate(() => window.kl.pending()), 0);
    assertNoSecretsIn(shop.responses);
  } finally {
    await shop.close();
  }
});

test('unsigned /api/events from the page (allowed metric): 202 through a real CORS preflight; other metric: a readable 403', async () => {
  const shop = await openShop();
  try {
    const good = sample('apiEvent'); // "Placed Order", in BROWSER_SERVER_METRICS
    const bad = sample('apiEvent');
    bad.data.attributes.metric.data.attributes.name = 'Viewed Product';
    const out = await shop.page.evaluate(async ({ base, good, bad, revision, type }) => {
      const send = async (b) => {
        try {
          const r = await fetch(`${base}/api/events`, { method: 'POST', headers: { 'content-type': type, revision }, body: JSON.stringify(b) });
          return { status: r.status, text: await r.text() };
        } catch (e) {
          return { error: String(e) };
        }
      };
      return { good: await send(good), bad: await send(bad) };
    }, { base: edge.worker.url, good, bad, revision: REVISION, type: JSON_API });
    await shop.settled();
    assert.equal(out.good.status, 202, JSON.stringify(out.good));
    assert.equal(out.bad.status, 403, `the 403 is readable by the page (CORS on errors): ${JSON.stringify(out.bad)}`);
    const seen = edge.emu.requests({ path: '/api/events' });
    assert.equal(seen.count, 1, 'only the allowed metric went upstream');
    assert.equal(seen.requests[0].accepted, true);
    assert.equal(seen.requests[0].authKeyHash, sha256(edge.secrets.KLAVIYO_PRIVATE_KEY));
    assertNoSecretsIn(shop.responses);
  } finally {
    await shop.close();
  }
});

test('a sandboxed iframe (allow-scripts: Origin null, no storage) through a worker with ALLOW_NULL_ORIGIN: every call reaches Klaviyo once, and nothing asks /id', async () => {
  const worker = await edge.start({ ALLOW_NULL_ORIGIN: 'true' }, [], 'sandboxed');
  const shop = await openShop({ worker, sandboxed: true });
  try {
    const email = 'pixel.frame@klaviyo-demo.com';
    const result = await shop.frame.evaluate(async (email) => {
      await window.kl.identify({ email });
      window.kl.track('Checkout Started In A Frame', { total: 12.5 });
      window.kl.viewedProduct({ ProductID: '1111', ProductName: 'Winnie the Pooh', Price: 9.99 });
      return window.kl.flush();
    }, email);
    await waitFor(() => acceptedMetrics().length >= 2, { what: "the frame's events accepted by the emulator" });
    assert.equal(result.failed, 0, `flush: ${JSON.stringify(result)}`);
    assert.equal(await shop.frame.evaluate(() => window.kl.pending()), 0);
    // Each call once: the identify, then both events (in one bulk call or two).
    assert.deepEqual(acceptedMetrics().sort(), ['Checkout Started In A Frame', 'Viewed Product']);
    const profiles = edge.emu.requests({ path: '/client/profiles', accepted: true }).requests;
    assert.deepEqual(profiles.map((r) => r.body.data.attributes.email), [email]);
    const all = edge.emu.requests({ pathPrefix: '/client/' });
    assert.equal(all.rejected, 0);
    for (const r of all.requests) assert.deepEqual([r.headers.cookie, r.headers['user-agent']], [undefined, shopperUserAgent(browser)]);

    await shop.settled();
    const answers = shop.responses.filter((r) => r.url.startsWith(`${worker.url}/client/`));
    assert.ok(answers.length >= 2 && answers.every((r) => r.status === 202), `worker answers: ${answers.map((r) => r.status)}`);
    for (const { headers } of answers) {
      assert.deepEqual([headers['access-control-allow-origin'], headers['access-control-allow-credentials'], headers['x-klaviyo-edge']], ['null', undefined, undefined]);
    }
    // Told of no cookie it could use, the frame never asks /id (which refuses it: a CORS
    // error in the shop's console on every load, as it was while the worker said it kept one).
    assert.deepEqual(shop.requests.filter((r) => r.url.startsWith(`${worker.url}/id`)), []);
    assert.deepEqual(shop.consoleErrors, []);
    // No localStorage in the frame: said once, the calls sent from memory.
    assert.deepEqual((await shop.frame.evaluate(() => window.reports)).map((r) => r.kind), ['storage']);
    assert.deepEqual(shop.pageErrors, []);
    assertNoSecretsIn(shop.responses);
  } finally {
    await shop.close();
  }
});
