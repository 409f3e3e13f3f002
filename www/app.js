// The demo storefront: a small shop (#/ products, #/product/<id>, #/cart) where each
// action is one klaviyo-wasm call. The Tracker panel logs each call, what the emulator
// received and what onError reported.
// The tracker is `window.kl`; `document.body.dataset.ready` is "1" once it runs ("error" if not).
// The shop's own state (consent choice, cart, who is signed in) lives under "bramblewick:"
// keys in localStorage, apart from the library's "klaviyo:" keys.

const $ = (id) => document.getElementById(id);

const KEY = { consent: 'bramblewick:consent', cart: 'bramblewick:cart', user: 'bramblewick:user' };
const LIST_ID = 'BwNews';
const CURRENCY = 'USD';
const BRAND = 'Bramblewick Apiary';

/** Fictional products; prices in cents. */
const PRODUCTS = [
  { id: 'bw-wildflower', sku: 'BW-WILD-340', name: 'Wildflower Honey', size: '340 g jar', cents: 950, category: 'Honey', color: '#f2b233', stock: true,
    blurb: 'Spring blossom from the meadows behind the orchard. Runny, floral and bright.' },
  { id: 'bw-heather', sku: 'BW-HEATH-250', name: 'Heather Honey', size: '250 g jar', cents: 1275, category: 'Honey', color: '#b8641f', stock: true,
    blurb: 'Late-summer moorland honey: deep amber, thick enough to stand a spoon in.' },
  { id: 'bw-comb', sku: 'BW-COMB-200', name: 'Honeycomb Square', size: '200 g', cents: 1400, category: 'Honey', color: '#e8a317', stock: true,
    blurb: 'Cut straight from the frame, wax and all. Spread it on warm toast.' },
  { id: 'bw-chestnut', sku: 'BW-CHEST-340', name: 'Chestnut Honey', size: '340 g jar', cents: 1125, category: 'Honey', color: '#6e3a12', stock: false,
    blurb: 'Dark, malty and a little bitter. This year’s harvest is sold out.' },
  { id: 'bw-candles', sku: 'BW-CAND-3', name: 'Beeswax Candle Trio', size: 'three pillars', cents: 1840, category: 'Home', color: '#f5d76e', stock: true,
    blurb: 'Hand-poured from our own wax. They burn slowly and smell faintly of honey.' },
  { id: 'bw-dipper', sku: 'BW-DIP-1', name: 'Olivewood Honey Dipper', size: '15 cm', cents: 499, category: 'Kitchen', color: '#9c7a4a', stock: true,
    blurb: 'Turned by hand. Drizzles honey without the drips down the jar.' },
];
const byId = (id) => PRODUCTS.find((p) => p.id === id);

let kl;
let current; // the product on screen
const cart = new Map(); // product id -> quantity

// ---------- small helpers ----------

const dollars = (cents) => cents / 100;
const fmt = (cents) => `$${(cents / 100).toFixed(2)}`;
const productUrl = (p) => new URL(`/#/product/${p.id}`, location.href).href;
const imageUrl = (p) => `https://shop.example/images/${p.id}.png`;

/** The shop's own storage (never the library's keys); a failure only loses the memory. */
const saved = {
  get(key) {
    try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
  },
  set(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch { /* storage off: the choice lasts for this page */ }
  },
};

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'data') Object.assign(e.dataset, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

/** A jar in the product's colour (the shop has no photos). */
function art(p) {
  const s = `<svg viewBox="0 0 120 120" role="img" aria-label="${p.name}">
    <rect x="0" y="0" width="120" height="120" rx="14" fill="#fdf3d7"/>
    <rect x="36" y="18" width="48" height="14" rx="4" fill="#7a4a0c"/>
    <path d="M32 36h56q6 0 6 8v52q0 10-10 10H36q-10 0-10-10V44q0-8 6-8z" fill="${p.color}"/>
    <rect x="36" y="56" width="48" height="26" rx="4" fill="#fffaf0" opacity=".9"/>
    <text x="60" y="73" text-anchor="middle" font-family="Georgia, serif" font-size="11" fill="#4a2a0a">${p.name.split(' ')[0]}</text>
  </svg>`;
  const f = document.createElement('div');
  f.className = 'jar';
  f.innerHTML = s;
  return f;
}

// ---------- the Tracker panel ----------

const clock = () => new Date().toLocaleTimeString([], { hour12: false });

/** One entry in the call log; `attrs` become data-* attributes. */
function log(call, ok, result, attrs = {}) {
  const li = el('li', { className: ok ? 'ok' : 'fail', data: { testid: 'log-entry', call, ok: String(ok), ...attrs } },
    el('time', { textContent: clock() }),
    el('span', { className: 'call', textContent: call }),
    el('span', { className: 'result', textContent: result, data: { testid: 'log-result' } }));
  $('log').prepend(li);
  refresh();
}

/** Runs one tracker call, sync or async, and logs its unique_id / outcome or its error. */
async function run(call, fn, describe = (r) => (typeof r === 'string' ? r : 'queued')) {
  try {
    const r = await fn();
    log(call, true, describe(r), typeof r === 'string' ? { uniqueId: r, kind: 'event' } : {});
    return r;
  } catch (e) {
    log(call, false, e?.message ?? String(e));
    return undefined;
  }
}

function refresh() {
  if (!kl) return;
  const known = kl.isIdentified?.() ? 'known visitor' : 'anonymous';
  if ($('known-visitor').textContent !== known) $('known-visitor').textContent = known;
  const n = kl.pending();
  const pill = $('pending-count');
  if (pill.textContent !== String(n)) pill.textContent = String(n);
  pill.classList.toggle('busy', n > 0);
  const anon = kl.anonymousId ?? '–';
  if ($('anonymous-id').textContent !== anon) $('anonymous-id').textContent = anon;
}

function showError(err) {
  const list = $('errors');
  list.querySelector('.empty')?.remove();
  const first = typeof err?.detail === 'object' ? err.detail?.errors?.[0]?.detail : err?.detail;
  list.prepend(el('li', {
    className: 'fail',
    data: { testid: 'error-entry', kind: String(err?.kind ?? 'unknown'), status: String(err?.status ?? ''), count: String(err?.count ?? '') },
  },
  el('time', { textContent: clock() }),
  el('span', { className: 'call', textContent: `${err?.kind ?? 'error'}${err?.status ? ` ${err.status}` : ''} ×${err?.count ?? '?'}` }),
  el('span', { className: 'result', textContent: first ? `${err?.message} — ${first}` : String(err?.message ?? err) })));
  $('error-count').textContent = String(list.querySelectorAll('[data-testid="error-entry"]').length);
  refresh();
}

/** What one recorded request carried, in a few words. */
function summarise(r) {
  const a = r.body?.data?.attributes ?? {};
  const metric = (ev) => ev?.metric?.data?.attributes?.name ?? '?';
  switch (r.path) {
    case '/client/events': return metric(a);
    case '/client/event-bulk-create': return (a.events?.data ?? []).map((e) => metric(e.attributes)).join(', ');
    case '/client/profiles': return `profile ${a.email ?? a.phone_number ?? a.anonymous_id ?? ''}`;
    case '/client/subscriptions': {
      const subs = Object.keys(a.profile?.data?.attributes?.subscriptions ?? {});
      return `subscribe ${subs.join(' + ')} to ${r.body?.data?.relationships?.list?.data?.id}`;
    }
    case '/client/back-in-stock-subscriptions':
      return `back in stock ${r.body?.data?.relationships?.variant?.data?.id} (${(a.channels ?? []).join(', ')})`;
    default: return '';
  }
}

/** The demo's emulator records each request it gets: show them as they arrive. */
function watchEmulator(base) {
  const rows = new Map(); // seq -> li
  const tick = async () => {
    try {
      const { requests } = await (await fetch(`${base}/__admin/requests`, { cache: 'no-store' })).json();
      if (requests.length < rows.size) { rows.clear(); $('sent-log').replaceChildren(); } // the emulator was reset
      for (const r of requests) {
        let li = rows.get(r.seq);
        if (!li) {
          li = el('li', {},
            el('time', { textContent: new Date(r.at).toLocaleTimeString([], { hour12: false }) }),
            el('span', { className: 'call' }),
            el('span', { className: 'result', textContent: summarise(r) }));
          rows.set(r.seq, li);
          $('sent-log').prepend(li);
        }
        li.className = r.pending ? 'wait' : r.accepted ? 'ok' : 'fail';
        Object.assign(li.dataset, { testid: 'sent-entry', path: r.path, status: String(r.status ?? ''), accepted: String(r.accepted) });
        li.querySelector('.call').textContent = `${r.path.replace('/client/', '')} → ${r.pending ? '…' : r.status ?? 'dropped'}`;
      }
    } catch { /* the emulator is not answering: try again */ }
    setTimeout(tick, 500);
  };
  tick();
}

// ---------- consent (the shop's banner; the library only obeys it) ----------

const CONSENT_TEXT = { granted: 'accepted', denied: 'declined', pending: 'not chosen yet' };

function showConsent(state) {
  const note = typeof kl?.setConsent === 'function' ? '' : ' (this build has no setConsent: not enforced)';
  $('consent-state').textContent = `${state}${note}`;
  $('consent-state').dataset.state = state;
  $('consent-current').textContent = state === 'pending' ? '' : `You have ${CONSENT_TEXT[state]}.`;
}

function choose(state) {
  saved.set(KEY.consent, state);
  $('consent-banner').hidden = true;
  run('setConsent', () => { kl.setConsent?.(state); }, () => state);
  showConsent(state);
  // A denial erased what the tracker knew: a signed-in visitor who now accepts is told again.
  const user = saved.get(KEY.user);
  if (state === 'granted' && user) run('identify', () => kl.identify(user), () => 'profile queued (signed in)');
}

// ---------- the shop ----------

function renderList(products = PRODUCTS) {
  $('product-list').replaceChildren(...products.map((p) => el('li', {},
    el('a', { className: 'tile card', href: `#/product/${p.id}`, data: { testid: 'product-card', id: p.id } },
      art(p),
      el('strong', { textContent: p.name }),
      el('span', { className: 'hint', textContent: p.size }),
      el('span', { className: 'tile-price', textContent: fmt(p.cents) },
        ...(p.stock ? [] : [' ', el('span', { className: 'tag', textContent: 'Out of stock' })]))))));
}

/** The event properties of a product, as Klaviyo's e-commerce events name them. */
function asKlaviyo(p) {
  return {
    ProductID: p.id, ProductName: p.name, SKU: p.sku, Price: dollars(p.cents),
    URL: productUrl(p), ImageURL: imageUrl(p), Categories: [p.category], Brand: BRAND,
  };
}

function openProduct(p) {
  current = p;
  $('p-art').replaceChildren(art(p));
  $('p-category').textContent = p.category;
  $('p-name').textContent = p.name;
  $('p-price').textContent = fmt(p.cents);
  $('p-size').textContent = p.size;
  $('p-blurb').textContent = p.blurb;
  $('p-sku').textContent = p.sku;
  $('p-buy').hidden = !p.stock;
  $('p-oos').hidden = p.stock;
  $('quantity').value = '1';
  run('viewedProduct', () => kl.viewedProduct(asKlaviyo(p)));
}

const cartCents = () => [...cart].reduce((sum, [id, q]) => sum + byId(id).cents * q, 0);
const cartQty = () => [...cart.values()].reduce((a, b) => a + b, 0);

function saveCart() {
  saved.set(KEY.cart, Object.fromEntries(cart));
  $('cart-count').textContent = String(cartQty());
  if (document.body.dataset.view === 'cart') renderCart();
}

function renderCart() {
  const lines = [...cart].map(([id, q]) => {
    const p = byId(id);
    const remove = el('button', { className: 'btn ghost small', textContent: 'Remove', data: { testid: 'cart-remove' } });
    remove.addEventListener('click', () => { cart.delete(id); saveCart(); });
    return el('tr', { data: { testid: 'cart-line', id } },
      el('td', {}, el('a', { href: `#/product/${id}`, textContent: p.name })),
      el('td', { textContent: String(q) }),
      el('td', { textContent: fmt(p.cents * q) }),
      el('td', {}, remove));
  });
  $('cart-lines').replaceChildren(...lines);
  $('cart-total').textContent = fmt(cartCents());
  $('cart-empty').hidden = cart.size > 0;
  $('cart-table').hidden = cart.size === 0;
  $('checkout').disabled = cart.size === 0;
}

/** The cart's lines as Klaviyo's guide writes them (its abandoned-cart emails show them). */
function cartLines() {
  return [...cart].map(([id, q]) => {
    const p = byId(id);
    return {
      ProductID: p.id, SKU: p.sku, ProductName: p.name, Quantity: q, ItemPrice: dollars(p.cents),
      RowTotal: dollars(p.cents * q), ProductURL: productUrl(p), ImageURL: imageUrl(p), ProductCategories: [p.category],
    };
  });
}
const checkoutUrl = () => new URL('/#/cart', location.href).href;

function addToCart() {
  const p = current;
  const q = Math.max(1, Math.min(99, Number.parseInt($('quantity').value, 10) || 1));
  cart.set(p.id, (cart.get(p.id) ?? 0) + q);
  saveCart();
  const items = cartLines();
  run('addedToCart', () => kl.addedToCart({
    ...asKlaviyo(p),
    Quantity: q,
    CartTotal: dollars(cartCents()),
    ItemNames: items.map((i) => i.ProductName),
    Items: items,
    CheckoutURL: checkoutUrl(),
  }));
}

function wishlist() {
  const p = current;
  run('track', () => kl.track('Added to Wishlist',
    { ProductID: p.id, ProductName: p.name, URL: productUrl(p) },
    { value: dollars(p.cents), valueCurrency: CURRENCY }), (id) => `Added to Wishlist · ${id}`);
}

function checkout() {
  if (cart.size === 0) return;
  const items = cartLines();
  run('startedCheckout', () => kl.startedCheckout({
    CheckoutURL: checkoutUrl(),
    ItemNames: items.map((i) => i.ProductName),
    Categories: [...new Set(items.flatMap((i) => i.ProductCategories))],
    Items: items,
    value: dollars(cartCents()),
  }));
  $('checkout-note').textContent = 'Checkout started. (The order itself would be sent by the shop’s backend.)';
}

function backInStock(event) {
  event.preventDefault();
  const email = $('bis-email').value.trim();
  const phone = $('bis-phone').value.trim();
  const channels = phone && !email ? ['sms'] : phone ? ['email', 'sms'] : ['email'];
  run('backInStock', () => kl.backInStock({
    variantId: `$custom:::$default:::${current.sku}`,
    email: email || undefined,
    phone_number: phone || undefined,
    channels,
  }), () => `alert for ${current.sku} queued (${channels.join(', ')})`);
}

function subscribe(event) {
  event.preventDefault();
  const email = $('subscribe-email').value.trim();
  const phone = $('subscribe-phone').value.trim();
  const channels = [['email', $('sub-ch-email')], ['sms', $('sub-ch-sms')]].filter(([, box]) => box.checked).map(([c]) => c);
  run('subscribe', () => kl.subscribe({
    listId: LIST_ID,
    email: email || undefined,
    phone_number: phone || undefined,
    channels,
    customSource: 'Demo storefront newsletter',
  }), () => `subscription queued (${channels.join(', ')})`);
}

function showUser(user) {
  $('identify-form').hidden = !!user;
  $('signed-in').hidden = !user;
  $('signed-in-as').textContent = user ? user.email || user.first_name : '';
  $('who').textContent = user ? `Hi, ${user.first_name || user.email}` : 'Not signed in';
}

function signIn(event) {
  event.preventDefault();
  const user = {};
  const email = $('identify-email').value.trim();
  const first = $('identify-first-name').value.trim();
  if (email) user.email = email;
  if (first) user.first_name = first;
  run('identify', async () => {
    await kl.identify(user);
    saved.set(KEY.user, user);
    showUser(user);
  }, () => `profile queued${email ? ` (${email})` : ''}`);
}

function signOut() {
  run('reset', () => { kl.reset(); }, () => 'new anonymous profile');
  saved.set(KEY.user, null);
  showUser(null);
}

async function flushNow() {
  const r = await run('flush', () => kl.flush(), (x) => `sent ${x.sent}, pending ${x.pending}, failed ${x.failed}`);
  if (r) {
    const out = $('flush-result');
    out.textContent = `sent ${r.sent} · pending ${r.pending} · failed ${r.failed}`;
    Object.assign(out.dataset, { sent: String(r.sent), pending: String(r.pending), failed: String(r.failed) });
  }
}

/** The search box: the products whose name has the term, and `Submitted Search`. */
function search(event) {
  event.preventDefault();
  const term = $('search-term').value.trim();
  const found = PRODUCTS.filter((p) => p.name.toLowerCase().includes(term.toLowerCase()));
  renderList(found);
  $('search-result').textContent = `${found.length} found`;
  run('submittedSearch', () => kl.submittedSearch({ SearchTerm: term, ResultCount: found.length, URL: location.href }));
}

/** What Klaviyo's onsite script leaves after a visitor clicks a Klaviyo email: its
 * `__kla_id` cookie with the visitor's exchange id (a made-up one here). */
function fromEmail(event) {
  event.preventDefault();
  const kla = { cid: 'ZGVtbw', $exchange_id: 'demo-exchange-id.BwDemo' };
  document.cookie = `__kla_id=${btoa(JSON.stringify(kla))}; path=/; max-age=86400; samesite=lax`;
  location.reload();
}

function route() {
  const m = /^#\/product\/([\w-]+)$/.exec(location.hash);
  const p = m && byId(m[1]);
  const view = p ? 'product' : location.hash === '#/cart' ? 'cart' : 'list';
  document.body.dataset.view = view;
  for (const v of document.querySelectorAll('[data-view]')) v.hidden = v.dataset.view !== view;
  // The shop routes by hash, which is no page view to the History API: it says so itself.
  run('activeOnSite', () => kl.activeOnSite({ page: view, URL: location.href }));
  if (view === 'list') {
    run('viewedCollection', () => kl.viewedCollection({ CollectionID: 'all', CollectionName: 'Honey & hive goods', URL: location.href }));
  }
  if (view === 'product') openProduct(p);
  if (view === 'cart') renderCart();
  $('checkout-note').textContent = '';
  window.scrollTo(0, 0);
}

// ---------- bad input: each must throw / reject and queue nothing ----------

const BAD_CASES = {
  email: () => kl.identify({ email: 'x@' }),
  phone: () => kl.identify({ phone_number: '555-0100' }),
  metric: () => kl.track('', { Page: 'Wildflower Honey' }),
  price: () => kl.addedToCart({ ProductID: 'bw-wildflower', ProductName: 'Wildflower Honey', Quantity: 1 }),
  value: () => kl.track('Viewed Page', { Page: 'Wildflower Honey' }, { value: '9.50' }),
  currency: () => kl.track('Viewed Page', { Page: 'Wildflower Honey' }, { value: 9.5, valueCurrency: 'US' }),
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
  out.className = thrown ? 'bad-ok' : 'bad-miss';
  $('bad-last-error').textContent = message;
  log(`bad input: ${name}`, false, message, { bad: name });
  if (kl.pending() !== before) log(`bad input: ${name}`, false, `queued something (pending ${before} → ${kl.pending()})`);
}

// ---------- start-up ----------

function fatal(message) {
  $('init-error').textContent = message;
  $('init-error').hidden = false;
  $('status').textContent = 'not running';
  $('status').className = 'status down';
  document.body.dataset.ready = 'error';
}

async function main() {
  let Klaviyo;
  try {
    ({ Klaviyo } = await import('../dist/web/index.js'));
  } catch (e) {
    return fatal(`Could not load ../dist/web/index.js (${e.message}). Run \`npm run build\`, then reload.`);
  }
  let config;
  try {
    const res = await fetch('/config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    config = await res.json();
  } catch (e) {
    return fatal(`Could not read /config.json (${e.message}). Start the demo with \`node www/serve.mjs\`.`);
  }

  // No choice yet: the tracker holds every call until the visitor answers the banner.
  const stored = saved.get(KEY.consent);
  const consent = stored === 'granted' || stored === 'denied' ? stored : 'pending';
  kl = Klaviyo.create({ companyId: config.companyId, apiBase: config.apiBase, consent, onError: showError, activeOnSite: 'manual' });
  window.kl = kl;
  showConsent(consent);
  $('consent-banner').hidden = consent !== 'pending';

  for (const [id, q] of Object.entries(saved.get(KEY.cart) ?? {})) {
    if (byId(id) && Number.isInteger(q) && q > 0) cart.set(id, q);
  }
  $('cart-count').textContent = String(cartQty());
  showUser(saved.get(KEY.user));
  $('company-id').textContent = config.companyId;
  $('api-base').textContent = config.apiBase;
  $('admin-link').href = `${config.apiBase}/__admin/requests`;
  $('list-id').textContent = LIST_ID;
  renderList();

  $('consent-accept').addEventListener('click', () => choose('granted'));
  $('consent-decline').addEventListener('click', () => choose('denied'));
  $('privacy-settings').addEventListener('click', () => { $('consent-banner').hidden = false; });
  $('add-to-cart').addEventListener('click', addToCart);
  $('wishlist').addEventListener('click', wishlist);
  $('checkout').addEventListener('click', checkout);
  $('p-oos').addEventListener('submit', backInStock);
  $('identify-form').addEventListener('submit', signIn);
  $('reset').addEventListener('click', signOut);
  $('subscribe-form').addEventListener('submit', subscribe);
  $('search-form').addEventListener('submit', search);
  $('from-email').addEventListener('click', fromEmail);
  $('flush').addEventListener('click', flushNow);
  $('clear-log').addEventListener('click', () => { $('log').replaceChildren(); });
  for (const b of document.querySelectorAll('[data-case]')) b.addEventListener('click', () => badInput(b.dataset.case));
  window.addEventListener('hashchange', route);
  route();
  watchEmulator(config.apiBase);
  setInterval(refresh, 250);

  try {
    await kl.ready;
  } catch (e) {
    return fatal(`Klaviyo.create failed: ${e.message}`);
  }
  $('status').textContent = 'ready';
  $('status').className = 'status up';
  refresh();
  document.body.dataset.ready = '1';
}

main();
