#!/usr/bin/env node
// .ci/size.mjs [DIST_DIR] [--explain] — size report of the built package (default dist/web).
//
// Gzipped size (node zlib, level 9) and raw size of every .wasm and every .js file in
// DIST_DIR (recursively), each and in total. For the browser package the total that counts
// is what an npm user's page downloads: index.js and the .wasm. Exits 1 if
// that total exceeds SIZE_BUDGET_KB (default 33.68; KB = 1024 B), 2 if there is nothing to
// measure. Run `bash .ci/build.sh` first (`npm run size` does both).
//
// Why 29.21 first: the measured size + 0.5 KB, so no later change grows the page silently. The
// page measured 34.54 KB before the core stopped copying text between steps, 30.55 KB after,
// 29.10 KB after a second round (plain loops for the queue, shared rule helpers), 28.94 KB
// with a UTF-8 check of our own instead of std's, and 28.71 KB with the .wasm's functions
// in the order gzip packs smallest (.ci/wasm-order.mjs). Fixes of the loading window and
// of the first-party cookie then took that 0.5 KB back (29.22 KB): 29.23 since the last of
// them (a cookie written after a denial), which did not fit the margin left; 29.38 since
// trackers of one shop in one page hear each other's writes (155 B: a tracker that did
// not send waited for the next page, and ignored the other's denial until then); 29.76
// since five reviews' faults (377 B: another tab's localStorage.clear() taken for a
// delivery, a 429's pause forgotten by the next page and the other tabs, online ending a
// 503's Retry-After, the cookie after a logout, an adopted page view, __kla_off's state);
// 29.84 since the cookie's requests go one write at a time, each aborted after 10 s
// (a hung POST /id left a page's calls without cookies for good, two logouts could leave
// the cookie naming the first, a write landing after a denial's DELETE brought it back),
// and the first Active on Site waits for the page's load, as the landing page's
// (Klaviyo's tag added later made two): 100 B; 29.92 (30,630 B measured, 29.912 KB)
// since the page marks its calls visitor=page when its visitor is its own (a logout
// whose POST /id failed gave the worker's cookie the calls), the landing view at the
// load leaves a route change's page as the last, and a tracker closed before the load
// makes no view: 78 B; 29.93 (30,637 B) since a denial ends the asking of the cookie even
// before the page knows the worker, and leaving a denial is a new visitor: 7 B; 30.12
// (30,832 B, 30.109 KB) since a page that asks the cookie for its visitor stores the ids
// made up meanwhile (a tab opened beside it took such an id for its visitor and wrote it
// over the cookie), a failed question writes nothing over the cookie, and tabs that start
// together follow the identity stored, not the event's (they swapped ids for good): 195 B;
// 30.55 (31,278 B, 30.545 KB) since Active on Site beside Klaviyo's onsite script goes for
// a shopper we know and it does not (klaviyo.js sends none for a browser it has not
// identified, so a signed-in shopper had none), and a subscription or back-in-stock
// request names a visitor nothing named yet, as Klaviyo's signup form does (a new
// subscriber's cart and browsing went to an anonymous profile), provisionally: a
// sign-in or a later subscription replaces that name, never joins it: 446 B (the last
// 35 B of them the .wasm's function order: that last step made the module 62 B smaller raw);
// 30.58 (31,306 B, 30.572 KB) since our identify is handed to klaviyo.js where the page
// has it, with consent when called and when accepted (a shopper named only through us
// stayed unknown to it: 92 B of index.js), and a _kx goes only with calls that name
// nobody else, a subscription that gives an email or phone with those alone (a shared
// device's sign-in or sign-up carried the earlier person's _kx: the .wasm 64 B smaller
// gzipped, most of it the function order): 28 B;
// 30.64 (31,370 B, 30.635 KB) since an identify made while consent is pending is handed
// to klaviyo.js at the grant, in order, and never after a denial or a reset in between
// (a consent banner answered after a sign-in left the shopper unknown to it), and no
// refused subscribe or backInStock reaches the page as an unhandled rejection: 64 B;
// 30.68 (31,408 B, 30.672 KB) since a second tracker of the shop in the page, or one
// created again after close(), sends no second Active on Site for a view already sent,
// and a .wasm whose load failed is loaded again by the next tracker created: 38 B;
// 30.74 (31,468 B, 30.730 KB) for what a review of those found: one view map for every
// copy of the module in the page, a landing view sent once by two trackers, a view made
// again when the tracker that made it will not deliver it (denied, failed, closed while
// pending), klaviyo.js given the identifiers as they were at the call, and no error of
// window.klaviyo into the page: 61 B; 30.77 (31,499 B, 30.761 KB) for what the last
// review found: a call made right before close() in the same task is written (it was
// lost), two pending trackers granted together make one view, and a tracker closed
// while pending has the others make the page's view again: 31 B; 30.93 (31,659 B, 30.917
// KB) for three faults two reviews found: a .wasm fetched once whatever the server
// answers (a 404 was asked for twice) and options that are no object named (23 B), ids
// made of getRandomValues, so a page served over plain http (no crypto.randomUUID)
// imports the package instead of throwing (86 B), and an email or phone number Klaviyo's
// refusal quotes kept out of onError's detail (51 B); 30.97 (31,708 B, 30.965 KB) for
// what a review of those found: compileStreaming only where the engine has it and for
// exactly application/wasm (a `; charset` stopped the load), and the redaction done on
// each parsed string, phone numbers without a + included (49 B); 31.05 (31,782 B, 31.037
// KB) for what a review of those found: any token with an @ (an invalid address
// leaked), bounded repeats (a long answer took quadratic time), an error's id, code and
// pointer kept, dates, times and ids not taken for phone numbers, our own reports left
// as they are (74 B); 31.03 (31,765 B, 31.021 KB) once a date or an id kept could no
// longer run on into a phone number after it (matched apart): 17 B less; 31.24 (31,979 B,
// 31.229 KB) for what a review of hostile input found and a review of those fixes:
// calls after close() refused through onError (once, even for a call onError makes) and
// a denial after it erased, the worker's cookie too; a fetch that throws or gives no
// Response taken as a failed request; a throwing getter refused by name; NaN, Infinity
// and an invalid Date in `time` or any field the core reads as a number refused by name
// (214 B); 31.36 (32,103 B, 31.351 KB) for what a review of hostile page environments
// found, and a review of those fixes: a Promise polyfill without allSettled, Web Locks
// that throw, a frozen history, a fetch polyfill's Response for the .wasm, a localStorage
// stand-in that cannot list its keys, and an environment that keeps the core from
// starting reported as load with the calls kept and nothing of the core left running
// (124 B); 31.59 (32,343 B, 31.585 KB) for what a review of null and blank input found,
// and a review of those fixes: a blank or null member not given (a blank name refused
// the whole identify, an empty phone field a signup, a null id switched addedToCart's
// shape), an identifier's null or blank kept alone and removed beside another one (never
// two people's ids in one profile), a subscription's blank email never filled from the
// device, a blank email not handed to klaviyo.js, a consent of null no longer "granted"
// (240 B); 31.84 (32,595 B, 31.831 KB) for a visitor's profile requests in order, one at
// a time, and records dated after every record a page made or read (an older profile
// request retried after a newer one ended Klaviyo's profile on older values), and what a
// review of that found: held per visitor, never woken for a held one (342 B), less 90 B
// once the options, `uniqueId` and a subscription's fields shared one "there and not
// null" look-up (`validate::present`); 32.40 (33,173 B, 32.396 KB) for storefront
// signals as Klaviyo's flows read them, and the faults reviews found (the .wasm 396 B:
// Added to Cart of our shape under the guide's AddedItem* names, which abandoned-cart
// templates read, with each name once and null members left out; Started Checkout's
// $value; index.js 182 B: a prerendered page sending nothing until shown (71 B), the
// automatic Active on Site's `page` (13 B), a tab in the back/forward cache or frozen
// giving up the sender's lock (98 B: other tabs stalled ten minutes, pages evicted from
// the cache, two senders in WebKit)); 32.66 (33,438 B, 32.654 KB) for a page back from the
// back/forward cache catching up on what other tabs did meanwhile (index.js 256 B: WebKit's
// restored page sent other tabs' deliveries again and the calls it held from before
// another tab's denial, then what a review of that found: calls lost to a clear made
// meanwhile, a denial dated ahead of the clock taken for one, a page whose wasm is loading
// or failed saving its calls from before the denial again; and what the simulation found:
// a pending tab's own visitor lost, delivered calls sent again on a 202 heard back or at
// a hide before the lock; and what a last review found: a clear followed by the next
// page's visitor taken for deliveries, a frozen loading tab's late erase) and for a Web
// Worker, where
// Shopify runs app pixels (9 B: create() threw there, and a timer threw uncaught); 33.02
// (33,804 B, 33.012 KB) for a denial another tab made while this page was frozen or in
// the cache and heard late (index.js 147 B, .wasm 219 B: Chromium hands a frozen page
// the writes made meanwhile with their events, one by one, so its erase took what the
// other tab wrote after granting again, and its replayed denial deleted the worker's
// cookie of the visitor granted since; then what two reviews and the simulation of
// Chromium's delivery found: the shop's return listener's call sent after the denial, a
// full quota hiding the denial, a record left by a denying page with a stale view sent);
// 33.22 (34,014 B, 33.217 KB) for one currency for the tracker's calls (`currency`,
// `setCurrency`: .wasm 87 B, index.js 150 B with what two reviews found; Klaviyo takes
// a value without its currency to be in the account's) and for a closed tracker's
// memory given back (.wasm 70 B: each create/close kept about 3.4 KB for good); 33.31
// (34,101 B, 33.302 KB) after both; 33.57 (34,366 B, 33.561 KB) for Klaviyo's `$value`
// (track's value) and `$event_id` (every event's unique_id, which the call returns)
// among an event's properties, as its onsite script takes them (.wasm 203 B, index.js
// 62 B with what a review found: the id read from the call's text, and the look-ups
// only where the text has a `$`, which took back a cold call's cost; a number's
// `$event_id` quoted by jsontext's `quote`, not by hand, 32 B less); 33.68 (34,487 B,
// 33.679 KB) for a `$value` JSON cannot hold refused by name in Started Checkout, as the
// README says (.wasm 108 B: the look-up and the refusal; one string compared cost 102 B
// and a function of its own 124 B, so not the strings), and the package's own reports logged
// under `debug` (index.js 13 B, read once at create).
//
// The script-tag install (dist/script/, built with dist/web) gets its own table after
// dist/web's, or alone with `node .ci/size.mjs dist/script`: klaviyo-wasm.js and the
// .wasm (the two files its page loads) and their total, and snippet.min.js, which is
// pasted into the page and must stay under SNIPPET_LIMIT bytes raw (exit 1 if not). The
// script-tag page has no budget of its own: it is the npm page plus the command queue
// and Klaviyo's command shapes (js/script/), shown as the difference.
//
// The inline build (dist/web/inline.js, `klaviyo-wasm/inline`: one file, the .wasm's bytes
// inside) is listed beside the npm page, with the difference, and has a budget of its
// own: INLINE_BUDGET_KB (default 34.74: the measured 29.60 KB + 0.5 KB, then the cost of
// the first-party cookie's consent fixes, of the page's trackers hearing each other and
// of five reviews' faults, the cookie's requests in order and the first page view at load, the visitor=page mark
// and the landing view's fixes, the made-up ids kept while the cookie is asked, Active on
// Site beside klaviyo.js for a shopper only we know and subscriptions that name the
// visitor, our identify handed to klaviyo.js and the _kx rule, the pending identify handed
// over at the grant, one view per page and a failed load tried again, the three
// faults above, the hostile-input ones, the page-environment ones, the null and blank
// input ones, the profile requests in order, and this stop's storefront signals,
// prerendered pages and back/forward cache, then the catch-up of a page back from that
// cache and a Web Worker's, then a denial heard late by a frozen page, then one currency
// for the tracker's calls and a closed tracker's memory given back, then Klaviyo's
// `$value` and `$event_id` among an event's properties, then a `$value` JSON cannot hold
// refused in Started Checkout; exit 1 if over).
//
// --explain (`npm run size -- --explain`): then also what the wasm is made of. The build's
// wasm-pack output is run again through wasm-opt with the shipped flags (saved by build.sh)
// but keeping the function names, and parsed (.ci/wasm-explain.mjs): the largest functions
// and data segments, and bytes per origin (project module, wasm-bindgen, allocator, std).
import { readFileSync, readdirSync, statSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join, relative, resolve, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { explainWasm } from './wasm-explain.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const explain = args.includes('--explain');
const dist = resolve(root, args.find((a) => a !== '--explain') ?? 'dist/web');
const budgetKb = Number(process.env.SIZE_BUDGET_KB ?? 33.68);
const GOAL_KB = 16;      // product goal, gzipped total
const SNOWPLOW_KB = 18;  // Snowplow browser tracker, gzipped (peer reference)
const KB = 1024;

if (!Number.isFinite(budgetKb) || budgetKb <= 0) {
  console.error(`size: SIZE_BUDGET_KB must be a positive number (got ${process.env.SIZE_BUDGET_KB})`);
  process.exit(2);
}
if (!existsSync(dist)) {
  console.error(`size: ${relative(root, dist) || dist} does not exist — run: bash .ci/build.sh`);
  process.exit(2);
}
const kb = (n) => (n / KB).toFixed(2);
const measure = (file) => {
  const buf = readFileSync(file);
  return { raw: buf.length, gz: gzipSync(buf, { level: constants.Z_BEST_COMPRESSION }).length };
};
/** Prints a table of `[name, raw, gz]` rows, a rule before the rows at `breaks`. */
function table(title, rows, breaks) {
  const w = Math.max(...rows.map((r) => r[0].length), 4);
  const line = (a, b, c, d) => `${a.padEnd(w)}  ${b.padStart(10)}  ${c.padStart(10)}  ${d.padStart(8)}`;
  console.log(title);
  console.log(line('file', 'raw B', 'gzip B', 'gzip KB'));
  console.log('-'.repeat(w + 34));
  rows.forEach(([n, raw, gz], i) => {
    if (breaks.includes(i)) console.log('-'.repeat(w + 34));
    console.log(line(n, String(raw), String(gz), kb(gz)));
  });
}
const SNIPPET_LIMIT = 1024;
const scriptDist = join(root, 'dist/script');
if (basename(dist) === 'script') process.exit(scriptReport(dist) ? 0 : 1);

const walk = (dir) => readdirSync(dir).flatMap((name) => {
  const p = join(dir, name);
  return statSync(p).isDirectory() ? walk(p) : [p];
});
const files = walk(dist)
  .filter((p) => /\.(wasm|m?js)$/.test(p))
  .map((p) => ({ name: relative(dist, p), kind: p.endsWith('.wasm') ? 'wasm' : 'js', ...measure(p) }))
  .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'wasm' ? -1 : 1));

if (!files.some((f) => f.kind === 'wasm')) {
  console.error(`size: no .wasm in ${relative(root, dist)} — run: bash .ci/build.sh`);
  process.exit(2);
}

const sum = (list, k) => list.reduce((n, f) => n + f[k], 0);
// The npm package's page loads index.js and the wasm; any other file is reported on its
// own. Without an index.js (dist/edge), everything counts.
const hasIndex = files.some((f) => f.name === 'index.js');
const inPage = (f) => !hasIndex || f.kind === 'wasm' || f.name === 'index.js';
const page = files.filter(inPage);
const others = files.filter((f) => !inPage(f));
const rows = [
  ...page.map((f) => [f.name, f.raw, f.gz]),
  [hasIndex ? 'TOTAL (npm page: index.js + wasm)' : 'TOTAL', sum(page, 'raw'), sum(page, 'gz')],
  ...others.map((f) => [`${f.name} (not on the npm page)`, f.raw, f.gz]),
];
table(`size of ${relative(root, dist)}/ (gzip -9)`, rows, [page.length, page.length + 1]);

const total = sum(page, 'gz');
const pct = (ref) => `${((100 * total) / (ref * KB)).toFixed(0)}%`;
console.log(`reference: ${kb(total)} KB gz = ${pct(GOAL_KB)} of the ${GOAL_KB} KB goal, `
  + `${pct(SNOWPLOW_KB)} of Snowplow's ${SNOWPLOW_KB} KB`);
const over = total > budgetKb * KB;
if (over) console.error(`size: OVER BUDGET: ${kb(total)} KB gz > ${budgetKb} KB (SIZE_BUDGET_KB)`);
else console.log(`budget: ${kb(total)} KB gz <= ${budgetKb} KB (SIZE_BUDGET_KB) — ok`);
const scriptOk = basename(dist) === 'web' && existsSync(scriptDist) ? scriptReport(scriptDist, total) : true;
const inlineOk = inlineReport(files.find((f) => f.name === 'inline.js'), total);
if (explain) explainReport();
if (over || !scriptOk || !inlineOk) process.exit(1);

// --- dist/web/inline.js ------------------------------------------------------------------
/** The inline build (`klaviyo-wasm/inline`): one file, the .wasm's bytes inside. Its own
 * budget, the measured size + 0.5 KB (INLINE_BUDGET_KB); false when over it. */
function inlineReport(inline, npmGz) {
  if (!inline) return true; // a build before the inline one: nothing to hold
  const limitKb = Number(process.env.INLINE_BUDGET_KB ?? 34.74);
  console.log(`inline page (klaviyo-wasm/inline, inline.js alone): ${kb(inline.gz)} KB gz, the npm page + ${kb(inline.gz - npmGz)} KB: one request instead of two`);
  if (inline.gz <= limitKb * KB) {
    console.log(`inline budget: ${kb(inline.gz)} KB gz <= ${limitKb} KB (INLINE_BUDGET_KB) — ok`);
    return true;
  }
  console.error(`size: INLINE OVER BUDGET: ${kb(inline.gz)} KB gz > ${limitKb} KB (INLINE_BUDGET_KB)`);
  return false;
}

// --- dist/script --------------------------------------------------------------------------
/** The script-tag install's table; false when the snippet is over its limit. `npmGz`: the
 * npm page's gzipped total, to show what the script tag adds. */
function scriptReport(dir, npmGz) {
  const need = ['klaviyo_wasm_bg.wasm', 'klaviyo-wasm.js', 'snippet.min.js'];
  const missing = need.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) {
    console.error(`size: ${relative(root, dir)} has no ${missing.join(', ')} — run: bash .ci/build.sh`);
    return false;
  }
  const [wasm, js, snippet] = need.map((f) => measure(join(dir, f)));
  const total = { raw: wasm.raw + js.raw, gz: wasm.gz + js.gz };
  table(`\nsize of ${relative(root, dir)}/ (gzip -9): the script-tag install`, [
    [need[0], wasm.raw, wasm.gz],
    [need[1], js.raw, js.gz],
    ['TOTAL (script-tag page: klaviyo-wasm.js + wasm)', total.raw, total.gz],
    ['snippet.min.js (pasted into the page)', snippet.raw, snippet.gz],
  ], [2, 3]);
  if (npmGz !== undefined) {
    console.log(`script-tag page: ${kb(total.gz)} KB gz, the npm page + ${kb(total.gz - npmGz)} KB (command queue, Klaviyo's command shapes)`);
  }
  const ok = snippet.raw < SNIPPET_LIMIT;
  if (ok) console.log(`snippet: ${snippet.raw} B < ${SNIPPET_LIMIT} B — ok`);
  else console.error(`size: SNIPPET TOO BIG: snippet.min.js is ${snippet.raw} B, the limit is under ${SNIPPET_LIMIT} B`);
  return ok;
}

// --- --explain -------------------------------------------------------------------------
function explainReport() {
  // build.sh names the intermediate files after the package: web (dist/web) or edge.
  const pkg = basename(dist) === 'edge' ? 'edge' : 'web';
  const wasmName = pkg === 'edge' ? 'klaviyo_edge_bg.wasm' : 'klaviyo_wasm_bg.wasm';
  const input = join(root, 'target/wasm-pack', pkg, wasmName);
  const flagsFile = join(root, 'target/wasm-pack', `${pkg}.wasm-opt-flags`);
  for (const f of [input, flagsFile]) {
    if (!existsSync(f)) {
      console.error(`size: --explain needs ${relative(root, f)} — run: bash .ci/build.sh${pkg === 'edge' ? ' edge' : ''}`);
      process.exit(2);
    }
  }
  // The shipped flags, but with the name section kept: binaryen's -g keeps names and does
  // not change the code it emits (checked below against the shipped file).
  const flags = readFileSync(flagsFile, 'utf8').split('\n').filter((f) => f && f !== '--strip-debug');
  const local = join(root, 'node_modules/.bin/wasm-opt');
  const tmp = mkdtempSync(join(tmpdir(), 'wasm-explain-'));
  let info, run;
  try {
    const out = join(tmp, wasmName);
    run = spawnSync(existsSync(local) ? local : 'wasm-opt', [...flags, '-g', input, '-o', out], { stdio: 'inherit' });
    if (run.status === 0) info = explainWasm(readFileSync(out));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!info) {
    console.error(`size: wasm-opt ${[...flags, '-g'].join(' ')} failed${run.error ? `: ${run.error.message}` : ''}`);
    process.exit(2);
  }

  const { rows, totals } = info;
  const whole = totals.func + totals.data;
  const shipped = files.find((f) => f.name === wasmName);
  const share = (n) => `${((100 * n) / whole).toFixed(1)}%`;
  const exportModule = sourceExports();
  for (const r of rows) r.group = groupOf(r, exportModule);

  console.log(`\nwhat ${wasmName} is made of (wasm-opt ${flags.join(' ')} -g)`);
  console.log(`code ${totals.func} B in ${rows.filter((r) => r.kind === 'func').length} functions + `
    + `data ${totals.data} B in ${rows.filter((r) => r.kind === 'data').length} segments = ${whole} B`
    + (shipped ? ` of the ${shipped.raw} B shipped file (the rest: types, imports, exports, tables, …)` : ''));
  if (shipped) {
    // Only the name section should differ; if the code does, the numbers are approximate.
    const s = explainWasm(readFileSync(join(dist, wasmName))).totals;
    if (s.func !== totals.func || s.data !== totals.data) {
      console.log(`warning: the shipped wasm has code ${s.func} B + data ${s.data} B: this build differs, figures approximate`);
    }
  }
  console.log('note: raw bytes after wasm-opt, names kept only for this report; gzip shrinks the shipped file'
    + ` further${shipped ? ` (${shipped.raw} -> ${shipped.gz} B)` : ''}.`);

  const gw = Math.max(...rows.map((r) => r.group.length), 5);
  console.log(`\ntop 20 functions and data segments`);
  console.log(`${'bytes'.padStart(7)}  ${'%'.padStart(6)}  ${'origin'.padEnd(gw)}  name`);
  [...rows].sort((a, b) => b.bytes - a.bytes).slice(0, 20).forEach((r) => {
    console.log(`${String(r.bytes).padStart(7)}  ${share(r.bytes).padStart(6)}  ${r.group.padEnd(gw)}  ${r.name}`);
  });

  const groups = new Map();
  for (const r of rows) {
    const g = groups.get(r.group) ?? { bytes: 0, count: 0 };
    g.bytes += r.bytes; g.count += 1;
    groups.set(r.group, g);
  }
  console.log('\nby origin (a function counts for the first project module its name mentions, so');
  console.log(' Vec<core::queue::Item>::push is core::queue; a #[wasm_bindgen] export counts for its module)');
  console.log(`${'origin'.padEnd(gw)}  ${'bytes'.padStart(7)}  ${'%'.padStart(6)}  ${'items'.padStart(5)}`);
  console.log('-'.repeat(gw + 26));
  [...groups].sort((a, b) => b[1].bytes - a[1].bytes).forEach(([g, { bytes, count }]) => {
    console.log(`${g.padEnd(gw)}  ${String(bytes).padStart(7)}  ${share(bytes).padStart(6)}  ${String(count).padStart(5)}`);
  });
  console.log('-'.repeat(gw + 26));
  console.log(`${'TOTAL'.padEnd(gw)}  ${String(whole).padStart(7)}  ${share(whole).padStart(6)}  ${String(rows.length).padStart(5)}`);
}

// Export name -> project module, from the #[wasm_bindgen] items in src/: a free function
// `pub fn call` in src/browser/exports.rs is exported as `call` (or its js_name), the
// methods of `#[wasm_bindgen] impl Tracker` as `tracker_<method>`. Their names in the wasm
// carry no path, and LTO inlines the Rust function into the export, so without this the
// biggest functions would read as "other".
function sourceExports() {
  const map = new Map(), classes = new Map();
  const walkRs = (dir) => readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walkRs(p) : p.endsWith('.rs') ? [p] : [];
  });
  const src = join(root, 'src');
  for (const file of existsSync(src) ? walkRs(src) : []) {
    const mod = relative(src, file).replace(/\\/g, '/').replace(/(\/mod)?\.rs$/, '').replace(/\//g, '::');
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/#\[wasm_bindgen(?:\(([^)]*)\))?\]\s*(?:(?:#\[[^\]]*\]|\/\/[^\n]*)\s*)*pub\s+(?:async\s+)?fn\s+(\w+)/g)) {
      map.set(/js_name\s*=\s*"?(\w+)/.exec(m[1] ?? '')?.[1] ?? m[2], mod);
    }
    for (const m of text.matchAll(/#\[wasm_bindgen[^\]]*\]\s*impl\s+(\w+)/g)) classes.set(m[1].toLowerCase(), mod);
  }
  return (name) => map.get(name) ?? classes.get(/^([a-z0-9]+)_/.exec(name)?.[1]);
}

function groupOf(row, exportModule) {
  if (row.kind === 'data') return 'data';
  const n = row.raw;
  // Project code first, also when monomorphised into std or wasm-bindgen generics
  // (drop_in_place::<Vec<queue::Item>>, a project closure wrapped by wasm-bindgen): it is
  // there because of that module.
  const own = /klaviyo_wasm(?:\[[0-9a-f]+\])?::(core|browser|edge)::(\w+)/.exec(n);
  if (own) return `${own[1]}::${own[2]}`;
  const mod = row.export && !n.includes('::') ? exportModule(row.export) : undefined;
  if (mod) return mod;
  if (/wasm_bindgen|__wbindgen|__wbg|__externref|js_sys/.test(n)) return 'wasm-bindgen glue/shims';
  if (/dlmalloc|talc|lol_alloc|__rust_(alloc|realloc|dealloc|alloc_zeroed)\b|__rdl_/.test(n)) return 'allocator';
  // std paths, inherent methods of primitives (`<str>::trim`, `<[u8]>::to_vec_in`), mem*.
  if (/(^|\W)(core|alloc|std|compiler_builtins)(\[[0-9a-f]+\])?::/.test(n) || /^mem(cmp|cpy|move|set)$/.test(n)
      || /^<\[?&?(str|char|bool|[iuf](8|16|32|64|128|size))\b/.test(n)) return 'std/core/alloc';
  return 'other';
}
