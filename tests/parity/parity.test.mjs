// Parity with Klaviyo's own onsite script (klaviyo.js), end to end: dist/web in Debian's
// Chromium against the Klaviyo emulator, which checks every body against the OpenAPI
// subset. One visitor through klaviyo.js's cookie (`__kla_id`), its opt-out
// (`__kla_off=true`), Active on Site on page views and single-page route changes (and
// none beside klaviyo.js), and a page whose Content-Security-Policy forbids WebAssembly.
// Polls with deadlines, never fixed sleeps.
// Standalone: `bash .ci/build.sh && node --test --test-concurrency=1 tests/parity/`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../emulator/server.mjs';
import { launchChromium, waitFor } from '../support/browser.mjs';
import { serveRepo } from '../support/static.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TIMEOUT = 60_000;
/** A policy from before WebAssembly: scripts from the shop only, no 'wasm-unsafe-eval'. */
const OLD_POLICY = "script-src 'self'";
let emu, site, browser;

before(async () => {
  if (!existsSync(path.join(ROOT, 'dist/web/index.js'))) throw new Error('dist/web is missing: run `bash .ci/build.sh` first');
  emu = await startEmulator({ port: 0 });
  site = await serveRepo(['/tests/parity/', '/tests/support/', '/dist/web/'], {
    headersFor: (url) => (url.searchParams.get('csp') === '1' ? { 'Content-Security-Policy': OLD_POLICY } : {}),
  });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close().catch(() => {});
  await site?.close();
  await emu?.close();
});

let shopNo = 0;
const nextCompanyId = () => `PaR${String(++shopNo).padStart(3, '0')}`;

/** A fresh emulator and browser context; Klaviyo's onsite script is a stand-in there. */
async function shop(t) {
  emu.reset();
  const context = await browser.newContext();
  const errors = [];
  context.on('page', (p) => p.on('pageerror', (e) => errors.push(e.message)));
  await context.route('https://static.klaviyo.com/**', (route) =>
    route.fulfill({ contentType: 'text/javascript', body: 'window.klaviyoOnsiteStandIn = true;' }));
  t.after(async () => {
    await context.close().catch(() => {});
    assert.deepEqual(errors, [], 'no uncaught exception in any page');
  });
  return context;
}

async function open(context, params, { wasm = '1', waitUntil = 'load' } = {}) {
  const u = new URL('/tests/parity/page.html', site.url);
  u.searchParams.set('apiBase', emu.url);
  for (const [k, v] of Object.entries(params)) {
    for (const one of [].concat(v)) u.searchParams.append(k, String(one));
  }
  const page = await context.newPage();
  await page.goto(u.href, { waitUntil });
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
  await page.waitForSelector('body[data-wasm]', { state: 'attached', timeout: 15_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.wasm), wasm,
    JSON.stringify(await page.evaluate(() => window.initError)));
  return page;
}

/** Every event the emulator accepted for `companyId`: metric, properties, profile. */
function events(companyId) {
  const out = [];
  for (const r of emu.requests({ companyId, accepted: true }).requests) {
    const d = r.body?.data;
    if (r.path === '/client/events') {
      const a = d.attributes;
      out.push({ metric: a.metric.data.attributes.name, properties: a.properties, profile: a.profile.data.attributes, time: a.time });
    } else if (r.path === '/client/event-bulk-create') {
      const profile = d.attributes.profile.data.attributes;
      for (const e of d.attributes.events.data) {
        out.push({ metric: e.attributes.metric.data.attributes.name, properties: e.attributes.properties, profile, time: e.attributes.time });
      }
    }
  }
  return out;
}

const metric = (name) => (e) => e.metric === name;

/** `__kla_id` as Klaviyo's onsite script writes it: base64 of its JSON. */
const klaId = (json) => `__kla_id=${Buffer.from(JSON.stringify(json)).toString('base64')}; path=/`;

test('a visitor klaviyo.js knows is one profile: events carry its $exchange_id as _kx, and isIdentified() says so', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const page = await open(context, {
    companyId,
    activeOnSite: 'manual',
    cookie: klaId({ cid: 'ZjQ5', $exchange_id: 'KX-from-klaviyo-js', $referrer: { ts: 1 } }),
  });
  assert.equal(await page.evaluate(() => window.kl.isIdentified()), true);
  await page.evaluate(() => { window.kl.viewedProduct({ ProductID: 'P1', ProductName: 'Tee', Price: 19 }); return window.kl.flush(); });
  const viewed = await waitFor(() => events(companyId).find(metric('Viewed Product')), { what: 'the Viewed Product' });
  assert.equal(viewed.profile._kx, 'KX-from-klaviyo-js');
  assert.ok(viewed.profile.anonymous_id, 'with our own anonymous id beside it');
  // A cookie that cannot be read changes nothing and throws nothing.
  const other = nextCompanyId();
  const plain = await open(context, { companyId: other, activeOnSite: 'manual', cookie: '__kla_id=%%%not-base64; path=/' });
  assert.equal(await plain.evaluate(() => window.kl.isIdentified()), false);
});

test('__kla_off=true: nothing stored, nothing sent, onError kind consent once, and setConsent cannot override it', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId, cookie: '__kla_off=true; path=/', early: 2 });
  await page.evaluate(() => {
    window.kl.setConsent('granted');
    window.kl.track('After The Grant', {});
    window.kl.viewedCollection({ CollectionID: 'c1' });
    return window.kl.flush();
  });
  const seen = await page.evaluate(() => ({
    consent: window.kl.consent,
    sent: window.sent,
    stored: Object.keys(localStorage).filter((k) => k.startsWith('klaviyo:')),
    // (The marker that tells the other tabs, and the time of the denial that stays.)
    writes: window.writes.filter(([op, k]) => op === 'set' && !k.endsWith(':consent') && !k.endsWith(':denied')),
    reports: window.reports,
  }));
  assert.equal(seen.consent, 'denied');
  assert.deepEqual(seen.sent, [], 'nothing sent');
  assert.deepEqual(seen.stored, [`klaviyo:${companyId}:denied`], 'nothing stored but the time of the denial');
  assert.deepEqual(seen.writes, [], 'not even for a moment');
  assert.equal(seen.reports.filter((r) => r.kind === 'consent').length, 1, JSON.stringify(seen.reports));
  assert.equal(emu.requests({ companyId }).count, 0);
  // Removing the cookie makes the next page track again.
  await page.evaluate(() => { document.cookie = '__kla_off=; path=/; max-age=0'; });
  const next = await open(context, { companyId, activeOnSite: 'manual' });
  await next.evaluate(() => { window.kl.track('Tracked Again', {}); return window.kl.flush(); });
  await waitFor(() => events(companyId).find(metric('Tracked Again')), { what: 'the next page\'s event' });
});

test('__kla_off=true set after ready, before the first send: the page says denied as the core does', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId, activeOnSite: 'manual', cookieAtReady: '__kla_off=true; path=/' });
  const seen = await page.evaluate(async () => {
    window.kl.track('After The Opt-Out', {});
    await window.kl.flush();
    return {
      consent: window.kl.consent,
      stored: Object.keys(localStorage).filter((k) => k.startsWith('klaviyo:') && !k.endsWith(':consent') && !k.endsWith(':denied')),
      reports: window.reports.map((r) => r.kind),
    };
  });
  assert.equal(seen.consent, 'denied', 'kl.consent follows the core');
  assert.deepEqual(seen.stored, []);
  assert.deepEqual(seen.reports, ['consent']);
  assert.equal(emu.requests({ companyId }).count, 0);
});

test('one Active on Site per view across the shop\'s trackers: two trackers and a route change before the load send the landing view once; a denied tracker\'s view is made again by the next; another copy of the module shares it', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const answer = await holdingTheLoad(context);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId, holdLoad: 1 }, { waitUntil: 'domcontentloaded' });
  await page.evaluate(async () => {
    window.k2 = await window.Klaviyo.init(window.options);
    history.pushState({}, '', '/tests/parity/second');
  });
  answer();
  await loaded(page);
  await page.evaluate(async () => { window.k2.track('Marker'); await window.k2.flush(); });
  await waitFor(() => events(companyId).some(metric('Marker')), { what: 'the marker' });
  const paths = (id) => events(id).filter(metric('Active on Site')).map((e) => new URL(e.properties.URL).pathname);
  // Before, each tracker sent the landing view: [/second, /page.html, /page.html].
  assert.deepEqual(paths(companyId).sort(), ['/tests/parity/page.html', '/tests/parity/second']);

  /** The views of a new shop whose page (`params`) ran `act`, which ends with a Marker
   * event; with `after`, `act` runs once the page's first view has arrived. */
  const viewsAfter = async (params, act, after = false) => {
    const id = nextCompanyId();
    const tab = await open(context, { companyId: id, ...params });
    if (after) await waitFor(() => paths(id).length === 1, { what: 'the first view' });
    await tab.evaluate(act);
    await waitFor(() => events(id).some(metric('Marker')), { what: 'the marker' });
    return paths(id);
  };
  // A tracker created denied sends nothing; the one created again after the grant does.
  assert.deepEqual(await viewsAfter({ consent: 'denied' }, async () => {
    window.kl.close();
    const again = await window.Klaviyo.init({ ...window.options, consent: 'granted' });
    again.track('Marker');
    await again.flush();
  }), ['/tests/parity/page.html'], 'the view, once granted');
  // A pending tracker made the view, and a granted one relied on it; the pending one is
  // closed before the grant, dropping it: the granted one makes the page's view again.
  assert.deepEqual(await viewsAfter({ consent: 'pending' }, async () => {
    const granted = await window.Klaviyo.init({ ...window.options, consent: 'granted' });
    window.kl.close();
    granted.track('Marker');
    await granted.flush();
  }), ['/tests/parity/page.html'], 'not lost');
  // A tracker that skipped the view leaves the record of the one that made it: the next
  // tracker skips it too.
  assert.deepEqual(await viewsAfter({}, async () => {
    const second = await window.Klaviyo.init({ ...window.options, consent: 'pending' });
    second.close();
    const third = await window.Klaviyo.init(window.options);
    third.track('Marker');
    await third.flush();
  }, true), ['/tests/parity/page.html'], 'once');
  // Two trackers created pending (a consent banner), then both granted: one view.
  assert.deepEqual(await viewsAfter({ consent: 'pending' }, async () => {
    const other = await window.Klaviyo.init({ ...window.options, consent: 'pending' });
    window.kl.setConsent('granted');
    other.setConsent('granted');
    other.track('Marker');
    await other.flush();
    await window.kl.flush();
  }), ['/tests/parity/page.html'], 'once, after the grant');

  // The inline build beside the npm one, for the same shop: one view between them.
  assert.deepEqual(await viewsAfter({}, async () => {
    const { Klaviyo } = await import('/dist/web/inline.js');
    const inline = await Klaviyo.init(window.options);
    inline.track('Marker');
    await inline.flush();
  }, true), ['/tests/parity/page.html']);
});

test('a call made right before close() in the same task is kept: the next tracker delivers it, and a route change\'s view made then too', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId });
  await waitFor(() => events(companyId).some(metric('Active on Site')), { what: 'the landing view' });
  await page.evaluate(async () => {
    // A component that tracks, then unmounts on a route change and mounts again.
    window.kl.track('Before close');
    history.pushState({}, '', '/tests/parity/b');
    window.kl.close();
    const again = await window.Klaviyo.init(window.options);
    await again.flush();
  });
  // Before, the end-of-task write found the tracker closed: both were lost.
  await waitFor(() => events(companyId).some(metric('Before close')), { what: 'the call made before close()' });
  await waitFor(() => events(companyId).some((e) => e.metric === 'Active on Site' && e.properties.URL.endsWith('/b')), { what: 'the route\'s view' });
});

test('a .wasm that failed to load is asked for once, and loaded again by the next tracker created (another wasmUrl, or the same once the network is back)', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const asked = [];
  context.on('request', (r) => { if (r.url().endsWith('/missing.wasm')) asked.push(r.url()); });
  const page = await open(context, { companyId, activeOnSite: 'manual', wasmUrl: '/tests/parity/missing.wasm' }, { wasm: 'error' });
  const failure = await page.evaluate(() => window.initError.message);
  assert.match(failure, /missing\.wasm \(HTTP 404\)/, 'ready names the URL and the status');
  assert.equal(asked.length, 1, 'a .wasm the server does not have is asked for once (one error in the console)');
  const after = await page.evaluate(async () => {
    const again = await window.Klaviyo.init({ ...window.options, wasmUrl: new URL('/dist/web/klaviyo_wasm_bg.wasm', location.href) });
    again.track('After a failed load');
    await again.flush();
    return window.initError.message;
  });
  assert.match(after, /missing\.wasm/, 'the first tracker heard why');
  await waitFor(() => events(companyId).some(metric('After a failed load')), { what: 'the second tracker\'s event' });
});

test('a second tracker of the shop in the page, or one created again after close(), sends no second Active on Site for the same view; a route change makes one', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId });
  const views = () => events(companyId).filter(metric('Active on Site'));
  const arrived = (name) => waitFor(() => events(companyId).some(metric(name)), { what: name });
  await waitFor(() => views().length === 1, { what: 'the landing view' });
  await page.evaluate(async () => {
    window.k2 = await window.Klaviyo.init(window.options); // another component's tracker
    window.k2.track('Second');
    window.kl.close(); // a component unmounted, then mounted again
    window.k3 = await window.Klaviyo.init(window.options);
    window.k3.track('Third');
    await window.k3.flush();
  });
  await arrived('Second');
  await arrived('Third');
  assert.equal(views().length, 1, 'one view of the landing page');
  await page.evaluate(async () => {
    history.pushState({}, '', '/tests/parity/cart');
    window.k3.track('Fourth');
    await window.k3.flush();
  });
  await arrived('Fourth');
  assert.deepEqual(views().map((e) => new URL(e.properties.URL).pathname), ['/tests/parity/page.html', '/tests/parity/cart']);
});

test('a single-page app with 3 route changes sends 4 Active on Site, each URL once', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId });
  const base = await page.evaluate(() => location.origin);
  await page.evaluate(() => {
    history.pushState({}, '', '/tests/parity/products');
    history.pushState({}, '', '/tests/parity/products'); // the same URL again
    history.replaceState({}, '', '/tests/parity/products?sort=price'); // the same path
    history.pushState({}, '', '/tests/parity/products#reviews'); // an anchor on the page
    history.pushState({}, '', '/tests/parity/cart');
    history.replaceState({}, '', '/tests/parity/checkout'); // another path
    return window.kl.flush();
  });
  const active = await waitFor(() => {
    const all = events(companyId).filter(metric('Active on Site'));
    return all.length >= 4 && all;
  }, { what: '4 Active on Site' });
  const urls = active.map((e) => new URL(e.properties.URL).pathname);
  assert.ok(active.every((e) => e.properties.URL.startsWith(base) && !e.properties.URL.includes('#')), 'whole URLs, without the anchor');
  // `page` too, where Klaviyo's onsite script puts it (its segments and flows read it).
  assert.ok(active.every((e) => e.properties.page === e.properties.URL), JSON.stringify(active.map((e) => e.properties)));
  assert.deepEqual(urls.sort(), [
    '/tests/parity/cart', '/tests/parity/checkout', '/tests/parity/page.html', '/tests/parity/products',
  ].sort(), JSON.stringify(urls));
  // Back to the cart: a route change (popstate) to another URL than the last.
  await page.evaluate(() => new Promise((resolve) => {
    addEventListener('popstate', () => resolve(), { once: true });
    history.back();
  }));
  await page.evaluate(() => window.kl.flush());
  await waitFor(() => events(companyId).filter(metric('Active on Site')).length === 5, { what: 'the popstate page view' });
});

test('beside Klaviyo\'s onsite script, a shopper only our identify named gets our Active on Site; one its cookie names gets none of ours', { timeout: TIMEOUT }, async (t) => {
  // klaviyo.js sends Active on Site only for a browser it has identified: a signed-in
  // shopper the shop named through us, and never through it, had none at all.
  const context = await shop(t);
  const ours = nextCompanyId();
  const page = await open(context, { companyId: ours, onsite: 1, email: 'ann@example.com' });
  await page.evaluate(() => window.kl.flush());
  const view = await waitFor(() => events(ours).find(metric('Active on Site')), { what: 'our Active on Site' });
  assert.equal(view.profile.email, 'ann@example.com');
  // The same shopper, known to klaviyo.js by its cookie: its own goes, ours does not.
  const theirs = nextCompanyId();
  const known = await open(context, {
    companyId: theirs, onsite: 1, email: 'ann@example.com',
    cookie: klaId({ cid: 'ZjQ5', $exchange_id: 'KX-from-klaviyo-js' }),
  });
  await loaded(known); // the page view is decided in the task after the load
  await known.evaluate(() => { window.kl.track('Marker', {}); return window.kl.flush(); });
  await waitFor(() => events(theirs).find(metric('Marker')), { what: 'the marker event' });
  assert.deepEqual(events(theirs).filter(metric('Active on Site')), []);
});

test('beside Klaviyo\'s onsite script, no Active on Site of ours for a visitor nobody named (klaviyo.js sends none either)', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId, onsite: 1 });
  await page.evaluate(() => {
    history.pushState({}, '', '/tests/parity/elsewhere');
    window.kl.track('Marker', {});
    return window.kl.flush();
  });
  await waitFor(() => events(companyId).find(metric('Marker')), { what: 'the marker event' });
  assert.deepEqual(events(companyId).filter(metric('Active on Site')), []);
  // With activeOnSite: "manual" the shop sends them itself.
  const manual = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual' });
  assert.equal(await manual.evaluate(() => typeof window.kl.activeOnSite({ page: 'Home' })), 'string');
});

/** The page's load (with `holdLoad`) waits for an image that answers when the returned
 * function is called, so a test acts while our tracker runs before the load. */
async function holdingTheLoad(context) {
  let answer;
  const held = new Promise((resolve) => { answer = resolve; });
  await context.route('**/tests/parity/held.png', async (route) => {
    await held;
    await route.fulfill({ status: 404, body: '' });
  });
  return answer;
}

/** Until the page has loaded and the task after the load's has run (our first view's). */
async function loaded(page) {
  await page.evaluate(() => (document.readyState === 'complete' ? 0 : new Promise((r) => addEventListener('load', r, { once: true }))));
  await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));
}

test('Klaviyo\'s onsite script added on the window\'s load, after ours started: still no Active on Site of ours', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const answer = await holdingTheLoad(context);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId, onsite: 'load', holdLoad: 1 }, { waitUntil: 'domcontentloaded' });
  assert.equal(await page.evaluate(() => document.readyState), 'interactive', 'our tracker ran before the load');
  answer();
  await loaded(page);
  await page.evaluate(() => { window.kl.track('Marker After Load', {}); return window.kl.flush(); });
  await waitFor(() => events(companyId).find(metric('Marker After Load')), { what: 'the marker event' });
  // Before, ours looked for Klaviyo's tag only as it started, and both sent one.
  assert.deepEqual(events(companyId).filter(metric('Active on Site')), []);
  // Without Klaviyo's tag, the same page sends its own once loaded.
  const alone = nextCompanyId();
  await open(context, { companyId: alone });
  await waitFor(() => events(alone).find(metric('Active on Site')), { what: 'our Active on Site without Klaviyo\'s tag' });
});

test('beside Klaviyo\'s onsite script, a shopper it learns of on this page (its cookie written after our first send, or an email click\'s _kx in the URL) gets its Active on Site, not ours', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const answer = await holdingTheLoad(context);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId, onsite: 1, email: 'ann@example.com', holdLoad: 1 }, { waitUntil: 'domcontentloaded' });
  // Our identify has gone (our first send: the core read Klaviyo's cookies then), and
  // klaviyo.js identifies the shopper too, writing its cookie, before the load.
  await waitFor(() => emu.requests({ companyId, pathPrefix: '/client/profiles', accepted: true }).count >= 1, { what: 'our identify sent' });
  await page.evaluate((c) => { document.cookie = c; }, klaId({ cid: 'ZjQ5', $exchange_id: 'KX-late' }));
  answer();
  await loaded(page);
  await page.evaluate(() => { window.kl.track('Marker', {}); return window.kl.flush(); });
  await waitFor(() => events(companyId).find(metric('Marker')), { what: 'the marker event' });
  assert.deepEqual(events(companyId).filter(metric('Active on Site')), [], 'the cookie read again when the view is decided');
  // An email click: klaviyo.js identifies the browser by the URL's _kx.
  const fresh = await shop(t);
  const clicked = nextCompanyId();
  const landing = await open(fresh, { companyId: clicked, onsite: 1, email: 'ann@example.com', _kx: 'KX-click' });
  await loaded(landing);
  await landing.evaluate(() => { window.kl.track('Marker', {}); return window.kl.flush(); });
  const marker = await waitFor(() => events(clicked).find(metric('Marker')), { what: 'the marker event' });
  // Our identify names her: the click's _kx goes with calls that name nobody only.
  assert.deepEqual([marker.profile.email, marker.profile._kx], ['ann@example.com', undefined]);
  assert.deepEqual(events(clicked).filter(metric('Active on Site')), []);
});

test('a route change before the load: the landing page keeps its Active on Site, at the time it was shown, and the route gets its own', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const answer = await holdingTheLoad(context);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId, holdLoad: 1 }, { waitUntil: 'domcontentloaded' });
  const shown = await page.evaluate(() => { const at = Date.now(); history.pushState({}, '', '/tests/parity/second'); return at; });
  answer();
  await loaded(page);
  await page.evaluate(() => window.kl.flush());
  // Before, the view made at the load read the address then (the route's), and the
  // core dropped it as a second view of that URL: the landing page had none.
  const views = await waitFor(() => {
    const all = events(companyId).filter(metric('Active on Site'));
    return all.length >= 2 && all;
  }, { what: 'two Active on Site' });
  const byPath = Object.fromEntries(views.map((e) => [new URL(e.properties.URL).pathname, e]));
  assert.deepEqual(Object.keys(byPath).sort(), ['/tests/parity/page.html', '/tests/parity/second']);
  assert.ok(Date.parse(byPath['/tests/parity/page.html'].time) <= shown, 'the landing view keeps the time it was shown, not the load\'s');
  // Straight back to the landing page: a view of its own. Before, the landing view made
  // at the load was taken as the page the visitor was on, and this one as its repeat.
  await page.evaluate(() => new Promise((resolve) => {
    addEventListener('popstate', () => resolve(), { once: true });
    history.back();
  }));
  await page.evaluate(() => window.kl.flush());
  const back = await waitFor(() => {
    const all = events(companyId).filter(metric('Active on Site'));
    return all.length >= 3 && all;
  }, { what: 'the view of the return to the landing page' });
  assert.deepEqual(back.map((e) => new URL(e.properties.URL).pathname).filter((p) => p === '/tests/parity/page.html').length, 2);
});

test('a hash change or a pushState of the same URL before the load: one Active on Site for the landing page', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  for (const change of ['hash', 'push']) {
    const answer = await holdingTheLoad(context); // the newest route handles the image
    const companyId = nextCompanyId();
    const page = await open(context, { companyId, holdLoad: 1 }, { waitUntil: 'domcontentloaded' });
    await page.evaluate((c) => new Promise((resolve) => {
      if (c === 'push') { history.pushState({}, '', location.href); resolve(); return; }
      addEventListener('popstate', () => resolve(), { once: true });
      location.hash = 'reviews'; // an anchor on the page
    }), change);
    answer();
    await loaded(page);
    await page.evaluate(() => { window.kl.track('Marker After Load', {}); return window.kl.flush(); });
    await waitFor(() => events(companyId).find(metric('Marker After Load')), { what: 'the marker event' });
    assert.equal(events(companyId).filter(metric('Active on Site')).length, 1, change);
  }
});

test('a tracker closed before the load (and before its wasm) makes no Active on Site: none sent, none left on disk for a later page', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const answer = await holdingTheLoad(context);
  let wasm;
  const wasmHeld = new Promise((resolve) => { wasm = resolve; });
  await context.route('**/klaviyo_wasm_bg.wasm', async (route) => { await wasmHeld; await route.continue(); });
  const companyId = nextCompanyId();
  const u = new URL('/tests/parity/page.html', site.url);
  for (const [k, v] of Object.entries({ apiBase: emu.url, companyId, holdLoad: 1 })) u.searchParams.set(k, v);
  const page = await context.newPage();
  await page.goto(u.href, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
  await page.evaluate(() => window.kl.close());
  answer();
  await loaded(page);
  wasm();
  await page.waitForSelector('body[data-wasm]', { state: 'attached', timeout: 15_000 });
  await loaded(page);
  // Before, the closed tracker's load listener still made the landing view: kept in the
  // loading window's record on disk, which a later page adopts once stale (60 s).
  const kept = await page.evaluate(() => Object.entries(localStorage).filter(([k]) => k.includes(':pre:')));
  assert.deepEqual(kept, []);
  assert.deepEqual(await page.evaluate(() => window.sent.length), 0, 'nothing sent');
});

test('a Content-Security-Policy without wasm-unsafe-eval: nothing thrown into the page, onError kind load names the directive, and a later page delivers the calls once', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  const page = await open(context, { companyId, csp: 1, early: 3 }, { wasm: 'error' });
  const failed = await page.evaluate(() => ({ init: window.initError, reports: window.reports }));
  const loads = failed.reports.filter((r) => r.kind === 'load');
  assert.equal(loads.length, 1, JSON.stringify(failed.reports));
  assert.match(loads[0].message, /'wasm-unsafe-eval'.*script-src/);
  assert.deepEqual(failed.init, { kind: 'load', message: loads[0].message }, '`ready` rejects with the same');
  // Its calls wait in storage. The next page of the shop (no such policy) opens before
  // they are stale: it adopts them when they turn stale, not only at its start.
  const staleIn = 1500;
  const kept = await page.evaluate((ms) => {
    const key = Object.keys(localStorage).find((k) => k.includes(':pre:'));
    const v = JSON.parse(localStorage.getItem(key));
    v[0] = Date.now() - 60_000 + ms; // written long enough ago to be stale in `ms`
    localStorage.setItem(key, JSON.stringify(v));
    return key;
  }, staleIn);
  assert.ok(kept, 'the calls were stored');
  await page.close();
  const later = await open(context, { companyId, activeOnSite: 'manual' });
  assert.equal(await later.evaluate((k) => localStorage.getItem(k) !== null, kept), true, 'not adopted at start');
  await waitFor(() => events(companyId).filter(metric('Early')).length === 3, { timeout: 15_000, what: 'the 3 calls of the failed page' });
  const counts = emu.requests({ companyId }).uniqueIdCounts;
  assert.ok(Object.values(counts).every((n) => n === 1), `once each: ${JSON.stringify(counts)}`);
  assert.equal(await later.evaluate((k) => localStorage.getItem(k), kept), null, 'and removed');
});

test('our identify is handed to klaviyo.js (window.klaviyo.identify) with consent, so its cookie names the shopper too; never with klaviyoCookie: false or __kla_off', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const handedOff = async (params) => {
    const page = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual', klaviyoObject: '1', ...params });
    // Made after ready; the hand-off runs as the call is accepted, before this await ends.
    return page.evaluate(async () => {
      await window.kl.identify({ phone_number: '+15005550006', first_name: 'Ann' });
      await Promise.resolve();
      return window.handedOff;
    });
  };
  // The email given right after create (before ready), then a phone number after.
  assert.deepEqual(
    await handedOff({ email: 'ann@example.com' }),
    [{ email: 'ann@example.com' }, { phone_number: '+15005550006' }],
    'identifiers only: klaviyo.js gets no other attribute',
  );
  // Not where the shop turned Klaviyo's cookies off, nor under klaviyo.js's own opt-out.
  assert.deepEqual(await handedOff({ email: 'ann@example.com', klaviyoCookie: 'false' }), []);
  assert.deepEqual(await handedOff({ email: 'ann@example.com', cookie: '__kla_off=true; path=/' }), []);
  await context.clearCookies();
  // An identify made under a denial, the grant right after it: ours drops it, and so
  // does the hand-off (before, klaviyo.js got it once the grant came).
  const denied = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual', klaviyoObject: '1' });
  assert.deepEqual(await denied.evaluate(async () => {
    window.kl.setConsent('denied');
    const call = window.kl.identify({ email: 'bob@example.com' });
    window.kl.setConsent('granted');
    await call.catch(() => {});
    await Promise.resolve();
    return window.handedOff;
  }), []);
  // A klaviyo.identify that rejects throws nothing into the page (shop() checks).
  assert.equal((await handedOff({ email: 'ann@example.com', klaviyoObject: 'reject' })).length, 2);
  // A blank email beside the name (an empty form field) is not given: ours leaves it out,
  // and klaviyo.js gets only the phone number (before, `{ email: "  " }` went to it).
  const blank = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual', klaviyoObject: '1' });
  assert.deepEqual(await blank.evaluate(async () => {
    await window.kl.identify({ email: '  ', phone_number: '+15005550006', first_name: 'Ann' });
    await window.kl.identify({ email: '', first_name: 'Ann' });
    await Promise.resolve();
    return window.handedOff;
  }), [{ phone_number: '+15005550006' }]);
});

test('a refused identify, subscribe or backInStock left without a catch never reaches the page as an unhandled rejection', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const page = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual', klaviyoObject: '1' });
  const unhandled = await page.evaluate(async () => {
    window.kl.identify(null);
    window.kl.subscribe({});
    window.kl.backInStock({});
    // Ours, left unhandled on purpose after theirs: once the page heard it, it heard theirs.
    Promise.reject(new Error('canary'));
    const deadline = Date.now() + 5000;
    while (!window.unhandled.includes('canary') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return window.unhandled;
  });
  assert.deepEqual(unhandled, ['canary']);
});

test('an identify made while consent is pending is handed to klaviyo.js at the grant, in order; never after a denial or a reset in between', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  // Pending at create: the email right after create (before ready), a phone number after.
  const atGrant = async (between) => {
    const page = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual', klaviyoObject: '1', consent: 'pending', email: 'ann@example.com' });
    return page.evaluate(async (between) => {
      await window.kl.identify({ phone_number: '+15005550006', first_name: 'Ann' });
      const before = window.handedOff.slice();
      if (between) window.kl[between](...(between === 'setConsent' ? ['denied'] : []));
      window.kl.setConsent('granted');
      // One made after the grant: handed over at once, after those held.
      await window.kl.identify({ email: 'cy@example.com' });
      await Promise.resolve();
      return { before, after: window.handedOff };
    }, between);
  };
  const plain = await atGrant();
  assert.deepEqual(plain.before, [], 'nothing while pending');
  assert.deepEqual(plain.after, [{ email: 'ann@example.com' }, { phone_number: '+15005550006' }, { email: 'cy@example.com' }]);
  // A denial in between: the core dropped both; a reset: they named the visitor before.
  assert.deepEqual((await atGrant('setConsent')).after, [{ email: 'cy@example.com' }]);
  assert.deepEqual((await atGrant('reset')).after, [{ email: 'cy@example.com' }]);
  // The email as it was at the call, though the shop reuses the object (our core sent
  // that one); and a window.klaviyo that throws when read throws nothing into the page.
  const page = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual', klaviyoObject: '1', consent: 'pending' });
  assert.deepEqual(await page.evaluate(async () => {
    const form = { email: 'ann@example.com' };
    await window.kl.identify(form);
    form.email = 'bob@example.com';
    window.kl.setConsent('granted');
    return window.handedOff;
  }), [{ email: 'ann@example.com' }]);
  // A klaviyo.identify that throws once: the next hand-off still goes.
  const once = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual', klaviyoObject: 'throwOnce', consent: 'pending' });
  assert.deepEqual(await once.evaluate(async () => {
    await window.kl.identify({ email: 'ann@example.com' });
    await window.kl.identify({ phone_number: '+15005550006' });
    window.kl.setConsent('granted');
    return window.handedOff;
  }), [{ phone_number: '+15005550006' }]);
  const blocked = await open(context, { companyId: nextCompanyId(), activeOnSite: 'manual', consent: 'pending' });
  assert.equal(await blocked.evaluate(async () => {
    Object.defineProperty(window, 'klaviyo', { configurable: true, get() { throw new Error('blocked'); } });
    await window.kl.identify({ email: 'ann@example.com' });
    window.kl.setConsent('granted');
    return window.kl.consent;
  }), 'granted');
});

test('a page served over plain http (no secure context, so no crypto.randomUUID) imports the package, gets a version-4 anonymous id and tracks', { timeout: TIMEOUT }, async (t) => {
  const context = await shop(t);
  const companyId = nextCompanyId();
  // http://shop.test is no secure context (it is not localhost); the repo and the emulator
  // are reached through it, the emulator under /__emu.
  await context.route('http://shop.test/**', async (route) => {
    const u = new URL(route.request().url());
    const target = u.pathname.startsWith('/__emu/')
      ? `${emu.url}${u.pathname.slice('/__emu'.length)}${u.search}`
      : `${new URL(u.pathname + u.search, site.url)}`;
    await route.fulfill({ response: await route.fetch({ url: target }) });
  });
  const u = new URL('http://shop.test/tests/parity/page.html');
  for (const [k, v] of Object.entries({ companyId, activeOnSite: 'manual', apiBase: 'http://shop.test/__emu' })) u.searchParams.set(k, v);
  const page = await context.newPage();
  await page.goto(u.href);
  await page.waitForSelector('body[data-wasm]', { state: 'attached', timeout: 15_000 });
  const got = await page.evaluate(async () => {
    window.kl.track('Over plain http');
    await window.kl.flush();
    return { secure: window.isSecureContext, hasRandomUUID: typeof crypto.randomUUID, wasm: document.body.dataset.wasm, id: window.kl.anonymousId };
  });
  assert.deepEqual([got.secure, got.hasRandomUUID, got.wasm], [false, 'undefined', '1'], JSON.stringify(got));
  assert.match(got.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  await waitFor(() => events(companyId).some(metric('Over plain http')), { what: 'the event from the http page' });
});
