// Edge worker bench: what the worker costs, measured against the Klaviyo emulator on loopback,
// and against a trivial JavaScript pass-through worker in the same workerd.
//   node tests/bench/edge-bench.mjs [--n 1000] [--warmup 5000] [--concurrency 20] [--seconds 2]
//                                   [--rounds 3] [--max 100000] [--cold 5] [--orders 300]
//                                   [--fresh 5] [--against <dir>]
// (needs `bash .ci/build.sh edge`; EDGE_DIST=<dir> benches another build; --against <dir> adds
// that other build of the worker, e.g. a copy of dist/edge before a change, as one more
// latency path in the same workerd, so a change is measured side by side with its baseline)
//
// Three paths to the same emulator route (POST /client/events?company_id=<public key>, a valid
// body, an allowed Origin, and the `cf-connecting-ip` Cloudflare's edge sets on every request):
//   direct   node -> the emulator
//   ours     node -> dist/edge/worker.mjs in workerd -> the emulator
//   trivial  node -> `fetch(new Request(env.UPSTREAM + path + search, request))` in the same
//            workerd (one Miniflare, two workers) -> the emulator
//   samesteps (latency only) every step ours takes on this route, in plain JavaScript
//            (tests/bench/same-steps-worker.mjs, the same bindings as ours; shown to answer and
//            forward alike by tests/edge/reference-parity.test.mjs): the bar for ours
//   samejs   (latency only, a floor) fewer steps than ours in plain JavaScript: reads, parses
//            and forwards the body, checks no key, company, bot or address
//   against  (latency only, with --against) another build of ours, with the same bindings
// Every worker is reached on its own socket (Miniflare's unsafeDirectSockets), so neither
// pays for Miniflare's entry worker. Only the HTTP behaviour of ours matters here: any worker
// that forwards that request and answers 202 can be benched.
//
//  1. latency: after a warm-up to steady state (--warmup, 5000 rounds), N sequential requests
//     on each path, interleaved one by one in the same run (drift hits all alike, the order
//     rotates); p50 / p99 of each, what each worker adds over direct, and ours-added /
//     trivial-added, ours-added / samesteps-added (the target) and ours-added / samejs-added
//     (each with a bootstrap 95% interval). Also
//     the same ratios over requests 51-550 of the warm-up: a fresh isolate, before V8 has
//     tiered the worker's code up, pooled over `--fresh` isolates (5), each also alone. With --against, the other build's ratios too, and
//     ours-added / against-added.
//  2. throughput: `concurrency` requests in flight for `seconds` on each path, `rounds` times in
//     rotating order (at most `max` requests per run); req/s summed over the rounds.
//     Then the issue's acceptance lines, PASS or FAIL (the bench exits 0 either way).
//  3. gzipped size of dist/edge: each file and the total (node zlib, level 9).
//  4. cold start: a new Miniflare instance -> first GET /health answer (min / median of `cold`).
//  5. a signed order, synchronous vs queued (DELIVERY_QUEUE): what the backend waits with
//     Klaviyo healthy, slow and down, and how long a queued order takes to reach Klaviyo
//     (tests/bench/edge-queued.mjs; `--orders` per path and condition, 0 skips it).
import os from 'node:os';
import path from 'node:path';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync, constants as zc } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { Miniflare } from 'miniflare';
import { sample } from '../emulator/fixtures.mjs';
import { startEmulator } from '../emulator/server.mjs';
import { TRIVIAL_WORKER, SAME_WORK_JS_WORKER, SAME_STEPS_JS_WORKER } from './reference-workers.mjs';
import { numberOption, stringOption, flag } from './options.mjs';
import { median } from './median.mjs';
import { benchQueued } from './edge-queued.mjs';
import {
  miniflareOptions, besideOurs, fullBindings, makeSecrets, isEdgeBuilt, edgeBuildId, findSecrets, NOT_BUILT,
  EDGE_DIR, ROOT, COMPANY_ID, REVISION, SHOP_ORIGIN, JSON_API,
} from '../edge/harness.mjs';

const N = numberOption('n', 1000);
const CONCURRENCY = numberOption('concurrency', 20);
const SECONDS = numberOption('seconds', 2);
const ROUNDS = Math.max(1, numberOption('rounds', 3));
const MAX = numberOption('max', 100_000);
const COLD = numberOption('cold', 5);
const ORDERS = numberOption('orders', 300);
/** Another build of the worker (a dist/edge copy) to bench beside ours, or null. */
const AGAINST = stringOption('against', null) && path.resolve(stringOption('against', null));
// Steady state: V8 tiers each function up on its own count of calls, and the wasm
// worker runs about fifty small glue functions, call wrappers and wasm functions once a
// request, so it reaches its top tiers only after a few thousand requests (measured on
// this bench: 1.46x at requests 51-550, 1.24-1.28x from about 2,000 on; the JavaScript
// workers settle within a few hundred). Every path gets the same warm-up, and a live
// isolate serves far more. The fresh-isolate window is printed too (section 1).
const WARMUP = numberOption('warmup', 5000);
/** The fresh-isolate window, inside the warm-up: requests EARLY_FROM+1 .. EARLY_FROM+EARLY_N. */
const EARLY_FROM = 50;
const EARLY_N = 500;
// One isolate's window is one draw of how V8 happened to schedule its tier-up: on this VM
// ours ÷ the same steps in JS spread 1.03-1.11x over eight single-isolate runs. So the
// window is taken on `--fresh` isolates (each a new workerd, started one after another)
// and pooled; each one's ratio is printed too.
const FRESH = Math.max(1, numberOption('fresh', 5));

if (!isEdgeBuilt()) {
  console.error(NOT_BUILT);
  process.exit(1);
}
if (AGAINST && !existsSync(path.join(AGAINST, 'worker.mjs'))) {
  console.error(`--against ${AGAINST}: no worker.mjs there (a copy of a built dist/edge)`);
  process.exit(1);
}

// The issue's acceptance targets.
const MAX_ADDED_RATIO_P50 = 1.3;
const MIN_THROUGHPUT_RATIO = 0.8;

const ms = (v) => `${v.toFixed(2)} ms`;
const signedMs = (v) => `${v >= 0 ? '+' : ''}${v.toFixed(2)} ms`;
const times = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : 'n/a');
const kb = (b) => `${(b / 1024).toFixed(1)} KB`;

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
/** ours-added / trivial-added; NaN (n/a) when the trivial worker added nothing measurable. */
function addedRatio(ours, trivial, direct) {
  const t = trivial - direct;
  return t > 0 ? (ours - direct) / t : NaN;
}
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p99: quantile(s, 0.99), min: s[0], max: s[s.length - 1], mean: s.reduce((a, b) => a + b, 0) / s.length };
};

function table(title, head, rows) {
  const all = [head, ...rows].map((r) => r.map(String));
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  console.log(`\n${title}`);
  console.log(line(all[0]));
  console.log(`|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of all.slice(1)) console.log(line(r));
}

const raw = JSON.stringify(sample('clientEvent'));
// On Cloudflare every request carries `cf-connecting-ip` (Cloudflare's edge sets it); Miniflare's
// direct sockets add none, so it is sent here, and ours and the same steps in JS add the
// visitor's address to the profile as they would there.
// `--no-visitor` sends the request without it, as the bench did before (no address to add).
// A browser's user-agent, which ours and the JS references forward to Klaviyo; each
// request another (as real visitors' are), so no path keeps one upstream request set-up.
const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
let visitors = 0;
const headers = {
  'content-type': JSON_API, revision: REVISION, origin: SHOP_ORIGIN,
  ...(flag('no-visitor') ? {} : { 'cf-connecting-ip': '198.51.100.7' }),
};
const query = `/client/events?company_id=${COMPANY_ID}`;

/** One POST /client/events; returns [ms, status]. Reads the whole answer. */
async function once(base, secrets) {
  const t0 = performance.now();
  headers['user-agent'] = `${BROWSER} v${visitors += 1}`;
  const res = await fetch(base + query, { method: 'POST', headers, body: raw });
  const text = await res.text();
  const dt = performance.now() - t0;
  if (secrets && findSecrets(text, secrets).length) throw new Error('a secret leaked into a response');
  return [dt, res.status];
}

function workerdVersion() {
  try {
    return execFileSync(path.join(ROOT, 'node_modules/.bin/workerd'), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The emulator, and one Miniflare (one workerd) running ours, the trivial worker and the same-work JS worker. */
async function startPaths() {
  const emu = await startEmulator({ port: 0 });
  const secrets = makeSecrets();
  let mf;
  try {
    // Ours exactly as the edge tests run it, beside the JavaScript workers in one workerd.
    const bindings = fullBindings({ emu, secrets });
    const { host: _host, port: _port, ...ours } = miniflareOptions(bindings);
    mf = new Miniflare(besideOurs(bindings, [
      { name: 'trivial', modules: true, script: TRIVIAL_WORKER, bindings: { UPSTREAM: emu.url } },
      { name: 'samesteps', modules: true, script: SAME_STEPS_JS_WORKER, bindings },
      { name: 'samejs', modules: true, script: SAME_WORK_JS_WORKER, bindings: { UPSTREAM: emu.url, ORIGIN: SHOP_ORIGIN, REVISION } },
      // The other build: its own files, the same bindings.
      ...(AGAINST ? [{ ...ours, name: 'against', scriptPath: path.join(AGAINST, 'worker.mjs'), modulesRoot: AGAINST }] : []),
    ]));
    await mf.ready;
    const url = async (name) => String(await mf.unsafeGetDirectURL(name)).replace(/\/$/, '');
    return {
      emu, secrets, mf,
      paths: {
        direct: emu.url, ours: await url('ours'), trivial: await url('trivial'), samesteps: await url('samesteps'), samejs: await url('samejs'),
        ...(AGAINST ? { against: await url('against') } : {}),
      },
      close: async () => { await mf.dispose().catch(() => {}); await emu.close(); },
    };
  } catch (e) {
    if (mf) await mf.dispose().catch(() => {});
    await emu.close();
    throw e;
  }
}

const PATHS = ['direct', 'ours', 'trivial'];
/** Latency also runs the same-work JS worker (and the --against build), for reference. */
const LAT_PATHS = [...PATHS, 'samesteps', 'samejs', ...(AGAINST ? ['against'] : [])];
const LABEL = {
  direct: 'direct to emulator', ours: 'through our worker', trivial: 'through the trivial worker',
  samesteps: 'through the same steps in JS', samejs: 'through the floor in JS (fewer steps)',
  against: 'through the --against build',
};
/** The order of round `i`: each path goes first, second, ... equally often. */
const rotation = (i, paths = LAT_PATHS) => paths.map((_, k) => paths[(i + k) % paths.length]);

/**
 * A bootstrap 95% interval of `of`-added / `over`-added at p50 over the interleaved rounds
 * (each resample keeps a round's requests together).
 */
function bootstrapRatio(samples, of = 'ours', over = 'trivial', resamples = 1000) {
  const n = samples.direct.length;
  const ratios = [];
  let seed = 0x9e3779b9;
  const rand = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 2 ** 32; };
  const p50 = (xs) => quantile(xs.sort((a, b) => a - b), 0.5);
  const used = ['direct', of, over];
  for (let r = 0; r < resamples; r += 1) {
    const pick = { direct: [], [of]: [], [over]: [] };
    for (let i = 0; i < n; i += 1) {
      const k = Math.floor(rand() * n);
      for (const p of used) pick[p].push(samples[p][k]);
    }
    const v = addedRatio(p50(pick[of]), p50(pick[over]), p50(pick.direct));
    if (!Number.isNaN(v)) ratios.push(v);
  }
  ratios.sort((a, b) => a - b);
  // A resample where the trivial worker added nothing has no ratio: too few left, no interval.
  return ratios.length >= resamples * 0.95 ? [quantile(ratios, 0.025), quantile(ratios, 0.975)] : [NaN, NaN];
}

/** The secrets to look for in each path's answers: ours and the workers given them. */
const secretsFor = (secrets) => (name) => (name === 'ours' || name === 'against' || name === 'samesteps' ? secrets : null);

/**
 * `rounds` rounds of one request per path, in rotating order, on a workerd that has just
 * started; returns the fresh-isolate window: each path's times in rounds
 * EARLY_FROM+1 .. EARLY_FROM+EARLY_N.
 */
async function warmUp({ paths, secrets }, rounds) {
  const secretsOf = secretsFor(secrets);
  const window = Object.fromEntries(LAT_PATHS.map((p) => [p, []]));
  for (let i = 0; i < rounds; i += 1) {
    const timed = i >= EARLY_FROM && i < EARLY_FROM + EARLY_N;
    for (const name of rotation(i)) {
      const [dt] = await once(paths[name], secretsOf(name));
      if (timed) window[name].push(dt);
    }
  }
  return window;
}

/** The fresh-isolate window of a workerd started for it alone. */
async function freshWindow() {
  const started = await startPaths();
  try {
    return await warmUp(started, EARLY_FROM + EARLY_N);
  } finally {
    await started.close();
  }
}

// The other fresh isolates first, so that none runs beside the main one's warm-up.
const freshWindows = [];
for (let k = 1; k < FRESH; k += 1) freshWindows.push(await freshWindow());

const edge = await startPaths();
const results = {};
try {
  const { emu, secrets, paths } = edge;
  const secretsOf = secretsFor(secrets);
  console.log(`edge build ${edgeBuildId()} (${path.relative(ROOT, EDGE_DIR) || EDGE_DIR})`);
  if (AGAINST) console.log(`against build ${edgeBuildId(AGAINST)} (${AGAINST})`);
  console.log(`node ${process.version}, ${workerdVersion()}, miniflare ${JSON.parse(readFileSync(path.join(ROOT, 'node_modules/miniflare/package.json'), 'utf8')).version}`);
  console.log(`${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${os.platform()} ${os.release()}, load average ${os.loadavg()[0].toFixed(1)}`);

  // ---------- 1. latency ----------
  freshWindows.push(await warmUp(edge, WARMUP));
  emu.reset();
  // The fresh-isolate window, pooled over every isolate's.
  const early = Object.fromEntries(LAT_PATHS.map((p) => [p, freshWindows.flatMap((w) => w[p])]));
  const samples = Object.fromEntries(LAT_PATHS.map((p) => [p, []]));
  const bad = Object.fromEntries(LAT_PATHS.map((p) => [p, 0]));
  for (let i = 0; i < N; i += 1) {
    // Rotate which goes first so none always gets the warmer connection / cache.
    for (const name of rotation(i)) {
      const [dt, status] = await once(paths[name], secretsOf(name));
      if (status !== 202) bad[name] += 1;
      samples[name].push(dt);
    }
  }
  const accepted = emu.requests({ accepted: true }).count;
  emu.reset();
  const st = Object.fromEntries(LAT_PATHS.map((p) => [p, stats(samples[p])]));
  const d = st.direct;
  const added = (p, k) => st[p][k] - d[k];
  const ratio = (k) => addedRatio(st.ours[k], st.trivial[k], d[k]);
  const interval = bootstrapRatio(samples);
  // The same steps in JavaScript are the bar at p50: ours-added / samesteps-added; the floor
  // (samejs) is printed beside it.
  const overJs = (p, from = st, js = 'samesteps') => addedRatio(from[p].p50, from[js].p50, from.direct.p50);
  const overJsInterval = bootstrapRatio(samples, 'ours', 'samesteps');
  const overFloorInterval = bootstrapRatio(samples, 'ours', 'samejs');
  results.latency = {
    ...st, bad, accepted,
    added: Object.fromEntries(LAT_PATHS.filter((p) => p !== 'direct').map((p) => [p, { p50: added(p, 'p50'), p99: added(p, 'p99'), mean: added(p, 'mean') }])),
    ratioP50: ratio('p50'), ratioP99: ratio('p99'), ratioP50Interval: interval,
    oursOverSamestepsP50: overJs('ours'), oursOverSamestepsP50Interval: overJsInterval,
    oursOverSamejsP50: overJs('ours', st, 'samejs'), oursOverSamejsP50Interval: overFloorInterval,
  };
  const row = (p) => [LABEL[p], ms(st[p].p50), ms(st[p].p99), ms(st[p].mean), ms(st[p].min), ms(st[p].max)];
  table(`1. Latency, ${N} sequential POST /client/events per path (interleaved, rotating order; ${WARMUP} warm-up each; emulator accepted ${accepted}/${LAT_PATHS.length * N}; non-202: ${LAT_PATHS.map((p) => `${p} ${bad[p]}`).join(', ')})`,
    ['path', 'p50', 'p99', 'mean', 'min', 'max'],
    [
      ...LAT_PATHS.map(row),
      ['added by our worker', signedMs(added('ours', 'p50')), signedMs(added('ours', 'p99')), signedMs(added('ours', 'mean')), '', ''],
      ['added by the trivial worker', signedMs(added('trivial', 'p50')), signedMs(added('trivial', 'p99')), signedMs(added('trivial', 'mean')), '', ''],
      ['added by the same steps in JS', signedMs(added('samesteps', 'p50')), signedMs(added('samesteps', 'p99')), signedMs(added('samesteps', 'mean')), '', ''],
      ['added by the floor in JS', signedMs(added('samejs', 'p50')), signedMs(added('samejs', 'p99')), signedMs(added('samejs', 'mean')), '', ''],
      ...(AGAINST ? [['added by the --against build', signedMs(added('against', 'p50')), signedMs(added('against', 'p99')), signedMs(added('against', 'mean')), '', '']] : []),
      ['ours added / trivial added', times(ratio('p50')), times(ratio('p99')), times(ratio('mean')), '', ''],
      ['same steps in JS added / trivial added', ...['p50', 'p99', 'mean'].map((k) => times(addedRatio(st.samesteps[k], st.trivial[k], d[k]))), '', ''],
      ['floor in JS added / trivial added', ...['p50', 'p99', 'mean'].map((k) => times(addedRatio(st.samejs[k], st.trivial[k], d[k]))), '', ''],
      ['our worker / direct', times(st.ours.p50 / d.p50), times(st.ours.p99 / d.p99), times(st.ours.mean / d.mean), '', ''],
    ]);
  const span = (iv) => `${times(iv[0])} .. ${times(iv[1])}`;
  console.log(`   ours added / trivial added at p50, bootstrap 95% interval (1000 resamples of the ${N} rounds): ${span(interval)}`);
  console.log(`   ours added / the same steps in JS added at p50: ${times(overJs('ours'))} (95% interval ${span(overJsInterval)}); target <= 1.05x`);
  console.log(`   ours added / the floor in JS added at p50: ${times(overJs('ours', st, 'samejs'))} (95% interval ${span(overFloorInterval)})`);
  let e = null;
  if (early.ours.length) {
    e = Object.fromEntries(LAT_PATHS.map((p) => [p, stats(early[p])]));
    const eRatio = (p) => addedRatio(e[p].p50, e.trivial.p50, e.direct.p50);
    const eOverJsInterval = bootstrapRatio(early, 'ours', 'samesteps');
    const eOverFloorInterval = bootstrapRatio(early, 'ours', 'samejs');
    results.latency.early = {
      ...e, ratioP50: eRatio('ours'), samestepsRatioP50: eRatio('samesteps'), samejsRatioP50: eRatio('samejs'),
      oursOverSamestepsP50: overJs('ours', e), oursOverSamestepsP50Interval: eOverJsInterval,
      oursOverSamejsP50: overJs('ours', e, 'samejs'), oursOverSamejsP50Interval: eOverFloorInterval,
    };
    const each = freshWindows.map((w) => {
      const ws = Object.fromEntries(['direct', 'ours', 'samesteps'].map((p) => [p, stats(w[p])]));
      return overJs('ours', ws);
    });
    results.latency.freshEach = each;
    console.log(`   fresh isolate (requests ${EARLY_FROM + 1}-${EARLY_FROM + EARLY_N} of each warm-up, before V8 has tiered the worker up, on ${FRESH} isolates pooled): ours added / trivial added at p50 ${times(eRatio('ours'))}`
      + ` (ours ${signedMs(e.ours.p50 - e.direct.p50)}, trivial ${signedMs(e.trivial.p50 - e.direct.p50)}); the same steps in JS ${times(eRatio('samesteps'))}, the floor in JS ${times(eRatio('samejs'))}`);
    console.log(`   fresh isolate: ours added / the same steps in JS added at p50: ${times(overJs('ours', e))} (95% interval ${span(eOverJsInterval)}); target <= 1.05x`);
    console.log(`   fresh isolate, each isolate alone: ${each.map(times).join(', ')} (median ${times(median(each))})`);
    console.log(`   fresh isolate: ours added / the floor in JS added at p50: ${times(overJs('ours', e, 'samejs'))} (95% interval ${span(eOverFloorInterval)})`);
  }
  if (AGAINST) {
    // The other build beside ours: each over the same steps in JS, and ours over it.
    const vs = bootstrapRatio(samples, 'ours', 'against');
    const againstOverJs = bootstrapRatio(samples, 'against', 'samesteps');
    results.latency.against = {
      dir: AGAINST,
      overSamestepsP50: overJs('against'), overSamestepsP50Interval: againstOverJs,
      oursOverAgainstP50: addedRatio(st.ours.p50, st.against.p50, d.p50), oursOverAgainstP50Interval: vs,
    };
    console.log(`   --against build added / the same steps in JS added at p50: ${times(overJs('against'))} (95% interval ${span(againstOverJs)});`
      + ` ours added / --against added: ${times(results.latency.against.oursOverAgainstP50)} (95% interval ${span(vs)})`);
    if (e) {
      const eVs = bootstrapRatio(early, 'ours', 'against');
      const eAgainstOverJs = bootstrapRatio(early, 'against', 'samesteps');
      Object.assign(results.latency.against, {
        early: {
          overSamestepsP50: overJs('against', e), overSamestepsP50Interval: eAgainstOverJs,
          oursOverAgainstP50: addedRatio(e.ours.p50, e.against.p50, e.direct.p50), oursOverAgainstP50Interval: eVs,
        },
      });
      console.log(`   fresh isolate: --against build added / the same steps in JS added at p50: ${times(overJs('against', e))} (95% interval ${span(eAgainstOverJs)});`
        + ` ours added / --against added: ${times(results.latency.against.early.oursOverAgainstP50)} (95% interval ${span(eVs)})`);
    }
  }
  if ([ratio('p50'), ratio('p99'), ratio('mean'), ...interval].some(Number.isNaN)) {
    console.log('   n/a: the trivial worker added nothing measurable there (noise at that quantile: raise --n)');
  }

  // ---------- 2. throughput ----------
  async function load(base, secretsToCheck, seconds = SECONDS) {
    const deadline = performance.now() + seconds * 1000;
    let started = 0;
    const statuses = {};
    const lat = [];
    const t0 = performance.now();
    const lane = async () => {
      while (performance.now() < deadline && started < MAX) {
        started += 1;
        try {
          const [dt, status] = await once(base, secretsToCheck);
          statuses[status] = (statuses[status] || 0) + 1;
          lat.push(dt);
        } catch (e) {
          if (e.message.includes('secret')) throw e;
          statuses.error = (statuses.error || 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    const elapsed = (performance.now() - t0) / 1000;
    const done = Object.values(statuses).reduce((a, b) => a + b, 0);
    return { done, elapsed, ok: statuses[202] || 0, statuses, lat };
  }
  // Warm-up under load (JIT, connection pools), not counted.
  const warm = Math.min(1, SECONDS / 2);
  for (const name of PATHS) await load(paths[name], secretsOf(name), warm);
  emu.reset();
  const runs = { direct: [], ours: [], trivial: [] };
  let oursAccepted = 0;
  for (let r = 0; r < ROUNDS; r += 1) {
    for (const name of rotation(r, PATHS)) {
      const run = await load(paths[name], secretsOf(name));
      if (name === 'ours') oursAccepted += emu.requests({ accepted: true }).count;
      emu.reset();
      runs[name].push(run);
    }
  }
  const tp = Object.fromEntries(PATHS.map((p) => {
    const rs = runs[p];
    const done = rs.reduce((a, x) => a + x.done, 0);
    const elapsed = rs.reduce((a, x) => a + x.elapsed, 0);
    const statuses = {};
    for (const x of rs) for (const [k, v] of Object.entries(x.statuses)) statuses[k] = (statuses[k] || 0) + v;
    // Only answers that did the job (202) count as throughput.
    const ok = rs.reduce((a, x) => a + x.ok, 0);
    return [p, { done, ok, elapsed, rps: ok / elapsed, perRound: rs.map((x) => x.ok / x.elapsed), statuses, lat: stats(rs.flatMap((x) => x.lat)) }];
  }));
  const tpRatio = tp.ours.rps / tp.trivial.rps;
  const roundRatios = tp.ours.perRound.map((v, i) => v / tp.trivial.perRound[i]);
  results.throughput = { ...tp, ratio: tpRatio, roundRatios };
  const fmt = (t) => Object.entries(t.statuses).map(([k, n]) => `${k}:${n}`).join(' ');
  table(`2. Throughput, ${CONCURRENCY} in flight for ${SECONDS} s per path, ${ROUNDS} rounds in rotating order after a ${warm} s warm-up each (at most ${MAX} requests a run), loopback; req/s = 202 answers / time`,
    ['path', 'requests', 'req/s', 'req/s per round', 'answers', 'p50', 'p99'],
    [
      ...PATHS.map((p) => [LABEL[p], tp[p].done, tp[p].rps.toFixed(0), tp[p].perRound.map((v) => v.toFixed(0)).join(' / '), fmt(tp[p]), ms(tp[p].lat.p50), ms(tp[p].lat.p99)]),
      ['ours / trivial', '', times(tpRatio), roundRatios.map((v) => v.toFixed(2)).join(' / '), '', times(tp.ours.lat.p50 / tp.trivial.lat.p50), times(tp.ours.lat.p99 / tp.trivial.lat.p99)],
    ]);
  console.log(`   emulator accepted ${oursAccepted} of the ${tp.ours.ok} our worker answered 202 to`);

  // ---------- acceptance ----------
  const verdict = (ok) => (ok ? 'PASS' : 'FAIL');
  const latencyOk = ratio('p50') <= MAX_ADDED_RATIO_P50; // false when n/a
  const throughputOk = tpRatio >= MIN_THROUGHPUT_RATIO;
  results.acceptance = { latencyP50: latencyOk, throughput: throughputOk };
  console.log('\nAcceptance (the issue\'s targets; a bench: it exits 0 either way)');
  console.log(`  ${verdict(latencyOk)}  ours adds at most ${MAX_ADDED_RATIO_P50}x what the trivial worker adds at p50: ${times(ratio('p50'))}`
    + ` (ours ${signedMs(added('ours', 'p50'))}, trivial ${signedMs(added('trivial', 'p50'))} over direct ${ms(d.p50)};`
    + ` 95% interval ${times(interval[0])} .. ${times(interval[1])})`);
  console.log(`  ${verdict(throughputOk)}  throughput at least ${MIN_THROUGHPUT_RATIO}x the trivial worker's: ${times(tpRatio)}`
    + ` (ours ${tp.ours.rps.toFixed(0)} req/s, trivial ${tp.trivial.rps.toFixed(0)} req/s; per round ${roundRatios.map((v) => v.toFixed(2)).join(' / ')})`);
  console.log(`  for reference, at p99: ours ${signedMs(added('ours', 'p99'))}, trivial ${signedMs(added('trivial', 'p99'))}, ratio ${times(ratio('p99'))}`);
} finally {
  await edge.close();
}

// ---------- 3. size ----------
{
  const files = readdirSync(EDGE_DIR, { recursive: true })
    .map((f) => String(f))
    .filter((f) => statSync(path.join(EDGE_DIR, f)).isFile())
    .sort();
  const rows = [];
  let rawTotal = 0;
  let gzTotal = 0;
  let deployRaw = 0;
  let deployGz = 0;
  for (const f of files) {
    const data = readFileSync(path.join(EDGE_DIR, f));
    const gz = gzipSync(data, { level: zc.Z_BEST_COMPRESSION }).length;
    rawTotal += data.length;
    gzTotal += gz;
    const deployed = !/\.d\.m?ts$/.test(f);
    if (deployed) { deployRaw += data.length; deployGz += gz; }
    rows.push([f + (deployed ? '' : ' (types)'), data.length, gz, kb(gz)]);
  }
  rows.push(['total, every file', rawTotal, gzTotal, kb(gzTotal)]);
  rows.push(['total, deployed (.mjs/.js + .wasm)', deployRaw, deployGz, kb(deployGz)]);
  results.size = { rawTotal, gzTotal, deployRaw, deployGz };
  table('3. dist/edge size (gzip level 9)', ['file', 'bytes', 'gzip bytes', 'gzip'], rows);
}

// ---------- 4. cold start ----------
{
  const bindings = {
    KLAVIYO_PRIVATE_KEY: 'pk_cold_start_bench_000000000000000',
    KLAVIYO_PUBLIC_KEY: COMPANY_ID,
    ALLOWED_ORIGINS: SHOP_ORIGIN,
    KLAVIYO_API_BASE: 'http://127.0.0.1:9',
    EDGE_SIGNING_SECRET: 'cold-start-bench-signing-secret',
    BROWSER_SERVER_METRICS: 'Placed Order',
    KLAVIYO_WEBHOOK_SECRET: 'cold-start-bench-webhook-secret',
  };
  const runs = [];
  for (let i = 0; i < COLD; i += 1) {
    const t0 = performance.now();
    const mf = new Miniflare(miniflareOptions(bindings));
    try {
      const url = String(await mf.ready).replace(/\/$/, '');
      const t1 = performance.now();
      const res = await fetch(`${url}/health`);
      await res.text();
      const t2 = performance.now();
      if (res.status !== 200) throw new Error(`/health answered ${res.status}`);
      const res2 = await fetch(`${url}/health`);
      await res2.text();
      const t3 = performance.now();
      runs.push({ ready: t1 - t0, first: t2 - t1, total: t2 - t0, warm: t3 - t2 });
    } finally {
      await mf.dispose();
    }
  }
  const col = (k) => stats(runs.map((r) => r[k]));
  const row = (name, k) => { const s = col(k); return [name, ms(s.min), ms(s.p50), ms(s.max)]; };
  results.cold = Object.fromEntries(['ready', 'first', 'total', 'warm'].map((k) => [k, col(k)]));
  table(`4. Cold start: new Miniflare -> first GET /health answer (${COLD} runs)`, ['phase', 'min', 'median', 'max'], [
    row('new Miniflare -> ready (workerd up, script loaded)', 'ready'),
    row('ready -> first /health answer', 'first'),
    row('new Miniflare -> first /health answer', 'total'),
    row('second /health answer (warm, for reference)', 'warm'),
  ]);
}

// ---------- 5. the queued path ----------
if (ORDERS > 0) results.queued = await benchQueued({ n: ORDERS, table, ms, times });

if (process.env.BENCH_JSON) console.log(JSON.stringify(results));
