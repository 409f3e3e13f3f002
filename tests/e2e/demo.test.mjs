// End-to-end: the demo storefront (www/) in headless Chromium, talking to the Klaviyo
// emulator, which validates every request against Klaviyo's OpenAPI spec. Every call
// of the API is one click in the shop; each is clicked here and checked at the emulator.
//   npm run build && node --test --test-concurrency=1 tests/e2e/demo.test.mjs
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
// Fictional people.
const EMAIL = 'ada@fernwood.example';
const OTHER_EMAIL = 'tobias@quillmere.example';
const PHONE = '+15005550006';
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
    valueCurrency: ev?.value_currency,
    accepted: record.accepted,
    at: record.at,
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

const byTestId = (id) => `[data-testid="${id}"]`;
const text = async (page, id) => (await page.textContent(byTestId(id))).trim();

/** Waits for the page to start; fails with its own error banner if it did not. */
async function started(page) {
  await page.waitForSelector('body[data-ready]');
  if ((await page.evaluate(() => document.body.dataset.ready)) !== '1') {
    assert.fail(`page did not start: ${await page.textContent(byTestId('init-error'))}`);
  }
}

/**
 * A fresh browser context (empty localStorage) on the demo page, after resetting the
 * emulator. `consent`: the banner's button to click first ("accept", "decline"), or
 * none. `done()` checks page errors and every request's headers. `requests` lists the
 * tracker's requests as the browser made them (not the emulator's admin calls).
 */
async function openStore(t, { consent = 'accept', screenshotName } = {}) {
  await admin('POST', 'reset');
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  const requests = [];
  page.on('pageerror', (e) => pageErrors.push(e.stack || e.message));
  page.on('crash', () => pageErrors.push('page crashed'));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin === demo.emulator.url && !u.pathname.startsWith('/__admin/')) requests.push(`${r.method()} ${u.pathname}`);
  });
  await page.goto(demo.url);
  await started(page);
  assert.equal(await page.isVisible(byTestId('consent-banner')), true, 'a first visit asks for consent');
  assert.equal(await page.getAttribute(byTestId('consent-state'), 'data-state'), 'pending');
  if (consent) {
    await page.click(byTestId(`consent-${consent}`));
    assert.equal(await page.isVisible(byTestId('consent-banner')), false, 'the banner goes once answered');
  }
  const done = async () => {
    if (screenshotName) {
      await mkdir(RESULTS, { recursive: true });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(RESULTS, screenshotName), fullPage: true });
    }
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    assertClientHeaders(await seen());
  };
  return { page, requests, done };
}

/** Consent tests need the library's consent API (`setConsent`); skips without it. */
async function needsConsentApi(t, page) {
  const has = await page.evaluate(() => typeof window.kl.setConsent === 'function');
  if (!has) t.skip('this build of js/index.js has no setConsent: the consent API is not there yet');
  return has;
}

/** Opens a product from the product list (one click; sends Viewed Product). */
/** The cart page, once the hash route has shown and rendered it. */
async function openCart(page) {
  await page.click(byTestId('nav-cart'));
  await page.waitForSelector('body[data-view="cart"] #view-cart:not([hidden])');
}

async function openProduct(page, id) {
  await page.click(byTestId('nav-products'));
  await page.click(`[data-testid="product-card"][data-id="${id}"]`);
  await page.waitForSelector(`${byTestId('product')}:not([hidden])`);
}

/** What the demo sends as the visitor moves about: not counted with the clicks. */
const NAVIGATION = ['Active on Site', 'Viewed Collection'];
const clicked = (metrics) => metrics.filter((m) => !NAVIGATION.includes(m));
/** How many of the logged events are navigation (page views, the product list). */
const navigationLogged = (page) =>
  page.$$eval('[data-testid="log-entry"][data-kind="event"]', (els) => els.filter((e) => ['activeOnSite', 'viewedCollection'].includes(e.dataset.call)).length);

/** unique_ids the page's calls returned, from its log. */
const loggedUniqueIds = (page) =>
  page.$$eval('[data-testid="log-entry"][data-kind="event"]', (els) => els.map((e) => e.dataset.uniqueId));
/** The page's call log entries for `call`, oldest first. */
const logged = (page, call) =>
  page.$$eval(`[data-testid="log-entry"][data-call="${call}"]`, (els) => els.map((e) => ({ ...e.dataset })).reverse());
/** Waits for the n-th successful log entry of `call`. */
const loggedOk = (page, call, n = 1) =>
  waitFor(async () => (await logged(page, call)).filter((e) => e.ok === 'true').length >= n, { what: `${call} logged ×${n}` });
/** The library's own localStorage keys. */
const libraryKeys = (page) => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('klaviyo:')));

/** Raw GET with the path exactly as written (fetch would normalise `..` away). */
function rawGet(p) {
  const { hostname, port } = new URL(demo.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: p, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], text: body }));
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

// ---------- the shop ----------

test('opening a product sends "Viewed Product", accepted by the emulator', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t, { screenshotName: 'demo-list.png' });
  assert.equal(await page.$$eval(byTestId('product-card'), (els) => els.length), 6, 'the product list');
  await openProduct(page, 'bw-heather');
  const viewed = await acceptedEvent('Viewed Product');
  assert.equal(viewed.properties.ProductName, 'Heather Honey');
  assert.equal(viewed.properties.ProductID, 'bw-heather');
  assert.equal(viewed.value, 12.75, 'value = Price');
  assert.ok(viewed.profile.anonymous_id, 'an anonymous visitor carries an anonymous_id');
  const [id] = await loggedUniqueIds(page);
  assert.equal(viewed.uniqueId, id, 'the unique_id the page got back is the one Klaviyo received');
  await waitFor(async () => (await text(page, 'pending-count')) === '0', { what: 'pending 0 in the page' });
  await done();
});

test('every call is one click: each reaches the emulator once, valid against the spec', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t, { screenshotName: 'demo.png' });

  // identify: the sign-in form
  await page.fill(byTestId('identify-email'), EMAIL);
  await page.fill(byTestId('identify-first-name'), 'Ada');
  await page.click(byTestId('identify'));
  const profile = await acceptedRequest('/client/profiles', (r) => r.body?.data?.attributes?.email === EMAIL);
  assert.equal(profile.body.data.attributes.first_name, 'Ada');
  assert.equal(await text(page, 'signed-in-as'), EMAIL);

  // viewedProduct, track (wishlist), addedToCart
  await openProduct(page, 'bw-heather');
  const viewed = await acceptedEvent('Viewed Product');
  assert.equal(viewed.profile.email, EMAIL, 'events carry the identified email');
  await page.click(byTestId('wishlist'));
  const wished = await acceptedEvent('Added to Wishlist');
  assert.deepEqual([wished.value, wished.valueCurrency, wished.properties.ProductID], [12.75, 'USD', 'bw-heather']);
  await page.fill(byTestId('quantity'), '2');
  await page.click(byTestId('add-to-cart'));
  const added = await acceptedEvent('Added to Cart');
  // The item under the names Klaviyo's abandoned-cart templates read.
  assert.equal(added.properties.AddedItemQuantity, 2);
  assert.equal(added.properties.AddedItemProductName, 'Heather Honey');
  assert.equal(added.properties.Quantity, undefined);
  assert.equal(added.value, 25.5, 'value = CartTotal');
  await openProduct(page, 'bw-wildflower');
  await page.click(byTestId('add-to-cart'));
  const second = await acceptedEvent('Added to Cart', (e) => e.properties.AddedItemProductID === 'bw-wildflower');
  assert.equal(second.value, 35, 'CartTotal of both lines');
  assert.deepEqual(second.properties.ItemNames, ['Heather Honey', 'Wildflower Honey']);
  // The whole cart, each line with its picture and link, and the way back to it.
  assert.deepEqual(second.properties.Items.map((i) => [i.ProductID, i.Quantity, !!i.ImageURL, !!i.ProductURL]),
    [['bw-heather', 2, true, true], ['bw-wildflower', 1, true, true]]);
  assert.match(second.properties.CheckoutURL, /#\/cart$/);
  assert.equal(await text(page, 'cart-count'), '3');

  // startedCheckout: the cart page's Checkout
  await openCart(page);
  assert.equal(await page.$$eval(byTestId('cart-line'), (els) => els.length), 2);
  assert.equal(await text(page, 'cart-total'), '$35.00');
  await page.click(byTestId('checkout'));
  const checkout = await acceptedEvent('Started Checkout');
  assert.equal(checkout.value, 35);
  assert.equal(checkout.profile.email, EMAIL);
  assert.deepEqual(checkout.properties.Items.map((i) => [i.ProductID, i.Quantity, i.RowTotal]),
    [['bw-heather', 2, 25.5], ['bw-wildflower', 1, 9.5]]);

  // subscribe: the newsletter, email and SMS
  await page.fill(byTestId('subscribe-phone'), PHONE);
  await page.check(byTestId('subscribe-channel-sms'));
  await page.click(byTestId('subscribe'));
  const sub = await acceptedRequest('/client/subscriptions');
  assert.equal(sub.body.data.relationships.list.data.id, 'BwNews');
  const subProfile = sub.body.data.attributes.profile.data.attributes;
  assert.equal(subProfile.email, EMAIL, 'subscribe defaults to the identified email');
  assert.equal(subProfile.phone_number, PHONE);
  assert.equal(subProfile.subscriptions.email.marketing.consent, 'SUBSCRIBED');
  assert.equal(subProfile.subscriptions.sms.marketing.consent, 'SUBSCRIBED');

  // backInStock: the out-of-stock product's "Notify me"
  await openProduct(page, 'bw-chestnut');
  assert.equal(await page.isVisible(byTestId('add-to-cart')), false, 'no Add to cart when out of stock');
  await page.fill(byTestId('bis-email'), OTHER_EMAIL);
  await page.click(byTestId('back-in-stock'));
  const bis = await acceptedRequest('/client/back-in-stock-subscriptions');
  assert.equal(bis.body.data.relationships.variant.data.id, '$custom:::$default:::BW-CHEST-340');
  assert.equal(bis.body.data.attributes.profile.data.attributes.email, OTHER_EMAIL);
  assert.deepEqual(bis.body.data.attributes.channels, ['EMAIL']);

  // flush: the Tracker panel's button
  await page.click(byTestId('flush'));
  await waitFor(async () => (await page.getAttribute(byTestId('flush-result'), 'data-pending')) === '0', { what: 'flush result' });
  assert.equal(await page.getAttribute(byTestId('flush-result'), 'data-failed'), '0');

  // reset: signing out starts a new anonymous profile
  await page.click(byTestId('reset'));
  assert.equal(await page.isVisible(byTestId('identify-form')), true);
  await openProduct(page, 'bw-dipper');
  const anonymous = await acceptedEvent('Viewed Product', (e) => e.properties.ProductID === 'bw-dipper');
  assert.equal(anonymous.profile.email, undefined, 'no email after sign-out');
  assert.ok(anonymous.profile.anonymous_id);
  assert.notEqual(anonymous.profile.anonymous_id, viewed.profile.anonymous_id, 'a new anonymous profile');

  // Every event the page made arrived once, all accepted; nothing else was sent.
  const ids = await loggedUniqueIds(page);
  assert.equal(ids.length - await navigationLogged(page), 8, '4 views, wishlist, 2 adds to cart, checkout, besides page views and the product list');
  const summary = await waitFor(async () => {
    const s = await seen();
    return s.pending === 0 && s.acceptedUniqueIds === ids.length && s;
  }, { what: 'every event accepted' });
  assert.equal(summary.rejected, 0, JSON.stringify(summary.requests.filter((r) => !r.accepted).map((r) => r.errors)));
  assert.equal(summary.duplicateUniqueIds, 0);
  assert.deepEqual(Object.keys(summary.uniqueIdCounts).sort(), [...ids].sort());
  assert.deepEqual(clicked(allEvents(summary).map((e) => e.metric)).sort(), [
    'Added to Cart', 'Added to Cart', 'Added to Wishlist', 'Started Checkout',
    'Viewed Product', 'Viewed Product', 'Viewed Product', 'Viewed Product',
  ]);
  assert.equal(allEvents(summary).filter((e) => e.metric === 'Active on Site').length,
    (await logged(page, 'activeOnSite')).length, 'an Active on Site for every route the shop showed');
  const byPath = (p) => summary.requests.filter((r) => r.path === p).length;
  assert.deepEqual([byPath('/client/profiles'), byPath('/client/subscriptions'), byPath('/client/back-in-stock-subscriptions')], [1, 1, 1]);
  assert.equal(await page.$$eval('[data-testid="log-entry"][data-ok="false"]', (els) => els.length), 0, 'no failed call in the log');
  assert.equal(await text(page, 'error-count'), '0', 'onError never fired');

  // The panel shows what the emulator received, as it did.
  await waitFor(async () => (await page.$$eval(byTestId('sent-entry'), (els) => els.filter((e) => e.dataset.accepted === 'true').length)) === summary.count,
    { what: 'the page listing every request the emulator accepted' });
  await done();
});

test('the cart page: lines, total, remove; an empty cart cannot check out', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  await openProduct(page, 'bw-candles');
  await page.fill(byTestId('quantity'), '3');
  await page.click(byTestId('add-to-cart'));
  await openCart(page);
  assert.equal(await text(page, 'cart-total'), '$55.20');
  await page.reload();
  await started(page);
  assert.equal(await text(page, 'cart-count'), '3', 'the cart survives a reload (the shop keeps it)');
  assert.equal(await page.isVisible(byTestId('consent-banner')), false, 'the consent choice too');
  await page.click(byTestId('cart-remove'));
  assert.equal(await page.isVisible(byTestId('cart-empty')), true);
  assert.equal(await page.isDisabled(byTestId('checkout')), true);
  assert.equal(await text(page, 'cart-count'), '0');
  await acceptedEvent('Added to Cart', (e) => e.value === 55.2);
  await done();
});

// ---------- consent ----------

test('consent pending: calls are held and nothing reaches the emulator until Accept', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, requests, done } = await openStore(t, { consent: null });
  if (!(await needsConsentApi(t, page))) return;

  await openProduct(page, 'bw-heather');
  await page.click(byTestId('add-to-cart'));
  await page.fill(byTestId('identify-email'), EMAIL);
  await page.click(byTestId('identify'));
  await loggedOk(page, 'identify');
  // Held: the two clicks, the sign-in, and the page views and product list on the way.
  const held = String((await loggedUniqueIds(page)).length + 1);
  assert.ok(Number(held) >= 3);
  await waitFor(async () => (await text(page, 'pending-count')) === held, { what: `${held} calls held in the page` });
  // The shop's own keys are written; the library writes nothing before consent.
  assert.deepEqual(await libraryKeys(page), []);
  assert.equal(await page.evaluate(() => localStorage.getItem('bramblewick:consent')), null);
  assert.deepEqual(requests, [], 'the browser sent nothing to Klaviyo');
  const before = await seen();
  assert.equal(before.count, 0, 'the emulator received nothing');
  assert.equal(before.preflights.length, 0, 'not even a preflight');

  const acceptedAt = Date.now();
  await page.click(byTestId('consent-accept'));
  assert.equal(await page.getAttribute(byTestId('consent-state'), 'data-state'), 'granted');
  await acceptedEvent('Viewed Product');
  await acceptedEvent('Added to Cart');
  await acceptedRequest('/client/profiles', (r) => r.body?.data?.attributes?.email === EMAIL);
  const ids = await loggedUniqueIds(page);
  const summary = await waitFor(async () => {
    const s = await seen();
    return s.pending === 0 && s.acceptedUniqueIds === ids.length && s;
  }, { what: 'the held calls delivered' });
  assert.ok(summary.requests.every((r) => r.at >= acceptedAt), 'nothing arrived before Accept');
  assert.equal(summary.rejected, 0);
  assert.equal(summary.duplicateUniqueIds, 0);
  assert.deepEqual(Object.keys(summary.uniqueIdCounts).sort(), [...ids].sort(), 'each held call once');

  await page.reload();
  await started(page);
  assert.equal(await page.isVisible(byTestId('consent-banner')), false, 'the choice is remembered');
  assert.equal(await page.getAttribute(byTestId('consent-state'), 'data-state'), 'granted');
  await done();
});

test('Decline sends nothing, is remembered, and a later Accept sends only later calls', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, requests, done } = await openStore(t, { consent: 'decline', screenshotName: 'demo-declined.png' });
  if (!(await needsConsentApi(t, page))) return;
  assert.equal(await page.getAttribute(byTestId('consent-state'), 'data-state'), 'denied');

  await page.fill(byTestId('identify-email'), EMAIL);
  await page.click(byTestId('identify'));
  await openProduct(page, 'bw-heather');
  await page.click(byTestId('wishlist'));
  await page.click(byTestId('add-to-cart'));
  await page.click(byTestId('subscribe'));
  await page.click(byTestId('flush'));
  // The library says once that it drops calls; flush has nothing to send.
  await waitFor(() => page.$(`${byTestId('error-entry')}[data-kind="consent"]`), { what: 'onError kind consent' });
  await waitFor(async () => (await page.getAttribute(byTestId('flush-result'), 'data-sent')) === '0', { what: 'flush result' });
  assert.equal(await page.$$eval(byTestId('error-entry'), (els) => els.length), 1, 'reported once');
  assert.deepEqual((await libraryKeys(page)).map((k) => k.split(':')[2]), ['denied'], 'nothing stored by the library but the time of the denial');
  assert.equal(await page.evaluate(() => localStorage.getItem('bramblewick:consent')), '"denied"');

  await page.reload();
  await started(page);
  assert.equal(await page.isVisible(byTestId('consent-banner')), false, 'the choice is remembered');
  assert.equal(await page.getAttribute(byTestId('consent-state'), 'data-state'), 'denied');
  await page.click(byTestId('wishlist')); // still on the product after the reload (and its view)
  await waitFor(() => page.$(`${byTestId('error-entry')}[data-kind="consent"]`), { what: 'onError kind consent after the reload' });
  assert.deepEqual(requests, [], 'the browser sent nothing to Klaviyo');
  assert.equal((await seen()).count, 0, 'the emulator received nothing');

  // Privacy settings: change the answer. Only calls made after Accept are sent; the shop
  // identifies its signed-in visitor again (the denial erased what the tracker knew).
  await page.click(byTestId('privacy-settings'));
  assert.match(await text(page, 'consent-current'), /declined/);
  await page.click(byTestId('consent-accept'));
  await acceptedRequest('/client/profiles', (r) => r.body?.data?.attributes?.email === EMAIL);
  await openProduct(page, 'bw-comb');
  const viewed = await acceptedEvent('Viewed Product');
  assert.equal(viewed.properties.ProductID, 'bw-comb');
  assert.equal(viewed.profile.email, EMAIL);
  const summary = await waitFor(async () => { const s = await seen(); return s.pending === 0 && s; }, { what: 'no request in flight' });
  assert.deepEqual(allEvents(summary).filter((e) => !NAVIGATION.includes(e.metric)).map((e) => e.properties.ProductID), ['bw-comb'], 'none of the declined calls');
  assert.deepEqual([...new Set(summary.requests.map((r) => r.path))].sort(), ['/client/event-bulk-create', '/client/profiles'],
    'the profile, then the view with the page views and product list on the way');
  assert.equal(summary.rejected, 0);
  await done();
});

test('Privacy settings: withdrawing consent stops sending at once', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  if (!(await needsConsentApi(t, page))) return;
  await openProduct(page, 'bw-heather');
  await acceptedEvent('Viewed Product');

  await page.click(byTestId('privacy-settings'));
  assert.match(await text(page, 'consent-current'), /accepted/);
  await page.click(byTestId('consent-decline'));
  await page.click(byTestId('add-to-cart'));
  await waitFor(() => page.$(`${byTestId('error-entry')}[data-kind="consent"]`), { what: 'onError kind consent' });
  assert.deepEqual((await libraryKeys(page)).map((k) => k.split(':')[2]), ['denied'], 'the library erased what it stored (the time of the denial kept)');

  await page.click(byTestId('privacy-settings'));
  await page.click(byTestId('consent-accept'));
  await page.click(byTestId('wishlist'));
  await acceptedEvent('Added to Wishlist');
  const summary = await waitFor(async () => { const s = await seen(); return s.pending === 0 && s; }, { what: 'no request in flight' });
  assert.deepEqual(clicked(allEvents(summary).map((e) => e.metric)), ['Viewed Product', 'Added to Wishlist'], 'no Added to Cart');
  assert.equal(summary.rejected, 0);
  await done();
});

test('the storefront\'s own signals: Viewed Collection, a search, Active on Site on every route, the known-visitor badge, a Klaviyo email click', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  const list = await acceptedEvent('Viewed Collection');
  assert.equal(list.properties.CollectionID, 'all');
  await acceptedEvent('Active on Site', (e) => e.properties.page === 'list');
  await page.fill(byTestId('search-term'), 'honey');
  await page.click(byTestId('search'));
  const searched = await acceptedEvent('Submitted Search');
  assert.deepEqual([searched.properties.SearchTerm, searched.properties.ResultCount], ['honey', 5]);
  assert.equal(await page.$$eval(byTestId('product-card'), (els) => els.length), 5, 'the list shows what was found');
  await openCart(page);
  await acceptedEvent('Active on Site', (e) => e.properties.page === 'cart');
  assert.equal(await text(page, 'known-visitor'), 'anonymous');
  // The link leaves a __kla_id like Klaviyo's onsite script's after an email click: the
  // reloaded page's visitor is known, and its events carry the exchange id.
  await page.click(byTestId('from-email'));
  await page.waitForLoadState('load');
  await started(page);
  await waitFor(async () => (await text(page, 'known-visitor')) === 'known visitor', { what: 'the known-visitor badge' });
  await openProduct(page, 'bw-comb');
  const viewed = await acceptedEvent('Viewed Product', (e) => e.properties.ProductID === 'bw-comb');
  assert.equal(viewed.profile._kx, 'demo-exchange-id.BwDemo');
  await done();
});

// ---------- the Tracker panel ----------

test('bad input: every button shows an error naming its field and nothing is sent', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t, { screenshotName: 'demo-bad-input.png' });
  await openProduct(page, 'bw-heather');
  await acceptedEvent('Viewed Product');
  await page.evaluate(() => window.kl.flush());
  const before = await seen();

  await page.click(`${byTestId('bad-input')} summary`);
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
    const message = await waitFor(async () => (await page.textContent(out)).trim(), { what: `${id} result` });
    assert.match(message, expected, `${id}: ${message}`);
    assert.equal(await page.getAttribute(out, 'data-thrown'), 'true', `${id} threw`);
    assert.equal(await text(page, 'bad-last-error'), message);
  }
  assert.equal(await page.evaluate(() => window.kl.pending()), 0, 'nothing queued');
  const flushed = await page.evaluate(() => window.kl.flush());
  assert.deepEqual({ ...flushed }, { sent: 0, pending: 0, failed: 0 });
  const afterwards = await seen();
  assert.equal(afterwards.count, before.count, 'the emulator received nothing new');
  assert.equal(afterwards.preflights.length, before.preflights.length, 'not even a preflight');
  assert.equal(await text(page, 'error-count'), '0');
  await done();
});

test('Flush now shows the flush result and the pending count', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  await openProduct(page, 'bw-heather');
  await acceptedEvent('Viewed Product');
  // Hold the next event at the emulator so it is still in flight when Flush is clicked.
  await admin('POST', 'faults', { path: '/client/events', hold: true, count: 1 });
  await page.click(byTestId('add-to-cart'));
  await waitFor(async () => (await seen()).pending === 1, { what: 'the held request' });
  await waitFor(async () => (await text(page, 'pending-count')) === '1', { what: 'pending 1 in the page' });
  await waitFor(() => page.$(`${byTestId('sent-entry')}[data-path="/client/events"][data-status=""]`), { what: 'the held request in the panel' });
  await page.click(byTestId('flush'));
  await admin('POST', 'release');
  await waitFor(async () => (await page.getAttribute(byTestId('flush-result'), 'data-sent')) !== null, { what: 'flush result' });
  assert.deepEqual(
    await page.$eval(byTestId('flush-result'), (el) => ({ ...el.dataset })),
    { testid: 'flush-result', sent: '1', pending: '0', failed: '0' },
  );
  await waitFor(async () => (await text(page, 'pending-count')) === '0', { what: 'pending 0 in the page' });
  await done();
});

test('onError reports land in the errors area', { timeout: TEST_TIMEOUT }, async (t) => {
  const { page, done } = await openStore(t);
  await openProduct(page, 'bw-heather');
  await acceptedEvent('Viewed Product');
  await admin('POST', 'faults', { path: '/client/events', status: 400, count: 1 });
  await page.click(byTestId('wishlist'));
  await page.evaluate(() => window.kl.flush());
  const entry = byTestId('error-entry');
  await page.waitForSelector(entry);
  assert.equal(await page.getAttribute(entry, 'data-kind'), 'rejected');
  assert.equal(await page.getAttribute(entry, 'data-status'), '400');
  assert.equal(await text(page, 'error-count'), '1');
  assert.equal(await page.evaluate(() => window.kl.pending()), 0, 'a rejected request leaves the queue');
  await waitFor(() => page.$(`${byTestId('sent-entry')}[data-status="400"]`), { what: 'the refused request in the panel' });
  await done();
});
