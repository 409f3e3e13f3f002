// The page of the parity tests (tests/parity/parity.test.mjs): a shop that may also run
// Klaviyo's onsite script.
//   ?companyId=PaR001&apiBase=http://127.0.0.1:1234
//   &cookie=<text>     document.cookie is set to it first (repeatable: cookie=a&cookie=b)
//   &onsite=1          a <script> like Klaviyo's onsite script's is on the page
//   &onsite=load       that <script> added on the window's load, as shop platforms add it
//   &holdLoad=1        an image (held by the test until it answers) keeps the load back
//   &activeOnSite=manual|auto, &klaviyoCookie=false, &consent=pending|granted|denied, &wasmUrl=<url>
//   &early=N           N track calls right after Klaviyo.create, before the wasm loads
//   &email=<address>   kl.identify({ email }) right after Klaviyo.create (a signed-in shopper)
//   &klaviyoObject=1   window.klaviyo defined first, as Klaviyo's object snippet does, its
//                      identify recorded in window.handedOff (=reject: it rejects;
//                      =throwOnce: its first call throws)
//   &cookieAtReady=<text>  document.cookie set to it as kl.ready resolves (the onsite
//                      script setting one late: before this page's first send)
// body[data-ready="1"] once window.kl exists; body[data-wasm="1"] once kl.ready resolved
// ("error" if it rejected). window.reports: what onError heard; window.unhandled: rejections nobody handled; window.writes and
// window.sent: every localStorage write and fetch to /client (tests/support/recorder.js).
import '/tests/support/recorder.js';

const q = new URLSearchParams(location.search);
window.errors = [];
// Rejections nobody handled (the listener keeps them from the console, and from pageerror).
window.unhandled = [];
addEventListener('unhandledrejection', (e) => { e.preventDefault(); window.unhandled.push(String(e.reason?.message ?? e.reason)); });

async function main() {
  for (const c of q.getAll('cookie')) document.cookie = c;
  window.handedOff = [];
  if (q.has('klaviyoObject')) {
    let calls = 0;
    window.klaviyo = {
      identify(p) {
        if (q.get('klaviyoObject') === 'throwOnce' && calls++ === 0) throw new Error('klaviyo.js threw');
        window.handedOff.push(p);
        return q.get('klaviyoObject') === 'reject' ? Promise.reject(new Error('klaviyo.js refused')) : Promise.resolve(p);
      },
    };
  }
  const onsite = () => {
    const s = document.createElement('script');
    s.async = true;
    s.src = `https://static.klaviyo.com/onsite/js/${q.get('companyId') || 'PaR001'}/klaviyo.js`;
    document.head.append(s);
  };
  if (q.get('onsite') === '1') onsite();
  if (q.get('onsite') === 'load') addEventListener('load', onsite);
  if (q.has('holdLoad')) document.body.append(Object.assign(document.createElement('img'), { src: '/tests/parity/held.png' }));
  const { Klaviyo } = await import('/dist/web/index.js');
  const options = { companyId: q.get('companyId') || 'PaR001' };
  for (const k of ['apiBase', 'activeOnSite', 'consent', 'wasmUrl']) if (q.has(k)) options[k] = q.get(k);
  if (q.get('klaviyoCookie') === 'false') options.klaviyoCookie = false;
  options.onError = (e) => { window.reports.push({ kind: e?.kind, count: e?.count, message: String(e?.message ?? e) }); };
  const kl = Klaviyo.create(options);
  window.kl = kl;
  window.Klaviyo = Klaviyo; // for a second tracker of the shop
  window.options = options;
  if (q.has('email')) kl.identify({ email: q.get('email') });
  for (let i = 0; i < Number(q.get('early') || 0); i += 1) kl.track('Early', { n: i });
  document.body.dataset.ready = '1';
  kl.ready.then(
    () => {
      if (q.has('cookieAtReady')) document.cookie = q.get('cookieAtReady');
      document.body.dataset.wasm = '1';
    },
    (e) => { window.initError = { kind: e?.kind, message: String(e?.message ?? e) }; document.body.dataset.wasm = 'error'; },
  );
}
main().catch((e) => {
  window.initError = { message: String(e?.stack || e) };
  document.body.dataset.ready = 'error';
});
