// End-to-end: the demo storefront (www/) in headless Chromium, talking to the Klaviyo
// emulator, which validates every request against Klaviyo's OpenAPI spec.
//   npm run build && node --test tests/e2e/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, waitFor as poll } from '../support/browser.mjs';
import { startDemo, isBuilt } from '../../www/serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(ROOT, 'test-results');
const COMPANY_ID = 'AbC123';
const REVISION = '2026-07-15';
const EMAIL = 'pooh@hundredacre.example';
const TEST_TIMEOUT = 30_000;

let demo;
let browser;

before(async () => {
  if (!isBuilt()) throw new Error('dist/web/index.js is missing: run `npm run build` before the e2e tests');
  demo = await startDemo({ port: 0, emulatorPort: 0 });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await demo?.close();
});

// ---------- helpers ----------

/** Polls with a deadline (5 s by default here). */
function waitFor(fn, { timeout = 5000, ...rest } = {}) {
  return poll(fn, { timeout, ...rest });
}

/** The emulator's admin API, over HTTP like any outside observer. */
async function admin(method, p, body) {
  const res = await fetch(`${demo.emulator.url}/__admin/${p}`, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.status, 200, `admin ${method} ${p}`);
  return res.json();
}
const seen = (query = '') => admin('GET', `requests${query}`);

/** The events inside one recorded request, from /client/events or /client/event-bulk-create. */
function eventsIn(record) {
  const a = record.body?.data?.attributes;
  const one = (ev, profile) => ({
    metric: ev?.metric?.data?.attributes?.name,
    profile: profile?.data?.attributes ?? {},
    uniqueId: ev?.unique_id,
    properties: ev?.properties ?? {},
    value: ev?.value,
    accepted: record.accepted,
    path: record.path,
  });
  if (record.path === '/client/events') return [one(a, a?.profile)];
  if (record.path === '/client/event-bulk-create') return (a?.events?.data ?? []).map((e) => one(e.attributes, a.profile));
  return [];
}
const allEvents = (summary) => summary.requests.flatMap(eventsIn);

/** Waits until the emulator has accepted an event named `metric`; returns it. */
function acceptedEvent(metric, extra = () => true) {
  return waitFor(async () => allEvents(await seen()).find((e) => e.accepted && e.metric === metric && extra(e)),
    { what: `an accepted "${metric}" event` });
}

/** Waits until the emulator has accepted a request to `p`; returns its record. */
function acceptedRequest(p, extra = () => true) {
  return waitFor(async () => (await seen(`?path=${encodeURIComponent(p)}&accepted=true`)).requests.find(extra),
    { what: `an accepted POST ${p}` });
}

/** Every request the tracker made: public client API, right headers, never a private key. */
function assertClientHeaders(summary) {
  for (const r of summary.requests) {
    const where = `${r.method} ${r.path} #${r.seq}`;
    assert.ok(r.path.startsWith('/client/'), `${where}: only the public /client/ API is used`);
    assert.equal(r.headers.authorization, undefined, `${where}: no authorization header`);
    assert.equal(r.hasAuth, false, `${where}: no authorization header`);
    assert.equal(r.headers.revision, REVISION, `${where}: revision header`);
    assert.equal(r.query.company_id, COMPANY_ID, `${where}: company_id query parameter`);
    assert.match(r.headers['content-type'] ?? '', /^application\/vnd\.api\+json/, `${where}: content-type`);
  }
  for (const p of summary.preflights) {
    assert.doesNotMatch(p.requestHeaders ?? '', /authorization/i, `preflight ${p.path}: no authorization header asked for`);
  }
}

/**
 * A fresh browser context (empty localStorage) on the demo page, after resetting the
 * emulator. Call `done()` at the end: it checks page errors and every request's headers.
 */
async function openStore(t, { screenshotName } = {}) {
  await admin('POST', 'reset');
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.stack || e.message));
  page.on('crash', () => pageErrors.push('page crashed'));
  await page.goto(demo.url);
  await page.waitForSelector('body[data-ready]');
  const ready = await page.evaluate(() => document.body.dataset.ready);
  if (ready !== '1') assert.fail(`page did not start: ${await page.textContent('[data-testid="init-error"]')}`);
  const done = async () => {
    if (screenshotName) {
      await mkdir(RESULTS, { recursive: true });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(RESULTS, screenshotName), fullPage: true });
    }
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    assertClientHeaders(await seen());
  };
  return { page, done };
}

const byTestId = (id) => `[data-testid="${id}"]`;
const flushInPage = (page) => page.evaluate(() => window.kl.flush());
/** unique_ids the page's calls returned, from its log. */
const loggedUniqueIds = (page) =>
  page.$$eval('[data-testid="log-entry"][data-kind="event"]', (els) => els.map((e) => e.dataset.uniqueId));

/** Raw GET with the path exactly as written (fetch would normalise `..` away). */
function rawGet(p) {
  const { hostname, port } = new URL(demo.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: p, method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], text }));
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------- the static server ----------

test('serve.mjs serves the page, /config.json and the package with the right MIME types', { timeout: TEST_TIMEOUT }, async () => {
  const cases = [
    ['/', /^text\/html/],
    ['/www/app.js', /^text\/javascript/],
    ['/www/style.css', /^text\/css/],
    ['/www/serve.mjs', /^text\/javascript/],
    ['/dist/web/index.js', /^text\/javascript/],
    ['/dist/web/klaviyo.js', /^text\/javascript/],
    ['/dist/web/klaviyo_wasm_bg.wasm', /^application\/wasm$/],
    ['/config.json', /^application\/json/],
  ];
  for (const [p, type] of cases) {
    const r = await rawGet(p);
    assert.equal(r.status, 200, p);
    assert.match(r.type, type, `${p} content-type`);
  }
  const config = JSON.parse((await rawGet('/config.json')).text);
  assert.deepEqual(config, { companyId: COMPANY_ID, apiBase: demo.emulator.url });
  assert.match((await rawGet('/')).text, /<script type="module" src="\/www\/app.js">/);
});

test('serve.mjs refuses path traversal and anything outside www/ and dist/', { timeout: TEST_TIMEOUT }, async () => {
  const refused = [
    '/package.json',
    '/src/lib.rs',
    '/tests/emulator/server.mjs',
    '/www/../package.json',
    '/dist/../package.json',
    '/www/..%2fpackage.json',
    '/www/%2e%2e/package.json',
    '/dist/web/%2E%2E/%2E%2E/Cargo.toml',
    '/www/..%5c..%5cpackage.json',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/www/%00app.js',
    '/www/%zz',
  ];
  for (const p of refused) {
    const r = await rawGet(p);
    assert.ok([400, 403, 404].includes(r.status), `${p} answered ${r.status}`);
    assert.doesNotMatch(r.text, /"name": "klaviyo-wasm"|\[package\]|root:/, `${p} leaked a file`);
  }
});

test('node www/serve.mjs prints both URLs and serves until SIGTERM', { timeout: TEST_TIMEOUT }, async () => {
  const child = spawn(process.execPath, [path.join(ROOT, 'www', 'serve.mjs')], {
    env: { ...process.env, PORT: '0', EMULATOR_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  try {
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    const urls = await waitFor(() => {
      const store = /^Demo storefront: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(out);
      const emu = /^Klaviyo emulator: (http:\/\/127\.0\.0\.1:\d+)\/__admin\/requests$/m.exec(out);
      return store && emu && { store: store[1], emu: emu[1] };
    }, { what: 'the two start-up lines', timeout: 10_000 });
    const page = await fetch(urls.store);
    assert.equal(page.status, 200);
    const config = await (await fetch(new URL('/config.json', urls.store))).json();
    assert.deepEqual(config, { companyId: COMPANY_ID, apiBase: urls.emu });
    const requests = await (await fetch(`${urls.emu}/__admin/requests`)).json();
    assert.equal(requests.count, 0);
  } finally {
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, 'exits cleanly on SIGTERM');
  }
});

// ---------- the page ----------

test('page load sends "Viewed Product", accepted by the emulator', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  const viewed = await acceptedEvent('Viewed Product');
  assert.equal(viewed.properties.ProductName, 'Winnie-the-Pooh');
  assert.equal(viewed.properties.ProductID, 'wtp-1926');
  assert.equal(viewed.value, 12.99);
  assert.ok(viewed.profile.anonymous_id, 'anonymous visitor carries an anonymous_id');
  const [id] = await loggedUniqueIds(page);
  assert.equal(viewed.uniqueId, id, 'the unique_id the page got back is the one Klaviyo received');
  await waitFor(async () => (await page.textContent(byTestId('pending-count'))) === '0', { what: 'pending 0 in the page' });
  await done();
});

test('click-through: identify, view, add to cart and checkout reach the emulator as valid requests', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t, { screenshotName: 'demo.png' });
  await acceptedEvent('Viewed Product');

  await page.fill(byTestId('identify-email'), EMAIL);
  await page.fill(byTestId('identify-first-name'), 'Winnie');
  await page.click(byTestId('identify'));
  const profile = await acceptedRequest('/client/profiles', (r) => r.body?.data?.attributes?.email === EMAIL);
  assert.equal(profile.body.data.attributes.first_name, 'Winnie');

  await page.click(byTestId('view-product'));
  await page.fill(byTestId('quantity'), '2');
  await page.click(byTestId('add-to-cart'));
  const added = await acceptedEvent('Added to Cart');
  assert.equal(added.profile.email, EMAIL, 'Added to Cart carries the identified email');
  assert.equal(added.properties.Quantity, 2);
  assert.equal(added.value, 25.98, 'value = CartTotal');
  assert.equal(await page.textContent(byTestId('cart-count')), '2');
  await acceptedEvent('Viewed Product', (e) => e.profile.email === EMAIL);

  await page.click(byTestId('start-checkout'));
  const checkout = await acceptedEvent('Started Checkout');
  assert.equal(checkout.profile.email, EMAIL);
  assert.equal(checkout.value, 25.98);

  const flushed = await flushInPage(page);
  assert.equal(flushed.pending, 0);
  assert.equal(flushed.failed, 0);

  // Exactly the events the page tracked arrived, each once, all accepted.
  const ids = await loggedUniqueIds(page);
  assert.equal(ids.length, 4, 'page load view + view + add to cart + checkout');
  const summary = await seen();
  assert.equal(summary.rejected, 0, JSON.stringify(summary.requests.filter((r) => !r.accepted).map((r) => r.errors)));
  assert.equal(summary.acceptedUniqueIds, ids.length);
  assert.equal(summary.duplicateUniqueIds, 0);
  assert.deepEqual(Object.keys(summary.uniqueIdCounts).sort(), [...ids].sort());
  const metrics = allEvents(summary).map((e) => e.metric).sort();
  assert.deepEqual(metrics, ['Added to Cart', 'Started Checkout', 'Viewed Product', 'Viewed Product']);
  assert.equal(await page.$$eval('[data-testid="log-entry"][data-ok="false"]', (els) => els.length), 0, 'no failed call in the log');
  assert.equal(await page.textContent(byTestId('error-count')), '0', 'onError never fired');
  await done();
});

test('subscribe and back-in-stock buttons send accepted requests', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  await page.fill(byTestId('identify-email'), EMAIL);
  await page.click(byTestId('identify'));
  await acceptedRequest('/client/profiles');

  await page.fill(byTestId('subscribe-list-id'), 'WnPooh');
  await page.click(byTestId('subscribe'));
  const sub = await acceptedRequest('/client/subscriptions');
  assert.equal(sub.body.data.relationships.list.data.id, 'WnPooh');
  const subProfile = sub.body.data.attributes.profile.data.attributes;
  assert.equal(subProfile.email, EMAIL, 'subscribe defaults to the identified email');
  assert.equal(subProfile.subscriptions.email.marketing.consent, 'SUBSCRIBED');

  const other = 'piglet@hundredacre.example';
  await page.fill(byTestId('bis-email'), other);
  await page.click(byTestId('back-in-stock'));
  const bis = await acceptedRequest('/client/back-in-stock-subscriptions');
  assert.equal(bis.body.data.relationships.variant.data.id, '$custom:::$default:::WTP-1926-DLX');
  assert.equal(bis.body.data.attributes.profile.data.attributes.email, other);
  assert.deepEqual(bis.body.data.attributes.channels, ['EMAIL']);

  const summary = await seen();
  assert.equal(summary.rejected, 0);
  assert.equal(await page.textContent(byTestId('error-count')), '0');
  await done();
});

test('bad input: every button shows an error naming its field and nothing is sent', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t, { screenshotName: 'demo-bad-input.png' });
  await acceptedEvent('Viewed Product');
  await flushInPage(page);
  const before = await seen();

  const cases = [
    ['bad-email', /^identify: email\b/],
    ['bad-phone', /^identify: phone_number\b/],
    ['bad-metric', /^track: metric\b/],
    ['bad-price', /^addedToCart: Price\b/],
    ['bad-value', /^track: value\b(?!Currency)/],
    ['bad-currency', /^track: valueCurrency\b/],
  ];
  for (const [id, expected] of cases) {
    await page.click(byTestId(id));
    const out = byTestId(`${id}-error`);
    const text = await waitFor(async () => (await page.textContent(out)).trim(), { what: `${id} result` });
    assert.match(text, expected, `${id}: ${text}`);
    assert.equal(await page.getAttribute(out, 'data-thrown'), 'true', `${id} threw`);
    assert.equal(await page.textContent(byTestId('bad-last-error')), text);
  }
  assert.equal(await page.evaluate(() => window.kl.pending()), 0, 'nothing queued');
  const flushed = await flushInPage(page);
  assert.deepEqual({ ...flushed }, { sent: 0, pending: 0, failed: 0 });
  const afterwards = await seen();
  assert.equal(afterwards.count, before.count, 'the emulator received nothing new');
  assert.equal(afterwards.preflights.length, before.preflights.length, 'not even a preflight');
  assert.equal(await page.textContent(byTestId('error-count')), '0');
  await done();
});

test('every request has revision 2026-07-15 and company_id=AbC123 and no authorization header', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  await page.fill(byTestId('identify-email'), EMAIL);
  await page.click(byTestId('identify'));
  await page.click(byTestId('add-to-cart'));
  await page.click(byTestId('start-checkout'));
  await page.click(byTestId('subscribe'));
  await page.click(byTestId('back-in-stock'));
  await page.click(byTestId('flush'));
  await waitFor(async () => (await page.getAttribute(byTestId('flush-result'), 'data-pending')) === '0', { what: 'flush result' });
  const summary = await waitFor(async () => {
    const s = await seen();
    const paths = new Set(s.requests.filter((r) => r.accepted).map((r) => r.path));
    const all = ['/client/profiles', '/client/subscriptions', '/client/back-in-stock-subscriptions'].every((p) => paths.has(p));
    return all && (paths.has('/client/events') || paths.has('/client/event-bulk-create')) && s.pending === 0 && s;
  }, { what: 'every kind of request' });
  assert.equal(summary.rejected, 0);
  assertClientHeaders(summary);
  await done();
});

test('Flush now shows the flush result and the pending count', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  await acceptedEvent('Viewed Product');
  // Hold the next event at the emulator so it is still in flight when Flush is clicked.
  await admin('POST', 'faults', { path: '/client/events', hold: true, count: 1 });
  await page.click(byTestId('add-to-cart'));
  await waitFor(async () => (await seen()).pending === 1, { what: 'the held request' });
  await waitFor(async () => (await page.textContent(byTestId('pending-count'))) === '1', { what: 'pending 1 in the page' });
  await page.click(byTestId('flush'));
  await admin('POST', 'release');
  await waitFor(async () => (await page.getAttribute(byTestId('flush-result'), 'data-sent')) !== null, { what: 'flush result' });
  assert.deepEqual(
    await page.$eval(byTestId('flush-result'), (el) => ({ ...el.dataset })),
    { testid: 'flush-result', sent: '1', pending: '0', failed: '0' },
  );
  await waitFor(async () => (await page.textContent(byTestId('pending-count'))) === '0', { what: 'pending 0 in the page' });
  await done();
});

test('onError reports land in the errors area', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  await acceptedEvent('Viewed Product');
  await admin('POST', 'faults', { path: '/client/events', status: 400, count: 1 });
  await page.click(byTestId('view-product'));
  await flushInPage(page);
  const entry = byTestId('error-entry');
  await page.waitForSelector(entry);
  assert.equal(await page.getAttribute(entry, 'data-kind'), 'rejected');
  assert.equal(await page.getAttribute(entry, 'data-status'), '400');
  assert.equal(await page.textContent(byTestId('error-count')), '1');
  assert.equal(await page.evaluate(() => window.kl.pending()), 0, 'a rejected request leaves the queue');
  await done();
});
