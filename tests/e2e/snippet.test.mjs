// The script-tag installs, served by the demo server (www/serve.mjs):
// - www/snippet.html, the demo of the script-tag install (dist/script/): its inline
//   snippet is the built one, commands queued with klaviyoWasm.push before the script
//   loaded and before init run once both came, later pushes run at once, and a bad
//   command is reported, never thrown into the page. tests/script/ tests it in depth.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, waitFor } from '../support/browser.mjs';
import { startDemo, isBuilt } from '../../www/serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SNIPPET = path.join(ROOT, 'dist/script/snippet.min.js');

let demo;
let browser;

before(async () => {
  if (!isBuilt() || !existsSync(SNIPPET)) throw new Error('dist/web or dist/script is missing: run `npm run build` first');
  demo = await startDemo({ port: 0, emulatorPort: 0 });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await demo?.close();
});

function metrics(req) {
  const a = req.body?.data?.attributes ?? {};
  if (a.metric) return [a.metric.data.attributes.name];
  return (a.events?.data ?? []).map((e) => e.attributes.metric.data.attributes.name);
}

/** Opens `url` in a fresh context; collects page errors and console warnings. */
async function open(url) {
  await demo.emulator.reset();
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  const warnings = [];
  page.on('pageerror', (e) => errors.push(e));
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  await page.goto(url);
  return { context, page, errors, warnings };
}

/** Waits for the profile, Viewed Product and Added to Cart; returns the requests. */
function delivered() {
  return waitFor(async () => {
    const { requests } = await demo.emulator.requests();
    const names = requests.filter((r) => r.accepted).flatMap(metrics);
    const profile = requests.some((r) => r.accepted && r.path === '/client/profiles');
    return profile && names.includes('Viewed Product') && names.includes('Added to Cart') ? requests : null;
  }, { what: 'the queued and pushed commands at the emulator' });
}

test('www/snippet.html inlines the built snippet', () => {
  const page = readFileSync(path.join(ROOT, 'www/snippet.html'), 'utf8');
  const built = readFileSync(SNIPPET, 'utf8').trim()
    .replace('"/klaviyo-wasm/klaviyo-wasm.js"', '"/dist/script/klaviyo-wasm.js"');
  assert.ok(page.includes(`<script>${built}</script>`), 'www/snippet.html: paste dist/script/snippet.min.js again (with /dist/script/klaviyo-wasm.js)');
});

test('www/snippet.html: queued and later klaviyoWasm.push commands reach Klaviyo; a bad one only warns', async () => {
  const { context, page, errors, warnings } = await open(`${demo.url}www/snippet.html`);
  await page.waitForFunction(() => window.klaviyoWasm?.loaded === true && window.klaviyoWasm.tracker);
  await page.click('#add');
  const seen = await delivered();
  assert.ok(seen.every((r) => r.accepted), 'every request valid against the spec');
  assert.ok(!seen.flatMap(metrics).includes('Bad Call'));
  assert.ok(warnings.some((w) => w.includes('track: properties must be an object')), warnings.join('\n'));
  assert.equal(await page.evaluate(() => window.klaviyo), undefined, 'window.klaviyo is left to Klaviyo');
  assert.deepEqual(errors, []);
  await context.close();
});
