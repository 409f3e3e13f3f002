// Shared harness for the durable-queue tests (tests/queue/) and the bench (tests/bench/):
// the Klaviyo emulator (port 0), a tiny static server for the test page and dist/web,
// Debian's Chromium through playwright-core, and polling helpers (no fixed sleeps).
import { before, after } from 'node:test';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isBuilt, buildId } from '../support/build.mjs';
import { startEmulator } from '../emulator/server.mjs';

export const PAGE_PATH = '/tests/queue/page.html';

export { CHROMIUM_ARGS, waitFor, launchChromium } from '../support/browser.mjs';
import { repoFile, mimeFor, serveRepo, ROOT } from '../support/static.mjs';
export { ROOT } from '../support/static.mjs';
import { launchChromium, waitFor } from '../support/browser.mjs';

/** Only these trees are served: the test pages, the built package and the bench's pure-JS
 * baseline tracker (bundled there by tests/bench/queue-bench.mjs). */
const SERVED = ['/tests/queue/', '/dist/web/', '/target/bench/peer/'];

/** Maps a URL path to a file under ROOT, or null when it is not ours to serve. */
export const fileFor = (urlPath) => repoFile(urlPath, SERVED);
export { mimeFor };

/** Serves PAGE_PATH, its script and dist/web/ from the repo, never cached. */
export function startStaticServer({ port = 0, host = '127.0.0.1' } = {}) {
  // `?pageDelayMs=N` answers a page N ms late, as a shop's server does (its HTML is
  // rarely back in under 50 ms): navigation scenarios race Klaviyo against it.
  const delayFor = (url, file) => (file.endsWith('.html') ? Math.min(Number(url.searchParams.get('pageDelayMs') || 0), 5000) : 0);
  return serveRepo(SERVED, { port, host, delayFor });
}

export { isBuilt, buildId };

// A document answered through `route.fulfill` has no IP address, so Chromium's Local
// Network Access checks treat it as public and refuse its fetches to the loopback
// emulator ("Permission was denied for this request to access the `loopback` address
// space"). Only the serve-from-disk scenarios (offline reloads) need this second browser.
const FROM_DISK_ARGS = ['--disable-features=LocalNetworkAccessChecks'];

/** Emulator + static server + browser. `close()` stops all three. */
export async function startEnv({ emulator = {} } = {}) {
  if (!isBuilt()) throw new Error('dist/web is missing: run `bash .ci/build.sh` first');
  const build = buildId();
  const emu = await startEmulator({ port: 0, ...emulator });
  const site = await startStaticServer({ port: 0 });
  const browser = await launchChromium();
  let fromDisk;
  return {
    emu,
    site,
    browser,
    /** The dist/web build at start; `buildChanged()` says if it was rebuilt during the run. */
    build,
    buildChanged: () => buildId().split(' ')[0] !== build.split(' ')[0],
    /** The browser for serve-from-disk contexts (launched on first use). */
    fromDiskBrowser: () => { fromDisk ??= launchChromium(FROM_DISK_ARGS); return fromDisk; },
    close: async () => {
      if (fromDisk) await (await fromDisk).close().catch(() => {});
      await browser.close().catch(() => {});
      await site.close();
      await emu.close();
    },
  };
}


/**
 * A suite's set-up, in one place: its environment (`suite.env`, started before its tests
 * and closed after them), company ids of its own (`suite.nextCompanyId()`: `<prefix>001`,
 * ...), and `suite.scenario(t)`: a fresh emulator record and browser context, closed
 * after test `t`.
 */
export function suiteEnv(prefix) {
  let n = 0;
  const suite = {
    env: undefined,
    nextCompanyId: () => `${prefix}${String(++n).padStart(3, '0')}`,
    async scenario(t) {
      suite.env.emu.reset();
      const shop = await newShop(suite.env);
      t.after(() => shop.close());
      return shop;
    },
  };
  before(async () => { suite.env = await startEnv(); });
  after(async () => { await suite.env?.close(); });
  return suite;
}
/** The page URL with init options in its query string. */
export function pageUrl(env, { companyId = 'QuE001', apiBase = env.emu.url, init = true, ...opts } = {}) {
  const u = new URL(PAGE_PATH, env.site.url);
  u.searchParams.set('companyId', companyId);
  if (apiBase) u.searchParams.set('apiBase', apiBase);
  if (!init) u.searchParams.set('init', '0');
  for (const [k, v] of Object.entries(opts)) {
    if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  }
  return u.href;
}

/**
 * One browser context per scenario (pages of one context = tabs of one shop; they share
 * localStorage). Every page's uncaught errors and crashes land in `pageErrors`.
 * `serveFromDisk`: answer the page and dist/web from disk through `context.route`, so
 * the page loads (and reloads) while the context is offline.
 */
export async function newShop(env, { serveFromDisk = false } = {}) {
  const context = await (serveFromDisk ? await env.fromDiskBrowser() : env.browser).newContext();
  const pageErrors = [];
  const consoleErrors = [];
  const pages = [];
  if (serveFromDisk) {
    await context.route(`${env.site.url}/**`, async (route) => {
      const file = fileFor(new URL(route.request().url()).pathname);
      try {
        if (!file) throw new Error('not ours');
        const body = await readFile(file);
        await route.fulfill({ status: 200, body, headers: { 'content-type': mimeFor(file), 'cache-control': 'no-store' } });
      } catch {
        await route.fulfill({ status: 404, body: 'not found' });
      }
    });
  }
  const watch = (page) => {
    pages.push(page);
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.stack || e.message}`));
    page.on('crash', () => pageErrors.push(`${page.url()}: page crashed`));
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  };
  context.on('page', watch);

  /** Waits for the page script; throws with the init error if init failed. */
  const ready = async (page) => {
    await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 15_000 });
    const state = await page.evaluate(() => document.body.dataset.ready);
    if (state !== '1') throw new Error(`page did not start: ${await page.evaluate(() => window.initError)}`);
    return page;
  };

  return {
    context,
    pageErrors,
    consoleErrors,
    pages,
    ready,
    /**
     * A new tab on the test page. Options: see pageUrl, plus `clock: true` (Playwright's
     * fake clock: Date and timers move only when the test says so) and `initScript`
     * (a function run before any page script).
     */
    async open({ clock = false, initScript, ...opts } = {}) {
      const page = await context.newPage();
      if (initScript) await page.addInitScript(initScript);
      if (clock) await page.clock.install();
      await page.goto(pageUrl(env, opts));
      return ready(page);
    },
    /** Navigates an open tab to the page with other options. */
    async goto(page, opts = {}) {
      await page.goto(pageUrl(env, opts));
      return ready(page);
    },
    async reload(page) {
      await page.reload();
      return ready(page);
    },
    close: () => context.close().catch(() => {}),
  };
}

// ---------- what the emulator saw ----------

/** The unique_ids a recorded request carried (events and bulk events). */
export const idsOf = (record) => record.uniqueIds || [];

/** Event-carrying requests (single or bulk), in arrival order. */
export function eventRequests(summary) {
  return summary.requests.filter((r) => r.path === '/client/events' || r.path === '/client/event-bulk-create');
}

/** How often each unique_id went over the wire, whatever the answer. */
export function wireCounts(summary) {
  const counts = {};
  for (const r of eventRequests(summary)) for (const id of idsOf(r)) counts[id] = (counts[id] || 0) + 1;
  return counts;
}

/** localStorage entries under a prefix, read inside the page. */
export function storedEntries(page, prefix) {
  return page.evaluate((p) => {
    const out = {};
    for (let i = 0; i < localStorage.length; i += 1) {
      const k = localStorage.key(i);
      if (k && k.startsWith(p)) out[k] = localStorage.getItem(k);
    }
    return out;
  }, prefix);
}

/** Calls kl.track n times in the page; returns the unique_ids it gave back. */
export function trackMany(page, n, { metric = 'Queue Test', from = 0, props = {} } = {}) {
  return page.evaluate(({ n, metric, from, props }) => {
    const ids = [];
    for (let i = from; i < from + n; i += 1) ids.push(window.kl.track(metric, { n: i, ...props }));
    return ids;
  }, { n, metric, from, props });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Holds every response of the wasm until `release()` (then it comes from disk): a
 * page's calls stay in its loading window, and a page closed meanwhile leaves them saved. */
export async function holdWasm(context) {
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const requested = [];
  const wasm = await readFile(path.join(ROOT, 'dist/web/klaviyo_wasm_bg.wasm'));
  await context.route('**/dist/web/klaviyo_wasm_bg.wasm', async (route) => {
    requested.push(Date.now());
    await gate;
    await route.fulfill({ status: 200, body: wasm, headers: { 'content-type': 'application/wasm', 'cache-control': 'no-store' } })
      .catch(() => {}); // its page may be closed by now
  });
  return { release, requested };
}

/** The create() page (tests/queue/create.html) of a `suiteEnv` suite: `window.kl`
 * exists before the wasm loads. `query`: its options (`companyId`, `currency`, ...). */
export async function openCreatePage(suite, shop, query) {
  const u = new URL('/tests/queue/create.html', suite.env.site.url);
  for (const [k, v] of Object.entries({ apiBase: suite.env.emu.url, ...query })) u.searchParams.set(k, v);
  const page = await shop.context.newPage();
  await page.goto(u.href);
  return shop.ready(page);
}

/** A shop and its create() page in `currency`, its wasm held: calls stay in the loading
 * window until `wasm.release()`. */
export async function loadingPage(suite, t, currency) {
  const companyId = suite.nextCompanyId();
  const shop = await suite.scenario(t);
  const wasm = await holdWasm(shop.context);
  const page = await openCreatePage(suite, shop, { companyId, currency });
  await waitFor(() => wasm.requested.length > 0, { what: 'the wasm request (held)' });
  return { companyId, shop, wasm, page };
}
