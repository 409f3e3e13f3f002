// The package in a Web Worker, where Shopify runs app pixels (its "strict" sandbox, the
// way checkout events leave its hosted checkout): no document, no history, no
// localStorage. The tracker works there with the default options, delivers each call
// once from memory, and throws nothing into the worker.
// Standalone: `node --test tests/queue/worker.test.mjs` (needs a built dist/web).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suiteEnv } from './harness.mjs';
import { events } from '../support/events.mjs';

const suite = suiteEnv('WoR');

// Before: with the default options create() threw (history is not defined); with
// activeOnSite "manual" the tracker threw document is not defined from a timer, uncaught.
for (const [name, more] of [['the default options', {}], ['activeOnSite "manual"', { activeOnSite: 'manual' }]]) test(`in a Web Worker, with ${name}: identify and track are delivered once, nothing is thrown`, { timeout: 60_000 }, async (t) => {
  const shop = await suite.scenario(t);
  const companyId = suite.nextCompanyId();
  const page = await shop.open({ companyId, init: false });
  const got = await page.evaluate(({ companyId, apiBase, more }) => new Promise((resolve) => {
    // The worker's own uncaught errors and rejections, and what onError heard.
    const src = `
      const thrown = [], reports = [];
      self.addEventListener('error', (e) => thrown.push(String(e.message)));
      self.addEventListener('unhandledrejection', (e) => thrown.push('unhandled rejection: ' + e.reason));
      (async () => {
        let id, flushed;
        try {
          const { Klaviyo } = await import(${JSON.stringify(`${location.origin}/dist/web/index.js`)});
          const kl = Klaviyo.create({ companyId: ${JSON.stringify(companyId)}, apiBase: ${JSON.stringify(apiBase)},
            onError: (e) => reports.push(e.kind), ...${JSON.stringify(more)} });
          await kl.ready;
          kl.identify({ email: 'pixel@example.com' });
          id = kl.track('Checkout Started In A Worker', { total: 12.5 });
          flushed = await kl.flush();
        } catch (e) {
          thrown.push('create or a call: ' + e.message);
        }
        postMessage({ id, flushed, thrown, reports });
      })();`;
    const worker = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })), { type: 'module' });
    worker.onmessage = (e) => { resolve(e.data); worker.terminate(); };
    worker.onerror = (e) => resolve({ thrown: [`the worker failed: ${e.message}`] });
  }), { companyId, apiBase: suite.env.emu.url, more });

  assert.deepEqual(got.thrown, [], 'nothing thrown');
  assert.equal(got.flushed?.pending, 0, `flushed: ${JSON.stringify(got.flushed)}`);
  const sent = events(suite.env.emu.requests({ companyId }).requests);
  assert.deepEqual(sent.map((e) => e.metric), ['Checkout Started In A Worker'], 'one event, and no Active on Site (a worker is no page)');
  assert.equal(sent[0].unique_id, got.id);
  assert.equal(sent[0].profile.email, 'pixel@example.com');
  // No localStorage in a worker: said once, the calls sent from memory.
  assert.ok(got.reports.every((k) => k === 'storage'), `reports: ${got.reports}`);
});
