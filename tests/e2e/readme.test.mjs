// The README's examples a new user copies first, run as written: the npm one (way 1) in
// Chromium, where only the package name becomes the built file's path and `apiBase` the
// emulator's, and the fetch handler for Node. An example cannot drift into one that
// throws or sends something else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import http from 'node:http';
import { launchChromium, waitFor } from '../support/browser.mjs';
import { serveRepo, ROOT } from '../support/static.mjs';
import { startEmulator } from '../emulator/server.mjs';
import { isBuilt } from '../support/build.mjs';
import { events } from '../support/events.mjs';

/** The first ```js block after `heading` in README.md. */
function readmeBlock(heading) {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(heading);
  assert.ok(at >= 0, `README.md has no "${heading}"`);
  const m = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `no js block after "${heading}"`);
  return m[1];
}

/** `code` with each [from, to] replaced once; each must be there. */
function edit(code, pairs) {
  for (const [from, to] of pairs) {
    assert.ok(code.includes(from), `the README example no longer has ${JSON.stringify(from)}`);
    code = code.replace(from, to);
  }
  return code;
}

let emu;
let site;
let page;
let browser;

before(async () => {
  if (!isBuilt()) throw new Error('dist/web is missing: run `npm run build` first');
  emu = await startEmulator({ port: 0 });
  // Another origin than the page's, as a CDN would be: the module script needs CORS.
  site = await serveRepo(['/dist/web/'], { headersFor: () => ({ 'Access-Control-Allow-Origin': '*' }) });
  // The page itself: the README's block as a module script, on its own origin.
  const code = edit(readmeBlock('### 1. npm'), [
    ['from "klaviyo-wasm"', `from "${site.url}/dist/web/index.js"`],
    ['"https://a.klaviyo.com"', JSON.stringify(emu.url)],
    ['kl.isIdentified();', 'window.identified = kl.isIdentified();'],
    ['await kl.flush();', 'window.flushed = await kl.flush();'],
  ]) + '\nwindow.done = { id };\n';
  const html = `<!doctype html><meta charset="utf-8"><title>README</title><script type="module">${code}</script>`;
  page = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(html);
  });
  await new Promise((resolve) => page.listen(0, '127.0.0.1', resolve));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (page ? page.close(resolve) : resolve()));
  await site?.close();
  await emu?.close();
});

test("the README's npm example runs as written: every call delivered, nothing thrown", async () => {
  const context = await browser.newContext();
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') errors.push(m.text()); });
  await p.goto(`http://127.0.0.1:${page.address().port}/`);
  const done = await waitFor(() => p.evaluate(() => window.done), { what: 'the example to run to its end' })
    .catch((e) => { throw new Error(`${e.message}; page said: ${errors.join(' | ')}`); });
  assert.deepEqual(errors, []);
  assert.match(done.id, /^[0-9a-f-]{36}-\d+$/, "track() returns the event's unique_id");
  assert.equal(await p.evaluate(() => window.identified), true, 'isIdentified() after ready, as its comment says');
  const flushed = await p.evaluate(() => window.flushed);
  assert.equal(flushed.pending, 0);
  assert.equal(flushed.failed, 0);

  const { requests } = await waitFor(async () => {
    const r = await emu.requests();
    const got = new Set(events(r.requests).map((e) => e.metric));
    return ['Ordered Sample', 'Viewed Product', 'Added to Cart', 'Started Checkout', 'Viewed Collection', 'Submitted Search']
      .every((n) => got.has(n)) ? r : null;
  }, { what: "the example's events at the emulator" });
  assert.deepEqual(requests.filter((r) => !r.accepted).map((r) => r.path), [], 'nothing refused');
  const ev = events(requests);
  const one = (n) => ev.find((e) => e.metric === n);
  assert.equal(one('Added to Cart').value, 19.98, 'the comment says value 19.98');
  assert.equal(one('Started Checkout').value, 19.98);
  assert.equal(one('Ordered Sample').value, 9.5);
  const paths = new Set(requests.filter((r) => r.accepted).map((r) => r.path));
  for (const route of ['/client/profiles', '/client/subscriptions', '/client/back-in-stock-subscriptions']) {
    assert.ok(paths.has(route), `${route} reached Klaviyo`);
  }
  const profile = requests.find((r) => r.accepted && r.path === '/client/profiles').body.data.attributes;
  assert.equal(profile.email, 'ann@example.com');
  assert.equal(profile.first_name, 'Ann');
  await context.close();
});

test("the README's fetch-handler example for Node runs as written (klaviyo-wasm/edge, no env)", async () => {
  // Inside the package's folder, so `klaviyo-wasm/edge` resolves to this package by name.
  const dir = path.join(ROOT, 'target/readme');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'edge-example.mjs');
  const code = readmeBlock('### Other fetch-handler runtimes');
  assert.match(code, /from "klaviyo-wasm\/edge"/);
  writeFileSync(file, `${code}\nconsole.log(JSON.stringify({ status: res.status, body: await res.json() }));\n`);
  const out = JSON.parse(execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 }).trim());
  assert.equal(out.status, 200);
  assert.equal(out.body.ok, true);
});
