// The property names esbuild renames in the browser bundles (.ci/mangled-props.txt) may
// only be names our own files use among themselves. One that crossed to the page, the
// wasm, the platform, the network or storage would break it silently, so:
//   - none is a name of the page's API (js/index.d.ts), an export of the wasm, a word of
//     the Rust side's texts (the JSON fields it writes and reads: Klaviyo's bodies, the
//     stored records, the worker's answers) or a property of any object of the browser
//     (collected in Chromium);
//   - a page runs the same calls with the package bundled with and without the renaming:
//     the requests Klaviyo receives, what is stored and what the page sees must be the
//     same. The same page with `revision` (a request header) renamed too must differ, so
//     the comparison is shown to catch a name that crosses.
//   node --test tests/build/mangle.test.mjs   (needs dist/web built)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, mkdirSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { ROOT, serveRepo } from '../support/static.mjs';
import { launchChromium } from '../support/browser.mjs';
import { startEmulator } from '../emulator/server.mjs';

const read = (f) => readFileSync(path.join(ROOT, f), 'utf8');
const NAMES = read('.ci/mangled-props.txt').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const OUT = '/target/mangle-check/';

let browser;
let emu;
let site;

/** js/index.js bundled as .ci/build.sh bundles it, renaming `names`, into OUT/<dir>/. */
async function bundle(dir, names) {
  const out = path.join(ROOT, OUT, dir);
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [path.join(ROOT, 'js/index.js')],
    bundle: true,
    format: 'esm',
    minify: true,
    target: 'es2022',
    outfile: path.join(out, 'index.js'),
    logLevel: 'warning',
    ...(names.length ? { mangleProps: new RegExp(`^(${names.join('|')})$`) } : {}),
  });
  copyFileSync(path.join(ROOT, 'dist/web/klaviyo_wasm_bg.wasm'), path.join(out, 'klaviyo_wasm_bg.wasm'));
}

// The calls: each kind the page makes, a flush, and what the page can read back.
const PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module">
const q = new URLSearchParams(location.search);
const { Klaviyo } = await import('./' + q.get('b') + '/index.js');
const errors = [];
const kl = Klaviyo.create({ companyId: 'MnGl01', apiBase: q.get('api'), activeOnSite: 'manual',
  onError: (e) => errors.push([e.kind, e.status, e.count, e.message]) });
kl.identify({ email: 'mangle@example.com', first_name: 'Ann' });
kl.track('Mangle Check', { n: 1 }, { value: 9.99, valueCurrency: 'USD' });
try { kl.track(7); } catch (e) { errors.push(['thrown', e.message]); }
await kl.ready;
kl.viewedProduct({ ProductID: '1111', ProductName: 'Pooh', Price: 9.99 });
kl.addedToCart({ ProductID: '1111', ProductName: 'Pooh', Price: 9.99, Quantity: 1 }, { value: 9.99 });
kl.activeOnSite({ URL: location.href.split('?')[0] });
const flushed = await kl.flush();
window.result = { flushed, errors, pending: kl.pending(), identified: kl.isIdentified(),
  anon: typeof kl.anonymousId, consent: kl.consent,
  storage: Object.keys(localStorage).sort().map((k) => [k, localStorage.getItem(k)]) };
</script>`;

before(async () => {
  rmSync(path.join(ROOT, OUT), { recursive: true, force: true });
  await bundle('plain', []);
  await bundle('mangled', NAMES);
  await bundle('broken', [...NAMES, 'revision']);
  writeFileSync(path.join(ROOT, OUT, 'page.html'), PAGE);
  browser = await launchChromium();
  emu = await startEmulator({ port: 0 });
  site = await serveRepo([OUT]);
});

after(async () => {
  await browser?.close().catch(() => {});
  await site?.close();
  await emu?.close();
});

test('no renamed name is one of the page API, the wasm exports, the JSON fields or the browser platform', async () => {
  assert.ok(NAMES.length > 0, 'the list has names');
  // Every name the types declare (comments aside): methods, options, fields, errors.
  const declared = read('js/index.d.ts').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const api = new Set(declared.match(/[A-Za-z_$][\w$]*/g));
  assert.ok(api.has('anonymousId') && api.has('companyId') && api.has('detail'), 'the API names were read');
  // Every word inside a Rust string literal: the JSON fields, keys and texts the core and
  // the worker write or read (Klaviyo's bodies, storage records, the worker's answers).
  const words = new Set();
  for (const f of rustFiles(path.join(ROOT, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/"((?:[^"\\\n]|\\.)*)"/g)) {
      for (const w of m[1].match(/[A-Za-z_$][\w$]*/g) ?? []) words.add(w);
    }
  }
  assert.ok(words.has('anonymous_id') && words.has('unique_id'), 'the Rust texts were read');
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(path.join(ROOT, 'dist/web/klaviyo_wasm_bg.wasm'))))
    .map((e) => e.name);
  const page = await browser.newPage();
  try {
    // Every property name of every object reachable from the global object: constructors,
    // their prototypes, and what those hold (Response, Headers, Storage, AbortSignal...).
    const platform = new Set(await page.evaluate(() => {
      const names = new Set();
      const seen = new Set();
      const walk = (o, depth) => {
        if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o) || depth > 3) return;
        seen.add(o);
        for (let p = o; p && !seen.has(p) || p === o; p = Object.getPrototypeOf(p)) {
          seen.add(p);
          for (const k of Object.getOwnPropertyNames(p)) {
            names.add(k);
            let v;
            try { v = Object.getOwnPropertyDescriptor(p, k)?.value; } catch { v = undefined; }
            walk(v, depth + 1);
            if (typeof v === 'function' && v.prototype) walk(v.prototype, depth + 1);
          }
        }
      };
      walk(globalThis, 0);
      return [...names];
    }));
    assert.ok(platform.has('keepalive') && platform.has('getItem') && platform.has('signal'), 'the walk reached fetch, Storage and AbortController');
    for (const name of NAMES) {
      assert.ok(!api.has(name), `${name} is a name of the page's API (js/index.d.ts)`);
      assert.ok(!exports.includes(name), `${name} is an export of the wasm`);
      assert.ok(!words.has(name), `${name} is a word of the Rust side's texts (JSON it writes or reads)`);
      assert.ok(!platform.has(name), `${name} is a property name of the browser platform`);
    }
  } finally {
    await page.close();
  }
});

/** Every .rs file under `dir`. */
function rustFiles(dir) {
  return readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.rs')).map((f) => path.join(dir, f));
}

/** What a run of PAGE with bundle `b` shows: Klaviyo's requests and the page's result,
 * with what differs from run to run (ids, times) replaced by placeholders. */
async function run(b) {
  emu.reset();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${site.url}${OUT}page.html?b=${b}&api=${encodeURIComponent(emu.url)}`);
    const result = await (await page.waitForFunction(() => window.result, null, { timeout: 15_000 })).jsonValue();
    const requests = emu.requests().requests.map((r) => ({
      method: r.method, path: r.path, query: r.query, status: r.status,
      revision: r.headers.revision, contentType: r.contentType, body: r.body,
    }));
    const shown = JSON.stringify({ requests, result })
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-\d+)?/g, '<id>')
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
      .replace(/\d{10,}/g, '<ms>');
    return { requests, result, shown };
  } finally {
    await context.close();
  }
}

test('the page with the renaming sends, stores and shows what it does without it', async () => {
  const plain = await run('plain');
  assert.ok(plain.requests.length >= 2 && plain.requests.every((r) => r.status === 202), `Klaviyo accepted each request: ${JSON.stringify(plain.requests.map((r) => [r.path, r.status]))}`);
  assert.ok(plain.result.storage.length > 0, 'the page stored something');
  assert.equal(plain.result.errors.length, 1, 'only the bad call was refused');
  const mangled = await run('mangled');
  assert.equal(mangled.shown, plain.shown);
  // The check itself: renaming a name that crosses (the revision header) is caught.
  const broken = await run('broken');
  assert.notEqual(broken.shown, plain.shown, 'renaming `revision` changes what Klaviyo receives');
});

test('the shipped bundles carry none of the renamed names', () => {
  for (const file of ['dist/web/index.js', 'dist/web/inline.js', 'dist/script/klaviyo-wasm.js']) {
    const text = read(file);
    for (const name of NAMES) assert.ok(!new RegExp(`\\.${name}\\b|\\b${name}\\(`).test(text), `${file} still has .${name}`);
  }
});
