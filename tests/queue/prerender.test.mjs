// A page prerendered ahead of the visitor (speculation rules, or Chromium's address bar
// guessing where they go) runs its scripts before anyone sees it, and may never be
// shown. Its tracker must send nothing then, and store nothing another tab would send
// for it (a Viewed Product never seen would start a browse-abandonment flow); once shown,
// everything goes, the page view dated when the page was shown.
// Chromium is run without DevTools: with it attached, Chromium does not prerender.
// Standalone: `node --test tests/queue/prerender.test.mjs` (needs a built dist/web).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startEmulator } from '../emulator/server.mjs';
import { spawnChromium } from '../support/browser.mjs';
import { startStaticServer, waitFor, isBuilt } from './harness.mjs';
import { events } from '../support/events.mjs';

const TIMEOUT = 60_000;
const companyId = 'PrR001';

/** What the pages report (POSTed JSON, in order), and the word that sends the visitor on. */
function startReports() {
  const got = [];
  let go = false;
  const server = http.createServer((req, res) => {
    res.setHeader('access-control-allow-origin', '*');
    if (req.url === '/go') return res.end(go ? '1' : '0');
    if (req.url === '/hang.wasm') return; // a .wasm that never comes
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      try { got.push(JSON.parse(body)); } catch { got.push({ unreadable: body }); }
      res.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    got,
    go: () => { go = true; },
    close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }),
  })));
}

/** The emulator, the site, the report server and Chromium on prerender-from.html, which
 * prerenders prerender.html with `params` and goes there on `reports.go()`. */
async function prerendering(t, params) {
  assert.ok(isBuilt(), 'dist/web is missing: run `bash .ci/build.sh` first');
  const emu = await startEmulator({ port: 0 });
  const site = await startStaticServer({ port: 0 });
  const reports = await startReports();
  const query = new URLSearchParams({ ...params(reports), apiBase: emu.url, report: reports.url });
  const chromium = await spawnChromium([], `${site.url}/tests/queue/prerender-from.html?${query}`);
  t.after(async () => {
    await chromium.close();
    await reports.close();
    await site.close();
    await emu.close();
  });
  const held = await waitFor(() => reports.got.find((r) => r.phase), { timeout: 30_000, what: 'the prerendered page to report' });
  assert.equal(held.phase, 'prerendered', 'Chromium prerendered the page (speculation rules)');
  assert.equal(held.prerendering, true);
  assert.equal(held.ready, false, 'the tracker does not start while the page is not seen');
  assert.equal(held.sent, 0, 'nothing sent while prerendered');
  assert.deepEqual(held.keys.filter((k) => k.startsWith('klaviyo:')), [], 'nothing stored: no other tab can send it');
  assert.equal(held.pending, 2, 'the calls are held in memory');
  assert.equal(emu.requests().requests.length, 0, 'Klaviyo heard nothing');
  // Shown in a later second than the calls were made (event times are to the second),
  // so that the page view's date tells which it is.
  await waitFor(() => Date.now() >= (Math.floor(held.madeAt / 1000) + 1) * 1000, { what: 'the next second' });
  reports.go();
  const shown = await waitFor(() => reports.got.find((r) => r.phase === 'shown'), { timeout: 30_000, what: 'the page shown' });
  assert.equal(shown.prerendering, false);
  assert.ok(shown.shownAt > shown.madeAt, 'shown after its calls were made');
  return { emu, shown };
}

test('a prerendered page sends and stores nothing until it is shown; then every call goes once, the page view dated when shown', { timeout: TIMEOUT }, async (t) => {
  const { emu, shown } = await prerendering(t, () => ({ companyId }));
  const sent = await waitFor(() => {
    const got = events(emu.requests({ companyId }).requests);
    return got.length >= 2 && got;
  }, { what: 'the page\'s events' });
  const byMetric = {};
  for (const e of sent) (byMetric[e.metric] ||= []).push(e);
  assert.equal(byMetric['Viewed Product']?.length, 1, 'the call made while prerendered goes once');
  assert.equal(byMetric['Active on Site']?.length, 1, 'one page view');
  assert.equal(byMetric['Viewed Product'][0].profile.email, 'prerendered@example.com');
  // Dated when made, and the page view when the visitor saw the page.
  assert.ok(Date.parse(byMetric['Viewed Product'][0].time) <= shown.madeAt);
  assert.ok(Date.parse(byMetric['Active on Site'][0].time) >= Math.floor(shown.shownAt / 1000) * 1000,
    `Active on Site dated ${byMetric['Active on Site'][0].time}, shown at ${new Date(shown.shownAt).toISOString()}`);
  assert.deepEqual(shown.keys.filter((k) => k.startsWith('klaviyo:') && !k.endsWith(':id') && !k.includes(':consent')), [], 'delivered: nothing left stored but the visitor');
});

test('a prerendered page shown while its .wasm still loads saves its calls for a later page, as any page does', { timeout: TIMEOUT }, async (t) => {
  // No page view of ours (whose call would save the window anyway): the page's calls
  // made while prerendered are saved when it is shown.
  const { shown } = await prerendering(t, (reports) => ({ companyId: 'PrR002', wasmUrl: `${reports.url}/hang.wasm`, activeOnSite: 'manual' }));
  assert.equal(shown.saved.length, 1, 'the loading window saved once shown');
  assert.match(shown.saved[0], /prerendered@example\.com/);
  assert.match(shown.saved[0], /P-1/);
});
