// The engine matrix: every scenario of scenarios.mjs in Chromium, Firefox ESR
// and WebKitGTK, each over WebDriver, against the Klaviyo emulator. Prints one line per
// engine and scenario (`engine  scenario  PASS|FAIL|SKIP (reason)  details`), then a
// summary table and an engine × feature table of what the library met in each engine.
//
//   node --test --test-concurrency=1 tests/engines/       (needs a built dist/web)
//   KW_ENGINES=firefox,webkit node --test tests/engines/  (a subset)
//
// An engine whose browser or driver is missing is reported SKIP with what to install
// (.ci/engines.sh installs them). Results also go to target/engines/matrix.{txt,json}.
import { test, before, after } from 'node:test';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startEmulator } from '../emulator/server.mjs';
import { startSite, isBuilt, buildId, PAGE_PATH, ROOT } from './site.mjs';
import { ENGINES, Browser } from './drivers.mjs';
import { SCENARIOS as ALL, Skip, wireLine } from './scenarios.mjs';

const SELECTED = (process.env.KW_ENGINES || 'chromium,firefox,webkit').split(',').map((s) => s.trim()).filter(Boolean);
// KW_SCENARIOS=name,name runs only those (while working on them).
const ONLY = process.env.KW_SCENARIOS?.split(',');
const SCENARIOS = ALL.filter((s) => !ONLY || ONLY.includes(s.name));
const SCENARIO_MS = 90_000;
const OUT_DIR = path.join(ROOT, 'target/engines');

const results = []; // {engine, scenario, status, reason, details, ms}
const engineInfo = {}; // name -> {version, driverVersion, offline}
const features = {}; // name -> {feature: value}
const lines = [];
let emu;
let site;
let build;
const t0 = Date.now();

function say(line = '') {
  lines.push(line);
  console.log(line);
}

const pad = (s, n) => String(s).padEnd(n);
function record(engine, scenario, status, text, ms) {
  const r = { engine, scenario, status, ms };
  if (status === 'PASS') r.details = text;
  else r.reason = text;
  results.push(r);
  const verdict = status === 'PASS' ? 'PASS' : `${status} (${text})`;
  say(`${pad(engine, 9)} ${pad(scenario, 17)} ${status === 'PASS' ? `${pad(verdict, 5)} ${text}` : verdict}${ms !== undefined ? `  [${(ms / 1000).toFixed(1)} s]` : ''}`);
}

before(async () => {
  if (!isBuilt()) throw new Error('dist/web is missing: run `bash .ci/build.sh` first');
  build = buildId();
  emu = await startEmulator({ port: 0 });
  site = await startSite();
  say(`engine matrix: dist/web build ${build}; engines: ${SELECTED.join(', ')}; ${SCENARIOS.length} scenarios each`);
});

after(async () => {
  await site?.close();
  await emu?.close();
  summarize();
});

const pageUrl = (opts = {}) => {
  const u = new URL(PAGE_PATH, site.url);
  for (const [k, v] of Object.entries(opts)) if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  return u.href;
};

/** The emulator's summary, for one shop only (a straggler of an earlier scenario cannot count). */
const summaryFor = (companyId, filter = {}) => emu.requests({ ...filter, companyId });

/** Runs `fn` with a deadline of our own, so a hung scenario is recorded and cleaned up. */
function withDeadline(ms, fn) {
  let timer;
  return Promise.race([
    fn(),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`scenario took over ${ms / 1000} s`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

for (const name of SELECTED) {
  const engine = ENGINES[name];
  test(`engine ${name}`, { timeout: SCENARIOS.length * SCENARIO_MS + 120_000 }, async (t) => {
    if (!engine) {
      record(name, '*', 'FAIL', `unknown engine (known: ${Object.keys(ENGINES).join(', ')})`);
      throw new Error(`unknown engine ${name}`);
    }
    const found = engine.find();
    if (!found.ok && process.env.CI === 'true') {
      // In CI a missing engine is a failure: a run that tested no browser must not pass.
      for (const sc of SCENARIOS) record(name, sc.name, 'FAIL', `missing under CI=true: ${found.reason}`);
      throw new Error(`engine ${name} is missing under CI=true: ${found.reason}`);
    }
    if (!found.ok) {
      for (const sc of SCENARIOS) record(name, sc.name, 'SKIP', found.reason);
      t.skip(found.reason);
      return;
    }
    const started = Date.now();
    let session;
    try {
      session = await engine.start(found);
    } catch (e) {
      for (const sc of SCENARIOS) record(name, sc.name, 'FAIL', `the engine did not start: ${e.message}`);
      throw e;
    }
    engineInfo[name] = { version: session.version, driverVersion: session.driverVersion, offline: session.offline?.how ?? 'none: the emulator drops connections instead', startMs: Date.now() - started };
    say(`${pad(name, 9)} ${session.version}; driver ${session.driverVersion}; started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    features[name] = {};
    const browser = new Browser(session, site.url);
    const prefix = name[0].toUpperCase();
    let n = 0;
    try {
      await browser.init(pageUrl({ init: 0 }));
      const ua = await browser.home.eval(() => navigator.userAgent);
      engineInfo[name].ua = ua;
      for (const sc of SCENARIOS) {
        n += 1;
        const companyId = `${prefix}nG${String(n).padStart(3, '0')}`;
        await t.test(sc.name, { timeout: SCENARIO_MS + 30_000 }, async (st) => {
          emu.reset();
          const ctx = {
            engine: name,
            session,
            browser,
            emu,
            companyId,
            home: browser.home,
            url: (opts = {}) => pageUrl({ companyId, apiBase: emu.url, ...opts }),
            open: (opts = {}) => browser.open(pageUrl({ companyId, apiBase: emu.url, ...opts })),
            summary: (filter) => summaryFor(companyId, filter),
            feature: (key, value) => { features[name][key] = value; },
          };
          const began = Date.now();
          try {
            const details = await withDeadline(SCENARIO_MS, () => sc.run(ctx));
            record(name, sc.name, 'PASS', details, Date.now() - began);
          } catch (e) {
            if (e instanceof Skip) {
              record(name, sc.name, 'SKIP', e.reason, Date.now() - began);
              st.skip(e.reason);
              return;
            }
            record(name, sc.name, 'FAIL', `${e.message.split('\n')[0]}`, Date.now() - began);
            st.diagnostic(`wire: ${wireLine(ctx.summary())}`);
            throw e;
          } finally {
            // Every window but home closed, storage cleared, the emulator forgets this shop.
            await withDeadline(30_000, async () => {
              await browser.reset(pageUrl({ init: 0 }));
              await browser.home.eval(() => localStorage.clear());
            }).catch((e) => st.diagnostic(`cleanup: ${e.message}`));
            emu.reset();
          }
        });
      }
    } finally {
      await session.quit();
      engineInfo[name].totalMs = Date.now() - started;
    }
  });
}

// ---------------------------------------------------------------- the tables

const FEATURES = [
  ['webLocks', 'Web Locks'],
  ['lease', 'lease path (navigator.locks hidden)'],
  ['storageEvents', 'storage events between windows'],
  ['keepaliveFlag', 'keepalive flag (library)'],
  ['keepaliveOnClose', 'request made as a window closes'],
  ['abortTimeout', 'AbortSignal.timeout'],
  ['compileStreaming', 'wasm served as application/wasm'],
  ['wasmWrongMime', 'wasm served with a wrong MIME type'],
  ['quota', 'localStorage full'],
  ['offline', 'offline over WebDriver'],
];

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)];
}

function summarize() {
  const engines = SELECTED.filter((e) => results.some((r) => r.engine === e));
  if (!engines.length) return;
  const cell = (e, s) => {
    const r = results.find((x) => x.engine === e && x.scenario === s);
    return r ? r.status : '-';
  };
  say('');
  say(`SUMMARY (${((Date.now() - t0) / 1000).toFixed(0)} s in all; build ${build})`);
  for (const l of table(['scenario', ...engines], SCENARIOS.map((s) => [s.name, ...engines.map((e) => cell(e, s.name))]))) say(l);
  const counts = engines.map((e) => {
    const mine = results.filter((r) => r.engine === e);
    const c = (st) => mine.filter((r) => r.status === st).length;
    const info = engineInfo[e];
    return `${e}: ${c('PASS')} pass, ${c('FAIL')} fail, ${c('SKIP')} skip${info?.totalMs ? `, ${(info.totalMs / 1000).toFixed(0)} s` : ''}`;
  });
  say(counts.join('; '));
  for (const r of results.filter((x) => x.status === 'SKIP')) say(`skipped: ${r.engine} ${r.scenario}: ${r.reason}`);

  const probed = engines.filter((e) => features[e]);
  if (probed.length) {
    say('');
    say('ENGINE × FEATURE (measured by the probes in tests/engines/page.js)');
    for (const e of probed) features[e].offline = engineInfo[e]?.offline ?? '?';
    const rows = FEATURES.map(([k, label]) => [label, ...probed.map((e) => features[e][k] ?? '(not measured)')]);
    const versions = ['engine', ...probed.map((e) => engineInfo[e]?.version ?? e)];
    for (const l of table(versions, rows)) say(l);
  }
  if (build && buildId().split(' ')[0] !== build.split(' ')[0]) say(`WARNING: dist/web was rebuilt during this run (now ${buildId()}); results mix two builds`);
  try {
    mkdirSync(OUT_DIR, { recursive: true });
    writeFileSync(path.join(OUT_DIR, 'matrix.txt'), `${lines.join('\n')}\n`);
    writeFileSync(path.join(OUT_DIR, 'matrix.json'), `${JSON.stringify({ build, engines: engineInfo, results, features }, null, 2)}\n`);
  } catch { /* the printed output is what counts */ }
}
