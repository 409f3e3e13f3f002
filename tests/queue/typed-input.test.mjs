// What index.d.ts lets a strict TypeScript storefront pass must work at run time too:
// `undefined` for any optional member (the types allow it under
// exactOptionalPropertyTypes), frozen arrays (`readonly` in the types), instances of the
// shop's own classes (interface-typed data), and `onError`'s `detail` as whatever JSON
// the server on the way answered (typed `unknown`). tests/fixtures/types checks the
// types; this suite checks the runtime they describe.
// Standalone: `node --test tests/queue/typed-input.test.mjs` (needs a built dist/web).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suiteEnv, waitFor } from './harness.mjs';
import { events } from '../support/events.mjs';

const TIMEOUT = 60_000;
const suite = suiteEnv('TyI');
const { nextCompanyId, scenario } = suite;

test('undefined members, frozen arrays and class instances are taken as the types say: not given, arrays, plain data', { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const got = await page.evaluate(async () => {
    // Every option given as undefined: the defaults.
    const kl = await window.Klaviyo.init(window.shopOptions({
      apiBase: window.shopOptions().apiBase, revision: undefined, maxQueueEvents: undefined, maxQueueBytes: undefined,
      maxMemoryBytes: undefined, flushDelayMs: undefined, debug: undefined, consent: undefined, wasmUrl: undefined,
      klaviyoCookie: undefined, firstPartyId: undefined, onError: undefined,
    }));
    class ShopProduct {
      constructor() { this.ProductID = '1111'; this.ProductName = 'Winnie the Pooh'; this.Price = 9.99; this.Categories = Object.freeze(['Kids']); }
    }
    const p = new ShopProduct();
    const lines = Object.freeze([Object.freeze({ ProductID: '1111', ProductName: 'Winnie the Pooh', Quantity: 2 })]);
    await kl.identify({ email: 'typed@example.com', first_name: undefined, location: { city: undefined }, properties: p });
    const ids = {
      viewed: kl.viewedProduct({ ...p, URL: undefined, CompareAtPrice: undefined }),
      added: kl.addedToCart({ ...p, Quantity: undefined, CartTotal: undefined, ItemNames: Object.freeze(['Winnie the Pooh']), Items: lines }),
      checkout: kl.startedCheckout({ Items: lines, value: 19.98, CheckoutURL: undefined }),
      order: kl.track('Placed Order', p, { uniqueId: undefined, value: undefined, valueCurrency: undefined, time: undefined }),
    };
    const subscribed = await kl.subscribe({ listId: 'Y6nRLr', email: undefined, phone_number: undefined, channels: Object.freeze(['email']), customSource: undefined })
      .then(() => 'resolved', (e) => e.message);
    const flushed = await kl.flush();
    return { ids, subscribed, flushed, consent: kl.consent, reports: window.reports.length };
  });
  assert.equal(got.consent, 'granted', 'consent: undefined is the default');
  assert.equal(got.subscribed, 'resolved');
  assert.deepEqual(got.flushed.failed, 0);
  for (const [name, id] of Object.entries(got.ids)) assert.match(id, /^[0-9a-f-]{36}-\d+$/, `${name}: a generated unique_id`);
  await waitFor(() => events(suite.env.emu.requests().requests).length >= 4, { what: 'the four events' });
  const byMetric = Object.fromEntries(events(suite.env.emu.requests().requests).map((e) => [e.metric, e]));
  assert.equal(byMetric['Viewed Product'].value, 9.99);
  assert.deepEqual(byMetric['Viewed Product'].properties.Categories, ['Kids']);
  assert.equal(byMetric['Added to Cart'].value, 9.99, 'Quantity: undefined is the default 1');
  assert.deepEqual(byMetric['Added to Cart'].properties.Items, [{ ProductID: '1111', ProductName: 'Winnie the Pooh', Quantity: 2 }]);
  assert.equal(byMetric['Started Checkout'].value, 19.98);
  assert.equal(byMetric['Placed Order'].properties.ProductName, 'Winnie the Pooh', 'a class instance is its own fields');
  assert.equal(byMetric['Placed Order'].unique_id, got.ids.order);
  const profile = byMetric['Placed Order'].profile;
  assert.equal(profile.email, 'typed@example.com');
  assert.equal(profile.first_name, undefined);
  assert.deepEqual(shop.pageErrors, []);
});

test('null and blank members (GraphQL `Maybe`, an empty form field) are not given, as the types say: the call goes', { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  const got = await page.evaluate(async () => {
    const kl = window.kl;
    // Before, a blank name refused the whole identify: the email never went.
    await kl.identify({ email: 'maybe@example.com', first_name: '', last_name: null, location: { city: null }, properties: { tier: null } });
    // A later identify with the email not loaded yet keeps it.
    await kl.identify({ email: null, phone_number: '', title: 'Buyer' });
    const ids = {
      viewed: kl.viewedProduct({ ProductID: '7', ProductName: 'Tee', Price: 5, CompareAtPrice: null, URL: null }, null),
      added: kl.addedToCart({ ProductID: '7', ProductName: 'Tee', Price: 5, Quantity: 2, AddedItemProductID: null }),
      tracked: kl.track('Maybe Tracked', null, { value: null, valueCurrency: null, time: null, uniqueId: null }),
    };
    const subscribed = await kl.subscribe({ listId: 'Y6nRLr', email: 'maybe@example.com', phone_number: '', channels: ['email'], customSource: null })
      .then(() => 'resolved', (e) => e.message);
    await kl.flush();
    // Options left null are not given (onError too, as activeOnSite and the rest).
    let created;
    try {
      const other = window.Klaviyo.create(window.shopOptions({ onError: null, activeOnSite: null, debug: null }));
      other.close();
      created = 'created';
    } catch (e) { created = e.message; }
    return { ids, subscribed, created, identified: kl.isIdentified(), invalid: window.reports.filter((r) => r.kind === 'invalid').map((r) => r.message) };
  });
  assert.deepEqual(got.invalid, []);
  assert.equal(got.subscribed, 'resolved');
  assert.equal(got.created, 'created', 'onError: null is not given');
  assert.equal(got.identified, true);
  await waitFor(() => events(suite.env.emu.requests().requests).length >= 3, { what: 'the three events' });
  const byMetric = Object.fromEntries(events(suite.env.emu.requests().requests).map((e) => [e.metric, e]));
  assert.equal(byMetric['Added to Cart'].value, 10, 'our shape read: price × quantity');
  // One AddedItemProductID, ours (the page's null one beside it was sent too, last).
  assert.equal(byMetric['Added to Cart'].properties.AddedItemProductID, '7');
  assert.equal(byMetric['Maybe Tracked'].unique_id, got.ids.tracked);
  assert.equal(byMetric['Maybe Tracked'].profile.email, 'maybe@example.com', 'the email kept');
  assert.equal(byMetric['Maybe Tracked'].profile.first_name, undefined);
  assert.deepEqual(shop.pageErrors, []);
});

test("onError's detail is the body another server answered, parsed when JSON, whatever its shape", { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await shop.open({ companyId });
  // A gateway on the way answers 400 with JSON that is no JSON:API error body.
  suite.env.emu.addFault({ path: '/client/', status: 400, body: { message: 'Bad Gateway Rule' }, count: 1, name: 'gateway' });
  await page.evaluate(() => { window.kl.track('Through A Gateway'); return window.kl.flush(); });
  const reports = await waitFor(async () => {
    const r = await page.evaluate(() => window.reports.filter((x) => x.kind === 'rejected'));
    return r.length ? r : null;
  }, { what: 'the refusal reported' });
  assert.deepEqual(reports[0].detail, { message: 'Bad Gateway Rule' }, 'no `errors` member: the type says unknown, not KlaviyoErrorBody');
  assert.deepEqual(shop.pageErrors, []);
});
