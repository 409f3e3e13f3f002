// What a shop's page may do to the tracker by mistake or through other scripts: calls
// after close(), a fetch replaced by a wrapper that throws or returns no Response,
// arguments whose getters throw, numbers and dates JSON cannot hold. None may throw into
// the page, leave the send loop stuck, lose a call silently, or send a wrong value.
// Standalone: `node --test tests/queue/hostile.test.mjs` (needs a built dist/web).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suiteEnv, waitFor, storedEntries } from './harness.mjs';
import { events } from '../support/events.mjs';

const TIMEOUT = 60_000;
const suite = suiteEnv('HoS');
const { nextCompanyId, scenario } = suite;

/** Every event the emulator accepted (`{ metric, value, time, properties, ... }`). */
const accepted = () => events(suite.env.emu.requests().requests);

test('calls after close() are refused: events through onError (once, even for a call onError makes), async calls reject; a denial after close() still erases', { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const got = await page.evaluate(async () => {
    await window.kl.identify({ email: 'closed@example.com' });
    window.kl.track('Before Close');
    await window.kl.flush();
    window.kl.close();
    // A shop whose onError tracks the error: one report, not one for each report.
    const before = window.reports.length;
    const push = window.reports.push.bind(window.reports);
    window.reports.push = (r) => { push(r); return window.kl.track('Tracker Error'); };
    const out = { id: window.kl.track('After Close') };
    window.reports.push = push;
    out.nested = window.reports.length - before;
    out.identify = await window.kl.identify({ email: 'later@example.com' }).then(() => 'resolved', (e) => e.message);
    out.subscribe = await window.kl.subscribe({ listId: 'Y6nRLr', email: 'later@example.com' }).then(() => 'resolved', (e) => e.message);
    out.consentBefore = window.kl.consent;
    out.reports = window.reports.map((r) => `${r.kind}: ${r.message}`);
    return out;
  });
  assert.equal(got.id, '', 'no unique_id for an event that is not kept');
  assert.match(got.identify, /tracker closed/);
  assert.match(got.subscribe, /tracker closed/);
  assert.equal(got.consentBefore, 'granted', 'kl.consent stays the answer in force at close()');
  assert.equal(got.nested, 1, 'one report for the refused call, none for the one its onError made');
  assert.equal(got.reports.filter((r) => r === 'invalid: tracker closed: call not kept').length, 1,
    `the events report; the async calls only reject: ${got.reports.join(' | ')}`);
  const stored = await storedEntries(page, `klaviyo:${companyId}:`);
  assert.ok(Object.keys(stored).some((k) => k.endsWith(':id')), 'the visitor is stored before the denial');

  // A denial after close(): everything of the shop erased, the other tabs told.
  const after = await page.evaluate(() => {
    window.kl.setConsent('denied');
    return window.kl.consent;
  });
  assert.equal(after, 'denied');
  const left = await storedEntries(page, `klaviyo:${companyId}:`);
  // (The marker that tells the other tabs goes with the erase, as at any denial; the
  // denial's time stays.)
  assert.deepEqual(Object.keys(left), [`klaviyo:${companyId}:denied`], 'nothing of the shop is left');
  assert.ok(!accepted().some((e) => e.metric === 'After Close'), 'nothing of the closed tracker was sent');
  assert.deepEqual(shop.pageErrors, []);
});

test('a fetch that throws or returns no Response is a failed request: nothing thrown into the page, the calls sent once fetch works again', { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  await page.evaluate(() => {
    window.realFetch = window.fetch;
    window.fetchMode = 'throw';
    window.fetch = (url, init) => {
      if (String(url).includes('/client/')) {
        if (window.fetchMode === 'throw') throw new TypeError('a wrapper broke');
        if (window.fetchMode === 'nothing') return undefined;
      }
      return window.realFetch(url, init);
    };
    window.kl.track('Wrapper Throws');
  });
  await waitFor(() => page.evaluate(() => window.reports.some((r) => r.kind === 'retry')), { what: 'the failed send reported as a retry' });
  await page.evaluate(() => {
    window.fetchMode = 'nothing';
    window.kl.track('Wrapper Returns Nothing');
    return window.kl.flush();
  });
  await page.evaluate(() => { window.fetchMode = 'real'; });
  // Sent at the next retry (the backoff of a request that got no answer).
  await waitFor(() => {
    const names = accepted().map((e) => e.metric);
    return names.includes('Wrapper Throws') && names.includes('Wrapper Returns Nothing');
  }, { timeout: 20_000, what: 'both calls delivered once fetch works' });
  await waitFor(async () => (await page.evaluate(() => window.kl.pending())) === 0, { what: 'nothing left pending' });
  assert.deepEqual(shop.pageErrors, [], 'no uncaught exception');
});

test("an argument whose getter throws, or a revoked Proxy, is refused naming the argument like any bad input, not with the getter's own error", { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const got = await page.evaluate(() => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const throwing = { get Price() { throw new Error('getter'); }, ProductID: '1', ProductName: 'x' };
    const out = [];
    for (const f of [() => window.kl.track('M', proxy), () => window.kl.addedToCart(throwing), () => window.kl.viewedProduct(proxy)]) {
      try { f(); out.push('returned'); } catch (e) { out.push(e.message); }
    }
    return out;
  });
  // (The core names an event call's first object argument `properties`.)
  assert.deepEqual(got, ['track', 'addedToCart', 'viewedProduct']
    .map((m) => `${m}: properties must be plain JSON data (no cycles, functions or BigInt)`));
  assert.deepEqual(shop.pageErrors, []);
});

test('NaN, Infinity and an invalid Date in a time or a number field the core reads are refused by name, not sent as "not given"', { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const got = await page.evaluate(() => {
    const out = [];
    const guide = { AddedItemProductID: '1', AddedItemProductName: 'x', AddedItemPrice: 5 };
    const calls = [
      () => window.kl.track('Bad Time', {}, { time: new Date('garbage') }),
      () => window.kl.track('NaN Time', {}, { time: Date.parse('garbage') }),
      () => window.kl.track('Infinite Value', {}, { value: Infinity }),
      () => window.kl.addedToCart({ ProductID: '1', ProductName: 'x', Price: 2, Quantity: NaN }),
      () => window.kl.addedToCart({ ...guide, AddedItemQuantity: NaN }),
      () => window.kl.addedToCart({ ...guide, $value: Infinity }),
      () => window.kl.submittedSearch({ SearchTerm: 'x', ResultCount: NaN }),
      // The guide's `$value`, which Started Checkout reads as its value (text there is a
      // money string it keeps as a property: not the adapter's "NaN").
      () => window.kl.startedCheckout({ $value: NaN, CheckoutURL: 'u' }),
      () => window.kl.startedCheckout({ $value: new Date('garbage') }),
    ];
    // Free-form properties are not the core's fields: JSON's null, as ever, and a key
    // beside them changes nothing. (One object as both properties and options is.)
    window.kl.track('Free Form', { time: NaN, other: NaN, value: 'x' });
    const both = { value: NaN };
    calls.push(() => window.kl.track('Both', both, both));
    // A Date of another window (an iframe's), which is no instance of this one's Date.
    const frame = document.body.appendChild(document.createElement('iframe'));
    calls.push(() => window.kl.track('Frame Time', {}, { time: new frame.contentWindow.Date('garbage') }));
    for (const f of calls) {
      try { f(); out.push('returned'); } catch (e) { out.push(e.message); }
    }
    window.kl.track('Good Time', {}, { time: new Date(Date.now() - 60_000) });
    return out;
  });
  for (const [i, field] of [[0, 'time'], [1, 'time'], [2, 'value'], [3, 'Quantity'], [4, 'AddedItemQuantity'], [5, '\\$value'], [6, 'ResultCount'], [7, '\\$value'], [8, '\\$value'], [9, 'value'], [10, 'time']]) {
    assert.match(got[i], new RegExp(`: ${field} `), `call ${i} refused naming ${field}: ${got[i]}`);
  }
  await waitFor(() => accepted().some((e) => e.metric === 'Good Time'), { what: 'the valid call' });
  assert.deepEqual(accepted().map((e) => e.metric).sort(), ['Free Form', 'Good Time'], 'only the valid calls were sent');
  assert.deepEqual(accepted().find((e) => e.metric === 'Free Form').properties, { time: null, other: null, value: 'x' });
  assert.deepEqual(shop.pageErrors, []);
});
