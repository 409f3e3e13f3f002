// The engine matrix's page (tests/engines/): Klaviyo.init with options from the query
// string, plus probes that watch what the library asks of the engine. Everything here
// runs before the library is imported, so the probes see its first call.
//
//   ?companyId=EnG001&apiBase=http://127.0.0.1:N&flushDelayMs=&debug=1
//   &init=0            no tracker (a page to prepare or read localStorage from)
//   &nolocks=1         hide navigator.locks (old Safari, some webviews): the lease path
//   &storage=throw     localStorage throws on access (storage disabled, sandboxed iframe)
//   &wasmMime=octet    fetch the .wasm from a URL the server answers as
//                      application/octet-stream (compileStreaming's MIME check)
//   &wasm=missing      the .wasm is a 404: the tracker is created, not awaited (its
//                      loading window, for good); window.loadFailed resolves to the
//                      kind `ready` rejected with
//   &control=URL       a plain fetch (no keepalive) to URL as the page goes (see leaving())
//   &cookie=TEXT       document.cookie is set to TEXT first (Klaviyo's __kla_id, __kla_off)
//   &build=inline      import the inline build (dist/web/inline.js) instead of index.js
//   &activeOnSite=auto the tracker sends Active on Site itself (the matrix's default is
//                      "manual", so the other scenarios count only their own events)
//
// Exposes window.kl, window.reports (onError), window.probe (see below), and
// document.body.dataset.ready = "1" | "error" (window.initError).
const q = new URLSearchParams(location.search);
window.reports = [];
window.debugLog = [];
/** Uncaught errors and unhandled rejections of this page: none may come from the library. */
window.pageErrors = [];
addEventListener('error', (e) => { window.pageErrors.push(String((e.error && e.error.stack) || e.message)); });
addEventListener('unhandledrejection', (e) => { window.pageErrors.push(`unhandled rejection: ${(e.reason && e.reason.stack) || e.reason}`); });

const probe = {
  /** POSTs the library made to Klaviyo's /client endpoints: path, keepalive, signal. */
  fetches: [],
  /** WebAssembly.compileStreaming / instantiateStreaming calls: {fn, state, error}. */
  streaming: [],
  /** WebAssembly.compile / instantiate calls with bytes (the fallback path). */
  compiled: 0,
  /** `storage` events this page saw: {key, at}. */
  storageEvents: [],
  /** What the page saw of the options it was asked to fake. */
  nolocks: null,
  storage: null,
};
window.probe = probe;

const origDebug = console.debug.bind(console);
console.debug = (...args) => {
  window.debugLog.push(args.map(String).join(' '));
  origDebug(...args);
};

// fetch: a pass-through that notes what the library asked for. A request made while the
// page goes away (hidden or pagehide) is also noted in localStorage (probe:leaving-fetch),
// where another page reads it.
const realFetch = window.fetch;
window.fetch = function fetch(input, init) {
  const url = String(input && input.url ? input.url : input);
  if (url.includes('/client/')) {
    const rec = {
      at: Date.now(),
      path: new URL(url, location.href).pathname,
      keepalive: !!(init && init.keepalive),
      signal: !!(init && init.signal),
      visibility: document.visibilityState,
    };
    probe.fetches.push(rec);
    if (window.__leaving) {
      try { localStorage.setItem('probe:leaving-fetch', JSON.stringify(rec)); } catch { /* storage off */ }
    }
  }
  return realFetch.apply(this, arguments);
};
// The page is going (hidden, then pagehide): registered before the library's listeners.
// `?control=URL`: at that moment the page also POSTs to URL with a plain fetch (no
// keepalive), the control for whether keepalive is what gets a request out of a closing page.
function leaving() {
  if (window.__leaving) return;
  window.__leaving = true;
  const control = q.get('control');
  if (control) realFetch(control, { method: 'POST', body: 'control' }).catch(() => {});
}
addEventListener('pagehide', leaving, { capture: true });
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') leaving(); }, { capture: true });

for (const fn of ['compileStreaming', 'instantiateStreaming']) {
  const real = WebAssembly[fn];
  if (typeof real !== 'function') continue;
  WebAssembly[fn] = function streaming() {
    const rec = { fn, state: 'pending', error: null };
    probe.streaming.push(rec);
    const p = real.apply(this, arguments);
    p.then(() => { rec.state = 'ok'; }, (e) => { rec.state = 'failed'; rec.error = `${e && e.name}: ${e && e.message}`; });
    return p;
  };
}
for (const fn of ['compile', 'instantiate']) {
  const real = WebAssembly[fn];
  WebAssembly[fn] = function plain(source) {
    if (!(source instanceof WebAssembly.Module)) probe.compiled += 1;
    return real.apply(this, arguments);
  };
}

addEventListener('storage', (e) => { probe.storageEvents.push({ key: e.key, at: Date.now() }); });

if (q.get('nolocks') === '1') {
  // The lease path: as if the engine had no Web Locks (Safari before 15.4).
  try {
    Object.defineProperty(Navigator.prototype, 'locks', { configurable: true, get: () => undefined });
    if ('locks' in navigator && navigator.locks !== undefined) Object.defineProperty(navigator, 'locks', { configurable: true, value: undefined });
  } catch { /* reported below */ }
  probe.nolocks = navigator.locks === undefined ? 'hidden' : 'still visible';
}
if (q.get('storage') === 'throw') {
  try {
    Object.defineProperty(window, 'localStorage', {
      configurable: true,
      get() { throw new DOMException('The operation is insecure.', 'SecurityError'); },
    });
  } catch { /* reported below */ }
  try { probe.storage = typeof window.localStorage; } catch (e) { probe.storage = e.name; }
}

if (q.has('cookie')) document.cookie = q.get('cookie');

function options() {
  const o = { companyId: q.get('companyId') || 'EnG001', activeOnSite: q.get('activeOnSite') || 'manual' };
  if (q.get('apiBase')) o.apiBase = q.get('apiBase');
  if (q.has('flushDelayMs')) o.flushDelayMs = Number(q.get('flushDelayMs'));
  if (q.has('debug')) o.debug = q.get('debug') === '1';
  if (q.get('wasmMime') === 'octet') o.wasmUrl = new URL('/dist/web/klaviyo_wasm_bg.wasm?mime=octet', location.href).href;
  if (q.get('wasm') === 'missing') o.wasmUrl = new URL('/dist/web/missing.wasm', location.href).href;
  o.onError = (e) => {
    window.reports.push({ kind: e && e.kind, status: e && e.status, count: e && e.count, message: String(e && e.message), isError: e instanceof Error });
  };
  return o;
}

async function main() {
  if (q.get('init') === '0') {
    document.body.dataset.ready = '1';
    return;
  }
  try {
    // ?build=inline: the inline build (klaviyo-wasm/inline), the .wasm's bytes inside it.
    const { Klaviyo } = await import(q.get('build') === 'inline' ? '/dist/web/inline.js' : '/dist/web/index.js');
    window.Klaviyo = Klaviyo;
    if (q.get('wasm') === 'missing') {
      window.kl = Klaviyo.create(options());
      window.loadFailed = window.kl.ready.then(() => 'ready', (e) => e.kind);
    } else {
      window.kl = await Klaviyo.init(options());
    }
    document.body.dataset.ready = '1';
  } catch (e) {
    window.initError = String((e && e.stack) || e);
    document.body.dataset.ready = 'error';
  }
}
main();
