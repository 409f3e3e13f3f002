// The script-tag install (dist/web/klaviyo.js): commands queued with klaviyo.push before
// the script loaded run once it is ready, later pushes run at once, and a bad command
// is reported, never thrown into the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startDemo, isBuilt } from '../../www/serve.mjs';

const ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
];

let demo;
let browser;

before(async () => {
  if (!isBuilt()) throw new Error('dist/web is missing: run `npm run build` first');
  demo = await startDemo({ port: 0, emulatorPort: 0 });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
});

after(async () => {
  await browser?.close();
  await demo?.close();
});

async function waitFor(fn, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function metrics(req) {
  const a = req.body?.data?.attributes ?? {};
  if (a.metric) return [a.metric.data.attributes.name];
  return (a.events?.data ?? []).map((e) => e.attributes.metric.data.attributes.name);
}

test('queued and later klaviyo.push commands reach Klaviyo; a bad one only warns', async () => {
  await demo.emulator.reset();
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  const warnings = [];
  page.on('pageerror', (e) => errors.push(e));
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  await page.goto(`${demo.url}www/snippet.html`);
  await page.waitForFunction(() => window.klaviyo && !Array.isArray(window.klaviyo));
  await page.click('#add');
  const seen = await waitFor(async () => {
    const { requests } = await demo.emulator.requests();
    const names = requests.filter((r) => r.accepted).flatMap(metrics);
    const profile = requests.some((r) => r.accepted && r.path === '/client/profiles');
    return profile && names.includes('Viewed Product') && names.includes('Added to Cart') ? requests : null;
  });
  assert.ok(seen.every((r) => r.accepted), 'every request valid against the spec');
  assert.ok(!seen.flatMap(metrics).includes('Bad Call'));
  assert.ok(warnings.some((w) => w.includes('track: properties must be an object')), warnings.join('\n'));
  assert.deepEqual(errors, []);
  await context.close();
});
