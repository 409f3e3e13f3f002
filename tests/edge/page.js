// Test page for tests/edge/browser.test.mjs: Klaviyo.init with the worker as apiBase.
//   ?companyId=AbC123&apiBase=http://127.0.0.1:<worker port>&consent=denied
// Exposes window.kl and window.reports (what onError received).
const q = new URLSearchParams(location.search);
window.reports = [];

async function main() {
  try {
    const { Klaviyo } = await import('/dist/web/index.js');
    window.kl = await Klaviyo.init({
      companyId: q.get('companyId') || 'AbC123',
      apiBase: q.get('apiBase'),
      activeOnSite: 'manual', // these tests count only their own events
      consent: q.get('consent') || 'granted',
      onError: (e) => window.reports.push({ kind: e?.kind, status: e?.status, detail: e?.detail, message: String(e?.message ?? e) }),
    });
    document.body.dataset.ready = '1';
  } catch (e) {
    window.initError = String(e?.stack || e);
    document.body.dataset.ready = 'error';
  }
}
main();
