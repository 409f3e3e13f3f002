// Minimal page for the queue tests: Klaviyo.init with options from the query string.
//   ?companyId=QuE001&apiBase=http://127.0.0.1:1234&maxQueueEvents=&maxQueueBytes=&flushDelayMs=&debug=1
//   &init=0  loads nothing (lets a test prepare localStorage first)
// Exposes window.kl, window.reports (onError), window.debugLog (console.debug lines),
// window.shopOptions(more) (options for another tracker of the shop).
const q = new URLSearchParams(location.search);
window.reports = [];
window.debugLog = [];

const origDebug = console.debug.bind(console);
console.debug = (...args) => {
  window.debugLog.push(args.map(String).join(' '));
  origDebug(...args);
};

function options() {
  // Page views are the parity suite's: these pages count only their own events.
  const o = { companyId: q.get('companyId') || 'QuE001', activeOnSite: 'manual' };
  if (q.get('apiBase')) o.apiBase = q.get('apiBase');
  for (const k of ['maxQueueEvents', 'maxQueueBytes', 'flushDelayMs']) {
    if (q.has(k)) o[k] = Number(q.get(k));
  }
  if (q.has('debug')) o.debug = q.get('debug') === '1' || q.get('debug') === 'true';
  o.onError = (e) => {
    window.reports.push({
      kind: e?.kind, status: e?.status, count: e?.count, detail: e?.detail,
      message: String(e?.message ?? e), isError: e instanceof Error,
    });
  };
  return o;
}

/** The shop's options for another tracker a test creates in this page (its company and
 * Klaviyo as the page's own, no onError), with `more` on top. */
window.shopOptions = (more) => ({
  companyId: q.get('companyId') || 'QuE001', apiBase: q.get('apiBase') || undefined, activeOnSite: 'manual', ...more,
});

async function main() {
  if (q.get('init') === '0') {
    document.body.dataset.ready = '1';
    return;
  }
  try {
    const { Klaviyo } = await import('/dist/web/index.js');
    window.Klaviyo = Klaviyo;
    window.kl = await Klaviyo.init(options());
    document.body.dataset.ready = '1';
  } catch (e) {
    window.initError = String(e?.stack || e);
    document.body.dataset.ready = 'error';
  }
}
main();
