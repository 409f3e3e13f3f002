// Queue benchmark (a script, not a test): node tests/bench/queue-bench.mjs [--reps 7] [--loads 15] [--startup-only]
// (`npm run bench` builds first). One Debian Chromium run against the Klaviyo emulator
// (answering 202, so the library's own sending runs on the page's main thread too).
// Prints tables and writes every number to target/bench/queue-bench.json:
//  (a) µs per call, 1,000 and 10,000 calls in one task: kl.track() vs a naive SDK
//      (localStorage.setItem(key, JSON.stringify(event)) per call) vs no tracker at all
//      (the loop building its props only). Cold = the first run in a fresh page; warm =
//      after a warm-up run of the same size. Every cell is its own fresh browser context;
//      median of --reps. A cell's time is its whole task: the calls plus the end-of-task
//      microtask where the library writes its record and sends.
//  (b) the floor: what any call must do before the core runs.
//  (c) the longest main-thread task: the 10,000 calls' task, and while the queue drains.
//  (d) script start -> first track() returned, and -> ready (--loads fresh page loads), with and
//      without preload hints, with create() 20 ms after the import, and the floor: the .wasm
//      alone fetched, compiled and instantiated; then pages 2-4 of a visit (each page loads
//      the next in the same tab); beside each, Amplitude's browser SDK and
//      Snowplow's browser tracker (pure JavaScript, devDependencies) making the same calls:
//      baselines run in the same process.
//  (e) gzip -9 bytes a page downloads.
//  (f) 1,000 events queued offline, then online: requests, bytes and chars per event.
//  (g) track, then navigate or close the tab 0..30 ms later: lost, sent twice.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync, constants } from 'node:zlib';
import { buildSync } from 'esbuild';
import { ROOT, startEnv, newShop, waitFor, storedEntries } from '../queue/harness.mjs';
import { trackThenNavigate, trackThenClose, DELAYS } from '../queue/scenarios.mjs';
import { median } from './median.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const REPS = arg('reps', 7);
/** `--startup-only`: section (d) alone, printed, nothing written. */
const STARTUP_ONLY = process.argv.includes('--startup-only');
const LOADS = arg('loads', 15);
const SIZES = [1000, 10_000];
const MODES = ['cold', 'warm'];
const WORKLOADS = ['ours', 'naive', 'none', 'floorJs', 'floorWasm'];
const OUT = path.join(ROOT, 'target/bench/queue-bench.json');

// ---------- small helpers ----------

const fmt = (n, d = 2) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : null);
const x = (r) => (r === null ? 'n/a' : `${r.toFixed(r >= 100 ? 0 : r >= 10 ? 1 : 2)}×`);
const num = (n) => n.toLocaleString('en-US');

/** A cell's µs per call; `≤ step` when the whole task took at most one clock step. */
const us = (cell, d = 2) => (cell.atClockStep ? `≤ ${fmt(cell.stepUsPerCall, 3)}` : fmt(cell.usPerCall, d));
/** ours / that cell; `≥` when that cell is only bounded. */
const times = (ours, cell) => (cell.atClockStep ? `≥ ${x(ratio(ours, cell.stepUsPerCall))}` : x(ratio(ours, cell.usPerCall)));

function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  const line = (r) => `| ${r.map((v, c) => (c === 0 ? String(v).padEnd(widths[c]) : String(v).padStart(widths[c]))).join(' | ')} |`;
  console.log([line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n'));
}
const heading = (s) => console.log(`\n${s}`);
const note = (s) => console.log(`  ${s}`);

// ---------- in the page ----------

/** Installed into page.js's page (window.kl ready): the workloads and the meters. */
function installBench() {
  const product = {
    ProductID: '1111', ProductName: 'Winnie the Pooh', Price: 9.99, URL: 'https://shop.example/p/1111',
    ImageURL: 'https://shop.example/i/1111.jpg', Categories: ['Kids', 'Books'], Brand: 'Kids Books',
  };
  const profile = { anonymous_id: crypto.randomUUID() };
  let sink;
  // The floor's ids are made the way the library makes them (a per-page counter).
  const seed = crypto.randomUUID().slice(0, 24);
  let count = 0;
  const nextId = () => seed + (++count).toString(16).padStart(12, '0');
  const utf8 = new TextEncoder();
  const scratch = new Uint8Array(1 << 16);
  const NO_TRACKER = 0xfffffffe; // a handle no tracker has: the export returns at once
  let wasm = null;
  const args = (i) => JSON.stringify([nextId(), Date.now(), 'Viewed Product', { ...product, i }, { value: 9.99 }]);

  const work = {
    ours: (i) => window.kl.track('Viewed Product', { ...product, i }, { value: 9.99 }),
    naive: (i) => localStorage.setItem(`naive:q:${i}`, JSON.stringify({
      metric: 'Viewed Product',
      properties: { ...product, i },
      value: 9.99,
      unique_id: crypto.randomUUID(),
      time: new Date().toISOString(),
      profile,
    })),
    none: (i) => { sink = { ...product, i }; },
    floorJs: (i) => { sink = utf8.encodeInto(args(i), scratch).written; },
    floorWasm: (i) => { sink = wasm.call(NO_TRACKER, 2, utf8.encodeInto(args(i), wasm.view).written); },
  };

  const longtasks = [];
  let observer = null;
  const keep = (list) => { for (const e of list) longtasks.push({ start: e.startTime, duration: e.duration }); };
  window.bench = {
    sink: () => sink,
    /** The smallest step of performance.now() (Chromium coarsens it: 100 µs unless cross-origin isolated). */
    clockStep() {
      let step = Infinity;
      let last = performance.now();
      const end = last + 50;
      for (let steps = 0; steps < 20;) {
        const now = performance.now();
        if (now > last) { step = Math.min(step, now - last); last = now; steps += 1; }
        if (now > end) break;
      }
      return step;
    },
    /** A second instance of the shipped wasm, for its `call(handle, op, len)` export. */
    async loadWasm() {
      const mod = await WebAssembly.compile(await (await fetch('/dist/web/klaviyo_wasm_bg.wasm')).arrayBuffer());
      const imports = {};
      for (const imp of WebAssembly.Module.imports(mod)) {
        (imports[imp.module] ??= {})[imp.name] = () => { throw new Error(`wasm import ${imp.name} called`); };
      }
      const { exports } = await WebAssembly.instantiate(mod, imports);
      if (typeof exports.call !== 'function' || typeof exports.input_buffer !== 'function' || exports.call.length !== 3) {
        return 'the wasm has no call(handle, op, len) and buf(len) exports';
      }
      const at = exports.input_buffer(scratch.length) >>> 0;
      wasm = { call: exports.call, view: new Uint8Array(exports.memory.buffer, at, scratch.length) };
      return exports.call(NO_TRACKER, 2, utf8.encodeInto(args(0), wasm.view).written) === 0 ? null : 'call() with no tracker did not return 0';
    },
    clearNaive() {
      for (let i = localStorage.length - 1; i >= 0; i -= 1) {
        const k = localStorage.key(i);
        if (k && k.startsWith('naive:')) localStorage.removeItem(k);
      }
    },
    watchLongTasks() {
      if (!PerformanceObserver.supportedEntryTypes.includes('longtask')) return false;
      observer = new PerformanceObserver((list) => keep(list.getEntries()));
      observer.observe({ type: 'longtask' });
      return true;
    },
    /** The entries so far, those not yet handed to the observer's callback included. */
    longtasks() {
      if (observer) keep(observer.takeRecords());
      return longtasks.slice();
    },
    /**
     * `n` calls of a workload in one task of their own (a timer task, as a page's code
     * would run). `loop`: the calls; `task`: up to the end of the task's microtasks (ours
     * is queued after the library's end-of-task one: its record write and first send).
     * `drain`: then follows the tracker until kl.pending() is 0, with a 0-ms timer
     * chain; the longest gap between its ticks bounds the longest task meanwhile.
     */
    run(name, n, { drain = false } = {}) {
      const fn = work[name];
      return new Promise((resolve) => setTimeout(() => {
        let error = null;
        const t0 = performance.now();
        try {
          for (let i = 0; i < n; i += 1) fn(i);
        } catch (e) {
          error = String(e?.message ?? e);
        }
        const t1 = performance.now();
        queueMicrotask(() => {
          const t2 = performance.now();
          const out = { start: t0, loop: t1 - t0, task: t2 - t0, error };
          if (!drain) return resolve(out);
          let last = t2;
          let maxGap = 0;
          let ticks = 0;
          const deadline = t2 + 60_000;
          const tick = () => {
            const now = performance.now();
            maxGap = Math.max(maxGap, now - last);
            last = now;
            ticks += 1;
            if (window.kl.pending() === 0 || now > deadline) {
              resolve({ ...out, drainMs: now - t2, maxGap, ticks, drained: window.kl.pending() === 0 });
            } else {
              setTimeout(tick, 0);
            }
          };
          setTimeout(tick, 0);
        });
      }, 0));
    },
  };
}

// ---------- (a)(b)(c): one measurement in a fresh context ----------

async function measureCell(env, { workload, n, mode, companyId }) {
  const shop = await newShop(env);
  try {
    const page = await shop.open({ companyId });
    await page.evaluate(installBench);
    await page.evaluate(() => window.kl.flush()); // the tracker has started and is idle
    if (workload === 'floorWasm') {
      const problem = await page.evaluate(() => window.bench.loadWasm());
      if (problem) return { skipped: problem };
    }
    const drain = workload === 'ours';
    if (mode === 'warm') {
      const w = await page.evaluate(({ workload, n, drain }) => window.bench.run(workload, n, { drain }), { workload, n, drain });
      if (w.error) return { error: `warm-up: ${w.error}` };
      if (drain && !w.drained) return { error: 'warm-up: the queue did not drain' };
      if (workload === 'naive') await page.evaluate(() => window.bench.clearNaive());
    }
    const clockStep = await page.evaluate(() => window.bench.clockStep());
    const observing = await page.evaluate(() => window.bench.watchLongTasks());
    const before = env.emu.requests().count;
    const r = await page.evaluate(({ workload, n, drain }) => window.bench.run(workload, n, { drain }), { workload, n, drain });
    const longtasks = observing ? await page.evaluate(() => window.bench.longtasks()) : null;
    const out = { ...r, clockStep, requests: env.emu.requests().count - before, errors: shop.pageErrors.slice() };
    if (longtasks) {
      // The calls' own task, and the rest (the drain).
      const end = r.start + r.task;
      const own = longtasks.filter((e) => e.start <= r.start + 1 && e.start + e.duration >= end - 1);
      out.taskLongtask = own.length ? Math.max(...own.map((e) => e.duration)) : 0;
      const rest = longtasks.filter((e) => !own.includes(e) && e.start >= end - 1);
      out.drainLongtasks = rest.map((e) => e.duration);
      out.drainLongest = rest.length ? Math.max(...rest.map((e) => e.duration)) : 0;
    }
    return out;
  } finally {
    await shop.close();
  }
}

async function benchCalls(env) {
  const samples = {}; // `${workload}:${n}:${mode}` -> [cell results]
  let shop = 0;
  for (let rep = 0; rep < REPS; rep += 1) {
    for (const n of SIZES) {
      for (const mode of MODES) {
        for (const workload of WORKLOADS) {
          env.emu.reset();
          const companyId = `BnA${String(++shop).padStart(3, '0')}`;
          const r = await measureCell(env, { workload, n, mode, companyId });
          (samples[`${workload}:${n}:${mode}`] ??= []).push(r);
          if (r.error || r.errors?.length) console.error(`  ${workload} ${n} ${mode}: ${r.error || r.errors.join('; ')}`);
        }
      }
    }
    process.stderr.write(`  (a) repetition ${rep + 1}/${REPS} done\n`);
  }
  const cell = (workload, n, mode) => {
    const rs = samples[`${workload}:${n}:${mode}`] ?? [];
    const ok = rs.filter((r) => !r.error && !r.skipped);
    const usPerCall = (k) => median(ok.map((r) => (r[k] * 1000) / n));
    const clockStep = median(ok.map((r) => r.clockStep)) ?? 0.1;
    return {
      /** The task took no more than one step of the page's clock: only a bound is known. */
      atClockStep: median(ok.map((r) => r.task)) <= clockStep,
      /** One clock step, in µs per call. */
      stepUsPerCall: (clockStep * 1000) / n,
      clockStepUs: clockStep * 1000,
      n, mode, workload,
      reps: ok.length,
      skipped: rs.find((r) => r.skipped)?.skipped ?? null,
      errors: rs.filter((r) => r.error).map((r) => r.error),
      usPerCall: usPerCall('task'),
      usPerCallLoop: usPerCall('loop'),
      taskMs: median(ok.map((r) => r.task)),
      samplesUs: ok.map((r) => (r.task * 1000) / n),
      taskLongtaskMs: median(ok.map((r) => r.taskLongtask)),
      drainLongestLongtaskMs: median(ok.map((r) => r.drainLongest)),
      drainMaxGapMs: median(ok.map((r) => r.maxGap)),
      drainMs: median(ok.map((r) => r.drainMs)),
      requests: median(ok.map((r) => r.requests)),
      longtaskSupported: ok.some((r) => r.taskLongtask !== undefined),
    };
  };
  const result = {};
  for (const w of WORKLOADS) for (const n of SIZES) for (const m of MODES) result[`${w}:${n}:${m}`] = cell(w, n, m);
  return result;
}

// ---------- (d) start-up ----------

/**
 * The pure-JavaScript baselines of section (d), each a devDependency at an exact version,
 * bundled as a shop's bundler would (esbuild, minified, the three calls its page makes) into
 * target/bench/peer/, which the harness serves: Amplitude's browser SDK (the issue's target)
 * and Snowplow's browser tracker (the lightest of the peers). One not installed is left out.
 */
const PEERS = {
  amplitude: { name: 'Amplitude', pkg: '@amplitude/analytics-browser', calls: 'init, setUserId, track' },
  snowplow: { name: 'Snowplow', pkg: '@snowplow/browser-tracker', calls: 'newTracker, setUserId, trackSelfDescribingEvent' },
};

function bundlePeer(key) {
  const { name, pkg, calls } = PEERS[key];
  let version;
  try {
    version = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
  const outfile = path.join(ROOT, `target/bench/peer/${key}.js`);
  buildSync({
    stdin: { contents: `export { ${calls} } from '${pkg}';`, resolveDir: ROOT },
    bundle: true, format: 'esm', minify: true, target: 'es2022', outfile, logLevel: 'warning',
  });
  return { name: `${name} ${version}`, gzip: gzipSync(readFileSync(outfile), { level: constants.Z_BEST_COMPRESSION }).length };
}

/** Pages of one visit: each load of a `visit` variant runs this many pages in one tab and
 * keeps all but the first (a fresh tab's, as the other rows measure). */
const VISIT_PAGES = 4;

async function benchStartup(env) {
  const peer = bundlePeer('amplitude');
  const light = bundlePeer('snowplow');
  const amplitude = '/tests/queue/startup-amplitude.html';
  const snowplow = '/tests/queue/startup-snowplow.html';
  const variants = [
    { name: 'plain', file: '/tests/queue/startup.html', label: 'no hints' },
    { name: 'preload', file: '/tests/queue/startup-preload.html', label: 'modulepreload index.js + preload wasm' },
    { name: 'later', file: '/tests/queue/startup-later.html', label: 'no hints, create() 20 ms after the import' },
    { name: 'floor', file: '/tests/queue/startup-floor.html', label: 'the .wasm alone: fetch, compile, instantiate (no tracker)' },
    { name: 'inline', file: '/tests/queue/startup.html?build=inline', label: 'the inline build (klaviyo-wasm/inline), no hints' },
    { name: 'visit', file: '/tests/queue/startup.html', visit: true, label: 'no hints, pages 2-4 of a visit in one tab' },
    ...(peer ? [
      { name: 'peer', file: amplitude, label: `${peer.name}, no hints` },
      { name: 'peerLite', file: `${amplitude}?autocapture=0`, label: `${peer.name} with autocapture off, no hints` },
      { name: 'peerVisit', file: amplitude, visit: true, label: `${peer.name}, pages 2-4 of a visit in one tab` },
      { name: 'peerLiteVisit', file: `${amplitude}?autocapture=0`, visit: true, label: `${peer.name} with autocapture off, pages 2-4 of a visit` },
    ] : []),
    ...(light ? [
      { name: 'light', file: snowplow, label: `${light.name}, no hints` },
      { name: 'lightVisit', file: snowplow, visit: true, label: `${light.name}, pages 2-4 of a visit in one tab` },
    ] : []),
  ];
  const samples = Object.fromEntries(variants.map((v) => [v.name, []]));
  const errors = [];
  for (let i = 0; i < LOADS; i += 1) {
    for (const v of variants) { // interleaved, so drift hits both alike
      env.emu.reset();
      const shop = await newShop(env);
      try {
        const page = await shop.context.newPage();
        const u = new URL(v.file, env.site.url);
        u.searchParams.set('companyId', 'BnSt01');
        u.searchParams.set('apiBase', env.emu.url);
        if (v.visit) u.searchParams.set('chain', String(VISIT_PAGES));
        await page.goto(u.href);
        const pages = v.visit
          ? (await (await page.waitForFunction(() => window.startupChain, null, { timeout: 30_000 })).jsonValue()).slice(1)
          : [await (await page.waitForFunction(() => window.startup, null, { timeout: 15_000 })).jsonValue()];
        for (const s of pages) {
          if (s.error || shop.pageErrors.length) errors.push(`${v.name}: ${s.error || shop.pageErrors.join('; ')}`);
          const at = (file, k) => s.resources.find((r) => r.file === file)?.[k] ?? null;
          // The tracker's module: index.js, inline.js for the inline build (no .wasm then), or
          // the baseline's bundle.
          const js = s.resources.find((r) => r.file.endsWith('.js'))?.file ?? 'index.js';
          const rel = (v) => (v === null ? null : v - s.t0);
          samples[v.name].push({
            t0: s.t0, track: s.t1 - s.t0, ready: s.t2 - s.t0, moduleTrack: s.t1 - s.tm, moduleReady: s.t2 - s.tm,
            createTrack: s.tc === undefined ? null : s.t1 - s.tc, createReady: s.tc === undefined ? null : s.t2 - s.tc,
            wasmBeforeCreate: s.tc === undefined ? null : s.tc - at('klaviyo_wasm_bg.wasm', 'start'),
            indexJsStart: rel(at(js, 'start')), indexJsEnd: rel(at(js, 'end')),
            wasmStart: rel(at('klaviyo_wasm_bg.wasm', 'start')), wasmEnd: rel(at('klaviyo_wasm_bg.wasm', 'end')),
          });
        }
      } finally {
        await shop.close();
      }
    }
  }
  return Object.fromEntries(variants.map((v) => [v.name, {
    label: v.label,
    page: v.file,
    loads: samples[v.name].length,
    trackMs: median(samples[v.name].map((s) => s.track)),
    readyMs: median(samples[v.name].map((s) => s.ready)),
    moduleTrackMs: median(samples[v.name].map((s) => s.moduleTrack)),
    moduleReadyMs: median(samples[v.name].map((s) => s.moduleReady)),
    createTrackMs: median(samples[v.name].map((s) => s.createTrack)),
    createReadyMs: median(samples[v.name].map((s) => s.createReady)),
    wasmBeforeCreateMs: median(samples[v.name].map((s) => s.wasmBeforeCreate)),
    /** Medians, ms after t0 (negative: before the first script ran). */
    t0Ms: median(samples[v.name].map((s) => s.t0)),
    indexJs: [median(samples[v.name].map((s) => s.indexJsStart)), median(samples[v.name].map((s) => s.indexJsEnd))],
    wasm: [median(samples[v.name].map((s) => s.wasmStart)), median(samples[v.name].map((s) => s.wasmEnd))],
    samples: samples[v.name],
  }]).concat([['errors', errors], ['peerBundle', peer], ['lightBundle', light]]));
}

// ---------- (e) size ----------

function benchSize() {
  const gz = (f, dir = 'dist/web') => {
    const buf = readFileSync(path.join(ROOT, dir, f));
    return { raw: buf.length, gzip: gzipSync(buf, { level: constants.Z_BEST_COMPRESSION }).length };
  };
  const index = gz('index.js');
  const wasm = gz('klaviyo_wasm_bg.wasm');
  const script = gz('klaviyo-wasm.js', 'dist/script');
  return { 'index.js': index, 'klaviyo_wasm_bg.wasm': wasm, 'klaviyo-wasm.js': script, npmPageGzip: index.gzip + wasm.gzip, scriptTagPageGzip: script.gzip + wasm.gzip };
}

// ---------- (f) delivery of 1,000 queued offline ----------

async function benchDelivery(env) {
  const N = 1000;
  const companyId = 'BnDl01';
  env.emu.reset();
  const shop = await newShop(env);
  try {
    const page = await shop.open({ companyId });
    await page.evaluate(installBench);
    await page.evaluate(() => window.kl.flush());
    const sent = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${env.emu.url}/client/`) && r.method() === 'POST') {
        sent.push({ path: new URL(r.url()).pathname, bytes: r.postDataBuffer()?.length ?? 0 });
      }
    });
    await shop.context.setOffline(true);
    await page.evaluate((n) => window.bench.run('ours', n), N);
    await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === N, { what: `${N} queued` });
    const chars = (o) => Object.entries(o).reduce((c, [k, v]) => c + k.length + v.length, 0);
    const q = await storedEntries(page, `klaviyo:${companyId}:q:`);
    const all = await storedEntries(page, `klaviyo:${companyId}:`);
    const t0 = Date.now();
    await shop.context.setOffline(false);
    // This shop's requests only: a start-up page of section (d), closed with its calls in
    // flight, may still be heard after the reset, and would never let the count equal N.
    const mine = () => env.emu.requests({ companyId });
    await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0 && mine().acceptedUniqueIds === N,
      { timeout: 60_000, interval: 20, what: `the ${N} delivered` });
    const drainMs = Date.now() - t0;
    const s = mine();
    const events = sent.filter((r) => r.path.startsWith('/client/event'));
    const wireBytes = events.reduce((b, r) => b + r.bytes, 0);
    return {
      events: N,
      requests: s.count,
      eventRequests: events.length,
      preflights: s.preflights.length,
      requestShapes: s.requests.map((r) => `${r.path.replace('/client/', '')}:${r.uniqueIds.length}:${r.status}`),
      wireBodyBytes: wireBytes,
      wireBytesPerEvent: wireBytes / N,
      storageKeys: Object.keys(q).length,
      storageCharsPerEvent: chars(q) / N,
      storageCharsPerEventWithIdentity: chars(all) / N,
      accepted: s.acceptedUniqueIds,
      duplicates: s.duplicateUniqueIds,
      drainMs,
      errors: shop.pageErrors.slice(),
    };
  } finally {
    await shop.close();
  }
}

// ---------- (g) track, then navigate / close ----------

async function benchLifecycle(env) {
  const out = {};
  const runs = [
    ['navigate', trackThenNavigate, 0, 50],
    ['close', trackThenClose, 0],
    ['navigate', trackThenNavigate, 100, 300],
    ['navigate', trackThenNavigate, 100, 50],
    ['close', trackThenClose, 100],
  ];
  let i = 0;
  for (const [name, fn, latency, pageDelayMs] of runs) {
    env.emu.reset();
    if (latency) env.emu.addFault({ path: '/client/', delayMs: latency, count: 100_000 });
    const shop = await newShop(env);
    try {
      const r = await fn(env, shop, { companyId: `BnLc0${++i}`, rounds: 5, perRound: 20, pageDelayMs });
      out[`${name}:${latency}:${pageDelayMs ?? ''}`] = { name, latencyMs: latency, pageDelayMs, ...r, errors: shop.pageErrors.slice() };
    } finally {
      await shop.close();
    }
  }
  out.keepalive = await keepaliveTiming(env);
  return out;
}

/**
 * How long a keepalive request handed over at pagehide takes to reach Klaviyo: a page
 * with a long flush delay tracks 20 events and is closed; the emulator's arrival time
 * minus the close. Its answer comes one server latency later. This is what
 * KEEPALIVE_WAIT_MS (10 s) must exceed with a wide margin.
 */
async function keepaliveTiming(env, runs = 5) {
  const arrivals = [];
  for (let n = 0; n < runs; n += 1) {
    env.emu.reset();
    const shop = await newShop(env);
    try {
      const page = await shop.open({ companyId: `BnKa0${n}`, flushDelayMs: 60_000 });
      const ids = await page.evaluate(() => Array.from({ length: 20 }, (_, i) => window.kl.track('Keepalive Timing', { i })));
      const closed = Date.now();
      await page.close();
      const r = await waitFor(() => env.emu.requests().requests.find((x) => ids.every((id) => x.uniqueIds.includes(id))),
        { timeout: 10_000, interval: 5, what: 'the keepalive request' });
      arrivals.push(r.at - closed);
    } finally {
      await shop.close();
    }
  }
  return { runs, arrivalMs: arrivals, medianMs: median(arrivals), maxMs: Math.max(...arrivals) };
}

// ---------- report ----------

/** Section (d)'s tables and notes. */
function printStartup(d) {
  heading(`(d) start-up, median of ${LOADS} fresh page loads (ms)`);
  table([
    ['page', 'module start -> identify+track returned', 'module start -> ready', 'first HTML script -> track returned', 'first HTML script -> ready'],
    ['create() + identify() + track(), no hints', fmt(d.plain.moduleTrackMs, 2), fmt(d.plain.moduleReadyMs, 1), fmt(d.plain.trackMs, 1), fmt(d.plain.readyMs, 1)],
    ['same with <link rel=modulepreload index.js> + <link rel=preload wasm as=fetch crossorigin>', fmt(d.preload.moduleTrackMs, 2), fmt(d.preload.moduleReadyMs, 1), fmt(d.preload.trackMs, 1), fmt(d.preload.readyMs, 1)],
    ['the inline build (klaviyo-wasm/inline: one file, the bytes inside), no hints', fmt(d.inline.moduleTrackMs, 2), fmt(d.inline.moduleReadyMs, 1), fmt(d.inline.trackMs, 1), fmt(d.inline.readyMs, 1)],
    ...[d.peer, d.peerLite, d.light].filter(Boolean).map((v) => [`${v.label} (pure JavaScript: a baseline)`, fmt(v.moduleTrackMs, 2), fmt(v.moduleReadyMs, 1), fmt(v.trackMs, 1), fmt(v.readyMs, 1)]),
  ]);
  const visits = [d.visit, d.peerVisit, d.peerLiteVisit, d.lightVisit].filter(Boolean);
  heading(`(d) start-up on pages 2-${VISIT_PAGES} of a visit: each page loads the next in the same tab, as a shopper's clicks do (median of ${visits[0].loads} pages, ms)`);
  table([
    ['page', 'module start -> calls returned', 'module start -> ready', 'first HTML script -> calls returned', 'first HTML script -> ready'],
    ...visits.map((v) => [v.label, fmt(v.moduleTrackMs, 2), fmt(v.moduleReadyMs, 1), fmt(v.trackMs, 1), fmt(v.readyMs, 1)]),
  ]);
  if (d.peer) {
    const ratio = (a, b) => `${fmt(a.moduleReadyMs / b.moduleReadyMs, 2)}x`;
    note(`${d.peer.label.split(',')[0]} (${fmt(d.peerBundle.gzip / 1024, 1)} KB gzipped as bundled here) is the pure-JavaScript tracker of the issue's target: its calls are the same three (init, setUserId, track; its ready is init's promise). Ours / it, module start -> ready, no hints: a fresh tab ${ratio(d.plain, d.peer)} (${ratio(d.plain, d.peerLite)} against autocapture off), pages of a visit ${ratio(d.visit, d.peerVisit)} (${ratio(d.visit, d.peerLiteVisit)})`);
  }
  if (d.light) {
    const ms = (a, b) => `${fmt(a.moduleReadyMs, 1)} against ${fmt(b.moduleReadyMs, 1)} ms`;
    const first = (a, b) => `${fmt(a.readyMs, 1)} against ${fmt(b.readyMs, 1)} ms`;
    note(`${d.light.label.split(',')[0]} (${fmt(d.lightBundle.gzip / 1024, 1)} KB gzipped as bundled here) is the lightest of the peers: it can send once newTracker returns (no ready of its own, so its ready is its calls returned). Ours / it, module start -> ready, no hints: a fresh tab ${ms(d.plain, d.light)}, pages of a visit ${ms(d.visit, d.lightVisit)}; from the first HTML script (its download and evaluation counted): ${first(d.plain, d.light)}, pages of a visit ${first(d.visit, d.lightVisit)}`);
  }
  note('module start: the first line of the page\'s module script, once index.js is fetched and evaluated (what bundled storefront code sees); first HTML script: a classic script at the top of <head>, so the column includes fetching index.js.');
  note(`start-up targets without hints: module start -> ready <= 14 ms: ${d.plain.moduleReadyMs <= 14 ? 'PASS' : 'FAIL'} (${fmt(d.plain.moduleReadyMs, 1)}); -> identify+track returned <= 1.3 ms: ${d.plain.moduleTrackMs <= 1.3 ? 'PASS' : 'FAIL'} (${fmt(d.plain.moduleTrackMs, 2)})`);
  note(`the same on pages 2-${VISIT_PAGES} of a visit (one tab): module start -> ready <= 14 ms: ${d.visit.moduleReadyMs <= 14 ? 'PASS' : 'FAIL'} (${fmt(d.visit.moduleReadyMs, 1)}); -> identify+track returned <= 1.3 ms: ${d.visit.moduleTrackMs <= 1.3 ? 'PASS' : 'FAIL'} (${fmt(d.visit.moduleTrackMs, 2)})`);
  note(`the inline build without hints: module start -> ready <= 14 ms: ${d.inline.moduleReadyMs <= 14 ? 'PASS' : 'FAIL'} (${fmt(d.inline.moduleReadyMs, 1)}); -> identify+track returned <= 1.3 ms: ${d.inline.moduleTrackMs <= 1.3 ? 'PASS' : 'FAIL'} (${fmt(d.inline.moduleTrackMs, 2)}); it downloads one file, its bytes decoded and compiled on the main thread at the end of the importing task`);
  note(`${d.floor.label}: module start -> instantiated ${fmt(d.floor.moduleReadyMs, 1)} ms, the floor of any tracker that loads a .wasm on this machine; ours adds ${fmt(d.plain.moduleReadyMs - d.floor.moduleReadyMs, 1)} ms (the core opening, the window's calls)`);
  note(`${d.later.label}: create() -> identify+track returned ${fmt(d.later.createTrackMs, 2)} ms, create() -> ready ${fmt(d.later.createReadyMs, 1)} ms; the .wasm request started ${fmt(d.later.wasmBeforeCreateMs, 1)} ms before create()`);
  for (const v of [d.plain, d.preload, d.later, d.floor, d.inline]) {
    const wasm = v.wasm[0] === null ? 'no wasm request' : `wasm ${fmt(v.wasm[0], 1)}..${fmt(v.wasm[1], 1)} ms`;
    note(`${v.label}: t0 at ${fmt(v.t0Ms, 1)} ms after navigation start; ${v === d.inline ? 'inline.js' : 'index.js'} fetched ${fmt(v.indexJs[0], 1)}..${fmt(v.indexJs[1], 1)} ms, ${wasm} after t0`);
  }
  note('pages: tests/queue/startup.html (?build=inline for the inline build; ?chain=N for N pages in one tab), startup-preload.html, startup-later.html, startup-floor.html, startup-amplitude.html and startup-snowplow.html; localhost, no-store (no cache, no network latency).');
  if (d.errors.length) note(`errors: ${d.errors.join('; ')}`);
}

function report(R) {
  const { a, d, e, f, g } = R;
  const c = (w, n, m) => a[`${w}:${n}:${m}`];
  console.log(`\nklaviyo-wasm queue bench: ${R.browser} (headless); dist/web ${R.build}; emulator answering 202 on the same machine`);
  console.log(`(a)-(c): median of ${REPS} fresh browser contexts per cell; (d): ${LOADS} fresh page loads per row`);
  const loads = Object.entries(R.machine.loadAverage1m).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ');
  console.log(`machine: ${R.machine.cpus} CPUs; 1-min load average ${loads}`
    + `${Math.max(...Object.values(R.machine.loadAverage1m)) > R.machine.cpus ? ' — WARNING: more than the bench was running, figures are noisy' : ''} (the bench alone: about 1)`);

  heading(`(a) main-thread cost of a call: µs per call, all calls in one task (the task includes the library's end-of-task storage write and its first send)`);
  const rowsA = [['calls', 'start', 'ours kl.track()', 'naive setItem(JSON)', 'no tracker', 'net ours (− no tracker)', 'ours / naive', 'ours / no tracker']];
  for (const n of SIZES) {
    for (const m of MODES) {
      const o = c('ours', n, m).usPerCall;
      const z = c('none', n, m);
      rowsA.push([num(n), m, us(c('ours', n, m)), us(c('naive', n, m)), us(z, 3), fmt(o - (z.atClockStep ? 0 : z.usPerCall)), times(o, c('naive', n, m)), times(o, z)]);
    }
  }
  table(rowsA);
  note(`loop only (the calls, without the end-of-task microtask), ours µs per call: ${SIZES.flatMap((n) => MODES.map((m) => `${num(n)} ${m} ${fmt(c('ours', n, m).usPerCallLoop)}`)).join('; ')}`);
  note('cold = the first run in a fresh page (JIT and wasm cold: what a shop sees first); warm = after a warm-up run of the same size, drained.');
  note(`≤ v: the whole task took at most one step of the page's clock (performance.now() moves in ${fmt(a['ours:1000:cold'].clockStepUs, 0)} µs steps here), so only a bound is known.`);
  note('naive = per call localStorage.setItem(key_i, JSON.stringify({metric, properties, value, unique_id: crypto.randomUUID(), time: new Date().toISOString(), profile})).');

  heading('(b) the floor: 10,000 calls in one task, µs per call');
  const floor = (w, label) => [label, ...MODES.map((m) => (c(w, 10_000, m).skipped ? 'skipped' : us(c(w, 10_000, m))))];
  table([
    ['10,000 calls', ...MODES],
    floor('floorJs', 'floor A: JSON.stringify([id, Date.now(), metric, props, opts]) + TextEncoder.encodeInto into a preallocated buffer'),
    floor('floorWasm', 'floor B: A into the wasm memory + the wasm export call(handle, op, len) with no tracker (returns at once)'),
    ['ours kl.track()', ...MODES.map((m) => fmt(c('ours', 10_000, m).usPerCall))],
    ['ours / floor B', ...MODES.map((m) => x(ratio(c('ours', 10_000, m).usPerCall, c('floorWasm', 10_000, m).usPerCall)))],
    ['ours − floor B (µs the core and the adapter add)', ...MODES.map((m) => fmt(c('ours', 10_000, m).usPerCall - c('floorWasm', 10_000, m).usPerCall))],
  ]);
  note('the wasm exports no empty function: floor B calls the shipped call() export of a second instance with a handle no tracker has, so it returns before parsing anything.');
  if (c('floorWasm', 10_000, 'cold').skipped) note(`floor B skipped: ${c('floorWasm', 10_000, 'cold').skipped}`);

  heading('(c) longest main-thread task: 10,000 calls in one task, default options (maxQueueEvents 1000), then the queue drains');
  const lt = (v) => (v === 0 ? '< 50 (none)' : fmt(v, 1));
  const cols = [['ours', 'cold'], ['ours', 'warm'], ['naive', 'cold'], ['naive', 'warm']];
  table([
    ['10,000 calls', ...cols.map(([w, m]) => `${w} ${m}`)],
    ['the calls\' task, own measurement (ms)', ...cols.map(([w, m]) => fmt(c(w, 10_000, m).taskMs, 1))],
    ['the calls\' task, longtask entry (ms)', ...cols.map(([w, m]) => lt(c(w, 10_000, m).taskLongtaskMs))],
    ['  ms per 1,000 calls of that task', ...cols.map(([w, m]) => fmt(c(w, 10_000, m).taskMs / 10, 2))],
    ['longest task while draining, longtask (ms)', ...cols.map(([w, m]) => (w === 'ours' ? lt(c(w, 10_000, m).drainLongestLongtaskMs) : '-'))],
    ['longest gap between 0-ms timer ticks while draining (ms)', ...cols.map(([w, m]) => (w === 'ours' ? fmt(c(w, 10_000, m).drainMaxGapMs, 1) : '-'))],
    ['drain: ms until kl.pending() = 0 / event requests', ...cols.map(([w, m]) => (w === 'ours' ? `${fmt(c(w, 10_000, m).drainMs, 0)} / ${c(w, 10_000, m).requests}` : '-'))],
  ]);
  note('the longest task of the whole run is the calls\' own task; the drain\'s tasks are shorter (a longtask entry exists only for tasks of 50 ms or more; the timer-gap column bounds the rest).');

  printStartup(d);

  heading('(e) page download, gzip -9 (as .ci/size.mjs)');
  table([
    ['what the page downloads', 'raw B', 'gzip B', 'gzip KB'],
    ['npm package: index.js + klaviyo_wasm_bg.wasm', e['index.js'].raw + e['klaviyo_wasm_bg.wasm'].raw, e.npmPageGzip, fmt(e.npmPageGzip / 1024)],
    ['  index.js', e['index.js'].raw, e['index.js'].gzip, fmt(e['index.js'].gzip / 1024)],
    ['  klaviyo_wasm_bg.wasm', e['klaviyo_wasm_bg.wasm'].raw, e['klaviyo_wasm_bg.wasm'].gzip, fmt(e['klaviyo_wasm_bg.wasm'].gzip / 1024)],
    ['script tag: dist/script/klaviyo-wasm.js', e['klaviyo-wasm.js'].raw, e['klaviyo-wasm.js'].gzip, fmt(e['klaviyo-wasm.js'].gzip / 1024)],
    ['script tag page total (klaviyo-wasm.js + wasm)', '', e.scriptTagPageGzip, fmt(e.scriptTagPageGzip / 1024)],
  ]);

  heading('(f) delivery: 1,000 events queued offline, then online');
  table([
    ['1,000 events, one profile', 'value'],
    ['HTTP requests to drain (preflights aside)', f.requests],
    ['  event requests (endpoint:events:status)', f.requestShapes.join(', ')],
    ['  CORS preflights', f.preflights],
    ['request body bytes per event on the wire', fmt(f.wireBytesPerEvent, 0)],
    ['localStorage chars per event (keys + values under q:)', fmt(f.storageCharsPerEvent, 0)],
    ['  with the identity record', fmt(f.storageCharsPerEventWithIdentity, 0)],
    ['accepted / accepted twice', `${f.accepted} / ${f.duplicates}`],
    ['ms from "online" to drained', f.drainMs],
  ]);
  if (f.errors.length) note(`page errors: ${f.errors.join('; ')}`);

  heading(`(g) track then leave: 5 rounds × 20 events in one task, the page leaves ${DELAYS.join(', ')} ms later`);
  table([
    ['scenario', 'events', 'lost', 'sent twice', 'share sent twice', 'event requests', 'settled (ms)'],
    ...Object.values(g).filter((r) => r.name).map((r) => [
      `${r.name === 'navigate' ? `location.href to a fresh page (served in ${r.pageDelayMs} ms)` : 'page.close(), then a new tab'}${r.latencyMs ? `, Klaviyo answers after ${r.latencyMs} ms` : ''}`,
      r.events, r.lost, r.sentTwice, `${fmt(100 * r.shareSentTwice, 1)} %`, r.eventRequests, r.settleMs,
    ]),
  ]);
  note('lost = never accepted; sent twice = its unique_id went over the wire more than once; settled = from the last round until every event was accepted and the last page held nothing.');
  note('when the page is gone before Klaviyo answers, the burst\'s request is still in flight as it leaves: the next page sees its keepalive mark and resends after KEEPALIVE_WAIT_MS (Klaviyo counts the unique_id once).');
  note(`keepalive request handed over at pagehide reached the server ${fmt(g.keepalive.medianMs, 0)} ms after the close (median of ${g.keepalive.runs}, max ${fmt(g.keepalive.maxMs, 0)} ms); KEEPALIVE_WAIT_MS is 10,000 ms.`);

  heading('RATIOS (for the README)');
  for (const n of SIZES) {
    for (const m of MODES) {
      const o = c('ours', n, m).usPerCall;
      const z = c('none', n, m);
      console.log(`  ${num(n).padStart(6)} calls, ${m}: ours ${fmt(o)} µs/call = ${times(o, c('naive', n, m))} the naive setItem(JSON) SDK, `
        + `${times(o, z)} the bare loop (net ${fmt(o - (z.atClockStep ? 0 : z.usPerCall))} µs), ${times(o, c('floorWasm', n, m))} floor B`);
    }
  }
  console.log(`  10,000 calls in one task: longest task ${fmt(c('ours', 10_000, 'cold').taskMs, 1)} ms cold (${fmt(c('ours', 10_000, 'cold').taskMs / 10, 2)} ms per 1,000 calls) `
    + `vs naive ${fmt(c('naive', 10_000, 'cold').taskMs, 1)} ms (${x(ratio(c('ours', 10_000, 'cold').taskMs, c('naive', 10_000, 'cold').taskMs))})`);
  console.log(`  start-up: identify + track returned ${fmt(d.plain.moduleTrackMs, 2)} ms after the module started, ready ${fmt(d.plain.moduleReadyMs, 1)} ms; from the first HTML script ${fmt(d.plain.trackMs, 1)} / ${fmt(d.plain.readyMs, 1)} ms (with preload hints: ${fmt(d.preload.trackMs, 1)} / ${fmt(d.preload.readyMs, 1)} ms); the inline build: ready ${fmt(d.inline.moduleReadyMs, 1)} ms after the module started`);
  console.log(`  download: ${fmt(e.npmPageGzip / 1024)} KB gzip (npm page), script-tag page ${fmt(e.scriptTagPageGzip / 1024)} KB`);
  console.log(`  delivery: 1,000 offline events in ${f.requests} request(s), ${fmt(f.wireBytesPerEvent, 0)} B/event on the wire, ${fmt(f.storageCharsPerEvent, 0)} chars/event stored`);
  for (const r of Object.values(g).filter((v) => v.name)) {
    const where = `${r.name === 'navigate' ? `, pages ${r.pageDelayMs} ms` : ''}${r.latencyMs ? `, Klaviyo ${r.latencyMs} ms` : ''}`;
    console.log(`  ${r.name}${where}: ${r.lost} lost, ${r.sentTwice} of ${r.events} sent twice (${fmt(100 * r.shareSentTwice, 1)} %)`);
  }
  console.log(`  keepalive at pagehide: reached the server ${fmt(g.keepalive.medianMs, 0)} ms after the close (max ${fmt(g.keepalive.maxMs, 0)} ms)`);
}

async function main() {
  const env = await startEnv();
  const R = {
    build: env.build, browser: `Chromium ${env.browser.version()}`, reps: REPS, loads: LOADS, at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, loadAverage1m: {} },
  };
  // Other work on the machine skews every figure: the 1-minute load average after each part.
  const load = (part) => { R.machine.loadAverage1m[part] = os.loadavg()[0]; };
  try {
    load('start');
    if (STARTUP_ONLY) {
      process.stderr.write('(d) start-up only...\n');
      R.d = await benchStartup(env);
      load('d');
      printStartup(R.d);
      return;
    }
    process.stderr.write('(a)-(c) calls...\n');
    R.a = await benchCalls(env);
    load('a-c');
    process.stderr.write('(d) start-up...\n');
    R.d = await benchStartup(env);
    load('d');
    R.e = benchSize();
    process.stderr.write('(f) delivery...\n');
    R.f = await benchDelivery(env);
    process.stderr.write('(g) track then leave...\n');
    R.g = await benchLifecycle(env);
    load('f-g');
  } finally {
    if (env.buildChanged()) R.build += ' (WARNING: dist/web was rebuilt during the run: figures mix two builds)';
    await env.close();
  }
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(R, null, 2)}\n`);
  report(R);
  console.log(`\nall numbers: ${path.relative(ROOT, OUT)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
