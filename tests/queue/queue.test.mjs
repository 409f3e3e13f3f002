// The durable offline queue, end to end: dist/web in Debian's Chromium against the
// Klaviyo emulator with fault injection. Standalone: `node --test tests/queue/`
// (starts its own emulator, static server and browser; needs a built dist/web).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startEnv, buildId, newShop, waitFor, trackMany, storedEntries, eventRequests, wireCounts,
} from './harness.mjs';

const TEST_TIMEOUT = 60_000;
let env;

before(async () => {
  env = await startEnv();
  console.log(`dist/web build: ${env.build}`);
});
after(async () => {
  if (env?.buildChanged()) console.log(`WARNING: dist/web was rebuilt during this run (now ${buildId()}); results mix two builds`);
  await env?.close();
});

// Each scenario gets its own shop id, so no storage key or profile of one leaks into another.
let shopNo = 0;
const nextCompanyId = () => `QuE${String(++shopNo).padStart(3, '0')}`;
const qPrefix = (companyId) => `klaviyo:${companyId}:q:`;
const idKey = (companyId) => `klaviyo:${companyId}:id`;

/** A fresh emulator and browser context; closed after the test. */
async function scenario(t, opts) {
  env.emu.reset();
  const shop = await newShop(env, opts);
  t.after(() => shop.close());
  return shop;
}

function assertNoPageErrors(shop) {
  assert.deepEqual(shop.pageErrors, [], 'no uncaught exception in any page');
}

const summary = (filter) => env.emu.requests(filter);

/** Events inside one recorded request: {uid, time, profile}. */
function eventsOf(record) {
  const a = record.body?.data?.attributes;
  if (record.path === '/client/events') return [{ uid: a?.unique_id, time: a?.time, profile: a?.profile?.data?.attributes ?? {} }];
  if (record.path === '/client/event-bulk-create') {
    return (a?.events?.data ?? []).map((e) => ({ uid: e?.attributes?.unique_id, time: e?.attributes?.time, profile: a?.profile?.data?.attributes ?? {} }));
  }
  return [];
}
const acceptedEvents = (s) => eventRequests(s).filter((r) => r.accepted).flatMap(eventsOf);

/** Waits until every id in `ids` was accepted at least once; returns the summary. */
async function delivered(ids, { timeout = 20_000, what = `${ids.length} events accepted` } = {}) {
  try {
    return await waitFor(() => {
      const s = summary();
      return ids.every((id) => s.uniqueIdCounts[id] >= 1) && s;
    }, { timeout, what, interval: 50 });
  } catch (e) {
    const s = summary();
    e.message += ` (${ids.filter((id) => !(s.uniqueIdCounts[id] >= 1)).length} of ${ids.length} missing; wire: ${wireLine(s)})`;
    throw e;
  }
}

/** Waits until the page's queue is empty and nothing of it is left in localStorage. */
async function drained(page, companyId, { timeout = 10_000 } = {}) {
  await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0, { timeout, what: 'kl.pending() === 0' });
  await waitFor(async () => Object.keys(await storedEntries(page, qPrefix(companyId))).length === 0,
    { timeout, what: `no ${qPrefix(companyId)}* keys left` });
}

/** Every id accepted exactly once. */
function assertOnceEach(s, ids) {
  const counts = ids.map((id) => s.uniqueIdCounts[id] ?? 0);
  const missing = ids.filter((_, i) => counts[i] === 0);
  const twice = ids.filter((_, i) => counts[i] > 1);
  assert.deepEqual(missing, [], 'every event accepted');
  assert.deepEqual(twice, [], 'no event accepted twice');
}

/** One diagnostic line: every request the emulator saw, `endpoint:events:status@+ms`. */
function wireLine(s = summary()) {
  const t0 = s.requests[0]?.at ?? 0;
  return s.requests.map((r) => `${r.path.replace('/client/', '')}:${r.uniqueIds.length}:${r.status ?? (r.pending ? 'pending' : 'dropped')}@+${r.at - t0}`).join(' ');
}
function trace(t, s = summary()) {
  t.diagnostic(`wire: ${wireLine(s)}`);
}

const reportsOf = (page) => page.evaluate(() => window.reports);

// ---------------------------------------------------------------------------

test('offline: 200 events across 3 offline reloads are delivered once each when back online', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  // The page and dist/web come from disk through context.route, so reloads work offline.
  const shop = await scenario(t, { serveFromDisk: true });
  let page = await shop.open({ companyId });
  await shop.context.setOffline(true);
  assert.equal(await page.evaluate(() => navigator.onLine), false, 'navigator.onLine follows the context');

  const ids = [];
  const windows = []; // [first call ms, last call ms] per batch of calls, for the `time` check
  for (let round = 0; round < 4; round += 1) {
    const start = await page.evaluate(() => Date.now());
    ids.push(...await trackMany(page, 50, { metric: 'Offline Reload', from: round * 50, props: { round } }));
    windows.push([start, await page.evaluate(() => Date.now())]);
    assert.equal(await page.evaluate(() => window.kl.pending()), ids.length, `round ${round}: all queued`);
    if (round < 3) {
      page = await shop.reload(page);
      assert.equal(await page.evaluate(() => window.kl.pending()), ids.length, `after reload ${round + 1}: queue restored`);
    }
  }
  assert.equal(new Set(ids).size, 200);
  const stored = await storedEntries(page, qPrefix(companyId));
  assert.ok(Object.keys(stored).length >= 1, 'the queue is in localStorage');
  assert.equal(summary().count, 0, 'nothing reached Klaviyo while offline');

  await shop.context.setOffline(false);
  const s = await delivered(ids, { what: '200 events accepted after going online' });
  await drained(page, companyId);
  const after = summary();
  assert.equal(after.acceptedUniqueIds, 200, 'exactly the 200 tracked events');
  assert.equal(after.duplicateUniqueIds, 0, 'none accepted twice');
  assertOnceEach(after, ids);

  // A resend carries the event's original time (truncated to the second), not the send time.
  const byId = new Map(acceptedEvents(s).map((e) => [e.uid, e]));
  ids.forEach((id, i) => {
    const [from, to] = windows[Math.floor(i / 50)];
    const tm = Date.parse(byId.get(id).time);
    assert.ok(tm >= Math.floor(from / 1000) * 1000 && tm <= to, `event ${i}: time ${byId.get(id).time} is when it was tracked`);
  });
  trace(t);
  assertNoPageErrors(shop);
});

test('offline pauses: no request is attempted while navigator.onLine is false; "online" flushes at once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const attempts = [];
  page.on('request', (r) => { if (r.url().startsWith(env.emu.url)) attempts.push({ at: Date.now(), url: r.url() }); });
  await shop.context.setOffline(true);
  const ids = await trackMany(page, 10, { metric: 'Paused' });
  // Nothing should happen for a while: a fixed wait is the only way to observe that.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.deepEqual(attempts, [], 'no fetch while offline (each would fail and burn a retry)');
  const online = Date.now();
  await shop.context.setOffline(false);
  await delivered(ids, { timeout: 10_000 });
  const took = Date.now() - online;
  t.diagnostic(`delivered ${took} ms after going online`);
  assert.ok(took < 1000, `flushed on "online" (${took} ms), not on a backoff timer`);
  await drained(page, companyId);
  trace(t);
  assertNoPageErrors(shop);
});

test('429 with Retry-After: 3 holds every send for 3 s, then everything is delivered', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  env.emu.addFault({ path: '/client/', status: 429, retryAfter: 3, count: 1 });

  const first = await trackMany(page, 5, { metric: 'Throttled' });
  const throttled = await waitFor(() => summary({ status: 429 }).requests[0], { what: 'the 429' });
  // More calls, to another endpoint too: a 429 blocks every send, not only its own endpoint.
  const more = await trackMany(page, 3, { metric: 'Throttled Later' });
  await page.evaluate(() => window.kl.identify({ email: 'throttle@example.com' }));

  const ids = [...first, ...more];
  await delivered(ids, { timeout: 20_000 });
  await waitFor(() => summary({ path: '/client/profiles', accepted: true }).count >= 1, { what: 'the profile request' });
  const s = summary();
  const later = s.requests.filter((r) => r.seq > throttled.seq);
  assert.ok(later.length >= 2, 'events and the profile were sent after the 429');
  for (const r of later) {
    assert.ok(r.at >= throttled.at + 3000,
      `${r.method} ${r.path} #${r.seq} arrived ${r.at - throttled.at} ms after the 429 (Retry-After: 3)`);
  }
  for (const p of s.preflights.filter((x) => x.seq > throttled.seq)) {
    assert.ok(p.at >= throttled.at + 3000, `preflight ${p.path} ${p.at - throttled.at} ms after the 429`);
  }
  assertOnceEach(s, ids);
  await drained(page, companyId);
  trace(t);
  assertNoPageErrors(shop);
});

test('429 with Retry-After as an HTTP date 4 s ahead: sends wait until then (not the 10 s an unreadable one gets)', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  // HTTP dates have whole seconds: 4 s ahead, the wait is 3 to 5 s.
  env.emu.addFault({ path: '/client/', status: 429, retryAfter: new Date(Date.now() + 4000).toUTCString(), count: 1 });
  const ids = await trackMany(page, 5, { metric: 'Throttled Until' });
  const throttled = await waitFor(() => summary({ status: 429 }).requests[0], { what: 'the 429' });
  await delivered(ids, { timeout: 20_000 });
  const retried = summary().requests.find((r) => r.seq > throttled.seq && r.accepted);
  const waited = retried.at - throttled.at;
  t.diagnostic(`resent ${waited} ms after the 429`);
  assert.ok(waited >= 2500, `waited for the date (${waited} ms)`);
  assert.ok(waited < 9000, `the date was read, not treated as absent (${waited} ms)`);
  await drained(page, companyId);
  assertNoPageErrors(shop);
});

test('429 whose Retry-After CORS hides: every send waits 10 s', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  env.emu.setConfig({ exposeRetryAfter: false }); // reset() before the next test restores it
  // Fake clock: 10 s of waiting without waiting 10 s.
  const page = await shop.open({ companyId, clock: true });
  env.emu.addFault({ path: '/client/', status: 429, retryAfter: 1, count: 1 });
  const ids = await trackMany(page, 3, { metric: 'Hidden Retry-After' });
  await waitFor(async () => { await page.clock.runFor(50); return summary({ status: 429 }).count === 1; }, { what: 'the 429' });
  const afterThrottle = summary().count;
  for (let i = 0; i < 18; i += 1) await page.clock.runFor(500); // 9 s of page time
  await new Promise((resolve) => setTimeout(resolve, 300)); // let any send that was due arrive
  assert.equal(summary().count, afterThrottle, 'nothing sent 9 s after a 429 with an unreadable Retry-After (1 s, hidden)');
  await waitFor(async () => {
    await page.clock.runFor(250);
    const s = summary();
    return ids.every((id) => s.uniqueIdCounts[id] >= 1);
  }, { timeout: 15_000, interval: 20, what: 'delivery after 10 s' });
  assertOnceEach(summary(), ids);
  trace(t);
  assertNoPageErrors(shop);
});

test('five 503s in a row, then 202: delivered exactly once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  // Backoff 1+2+4+8+16 s would take half a minute: the page runs on Playwright's fake clock,
  // advanced by the test while it waits.
  const page = await shop.open({ companyId, clock: true });
  env.emu.addFault({ path: '/client/', status: 503, count: 5 });
  const ids = await trackMany(page, 4, { metric: 'Five 503s' });

  await waitFor(async () => {
    await page.clock.runFor(250);
    const s = summary();
    return ids.every((id) => s.uniqueIdCounts[id] >= 1);
  }, { timeout: 30_000, interval: 10, what: 'delivery after five 503s' });
  const s = summary();
  const sends = eventRequests(s);
  assert.deepEqual(sends.map((r) => r.status), [503, 503, 503, 503, 503, 202], 'five 503s then one accepted request');
  for (const r of sends) assert.deepEqual([...r.uniqueIds].sort(), [...ids].sort(), `request #${r.seq} carries the same events`);
  assertOnceEach(s, ids);
  await page.clock.runFor(100);
  await drained(page, companyId);
  trace(t);
  assertNoPageErrors(shop);
});

test('a connection dropped mid-request: delivered once by unique_id', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  // The emulator reads the whole body, waits, then destroys the socket without answering.
  // Chromium may silently resend a POST on a dropped reused connection, so the library may
  // see a network error or nothing at all; either way each event must be accepted once.
  env.emu.addFault({ path: '/client/', drop: true, delayMs: 100, count: 1 });
  const ids = await trackMany(page, 3, { metric: 'Dropped' });
  await delivered(ids);
  await drained(page, companyId);
  const s = summary();
  const dropped = s.requests.filter((r) => r.fault === 'delay:100+drop');
  assert.equal(dropped.length, 1, 'the drop fault fired');
  assertOnceEach(s, ids);
  assert.equal(s.duplicateUniqueIds, 0);
  const next = s.requests.find((r) => r.seq > dropped[0].seq && r.path.startsWith('/client/event'));
  t.diagnostic(`resent ${next ? next.at - dropped[0].at : '?'} ms after the drop (${next && next.at - dropped[0].at < 500 ? 'browser retry' : 'library retry'})`);
  trace(t);
  assertNoPageErrors(shop);
});

const badEventDocument = (i) => ({
  errors: [{
    id: '5b9a4c6e-0000-4000-8000-000000000400',
    status: 400,
    code: 'invalid',
    title: 'Invalid input.',
    detail: 'properties is not valid',
    source: { pointer: `/data/attributes/events/data/${i}/attributes/properties` },
  }],
});

test('bulk 400 pointing at one event: only it is reported and removed, the others are delivered', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  env.emu.addFault({ path: '/client/event-bulk-create', status: 400, count: 1, body: badEventDocument(3) });
  const ids = await trackMany(page, 10, { metric: 'Bulk With One Bad' });

  const refused = await waitFor(() => summary({ status: 400 }).requests[0], { what: 'the bulk 400' });
  assert.equal(refused.path, '/client/event-bulk-create', '10 calls in one burst go to the bulk endpoint');
  const badId = refused.body.data.attributes.events.data[3].attributes.unique_id;
  const good = ids.filter((id) => id !== badId);
  assert.equal(good.length, 9);

  await delivered(good);
  await drained(page, companyId);
  const s = summary();
  assertOnceEach(s, good);
  assert.equal(s.uniqueIdCounts[badId], undefined, 'the bad event was never accepted');
  const rejected = (await reportsOf(page)).filter((r) => r.kind === 'rejected');
  assert.equal(rejected.length, 1, `one rejected report: ${JSON.stringify(await reportsOf(page))}`);
  assert.equal(rejected[0].status, 400);
  assert.equal(rejected[0].count, 1, 'it concerns the one bad event');
  assert.equal(rejected[0].isError, true, 'onError receives an Error');
  assert.equal(rejected[0].detail?.errors?.[0]?.source?.pointer, '/data/attributes/events/data/3/attributes/properties', 'detail = the server JSON');
  const left = await storedEntries(page, qPrefix(companyId));
  assert.ok(!Object.values(left).some((v) => v.includes(badId)), 'the bad event\'s record is gone from localStorage');
  trace(t);
  assertNoPageErrors(shop);
});

test('a truly invalid event (stored time 1985) in a bulk 400 without pointer: halves isolate it, the others are delivered', { timeout: TEST_TIMEOUT }, async (t) => {
  // The library refuses a 1985 `time` at track(), so the invalid event is made by editing
  // its stored record (as an old SDK version or a corrupted write could leave it). The
  // emulator then refuses it on its own (time must be after 1990). The first bulk request
  // is additionally answered 400 with no pointer, which must make the library split.
  const companyId = nextCompanyId();
  const shop = await scenario(t, { serveFromDisk: true });
  let page = await shop.open({ companyId });
  await shop.context.setOffline(true);
  const ids = await trackMany(page, 8, { metric: 'Halves' });
  const badId = ids[5];
  page = await shop.goto(page, { companyId, init: false }); // no tracker running while we edit
  const edited = await page.evaluate(({ prefix, badId }) => {
    for (let i = 0; i < localStorage.length; i += 1) {
      const k = localStorage.key(i);
      const v = localStorage.getItem(k);
      if (k.startsWith(prefix) && v.includes(badId)) {
        // An event line is `e<idx>\t<time in seconds>\t"<unique_id>"\t...`.
        const nv = v.replace(new RegExp(`\\t\\d+\\t"${badId}"`), `\t473385600\t"${badId}"`);
        if (nv === v) return `record ${k} has no time before "${badId}" to edit`;
        localStorage.setItem(k, nv);
        return 'ok';
      }
    }
    return 'no stored record holds the event';
  }, { prefix: qPrefix(companyId), badId });
  assert.equal(edited, 'ok');
  env.emu.addFault({ path: '/client/event-bulk-create', status: 400, count: 1, body: { errors: [{ status: 400, code: 'invalid', title: 'Invalid input.', detail: 'Something in this batch is invalid' }] } });
  page = await shop.goto(page, { companyId });
  await shop.context.setOffline(false);

  const good = ids.filter((id) => id !== badId);
  await delivered(good);
  await drained(page, companyId);
  const s = summary();
  assertOnceEach(s, good);
  assert.equal(s.uniqueIdCounts[badId], undefined, 'the 1985 event was never accepted');
  assert.ok(s.requests.some((r) => r.status === 400 && r.errors.some((e) => /1990/.test(e.detail))), 'the emulator itself refused the 1985 time');
  const rejected = (await reportsOf(page)).filter((r) => r.kind === 'rejected');
  assert.equal(rejected.reduce((n, r) => n + r.count, 0), 1, `only the bad event is reported: ${JSON.stringify(rejected)}`);
  trace(t);
  assertNoPageErrors(shop);
});

test('3 tabs of one shop, 100 events each, 30% of requests answered 503: 300 distinct events delivered', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const tabs = [];
  for (let i = 0; i < 3; i += 1) tabs.push(await shop.open({ companyId }));
  env.emu.addFault({ path: '/client/', status: 503, probability: 0.3, seed: 20260715 });
  // Each tab tracks in 10 bursts of 10, ~30 ms apart, all three at once: calls keep coming
  // while earlier requests fail and are retried.
  const perTab = await Promise.all(tabs.map(async (p, i) => {
    const mine = [];
    for (let r = 0; r < 10; r += 1) {
      mine.push(...await trackMany(p, 10, { metric: 'Three Tabs', from: i * 100 + r * 10, props: { tab: i } }));
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    return mine;
  }));
  const ids = perTab.flat();
  assert.equal(new Set(ids).size, 300);

  await delivered(ids, { timeout: 45_000, what: '300 events from 3 tabs' });
  for (const p of tabs) await waitFor(async () => (await p.evaluate(() => window.kl.pending())) === 0, { what: 'pending 0 in every tab', timeout: 15_000 });
  await waitFor(async () => Object.keys(await storedEntries(tabs[0], qPrefix(companyId))).length === 0, { what: 'shared queue empty' });
  const s = summary();
  const wire = wireCounts(s);
  const acceptedTwice = s.duplicateUniqueIds;
  const resent = Object.values(wire).filter((n) => n > 1).length;
  const sends = eventRequests(s);
  console.log(`tabs: ${s.acceptedUniqueIds} delivered, ${acceptedTwice} duplicate on the wire (accepted more than once); `
    + `${resent} sent more than once (retries after a 503 included); ${sends.length} event requests, ${sends.filter((r) => r.status === 503).length} answered 503`);
  assert.equal(s.acceptedUniqueIds, 300, '300 distinct events');
  assert.deepEqual(Object.keys(s.uniqueIdCounts).sort(), [...ids].sort());
  trace(t);
  assertNoPageErrors(shop);
});

test('a page closed while its request is held: a new page of the shop delivers the events', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const first = await shop.open({ companyId });
  env.emu.addFault({ path: '/client/', hold: true, count: 1 });
  const ids = await trackMany(first, 5, { metric: 'Held Then Closed' });
  await waitFor(() => summary().requests.some((r) => r.held), { what: 'the held request' });
  await first.close();

  const fromSecond = [];
  shop.context.on('request', (r) => {
    if (r.frame().page() !== first && r.url().startsWith(`${env.emu.url}/client/event`) && r.method() === 'POST') fromSecond.push(r.url());
  });
  const second = await shop.open({ companyId });
  try {
    await delivered(ids, { what: 'the closed page\'s events, sent by the new page' });
  } finally {
    env.emu.release();
  }
  await waitFor(() => summary().pending === 0, { what: 'no request pending at the emulator' });
  await drained(second, companyId);
  const s = summary();
  for (const id of ids) assert.ok(s.uniqueIdCounts[id] >= 1, `${id} accepted`);
  assert.ok(fromSecond.length >= 1, 'the new page sent them');
  t.diagnostic(`accepted twice (the released held request counted too): ${ids.filter((id) => s.uniqueIdCounts[id] > 1).length}`);
  trace(t);
  assertNoPageErrors(shop);
});

test('flush() settles when close() comes while its request is in flight: the call is still pending, kept for the next page', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  env.emu.addFault({ path: '/client/', hold: true, count: 1 });
  const [id] = await page.evaluate(() => {
    const ids = [window.kl.track('Flushed Then Closed', {})];
    window.flushed = window.kl.flush();
    return ids;
  });
  await waitFor(() => summary().requests.some((r) => r.held), { what: 'the held request' });
  // The answer never reaches the closed tracker's loop, which settled flush() before.
  const settled = await page.evaluate(() => {
    window.kl.close();
    return Promise.race([window.flushed, new Promise((resolve) => setTimeout(() => resolve('never settled'), 5000))]);
  });
  assert.deepEqual(settled, { sent: 0, failed: 0, pending: 1 });
  assert.equal(Object.keys(await storedEntries(page, qPrefix(companyId))).length, 1, 'its record stays in storage');
  env.emu.release();
  await delivered([id]);
  trace(t);
  assertNoPageErrors(shop);
});

test('the sending tab closes: another open tab takes over and delivers both tabs\' events', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  // flushDelayMs 300: both tabs' calls surely share A's first request.
  const a = await shop.open({ companyId, debug: 1, flushDelayMs: 300 });
  const b = await shop.open({ companyId, debug: 1, flushDelayMs: 300 });
  // Everything is held: whoever sends, nothing completes while A is open.
  env.emu.addFault({ path: '/client/', hold: true, count: 1000 });
  const ids = [
    ...await trackMany(a, 5, { metric: 'Takeover A' }),
    ...await trackMany(b, 5, { metric: 'Takeover B', from: 5 }),
  ];
  await waitFor(() => summary().requests.some((r) => r.held), { what: 'a held request' });
  const locks = await b.evaluate(async () => (navigator.locks ? (await navigator.locks.query()).held.map((l) => l.name) : null));
  t.diagnostic(`web locks held: ${JSON.stringify(locks)}`);
  // Wait until one request carries all 10 (B's events reached the sender), then stop
  // holding new requests (before closing A: the new sender may send within milliseconds).
  await waitFor(() => {
    const held = new Set(summary().requests.filter((r) => r.held).flatMap((r) => r.uniqueIds));
    return ids.every((id) => held.has(id));
  }, { what: 'all 10 events held in flight' });
  const heldBefore = summary().requests.filter((r) => r.held).length;
  const fromB = [];
  b.on('request', (r) => { if (r.url().startsWith(`${env.emu.url}/client/event`) && r.method() === 'POST') fromB.push(r.url()); });
  env.emu.clearFaults();
  await a.close();
  try {
    await delivered(ids, { what: 'all 10 events, by tab B' });
  } catch (e) {
    e.message += `; tab B: pending ${await b.evaluate(() => window.kl.pending())}, log ${JSON.stringify(await b.evaluate(() => window.debugLog))}`;
    throw e;
  } finally {
    env.emu.release();
  }
  await drained(b, companyId);
  t.diagnostic(`requests held while A was open: ${heldBefore}`);
  assert.ok(fromB.length >= 1, 'tab B itself sent the events after A closed');
  assert.deepEqual(locks?.filter((n) => n === `klaviyo:${companyId}:sender`), [`klaviyo:${companyId}:sender`], 'one tab holds the sender lock');
  trace(t);
  assertNoPageErrors(shop);
});

test('another tab\'s localStorage.clear() (a logout) delivers nothing: the held calls are stored again and delivered once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const a = await shop.open({ companyId });
  // The first request is refused with a wait: the calls are held, stored, between tries.
  env.emu.addFault({ path: '/client/', status: 503, retryAfter: 2, count: 1 });
  const ids = await trackMany(a, 3, { metric: 'Before The Clear' });
  await waitFor(() => summary().requests.some((r) => r.status === 503), { what: 'the 503' });
  assert.equal(Object.keys(await storedEntries(a, qPrefix(companyId))).length > 0, true, 'stored while held');
  const b = await shop.open({ companyId });
  await b.evaluate(() => localStorage.clear());
  // Written again by the tab that holds them (a crash now would not lose them).
  await waitFor(async () => Object.keys(await storedEntries(a, qPrefix(companyId))).length > 0, { what: 'the calls stored again' });
  assert.equal(await a.evaluate(() => window.kl.pending()), 3);
  const s = await delivered(ids);
  assertOnceEach(s, ids);
  await drained(a, companyId);
  assert.deepEqual((await reportsOf(a)).filter((r) => r.kind !== 'retry'), [], 'nothing reported lost');
  trace(t);
  assertNoPageErrors(shop);
});

test('a storage event that comes late with an old copy of a record brings nothing back: neither calls delivered since, nor calls this tab\'s denial erased', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const a = await shop.open({ companyId });
  // Every record this page writes, kept: the copies a late event of another tab carries.
  await a.evaluate(() => {
    window.writes = [];
    const set = Storage.prototype.setItem;
    Storage.prototype.setItem = function (k, v) { window.writes.push([k, v]); return set.call(this, k, v); };
  });
  const late = (prefix, metric) => a.evaluate(([p, m]) => {
    const [key, value] = window.writes.find(([k, v]) => k.startsWith(p) && v.includes(m));
    dispatchEvent(new StorageEvent('storage', { key, newValue: value, storageArea: localStorage }));
  }, [prefix, metric]);
  // 1. A call delivered, its record removed; then the event of its write arrives.
  const [done] = await trackMany(a, 1, { metric: 'Delivered Before The Event' });
  await delivered([done]);
  await drained(a, companyId);
  await late(qPrefix(companyId), 'Delivered Before The Event');
  // 2. A call stored while Klaviyo is down, erased by a denial, consent granted again;
  //    then the event of its write arrives.
  env.emu.addFault({ path: '/client/', status: 503, count: 1000 });
  const [denied] = await trackMany(a, 1, { metric: 'Made Before The Denial' });
  await waitFor(() => summary().requests.some((r) => r.uniqueIds.includes(denied)), { what: 'the failed attempt' });
  await a.evaluate(() => { window.kl.setConsent('denied'); window.kl.setConsent('granted'); });
  env.emu.clearFaults();
  await late(qPrefix(companyId), 'Made Before The Denial');
  const [after] = await trackMany(a, 1, { metric: 'After The Grant' });
  const s = await delivered([after]);
  await a.evaluate(() => window.kl.flush());
  const sent = (id) => summary().requests.filter((r) => r.uniqueIds.includes(id)).length;
  assert.equal(sent(done), 1, 'the delivered call is not sent again');
  assert.equal(s.uniqueIdCounts[denied] ?? 0, 0, 'the call made before the denial is never delivered');
  assert.equal(await a.evaluate(() => window.kl.pending()), 0);
  trace(t);
  assertNoPageErrors(shop);
});

test('without navigator.locks (lease in localStorage): 2 tabs deliver 100 distinct events', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const noLocks = () => { Object.defineProperty(Navigator.prototype, 'locks', { configurable: true, get: () => undefined }); };
  const tabs = [await shop.open({ companyId, initScript: noLocks }), await shop.open({ companyId, initScript: noLocks })];
  assert.equal(await tabs[0].evaluate(() => navigator.locks), undefined);
  const ids = (await Promise.all(tabs.map((p, i) => trackMany(p, 50, { metric: 'Lease', from: i * 50 })))).flat();
  await delivered(ids);
  for (const p of tabs) await waitFor(async () => (await p.evaluate(() => window.kl.pending())) === 0, { what: 'pending 0' });
  const s = summary();
  assert.equal(s.acceptedUniqueIds, 100);
  t.diagnostic(`lease: ${s.duplicateUniqueIds} accepted twice`);
  trace(t);
  assertNoPageErrors(shop);
});

test('localStorage full of other data: no page error, events delivered, a "storage" warning', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  let page = await shop.open({ companyId, init: false });
  const fill = await page.evaluate(() => {
    let size = 1 << 20; let i = 0; let total = 0;
    for (;;) {
      try {
        localStorage.setItem(`filler:${i}`, 'x'.repeat(size));
        i += 1; total += size;
      } catch (e) {
        if (size === 1) return { total, name: e.name };
        size >>= 1;
      }
    }
  });
  assert.equal(fill.name, 'QuotaExceededError');
  t.diagnostic(`filled ${fill.total} chars`);
  page = await shop.goto(page, { companyId });
  const ids = await trackMany(page, 5, { metric: 'Quota Full' });
  await delivered(ids);
  await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0, { what: 'pending 0' });
  assertOnceEach(summary(), ids);
  const reports = await reportsOf(page);
  assert.ok(reports.some((r) => r.kind === 'storage'), `an onError "storage" warning: ${JSON.stringify(reports)}`);
  trace(t);
  assertNoPageErrors(shop);
});

test('localStorage that throws on access: no page error, events delivered from memory', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({
    companyId,
    initScript: () => {
      Object.defineProperty(window, 'localStorage', { configurable: true, get() { throw new DOMException('denied', 'SecurityError'); } });
    },
  });
  assert.equal(await page.evaluate(() => { try { return typeof localStorage; } catch (e) { return e.name; } }), 'SecurityError');
  const ids = await trackMany(page, 5, { metric: 'No Storage' });
  await delivered(ids);
  await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0, { what: 'pending 0' });
  assertOnceEach(summary(), ids);
  trace(t);
  assertNoPageErrors(shop);
});

test('garbage under our keys: skipped and removed, new events delivered', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  let page = await shop.open({ companyId, init: false });
  const garbage = {
    [`${qPrefix(companyId)}junk`]: 'not a record',
    [`${qPrefix(companyId)}empty`]: '',
    [`${qPrefix(companyId)}json`]: '{"unique_id":1,"events":[null]}',
    [`${qPrefix(companyId)}nl`]: '1\nE\nnot-a-number\n\n{\n}',
    [idKey(companyId)]: '{{{',
  };
  const foreign = { 'klaviyo:OtHer9:q:abc': 'another shop', unrelated: 'keep me' };
  await page.evaluate((all) => { for (const [k, v] of Object.entries(all)) localStorage.setItem(k, v); }, { ...garbage, ...foreign });

  page = await shop.goto(page, { companyId });
  assert.equal(await page.evaluate(() => window.kl.pending()), 0, 'garbage is not counted as queued');
  const anon = await page.evaluate(() => window.kl.anonymousId);
  assert.ok(typeof anon === 'string' && anon.length > 0, 'a fresh anonymous id');
  await waitFor(async () => {
    const left = await storedEntries(page, qPrefix(companyId));
    return Object.keys(garbage).filter((k) => k.startsWith(qPrefix(companyId))).every((k) => !(k in left));
  }, { what: 'garbage queue keys removed' });
  assert.notEqual(await page.evaluate((k) => localStorage.getItem(k), idKey(companyId)), '{{{', 'the identity record was replaced');

  const ids = await trackMany(page, 3, { metric: 'After Garbage' });
  const s = await delivered(ids);
  assertOnceEach(s, ids);
  for (const e of acceptedEvents(s)) assert.equal(e.profile.anonymous_id, anon, 'events carry the new anonymous id');
  await drained(page, companyId);
  for (const [k, v] of Object.entries(foreign)) {
    assert.equal(await page.evaluate((key) => localStorage.getItem(key), k), v, `${k} untouched`);
  }
  trace(t);
  assertNoPageErrors(shop);
});

test('bounds: maxQueueEvents bounds storage: the oldest leave storage ("evicted") yet the open page sends all; a reload has only the newest', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t, { serveFromDisk: true });
  let page = await shop.open({ companyId, maxQueueEvents: 5 });
  await shop.context.setOffline(true);
  // Two tasks: 8 calls, then 8 more.
  const first = await trackMany(page, 8, { metric: 'Bounded' });
  const second = await trackMany(page, 8, { metric: 'Bounded', from: 8 });
  assert.equal(await page.evaluate(() => window.kl.pending()), 16, 'the open page holds all 16');
  const stored = Object.values(await storedEntries(page, qPrefix(companyId)))
    .flatMap((v) => v.split('\n').filter((l) => l.startsWith('e')));
  assert.equal(stored.length, 5, 'storage holds maxQueueEvents calls');
  for (const id of second.slice(3)) assert.ok(stored.some((l) => l.includes(id)), 'the newest are the stored ones');
  const evicted = (await reportsOf(page)).filter((r) => r.kind === 'evicted');
  assert.equal(evicted.reduce((n, r) => n + r.count, 0), 11, `11 evictions reported: ${JSON.stringify(evicted)}`);
  // A reload while offline: only what storage held survives.
  page = await shop.goto(page, { companyId, maxQueueEvents: 5 });
  assert.equal(await page.evaluate(() => window.kl.pending()), 5);
  await shop.context.setOffline(false);
  const s = await delivered(second.slice(3));
  await drained(page, companyId);
  for (const id of [...first, ...second.slice(0, 3)]) assert.equal(s.uniqueIdCounts[id], undefined, 'an evicted call is lost only with the page that held it');
  trace(t);
  assertNoPageErrors(shop);
});

test('bounds: an open page delivers everything past maxQueueEvents', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId, maxQueueEvents: 5 });
  await shop.context.setOffline(true);
  const ids = await trackMany(page, 8, { metric: 'Bounded Open' });
  await shop.context.setOffline(false);
  const s = await delivered(ids);
  await drained(page, companyId);
  assertOnceEach(s, ids);
  trace(t);
  assertNoPageErrors(shop);
});

test('batching: a burst goes to event-bulk-create in one request, a lone event to /client/events', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const burst = await trackMany(page, 50, { metric: 'Burst' });
  await delivered(burst);
  const lone = await trackMany(page, 1, { metric: 'Lone', from: 50 });
  await delivered(lone);
  const s = summary();
  const reqs = eventRequests(s);
  assert.deepEqual(reqs.map((r) => [r.path, r.uniqueIds.length]), [['/client/event-bulk-create', 50], ['/client/events', 1]]);
  trace(t);
  assertNoPageErrors(shop);
});

test('pagehide: a page closed before its batch is due still delivers it (keepalive)', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId, flushDelayMs: 60_000 });
  const ids = await trackMany(page, 3, { metric: 'Pagehide' });
  assert.equal(summary().count, 0, 'nothing sent yet (flushDelayMs 60 s)');
  await page.close();
  await delivered(ids, { timeout: 5000, what: 'the keepalive flush on pagehide' });
  trace(t);
  assertNoPageErrors(shop);
});

test('visibilitychange to hidden flushes at once', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId, flushDelayMs: 60_000 });
  const ids = await trackMany(page, 3, { metric: 'Hidden' });
  assert.equal(summary().count, 0, 'nothing sent yet (flushDelayMs 60 s)');
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await delivered(ids, { timeout: 5000, what: 'the flush on visibilitychange' });
  trace(t);
  assertNoPageErrors(shop);
});

test('debug: true logs queue decisions without personal data', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId, debug: 1 });
  const secrets = ['zelda.private@example.com', 'Zelda', 'XYZ-secret-prop', '+15005550006'];
  await page.evaluate((s) => window.kl.identify({ email: s[0], first_name: s[1], phone_number: s[3] }), secrets);
  env.emu.addFault({ path: '/client/', status: 503, count: 1 });
  const ids = await trackMany(page, 3, { metric: 'Debugged', props: { note: secrets[2] } });
  await delivered(ids);
  const log = await page.evaluate(() => window.debugLog);
  assert.ok(log.length > 0, 'debug lines were logged');
  for (const line of log) for (const s of secrets) assert.ok(!line.includes(s), `debug line leaks personal data: ${line}`);
  t.diagnostic(`${log.length} debug lines, e.g. ${JSON.stringify(log.slice(0, 3))}`);
  trace(t);
  assertNoPageErrors(shop);
});

test('debug: true logs the package\'s own reports too, with no onError (a bad currency option, a call after close())', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const { log, thrown } = await page.evaluate(async () => {
    const other = window.Klaviyo.create(window.shopOptions({ debug: true, currency: 'dollars' }));
    await other.ready;
    other.close();
    other.track('After Close');
    // The same without debug: nothing logged.
    const quiet = window.Klaviyo.create(window.shopOptions({ currency: 'euros' }));
    await quiet.ready;
    // Options whose `debug` getter throws: refused by create, the shop's own call, and
    // never thrown later into the page (a report, a call after close()).
    const hostile = Object.defineProperty(window.shopOptions({ currency: 'yen' }), 'debug', { get() { throw Error('getter'); } });
    let thrown;
    try { window.Klaviyo.create(hostile); } catch (e) { thrown = e.message; }
    await null; // (the bad currency's report, queued before the throw, runs first)
    return { log: window.debugLog.slice(), thrown };
  });
  assert.equal(thrown, 'getter');
  // (Among the runtime's own lines: `consent 1`, ...)
  assert.deepEqual(log.filter((l) => /currency|closed/.test(l)), [
    'klaviyo: init: currency must be a three-letter ISO 4217 code, like USD',
    'klaviyo: tracker closed: call not kept',
  ]);
  assertNoPageErrors(shop);
});

test('a refusal whose body quotes an email or a phone number reaches onError without them (the pointer and the code kept)', { timeout: TEST_TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const echo = {
    errors: [{
      id: 'e1', status: 400, code: 'invalid', title: 'Invalid input.',
      detail: "'ann.lee+shop@example.com' is not a valid email; +1 (555) 555-0123 is not a phone number",
      source: { pointer: '/data/attributes/profile/data/attributes/email' },
    }, {
      id: '550e8400-e29b-41d4-a716-446655440000', status: 400, code: 'invalid', title: 'Invalid input.',
      detail: 'The email "ANN.O\'BRIEN@example.co.uk", \'zed@example\' or the number 555-555-0123 at 1985-01-01T00:00:00 and 2024-01-01 00:00:00.000000+00:00',
      source: { pointer: '/data/attributes/profile/data/attributes/phone_number' },
    }, {
      id: 'e3', status: 400, code: 'invalid', title: 'Invalid input.',
      detail: 'refused on 2024-01-01 5551234567, order A1234 5559876543',
      source: { pointer: '/data/attributes/profile/data/attributes/phone_number' },
    }],
  };
  env.emu.addFault({ path: '/client/events', status: 400, count: 1, body: echo });
  await trackMany(page, 1, { metric: 'Echoed Refusal' });
  const rejected = await waitFor(async () => (await reportsOf(page)).find((r) => r.kind === 'rejected'), { what: 'the rejected report' });
  const seen = JSON.stringify(rejected);
  assert.ok(!/example|555|BRIEN/i.test(seen), seen);
  assert.equal(rejected.detail.errors[0].source.pointer, '/data/attributes/profile/data/attributes/email');
  assert.equal(rejected.detail.errors[0].code, 'invalid');
  assert.match(rejected.detail.errors[0].detail, /^'\[redacted\]' is not a valid email; \[redacted\] is not a phone number$/);
  // Quoted inside the JSON text too, an address Klaviyo refuses as invalid, and a number
  // that is no E.164 one; dates and the error's id are kept.
  assert.equal(rejected.detail.errors[1].detail, 'The email "[redacted]", \'[redacted]\' or the number [redacted] at 1985-01-01T00:00:00 and 2024-01-01 00:00:00.000000+00:00');
  assert.equal(rejected.detail.errors[1].id, '550e8400-e29b-41d4-a716-446655440000', 'the error\'s id, which Klaviyo\'s support asks for, kept');
  // A date or an id kept does not run on into the number right after it.
  assert.equal(rejected.detail.errors[2].detail, 'refused on 2024-01-01 [redacted], order A1234 [redacted]');
  assertNoPageErrors(shop);
});
