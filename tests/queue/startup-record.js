// The last step of the start-up bench pages (tests/bench/queue-bench.mjs, section d), imported
// once their figures are taken: publishes them as `window.startup`. With `?chain=N` the page
// is loaded again in the same tab until N pages have run, as the pages of one visit are, and
// `window.startupChain` then holds the figures of all N.
const KEY = 'startup-bench-chain';

export function record(startup) {
  const q = new URLSearchParams(location.search);
  const chain = Number(q.get('chain')) || 0;
  window.startup = startup;
  if (!chain) return;
  const all = JSON.parse(sessionStorage.getItem(KEY) || '[]');
  all.push(startup);
  sessionStorage.setItem(KEY, JSON.stringify(all));
  if (all.length >= chain) {
    window.startupChain = all;
    return;
  }
  q.set('page', String(all.length)); // a new URL: a navigation, as a click on a link is
  location.search = q.toString();
}
