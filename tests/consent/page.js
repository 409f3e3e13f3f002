// The page of the consent tests (tests/consent/consent.test.mjs).
//   ?companyId=CoN001&apiBase=http://127.0.0.1:1234&consent=pending|granted|denied
//   &early=N   N track calls right after Klaviyo.create, before the wasm has loaded
//   &init=0    loads nothing (lets a test prepare localStorage first)
//   &echo=1    onError tracks "From OnError" on each refused call (window.echoIds)
// body[data-ready="1"] once window.kl exists (the wasm may still be loading);
// body[data-wasm="1"] once kl.ready resolved ("error" if it rejected).
// window.writes, window.sent: what the library did to storage and the network
// (tests/support/recorder.js, imported before it loads); window.reports: what onError heard.
import '/tests/support/recorder.js';

const q = new URLSearchParams(location.search);

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
    // ?echo=1: the shop tracks from its handler on hearing of a refused call.
    if (q.get('echo') && e?.kind === 'invalid') window.echoIds.push(window.kl.track('From OnError', {}));
  };
  window.Klaviyo = Klaviyo;
  const kl = Klaviyo.create(options);
  window.kl = kl;
  window.earlyIds = [];
  window.echoIds = [];
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
