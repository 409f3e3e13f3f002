#!/usr/bin/env node
// .ci/size.mjs [DIST_DIR] — size report of the built package (default dist/web).
//
// Gzipped size (node zlib, level 9) and raw size of every .wasm and every .js file in
// DIST_DIR (recursively: wasm-bindgen glue, hand-written wrapper, loader, snippets), each and
// total. Exits 1 if the total gzipped size exceeds SIZE_BUDGET_KB (default 40; KB = 1024 B),
// 2 if there is nothing to measure. Run `bash .ci/build.sh` first (`npm run size` does both).
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, process.argv[2] ?? 'dist/web');
const budgetKb = Number(process.env.SIZE_BUDGET_KB ?? 40);
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

const walk = (dir) => readdirSync(dir).flatMap((name) => {
  const p = join(dir, name);
  return statSync(p).isDirectory() ? walk(p) : [p];
});
const files = walk(dist)
  .filter((p) => /\.(wasm|m?js)$/.test(p))
  .map((p) => {
    const buf = readFileSync(p);
    return {
      name: relative(dist, p),
      kind: p.endsWith('.wasm') ? 'wasm' : 'js',
      raw: buf.length,
      gz: gzipSync(buf, { level: constants.Z_BEST_COMPRESSION }).length,
    };
  })
  .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'wasm' ? -1 : 1));

if (!files.some((f) => f.kind === 'wasm')) {
  console.error(`size: no .wasm in ${relative(root, dist)} — run: bash .ci/build.sh`);
  process.exit(2);
}

const sum = (list, k) => list.reduce((n, f) => n + f[k], 0);
const kb = (n) => (n / KB).toFixed(2);
const rows = [
  ...files.map((f) => [f.name, f.raw, f.gz]),
  ['js total', sum(files.filter((f) => f.kind === 'js'), 'raw'), sum(files.filter((f) => f.kind === 'js'), 'gz')],
  ['TOTAL', sum(files, 'raw'), sum(files, 'gz')],
];
const w = Math.max(...rows.map((r) => r[0].length), 4);
const line = (a, b, c, d) => `${a.padEnd(w)}  ${b.padStart(10)}  ${c.padStart(10)}  ${d.padStart(8)}`;
console.log(`size of ${relative(root, dist)}/ (gzip -9)`);
console.log(line('file', 'raw B', 'gzip B', 'gzip KB'));
console.log('-'.repeat(w + 34));
rows.forEach(([n, raw, gz], i) => {
  if (i === files.length) console.log('-'.repeat(w + 34));
  console.log(line(n, String(raw), String(gz), kb(gz)));
});

const total = sum(files, 'gz');
const pct = (ref) => `${((100 * total) / (ref * KB)).toFixed(0)}%`;
console.log(`reference: ${kb(total)} KB gz = ${pct(GOAL_KB)} of the ${GOAL_KB} KB goal, `
  + `${pct(SNOWPLOW_KB)} of Snowplow's ${SNOWPLOW_KB} KB`);
if (total > budgetKb * KB) {
  console.error(`size: OVER BUDGET: ${kb(total)} KB gz > ${budgetKb} KB (SIZE_BUDGET_KB)`);
  process.exit(1);
}
console.log(`budget: ${kb(total)} KB gz <= ${budgetKb} KB (SIZE_BUDGET_KB) — ok`);
