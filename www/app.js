// Demo storefront wiring: every button makes one klaviyo-wasm call and logs what came back.
// The tracker is `window.kl`; `document.body.dataset.ready` is "1" once it is up ("error" if not).

const $ = (id) => document.getElementById(id);
const money = (n) => Math.round(n * 100) / 100;

const PRODUCT = {
  ProductID: 'wtp-1926',
  ProductName: 'Winnie-the-Pooh',
  SKU: 'WTP-1926-PB',
  Price: 12.99,
  CompareAtPrice: 16.99,
  URL: new URL('/#winnie-the-pooh', location.href).href,
  ImageURL: 'https://shop.example/images/winnie-the-pooh-cover.png',
  Categories: ['Books', "Children's Classics"],
  Brand: 'Methuen',
};
const DELUXE_VARIANT = '$custom:::$default:::WTP-1926-DLX';

let kl;
let cartQty = 0;

// ---------- the log panel ----------

function timeStamp() {
  return new Date().toLocaleTimeString([], { hour12: false });
}

/** Adds one entry to the call log. `result` is shown as is; `attrs` become data-* attributes. */
function log(call, ok, result, attrs = {}) {
  const li = document.createElement('li');
  li.className = ok ? 'ok' : 'fail';
  li.setAttribute('data-testid', 'log-entry');
  li.dataset.call = call;
  li.dataset.ok = String(ok);
  for (const [k, v] of Object.entries(attrs)) li.dataset[k] = v;
  const t = document.createElement('time');
  t.textContent = timeStamp();
  const name = document.createElement('span');
  name.className = 'call';
  name.textContent = call;
  const res = document.createElement('span');
  res.className = 'result';
  res.setAttribute('data-testid', 'log-result');
  res.textContent = result;
  li.append(t, name, res);
  $('log').prepend(li);
  refreshPending();
  return li;
}

function refreshPending() {
  if (!kl) return;
  const n = kl.pending();
  const el = $('pending-count');
  if (el.textContent !== String(n)) el.textContent = String(n);
  el.classList.toggle('busy', n > 0);
}

function showError(err) {
  const list = $('errors');
  list.querySelector('.empty')?.remove();
  const li = document.createElement('li');
  li.className = 'fail';
  li.setAttribute('data-testid', 'error-entry');
  li.dataset.kind = String(err?.kind ?? 'unknown');
  li.dataset.status = String(err?.status ?? '');
  li.dataset.count = String(err?.count ?? '');
  const t = document.createElement('time');
  t.textContent = timeStamp();
  const kind = document.createElement('span');
  kind.className = 'call';
  kind.textContent = `${err?.kind ?? 'error'}${err?.status ? ` ${err.status}` : ''} ×${err?.count ?? '?'}`;
  const msg = document.createElement('span');
  msg.className = 'result';
  const first = typeof err?.detail === 'object' ? err.detail?.errors?.[0]?.detail : err?.detail;
  msg.textContent = first ? `${err?.message} — ${first}` : String(err?.message ?? err);
  li.append(t, kind, msg);
  list.prepend(li);
  $('error-count').textContent = String(list.querySelectorAll('[data-testid="error-entry"]').length);
  refreshPending();
}

/** Runs one tracker call (sync or async) and logs its unique_id / outcome or its error. */
async function run(call, fn, describe = (r) => (typeof r === 'string' ? r : 'queued')) {
  if (!kl) return undefined;
  try {
    const r = await fn();
    const attrs = typeof r === 'string' ? { uniqueId: r, kind: 'event' } : {};
    log(call, true, describe(r), attrs);
    return r;
  } catch (e) {
    log(call, false, e?.message ?? String(e));
    return undefined;
  } finally {
    // The tracker sends ~50 ms after a call; show the count drop when it does.
    setTimeout(refreshPending, 400);
  }
}

// ---------- shop actions ----------

function quantity() {
  const q = Number.parseInt($('quantity').value, 10);
  return Number.isFinite(q) && q > 0 ? q : 1;
}

function viewProduct() {
  return run('viewedProduct', () => kl.viewedProduct(PRODUCT));
}

async function addToCart() {
  const qty = quantity();
  const id = await run('addedToCart', () => kl.addedToCart({
    ProductID: PRODUCT.ProductID,
    ProductName: PRODUCT.ProductName,
    SKU: PRODUCT.SKU,
    Price: PRODUCT.Price,
    Quantity: qty,
    URL: PRODUCT.URL,
    ImageURL: PRODUCT.ImageURL,
    Categories: PRODUCT.Categories,
    Brand: PRODUCT.Brand,
    CartTotal: money(PRODUCT.Price * (cartQty + qty)),
  }));
  if (id) {
    cartQty += qty;
    $('cart-count').textContent = String(cartQty);
  }
}

function startCheckout() {
  const qty = cartQty || quantity();
  const total = money(PRODUCT.Price * qty);
  return run('startedCheckout', () => kl.startedCheckout({
    CheckoutURL: new URL('/checkout', location.href).href,
    ItemNames: [PRODUCT.ProductName],
    Categories: PRODUCT.Categories,
    Items: [{
      ProductID: PRODUCT.ProductID,
      SKU: PRODUCT.SKU,
      ProductName: PRODUCT.ProductName,
      Quantity: qty,
      ItemPrice: PRODUCT.Price,
      RowTotal: total,
      ProductURL: PRODUCT.URL,
      ImageURL: PRODUCT.ImageURL,
    }],
    value: total,
  }));
}

function identify(event) {
  event.preventDefault();
  const profile = {};
  const email = $('identify-email').value.trim();
  const first = $('identify-first-name').value.trim();
  if (email) profile.email = email;
  if (first) profile.first_name = first;
  return run('identify', () => kl.identify(profile), () => `profile queued${email ? ` (${email})` : ''}`);
}

function subscribe(event) {
  event.preventDefault();
  const email = $('subscribe-email').value.trim();
  return run('subscribe', () => kl.subscribe({
    listId: $('subscribe-list-id').value.trim(),
    email: email || undefined,
    channels: ['email'],
    customSource: 'Demo storefront footer',
  }), () => 'subscription queued');
}

function backInStock(event) {
  event.preventDefault();
  const email = $('bis-email').value.trim();
  return run('backInStock', () => kl.backInStock({
    variantId: DELUXE_VARIANT,
    email: email || undefined,
    channels: ['email'],
  }), () => 'back-in-stock request queued');
}

async function flushNow() {
  const r = await run('flush', () => kl.flush(), (x) => `sent ${x.sent}, pending ${x.pending}, failed ${x.failed}`);
  if (r) {
    const el = $('flush-result');
    el.textContent = `sent ${r.sent} · pending ${r.pending} · failed ${r.failed}`;
    el.dataset.sent = String(r.sent);
    el.dataset.pending = String(r.pending);
    el.dataset.failed = String(r.failed);
  }
}

function logout() {
  run('reset', () => { kl.reset(); }, () => 'new anonymous profile');
  cartQty = 0;
  $('cart-count').textContent = '0';
  $('anonymous-id').textContent = kl.anonymousId;
}

// ---------- bad input: each must throw / reject and queue nothing ----------

const BAD_CASES = {
  email: () => kl.identify({ email: 'x@' }),
  phone: () => kl.identify({ phone_number: '555-0100' }),
  metric: () => kl.track('', { Page: 'Winnie-the-Pooh' }),
  price: () => kl.addedToCart({ ProductID: PRODUCT.ProductID, ProductName: PRODUCT.ProductName, Quantity: 1 }),
  value: () => kl.track('Viewed Page', { Page: 'Winnie-the-Pooh' }, { value: '12.99' }),
  currency: () => kl.track('Viewed Page', { Page: 'Winnie-the-Pooh' }, { value: 12.99, valueCurrency: 'US' }),
};

async function badInput(name) {
  const out = $(`bad-${name}-error`);
  const before = kl.pending();
  let message;
  let thrown = false;
  try {
    const r = await BAD_CASES[name]();
    message = `NOT rejected: returned ${JSON.stringify(r ?? null)}`;
  } catch (e) {
    thrown = true;
    message = e?.message ?? String(e);
  }
  out.textContent = message;
  out.dataset.thrown = String(thrown);
  out.classList.toggle('bad-ok', thrown);
  out.classList.toggle('bad-miss', !thrown);
  $('bad-last-error').textContent = message;
  log(`bad input: ${name}`, false, message, { bad: name });
  if (kl.pending() !== before) log(`bad input: ${name}`, false, `queued something (pending ${before} → ${kl.pending()})`);
}

// ---------- start-up ----------

function fatal(message) {
  const b = $('init-error');
  b.textContent = message;
  b.hidden = false;
  $('status').textContent = 'not running';
  $('status').className = 'status down';
  document.body.dataset.ready = 'error';
}

async function main() {
  let Klaviyo;
  try {
    ({ Klaviyo } = await import('../dist/web/index.js'));
  } catch (e) {
    fatal(`Could not load ../dist/web/index.js (${e.message}). Run \`npm run build\`, then reload.`);
    return;
  }
  let config;
  try {
    const res = await fetch('/config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    config = await res.json();
  } catch (e) {
    fatal(`Could not read /config.json (${e.message}). Start the demo with \`node www/serve.mjs\`.`);
    return;
  }
  try {
    kl = await Klaviyo.init({ companyId: config.companyId, apiBase: config.apiBase, onError: showError });
  } catch (e) {
    fatal(`Klaviyo.init failed: ${e.message}`);
    return;
  }
  window.kl = kl;

  $('company-id').textContent = config.companyId;
  $('api-base').textContent = config.apiBase;
  $('anonymous-id').textContent = kl.anonymousId;
  $('admin-link').href = `${config.apiBase}/__admin/requests`;
  $('status').textContent = 'ready';
  $('status').className = 'status up';

  $('view-product').addEventListener('click', viewProduct);
  $('add-to-cart').addEventListener('click', addToCart);
  $('start-checkout').addEventListener('click', startCheckout);
  $('identify-form').addEventListener('submit', identify);
  $('subscribe-form').addEventListener('submit', subscribe);
  $('bis-form').addEventListener('submit', backInStock);
  $('flush').addEventListener('click', flushNow);
  $('reset').addEventListener('click', logout);
  $('clear-log').addEventListener('click', () => { $('log').replaceChildren(); });
  for (const b of document.querySelectorAll('[data-case]')) {
    b.addEventListener('click', () => badInput(b.dataset.case));
  }
  setInterval(refreshPending, 250);

  // A product page reports the view as soon as it loads.
  await viewProduct();
  document.body.dataset.ready = '1';
}

main();
