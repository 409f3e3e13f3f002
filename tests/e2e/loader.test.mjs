// The script-tag install (dist/web/klaviyo.js): commands queued with klaviyo.push before
// the script loaded run once it is ready, later pushes run at once, and a bad command
// is reported, never thrown into the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, waitFor } from '../support/browser.mjs';
import { startDemo, isBuilt } from '../../www/serve.mjs';

let demo;
let browser;

before(async () => {
  if (!isBuilt()) throw new Error('dist/web is missing: run `npm run build` first');
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
  }, { what: 'the queued and pushed commands at the emulator' });
  assert.ok(seen.every((r) => r.accepted), 'every request valid against the spec');
  assert.ok(!seen.flatMap(metrics).includes('Bad Call'));
  assert.ok(warnings.some((w) => w.includes('track: properties must be an object')), warnings.join('\n'));
  assert.deepEqual(errors, []);
  await context.close();
});
