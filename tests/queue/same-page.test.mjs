// Trackers of one shop in one page: two components each creating one, or the script
// tag beside the npm package (two copies of the module). A page hears no `storage`
// event for its own writes, so without the page's own word (js/runtime.js `tell`) the
// tracker that does not send would wait for a sender that never hears its calls, and
// a denial or a logout made on one would not reach the others.
// Standalone: `node --test tests/queue/same-page.test.mjs` (needs a built dist/web).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suiteEnv, waitFor, storedEntries } from './harness.mjs';

const TEST_TIMEOUT = 60_000;
const suite = suiteEnv('SaP');
const { nextCompanyId } = suite;

/** A fresh emulator record and browser context, and one page of the shop (`opts`: the
 * test page's, `init: false` for a page with no tracker). */
async function shopPage(t, opts) {
  const shop = await suite.scenario(t);
  return { shop, page: await shop.open(opts) };
}

/**
 * A page of the shop with three trackers: `kl` (the page's own), a second from the same
 * module, and a third from another copy of the module (another URL: its own module
 * instance, as the script-tag build beside the npm package). In the page they are
 * `window.all[0..2]`.
 */
async function pageWithThree(t, companyId) {
  const { shop, page } = await shopPage(t, { companyId, flushDelayMs: 50 });
  await page.evaluate(async () => {
    const o = window.shopOptions({ flushDelayMs: 50 });
    const copy = await import('/dist/web/index.js?another-copy');
    if (copy.Klaviyo === window.Klaviyo) throw new Error('the second import is the same module instance');
    window.all = [window.kl, await window.Klaviyo.init(o), await copy.Klaviyo.init(o)];
  });
  return { shop, page };
}

/** `n` events from tracker `i` of the page; their unique_ids. */
const trackFrom = (page, i, n, metric) => page.evaluate(({ i, n, metric }) => {
  const ids = [];
  for (let k = 0; k < n; k += 1) ids.push(window.all[i].track(metric, { k }));
  return ids;
}, { i, n, metric });

/** Accepted events: {uid, anonymousId, email}. */
function acceptedEvents() {
  return suite.env.emu.requests().requests.filter((r) => r.accepted).flatMap((r) => {
    const a = r.body?.data?.attributes;
    const profile = a?.profile?.data?.attributes ?? {};
    const one = (uid) => ({ uid, anonymousId: profile.anonymous_id, email: profile.email });
    if (r.path === '/client/events') return [one(a?.unique_id)];
    if (r.path === '/client/event-bulk-create') return (a?.events?.data ?? []).map((e) => one(e?.attributes?.unique_id));
    return [];
  });
}

async function deliveredOnce(ids) {
  await waitFor(() => {
    const got = new Set(acceptedEvents().map((e) => e.uid));
    return ids.every((id) => got.has(id));
  }, { timeout: 20_000, what: `${ids.length} events accepted`, interval: 50 }).catch((e) => {
    const got = new Set(acceptedEvents().map((e) => e.uid));
    e.message += ` (missing: ${ids.filter((id) => !got.has(id)).length})`;
    throw e;
  });
  const counts = {};
  for (const e of acceptedEvents()) counts[e.uid] = (counts[e.uid] ?? 0) + 1;
  assert.deepEqual(ids.filter((id) => counts[id] !== 1), [], 'each accepted exactly once');
}

test('three trackers of one shop in one page, one from another copy of the module: each one\'s calls are delivered once while the page stays open', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const { shop, page } = await pageWithThree(t, companyId);
  const ids = [];
  for (const i of [0, 1, 2]) ids.push(...await trackFrom(page, i, 5, `Same page ${i}`));
  await deliveredOnce(ids);
  await waitFor(async () => (await page.evaluate(() => window.all.map((k) => k.pending()))).every((n) => n === 0),
    { what: 'every tracker\'s pending() back to 0' });
  await waitFor(async () => Object.keys(await storedEntries(page, `klaviyo:${companyId}:q:`)).length === 0,
    { what: 'no queue record left in storage' });
  assert.deepEqual(shop.pageErrors, []);
});

test('two trackers made in one task on empty storage (as two tabs of a restored session start): they end with one visitor, the one stored, and send one profile', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const { shop, page } = await shopPage(t, { companyId, init: false });
  // Each starts before the other has written the id it made up, and hears the other's
  // write with its own still to come. Before, each took the other's: they swapped, and
  // the one that wrote last kept another visitor than storage, for the rest of the page.
  await page.evaluate(async () => {
    const { Klaviyo } = await import('/dist/web/index.js');
    const o = window.shopOptions({ flushDelayMs: 50 });
    window.all = [Klaviyo.create(o), Klaviyo.create(o)];
    await Promise.all(window.all.map((k) => k.ready));
  });
  const one = await waitFor(() => page.evaluate((k) => {
    const stored = JSON.parse(localStorage.getItem(k) || 'null')?.anonymous_id;
    return window.all.every((t) => t.anonymousId === stored) && stored;
  }, `klaviyo:${companyId}:id`), { what: 'both trackers on the stored visitor' });
  const ids = [...await trackFrom(page, 0, 1, 'Together 0'), ...await trackFrom(page, 1, 1, 'Together 1')];
  await deliveredOnce(ids);
  assert.deepEqual(acceptedEvents().filter((e) => ids.includes(e.uid)).map((e) => e.anonymousId), [one, one]);
  assert.deepEqual(shop.pageErrors, []);
});

test('a logout (reset) and a login on one tracker of the page: the others follow, so the page sends one profile', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const { shop, page } = await pageWithThree(t, companyId);
  const first = await page.evaluate(() => window.all.map((k) => k.anonymousId));
  assert.equal(new Set(first).size, 1, 'one visitor at the start (read from storage)');

  await page.evaluate(() => window.all[0].reset());
  const fresh = await waitFor(async () => {
    const ids = await page.evaluate(() => window.all.map((k) => k.anonymousId));
    return ids[0] !== first[0] && ids.every((id) => id === ids[0]) && ids[0];
  }, { what: 'the other trackers to take the new anonymous id' });

  await page.evaluate(() => window.all[2].identify({ email: 'same.page@example.com' }));
  await waitFor(() => page.evaluate(() => window.all.every((k) => k.isIdentified())), { what: 'every tracker to know the login' });
  const ids = [...await trackFrom(page, 0, 1, 'After login 0'), ...await trackFrom(page, 1, 1, 'After login 1')];
  await deliveredOnce(ids);
  for (const e of acceptedEvents().filter((e) => ids.includes(e.uid))) {
    assert.equal(e.anonymousId, fresh, 'the new visitor');
    assert.equal(e.email, 'same.page@example.com', 'the login reached the tracker that did not make it');
  }
  assert.deepEqual(shop.pageErrors, []);
});

test('a denial on one tracker of the page stops the others: nothing sent or stored after it', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const { shop, page } = await pageWithThree(t, companyId);
  await page.evaluate(() => window.all[2].setConsent('denied'));
  await waitFor(() => page.evaluate(() => window.all.every((k) => k.consent === 'denied')),
    { what: 'every tracker of the page to follow the denial' });
  const before = suite.env.emu.requests().requests.length;
  const later = [...await trackFrom(page, 0, 3, 'After denial 0'), ...await trackFrom(page, 1, 3, 'After denial 1')];
  const flushed = await page.evaluate(() => Promise.all(window.all.map((k) => k.flush())));
  assert.deepEqual(flushed.map((f) => f.sent), [0, 0, 0], 'nothing sent by any tracker');
  assert.deepEqual(await page.evaluate(() => window.all.map((k) => k.pending())), [0, 0, 0], 'nothing held');
  assert.deepEqual(Object.keys(await storedEntries(page, `klaviyo:${companyId}:`)).filter((k) => !k.endsWith(':consent')), [`klaviyo:${companyId}:denied`],
    'nothing of ours stored but the denial');
  assert.equal(suite.env.emu.requests().requests.length, before, 'Klaviyo received nothing more');
  assert.ok(later.length === 6);
  assert.deepEqual(shop.pageErrors, []);
});

// A tracker never hears its own writes, whether it made them before its core ran (its
// loading window) or after: hearing its own denial marker would deny it again.

test('a tracker does not hear its own denial: denied at create, granted in the same task, its call is sent', { timeout: TEST_TIMEOUT }, async (t) => {
  const { shop, page } = await shopPage(t, { companyId: nextCompanyId(), init: false });
  const id = await page.evaluate(async () => {
    const { Klaviyo } = await import('/dist/web/index.js');
    const kl = (window.kl = Klaviyo.create(window.shopOptions({ consent: 'denied' })));
    kl.setConsent('granted');
    return kl.track('Granted At Once', {});
  });
  await page.evaluate(() => window.kl.ready);
  await deliveredOnce([id]);
  assert.equal(await page.evaluate(() => window.kl.consent), 'granted');
  assert.deepEqual(shop.pageErrors, []);
});

test('a tracker does not hear its own writes across its core\'s start: a denial and a grant made just before it stay granted', { timeout: TEST_TIMEOUT }, async (t) => {
  const { shop, page } = await shopPage(t, { companyId: nextCompanyId(), init: false });
  // Once the wasm is loaded (a first tracker, closed), a new tracker's core starts a few
  // microtasks after create(): the denial and the grant land before, at or after that.
  const states = await page.evaluate(async () => {
    const o = window.shopOptions();
    const { Klaviyo } = await import('/dist/web/index.js');
    const first = Klaviyo.create(o);
    await first.ready;
    first.close();
    const out = [];
    for (let d = 0; d < 10; d += 1) {
      const kl = Klaviyo.create(o);
      for (let i = 0; i < d; i += 1) await null;
      kl.setConsent('denied');
      kl.setConsent('granted');
      await kl.ready;
      await new Promise((r) => setTimeout(r, 0)); // the task after: every announced write heard
      out.push(kl.consent);
      kl.close();
    }
    return out;
  });
  assert.deepEqual(states, Array(10).fill('granted'));
  assert.deepEqual(shop.pageErrors, []);
});

// A tracker that hears a denial erases all of the shop's keys. In one page it hears it at
// once (the marker's announcement is not left to a microtask), so a grant and a call the
// denying tracker makes right after are not caught in that erase.

/** On tracker `i`, in one task: a call, a denial, a grant, a call. The last one's id. */
const denyGrantTrack = (page, i) => page.evaluate((i) => {
  const kl = window.all[i];
  kl.track('Before The Denial', {});
  kl.setConsent('denied');
  kl.setConsent('granted');
  return kl.track('After The Grant', {});
}, i);

test('a denial and a grant in one task on one tracker: the others follow the denial, and the call made after the grant is delivered, the visitor kept', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const { shop, page } = await pageWithThree(t, companyId);
  const id = await denyGrantTrack(page, 0);
  await deliveredOnce([id]);
  assert.ok(!acceptedEvents().some((e) => e.uid !== id), 'nothing from before the denial');
  assert.deepEqual(await page.evaluate(() => window.all.map((k) => k.consent)), ['granted', 'denied', 'denied']);
  const anon = await page.evaluate(() => window.all[0].anonymousId);
  await waitFor(async () => JSON.parse((await storedEntries(page, `klaviyo:${companyId}:id`))[`klaviyo:${companyId}:id`] ?? '{}').anonymous_id === anon,
    { what: 'the granted tracker\'s visitor in storage' });
  assert.deepEqual(shop.pageErrors, []);
});

test('a denial and a grant in one task beside a tracker still loading its wasm: it drops only its own saved calls', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const { shop, page } = await pageWithThree(t, companyId);
  // A fourth tracker, from yet another copy of the module, whose .wasm never comes.
  await page.route('**/klaviyo_wasm_bg.wasm?held', () => {});
  const loading = await page.evaluate(async () => {
    const { Klaviyo } = await import('/dist/web/index.js?loading-copy');
    window.loading = Klaviyo.create(window.shopOptions({ wasmUrl: new URL('/dist/web/klaviyo_wasm_bg.wasm?held', location.href).href }));
    return window.loading.track('While Loading', {});
  });
  await waitFor(async () => Object.keys(await storedEntries(page, `klaviyo:${companyId}:pre:`)).length === 1, { what: 'its window saved' });
  const id = await denyGrantTrack(page, 0);
  await deliveredOnce([id]);
  assert.ok(!acceptedEvents().some((e) => e.uid === loading), 'the loading tracker\'s call, made before the denial, is not sent');
  assert.equal(await page.evaluate(() => window.loading.consent), 'denied');
  assert.deepEqual(Object.keys(await storedEntries(page, `klaviyo:${companyId}:pre:`)), [], 'its saved window is gone');
  assert.deepEqual(shop.pageErrors, []);
});

test('another tab\'s denial reaches every copy of the module in a tab before any of them erases: the second copy\'s queued calls are reported as refused', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const { shop, page } = await shopPage(t, { companyId });
  // Klaviyo unavailable for a minute: the calls stay queued (and stored) until the denial.
  suite.env.emu.addFault({ status: 503, retryAfter: 60, count: 1_000_000 });
  await page.evaluate(async () => {
    const { Klaviyo } = await import('/dist/web/index.js?another-copy');
    window.copyReports = [];
    window.copy = await Klaviyo.init(window.shopOptions({
      onError: (e) => window.copyReports.push({ kind: e.kind, count: e.count }),
    }));
    window.copy.track('Queued In The Copy', { n: 1 });
    window.copy.track('Queued In The Copy', { n: 2 });
  });
  await waitFor(async () => Object.keys(await storedEntries(page, `klaviyo:${companyId}:q:`)).length >= 1, { what: 'the copy\'s calls stored' });
  const other = await shop.open({ companyId });
  await other.evaluate(() => window.kl.setConsent('denied'));
  await waitFor(() => page.evaluate(() => window.copy.consent === 'denied'), { what: 'the copy to follow the denial' });
  assert.deepEqual(await page.evaluate(() => window.copyReports.filter((r) => r.kind === 'consent')), [{ kind: 'consent', count: 2 }],
    'its two calls, reported as refused (not forgotten as if delivered)');
  assert.deepEqual(shop.pageErrors, []);
});

test('the page\'s other trackers hear a denial once the denying tracker has erased: a grant made from their onError keeps its visitor', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const { shop, page } = await shopPage(t, { companyId });
  suite.env.emu.addFault({ status: 503, retryAfter: 60, count: 1_000_000 }); // B's call stays queued
  await page.evaluate(async () => {
    const b = (window.b = await window.Klaviyo.init(window.shopOptions({
      // A shop whose handler asks again at once (its consent manager said yes meanwhile).
      onError: (e) => { if (e.kind === 'consent') b.setConsent('granted'); },
    })));
    b.track('Held', {});
  });
  await waitFor(async () => Object.keys(await storedEntries(page, `klaviyo:${companyId}:q:`)).length >= 1, { what: 'B\'s call stored' });
  await page.evaluate(() => window.kl.setConsent('denied'));
  await waitFor(() => page.evaluate(() => window.b.consent === 'granted' && window.b.anonymousId !== null), { what: 'B granted again' });
  const anon = await page.evaluate(() => window.b.anonymousId);
  await waitFor(async () => JSON.parse((await storedEntries(page, `klaviyo:${companyId}:id`))[`klaviyo:${companyId}:id`] ?? '{}').anonymous_id === anon,
    { what: 'B\'s new visitor in storage' });
  assert.deepEqual(shop.pageErrors, []);
});

test('without localStorage (refused by the browser), a denial on one tracker still stops the page\'s others', { timeout: TEST_TIMEOUT }, async (t) => {
  const { shop, page } = await shopPage(t, {
    companyId: nextCompanyId(),
    initScript: () => {
      Object.defineProperty(window, 'localStorage', { configurable: true, get() { throw new DOMException('refused', 'SecurityError'); } });
    },
  });
  await page.evaluate(async () => {
    window.b = await window.Klaviyo.init(window.shopOptions());
  });
  await page.evaluate(() => window.kl.setConsent('denied'));
  await waitFor(() => page.evaluate(() => window.b.consent === 'denied'), { what: 'the other tracker to follow the denial' });
  const before = suite.env.emu.requests().requests.length;
  await page.evaluate(() => { window.b.track('After The Denial', {}); return window.b.flush(); });
  assert.equal(suite.env.emu.requests().requests.length, before, 'nothing sent after it');
  assert.deepEqual(shop.pageErrors, []);
});

// A component that makes its own tracker and closes it when it unmounts (React's strict
// mode mounts twice; a single-page shop may remount on each route): the wasm memory of
// a closed tracker is given back. Each tracker was kept inline in the core's list of
// handles, which only grows (a closed tracker's late answer must not reach another), so
// each create grew the memory by about 3.4 KB for good: 1,000 took it from 1.6 to 5.8 MB.
test('a tracker created and closed 1,000 times (a component that mounts again) leaves the wasm memory as it was', { timeout: 120_000 }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await suite.scenario(t);
  const page = await shop.open({
    companyId,
    // The instance's memory, for the test to read (the package keeps its exports to itself).
    initScript: () => {
      const Instance = WebAssembly.Instance;
      WebAssembly.Instance = function (module, imports) {
        const i = new Instance(module, imports);
        window.wasmMemory = i.exports.memory;
        return i;
      };
      WebAssembly.Instance.prototype = Instance.prototype;
    },
  });
  const mountAndUnmount = (n) => page.evaluate(async (n) => {
    for (let i = 0; i < n; i++) {
      const kl = window.Klaviyo.create(window.shopOptions());
      await kl.ready;
      kl.close();
    }
    return window.wasmMemory.buffer.byteLength;
  }, n);
  const warm = await mountAndUnmount(100);
  const after = await mountAndUnmount(1000);
  t.diagnostic(`wasm memory after 100 mounts ${warm} B, after 1,100: ${after} B`);
  assert.ok(after - warm <= 256 * 1024, `grew by ${after - warm} B over 1,000 mounts`);
  assert.deepEqual(shop.pageErrors, []);
});
