// Page for the create() tests (tests/queue/page-cost.test.mjs): `Klaviyo.create` right
// after the import, so `window.kl` takes calls before the wasm has loaded.
//   ?companyId=QuE001&apiBase=http://127.0.0.1:1234&maxQueueEvents=&maxQueueBytes=&flushDelayMs=
//    &createDelayMs=&wasmUrl=&currency=&trackOnReturn=1|changeOfMind
// On freeze it writes `frozen:<companyId>` (see below).
// body[data-ready="1"] as soon as `window.kl` exists (the wasm may still be loading);
// body[data-wasm="1"] once `kl.ready` resolved ("error" if it rejected).
// Exposes window.kl, window.Klaviyo, window.reports (onError), window.readyAt (Date.now()
// when kl.ready resolved).
import { Klaviyo } from '/dist/web/index.js';

const q = new URLSearchParams(location.search);
window.reports = [];

const options = { companyId: q.get('companyId') || 'QuE001', activeOnSite: 'manual' };
if (q.get('apiBase')) options.apiBase = q.get('apiBase');
for (const k of ['maxQueueEvents', 'maxQueueBytes', 'flushDelayMs']) {
  if (q.has(k)) options[k] = Number(q.get(k));
}
if (q.has('currency')) options.currency = q.get('currency');
options.onError = (e) => {
  window.reports.push({
    kind: e?.kind, status: e?.status, count: e?.count, detail: e?.detail,
    message: String(e?.message ?? e), isError: e instanceof Error,
  });
};

window.Klaviyo = Klaviyo;
// ?trackOnReturn=1: the shop's own listener, registered before the tracker's, tracks a
// view when the page comes back from the back/forward cache or is unfrozen (its ids in
// window.returned).
window.returned = [];
// The page frozen (its freeze event run), for a test to wait on from another tab: a
// frozen page can't be asked, and the DevTools command returns before the event runs.
document.addEventListener('freeze', () => localStorage.setItem(`frozen:${options.companyId}`, String(Date.now())));
if (q.has('trackOnReturn')) {
  // (…=changeOfMind: first a denial and a grant, as a consent manager may make them.)
  const mind = q.get('trackOnReturn') === 'changeOfMind';
  const view = () => {
    if (mind) window.kl.setConsent('denied'), window.kl.setConsent('granted');
    window.returned.push(window.kl.track('Back On The Page'));
  };
  document.addEventListener('resume', view);
  addEventListener('pageshow', (e) => e.persisted && view());
}
// ?createDelayMs=N: the tracker is created N ms after the import; ?wasmUrl= names its .wasm.
if (q.get('wasmUrl')) options.wasmUrl = q.get('wasmUrl');
if (q.has('createDelayMs')) await new Promise((resolve) => setTimeout(resolve, Number(q.get('createDelayMs'))));
window.createdAt = performance.now();
window.kl = Klaviyo.create(options);
document.body.dataset.ready = '1';
window.kl.ready.then(
  () => { window.readyAt = Date.now(); document.body.dataset.wasm = '1'; },
  (e) => { window.initError = String(e?.stack || e); document.body.dataset.wasm = 'error'; },
);
