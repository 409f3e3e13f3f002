// Edge worker bench: what the worker costs, measured against the Klaviyo emulator on loopback.
//   node tests/bench/edge-bench.mjs [--n 500] [--concurrency 20] [--seconds 3] [--max 100000] [--cold 5]
// (needs `bash .ci/build.sh edge`; EDGE_DIST=<dir> benches another build)
//
//  1. latency the worker adds: N sequential POST /client/events through the worker and N
//     direct to the emulator, interleaved one by one in the same run (drift hits both alike);
//     p50 / p99 of each and their ratio.
//  2. throughput through the worker: `concurrency` requests in flight for `seconds` (at most
//     `max` requests), loopback; the same against the emulator alone for reference.
//  3. gzipped size of dist/edge: each file and the total (node zlib, level 9).
//  4. cold start: a new Miniflare instance -> first GET /health answer (min / median of `cold`).
import os from 'node:os';
import path from 'node:path';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync, constants as zc } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { Miniflare } from 'miniflare';
import { sample } from '../emulator/fixtures.mjs';
import {
  startEdge, miniflareOptions, isEdgeBuilt, edgeBuildId, findSecrets, NOT_BUILT, EDGE_DIR, ROOT,
  COMPANY_ID, REVISION, SHOP_ORIGIN, JSON_API,
} from '../edge/harness.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
};
const N = opt('n', 500);
const CONCURRENCY = opt('concurrency', 20);
const SECONDS = opt('seconds', 3);
const MAX = opt('max', 100_000);
const COLD = opt('cold', 5);
const WARMUP = 50;

if (!isEdgeBuilt()) {
  console.error(NOT_BUILT);
  process.exit(1);
}

const ms = (v) => `${v.toFixed(2)} ms`;
const kb = (b) => `${(b / 1024).toFixed(1)} KB`;

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
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
const headers = { 'content-type': JSON_API, revision: REVISION, origin: SHOP_ORIGIN };
const query = `/client/events?company_id=${COMPANY_ID}`;

/** One POST /client/events; returns [ms, status]. Reads the whole answer. */
async function once(base, secrets) {
  const t0 = performance.now();
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

const edge = await startEdge();
const W = edge.worker.url;
const E = edge.emu.url;
const results = {};
try {
  console.log(`edge build ${edgeBuildId()} (${path.relative(ROOT, EDGE_DIR) || EDGE_DIR})`);
  console.log(`node ${process.version}, ${workerdVersion()}, miniflare ${JSON.parse(readFileSync(path.join(ROOT, 'node_modules/miniflare/package.json'), 'utf8')).version}`);
  console.log(`${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${os.platform()} ${os.release()}`);

  // ---------- 1. latency ----------
  for (let i = 0; i < WARMUP; i += 1) { await once(E); await once(W, edge.secrets); }
  edge.emu.reset();
  const direct = [];
  const via = [];
  const bad = { direct: 0, worker: 0 };
  for (let i = 0; i < N; i += 1) {
    // Alternate which goes first so neither always gets the warmer connection / cache.
    const pair = i % 2 === 0 ? [['direct', E], ['worker', W]] : [['worker', W], ['direct', E]];
    for (const [name, base] of pair) {
      const [dt, status] = await once(base, name === 'worker' ? edge.secrets : null);
      if (status !== 202) bad[name] += 1;
      (name === 'direct' ? direct : via).push(dt);
    }
  }
  const accepted = edge.emu.requests({ accepted: true }).count;
  edge.emu.reset();
  const d = stats(direct);
  const v = stats(via);
  results.latency = { direct: d, worker: v, bad, accepted };
  table(`1. Latency, ${N} sequential POST /client/events each (interleaved; ${WARMUP} warm-up each; emulator accepted ${accepted}/${2 * N}; non-202: direct ${bad.direct}, worker ${bad.worker})`,
    ['path', 'p50', 'p99', 'mean', 'min', 'max'],
    [
      ['direct to emulator', ms(d.p50), ms(d.p99), ms(d.mean), ms(d.min), ms(d.max)],
      ['through the worker', ms(v.p50), ms(v.p99), ms(v.mean), ms(v.min), ms(v.max)],
      ['worker / direct', `${(v.p50 / d.p50).toFixed(2)}x`, `${(v.p99 / d.p99).toFixed(2)}x`, `${(v.mean / d.mean).toFixed(2)}x`, '', ''],
      ['added by the worker', ms(v.p50 - d.p50), ms(v.p99 - d.p99), ms(v.mean - d.mean), '', ''],
    ]);

  // ---------- 2. throughput ----------
  async function load(base, secrets) {
    const deadline = performance.now() + SECONDS * 1000;
    let started = 0;
    const statuses = {};
    const lat = [];
    const t0 = performance.now();
    const lane = async () => {
      while (performance.now() < deadline && started < MAX) {
        started += 1;
        try {
          const [dt, status] = await once(base, secrets);
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
    return { done, elapsed, rps: done / elapsed, ok: statuses[202] || 0, statuses, lat: stats(lat) };
  }
  const tw = await load(W, edge.secrets);
  const twAccepted = edge.emu.requests({ accepted: true }).count;
  edge.emu.reset();
  const td = await load(E);
  edge.emu.reset();
  results.throughput = { worker: tw, direct: td };
  const fmt = (t) => Object.entries(t.statuses).map(([k, n]) => `${k}:${n}`).join(' ');
  table(`2. Throughput, ${CONCURRENCY} in flight for ${SECONDS} s (at most ${MAX} requests), loopback`,
    ['path', 'requests', 'req/s', 'answers', 'p50', 'p99'],
    [
      ['through the worker', tw.done, tw.rps.toFixed(0), fmt(tw), ms(tw.lat.p50), ms(tw.lat.p99)],
      ['direct to emulator', td.done, td.rps.toFixed(0), fmt(td), ms(td.lat.p50), ms(td.lat.p99)],
    ]);
  console.log(`   emulator accepted ${twAccepted} of the ${tw.ok} the worker answered 202 to`);
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

if (process.env.BENCH_JSON) console.log(JSON.stringify(results));
