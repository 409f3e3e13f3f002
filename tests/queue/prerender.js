// A product page as a storefront makes it: the tracker created at once (Active on Site
// "auto"), the product viewed and the visitor named. Prerendered (tests/queue/
// prerender.test.mjs), it tells the test's report server what it did while prerendered,
// then what it did once shown. No Playwright here: DevTools attached turns prerendering off.
//   ?companyId=&apiBase=&report=&wasmUrl= (a .wasm that never comes: still loading when shown)
//    &activeOnSite=
import { Klaviyo } from '/dist/web/index.js';

const q = new URLSearchParams(location.search);
const report = (what) => fetch(q.get('report') + '/r', { method: 'POST', mode: 'no-cors', body: JSON.stringify(what) });
const state = () => ({
  prerendering: document.prerendering,
  keys: Object.keys(localStorage),
  pending: kl.pending(),
  // Requests this page made to the API (resource timings: the emulator's origin).
  sent: performance.getEntriesByType('resource').filter((e) => e.name.startsWith(q.get('apiBase'))).length,
});

const options = { companyId: q.get('companyId'), apiBase: q.get('apiBase'), flushDelayMs: 0 };
for (const k of ['wasmUrl', 'activeOnSite']) if (q.get(k)) options[k] = q.get(k);
const kl = Klaviyo.create(options);
kl.identify({ email: 'prerendered@example.com' });
kl.viewedProduct({ ProductID: 'P-1', ProductName: 'Kettle', Price: 30 });
const madeAt = Date.now();

let ready = false;
kl.ready.then(() => { ready = true; });
if (document.prerendering) {
  document.addEventListener('prerenderingchange', async () => {
    const saved = () => Object.keys(localStorage).filter((k) => k.includes(':pre:')).map((k) => localStorage.getItem(k));
    if (options.wasmUrl) {
      // Its calls saved for a later page, as any loading window's (up to 2 s to see it).
      for (const end = Date.now() + 2000; !saved().length && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    } else {
      await kl.ready;
      await kl.flush();
    }
    const nav = performance.getEntriesByType('navigation')[0];
    report({ phase: 'shown', shownAt: performance.timeOrigin + nav.activationStart, madeAt, saved: saved(), ...state() });
  });
  // While prerendered: once the .wasm is here and the page has had time to use it (or
  // at once, if the tracker got ready while prerendered).
  const wasm = () => performance.getEntriesByType('resource').some((e) => e.name.endsWith('.wasm') && e.responseEnd > 0);
  const settled = () => ready || wasm() || (options.wasmUrl && Date.now() > madeAt + 300);
  await new Promise((resolve) => {
    const tick = () => (settled() ? setTimeout(resolve, ready ? 0 : 300) : setTimeout(tick, 20));
    tick();
  });
  report({ phase: 'prerendered', ready, madeAt, ...state() });
} else {
  report({ phase: 'not prerendered' });
}
