// The page of the consent tests (tests/consent/consent.test.mjs).
//   ?companyId=CoN001&apiBase=http://127.0.0.1:1234&consent=pending|granted|denied
//   &early=N   N track calls right after Klaviyo.create, before the wasm has loaded
//   &init=0    loads nothing (lets a test prepare localStorage first)
// body[data-ready="1"] once window.kl exists (the wasm may still be loading);
// body[data-wasm="1"] once kl.ready resolved ("error" if it rejected).
//
// Before the library loads, this page records what it does to the page's facilities, so
// a test can say "nothing was written / sent" from the page's own point of view:
// window.writes: every localStorage.setItem/removeItem/clear as [op, key];
// window.sent: the URL of every fetch() to Klaviyo's /client endpoints.
// window.reports: what onError heard.
const q = new URLSearchParams(location.search);
window.reports = [];
window.writes = [];
window.sent = [];

const proto = Storage.prototype;
const setItem = proto.setItem, removeItem = proto.removeItem, clear = proto.clear;
proto.setItem = function (k, v) { window.writes.push(['set', String(k)]); return setItem.call(this, k, v); };
proto.removeItem = function (k) { window.writes.push(['remove', String(k)]); return removeItem.call(this, k); };
proto.clear = function () { window.writes.push(['clear', null]); return clear.call(this); };
const realFetch = window.fetch;
window.fetch = function (input, init) {
  const url = String(input?.url ?? input);
  if (url.includes('/client/')) window.sent.push(url);
  return realFetch.call(this, input, init);
};

async function main() {
  if (q.get('init') === '0') {
    document.body.dataset.ready = '1';
    return;
  }
  const { Klaviyo } = await import('/dist/web/index.js');
  const options = { companyId: q.get('companyId') || 'CoN001', activeOnSite: 'manual' };
  if (q.get('apiBase')) options.apiBase = q.get('apiBase');
  if (q.has('consent')) options.consent = q.get('consent');
  options.onError = (e) => {
    window.reports.push({ kind: e?.kind, count: e?.count, message: String(e?.message ?? e) });
  };
  window.Klaviyo = Klaviyo;
  const kl = Klaviyo.create(options);
  window.kl = kl;
  window.earlyIds = [];
  for (let i = 0; i < Number(q.get('early') || 0); i += 1) window.earlyIds.push(kl.track('Early', { n: i }));
  document.body.dataset.ready = '1';
  kl.ready.then(
    () => { document.body.dataset.wasm = '1'; },
    (e) => { window.initError = String(e?.message || e); document.body.dataset.wasm = 'error'; },
  );
}
main().catch((e) => {
  window.initError = String(e?.stack || e);
  document.body.dataset.ready = 'error';
});
