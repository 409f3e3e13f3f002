// A page put in the back/forward cache, or frozen, runs nothing until it is back. The
// tab that sends for the shop must not keep the sender's Web Lock meanwhile: the shop's
// other tabs would send nothing for as long (Chromium keeps a cached page ten minutes),
// and a page holding a lock is evicted from the cache when another page of the shop
// asks for it (every back navigation in the shop a full reload). Chromium with its
// back/forward cache on (Playwright turns it off by default), pages served cacheable.
// Standalone: `node --test tests/queue/lifecycle.test.mjs` (needs a built dist/web).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import { startEmulator } from '../emulator/server.mjs';
import { serveRepo } from '../support/static.mjs';
import { launchChromium, spawnChromium } from '../support/browser.mjs';
import { waitFor, isBuilt } from './harness.mjs';

const TIMEOUT = 60_000;
let emu, site, browser, n = 0;
/** Downloads held until a test lets them go: `?hold=NAME` on a file's URL waits for
 * `holds.get(NAME)` (a promise) before it is answered. */
const holds = new Map();

before(async () => {
  assert.ok(isBuilt(), 'dist/web is missing: run `bash .ci/build.sh` first');
  emu = await startEmulator({ port: 0 });
  site = await serveRepo(['/tests/queue/', '/dist/web/'], { cacheControl: 'no-cache', delayFor: (url) => holds.get(url.searchParams.get('hold')) });
  browser = await launchChromium([], { ignoreDefaultArgs: ['--disable-back-forward-cache'] });
});
after(async () => {
  await browser?.close();
  await site?.close();
  await emu?.close();
});

/** A shop of its own: its page's URL (`url(extra)`), a page of it in `context` once its
 * tracker is ready, what Klaviyo accepted, and an expression listing the shop's keys in
 * a page's storage (`keys`). */
function shop() {
  const companyId = `LiF${String(++n).padStart(3, '0')}`;
  const url = (extra = '') => `${site.url}/tests/queue/create.html?companyId=${companyId}&apiBase=${encodeURIComponent(emu.url)}${extra}`;
  const open = async (page, extra) => {
    await page.goto(url(extra));
    await page.waitForSelector('body[data-wasm="1"]', { state: 'attached' });
    return page;
  };
  const accepted = (id) => emu.requests({ companyId }).uniqueIdCounts[id] ?? 0;
  const keys = `Object.keys(localStorage).filter((k) => k.startsWith("klaviyo:${companyId}:")).sort()`;
  return { companyId, url, open, accepted, keys };
}

/** A shop of its own and a Chromium driven over the DevTools protocol (closed with `t`). */
async function shopWithDevTools(t) {
  const chrome = await rawChromium();
  t.after(() => chrome.close());
  return { s: shop(), chrome };
}

/** While `frozen` is frozen, `other` denies, grants again and tracks (Klaviyo down: its
 * call stays stored); then `frozen` resumes, follows the denial and runs the tasks
 * queued meanwhile (the storage events among them). The shop's keys `other` left. */
async function changeOfMindWhileFrozen(s, frozen, other) {
  await other.eval('window.kl.setConsent("denied"), window.kl.setConsent("granted"), window.kl.track("After The Grant")');
  const written = await other.eval(s.keys);
  assert.ok(written.some((k) => k.endsWith(':id')) && written.some((k) => k.includes(':q:')), `the other tab's visitor and call stored: ${written}`);
  await frozen.lifecycle('active');
  await waitFor(() => frozen.eval('window.kl.consent === "denied"'), { what: 'the resumed tab to follow the denial' });
  await frozen.eval('new Promise((r) => setTimeout(r))');
  return written;
}

/** An expression that makes a page record every request it makes (`window.asked`). */
const RECORD_REQUESTS = 'window.asked = [], window.fetch = ((f) => (u, i) => (window.asked.push(`${i?.method ?? "GET"} ${u}`), f(u, i)))(window.fetch)';

/** Another site than the shop's (another host: a cross-site navigation). */
const elsewhere = () => site.url.replace('127.0.0.1', 'localhost') + '/tests/queue/elsewhere.html';

/** Freezes `tab` (a rawChromium tab of the shop's create.html) and waits, from `other`,
 * for its freeze event to have run: the DevTools command returns before it does, and a
 * denial made in between is heard by a page not yet frozen (its erase, a few
 * milliseconds late, takes a grant made in the same task: not what these tests test). */
async function freeze(tab, other, companyId) {
  await tab.lifecycle('frozen');
  await waitFor(() => other.eval(`localStorage.getItem("frozen:${companyId}") !== null`), { what: 'the tab\'s freeze event' });
}

/** Marks the page's JS world: still marked after going back = restored from the cache. */
const mark = (page) => page.evaluate(() => { window.keptInCache = true; });
const restored = (page) => page.evaluate(() => window.keptInCache === true);

test('the sending tab put in the back/forward cache lets another tab of the shop send at once; back, each call goes once', { timeout: TIMEOUT }, async (t) => {
  const s = shop();
  const context = await browser.newContext();
  t.after(() => context.close());
  const first = await s.open(await context.newPage()); // the first tab takes the lock: it sends
  const second = await s.open(await context.newPage());
  await mark(first);
  await first.goto(elsewhere()); // cached, not unloaded
  const id = await second.evaluate(() => window.kl.track('While The First Tab Is Cached'));
  // Before, the cached tab kept the lock: nothing went until it came back or Chromium
  // dropped it from the cache, ten minutes later.
  await waitFor(() => s.accepted(id) >= 1, { what: 'the second tab\'s call sent while the first is cached' });

  await first.goBack({ waitUntil: 'commit' });
  assert.equal(await restored(first), true, 'the first tab came back from the back/forward cache');
  // Back, it stands again beside the other: with Klaviyo failing twice (the calls stay
  // queued and go again), each call of either tab is accepted once.
  emu.addFault({ path: '/client/', status: 503, count: 2, name: 'failing' });
  const ids = [
    await first.evaluate(() => window.kl.track('First Tab Back')),
    await second.evaluate(() => window.kl.track('Second Tab')),
  ];
  await waitFor(() => ids.every((i) => s.accepted(i) >= 1), { timeout: 20_000, what: 'both calls accepted' });
  await waitFor(async () => (await first.evaluate(() => window.kl.pending())) === 0 && (await second.evaluate(() => window.kl.pending())) === 0, { what: 'nothing pending' });
  assert.deepEqual([id, ...ids].map(s.accepted), [1, 1, 1], 'each accepted once');
});

test('a page of the shop left for another of its pages is restored from the back/forward cache when the visitor goes back, and sends there', { timeout: TIMEOUT }, async (t) => {
  const s = shop();
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await s.open(await context.newPage());
  await mark(page);
  await s.open(page, '&next=1'); // the next page asks for the lock the first one held
  await page.goBack({ waitUntil: 'commit' });
  // Before, the lock it held got it evicted (Chromium's "WebLocksContention"): the visitor
  // waited for a full reload of every page they went back to.
  assert.equal(await restored(page), true, 'restored from the back/forward cache');
  const id = await page.evaluate(() => window.kl.track('Back On The First Page'));
  await waitFor(() => s.accepted(id) >= 1, { what: 'the restored page\'s call sent' });
});

/**
 * Chromium without Playwright, driven over the DevTools protocol (the `ws` client the
 * workerd tooling brings): Chromium freezes only hidden tabs, and Playwright keeps every
 * page visible. Tabs opened in one window, the background ones hidden, as a shopper's are.
 */
async function rawChromium() {
  const chrome = await spawnChromium(['--remote-debugging-port=0']);
  const portFile = path.join(chrome.dir, 'DevToolsActivePort');
  const [port, wsPath] = (await waitFor(() => readFile(portFile, 'utf8').then((t) => t.includes('\n') && t), { what: 'DevTools to listen' })).trim().split('\n');
  const ws = new WebSocket(`ws://127.0.0.1:${port}${wsPath}`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let id = 0;
  const waiting = new Map();
  ws.on('message', (m) => {
    const d = JSON.parse(m);
    const w = waiting.get(d.id);
    if (!w) return;
    waiting.delete(d.id);
    if (d.error) w.reject(new Error(JSON.stringify(d.error)));
    else w.resolve(d.result);
  });
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    waiting.set(++id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params, sessionId }));
  });
  const { browserContextId } = await send('Target.createBrowserContext');
  let windowed = false;
  return {
    /** A tab on `url` (the newest in front, the others hidden behind it), once its
     * tracker is ready (`wasm`: "error" for one whose .wasm failed; "": created, its
     * .wasm perhaps still loading; null: a page without one, loaded). */
    async tab(url, wasm = '1') {
      // The context's first tab opens its window; the others go into it.
      const { targetId } = await send('Target.createTarget', { url, browserContextId, newWindow: !windowed });
      windowed = true;
      const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
      const eval_ = async (expression) => {
        const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
        if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception?.description ?? 'evaluation failed');
        return r.result.value;
      };
      const ready = wasm ? `document.body?.dataset.wasm === "${wasm}"` : 'document.body?.dataset.ready === "1"';
      if (wasm !== null) await waitFor(() => eval_(ready).catch(() => false), { what: 'the tab\'s tracker ready' });
      return {
        eval: eval_,
        lifecycle: (state) => send('Page.setWebLifecycleState', { state }, sessionId),
        close: () => send('Target.closeTarget', { targetId }),
      };
    },
    async close() {
      ws.close();
      await chrome.close();
    },
  };
}

test('a frozen tab waiting to send does not take the sender\'s place: another tab sends', { timeout: TIMEOUT }, async (t) => {
  const { s, chrome } = await shopWithDevTools(t);
  const url = s.url();
  const sender = await chrome.tab(url); // first: it takes the lock
  const waiting = await chrome.tab(url);
  const third = await chrome.tab(url); // in front: the waiting tab is hidden now
  assert.equal(await waiting.eval('document.visibilityState'), 'hidden');
  // As Chromium freezes a background tab (Android, Energy Saver); closed only once its
  // freeze event has run (the lock asked for withdrawn), which the DevTools command
  // does not wait for.
  await freeze(waiting, third, s.companyId);
  await sender.close(); // the lock is free: before, the frozen tab got it and sent nothing
  // The front tab holds it, and no tab waits (the frozen one withdrew): the closed tab is
  // gone for good, and cannot send what the front one is about to (a close races it).
  const lock = `klaviyo:${s.companyId}:sender`;
  await waitFor(() => third.eval(`navigator.locks.query().then((q) => q.held.filter((l) => l.name === ${JSON.stringify(lock)}).length === 1 && !q.pending.some((l) => l.name === ${JSON.stringify(lock)}))`),
    { what: 'the front tab holding the lock, none waiting' });
  const id = await third.eval('window.kl.track("While A Tab Is Frozen")');
  await waitFor(() => s.accepted(id) >= 1, { what: 'the front tab\'s call sent while the other is frozen' });
  await waiting.lifecycle('active');
  const again = await waiting.eval('window.kl.track("Resumed")');
  await waitFor(() => s.accepted(again) >= 1, { what: 'the resumed tab\'s call sent' });
  assert.deepEqual([id, again].map(s.accepted), [1, 1]);
});

test('a frozen tab whose wasm failed follows, once resumed, a denial made meanwhile, and leaves what the other tab wrote since', { timeout: TIMEOUT }, async (t) => {
  const { s, chrome } = await shopWithDevTools(t);
  const url = s.url();
  // Its calls saved for a later page (`pre:`), as a page whose .wasm never loads keeps them.
  const failed = await chrome.tab(`${url}&wasmUrl=/dist/web/missing.wasm`, 'error');
  await failed.eval('window.kl.track("Before The Denial"), window.kl.track("Before The Denial")');
  const other = await chrome.tab(url); // in front: the failed one is hidden now
  await freeze(failed, other, s.companyId);
  emu.addFault({ path: '/client/', status: 503, count: 1_000_000, name: 'down' });
  t.after(() => emu.clearFaults());
  const written = await changeOfMindWhileFrozen(s, failed, other);
  // Before: the denial's event, heard late, erased everything: the other tab's visitor,
  // and its call, forgotten as if delivered.
  assert.deepEqual(await other.eval(s.keys), written, 'the other tab\'s keys left as they were');
  assert.equal(await other.eval('window.kl.pending()'), 1, 'its call still to send');
});

test('a frozen tab whose wasm is still loading follows, once resumed, a denial made meanwhile; its core, started later, deletes no worker cookie (the visitor granted since has it)', { timeout: TIMEOUT }, async (t) => {
  const { s, chrome } = await shopWithDevTools(t);
  let release;
  holds.set(s.companyId, new Promise((r) => (release = r)));
  t.after(() => { release(); holds.delete(s.companyId); });
  const url = s.url();
  const loading = await chrome.tab(`${url}&wasmUrl=${encodeURIComponent(`/dist/web/klaviyo_wasm_bg.wasm?hold=${s.companyId}`)}`, '');
  // Every request the page makes from now on, the worker's /id among them.
  await loading.eval(RECORD_REQUESTS);
  await loading.eval('window.kl.track("Before The Denial")');
  const other = await chrome.tab(url); // in front: the loading one is hidden now
  await freeze(loading, other, s.companyId);
  // The other tab denies and grants again; its calls' answers then show the shop's edge
  // worker (marked as the worker's first answer marks it: the emulator is not the worker),
  // which holds the new visitor in its cookie.
  await other.eval(`window.kl.setConsent("denied"), window.kl.setConsent("granted"), localStorage.setItem("klaviyo:${s.companyId}:edge", "1")`);
  await loading.lifecycle('active');
  await waitFor(() => loading.eval('window.kl.consent === "denied"'), { what: 'the resumed tab to follow the denial' });
  release();
  await waitFor(() => loading.eval('document.body.dataset.wasm === "1"'), { what: 'the resumed tab\'s core to start' });
  await loading.eval('new Promise((r) => setTimeout(r))'); // its window replayed
  assert.equal(await loading.eval('window.kl.consent'), 'denied', 'its core denied');
  // Before: the replayed denial deleted the cookie, the visitor granted since with it.
  const asked = await loading.eval('window.asked');
  assert.deepEqual(asked.filter((r) => !r.startsWith('POST ') || !r.endsWith('/id')), [], 'no cookie deletion, no call from before the denial');
});

test('a frozen tab that sends follows, once resumed, a denial made meanwhile (heard late, or read as it resumes), and leaves what the other tab wrote since and the worker\'s cookie', { timeout: TIMEOUT }, async (t) => {
  const { s, chrome } = await shopWithDevTools(t);
  const url = s.url();
  const first = await chrome.tab(url);
  // The shop's edge worker known (as its first answer marks it: the emulator is not the
  // worker); the page loaded again, so that its tracker starts knowing it.
  await first.eval(`window.before = 1, localStorage.setItem("klaviyo:${s.companyId}:edge", "1"), location.reload()`).catch(() => {});
  await waitFor(() => first.eval('!window.before && document.body?.dataset.wasm === "1"').catch(() => false), { what: 'the first tab loaded again' });
  emu.addFault({ path: '/client/', status: 503, count: 1_000_000, name: 'down' });
  t.after(() => emu.clearFaults());
  await first.eval('window.kl.track("Before The Denial")');
  await waitFor(() => first.eval(`Object.keys(localStorage).some((k) => k.includes(":q:"))`), { what: 'its call stored' });
  await first.eval(RECORD_REQUESTS);
  const other = await chrome.tab(url); // in front: the first is hidden now
  await freeze(first, other, s.companyId);
  const written = await changeOfMindWhileFrozen(s, first, other);
  // Before: the denial, heard late, erased what the other tab wrote since (its visitor,
  // its call forgotten as if delivered), and deleted the worker's cookie (the new visitor's).
  assert.deepEqual(await other.eval(s.keys), written, 'the other tab\'s keys left as they were');
  assert.equal(await other.eval('window.kl.pending()'), 1, 'its call still to send');
  assert.deepEqual((await first.eval('window.asked')).filter((r) => r.startsWith('DELETE')), [], 'no cookie deletion');
});

test('a frozen tab whose own resume listener tracks (registered before the tracker\'s) sends and keeps nothing of it after a denial made meanwhile', { timeout: TIMEOUT }, async (t) => {
  const { s, chrome } = await shopWithDevTools(t);
  const url = s.url();
  const first = await chrome.tab(`${url}&trackOnReturn=1`);
  const other = await chrome.tab(url); // in front: the first is hidden now
  await freeze(first, other, s.companyId);
  // Klaviyo down while the first comes back: a call it left stored is not sent at once.
  emu.addFault({ path: '/client/', status: 503, count: 1_000_000, name: 'down' });
  await other.eval('window.kl.setConsent("denied"), window.kl.setConsent("granted")');
  await first.lifecycle('active');
  await waitFor(() => first.eval('window.kl.consent === "denied"'), { what: 'the resumed tab to follow the denial' });
  const [id] = await first.eval('window.returned');
  assert.ok(id, 'the shop\'s listener tracked as the tab came back');
  await first.eval('new Promise((r) => setTimeout(r))'); // its queued tasks run
  const stored = await other.eval(`Object.entries(localStorage).filter(([k, v]) => k.startsWith("klaviyo:${s.companyId}:") && v.includes(${JSON.stringify(id)})).map(([k]) => k)`);
  // Before: its record, written before the tracker heard the denial, stayed, and the
  // other tab (granted again, the sender) sent it: a call made after the denial.
  assert.deepEqual(stored, [], 'the call made as it came back is not stored');
  emu.clearFaults();
  const later = await other.eval('window.kl.track("After The Grant")');
  await waitFor(() => s.accepted(later) >= 1, { what: 'the other tab\'s later call sent' });
  assert.equal(s.accepted(id), 0, 'nor sent');
});

test('a frozen tab whose own resume listener denies, grants again and tracks (registered before the tracker\'s) stays granted, and its call is sent', { timeout: TIMEOUT }, async (t) => {
  const { s, chrome } = await shopWithDevTools(t);
  const url = s.url();
  const first = await chrome.tab(`${url}&trackOnReturn=changeOfMind`);
  // In front, a page of the shop without a tracker: a tab that tracks would hear the
  // denial and erase, a few milliseconds late, the grant made in the same task (the
  // README's "another tab hears it 0-4 ms later"), which is not what this tests.
  const other = await chrome.tab(`${site.url}/tests/queue/elsewhere.html`, null);
  await waitFor(() => other.eval('document.readyState === "complete"'), { what: 'the page in front loaded' });
  await freeze(first, other, s.companyId);
  await first.lifecycle('active');
  await waitFor(() => first.eval('window.returned.length === 1'), { what: 'the shop\'s listener to track' });
  const [id] = await first.eval('window.returned');
  // Before: its own denial, made as it came back, was taken for one another tab made
  // while it was away: the grant undone, the call dropped.
  await waitFor(() => s.accepted(id) >= 1, { what: 'the call made after the grant sent' });
  assert.equal(await first.eval('window.kl.consent'), 'granted');
});

test('storage full when another tab denies: a frozen tab still follows the denial once resumed (its time written once the erase made room)', { timeout: TIMEOUT }, async (t) => {
  const { s, chrome } = await shopWithDevTools(t);
  const url = s.url();
  const first = await chrome.tab(url);
  const other = await chrome.tab(url);
  await freeze(first, other, s.companyId);
  // Another script filled the origin's storage: every write of ours fails.
  await other.eval('(() => { let i = 0, size = 1 << 20; while (size >= 1) { try { localStorage.setItem("fill:" + i++, "x".repeat(size)); } catch { size >>= 1; } } })()');
  await other.eval('window.kl.setConsent("denied")');
  await other.eval('Object.keys(localStorage).filter((k) => k.startsWith("fill:")).forEach((k) => localStorage.removeItem(k))');
  await first.lifecycle('active');
  // Before: the denial's time, written before its marker, had no room (nor the marker):
  // back, the tab went on tracking for the visitor who denied (and the shop's other tabs
  // never heard the denial).
  await waitFor(() => first.eval('window.kl.consent === "denied"'), { what: 'the resumed tab to follow the denial' });
});
