// Page-lifecycle scenarios shared by tests/queue/page-cost.test.mjs (which asserts on them)
// and tests/bench/queue-bench.mjs (which prints them): a page tracks a burst of events in
// one task and then goes away (navigates, or its tab is closed) a few milliseconds later,
// round after round. Each returns how many events were lost and how many sent twice.
import { pageUrl, waitFor, wireCounts, storedEntries, sleep } from './harness.mjs';

/** Delays (ms) between the tracking task and the page going away: 0..30, fixed. */
export const DELAYS = [0, 7, 15, 22, 30];

/** Tracks `n` events in one task; returns their unique_ids. */
function trackBurst(page, { n, metric, round }) {
  return page.evaluate(({ n, metric, round }) => {
    const ids = [];
    for (let i = 0; i < n; i += 1) ids.push(window.kl.track(metric, { round, i }));
    return ids;
  }, { n, metric, round });
}

/**
 * Round r: the page tracks `perRound` events in one task, then sets
 * `location.href` to a fresh load of the test page (which starts a tracker too)
 * `delays[r]` ms later; that page's server answers `pageDelayMs` late (default 50 ms,
 * a fast shop). The page of the last navigation is left to deliver the rest.
 */
export async function trackThenNavigate(env, shop, { companyId, rounds = 5, perRound = 20, delays = DELAYS, pageDelayMs = 50, timeout } = {}) {
  const metric = 'Track Then Navigate';
  let page = await shop.open({ companyId, round: 0 });
  const ids = [];
  for (let round = 0; round < rounds; round += 1) {
    // The next page comes back `pageDelayMs` late, like a shop's server.
    const next = pageUrl(env, { companyId, round: round + 1, pageDelayMs });
    const loaded = page.waitForURL(next, { waitUntil: 'load', timeout: 15_000 });
    ids.push(...await page.evaluate(({ n, metric, round, next, delay }) => {
      const out = [];
      for (let i = 0; i < n; i += 1) out.push(window.kl.track(metric, { round, i }));
      setTimeout(() => { location.href = next; }, delay);
      return out;
    }, { n: perRound, metric, round, next, delay: delays[round % delays.length] }));
    await loaded;
    page = await shop.ready(page);
  }
  return settle(env, page, companyId, ids, timeout);
}

/**
 * Round r: a new tab of the shop tracks `perRound` events in one task and is closed
 * (page.close(): pagehide, then gone) `delays[r]` ms later. Then one more tab is opened
 * on the shop and left to deliver the rest.
 */
export async function trackThenClose(env, shop, { companyId, rounds = 5, perRound = 20, delays = DELAYS, timeout } = {}) {
  const metric = 'Track Then Close';
  const ids = [];
  for (let round = 0; round < rounds; round += 1) {
    const page = await shop.open({ companyId, round });
    ids.push(...await trackBurst(page, { n: perRound, metric, round }));
    await sleep(delays[round % delays.length]); // the scenario's delay, not a wait for work
    await page.close();
  }
  const last = await shop.open({ companyId, round: rounds });
  return settle(env, last, companyId, ids, timeout);
}

/**
 * Waits (polling, with a deadline) until the emulator accepted every id, nothing is in
 * flight, and `page` holds nothing more to send: no call pending, no queue record left.
 * Only then can no further resend come. Never throws on the deadline: what is missing
 * then is reported as lost.
 */
export async function settle(env, page, companyId, ids, timeout = 45_000) {
  const t0 = Date.now();
  const prefix = `klaviyo:${companyId}:q:`;
  let timedOut = false;
  try {
    await waitFor(async () => {
      const s = env.emu.requests();
      if (s.pending > 0 || !ids.every((id) => s.uniqueIdCounts[id] >= 1)) return false;
      if ((await page.evaluate(() => window.kl.pending())) !== 0) return false;
      return Object.keys(await storedEntries(page, prefix)).length === 0;
    }, { timeout, interval: 100, what: 'every event accepted and the queue empty' });
  } catch {
    timedOut = true;
  }
  const s = env.emu.requests();
  const wire = wireCounts(s);
  const lost = ids.filter((id) => !(s.uniqueIdCounts[id] >= 1));
  const twice = ids.filter((id) => (wire[id] || 0) > 1);
  return {
    events: ids.length,
    distinct: new Set(ids).size,
    lost: lost.length,
    sentTwice: twice.length,
    shareSentTwice: ids.length ? twice.length / ids.length : 0,
    acceptedTwice: ids.filter((id) => s.uniqueIdCounts[id] > 1).length,
    eventRequests: s.requests.filter((r) => r.path.startsWith('/client/event')).length,
    settleMs: Date.now() - t0,
    timedOut,
    lostIds: lost,
    twiceIds: twice,
    /** `endpoint:events:status@+ms` of every request, for diagnostics. */
    wire: wireLine(s),
  };
}

export function wireLine(s) {
  const t0 = s.requests[0]?.at ?? 0;
  return s.requests.map((r) => `${r.path.replace('/client/', '')}:${r.uniqueIds.length}:${r.status ?? (r.pending ? 'pending' : 'dropped')}@+${r.at - t0}`).join(' ');
}
