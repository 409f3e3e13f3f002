// Klaviyo's `$value` and `$event_id` among an event's properties, as its guides write
// them for its onsite script (`klaviyo.track("Ordered Pizza", { $value: 23.99 })`): the
// event's value (`track`) and its `unique_id` (every event call) where the options give
// none, from the loading window on; dist/web in Chromium against the Klaviyo emulator.
// Standalone: `node --test tests/queue/dollar-value.test.mjs` (needs a built dist/web).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suiteEnv, waitFor, loadingPage } from './harness.mjs';
import { events } from '../support/events.mjs';

const TIMEOUT = 60_000;
const suite = suiteEnv('Dol');

test('track() takes a number in $value as the event\'s value, in the tracker\'s currency, before and after ready; the options\' value wins; text stays a property; $event_id is the unique_id the call returns', { timeout: TIMEOUT }, async (t) => {
  const { wasm, page } = await loadingPage(suite, t, 'EUR');
  // In the loading window: the call is saved as made and read by the core later.
  const early = await page.evaluate(() => ({ loading: window.kl.track('Ordered Pizza', { $value: 23.99, Size: 'L' }) }));
  wasm.release();
  const late = await page.evaluate(async () => {
    const kl = window.kl;
    await kl.ready;
    return {
      ready: kl.track('Ordered Pizza', { $value: 12.5 }),
      ownValue: kl.track('Ordered Pizza', { $value: 5 }, { value: 7.25 }),
      text: kl.track('Ordered Pizza', { $value: '9,99 €' }),
    };
  });
  // `$event_id`: the call returns it, and it is the event's unique_id (a number as its text).
  const named = await page.evaluate(() => {
    const kl = window.kl;
    return {
      order: kl.track('Placed Order', { $event_id: 1001, $value: 5 }),
      checkout: kl.startedCheckout({ $event_id: 'cart-7_1700000000', $value: 19.98 }),
      ownId: kl.track('Placed Order', { $event_id: 'e-2' }, { uniqueId: 'u-2' }),
      // What JSON makes of the object, as the core reads it, not the object's members.
      json: kl.track('Placed Order', { toJSON: () => ({ $event_id: 'j-3' }) }),
      inherited: kl.track('Placed Order', Object.create({ $event_id: 'o-4' })),
    };
  });
  assert.deepEqual({ ...named, inherited: named.inherited === 'o-4' }, { order: '1001', checkout: 'cart-7_1700000000', ownId: 'u-2', json: 'j-3', inherited: false });
  const ids = { ...early, ...late, ...named };
  const sent = () => events(suite.env.emu.requests().requests);
  await waitFor(() => Object.values(ids).every((id) => sent().some((e) => e.unique_id === id)), { what: 'the nine events' });
  const by = Object.fromEntries(Object.entries(ids).map(([name, id]) => {
    const e = sent().find((x) => x.unique_id === id);
    return [name, { value: e.value ?? null, currency: e.value_currency ?? null, properties: e.properties }];
  }));
  assert.deepEqual(by, {
    loading: { value: 23.99, currency: 'EUR', properties: { Size: 'L' } },
    ready: { value: 12.5, currency: 'EUR', properties: {} },
    ownValue: { value: 7.25, currency: 'EUR', properties: { $value: 5 } },
    text: { value: null, currency: null, properties: { $value: '9,99 €' } },
    order: { value: 5, currency: 'EUR', properties: {} },
    checkout: { value: 19.98, currency: 'EUR', properties: {} },
    ownId: { value: null, currency: null, properties: { $event_id: 'e-2' } },
    json: { value: null, currency: null, properties: {} },
    inherited: { value: null, currency: null, properties: {} },
  });
});
