// Queue benchmark (a script, not a test): node tests/bench/queue-bench.mjs [--calls 10000]
// Runs dist/web in Debian's Chromium against the Klaviyo emulator and prints figures:
//  (a) cost of kl.track() on the main thread vs. a naive SDK (one localStorage.setItem of
//      JSON.stringify(event) per call), in the same page:
//        - tight loop: N calls in one task (total ms, µs per call)
//        - chunked: N calls in chunks of 100, one task per chunk (worst chunk, and the
//          worst `longtask` entry seen while the calls run and the queue drains)
//      The emulator answers normally (202), so the library's own sending (batching,
//      JSON building, storage removals) runs on the same main thread and is measured.
//  (b) localStorage chars per queued event (1,000 events queued while the context is offline)
//  (c) HTTP requests needed to drain those 1,000 events of one profile once back online
import { startEnv, newShop, waitFor, storedEntries, eventRequests } from '../queue/harness.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const CALLS = arg('calls', 10_000);
const CHUNK = 100;
const DRAIN_EVENTS = 1000;

const fmt = (n, d = 1) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(d) : String(n));

function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  const line = (r) => `| ${r.map((x, c) => (c === 0 ? String(x).padEnd(widths[c]) : String(x).padStart(widths[c]))).join(' | ')} |`;
  const out = [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)];
  console.log(out.join('\n'));
}

// Installed in the page: the workloads and the measuring code.
function installBench() {
  const product = { ProductID: '1111', ProductName: 'Winnie the Pooh', Price: 9.99, URL: 'https://shop.example/p/1111', ImageURL: 'https://shop.example/i/1111.jpg', Categories: ['Kids', 'Books'], Brand: 'Kids Books' };
  const anonymousId = crypto.randomUUID();
  window.bench = {
    library: (i) => window.kl.track('Viewed Product', { ...product, i }, { value: 9.99 }),
    // What a naive SDK does per call: the whole event as JSON under its own key.
    naive: (i) => localStorage.setItem(`naive:q:${i}`, JSON.stringify({
      metric: 'Viewed Product',
      properties: { ...product, i },
      value: 9.99,
      unique_id: crypto.randomUUID(),
      time: new Date().toISOString(),
      profile: { anonymous_id: anonymousId },
    })),
    clearNaive() {
      for (let i = localStorage.length - 1; i >= 0; i -= 1) {
        const k = localStorage.key(i);
        if (k && k.startsWith('naive:')) localStorage.removeItem(k);
      }
    },
    /** N calls in one task; total ms, and ms per 1,000-call segment (growth with queue size). */
    tight(name, n) {
      const fn = window.bench[name];
      const segments = [];
      const t0 = performance.now();
      let s = t0;
      for (let i = 0; i < n; i += 1) {
        fn(i);
        if ((i + 1) % 1000 === 0 || i === n - 1) { const now = performance.now(); segments.push(now - s); s = now; }
      }
      return { total: performance.now() - t0, segments };
    },
    /** Starts collecting longtask entries; returns a stop function giving them. */
    watchLongTasks() {
      const seen = [];
      if (!PerformanceObserver.supportedEntryTypes.includes('longtask')) return () => null;
      const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) seen.push(e.duration); });
      obs.observe({ type: 'longtask' });
      return () => { for (const e of obs.takeRecords()) seen.push(e.duration); obs.disconnect(); return seen; };
    },
    async chunked(name, n, chunk) {
      const fn = window.bench[name];
      let worst = 0;
      const t0 = performance.now();
      for (let i = 0; i < n; i += chunk) {
        const s = performance.now();
        for (let j = i; j < Math.min(n, i + chunk); j += 1) fn(j);
        worst = Math.max(worst, performance.now() - s);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      return { worstChunk: worst, total: performance.now() - t0 };
    },
  };
}

async function main() {
  const env = await startEnv();
  const results = { build: env.build };
  try {
    // ---- (a) main-thread cost, library vs naive, in one page ----
    {
      env.emu.reset();
      const companyId = 'BnCh01';
      const shop = await newShop(env);
      const page = await shop.open({ companyId, maxQueueEvents: 20_000, maxQueueBytes: 20_000_000 });
      await page.evaluate(installBench);
      const drain = (timeout = 120_000) => waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0,
        { timeout, interval: 100, what: 'the library queue to drain' });

      // Warm-up (JIT, wasm tiering, preflight cache), then drained.
      await page.evaluate(() => { window.bench.tight('naive', 200); window.bench.clearNaive(); window.bench.tight('library', 200); });
      await drain();

      await page.evaluate(() => { window.stopLT = window.bench.watchLongTasks(); });
      const naiveRun = await page.evaluate((n) => window.bench.tight('naive', n), CALLS);
      const naiveTight = naiveRun.total;
      const naiveTightLT = await page.evaluate(() => window.stopLT());
      const naiveBytes = await page.evaluate(() => {
        let b = 0;
        for (let i = 0; i < localStorage.length; i += 1) { const k = localStorage.key(i); if (k.startsWith('naive:')) b += k.length + localStorage.getItem(k).length; }
        return b;
      });
      await page.evaluate(() => window.bench.clearNaive());

      await page.evaluate(() => { window.stopLT = window.bench.watchLongTasks(); });
      const libRun = await page.evaluate((n) => window.bench.tight('library', n), CALLS);
      const libTight = libRun.total;
      const libStorage = await page.evaluate((p) => {
        let chars = 0; let keys = 0;
        for (let i = 0; i < localStorage.length; i += 1) { const k = localStorage.key(i); if (k.startsWith(p)) { keys += 1; chars += k.length + localStorage.getItem(k).length; } }
        return { keys, chars };
      }, `klaviyo:${companyId}:q:`);
      const libReportsTight = await page.evaluate(() => window.reports.slice());
      await drain();
      const libTightLT = await page.evaluate(() => window.stopLT());

      await page.evaluate(() => { window.stopLT = window.bench.watchLongTasks(); });
      const naiveChunked = await page.evaluate(({ n, c }) => window.bench.chunked('naive', n, c), { n: CALLS, c: CHUNK });
      const naiveLT = await page.evaluate(() => window.stopLT());
      await page.evaluate(() => window.bench.clearNaive());

      await page.evaluate(() => { window.stopLT = window.bench.watchLongTasks(); });
      const libChunked = await page.evaluate(({ n, c }) => window.bench.chunked('library', n, c), { n: CALLS, c: CHUNK });
      await drain();
      const libLT = await page.evaluate(() => window.stopLT());
      const reports = await page.evaluate(() => window.reports);
      const s = env.emu.requests();
      results.a = { naiveRun, libRun, libStorage, naiveTight, libTight, naiveTightLT, libTightLT, naiveChunked, libChunked, naiveLT, libLT, naiveBytes, reports, libReportsTight, sends: eventRequests(s).length, accepted: s.acceptedUniqueIds, errors: shop.pageErrors };
      await shop.close();
    }

    // ---- (b) storage per queued event and (c) requests to drain 1,000 ----
    {
      env.emu.reset();
      const companyId = 'BnCh02';
      const shop = await newShop(env);
      const page = await shop.open({ companyId });
      await page.evaluate(installBench);
      await shop.context.setOffline(true);
      await page.evaluate((n) => window.bench.tight('library', n), DRAIN_EVENTS);
      await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === DRAIN_EVENTS, { what: '1,000 queued' });
      const q = await storedEntries(page, `klaviyo:${companyId}:q:`);
      const all = await storedEntries(page, `klaviyo:${companyId}:`);
      const chars = (o) => Object.entries(o).reduce((n, [k, v]) => n + k.length + v.length, 0);
      const queuedBefore = env.emu.requests().count;
      const t0 = Date.now();
      await shop.context.setOffline(false);
      await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0, { timeout: 60_000, interval: 50, what: 'drain of 1,000' });
      const drainMs = Date.now() - t0;
      const s = env.emu.requests();
      results.b = { keys: Object.keys(q).length, qChars: chars(q), allChars: chars(all) };
      results.c = {
        requests: s.count - queuedBefore,
        eventRequests: eventRequests(s).map((r) => `${r.path.replace('/client/', '')}:${r.uniqueIds.length}:${r.status}`),
        preflights: s.preflights.length,
        accepted: s.acceptedUniqueIds,
        duplicates: s.duplicateUniqueIds,
        drainMs,
        bodyBytes: eventRequests(s).map((r) => JSON.stringify(r.body).length),
        errors: shop.pageErrors,
      };
      await shop.close();
    }
  } finally {
    if (env.buildChanged()) results.build += ' (WARNING: rebuilt during the run)';
    await env.close();
  }

  const { a, b, c } = results;
  const max = (xs) => (xs === null ? 'n/a' : xs.length ? Math.max(...xs) : 'none');
  const ratio = (x, y) => (typeof x === 'number' && typeof y === 'number' ? fmt(x / y, 2) : '-');
  console.log(`\nklaviyo-wasm queue bench: ${CALLS} calls, Debian Chromium (headless=new); emulator answering 202; dist/web ${results.build}\n`);
  table([
    ['(a) main thread', 'kl.track()', 'naive setItem(JSON)', 'ratio'],
    [`tight loop, ${CALLS} calls: total ms`, fmt(a.libTight), fmt(a.naiveTight), fmt(a.libTight / a.naiveTight, 2)],
    ['tight loop: µs per call', fmt((a.libTight * 1000) / CALLS), fmt((a.naiveTight * 1000) / CALLS), fmt(a.libTight / a.naiveTight, 2)],
    ['tight loop: µs per call, first 1,000', fmt(a.libRun.segments[0]), fmt(a.naiveRun.segments[0]), fmt(a.libRun.segments[0] / a.naiveRun.segments[0], 2)],
    ['tight loop: µs per call, last 1,000', fmt(a.libRun.segments.at(-1)), fmt(a.naiveRun.segments.at(-1)), fmt(a.libRun.segments.at(-1) / a.naiveRun.segments.at(-1), 2)],
    ['tight loop: worst longtask ms (= the drain*)', fmt(max(a.libTightLT)), fmt(max(a.naiveTightLT)), ratio(max(a.libTightLT), max(a.naiveTightLT))],
    [`chunked (${CHUNK}/task): worst chunk ms`, fmt(a.libChunked.worstChunk), fmt(a.naiveChunked.worstChunk), fmt(a.libChunked.worstChunk / a.naiveChunked.worstChunk, 2)],
    ['chunked: total ms (incl. yields)', fmt(a.libChunked.total), fmt(a.naiveChunked.total), fmt(a.libChunked.total / a.naiveChunked.total, 2)],
    ['chunked: worst longtask ms (incl. drain)', fmt(max(a.libLT)), fmt(max(a.naiveLT)), ratio(max(a.libLT), max(a.naiveLT))],
    ['chunked: longtasks (>50 ms)', a.libLT?.length ?? 'n/a', a.naiveLT?.length ?? 'n/a', ''],
    ['tight loop: longtasks (>50 ms)', a.libTightLT?.length ?? 'n/a', a.naiveTightLT?.length ?? 'n/a', ''],
  ]);
  console.log('  * a loop driven by page.evaluate() is not itself reported as a longtask, so these are the tasks after it: the library draining its queue.');
  console.log(`  library sent ${a.sends} event requests, ${a.accepted} distinct events accepted; onError during the tight loop: ${JSON.stringify(summarizeReports(a.libReportsTight))}; overall: ${JSON.stringify(summarizeReports(a.reports))}; page errors: ${a.errors.length}`);
  console.log(`  µs per call by 1,000-call segment, library: ${a.libRun.segments.map((x) => fmt(x, 0)).join(' ')}; naive: ${a.naiveRun.segments.map((x) => fmt(x, 0)).join(' ')}`);
  console.log(`  after the library tight loop: ${a.libStorage.keys} keys, ${a.libStorage.chars} chars under klaviyo:<id>:q: (Chromium's localStorage quota is about 5.2 M chars per origin)`);
  console.log(`  naive storage for ${CALLS} events: ${a.naiveBytes} chars (${fmt(a.naiveBytes / CALLS, 0)} per event)\n`);
  table([
    ['(b)/(c) 1,000 queued events, one profile', 'value'],
    ['localStorage keys under klaviyo:<id>:q:', b.keys],
    ['chars (key+value) per queued event, q: only', fmt(b.qChars / DRAIN_EVENTS, 0)],
    ['chars per queued event, incl. identity key', fmt(b.allChars / DRAIN_EVENTS, 0)],
    ['HTTP requests to drain (excl. preflights; target <= 2)', c.requests],
    ['  event requests (endpoint:events:status)', c.eventRequests.join(', ')],
    ['  bulk body sizes (chars)', c.bodyBytes.join(', ')],
    ['CORS preflights (whole run)', c.preflights],
    ['accepted / duplicates', `${c.accepted} / ${c.duplicates}`],
    ['drain time after "online" (ms)', c.drainMs],
  ]);
  if (c.errors.length || a.errors.length) console.log('page errors:', [...a.errors, ...c.errors]);
}

function summarizeReports(reports) {
  const out = {};
  for (const r of reports) out[r.kind] = (out[r.kind] || 0) + (r.count || 0);
  return out;
}

main().catch((e) => { console.error(e); process.exit(1); });
