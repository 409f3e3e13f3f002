// Where the edge worker's CPU goes, per request, at steady state: `perf` samples of workerd
// with V8's JIT symbols, our worker beside the same steps written in JavaScript
// (tests/bench/same-steps-worker.mjs, with ours' settings).
//   node tests/bench/edge-profile.mjs [--n 6000] [--warmup 6000] [--hz 20000] [--top 15] [--detail]
// Needs Linux `perf` (Debian: linux-perf) and `bash .ci/build.sh edge`; EDGE_DIST=<dir>
// profiles another build. A diagnostic, not a test: no verdict, exit 0.
// The shipped .wasm has no names, so the wasm functions are named from a copy that
// wasm-opt makes with the build's own flags and its names kept (-g), from the build's
// intermediate output (target/wasm-pack/edge/); without it they show as wasm-function[N].
//
// Miniflare cannot pass V8 flags, so this runs workerd itself with a config of its own:
// `--perf-basic-prof` makes V8 write /tmp/perf-<pid>.map, which names JIT code (JS
// functions with their tier: ~ interpreted, ^ Sparkplug, + Maglev, * TurboFan; wasm
// functions with -liftoff / -turbofan). Both workers get the same warm-up, then each is
// recorded alone for N sequential POST /client/events to a local upstream that answers 202.
// Figures are whole-process samples (all threads) divided by N: the same machine noise
// applies to both, so read them side by side, not as absolute costs.
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { sample } from '../emulator/fixtures.mjs';
import {
  fullBindings, makeSecrets, isEdgeBuilt, NOT_BUILT, EDGE_DIR, ROOT,
  COMPANY_ID, REVISION, SHOP_ORIGIN, JSON_API, COMPATIBILITY_DATE,
} from '../edge/harness.mjs';
import { SAME_STEPS_JS_WORKER } from './reference-workers.mjs';
import { numberOption, flag } from './options.mjs';

const N = numberOption('n', 6000);
const WARMUP = numberOption('warmup', 6000);
const HZ = numberOption('hz', 20000);
const TOP = numberOption('top', 15);
/** --detail: also the top symbols of V8's runtime and builtins, ours beside the JS worker. */
const DETAIL = flag('detail');

if (!isEdgeBuilt()) {
  console.error(NOT_BUILT);
  process.exit(1);
}
try {
  execFileSync('perf', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('perf is not installed (Debian: apt-get install linux-perf); nothing to profile with');
  process.exit(0);
}

const upstream = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => { res.writeHead(202, { 'content-length': '0' }); res.end(); });
});
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;

// A free port for each worker's socket.
async function freePort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-profile-'));
mkdirSync(path.join(dir, 'script'));
for (const f of ['worker.mjs', 'klaviyo_edge.mjs', 'klaviyo_edge_bg.wasm', 'script/klaviyo-wasm.js.txt',
  'script/klaviyo_wasm_bg.wasm.bin', 'script/snippet.min.js.txt']) copyFileSync(path.join(EDGE_DIR, f), path.join(dir, f));
namedWasm(path.join(dir, 'klaviyo_edge_bg.wasm'));

/** Replaces `out` with the same optimisation of the build's raw wasm, names kept. */
function namedWasm(out) {
  const rawWasm = path.join(ROOT, 'target/wasm-pack/edge/klaviyo_edge_bg.wasm');
  const flagsFile = path.join(ROOT, 'target/wasm-pack/edge.wasm-opt-flags');
  if (process.env.EDGE_DIST || !existsSync(rawWasm) || !existsSync(flagsFile)) {
    console.log('(wasm functions unnamed: no intermediate build output to name them from)');
    return;
  }
  const flags = readFileSync(flagsFile, 'utf8').split('\n').filter((f) => f && !f.startsWith('--strip'));
  try {
    execFileSync(path.join(ROOT, 'node_modules/.bin/wasm-opt'), ['-g', ...flags, rawWasm, '-o', out], { stdio: 'ignore' });
  } catch {
    console.log('(wasm functions unnamed: wasm-opt failed on the intermediate output)');
  }
}
writeFileSync(path.join(dir, 'samejs.mjs'), SAME_STEPS_JS_WORKER);
const text = (o) => Object.entries(o).map(([k, v]) => `(name = ${JSON.stringify(k)}, text = ${JSON.stringify(v)})`).join(', ');
const ports = { ours: await freePort(), samejs: await freePort() };
// Both workers get the same settings.
const bindings = fullBindings({ emu: { url: upstreamUrl }, secrets: makeSecrets() });
writeFileSync(path.join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "ours", worker = (modules = [(name = "worker.mjs", esModule = embed "worker.mjs"),
      (name = "klaviyo_edge.mjs", esModule = embed "klaviyo_edge.mjs"),
      (name = "klaviyo_edge_bg.wasm", wasm = embed "klaviyo_edge_bg.wasm"),
      (name = "script/klaviyo-wasm.js.txt", text = embed "script/klaviyo-wasm.js.txt"),
      (name = "script/klaviyo_wasm_bg.wasm.bin", data = embed "script/klaviyo_wasm_bg.wasm.bin"),
      (name = "script/snippet.min.js.txt", text = embed "script/snippet.min.js.txt")],
      compatibilityDate = "${COMPATIBILITY_DATE}",
      bindings = [${text(bindings)}],
      globalOutbound = "net")),
    (name = "samejs", worker = (modules = [(name = "samejs.mjs", esModule = embed "samejs.mjs")],
      compatibilityDate = "${COMPATIBILITY_DATE}",
      bindings = [${text(bindings)}],
      globalOutbound = "net")),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "ours", address = "127.0.0.1:${ports.ours}", http = (), service = "ours"),
    (name = "samejs", address = "127.0.0.1:${ports.samejs}", http = (), service = "samejs"),
  ],
  v8Flags = ["--perf-basic-prof"],
);`);

const workerd = spawn(path.join(ROOT, 'node_modules/.bin/workerd'), ['serve', '--experimental', path.join(dir, 'config.capnp')], { stdio: ['ignore', 'inherit', 'inherit'] });
const base = { ours: `http://127.0.0.1:${ports.ours}`, samejs: `http://127.0.0.1:${ports.samejs}` };
const raw = JSON.stringify(sample('clientEvent'));
// As on Cloudflare, where its edge sets `cf-connecting-ip` on every request (as the bench does).
const headers = { 'content-type': JSON_API, revision: REVISION, origin: SHOP_ORIGIN, 'cf-connecting-ip': '198.51.100.7' };
async function once(name) {
  const res = await fetch(`${base[name]}/client/events?company_id=${COMPANY_ID}`, { method: 'POST', headers, body: raw });
  await res.text();
  if (res.status !== 202) throw new Error(`${name} answered ${res.status}`);
}

/** perf's per-symbol sample counts -> { category: µs per request }, and wasm functions. */
function summarise(file) {
  const out = execFileSync('perf', ['report', '-i', file, '--sort', 'sym', '--stdio', '-n'], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
  const usPerSample = 1e6 / HZ / N;
  const cats = {};
  const wasm = {};
  const v8 = {};
  for (const line of out.split('\n')) {
    const m = line.match(/^\s*[\d.]+%\s+(\d+)\s+\[(.)\]\s+(.*)$/);
    if (!m) continue;
    const us = Number(m[1]) * usPerSample;
    const sym = m[3].trim();
    let cat;
    if (m[2] === 'k') cat = 'kernel';
    else if (/^JS:.*-(turbofan|liftoff)$/.test(sym)) {
      cat = 'wasm code';
      const name = sym.slice(3).replace(/::h[0-9a-f]{16}/, '');
      wasm[name] = (wasm[name] || 0) + us;
    } else if (/^JS:(wasm-to-js|js-to-wasm)/.test(sym)) cat = 'wasm<->JS call wrappers';
    else if (/klaviyo_edge\.mjs/.test(sym)) cat = 'wasm-bindgen glue (JS)';
    else if (/^JS:/.test(sym)) cat = 'other JS (the handler)';
    else if (/^Builtins_Wasm/.test(sym)) cat = 'V8 builtins for wasm';
    else if (/^Builtins_/.test(sym)) cat = 'V8 builtins';
    else if (/^v8::/.test(sym)) cat = 'V8 runtime';
    else if (/tcmalloc|TCMalloc/i.test(sym)) cat = 'allocator (tcmalloc)';
    else if (/^workerd::/.test(sym)) cat = 'workerd';
    else if (/^kj::|capnp/.test(sym)) cat = 'kj / capnp';
    else cat = 'other native';
    cats[cat] = (cats[cat] || 0) + us;
    if (cat.startsWith('V8')) v8[sym] = (v8[sym] || 0) + us;
  }
  return { cats, wasm, v8 };
}

try {
  for (;;) {
    try { await fetch(`${base.samejs}/`); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  for (let i = 0; i < WARMUP; i += 1) { await once('ours'); await once('samejs'); }
  const result = {};
  for (const name of ['ours', 'samejs']) {
    const file = path.join(dir, `${name}.perf.data`);
    const rec = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(HZ), '-p', String(workerd.pid), '-o', file], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500)); // perf attaches
    for (let i = 0; i < N; i += 1) await once(name);
    rec.kill('SIGINT');
    await new Promise((r) => rec.on('exit', r));
    result[name] = summarise(file);
  }
  const cats = [...new Set([...Object.keys(result.ours.cats), ...Object.keys(result.samejs.cats)])]
    .sort((a, b) => (result.ours.cats[b] || 0) - (result.ours.cats[a] || 0));
  const us = (v) => (v || 0).toFixed(1).padStart(8);
  const total = (r) => Object.values(r.cats).reduce((a, b) => a + b, 0);
  console.log(`workerd CPU per request by kind, µs (perf cpu-clock at ${HZ} Hz, ${N} requests each after ${WARMUP} warm-up each)`);
  console.log(`${'kind'.padEnd(26)}${'ours'.padStart(8)}${'same JS'.padStart(8)}${'diff'.padStart(8)}`);
  for (const c of cats) console.log(`${c.padEnd(26)}${us(result.ours.cats[c])}${us(result.samejs.cats[c])}${us((result.ours.cats[c] || 0) - (result.samejs.cats[c] || 0))}`);
  console.log(`${'total'.padEnd(26)}${us(total(result.ours))}${us(total(result.samejs))}${us(total(result.ours) - total(result.samejs))}`);
  console.log(`\nour wasm functions, top ${TOP}, µs per request (tier after the name)`);
  for (const [name, v] of Object.entries(result.ours.wasm).sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`${us(v)}  ${name.length > 110 ? `${name.slice(0, 107)}...` : name}`);
  }
  if (DETAIL) {
    const o = result.ours.v8;
    const j = result.samejs.v8;
    const names = [...new Set([...Object.keys(o), ...Object.keys(j)])]
      .sort((a, b) => ((o[b] || 0) - (j[b] || 0)) - ((o[a] || 0) - (j[a] || 0)));
    console.log(`\nV8 runtime and builtins: where ours spends most beside the JS worker, µs per request`);
    console.log(`${'ours'.padStart(8)}${'same JS'.padStart(8)}  symbol`);
    for (const n of names.slice(0, TOP)) console.log(`${us(o[n])}${us(j[n])}  ${n.length > 100 ? `${n.slice(0, 97)}...` : n}`);
  }
} finally {
  workerd.kill();
  upstream.close();
  rmSync(dir, { recursive: true, force: true });
}
