// The cost to the page, end to end: pages that go away right after tracking, a burst of
// 10,000 calls in one task, and the window before the wasm has loaded (Klaviyo.create).
// dist/web in Debian's Chromium against the Klaviyo emulator. Standalone:
// `node --test tests/queue/` (starts its own emulator, static server and browser).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ROOT, startEnv, buildId, newShop, waitFor, storedEntries, eventRequests, wireCounts, holdWasm,
} from './harness.mjs';
import { trackThenNavigate, trackThenClose, wireLine } from './scenarios.mjs';

const TEST_TIMEOUT = 90_000;
let env;

before(async () => {
  env = await startEnv();
  console.log(`dist/web build: ${env.build}`);
});
after(async () => {
  if (env?.buildChanged()) console.log(`WARNING: dist/web was rebuilt during this run (now ${buildId()}); results mix two builds`);
  await env?.close();
});

// Shop ids of their own (queue.test.mjs uses QuE…): no storage key or profile leaks across.
let shopNo = 0;
const nextCompanyId = () => `PcO${String(++shopNo).padStart(3, '0')}`;

async function scenario(t, opts) {
  env.emu.reset();
  const shop = await newShop(env, opts);
  t.after(() => shop.close());
  return shop;
}

const summary = (filter) => env.emu.requests(filter);
const reportsOf = (page) => page.evaluate(() => window.reports);

function assertNoPageErrors(shop) {
  assert.deepEqual(shop.pageErrors, [], 'no uncaught exception in any page');
}

/** The create() page (tests/queue/create.html): window.kl exists before the wasm loads. */
async function openCreatePage(shop, { companyId, ...opts }) {
  const u = new URL('/tests/queue/create.html', env.site.url);
  u.searchParams.set('companyId', companyId);
  u.searchParams.set('apiBase', env.emu.url);
  for (const [k, v] of Object.entries(opts)) u.searchParams.set(k, String(v));
  const page = await shop.context.newPage();
  await page.goto(u.href);
  return shop.ready(page);
}

/** Events inside one recorded request: {uid, time}. */
function eventsOf(record) {
  const a = record.body?.data?.attributes;
  if (record.path === '/client/events') return [{ uid: a?.unique_id, time: a?.time }];
  if (record.path === '/client/event-bulk-create') {
    return (a?.events?.data ?? []).map((e) => ({ uid: e?.attributes?.unique_id, time: e?.attributes?.time }));
  }
  return [];
}

/** Waits until every id was accepted at least once; returns the summary. */
function delivered(ids, { timeout = 20_000, what = `${ids.length} events accepted` } = {}) {
  return waitFor(() => {
    const s = summary();
    return ids.every((id) => s.uniqueIdCounts[id] >= 1) && s;
  }, { timeout, what, interval: 100 });
}

// ---------------------------------------------------------------------------

const NAV = { rounds: 5, perRound: 20 }; // delays 0, 7, 15, 22, 30 ms (scenarios.mjs)

function lifecycleDiagnostics(t, r) {
  t.diagnostic(`events ${r.events}, lost ${r.lost}, sent twice ${r.sentTwice} (${(100 * r.shareSentTwice).toFixed(1)} %), `
    + `accepted twice ${r.acceptedTwice}, ${r.eventRequests} event requests, settled ${r.settleMs} ms after the last round`);
  t.diagnostic(`wire: ${r.wire}`);
}

test('navigation: 5 × 20 events, each burst followed by location.href 0..30 ms later: none lost, at most 2 % sent twice', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const r = await trackThenNavigate(env, shop, { companyId, ...NAV });
  lifecycleDiagnostics(t, r);
  assert.equal(r.distinct, 100, '100 distinct unique_ids');
  assert.equal(r.timedOut, false, 'the queue settled before the deadline');
  assert.deepEqual(r.lostIds, [], 'no event lost');
  assert.ok(r.shareSentTwice <= 0.02, `at most 2 % sent twice (${r.sentTwice} of ${r.events}: ${r.twiceIds.join(' ')})`);
  assertNoPageErrors(shop);
});

// Klaviyo 100 ms away and a shop whose pages take 300 ms: Klaviyo's answer still
// comes back before the next page replaces this one, so nothing is sent twice.
test('navigation with Klaviyo 100 ms away and 300 ms pages: none lost, at most 2 % sent twice', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  env.emu.addFault({ path: '/client/', delayMs: 100, count: 10_000 });
  const r = await trackThenNavigate(env, shop, { companyId, ...NAV, pageDelayMs: 300 });
  lifecycleDiagnostics(t, r);
  assert.deepEqual(r.lostIds, [], 'no event lost');
  assert.ok(r.shareSentTwice <= 0.02, `at most 2 % sent twice (${r.sentTwice} of ${r.events})`);
  assertNoPageErrors(shop);
});

// When the page is gone before Klaviyo answers (here Klaviyo 100 ms away, pages 50 ms),
// nothing can tell the next page whether that request succeeded: it waits
// KEEPALIVE_WAIT_MS, then sends those events again (Klaviyo counts them once). Nothing
// is lost; the resend is the price of that.
test('navigation that outruns Klaviyo\'s answer: none lost; the unanswered burst is resent after the keepalive wait', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  env.emu.addFault({ path: '/client/', delayMs: 100, count: 10_000 });
  const r = await trackThenNavigate(env, shop, { companyId, ...NAV, pageDelayMs: 50 });
  lifecycleDiagnostics(t, r);
  assert.deepEqual(r.lostIds, [], 'no event lost');
  assert.equal(r.acceptedTwice, r.sentTwice, 'what went twice was the same unique_id, which Klaviyo counts once');
  assertNoPageErrors(shop);
});

test('closed tabs: 5 × 20 events, each tab closed 0..30 ms after its burst, then a new tab: none lost', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const r = await trackThenClose(env, shop, { companyId, ...NAV });
  lifecycleDiagnostics(t, r);
  assert.equal(r.timedOut, false, 'the queue settled before the deadline');
  assert.deepEqual(r.lostIds, [], 'no event lost');
  // A tab closed before Klaviyo's answer cannot learn it: such events are resent (see
  // above). Closing within milliseconds of a burst is rare; the share is reported.
  assertNoPageErrors(shop);
});

test('burst: 10,000 track() calls in one task, default bounds: each accepted once, 9,000 "evicted" from storage, storage never above 1,000 calls', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId }); // default options: maxQueueEvents 1000
  const prefix = `klaviyo:${companyId}:q:`;
  // Samples the calls stored under q: (one `e…` line each) right after the burst's task
  // (a microtask queued after the library's own end-of-task one) and every 5 ms after.
  await page.evaluate((prefix) => {
    window.storedMax = 0;
    window.samples = 0;
    window.sampleStored = () => {
      let calls = 0;
      for (let i = 0; i < localStorage.length; i += 1) {
        const k = localStorage.key(i);
        if (k && k.startsWith(prefix)) {
          for (const line of localStorage.getItem(k).split('\n')) if (line.startsWith('e')) calls += 1;
        }
      }
      window.samples += 1;
      window.storedMax = Math.max(window.storedMax, calls);
      return calls;
    };
    window.sampler = setInterval(window.sampleStored, 5);
  }, prefix);

  const burst = await page.evaluate(() => {
    const ids = [];
    for (let i = 0; i < 10_000; i += 1) ids.push(window.kl.track('Burst', { i }));
    return new Promise((resolve) => queueMicrotask(() => resolve({ ids, afterTask: window.sampleStored() })));
  });
  const { ids } = burst;
  assert.equal(new Set(ids).size, 10_000, '10,000 distinct unique_ids');

  await delivered(ids, { timeout: 60_000, what: '10,000 events accepted' });
  await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0, { timeout: 20_000, what: 'kl.pending() === 0' });
  await waitFor(async () => Object.keys(await storedEntries(page, prefix)).length === 0, { what: `no ${prefix}* keys left` });
  const sampled = await page.evaluate(() => { clearInterval(window.sampler); window.sampleStored(); return { max: window.storedMax, samples: window.samples }; });

  const s = summary();
  const sends = eventRequests(s);
  t.diagnostic(`${sends.length} event requests (${sends.map((r) => `${r.uniqueIds.length}:${r.status}`).join(' ')}); `
    + `stored calls right after the task: ${burst.afterTask}, at most ${sampled.max} over ${sampled.samples} samples`);
  const twice = ids.filter((id) => s.uniqueIdCounts[id] !== 1);
  assert.equal(twice.length, 0, `every event accepted exactly once (${twice.length} not: ${twice.slice(0, 5).join(' ')}…)`);
  assert.equal(s.acceptedUniqueIds, 10_000);
  const wire = wireCounts(s);
  t.diagnostic(`sent more than once: ${ids.filter((id) => wire[id] > 1).length}`);

  const evicted = (await reportsOf(page)).filter((r) => r.kind === 'evicted');
  assert.equal(evicted.reduce((n, r) => n + r.count, 0), 9_000, `9,000 evictions reported: ${JSON.stringify(evicted.slice(0, 5))}`);
  assert.ok(burst.afterTask <= 1000, `storage right after the task holds ${burst.afterTask} calls (max 1,000)`);
  assert.ok(sampled.max <= 1000, `storage held ${sampled.max} calls at its fullest sample (max 1,000)`);
  assertNoPageErrors(shop);
});

test('create() window: calls before the wasm is ready keep their unique_id and time; a bad one is reported, not thrown; after ready it throws', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const wasm = await holdWasm(shop.context);
  const page = await openCreatePage(shop, { companyId });
  await waitFor(() => wasm.requested.length > 0, { what: 'the wasm request (held)' });

  const early = await page.evaluate(() => {
    const at = Date.now();
    const ids = [
      window.kl.track('Early Event', { n: 1 }),
      window.kl.viewedProduct({ ProductID: '1111', ProductName: 'Winnie the Pooh', Price: 9.99 }),
    ];
    let threw = null;
    try { window.kl.track(''); } catch (e) { threw = String(e?.message ?? e); }
    return { at, ids, threw, ready: document.body.dataset.wasm ?? null, pending: window.kl.pending() };
  });
  assert.equal(early.ready, null, 'the calls were made before the wasm was ready');
  assert.equal(early.threw, null, 'a bad call before ready does not throw');
  assert.ok(early.ids.every((id) => typeof id === 'string' && id.length >= 32), `ids returned at call time: ${early.ids}`);

  // Hold the wasm until the page's clock is 2 s past the calls' second, so a `time` taken
  // at ready (rather than at the call) could not round to the same second.
  const callSecond = Math.floor(early.at / 1000);
  await waitFor(async () => (await page.evaluate(() => Date.now())) >= (callSecond + 2) * 1000, { timeout: 5000, what: 'two seconds on the page clock' });
  wasm.release();
  await page.waitForSelector('body[data-wasm]', { state: 'attached', timeout: 15_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.wasm), '1', `ready: ${await page.evaluate(() => window.initError)}`);
  const readyAt = await page.evaluate(() => window.readyAt);

  const s = await delivered(early.ids);
  const byId = new Map(eventRequests(s).filter((r) => r.accepted).flatMap(eventsOf).map((e) => [e.uid, e]));
  for (const id of early.ids) {
    const e = byId.get(id);
    assert.ok(e, `${id} delivered under the id returned at call time`);
    assert.equal(Math.floor(Date.parse(e.time) / 1000), callSecond,
      `event time ${e.time} is the call's second (${new Date(callSecond * 1000).toISOString()}), not ready's (${new Date(readyAt).toISOString()})`);
  }

  const reports = await reportsOf(page);
  const invalid = reports.filter((r) => r.kind === 'invalid');
  assert.equal(invalid.length, 1, `one 'invalid' report: ${JSON.stringify(reports)}`);
  assert.match(invalid[0].message, /metric/, 'the message names the field');
  assert.equal(invalid[0].isError, true, 'onError receives an Error');

  const after = await page.evaluate(() => {
    try { window.kl.track(''); return null; } catch (e) { return String(e?.message ?? e); }
  });
  assert.ok(after !== null, 'after ready, the same bad call throws');
  assert.match(after, /metric/, 'naming the field');
  t.diagnostic(`before ready: reported "${invalid[0].message}"; after: threw "${after}"`);
  assert.equal(summary().acceptedUniqueIds, 2, 'only the two good events reached Klaviyo');
  assertNoPageErrors(shop);
});

test('a page closed before its wasm loaded loses nothing: a later page delivers its calls', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const wasm = await holdWasm(shop.context);
  const first = await openCreatePage(shop, { companyId });
  await waitFor(() => wasm.requested.length > 0, { what: 'the wasm request (held)' });
  const ids = await first.evaluate(() => [0, 1, 2].map((n) => window.kl.track('Before The Wasm', { n })));
  const preKeys = Object.keys(await storedEntries(first, `klaviyo:${companyId}:pre:`));
  t.diagnostic(`pre-ready records: ${preKeys.join(' ')}`);
  assert.equal(preKeys.length, 1, 'the window\'s calls are saved under klaviyo:<companyId>:pre:<page id>');
  await first.close();
  wasm.release();
  await shop.context.unrouteAll({ behavior: 'ignoreErrors' });

  // A later visit: the pre-ready record is adopted once stale (EARLY_STALE_MS, 60 s in
  // src/core/client/), so this page's clock starts 65 s on and runs normally from there.
  const later = await shop.context.newPage();
  await later.clock.install({ time: Date.now() + 65_000 });
  await later.goto(new URL(`/tests/queue/page.html?companyId=${companyId}&apiBase=${encodeURIComponent(env.emu.url)}`, env.site.url).href);
  await shop.ready(later);
  try {
    await delivered(ids, { timeout: 15_000, what: 'the closed page\'s 3 calls, delivered by a later page' });
  } finally {
    t.diagnostic(`wire: ${wireLine(summary())}; reports: ${JSON.stringify(await reportsOf(later))}`);
  }
  assert.equal(Object.keys(await storedEntries(later, `klaviyo:${companyId}:pre:`)).length, 0, 'the pre-ready record is gone');
  assertNoPageErrors(shop);
});

/** A later visit: its clock starts `ahead` ms on, so it adopts the loading-window
 * records (stale after EARLY_STALE_MS, 60 s, in src/core/client/) and runs normally from
 * there. (Playwright's clock is the context's: the other pages' clocks jump with it.) */
async function laterPage(shop, companyId, ahead = 65_000) {
  const later = await shop.context.newPage();
  await later.clock.install({ time: Date.now() + ahead });
  await later.goto(new URL(`/tests/queue/page.html?companyId=${companyId}&apiBase=${encodeURIComponent(env.emu.url)}`, env.site.url).href);
  return shop.ready(later);
}

/** The calls saved under the page's `pre:` key: [op, [id, time, ...args]] each. */
async function savedWindow(page, companyId) {
  const values = Object.values(await storedEntries(page, `klaviyo:${companyId}:pre:`));
  return values.map((v) => JSON.parse(v)).flatMap(([, ...calls]) => calls.flatMap((c, i) => (i % 2 ? [] : [[c, JSON.parse(calls[i + 1])]])));
}

test('a page whose wasm took over a minute to load sends its window once: its own saved calls are replayed, not adopted as well', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const wasm = await holdWasm(shop.context);
  const page = await openCreatePage(shop, { companyId });
  await waitFor(() => wasm.requested.length > 0, { what: 'the wasm request (held)' });
  const ids = await page.evaluate(() => [0, 1].map((n) => window.kl.track('Slow Load', { n })));
  await waitFor(async () => (await savedWindow(page, companyId)).length === 2, { what: 'the window saved' });
  // As if the download had taken two minutes: the page's own saved window is stale now,
  // as a closed page's would be.
  await page.evaluate((p) => {
    for (const k of Object.keys(localStorage).filter((k) => k.startsWith(p))) {
      const v = JSON.parse(localStorage.getItem(k));
      v[0] -= 120_000;
      localStorage.setItem(k, JSON.stringify(v));
    }
  }, `klaviyo:${companyId}:pre:`);
  wasm.release();
  await page.waitForSelector('body[data-wasm="1"]', { state: 'attached', timeout: 15_000 });
  await delivered(ids);
  await page.evaluate(() => window.kl.flush());
  assert.equal(await page.evaluate(() => window.kl.pending()), 0);
  const s = summary();
  for (const id of ids) assert.equal(s.uniqueIdCounts[id], 1, `${id} sent once (${wireLine(s)})`);
  assertNoPageErrors(shop);
});

test('a page still loading its wasm after a minute keeps its window: the sending tab leaves it, and the page sends its calls once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  // Every page's clock is the context's, moved on by the test below.
  await shop.context.clock.install();
  const sender = await shop.open({ companyId });
  const wasm = await holdWasm(shop.context);
  const page = await openCreatePage(shop, { companyId });
  await waitFor(() => wasm.requested.length > 0, { what: 'the wasm request (held)' });
  const ids = await page.evaluate(() => [0, 1].map((n) => window.kl.track('Still Loading', { n })));
  const savedAt = async () => Object.values(await storedEntries(page, `klaviyo:${companyId}:pre:`)).map((v) => JSON.parse(v)[0])[0];
  await waitFor(async () => (await savedWindow(page, companyId)).length === 2, { what: 'the window saved' });
  // 80 s pass while the download hangs, 20 s at a time: the sending tab looks at the
  // record once it would be stale (60 s), and finds it saved again since.
  for (let step = 0; step < 4; step++) {
    const was = await savedAt();
    await shop.context.clock.fastForward(20_000);
    await waitFor(async () => (await savedAt()) > was, { what: `the window saved again (${20 * (step + 1)} s on)` });
  }
  await sender.evaluate(() => window.kl.flush());
  assert.deepEqual(ids.filter((id) => summary().uniqueIdCounts[id]), [], 'nothing of the loading page sent by the sending tab');
  wasm.release();
  await page.waitForSelector('body[data-wasm="1"]', { state: 'attached', timeout: 15_000 });
  await delivered(ids);
  for (const tab of [page, sender]) await waitFor(() => tab.evaluate(() => window.kl.pending() === 0), { what: 'each tab drained' });
  const s = summary();
  for (const id of ids) assert.equal(s.uniqueIdCounts[id], 1, `${id} sent once (${wireLine(s)})`);
  assert.equal(await savedAt(), undefined, 'the record is gone');
  assertNoPageErrors(shop);
});

test('tabs starting together (a restored session) over a closed page\'s loading-window record: one adopts it, each sends its own, each call once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  // A page closed before its wasm loaded left its calls, long enough ago to be stale.
  const home = await shop.open({ companyId, init: false });
  const saved = Date.now() - 120_000;
  const ids = ['restored-1', 'restored-2'];
  await home.evaluate(({ key, record }) => localStorage.setItem(key, record), {
    key: `klaviyo:${companyId}:pre:closed-page`,
    record: JSON.stringify([saved, ...ids.flatMap((id) => [2, JSON.stringify([id, saved, 'Restored', {}, null])])]),
  });
  // Their cores start together, each over storage that still holds the record.
  const wasm = await holdWasm(shop.context);
  const tabs = await Promise.all([0, 1, 2].map(() => openCreatePage(shop, { companyId })));
  await waitFor(() => wasm.requested.length >= 3, { what: 'the wasm requests (held)' });
  // Each tab's own calls of its loading window.
  const own = [];
  for (const [i, tab] of tabs.entries()) own.push(...await tab.evaluate((i) => [window.kl.track('Own Window', { tab: i })], i));
  wasm.release();
  await delivered([...ids, ...own], { what: 'the closed page\'s calls and each tab\'s own' });
  // Every tab holds nothing more (so nothing is left to send twice), then the counts.
  for (const tab of tabs) await waitFor(() => tab.evaluate(() => window.kl.pending() === 0), { what: 'each tab drained' });
  await waitFor(async () => Object.keys(await storedEntries(home, `klaviyo:${companyId}:q:`)).length === 0, { what: 'no queue record left' });
  const s = summary();
  for (const id of [...ids, ...own]) assert.equal(s.uniqueIdCounts[id], 1, `${id}: sent once (${wireLine(s)})`);
  assert.equal(Object.keys(await storedEntries(home, `klaviyo:${companyId}:pre:`)).length, 0, 'the record is gone');
  assertNoPageErrors(shop);
});

test('a page whose wasm failed: its promises settle with the load error, and while it stays open a later page sends its calls once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  // Its .wasm is a 404, answered once the test has made calls in the loading window.
  let fail;
  const failing = new Promise((resolve) => { fail = resolve; });
  const page = await shop.context.newPage();
  await page.route('**/dist/web/klaviyo_wasm_bg.wasm', async (route) => {
    await failing;
    await route.fulfill({ status: 404, body: 'gone' }).catch(() => {});
  });
  await page.addInitScript(() => {
    window.unhandled = [];
    addEventListener('unhandledrejection', (e) => window.unhandled.push(String(e.reason?.message ?? e.reason)));
  });
  await page.goto(new URL(`/tests/queue/create.html?companyId=${companyId}&apiBase=${encodeURIComponent(env.emu.url)}`, env.site.url).href);
  await shop.ready(page);
  const ids = await page.evaluate(() => {
    const kind = (p) => p.then(() => 'resolved', (e) => e.kind);
    window.early = kind(window.kl.identify({ email: 'early@example.com' }));
    return [0, 1].map((n) => window.kl.track('Before The Failure', { n }));
  });
  fail();
  const settled = await page.evaluate(async () => {
    const kl = window.kl;
    const kind = (p) => p.then(() => 'resolved', (e) => e.kind);
    const ready = await kind(kl.ready);
    const after = await kind(kl.identify({ email: 'after@example.com' }));
    kl.flush(); // left unhandled, as a shop may
    return { ready, early: await window.early, after, flush: await kind(kl.flush()) };
  });
  assert.deepEqual(settled, { ready: 'load', early: 'load', after: 'load', flush: 'load' }, 'every promise settles, with the load error');
  const saved = await savedWindow(page, companyId);
  assert.deepEqual(saved.map(([op]) => op), [1, 2, 2, 1], 'the identify, the two tracks and the later identify, kept for a later page');

  // A later page adopts the record; the failed page, still open, lets go of those calls.
  const later = await laterPage(shop, companyId);
  await delivered(ids, { what: 'the failed page\'s tracks, sent by a later page' });
  await waitFor(() => page.evaluate(() => window.kl.pending() === 0), { what: 'the failed page to drop the adopted calls' });
  await later.close();
  // Its next call is saved alone: the adopted ones are not saved (and sent) again.
  const [next] = await page.evaluate(() => [window.kl.track('After The Adoption', {})]);
  await waitFor(async () => (await savedWindow(page, companyId)).length > 0, { what: 'the next call saved' });
  assert.deepEqual((await savedWindow(page, companyId)).map(([, args]) => args[0]), [next]);
  const last = await laterPage(shop, companyId, 130_000); // the failed page's clock is 65 s on now
  const s = await delivered([next], { what: 'the next call, sent by another later page' });
  for (const id of ids) assert.equal(s.uniqueIdCounts[id], 1, `${id} sent once`);
  assert.equal(s.duplicateUniqueIds, 0);
  assert.deepEqual(await page.evaluate(() => window.unhandled), [], 'no unhandled rejection');

  // flush() after close() resolves at once (it never settled).
  const closed = await last.evaluate(() => {
    window.kl.close();
    return Promise.race([window.kl.flush(), new Promise((resolve) => setTimeout(() => resolve('never settled'), 5000))]);
  });
  assert.deepEqual(closed, { sent: 0, failed: 0, pending: 0 });
  assertNoPageErrors(shop);
});

test('a tracker whose options the core refuses: every promise, made before or after, rejects with the refusal, and nothing is stored', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await openCreatePage(shop, { companyId, maxQueueEvents: -5 });
  const out = await page.evaluate(async () => {
    const kl = window.kl;
    // A deadline, so that a promise that never settles fails the test rather than hangs it.
    const settled = (p) => Promise.race([p.then(() => 'resolved', (e) => e.message),
      new Promise((resolve) => setTimeout(() => resolve('never settled'), 5000))]);
    const early = settled(kl.identify({ email: 'early@example.com' }));
    kl.track('Before The Refusal', {});
    const ready = await settled(kl.ready);
    const ids = [kl.track('After The Refusal', {})];
    return {
      ready, early: await early,
      identify: await settled(kl.identify({ email: 'after@example.com' })),
      subscribe: await settled(kl.subscribe({ listId: 'Ab12Cd', email: 'after@example.com' })),
      flush: await settled(kl.flush()),
      pending: kl.pending(),
      returned: typeof ids[0],
    };
  });
  const refusal = out.ready;
  assert.match(refusal, /maxQueueEvents/, 'ready rejects naming the option');
  assert.deepEqual(out, { ready: refusal, early: refusal, identify: refusal, subscribe: refusal, flush: refusal, pending: 0, returned: 'string' });
  assert.deepEqual(await storedEntries(page, `klaviyo:${companyId}:`), {}, 'no call kept for a later page: none could send it');
  assertNoPageErrors(shop);
});

// compileStreaming takes exactly `application/wasm` (no parameter): with any other type, or
// in an engine without it, the bytes are compiled whole, from the one request.
for (const [what, type, noStreaming] of [
  ['application/octet-stream', 'application/octet-stream', false],
  ['application/wasm; charset=utf-8', 'application/wasm; charset=utf-8', false],
  ['application/wasm to an engine without compileStreaming', 'application/wasm', true],
]) {
  test(`a .wasm served as ${what}: compiled whole from one request, the tracker ready`, { timeout: TEST_TIMEOUT }, async (t) => {
    const companyId = nextCompanyId();
    const shop = await scenario(t);
    const wasm = await readFile(path.join(ROOT, 'dist/web/klaviyo_wasm_bg.wasm'));
    let served = 0;
    await shop.context.route('**/dist/web/klaviyo_wasm_bg.wasm', async (route) => {
      served += 1;
      await route.fulfill({ status: 200, body: wasm, headers: { 'content-type': type, 'cache-control': 'no-store' } });
    });
    if (noStreaming) await shop.context.addInitScript(() => { delete WebAssembly.compileStreaming; });
    const page = await openCreatePage(shop, { companyId });
    await page.waitForSelector('body[data-wasm]', { state: 'attached', timeout: 15_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.wasm), '1', `ready: ${await page.evaluate(() => window.initError)}`);
    assert.equal(served, 1, 'one request');
    const id = await page.evaluate(() => window.kl.track('Wrong Mime'));
    await delivered([id]);
    await shop.context.unrouteAll({ behavior: 'ignoreErrors' });
    assertNoPageErrors(shop);
  });
}

test('the inline build (klaviyo-wasm/inline): one file, no .wasm request, and its calls reach Klaviyo', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const wasmRequests = [];
  shop.context.on('request', (r) => { if (new URL(r.url()).pathname.endsWith('.wasm')) wasmRequests.push(r.url()); });
  const u = new URL('/tests/queue/create-inline.html', env.site.url);
  u.searchParams.set('companyId', companyId);
  u.searchParams.set('apiBase', env.emu.url);
  const page = await shop.context.newPage();
  await page.goto(u.href);
  await shop.ready(page);
  const first = await page.evaluate(() => window.kl.track('Inline Build', { n: 1 }));
  await page.waitForSelector('body[data-wasm]', { state: 'attached', timeout: 15_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.wasm), '1', `ready: ${await page.evaluate(() => window.initError)}`);
  const later = await page.evaluate(() => window.kl.track('Inline Build', { n: 2 }));
  const files = await page.evaluate(() => performance.getEntriesByType('resource')
    .map((e) => new URL(e.name).pathname).filter((p) => p.startsWith('/dist/web/')));
  assert.deepEqual(files, ['/dist/web/inline.js'], 'the package is one file');
  assert.deepEqual(wasmRequests, [], 'no .wasm was asked for');
  await delivered([first, later]);
  t.diagnostic(`files from the package: ${files.join(', ')}; wire: ${wireLine(summary())}`);
  assertNoPageErrors(shop);
});

test('the download starts when the package is evaluated; a tracker created later with its own wasmUrl aborts it and loads its own', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const wasm = await readFile(path.join(ROOT, 'dist/web/klaviyo_wasm_bg.wasm'));
  const asked = []; // which .wasm was asked, in order
  const aborted = [];
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  // The package's own .wasm is held, so the later tracker finds its download under way.
  await shop.context.route('**/dist/web/klaviyo_wasm_bg.wasm*', async (route) => {
    const own = new URL(route.request().url()).search === '?own=1';
    asked.push(own ? 'own' : 'beside');
    if (!own) await gate;
    await route.fulfill({ status: 200, body: wasm, headers: { 'content-type': 'application/wasm', 'cache-control': 'no-store' } })
      .catch(() => {}); // aborted by the page
  });
  shop.context.on('requestfailed', (r) => { if (r.url().includes('.wasm')) aborted.push(new URL(r.url()).search); });
  const page = await openCreatePage(shop, { companyId, createDelayMs: 20, wasmUrl: '/dist/web/klaviyo_wasm_bg.wasm?own=1' });
  await page.waitForSelector('body[data-wasm]', { state: 'attached', timeout: 15_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.wasm), '1', `ready: ${await page.evaluate(() => window.initError)}`);
  assert.deepEqual(asked, ['beside', 'own'], 'the package\'s .wasm was asked first (at evaluation), then the tracker\'s own');
  await waitFor(() => aborted.length === 1, { what: 'the download started ahead aborted' });
  assert.deepEqual(aborted, [''], 'the one aborted is the package\'s');
  release();
  const id = await page.evaluate(() => window.kl.track('Own Wasm'));
  await delivered([id]);
  await shop.context.unrouteAll({ behavior: 'ignoreErrors' });
  assertNoPageErrors(shop);
});
