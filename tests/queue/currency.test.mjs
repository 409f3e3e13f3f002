// The tracker's currency (`currency`, `setCurrency`, the script tag's `data-currency` and
// `["currency", code]`): each event with a value goes in the currency in force when it
// was made, unless it names its own; dist/web in Chromium against the Klaviyo emulator.
// Standalone: `node --test tests/queue/currency.test.mjs` (needs a built dist/web).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suiteEnv, waitFor, pageUrl, openCreatePage, loadingPage } from './harness.mjs';
import { events } from '../support/events.mjs';

const TIMEOUT = 60_000;
const suite = suiteEnv('Cur');
const { nextCompanyId, scenario } = suite;

/** The `value_currency` each event was sent with, by `unique_id`, once all `ids` came. */
async function currencies(ids) {
  const sent = () => events(suite.env.emu.requests().requests);
  await waitFor(() => ids.every((id) => sent().some((e) => e.unique_id === id)), { what: `events ${ids.join(' ')}` });
  return Object.fromEntries(sent().filter((e) => ids.includes(e.unique_id)).map((e) => [e.unique_id, e.value_currency ?? null]));
}

const PRODUCT = { ProductID: '1111', ProductName: 'Winnie the Pooh', Price: 9.99 };

test('every value goes in the currency in force when its call was made, from the loading window on; a call\'s own wins; none without a value', { timeout: TIMEOUT }, async (t) => {
  const { companyId, shop, wasm, page } = await loadingPage(suite, t, 'eur');
  const early = await page.evaluate((product) => {
    const kl = window.kl;
    const ids = {
      product: kl.viewedProduct(product),
      browse: kl.track('Browsed', { n: 1 }),
      own: kl.track('Ordered', {}, { value: 5, valueCurrency: 'usd' }),
    };
    kl.setCurrency('GBP'); // the shopper switched currency, before the wasm is there
    ids.switched = kl.viewedProduct({ ...product, Price: 8.5 });
    return ids;
  }, PRODUCT);
  wasm.release();
  const late = await page.evaluate(async ({ product, shop }) => {
    const kl = window.kl;
    await kl.ready;
    const ids = { checkout: kl.startedCheckout({ $value: 19.98, CheckoutURL: 'https://shop.example/checkout' }) };
    kl.setCurrency(null);
    ids.none = kl.viewedProduct(product);
    kl.setCurrency('jpy');
    ids.cart = kl.addedToCart({ ...product, Quantity: 2 });
    ids.collection = kl.viewedCollection({ CollectionID: 42 });
    const refused = [];
    for (const bad of ['euro', 'E1R', 7, ['EUR']]) {
      try { kl.setCurrency(bad); refused.push('kept'); } catch (e) { refused.push(e.message); }
    }
    ids.stillJpy = kl.viewedProduct(product);
    // A tracker created with a bad one runs in none, and says so.
    const told = [];
    const other = window.Klaviyo.create({ ...shop, activeOnSite: 'manual', currency: '€', onError: (e) => told.push(`${e.kind} ${e.message}`) });
    await other.ready;
    ids.otherNone = other.viewedProduct(product);
    return { ids, refused, told };
  }, { product: PRODUCT, shop: { companyId, apiBase: suite.env.emu.url } });
  const ids = { ...early, ...late.ids };
  const got = await currencies(Object.values(ids));
  const byName = Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, got[id]]));
  assert.deepEqual(byName, {
    product: 'EUR', browse: null, own: 'USD', switched: 'GBP', checkout: 'GBP', none: null, cart: 'JPY', collection: null, stillJpy: 'JPY', otherNone: null,
  });
  const message = 'currency must be a three-letter ISO 4217 code, like USD';
  assert.deepEqual(late.refused, Array(4).fill(`setCurrency: ${message}`), 'refused by name, the tracker\'s currency kept');
  assert.deepEqual(late.told, [`invalid init: ${message}`], 'create reports a bad one and runs without');
  assert.deepEqual(shop.pageErrors, []);
});

test('a page closed before its wasm loaded: the later page that sends its calls sends them in that page\'s currency, not its own', { timeout: TIMEOUT }, async (t) => {
  const { companyId, shop, wasm, page: first } = await loadingPage(suite, t, 'SEK');
  const saved = await first.evaluate((product) => window.kl.viewedProduct(product), PRODUCT);
  await waitFor(() => first.evaluate((k) => Object.keys(localStorage).some((key) => key.startsWith(k)), `klaviyo:${companyId}:pre:`), { what: 'the window saved' });
  await first.close();
  wasm.release();
  await shop.context.unrouteAll({ behavior: 'ignoreErrors' });
  // A later visit in another currency adopts the record once it is stale (60 s).
  const later = await shop.context.newPage();
  await later.clock.install({ time: Date.now() + 65_000 });
  await later.goto(pageUrl(suite.env, { companyId }));
  await shop.ready(later);
  const own = await later.evaluate((product) => (window.kl.setCurrency('NOK'), window.kl.viewedProduct(product)), PRODUCT);
  const got = await currencies([saved, own]);
  assert.deepEqual([got[saved], got[own]], ['SEK', 'NOK']);
  assert.deepEqual(shop.pageErrors, []);
});

// A currency that is blank to JS (trim(), which strips U+FEFF, a BOM) must be none for
// the core too, whose blanks lack U+FEFF: accepted as none, then handed on, it had every
// event with a value refused (a review).
test('a currency blank to JavaScript (U+FEFF, spaces) is none for the core too: no event with a value refused or thrown', { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await openCreatePage(suite, shop, { companyId });
  const out = await page.evaluate(async ({ product, shop }) => {
    await window.kl.ready;
    const told = [];
    const other = window.Klaviyo.create({ ...shop, activeOnSite: 'manual', currency: '\uFEFF', onError: (e) => told.push(`${e.kind} ${e.message}`) });
    other.viewedProduct(product); // in its loading window
    await other.ready;
    const thrown = [];
    try { other.viewedProduct({ ...product, ProductID: '2' }); } catch (e) { thrown.push(e.message); }
    let setCurrency = 'accepted';
    try { window.kl.setCurrency(' \uFEFF '); } catch (e) { setCurrency = e.message; }
    try { window.kl.viewedProduct({ ...product, ProductID: '3' }); } catch (e) { thrown.push(e.message); }
    return { refused: told.filter((m) => !m.startsWith('invalid init:')), thrown, setCurrency };
  }, { product: PRODUCT, shop: { companyId, apiBase: suite.env.emu.url } });
  // Either JS refuses it up front (create reports it, setCurrency throws) or the core
  // takes it for none; never a value event refused afterwards.
  assert.deepEqual({ refused: out.refused, thrown: out.thrown }, { refused: [], thrown: [] }, JSON.stringify(out));
});

// A bad `currency` option is reported and the tracker runs without one, even one JSON
// cannot hold: handed to the core with the options, it kept the tracker from starting
// (a review).
test('a currency option JSON cannot hold (BigInt, cyclic) is reported and the tracker still runs; a getter is read once', { timeout: TIMEOUT }, async (t) => {
  const companyId = nextCompanyId();
  const shop = await scenario(t);
  const page = await openCreatePage(suite, shop, { companyId });
  const out = await page.evaluate(async ({ shop }) => {
    await window.kl.ready;
    const cyclic = { code: 'EUR' };
    cyclic.self = cyclic;
    const results = [];
    for (const currency of [10n, cyclic]) {
      const told = [];
      const other = window.Klaviyo.create({ ...shop, activeOnSite: 'manual', currency, onError: (e) => told.push(`${e.kind} ${e.message}`) });
      const outcome = await other.ready.then(() => 'ready', (e) => `rejected: ${e.kind} ${e.message}`);
      results.push({ outcome, told });
      other.close();
    }
    // A getter that answers a code once and then something else: read once, so the
    // code checked is the code kept (read twice, its second answer threw from create).
    let reads = 0;
    const options = { ...shop, activeOnSite: 'manual', get currency() { return ++reads === 1 ? 'EUR' : 7; } };
    let created = 'created';
    try { window.Klaviyo.create(options).close(); } catch (e) { created = e.message; }
    return { results, getter: { created, reads } };
  }, { shop: { companyId, apiBase: suite.env.emu.url } });
  const told = ['invalid init: currency must be a three-letter ISO 4217 code, like USD'];
  assert.deepEqual(out.results, [{ outcome: 'ready', told }, { outcome: 'ready', told }]);
  assert.deepEqual(out.getter, { created: 'created', reads: 1 });
});
