// The consent gate, end to end: dist/web in Debian's Chromium against the
// Klaviyo emulator. Each transition of `consent` (create option and kl.setConsent), what
// reaches Klaviyo (counted by the emulator), what is on disk (localStorage read in the
// page) and what the page itself saw the library do (page.js records every storage
// write and every fetch to /client). Polls with deadlines, never fixed sleeps.
// Standalone: `bash .ci/build.sh && node --test --test-concurrency=1 tests/consent/`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../emulator/server.mjs';
import { launchChromium, waitFor } from '../support/browser.mjs';
import { serveRepo } from '../support/static.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TEST_TIMEOUT = 60_000;
let emu, site, browser;

/** Serves this folder and dist/web/ from the repo, never cached. */
const startSite = () => serveRepo(['/tests/consent/', '/tests/support/', '/dist/web/']);

before(async () => {
  if (!existsSync(path.join(ROOT, 'dist/web/index.js'))) throw new Error('dist/web is missing: run `bash .ci/build.sh` first');
  emu = await startEmulator({ port: 0 });
  site = await startSite();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close().catch(() => {});
  await site?.close();
  await emu?.close();
});

// Each scenario its own shop id: no storage key or profile leaks from one to another.
let shopNo = 0;
const nextCompanyId = () => `CoN${String(++shopNo).padStart(3, '0')}`;
const prefix = (companyId) => `klaviyo:${companyId}:`;

/** A fresh emulator and browser context (its pages are tabs of one shop). */
async function shop(t) {
  emu.reset();
  const context = await browser.newContext();
  const errors = [];
  context.on('page', (p) => p.on('pageerror', (e) => errors.push(e.message)));
  t.after(async () => {
    await context.close().catch(() => {});
    assert.deepEqual(errors, [], 'no uncaught exception in any page');
  });
  return context;
}

/** Opens the page in a new tab; waits for its core too unless `wasm: false`. */
async function open(context, { wasm = true, ...opts }) {
  const u = new URL('/tests/consent/page.html', site.url);
  u.searchParams.set('apiBase', emu.url);
  for (const [k, v] of Object.entries(opts)) u.searchParams.set(k, String(v));
  const page = await context.newPage();
  await page.goto(u.href);
  await ready(page, wasm);
  return page;
}

async function ready(page, wasm = true) {
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
  if (await page.evaluate(() => document.body.dataset.ready) !== '1') {
    throw new Error(`the page did not start: ${await page.evaluate(() => window.initError)}`);
  }
  if (wasm) {
    await page.waitForSelector('body[data-wasm]', { state: 'attached', timeout: 15_000 });
    const state = await page.evaluate(() => document.body.dataset.wasm);
    if (state !== '1') throw new Error(`the tracker did not start: ${await page.evaluate(() => window.initError)}`);
  }
  return page;
}

/** What a denial leaves of ours: its time (for a page of the shop in the back/forward
 * cache, which hears no storage event). */
const afterDenial = (companyId) => [`${prefix(companyId)}denied`];

/** Our localStorage entries (`klaviyo:<companyId>:*`), read in the page. */
function onDisk(page, companyId) {
  return page.evaluate((p) => Object.keys(localStorage).filter((k) => k.startsWith(p)).sort(), prefix(companyId));
}

/** What the page stored (setItem) under our prefix, from its `from`-th storage call on.
 * (Removing a key stores nothing: the library removes its loading-window key whatever
 * the consent, and a denial removes everything.) */
async function writes(page, companyId, from = 0) {
  const all = await page.evaluate(() => window.writes);
  return all.slice(from).filter(([op, k]) => op !== 'remove' && (k === null || k.startsWith(prefix(companyId))));
}
const writeCount = (page) => page.evaluate(() => window.writes.length);
const sentCount = (page) => page.evaluate(() => window.sent.length);
const reports = (page) => page.evaluate(() => window.reports);
const consentReports = async (page) => (await reports(page)).filter((r) => r.kind === 'consent');

/** Klaviyo answers 503 with Retry-After 60 s from now on: calls stay queued on disk (the
 * first attempt reaches the emulator and is refused; the next is a minute away). More
 * deterministic than an offline context, whose `offline` event may reach the page after
 * its next call. */
const unavailable = () => emu.addFault({ status: 503, retryAfter: 60, count: 1_000_000 });

/** Tracks in the page; returns the unique_ids. */
function track(page, n, metric = 'Consent Test') {
  return page.evaluate(({ n, metric }) => {
    const ids = [];
    for (let i = 0; i < n; i += 1) ids.push(window.kl.track(metric, { n: i }));
    return ids;
  }, { n, metric });
}

/** kl.flush() in the page: resolves once its send loop has nothing left to do now. */
const flush = (page) => page.evaluate(() => window.kl.flush());

/** Waits until every id was accepted by the emulator at least once; returns the summary. */
function delivered(ids, what = `${ids.length} events accepted`) {
  return waitFor(() => {
    const s = emu.requests();
    return ids.every((id) => s.uniqueIdCounts[id] >= 1) && s;
  }, { timeout: 20_000, what, interval: 50 });
}

/** Events inside the accepted requests: {uid, time}. */
function acceptedEvents(s) {
  return s.requests.filter((r) => r.accepted).flatMap((r) => {
    const a = r.body?.data?.attributes;
    if (r.path === '/client/events') return [{ uid: a?.unique_id, time: a?.time }];
    if (r.path === '/client/event-bulk-create') return (a?.events?.data ?? []).map((e) => ({ uid: e.attributes.unique_id, time: e.attributes.time }));
    return [];
  });
}

// ---------------------------------------------------------------------------

test('pending then granted: nothing on disk or sent while pending, then each call is sent once with its original time', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const page = await open(await shop(t), { companyId, consent: 'pending' });
  assert.equal(await page.evaluate(() => window.kl.consent), 'pending');

  const before = await page.evaluate(() => Date.now());
  const ids = await track(page, 3, 'Held');
  const tracked = await page.evaluate(() => Date.now());
  await page.evaluate(() => window.kl.identify({ email: 'ann@example.com' }));
  // Bad input still throws, exactly as when granted.
  const bad = await page.evaluate(() => { try { window.kl.track(7); return null; } catch (e) { return e.message; } });
  assert.equal(bad, 'track: metric must be a string');
  assert.deepEqual(await flush(page), { sent: 0, failed: 0, pending: 4 });
  assert.equal(await page.evaluate(() => window.kl.pending()), 4, 'held in memory');
  assert.deepEqual(await onDisk(page, companyId), [], 'nothing on disk, not even the anonymous id');
  assert.deepEqual(await writes(page, companyId), [], 'and nothing was ever written');
  assert.equal(await sentCount(page), 0, 'nothing sent');
  assert.equal(emu.requests().count, 0);

  // Let the clock pass a second, so a time stamped at the grant would differ.
  await waitFor(() => page.evaluate((t0) => Date.now() >= t0 + 1100, tracked), { what: 'a second to pass' });
  await page.evaluate(() => window.kl.setConsent('granted'));
  assert.equal(await page.evaluate(() => window.kl.consent), 'granted');
  const s = await delivered(ids);
  await waitFor(() => emu.requests({ path: '/client/profiles' }).accepted === 1, { what: 'the profile accepted' });
  const events = acceptedEvents(s).filter((e) => ids.includes(e.uid));
  assert.equal(events.length, 3);
  // Klaviyo's time is in whole seconds: the call's own second, between before and tracked.
  const second = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  for (const e of events) {
    assert.ok(e.time >= second(before) && e.time <= second(tracked), `the call's own time: ${e.time} in ${second(before)}..${second(tracked)}`);
  }
  await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0, { what: 'the queue drained' });
  assert.deepEqual(await onDisk(page, companyId), [`${prefix(companyId)}id`], 'the identity is stored once granted');
  const after = emu.requests();
  assert.equal(after.duplicateUniqueIds, 0, 'each sent once');
  assert.equal(after.acceptedUniqueIds, 3);
  assert.deepEqual(await reports(page), []);
});

test('pending then denied: nothing sent, nothing on disk, onError hears kind consent once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const page = await open(await shop(t), { companyId, consent: 'pending' });
  await track(page, 3, 'Held');
  await page.evaluate(() => window.kl.setConsent('denied'));
  assert.equal(await page.evaluate(() => window.kl.consent), 'denied');
  assert.equal(await page.evaluate(() => window.kl.pending()), 0, 'the held calls are dropped');
  assert.equal(await page.evaluate(() => window.kl.anonymousId), null, 'and the identity forgotten');
  // Later calls: validated (bad ones still throw), then dropped without throwing.
  const later = await page.evaluate(async () => {
    const out = { id: window.kl.track('Later') };
    try { window.kl.track(''); } catch (e) { out.bad = e.message; }
    await window.kl.identify({ email: 'ann@example.com' });
    await window.kl.subscribe({ listId: 'Y6nRLr', channels: ['email'] }).catch((e) => { out.subscribe = e.message; });
    return out;
  });
  assert.match(later.bad, /^track: metric /);
  assert.equal(later.subscribe, 'subscribe: email is required to subscribe to this channel');
  await flush(page);
  assert.equal(await sentCount(page), 0, 'nothing sent');
  assert.equal(emu.requests().count, 0);
  assert.deepEqual(await onDisk(page, companyId), afterDenial(companyId), 'nothing on disk');
  // The only writes: the time of the denial, the marker that tells other tabs (removed
  // at once) and the erasure's. The time first: a tab that hears the marker late reads it
  // there (Chromium hands a frozen page the writes made meanwhile one by one).
  const w = await writes(page, companyId);
  assert.deepEqual(w.filter(([op]) => op === 'set'), [['set', `${prefix(companyId)}denied`], ['set', `${prefix(companyId)}consent`]]);
  assert.deepEqual(await consentReports(page), [{ kind: 'consent', count: 3, message: 'klaviyo: consent is denied; calls are dropped, nothing is stored or sent' }]);
});

test('granted then denied: our storage is erased, later calls are not sent, onError kind consent once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const page = await open(context, { companyId });
  assert.equal(await page.evaluate(() => window.kl.consent), 'granted', 'the default');
  const first = await track(page, 1, 'Before');
  await delivered(first);
  // Klaviyo unavailable: calls stay queued on disk, so there is something to erase.
  unavailable();
  await track(page, 3, 'Queued');
  await page.evaluate(() => window.kl.identify({ email: 'ann@example.com' }));
  await waitFor(() => emu.requests().rejected >= 1, { what: 'the first attempt refused' });
  const stored = await onDisk(page, companyId);
  assert.ok(stored.includes(`${prefix(companyId)}id`) && stored.some((k) => k.includes(':q:')), `queued on disk: ${stored}`);
  await page.evaluate(() => localStorage.setItem('shop:cart', 'theirs'));

  const erased = await page.evaluate(() => {
    window.kl.setConsent('denied');
    return Object.entries(localStorage); // at once, in the same task
  });
  const ours = erased.filter(([k]) => k.startsWith('klaviyo:'));
  assert.deepEqual(ours.map(([k]) => k), afterDenial(companyId), 'our keys erased at once, but for the time of the denial');
  // (Kept for a page of the shop in the back/forward cache, which hears no storage event.)
  assert.match(ours[0][1], /^\d{13}$/, 'a time, nothing of the visitor');
  assert.ok(erased.some(([k]) => k === 'shop:cart'), 'the shop\'s own keys are not ours to erase');
  const sent0 = await sentCount(page);
  const writes0 = await writeCount(page);
  emu.clearFaults();
  const later = await track(page, 2, 'After');
  await flush(page);
  assert.equal(await sentCount(page), sent0, 'nothing sent after the denial');
  assert.deepEqual(await writes(page, companyId, writes0), [], 'nothing written after the denial');
  assert.deepEqual(await onDisk(page, companyId), afterDenial(companyId));
  assert.equal(await page.evaluate(() => window.kl.pending()), 0);
  const s = emu.requests();
  assert.deepEqual(Object.keys(s.uniqueIdCounts), first, 'Klaviyo got only the call made before the denial');
  assert.equal(later.length, 2, 'the calls still return their ids');
  assert.deepEqual((await consentReports(page)).map((r) => r.count), [4], 'once, for the 4 queued calls');
});

test('denied at init: what an earlier page stored is erased; calls are validated, then dropped without throwing', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  // An earlier granted page leaves a queue (Klaviyo unavailable), an identity and a
  // loading-window key.
  const earlier = await open(context, { companyId });
  unavailable();
  await track(earlier, 2, 'Earlier');
  await waitFor(() => emu.requests().rejected >= 1, { what: 'the first attempt refused' });
  await earlier.evaluate((p) => {
    localStorage.setItem(`${p}pre:closed-page`, JSON.stringify([1, 2, '["x",1,"Pre"]']));
    localStorage.setItem(`${p}lease`, 'tab 1');
    localStorage.setItem('klaviyo:OtHer1:id', 'another shop');
  }, prefix(companyId));
  assert.ok((await onDisk(earlier, companyId)).length >= 4);
  await earlier.close();
  emu.reset(); // records and faults

  const page = await open(context, { companyId, consent: 'denied' });
  assert.equal(await page.evaluate(() => window.kl.consent), 'denied');
  assert.deepEqual(await onDisk(page, companyId), afterDenial(companyId), 'every key of ours erased, the time of the denial kept');
  assert.equal(await page.evaluate(() => localStorage.getItem('klaviyo:OtHer1:id')), 'another shop', 'another shop\'s are not ours');
  const out = await page.evaluate(async () => {
    const r = {};
    try { window.kl.addedToCart({ ProductID: '1', ProductName: 'P' }); } catch (e) { r.bad = e.message; }
    r.id = window.kl.track('Dropped');
    await window.kl.identify({ email: 'ann@example.com' });
    r.flush = await window.kl.flush();
    return r;
  });
  assert.equal(out.bad, 'addedToCart: Price is required and must be a number');
  assert.equal(typeof out.id, 'string');
  assert.deepEqual(out.flush, { sent: 0, failed: 0, pending: 0 });
  assert.equal(await sentCount(page), 0);
  assert.equal(emu.requests().count, 0, `neither the earlier queue nor the new calls reached Klaviyo: ${JSON.stringify(emu.requests().requests.map((r) => [r.path, r.uniqueIds, r.at]))}`);
  assert.deepEqual(await onDisk(page, companyId), afterDenial(companyId));
  assert.deepEqual((await consentReports(page)).map((r) => r.count), [1], 'once');
});

test('a reload while pending: nothing on disk, nothing sent, and nothing survives it', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  let page = await open(context, { companyId, consent: 'pending' });
  const held = await track(page, 3, 'Held');
  await page.evaluate(() => window.kl.identify({ email: 'ann@example.com' }));
  await page.reload();
  page = await ready(page);
  assert.equal(await page.evaluate(() => window.kl.consent), 'pending');
  assert.equal(await page.evaluate(() => window.kl.pending()), 0, 'nothing came back from disk');
  await track(page, 1, 'Held again');
  await flush(page);
  assert.deepEqual(await onDisk(page, companyId), []);
  assert.deepEqual(await writes(page, companyId), []);
  assert.equal(await sentCount(page), 0);
  assert.equal(emu.requests().count, 0);
  // Granted on this page: its own held call goes; the ones of the page before are gone.
  await page.evaluate(() => window.kl.setConsent('granted'));
  const after = await track(page, 1, 'After');
  const s = await delivered(after);
  assert.equal(s.acceptedUniqueIds, 2, '"Held again" and "After" only');
  assert.ok(held.every((id) => !s.uniqueIdCounts[id]));
});

test('withdrawal in another tab: the other tab stops sending and writing; a later granted tab still sends', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const a = await open(context, { companyId }); // opened first: the sender
  const b = await open(context, { companyId });
  const before = [...await track(a, 1, 'A before'), ...await track(b, 1, 'B before')];
  await delivered(before);
  unavailable();
  const queued = await track(a, 2, 'A queued');
  await waitFor(async () => (await onDisk(b, companyId)).some((k) => k.includes(':q:')), { what: 'A\'s calls on disk' });

  await b.evaluate(() => window.kl.setConsent('denied'));
  await waitFor(() => a.evaluate(() => window.kl.consent === 'denied'), { what: 'tab A to follow the withdrawal' });
  assert.equal(await a.evaluate(() => window.kl.pending()), 0, 'A dropped its queue');
  assert.equal(await a.evaluate(() => window.kl.anonymousId), null);
  assert.deepEqual(await onDisk(a, companyId), afterDenial(companyId), 'nothing left on disk');
  assert.deepEqual((await consentReports(a)).map((r) => r.count), [2], 'A heard of it once');

  const sentA = await sentCount(a);
  const writesA = await writeCount(a);
  emu.clearFaults();
  const later = await track(a, 2, 'A later');
  await a.evaluate(() => window.kl.identify({ email: 'ann@example.com' }));
  await flush(a);
  assert.equal(await sentCount(a), sentA, 'A sends nothing more');
  assert.deepEqual(await writes(a, companyId, writesA), [], 'A writes nothing more');
  assert.deepEqual((await consentReports(a)).length, 1, 'still once');

  // A new page granted by its own consent manager: the denied tabs hold no sender lock.
  const c = await open(context, { companyId });
  const fromC = await track(c, 1, 'C');
  const s = await delivered(fromC, 'tab C\'s call accepted');
  for (const id of [...queued, ...later]) assert.ok(!s.uniqueIdCounts[id], 'nothing of A\'s after the withdrawal');
  assert.deepEqual(await writes(a, companyId, writesA), [], 'A ignored C\'s writes');
  assert.equal(await a.evaluate(() => window.kl.pending()), 0);
});

test('a pending tab does not take the sender role from a granted one', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const pending = await open(context, { companyId, consent: 'pending' }); // first, so it would win the lock
  const granted = await open(context, { companyId });
  const ids = await track(granted, 3, 'Granted tab');
  await delivered(ids);
  await track(pending, 1, 'Pending tab');
  await flush(pending);
  assert.equal(await sentCount(pending), 0);
  assert.deepEqual(await writes(pending, companyId), [], 'the pending tab wrote nothing (no lease either)');
  // Granted later, it joins: its held call goes (through whichever tab sends).
  const held = await pending.evaluate(() => window.kl.track('Pending tab, granted'));
  await pending.evaluate(() => window.kl.setConsent('granted'));
  await delivered([held]);
});

test('the loading window: pending keeps the calls made before the wasm off disk (granted saves them under pre:)', { timeout: TEST_TIMEOUT }, async (t) => {
  const context = await shop(t);
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const wasm = await readFile(path.join(ROOT, 'dist/web/klaviyo_wasm_bg.wasm'));
  await context.route('**/dist/web/klaviyo_wasm_bg.wasm', async (route) => {
    await gate;
    await route.fulfill({ status: 200, body: wasm, headers: { 'content-type': 'application/wasm' } }).catch(() => {});
  });
  const pendingCo = nextCompanyId(), grantedCo = nextCompanyId(), deniedCo = nextCompanyId();
  const pending = await open(context, { companyId: pendingCo, consent: 'pending', early: 3, wasm: false });
  const granted = await open(context, { companyId: grantedCo, early: 3, wasm: false });
  // Withdrawn before the wasm is there: its calls are dropped once the core runs.
  const denied = await open(context, { companyId: deniedCo, early: 2, wasm: false });
  await denied.evaluate(() => window.kl.setConsent('denied'));
  assert.equal(await denied.evaluate(() => window.kl.consent), 'denied');

  // The control: a granted page keeps its loading-window calls under pre:.
  await waitFor(async () => (await onDisk(granted, grantedCo)).some((k) => k.includes(':pre:')), { what: 'the granted page\'s pre: key' });
  assert.equal(await pending.evaluate(() => document.body.dataset.wasm), undefined, 'still loading');
  assert.equal(await pending.evaluate(() => window.kl.pending()), 3);
  assert.deepEqual(await onDisk(pending, pendingCo), [], 'no pre: key while pending');
  assert.deepEqual(await writes(pending, pendingCo), []);
  // Its pre: key while granted; then the denial's time and the marker that tells the
  // other tabs (erased with the rest at once).
  const deniedPre = (await writes(denied, deniedCo)).filter(([op]) => op === 'set');
  assert.deepEqual(deniedPre.map(([, k]) => k.split(':')[2]), ['pre', 'denied', 'consent'], 'granted until withdrawn, then the time of the denial and its marker');
  assert.deepEqual(await onDisk(denied, deniedCo), afterDenial(deniedCo), 'its pre: key went with the withdrawal');

  release();
  await Promise.all([ready(pending), ready(granted), ready(denied)]);
  assert.equal(await pending.evaluate(() => window.kl.pending()), 3, 'held by the core');
  assert.deepEqual(await onDisk(pending, pendingCo), []);
  assert.deepEqual(await writes(pending, pendingCo), []);
  assert.equal(await sentCount(pending), 0);
  assert.equal(await sentCount(denied), 0);
  assert.deepEqual((await consentReports(denied)).map((r) => r.count), [2], 'the two dropped calls, reported once');
  const early = await pending.evaluate(() => window.earlyIds);
  await pending.evaluate(() => window.kl.setConsent('granted'));
  const s = await delivered([...early, ...await granted.evaluate(() => window.earlyIds)]);
  assert.equal(s.duplicateUniqueIds, 0);
  assert.deepEqual(await onDisk(denied, deniedCo), afterDenial(deniedCo));
});

/** Opens the consent page in a new tab whose wasm waits for `release()` (other tabs of the
 * context get theirs at once); `fail: true` answers it with a 404 instead. */
async function openLoading(context, { fail = false, noLocks = false, ...opts }) {
  const page = await context.newPage();
  // As in an engine without Web Locks: the tabs choose the sender by a lease in storage.
  if (noLocks) await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined }));
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const wasm = await readFile(path.join(ROOT, 'dist/web/klaviyo_wasm_bg.wasm'));
  await page.route('**/dist/web/klaviyo_wasm_bg.wasm', async (route) => {
    if (fail) return route.fulfill({ status: 404, body: 'gone' });
    await gate;
    await route.fulfill({ status: 200, body: wasm, headers: { 'content-type': 'application/wasm' } }).catch(() => {});
  });
  const u = new URL('/tests/consent/page.html', site.url);
  u.searchParams.set('apiBase', emu.url);
  for (const [k, v] of Object.entries(opts)) u.searchParams.set(k, String(v));
  await page.goto(u.href);
  await ready(page, false);
  return { page, release: () => { release(); return ready(page); } };
}

/** Asserts that none of `ids` reached Klaviyo, once `sent` (ids of later calls of the same
 * queue, so sent after them) were accepted. */
async function neverSent(ids, sent, what) {
  const s = await delivered(sent, `${what}: the later calls accepted`);
  for (const id of ids) assert.equal(s.uniqueIdCounts[id], undefined, `${what}: ${id} was sent`);
  assert.equal(s.duplicateUniqueIds, 0);
}

test('the loading window: a call made while denied, or before a withdrawal, is not sent after a later grant', { timeout: TEST_TIMEOUT }, async (t) => {
  const context = await shop(t);
  const deniedCo = nextCompanyId(), withdrawnCo = nextCompanyId();
  // Denied at create, two calls, then granted: only what follows the grant goes.
  const denied = await openLoading(context, { companyId: deniedCo, consent: 'denied', early: 2 });
  // Granted, two calls, withdrawn, granted again, as a consent manager may do.
  const withdrawn = await openLoading(context, { companyId: withdrawnCo, early: 2 });
  await withdrawn.page.evaluate(() => { window.kl.setConsent('denied'); window.kl.setConsent('granted'); });
  const after = {};
  for (const [name, { page }] of Object.entries({ denied, withdrawn })) {
    if (name === 'denied') await page.evaluate(() => window.kl.setConsent('granted'));
    after[name] = await track(page, 1, 'After The Grant');
    assert.equal(await page.evaluate(() => window.kl.pending()), 1, `${name}: only the call after the grant is pending`);
  }
  // Only the call after the grant is saved for a later page (the wasm is still loading).
  for (const [co, { page }] of [[deniedCo, denied], [withdrawnCo, withdrawn]]) {
    const stored = await page.evaluate((p) => Object.entries(localStorage).filter(([k]) => k.startsWith(p) && k !== `${p}denied`), prefix(co));
    assert.equal(stored.length, 1);
    assert.match(stored[0][0], /:pre:/);
    const saved = JSON.parse(stored[0][1]);
    assert.equal(saved.length, 3, 'one call saved');
    assert.equal(JSON.parse(saved[2])[0], after[co === deniedCo ? 'denied' : 'withdrawn'][0]);
  }

  await Promise.all([denied.release(), withdrawn.release()]);
  const early = [...await denied.page.evaluate(() => window.earlyIds), ...await withdrawn.page.evaluate(() => window.earlyIds)];
  await neverSent(early, [...after.denied, ...after.withdrawn], 'granted after a denial');
  // Reported once per denial, with the calls it dropped then: the first call made while
  // denied, or the two held when consent was withdrawn (src/core/queue/).
  for (const [{ page }, count] of [[denied, 1], [withdrawn, 2]]) {
    assert.deepEqual((await consentReports(page)).map((r) => r.count), [count], 'once');
    assert.equal(await page.evaluate(() => window.kl.consent), 'granted');
  }
});

test('the loading window: a denial erases all we stored at once and tells the other tabs, even when the wasm never loads', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const running = await open(context, { companyId });
  unavailable();
  await track(running, 2, 'Queued');
  await waitFor(async () => (await onDisk(running, companyId)).some((k) => k.includes(':q:')), { what: 'the queued calls on disk' });
  const { page } = await openLoading(context, { companyId, early: 1, fail: true });
  await page.waitForSelector('body[data-wasm="error"]', { state: 'attached' });
  assert.ok((await onDisk(page, companyId)).some((k) => k.includes(':pre:')), 'its call saved for a later page');

  await page.evaluate(() => window.kl.setConsent('denied'));
  assert.deepEqual(await onDisk(page, companyId), afterDenial(companyId), 'the identity, the queue and the window erased at once');
  await waitFor(() => running.evaluate(() => window.kl.consent === 'denied'), { what: 'the running tab to follow the withdrawal' });
  assert.equal(await running.evaluate(() => window.kl.pending()), 0);
  assert.deepEqual(await onDisk(running, companyId), afterDenial(companyId));
});

test('the loading window: a tab whose wasm is still loading follows another tab\'s withdrawal', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const loading = await openLoading(context, { companyId, early: 2 });
  const running = await open(context, { companyId });
  await running.evaluate(() => window.kl.setConsent('denied'));
  await waitFor(() => loading.page.evaluate(() => window.kl.consent === 'denied'), { what: 'the loading tab to follow the withdrawal' });
  assert.equal(await loading.page.evaluate(() => window.kl.pending()), 0);
  assert.deepEqual(await onDisk(loading.page, companyId), afterDenial(companyId), 'its window\'s key went with the erasure');
  // Its own consent manager grants again: only what follows is sent.
  await loading.page.evaluate(() => window.kl.setConsent('granted'));
  const after = await track(loading.page, 1, 'After The Grant');
  await loading.release();
  await neverSent(await loading.page.evaluate(() => window.earlyIds), after, 'withdrawn by another tab');
  assert.deepEqual((await consentReports(loading.page)).map((r) => r.count), [2], 'the two dropped calls, reported once');
  assert.equal(await running.evaluate(() => window.kl.consent), 'denied', 'the replay did not tell the other tab again');
});

test('the loading window: the denial, replayed once the wasm loads, erases nothing that later tabs stored since', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  // Denied at create: told and erased at once, while its wasm still loads.
  const denied = await openLoading(context, { companyId, consent: 'denied', early: 1 });
  // Then a granted tab queues two calls (Klaviyo unavailable: they stay on disk), and a
  // third tab, still loading, saves its window for a later page.
  const running = await open(context, { companyId });
  unavailable();
  await track(running, 2, 'Queued Since');
  const loading = await openLoading(context, { companyId, early: 1 });
  const theirs = (keys) => keys.some((k) => k.includes(':q:')) && keys.some((k) => k.includes(':pre:'));
  await waitFor(async () => theirs(await onDisk(denied.page, companyId)), { what: 'the denied tab to see the others\' keys' });
  const before = await onDisk(denied.page, companyId);

  await denied.release();
  await flush(denied.page); // the replay's storage writes are made by now
  assert.deepEqual(await onDisk(denied.page, companyId), before, 'the later tabs\' queue, identity and window stay');
  assert.deepEqual((await consentReports(denied.page)).map((r) => r.count), [1], 'its own call, reported once');
  assert.equal(await denied.page.evaluate(() => window.kl.pending()), 0);
  assert.equal(await running.evaluate(() => window.kl.consent), 'granted', 'the others are not told again');
  assert.equal(await running.evaluate(() => window.kl.pending()), 2);
  assert.equal(await loading.page.evaluate(() => window.kl.pending()), 1, 'the loading tab\'s window is not taken for adopted');
});

test('the loading window: a call the shop makes from onError while the window is replayed is sent, in its place', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const { page, release } = await openLoading(context, { companyId, echo: 1 });
  // Refused by the core only when it replays the window: onError hears it then.
  const ids = await page.evaluate(() => { window.kl.track(7); return [window.kl.track('After The Bad One', {})]; });
  await release();
  const echo = await page.evaluate(() => window.echoIds);
  assert.equal(echo.length, 1, 'onError heard the refused call and tracked');
  await delivered([...ids, ...echo], 'the window\'s call and the one made from onError');
});

test('a tracker whose wasm failed stops listening once closed: another tab\'s later denial writes nothing in its page', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const { page } = await openLoading(context, { companyId, early: 1, fail: true });
  await page.waitForSelector('body[data-wasm="error"]', { state: 'attached' });
  await page.evaluate(() => {
    window.kl.close();
    window.heard = 0;
    // Added after the library's listener: it runs after it, for the same event.
    addEventListener('storage', (e) => { if (e.key?.endsWith(':consent')) window.heard += 1; });
  });
  const before = await writeCount(page);
  const running = await open(context, { companyId });
  await running.evaluate(() => window.kl.setConsent('denied'));
  await waitFor(() => page.evaluate(() => window.heard > 0), { what: 'the closed page to hear the denial' });
  assert.equal(await writeCount(page), before, 'no erasure, no save: it no longer listens');
});

test('the loading window without Web Locks: a page denied while loading stores nothing once its wasm runs (the lease waits for the replay)', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const { page, release } = await openLoading(context, { companyId, early: 1, noLocks: true });
  await page.evaluate(() => window.kl.setConsent('denied'));
  await release();
  await flush(page);
  assert.deepEqual(await onDisk(page, companyId), afterDenial(companyId), 'no identity, no lease, no queue');
  assert.equal(await page.evaluate(() => window.sent.length), 0, 'nothing sent');
});

test('options and consent values are checked by name: create() throws (init() rejects) on options that are no object or a bad consent, setConsent on a bad state', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const context = await shop(t);
  const page = await open(context, { companyId, init: 0, wasm: false });
  const out = await page.evaluate(async (apiBase) => {
    const { Klaviyo } = await import('/dist/web/index.js');
    const r = {};
    await Klaviyo.init({ companyId: 'CoNbad', apiBase, consent: 'yes' }).catch((e) => { r.init = e.message; });
    try { Klaviyo.create({ companyId: 'CoNbad', apiBase, consent: 'Denied' }); } catch (e) { r.create = e.message; }
    try { Klaviyo.create(null); } catch (e) { r.none = e.message; }
    await Klaviyo.init('CoNbad').catch((e) => { r.text = e.message; });
    const kl = await Klaviyo.init({ companyId: 'CoNok1', apiBase, consent: 'pending' });
    try { kl.setConsent('Granted'); } catch (e) { r.set = e.message; }
    r.still = kl.consent;
    return r;
  }, emu.url);
  assert.deepEqual(out, {
    init: 'init: consent must be "pending", "granted" or "denied"',
    create: 'init: consent must be "pending", "granted" or "denied"',
    none: 'init: options must be an object',
    text: 'init: options must be an object',
    set: 'setConsent: consent must be "pending", "granted" or "denied"',
    still: 'pending',
  });
});
