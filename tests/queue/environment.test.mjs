// A shop's page, changed by its other scripts (polyfills, wrappers, frozen objects),
// before ours runs: the tracker keeps working, or says why it cannot and keeps the page's
// calls. Each case sets the page up with an init script; the baseline is every other
// suite, which runs the same pages unchanged.
// Standalone: `node --test tests/queue/environment.test.mjs` (needs a built dist/web).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suiteEnv, waitFor, storedEntries } from './harness.mjs';
import { events } from '../support/events.mjs';

const TIMEOUT = 60_000;
const suite = suiteEnv('EnV');

/** A tab whose page ran `initScript` first; the tracker is created by the test (`start`). */
async function changedPage(t, initScript) {
  const shop = await suite.scenario(t);
  const companyId = suite.nextCompanyId();
  const page = await shop.open({ companyId, init: false, initScript });
  return { shop, page, companyId };
}

/** Creates the tracker with the page's options and `more`; resolves to how `ready` ended. */
function start(page, more = {}) {
  return page.evaluate(async (more) => {
    const { Klaviyo } = await import('/dist/web/index.js');
    window.kl = Klaviyo.create(window.shopOptions({ onError: (e) => window.reports.push({ kind: e.kind, message: e.message }), ...more }));
    return window.kl.ready.then(() => 'ready', (e) => `${e.kind}: ${e.message}`);
  }, more);
}

const metrics = () => events(suite.env.emu.requests().requests).map((e) => e.metric);

async function tracks(page, metric) {
  await page.evaluate((m) => window.kl.track(m), metric);
  await waitFor(() => metrics().includes(metric), { what: `${metric} delivered` });
}

test('a Promise polyfill without allSettled, on a shop whose worker is known: a logout and a denial work and erase', { timeout: TIMEOUT }, async (t) => {
  const { shop, page, companyId } = await changedPage(t, () => { delete Promise.allSettled; });
  // The page knows the shop's worker (a first-party apiBase answered as it before).
  await page.evaluate((c) => localStorage.setItem(`klaviyo:${c}:edge`, '1'), companyId);
  assert.equal(await start(page), 'ready');
  await page.evaluate(() => window.kl.identify({ email: 'polyfill@example.com' }));
  await page.evaluate(() => { window.kl.reset(); window.kl.setConsent('denied'); });
  assert.deepEqual(Object.keys(await storedEntries(page, `klaviyo:${companyId}:`)), [`klaviyo:${companyId}:denied`], 'the denial erased everything but its time');
  assert.deepEqual(shop.pageErrors, []);
});

test('Web Locks that throw at once: the lease in storage picks the sender, and the calls go', { timeout: TIMEOUT }, async (t) => {
  const { shop, page } = await changedPage(t, () => {
    navigator.locks.request = () => { throw new Error('broken locks'); };
  });
  assert.equal(await start(page), 'ready');
  await tracks(page, 'Without Locks');
  assert.deepEqual(shop.pageErrors, []);
});

test('a frozen history (activeOnSite "auto"): create() does not throw, and the tracker sends', { timeout: TIMEOUT }, async (t) => {
  const { shop, page } = await changedPage(t, () => { Object.freeze(History.prototype); Object.freeze(history); });
  assert.equal(await start(page, { activeOnSite: 'auto' }), 'ready');
  await tracks(page, 'Frozen History');
  assert.deepEqual(shop.pageErrors, []);
});

test("a fetch polyfill installed over the native one (fetch and Response): the .wasm is compiled whole, and the tracker starts", { timeout: TIMEOUT }, async (t) => {
  const { shop, page } = await changedPage(t, () => {
    const real = window.fetch;
    // What whatwg-fetch installs: its own Response class as the global, and a fetch that
    // gives its instances (the same members, not a native Response).
    class PolyResponse {
      constructor(r) { Object.assign(this, { ok: r.ok, status: r.status, headers: r.headers, r }); }
      arrayBuffer() { return this.r.arrayBuffer(); }
      clone() { return new PolyResponse(this.r.clone()); }
    }
    window.Response = PolyResponse;
    window.fetch = async (url, init) => {
      const r = await real(url, init);
      return String(url).endsWith('.wasm') ? new PolyResponse(r) : r;
    };
  });
  assert.equal(await start(page), 'ready');
  await tracks(page, 'Polyfill Response');
  assert.deepEqual(shop.pageErrors, []);
});

test('a localStorage stand-in that cannot list its keys is not written to (a denial could not erase it)', { timeout: TIMEOUT }, async (t) => {
  const { shop, page } = await changedPage(t, () => {
    const kept = (window.standIn = {});
    Object.defineProperty(window, 'localStorage', {
      value: {
        getItem: (k) => (k in kept ? kept[k] : null),
        setItem: (k, v) => { kept[k] = String(v); },
        removeItem: (k) => { delete kept[k]; },
        key: (i) => Object.keys(kept)[i] ?? null, // but no length
      },
    });
  });
  assert.equal(await start(page), 'ready');
  await page.evaluate(() => window.kl.identify({ email: 'standin@example.com' }));
  await tracks(page, 'Stand-in Storage');
  assert.deepEqual(await page.evaluate(() => Object.keys(window.standIn)), [], 'nothing of the visitor kept where a denial cannot reach');
  assert.deepEqual(shop.pageErrors, []);
});

test("a page that breaks what the core needs to start (TextEncoder without encodeInto): reported as load, the page's calls kept for a later page", { timeout: TIMEOUT }, async (t) => {
  const { shop, page, companyId } = await changedPage(t, () => { delete TextEncoder.prototype.encodeInto; });
  const ended = await page.evaluate(async () => {
    const { Klaviyo } = await import('/dist/web/index.js');
    window.kl = Klaviyo.create(window.shopOptions({ onError: (e) => window.reports.push({ kind: e.kind, message: e.message }) }));
    window.kl.track('Kept For Later');
    return window.kl.ready.then(() => 'ready', (e) => `${e.kind}: ${e.message}`);
  });
  assert.match(ended, /^load: klaviyo: the tracker could not start \(/);
  assert.deepEqual((await page.evaluate(() => window.reports)).map((r) => r.kind), ['load']);
  const kept = await storedEntries(page, `klaviyo:${companyId}:pre:`);
  assert.equal(Object.keys(kept).length, 1, 'the call is stored for a later page');
  assert.match(Object.values(kept)[0], /Kept For Later/);
  assert.deepEqual(shop.pageErrors, []);
});

test('a page that breaks the core while it starts, after it opened (an abort listener that throws, no Web Locks): nothing of it runs, sends or writes', { timeout: TIMEOUT }, async (t) => {
  const { shop, page, companyId } = await changedPage(t, () => {
    Object.defineProperty(navigator, 'locks', { value: undefined });
    const add = EventTarget.prototype.addEventListener;
    AbortSignal.prototype.addEventListener = function (type, ...rest) {
      if (type === 'abort') throw new Error('broken abort listener');
      return add.call(this, type, ...rest);
    };
  });
  const ended = await page.evaluate(async () => {
    const { Klaviyo } = await import('/dist/web/index.js');
    window.kl = Klaviyo.create(window.shopOptions({ onError: (e) => window.reports.push({ kind: e.kind, message: e.message }) }));
    window.kl.identify({ email: 'halfway@example.com' });
    return window.kl.ready.then(() => 'ready', (e) => `${e.kind}: ${e.message}`);
  });
  assert.match(ended, /^load: klaviyo: the tracker could not start \(broken abort listener\)/);
  // What a running core acts on: the page hidden, another tab's write of the shop.
  await page.evaluate((c) => {
    document.dispatchEvent(new Event('visibilitychange'));
    dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true }));
    dispatchEvent(new StorageEvent('storage', { key: `klaviyo:${c}:q:other`, newValue: '[]', storageArea: localStorage }));
  }, companyId);
  // Nothing may happen now: a fixed wait (two beats of the storage lease) is the only way
  // to see that nothing does.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.equal(suite.env.emu.requests().count, 0, 'nothing sent');
  const stored = Object.keys(await storedEntries(page, `klaviyo:${companyId}:`));
  assert.deepEqual(stored.filter((k) => !k.includes(':pre:')), [], `only the page's stored calls: ${stored.join(', ')}`);
  assert.equal(stored.length, 1);
  assert.deepEqual(shop.pageErrors, []);
});

for (const [what, thrown] of [['undefined', 'undefined'], ['a Symbol', 'symbol'], ['an object without a prototype', 'object']]) {
  test(`${what} thrown while the core starts (no Error): still reported as load, every promise settled`, { timeout: TIMEOUT }, (t) => noErrorThrown(t, what, thrown));
}

async function noErrorThrown(t, what, thrown) {
  const { shop, page } = await changedPage(t, `(() => {
    const value = { undefined: undefined, 'a Symbol': Symbol('x'), 'an object without a prototype': Object.create(null) }[${JSON.stringify(what)}];
    TextEncoder.prototype.encodeInto = () => { throw value; };
  })()`);
  const got = await page.evaluate(async () => {
    const { Klaviyo } = await import('/dist/web/index.js');
    window.kl = Klaviyo.create(window.shopOptions({ onError: (e) => window.reports.push({ kind: e.kind, message: e.message }) }));
    const identified = window.kl.identify({ email: 'thrown@example.com' }).then(() => 'resolved', (e) => e.kind);
    const ready = await window.kl.ready.then(() => 'ready', (e) => `${e.kind}: ${e.message}`);
    return { ready, identified: await identified, reports: window.reports.map((r) => r.kind) };
  });
  assert.equal(got.ready, `load: klaviyo: the tracker could not start (${thrown})`);
  assert.equal(got.identified, 'load');
  assert.deepEqual(got.reports, ['load']);
  assert.deepEqual(shop.pageErrors, []);
}

test('a Content-Security-Policy that refuses wasm: compiled once, so the shop gets one violation report a page, not two', { timeout: TIMEOUT }, async (t) => {
  const shop = await suite.scenario(t);
  // The test page with a policy of the shop's that predates WebAssembly.
  await shop.context.route(/\/tests\/queue\/page\.html/, async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': "script-src 'self' 'unsafe-inline'" } });
  });
  const page = await shop.open({
    companyId: suite.nextCompanyId(),
    init: false,
    initScript: () => {
      window.violations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective));
    },
  });
  assert.match(await start(page), /^load: .*'wasm-unsafe-eval'/);
  await waitFor(() => page.evaluate(() => window.violations.length > 0), { what: 'the violation event' });
  assert.deepEqual(await page.evaluate(() => window.violations), ['script-src'], 'one refusal of the compile');
  assert.deepEqual(shop.pageErrors, []);
});
