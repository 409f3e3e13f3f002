// The engine matrix's scenarios: ONE definition each, run in every engine by
// matrix.test.mjs. A scenario gets a context (below), drives windows of the engine's
// browser over WebDriver, asserts on what the Klaviyo emulator received (its unique_id
// counts), and returns one line of details. It throws to fail, and throws `skip(reason)`
// when the engine cannot run it. Where an engine cannot take its pages offline, the
// fault goes into the emulator instead (dropped connections), and the details say so.
//
// Context: { engine, session (offline control), browser, emu, companyId, home (a window
//            with no tracker), open(opts) -> Page in a new window, url(opts),
//            summary(filter) (the emulator's, this shop only), feature(key, value) }
// Every wait polls with a deadline (waitFor); nothing sleeps a fixed time.
import assert from 'node:assert/strict';
import { waitFor } from '../support/browser.mjs';

export class Skip extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}
const skip = (reason) => new Skip(reason);

// ---------------------------------------------------------------- helpers

/** Tracks `n` events in one task of the page; returns their unique_ids. */
export function trackMany(page, n, { metric = 'Engine Matrix', from = 0, props = {} } = {}) {
  return page.eval((n, metric, from, props) => {
    const ids = [];
    for (let i = from; i < from + n; i += 1) ids.push(window.kl.track(metric, { n: i, ...props }));
    return ids;
  }, n, metric, from, props);
}

const eventPaths = new Set(['/client/events', '/client/event-bulk-create']);
const eventRequests = (s) => s.requests.filter((r) => eventPaths.has(r.path));

/** Waits until the emulator accepted every id at least once; returns its summary. */
async function delivered(ctx, ids, { timeout = 20_000, what = `${ids.length} events accepted` } = {}) {
  try {
    return await waitFor(() => {
      const s = ctx.summary();
      return ids.every((id) => s.uniqueIdCounts[id] >= 1) && s;
    }, { timeout, interval: 50, what });
  } catch (e) {
    const s = ctx.summary();
    e.message += ` (${ids.filter((id) => !(s.uniqueIdCounts[id] >= 1)).length} of ${ids.length} missing; wire: ${wireLine(s)})`;
    throw e;
  }
}

/** The page holds nothing more: no call pending, no queue record in localStorage. */
async function drained(ctx, page, { timeout = 10_000 } = {}) {
  const prefix = `klaviyo:${ctx.companyId}:q:`;
  await waitFor(() => page.eval((prefix) => {
    if (window.kl.pending() !== 0) return false;
    try {
      for (let i = 0; i < localStorage.length; i += 1) if (localStorage.key(i).startsWith(prefix)) return false;
    } catch { /* storage disabled: nothing stored */ }
    return true;
  }, prefix), { timeout, interval: 50, what: 'pending() 0 and no queue record left' });
}

/** 0 lost, 0 accepted twice, by the emulator's unique_id counts. */
function onceEach(s, ids) {
  const lost = ids.filter((id) => !(s.uniqueIdCounts[id] >= 1));
  const twice = ids.filter((id) => s.uniqueIdCounts[id] > 1);
  assert.deepEqual(lost, [], `${lost.length} of ${ids.length} events lost`);
  assert.deepEqual(twice, [], `${twice.length} of ${ids.length} events accepted twice`);
  return { lost: lost.length, twice: twice.length };
}

/** `endpoint:events:status@+ms` of every request the emulator saw. */
export function wireLine(s) {
  const t0 = s.requests[0]?.at ?? 0;
  return s.requests.map((r) => `${r.path.replace('/client/', '')}:${r.uniqueIds.length}:${r.status ?? (r.pending ? 'pending' : 'dropped')}@+${r.at - t0}`).join(' ');
}

/** A window of the shop goes to another site (`away`) and comes back (`back`: true if
 * the engine kept the page in its back/forward cache, false if it loaded it again). */
function leaving(ctx) {
  const elsewhere = ctx.url({ init: 0 }).replace('127.0.0.1', 'localhost'); // another site
  return {
    async away(page) {
      await page.eval(() => { window.keptInCache = true; });
      await page.load(elsewhere);
    },
    async back(page) {
      await page.back();
      await waitFor(() => page.eval(() => !!window.kl), { timeout: 20_000, interval: 50, what: 'the shop\'s page back' });
      return page.eval(() => window.keptInCache === true);
    },
  };
}

/** Klaviyo down from now (503s until `ctx.emu.clearFaults()`): 3 calls of `metric` in
 * `page`, once the first request for them was refused; their unique_ids. */
async function refused(ctx, page, metric) {
  ctx.emu.addFault({ path: '/client/', status: 503, count: 1_000_000, name: 'down' });
  const ids = await trackMany(page, 3, { metric });
  await waitFor(() => ctx.summary().requests.some((r) => r.status === 503), { what: `Klaviyo refusing ${metric}` });
  return ids;
}

/** Our localStorage keys in the page, sorted. */
const ourKeys = (ctx, page) => page.eval((p) => Object.keys(localStorage).filter((k) => k.startsWith(p)).sort(), `klaviyo:${ctx.companyId}:`);

async function noPageErrors(...pages) {
  for (const p of pages) {
    if (p.closed) continue;
    const errors = await p.eval(() => window.pageErrors);
    assert.deepEqual(errors, [], 'no uncaught error in the page');
  }
}

const probeOf = (page) => page.eval(() => window.probe);
const pendingOf = (page) => page.eval(() => window.kl.pending());

/** Which windows sent to Klaviyo (the page's fetch probe saw a /client/ POST). */
async function senders(pages) {
  const out = [];
  for (const [i, p] of pages.entries()) if ((await probeOf(p)).fetches.length > 0) out.push(i);
  return out;
}

// ---------------------------------------------------------------- scenarios

export const SCENARIOS = [
  {
    name: 'delivery',
    what: 'identify + 3 events in one task + a lone event: every body accepted by the emulator (spec-checked), once each',
    async run(ctx) {
      const page = await ctx.open();
      await page.eval(() => window.kl.identify({ email: 'engine.matrix@example.com', first_name: 'Ann' }));
      const ids = await page.eval(() => [
        window.kl.track('Engine Matrix', { any: 'props' }, { value: 9.5, valueCurrency: 'USD' }),
        window.kl.viewedProduct({ ProductID: '1111', ProductName: 'Winnie the Pooh', Price: 9.99 }),
        window.kl.addedToCart({ ProductID: '1111', ProductName: 'Winnie the Pooh', Quantity: 2, Price: 9.99 }),
      ]);
      await delivered(ctx, ids);
      ids.push(...await trackMany(page, 1, { metric: 'Engine Matrix Lone' }));
      const s = await delivered(ctx, ids);
      await waitFor(() => ctx.summary({ path: '/client/profiles', accepted: true }).count >= 1, { what: 'the profile accepted' });
      await drained(ctx, page);
      const all = ctx.summary();
      onceEach(all, ids);
      assert.equal(all.rejected, 0, `every request accepted: ${wireLine(all)}`);

      // What the library used of the engine, seen by the page's probes.
      const seen = await page.eval(async (companyId) => ({
        locks: typeof navigator.locks?.request === 'function',
        held: navigator.locks ? (await navigator.locks.query()).held.map((l) => l.name) : null,
        lease: localStorage.getItem(`klaviyo:${companyId}:lease`),
        abortTimeout: typeof AbortSignal.timeout === 'function',
        requestKeepalive: 'keepalive' in Request.prototype,
        probe: window.probe,
      }), ctx.companyId);
      const senderLock = `klaviyo:${ctx.companyId}:sender`;
      ctx.feature('webLocks', seen.locks ? (seen.held?.includes(senderLock) ? 'yes: the sender holds a Web Lock' : `present, but no ${senderLock} held`) : (seen.lease ? 'no: lease in localStorage' : 'no'));
      const f = seen.probe.fetches;
      ctx.feature('abortTimeout', seen.abortTimeout ? (f.every((x) => x.signal) ? 'yes: every request has its 30 s timeout' : 'yes, but a request went without a signal') : 'no: requests go without a timeout');
      ctx.feature('keepaliveFlag', `${f.length && f.every((x) => x.keepalive) ? 'on every send' : `on ${f.filter((x) => x.keepalive).length} of ${f.length} sends`}${seen.requestKeepalive ? '' : ' (Request.keepalive missing)'}`);
      const st = seen.probe.streaming;
      ctx.feature('compileStreaming', st.length
        ? `${st.map((x) => `${x.fn}: ${x.state}`).join(', ')}${seen.probe.compiled ? `, then a plain compile` : ''}`
        : `not called: plain compile`);
      const reqs = eventRequests(s);
      return `${ids.length} events + profile accepted once each (requests: ${reqs.map((r) => `${r.path.replace('/client/', '')}×${r.uniqueIds.length}`).join(', ')}); 0 rejected`;
    },
  },

  {
    name: 'bad-input',
    what: 'bad calls throw (async: reject) naming the field, never the value; nothing queued, nothing sent',
    async run(ctx) {
      const page = await ctx.open();
      const out = await page.eval(async (companyId) => {
        const r = {};
        const grab = (f) => { try { f(); return 'no error'; } catch (e) { return `${Object.prototype.toString.call(e) === '[object Error]' ? '' : 'not an Error: '}${e.message}`; } };
        r.cart = grab(() => window.kl.addedToCart({ ProductID: '1111', ProductName: 'Winnie the Pooh', Quantity: 2 }));
        r.metric = grab(() => window.kl.track(''));
        r.price = grab(() => window.kl.viewedProduct({ ProductID: '1111', ProductName: 'Winnie the Pooh', Price: 'nine-ninety-nine' }));
        try { await window.kl.identify({ email: 'ann-at-example.invalid' }); r.email = 'resolved'; } catch (e) { r.email = e.message; }
        r.flush = await window.kl.flush();
        r.pending = window.kl.pending();
        r.queued = Object.keys(localStorage).filter((k) => k.startsWith(`klaviyo:${companyId}:q:`));
        return r;
      }, ctx.companyId);
      for (const m of [out.cart, out.metric, out.price]) assert.ok(!/^(not an Error|no error)/.test(m), `a bad call throws an Error: ${m}`);
      assert.match(out.cart, /addedToCart/, `addedToCart names itself: ${out.cart}`);
      assert.match(out.cart, /Price/, `addedToCart names Price: ${out.cart}`);
      assert.match(out.metric, /metric/, `track names metric: ${out.metric}`);
      assert.match(out.price, /Price/, `viewedProduct names Price: ${out.price}`);
      assert.ok(!out.price.includes('nine-ninety-nine'), 'the message does not repeat the value');
      assert.match(out.email, /email/, `identify rejects naming email: ${out.email}`);
      assert.ok(!out.email.includes('ann-at-example'), 'the message does not repeat the email');
      assert.equal(out.pending, 0, 'nothing queued');
      assert.deepEqual(out.queued, [], 'no queue record in localStorage');
      const s = ctx.summary();
      assert.equal(s.count, 0, `nothing sent: ${wireLine(s)}`);
      await noPageErrors(page);
      return `4 bad calls refused ("${out.cart}" / "${out.email}"); pending 0, no record, 0 requests`;
    },
  },

  {
    name: 'offline-reload',
    what: 'events tracked across reloads while offline are delivered once each when back',
    async run(ctx) {
      const offline = ctx.session.offline;
      if (offline?.pagesLoad) return offlineWithReloads(ctx, offline);
      if (offline) return offlineThenErrorPage(ctx, offline);
      return unreachableWithReloads(ctx, ctx.session.offlineWhyNot);
    },
  },

  {
    name: 'close-reopen',
    what: 'a window closed with undelivered events (Klaviyo unreachable): the next page of the shop delivers them, once each',
    async run(ctx) {
      ctx.emu.addFault({ path: '/client/', drop: true, count: 100_000, name: 'unreachable' });
      const a = await ctx.open();
      const ids = await trackMany(a, 10, { metric: 'Close Reopen' });
      await waitFor(() => ctx.summary().requests.some((r) => r.fault === 'unreachable' && ids.every((id) => r.uniqueIds.includes(id))), { what: 'a dropped attempt carrying the events' });
      await a.close();
      const closedAt = Date.now();
      // A request the window made as it closed (the page's probe notes it in
      // localStorage) must reach the emulator, and be dropped, before Klaviyo is back:
      // else it could be accepted and then resent by the next page after its 10 s wait.
      const leaving = JSON.parse(await ctx.home.eval(() => localStorage.getItem('probe:leaving-fetch')) || 'null');
      await waitFor(() => {
        const s = ctx.summary();
        return s.pending === 0 && (!leaving || s.requests.some((r) => r.at >= leaving.at));
      }, { what: leaving ? 'the request made on close, dropped' : 'no request in flight' });
      const dropped = ctx.summary().count;
      ctx.emu.clearFaults();
      const b = await ctx.open();
      const s = await delivered(ctx, ids, { timeout: 25_000, what: 'the closed window\'s events, from the reopened page' });
      const took = Date.now() - closedAt;
      await drained(ctx, b);
      onceEach(ctx.summary(), ids);
      await noPageErrors(b);
      return `10 events, Klaviyo unreachable: ${dropped} dropped attempts${leaving ? ', one made as the window closed' : ', none as the window closed'}; the reopened page delivered all once each, ${took} ms after the close${took >= 9000 ? ' (a request in flight or made at the close is given 10 s before a resend)' : ''}, in ${eventRequests(s).filter((r) => r.accepted).length} request(s)`;
    },
  },

  {
    name: 'three-tabs-503',
    what: '3 windows of one shop track at once, ~30% of requests answered 503: 0 lost, 0 duplicates, one sender',
    async run(ctx) {
      const tabs = [await ctx.open(), await ctx.open(), await ctx.open()];
      ctx.emu.addFault({ path: '/client/', status: 503, probability: 0.3, seed: 20260715, name: 'flaky' });
      const ids = [];
      // WebDriver drives one window at a time: 5 rounds of 8 calls in each window in
      // turn, while the windows' trackers run (and retry) on their own.
      for (let round = 0; round < 5; round += 1) {
        for (const [i, tab] of tabs.entries()) {
          ids.push(...await trackMany(tab, 8, { metric: 'Three Tabs', from: i * 100 + round * 8, props: { tab: i } }));
        }
      }
      assert.equal(new Set(ids).size, 120);
      await delivered(ctx, ids, { timeout: 45_000, what: '120 events from 3 windows' });
      for (const tab of tabs) await drained(ctx, tab, { timeout: 15_000 });
      const s = ctx.summary();
      const { lost, twice } = onceEach(s, ids);
      assert.equal(s.duplicateUniqueIds, 0, 'no unique_id accepted twice');
      const sends = eventRequests(s);
      const who = await senders(tabs);
      assert.equal(who.length, 1, `one window sends (windows that sent: ${who.join(', ')})`);
      await noPageErrors(...tabs);
      return `120 events from 3 windows; ${sends.length} event requests, ${sends.filter((r) => r.status === 503).length} answered 503; lost ${lost}, duplicates ${twice}; sender: window ${who[0]}`;
    },
  },

  {
    name: 'retry-after-429',
    what: 'a 429 with Retry-After: 2 holds every send (events and profile) for 2 s, then all are delivered once',
    async run(ctx) {
      const page = await ctx.open();
      ctx.emu.addFault({ path: '/client/', status: 429, retryAfter: 2, count: 1 });
      const first = await trackMany(page, 5, { metric: 'Throttled' });
      const throttled = await waitFor(() => ctx.summary({ status: 429 }).requests[0], { what: 'the 429' });
      const more = await trackMany(page, 3, { metric: 'Throttled Later', from: 5 });
      await page.eval(() => window.kl.identify({ email: 'throttled@example.com' }));
      const ids = [...first, ...more];
      await delivered(ctx, ids);
      await waitFor(() => ctx.summary({ path: '/client/profiles', accepted: true }).count >= 1, { what: 'the profile accepted' });
      const s = ctx.summary();
      const later = s.requests.filter((r) => r.seq > throttled.seq);
      assert.ok(later.length >= 2, 'events and the profile were sent after the 429');
      for (const r of later) {
        assert.ok(r.at >= throttled.at + 2000, `${r.path} #${r.seq} came ${r.at - throttled.at} ms after the 429 (Retry-After: 2)`);
      }
      for (const p of s.preflights.filter((x) => x.seq > throttled.seq)) {
        assert.ok(p.at >= throttled.at + 2000, `preflight ${p.path} came ${p.at - throttled.at} ms after the 429`);
      }
      onceEach(s, ids);
      await drained(ctx, page);
      await noPageErrors(page);
      return `first send after the 429: +${Math.min(...later.map((r) => r.at)) - throttled.at} ms (Retry-After: 2 s); ${ids.length} events + profile delivered once each`;
    },
  },

  {
    name: 'storage-full',
    what: 'localStorage full of other data: calls kept in memory and sent; onError "storage"; no page error',
    async run(ctx) {
      const fill = await ctx.home.eval(() => {
        let size = 1 << 20;
        let i = 0;
        let total = 0;
        for (;;) {
          try {
            localStorage.setItem(`filler:${i}`, 'x'.repeat(size));
            i += 1;
            total += size;
          } catch (e) {
            if (size === 1) return { total, name: e.name, code: e.code };
            size >>= 1;
          }
        }
      });
      assert.ok(fill.name === 'QuotaExceededError' || fill.code === 22, `a quota error when full (${fill.name}/${fill.code})`);
      const page = await ctx.open();
      const ids = await trackMany(page, 5, { metric: 'Quota Full' });
      await delivered(ctx, ids);
      await waitFor(async () => (await pendingOf(page)) === 0, { what: 'pending 0' });
      onceEach(ctx.summary(), ids);
      const reports = await page.eval(() => window.reports);
      assert.ok(reports.some((r) => r.kind === 'storage'), `an onError "storage" warning: ${JSON.stringify(reports)}`);
      await noPageErrors(page);
      ctx.feature('quota', `${fill.name} at ${(fill.total / 1e6).toFixed(2)} M chars`);
      return `filled ${(fill.total / 1e6).toFixed(2)} M chars (${fill.name}); 5 events delivered from memory; onError: ${[...new Set(reports.map((r) => r.kind))].join(', ')}`;
    },
  },

  {
    name: 'storage-disabled',
    what: 'localStorage throws on access (disabled, sandboxed): calls sent from memory; no page error',
    async run(ctx) {
      const page = await ctx.open({ storage: 'throw' });
      const seen = (await probeOf(page)).storage;
      if (seen !== 'SecurityError') throw skip(`this engine would not let the page replace window.localStorage (it saw: ${seen})`);
      const ids = await trackMany(page, 5, { metric: 'No Storage' });
      await delivered(ctx, ids);
      await waitFor(async () => (await pendingOf(page)) === 0, { what: 'pending 0' });
      onceEach(ctx.summary(), ids);
      await noPageErrors(page);
      const reports = await page.eval(() => window.reports);
      return `localStorage throws SecurityError; 5 events delivered once each from memory; onError: ${[...new Set(reports.map((r) => r.kind))].join(', ') || 'none'}`;
    },
  },

  {
    name: 'lease-no-locks',
    what: 'navigator.locks hidden before the library loads (old Safari): the localStorage lease picks ONE sender; 2 windows, 0 lost, 0 duplicates',
    async run(ctx) {
      const tabs = [await ctx.open({ nolocks: 1 }), await ctx.open({ nolocks: 1 })];
      for (const t of tabs) assert.equal((await probeOf(t)).nolocks, 'hidden', 'navigator.locks is hidden');
      const ids = [];
      for (let round = 0; round < 3; round += 1) {
        for (const [i, tab] of tabs.entries()) ids.push(...await trackMany(tab, 10, { metric: 'Lease', from: i * 100 + round * 10, props: { tab: i } }));
      }
      await delivered(ctx, ids);
      for (const tab of tabs) await drained(ctx, tab);
      const s = ctx.summary();
      const { lost, twice } = onceEach(s, ids);
      const who = await senders(tabs);
      assert.equal(who.length, 1, `one window sends (windows that sent: ${who.join(', ')})`);
      const lease = await ctx.home.eval((k) => localStorage.getItem(k), `klaviyo:${ctx.companyId}:lease`);
      assert.ok(lease, 'the lease is held in localStorage');
      await noPageErrors(...tabs);
      ctx.feature('lease', `one sender of 2 windows, ${ids.length} events, lost ${lost}, duplicates ${twice}`);
      return `navigator.locks hidden; ${ids.length} events from 2 windows; one sender (window ${who[0]}), lease in localStorage; lost ${lost}, duplicates ${twice}`;
    },
  },

  {
    name: 'klaviyo-cookie',
    what: "a visitor Klaviyo's onsite script knows (its __kla_id cookie): events carry its $exchange_id as _kx; __kla_off=true: nothing stored (but the time of the denial) or sent",
    async run(ctx) {
      const json = JSON.stringify({ cid: 'ZjQ5', $exchange_id: `KX-${ctx.engine}` });
      const cookie = `__kla_id=${Buffer.from(json).toString('base64')}; path=/`;
      const page = await ctx.open({ cookie });
      const [id, known] = await page.eval(() => [window.kl.track('Engine Matrix Known', {}), window.kl.isIdentified()]);
      assert.equal(known, true, 'isIdentified()');
      const s = await delivered(ctx, [id]);
      const req = eventRequests(s).find((r) => r.uniqueIds.includes(id));
      const kx = req.body.data.attributes.profile.data.attributes._kx;
      assert.equal(kx, `KX-${ctx.engine}`);
      // Klaviyo's opt-out: nothing stored (but the denial's time), nothing sent, the consent report once.
      await page.eval(() => { document.cookie = '__kla_off=true; path=/'; });
      const off = await ctx.open({ cookie: '__kla_off=true; path=/' });
      const seen = await off.eval((companyId) => {
        window.kl.setConsent('granted');
        window.kl.track('Engine Matrix Off', {});
        return window.kl.flush().then(() => ({
          consent: window.kl.consent,
          stored: Object.keys(localStorage).filter((k) => k.startsWith(`klaviyo:${companyId}:`)),
          reports: window.reports.filter((r) => r.kind === 'consent').length,
        }));
      }, ctx.companyId);
      await off.eval(() => { document.cookie = '__kla_off=; path=/; max-age=0'; });
      assert.deepEqual(seen, { consent: 'denied', stored: [`klaviyo:${ctx.companyId}:denied`], reports: 1 }); // the time of the denial only
      assert.equal(ctx.summary().requests.filter((r) => JSON.stringify(r.body ?? '').includes('Engine Matrix Off')).length, 0);
      await noPageErrors(page, off);
      return `_kx ${kx} from __kla_id, isIdentified() true; __kla_off=true: consent denied, nothing stored (but the time of the denial) or sent, 1 consent report`;
    },
  },

  {
    name: 'wasm-never-loads',
    what: "a page whose .wasm is a 404: identify and flush settle with the load error (none reaches the page unhandled), its calls stay stored; a denial there erases our storage at once and stops the other window",
    async run(ctx) {
      ctx.emu.addFault({ path: '/client/', status: 503, retryAfter: 60, count: 100_000, name: 'unavailable' });
      const prefix = `klaviyo:${ctx.companyId}:`;
      const keys = (page) => ourKeys(ctx, page);
      const running = await ctx.open();
      await trackMany(running, 2, { metric: 'Engine Matrix Queued' });
      await waitFor(async () => (await keys(running)).some((k) => k.includes(':q:')), { what: 'the queued calls on disk' });
      const failed = await ctx.open({ wasm: 'missing' });
      const settled = await failed.eval(() => {
        const kl = window.kl;
        const kind = (p) => p.then(() => 'resolved', (e) => e.kind);
        kl.track('Engine Matrix Early', {});
        const early = kind(kl.identify({ email: 'early@example.com' }));
        return window.loadFailed.then(async (ready) => {
          const after = await kind(kl.identify({ email: 'after@example.com' }));
          kl.flush(); // left unhandled, as a shop may
          return { ready, early: await early, after, flush: await kind(kl.flush()) };
        });
      });
      assert.deepEqual(settled, { ready: 'load', early: 'load', after: 'load', flush: 'load' });
      assert.ok((await keys(failed)).some((k) => k.includes(':pre:')), 'its calls kept for a later page');
      await failed.eval(() => window.kl.setConsent('denied'));
      assert.deepEqual(await keys(failed), [`${prefix}denied`], 'the identity, the queue and the window erased at once (the time of the denial kept)');
      await waitFor(() => running.eval(() => window.kl.consent === 'denied'), { what: 'the other window to follow the withdrawal' });
      assert.equal(await pendingOf(running), 0);
      await noPageErrors(running, failed);
      return 'ready, identify before and after, flush: all rejected with kind load, none unhandled; the pre: record kept; a denial erased every key at once and the other window followed';
    },
  },

  {
    name: 'active-on-site',
    what: 'Active on Site on the page view and on 3 single-page route changes: 4 events, each URL once (a same-URL pushState and a same-path replaceState add none)',
    async run(ctx) {
      const page = await ctx.open({ activeOnSite: 'auto' });
      await page.eval(() => {
        history.pushState({}, '', '/tests/engines/route-a');
        history.pushState({}, '', '/tests/engines/route-a');
        history.replaceState({}, '', '/tests/engines/route-a?sort=1');
        history.pushState({}, '', '/tests/engines/route-b');
        history.replaceState({}, '', '/tests/engines/route-c');
        return window.kl.flush();
      });
      const urls = () => eventRequests(ctx.summary({ accepted: true })).flatMap((r) => {
        const a = r.body.data.attributes;
        const list = r.path === '/client/events' ? [a] : a.events.data.map((e) => e.attributes);
        return list.filter((e) => e.metric.data.attributes.name === 'Active on Site').map((e) => new URL(e.properties.URL).pathname);
      });
      const got = await waitFor(() => { const u = urls(); return u.length >= 4 && u; }, { what: '4 Active on Site' });
      assert.deepEqual([...got].sort(), ['/tests/engines/page.html', '/tests/engines/route-a', '/tests/engines/route-b', '/tests/engines/route-c'].sort());
      await noPageErrors(page);
      return `4 Active on Site, each URL once: ${got.join(' ')}`;
    },
  },

  {
    name: 'cached-tab',
    what: 'windows of the shop go to another site and back (into the back/forward cache where the engine keeps them) while others track, Klaviyo failing twice: each call accepted once, none held back, and a window back from the cache sends once the others are gone',
    async run(ctx) {
      const { away, back } = leaving(ctx);
      // The first window sends; it goes away while the second tracks.
      const first = await ctx.open();
      const second = await ctx.open();
      await away(first);
      const meanwhile = await trackMany(second, 3, { metric: 'Beside A Cached Window' });
      await delivered(ctx, meanwhile, { what: 'the second window\'s calls while the first is away' });
      const restored = await back(first);
      ctx.emu.addFault({ path: '/client/', status: 503, count: 2, name: 'failing' });
      const both = [...await trackMany(first, 3, { from: 10 }), ...await trackMany(second, 3, { from: 20 })];
      await delivered(ctx, both, { timeout: 30_000, what: 'both windows\' calls' });
      // A third window waits its turn; it goes away and back, then the others close.
      const third = await ctx.open();
      await away(third);
      const thirdRestored = await back(third);
      await first.close();
      await second.close();
      const last = await trackMany(third, 3, { from: 30 });
      await delivered(ctx, last, { what: 'the last window\'s calls' });
      await drained(ctx, third);
      const ids = [...meanwhile, ...both, ...last];
      const { lost, twice } = onceEach(ctx.summary(), ids);
      await noPageErrors(third);
      ctx.feature('back/forward cache kept the page', restored && thirdRestored ? 'yes' : 'no');
      return `${ids.length} calls from 3 windows; windows back from the cache: ${restored && thirdRestored ? 'restored' : 'reloaded'}; lost ${lost}, duplicates ${twice}`;
    },
  },

  {
    name: 'delivered-while-cached',
    what: 'the sending window goes away (into the back/forward cache where the engine keeps it) with calls Klaviyo refused; another window delivers them; back and sending again, the first sends none of them twice (and a denial dated ahead of the clock does not stop it)',
    async run(ctx) {
      const { away, back } = leaving(ctx);
      const first = await ctx.open();
      const second = await ctx.open();
      // A denial's time ahead of the clock (a clock set back since): no denial made while away.
      await second.eval((k) => localStorage.setItem(k, String(Date.now() + 3_600_000)), `klaviyo:${ctx.companyId}:denied`);
      const ids = await refused(ctx, first, 'Before Going Away');
      await away(first);
      ctx.emu.clearFaults();
      await delivered(ctx, ids, { timeout: 30_000, what: 'the first window\'s calls, sent by the second' });
      await drained(ctx, second);
      await second.close();
      const restored = await back(first);
      const later = await trackMany(first, 2, { metric: 'Back From The Cache' });
      await delivered(ctx, later, { what: 'the calls made back from the cache' });
      await drained(ctx, first, { timeout: 30_000 });
      const { lost, twice } = onceEach(ctx.summary(), [...ids, ...later]);
      await noPageErrors(first);
      return `${ids.length} calls delivered by another window while their sender was ${restored ? 'in the cache' : 'away (reloaded)'}, ${later.length} after it came back: lost ${lost}, duplicates ${twice}`;
    },
  },

  {
    name: 'cleared-while-cached',
    what: 'the sending window goes away (into the back/forward cache where the engine keeps it) with calls Klaviyo refused; the window sending in its place runs localStorage.clear() and loads the next page (a logout redirect, which stores a new visitor), then closes; back, the first still sends each of them once',
    async run(ctx) {
      const { away, back } = leaving(ctx);
      const first = await ctx.open();
      const ids = await refused(ctx, first, 'Before The Clear');
      await away(first);
      const second = await ctx.open();
      await waitFor(() => second.eval(() => window.kl.pending() === 3), { what: 'the second window to take the first\'s calls' });
      await second.eval(() => localStorage.clear());
      // The next page of the shop: it stores its visitor (before, that was taken for
      // no clear, and the calls for delivered).
      await second.load(ctx.url());
      await waitFor(() => second.eval((k) => !!window.kl && localStorage.getItem(k) !== null, `klaviyo:${ctx.companyId}:id`), { what: 'the next page\'s visitor stored' });
      await second.close();
      ctx.emu.clearFaults();
      // A window loaded again holds nothing: the sending tab's own clear, then its close
      // before Klaviyo is back, loses them (the README's known loss around clear()).
      if (!await back(first)) throw skip('the engine loaded the window again (Firefox keeps no page holding a Web Lock in its cache)');
      await delivered(ctx, ids, { timeout: 30_000, what: 'the calls made before the clear' });
      await drained(ctx, first, { timeout: 30_000 });
      const { lost, twice } = onceEach(ctx.summary(), ids);
      await noPageErrors(first);
      return `${ids.length} calls, storage cleared by the sending window while theirs was in the cache: lost ${lost}, duplicates ${twice}`;
    },
  },

  {
    name: 'denied-while-cached',
    what: 'a window goes away (into the back/forward cache where the engine keeps it) with calls queued while Klaviyo is down; another window withdraws consent; back, the first sends none of them, stores nothing and follows the denial',
    async run(ctx) {
      const { away, back } = leaving(ctx);
      const first = await ctx.open();
      const second = await ctx.open();
      const ids = await refused(ctx, first, 'Before The Denial');
      await away(first);
      await second.eval(() => window.kl.setConsent('denied'));
      const mark = `klaviyo:${ctx.companyId}:denied`;
      assert.deepEqual(await ourKeys(ctx, second), [mark], 'erased, but for the time of the denial');
      ctx.emu.clearFaults();
      const restored = await back(first);
      if (restored) {
        await waitFor(() => first.eval(() => window.kl.consent === 'denied'), { what: 'the window back from the cache to follow the denial', interval: 50 });
      }
      // What it does now goes nowhere either (denied, or a new page whose calls are new).
      await first.eval(() => { window.kl.track('After The Denial', {}); return window.kl.flush(); });
      const s = ctx.summary();
      const sent = ids.filter((id) => s.uniqueIdCounts[id] >= 1);
      assert.deepEqual(sent, [], `${sent.length} of ${ids.length} calls made before the denial sent after it`);
      if (restored) {
        assert.deepEqual(await ourKeys(ctx, first), [mark], 'nothing stored again');
        assert.equal(s.requests.filter((r) => r.status !== 503).length, 0, 'nothing sent since the denial');
      }
      await noPageErrors(first, second);
      return `${ids.length} calls queued before another window's denial, the window ${restored ? 'back from the cache: denied, none sent, nothing stored' : 'loaded again: none sent'}`;
    },
  },

  {
    name: 'denied-while-cached-loading',
    what: 'a window whose .wasm never loads (its calls saved for a later page) goes away (into the back/forward cache where the engine keeps it); another window withdraws consent and grants again; back, the first follows the denial: its calls from before it are not saved again, and what the other wrote since is left alone',
    async run(ctx) {
      const { away, back } = leaving(ctx);
      const prefix = `klaviyo:${ctx.companyId}:`;
      const keys = (page) => ourKeys(ctx, page);
      const loading = await ctx.open({ wasm: 'missing' });
      await loading.eval(() => { window.kl.track('Before The Denial', {}); window.kl.track('Before The Denial', {}); });
      await waitFor(async () => (await keys(loading)).some((k) => k.includes(':pre:')), { what: 'the calls saved for a later page' });
      await away(loading);
      const other = await ctx.open();
      await other.eval(() => { window.kl.setConsent('denied'); window.kl.setConsent('granted'); });
      const since = await trackMany(other, 1, { metric: 'After The Grant' });
      await delivered(ctx, since, { what: 'the other window\'s call after its grant' });
      const written = await keys(other);
      assert.ok(written.includes(`${prefix}id`), `the other window's visitor stored: ${written}`);
      if (!await back(loading)) throw skip('the engine loaded the window again (it kept no page in its cache)');
      await waitFor(() => loading.eval(() => window.kl.consent === 'denied'), { what: 'the window back from the cache to follow the denial', interval: 50 });
      // A call now: before, its window was saved again with the two from before the denial.
      await loading.eval(() => { window.kl.track('After Coming Back', {}); });
      const left = await keys(loading);
      assert.deepEqual(left.filter((k) => k.includes(':pre:')), [], 'no calls saved for a later page');
      assert.deepEqual(left, written.filter((k) => !k.includes(':k:')), 'the other window\'s keys left as they were');
      await noPageErrors(loading, other);
      return 'back from the cache: denied, nothing saved again, the other window\'s visitor and records left alone';
    },
  },

  {
    name: 'engine-probes',
    what: 'what the engine does with what the library relies on: storage events between windows, keepalive on close, compileStreaming with a wrong MIME type',
    async run(ctx) {
      const details = [];
      // Storage events between windows of the shop.
      const other = await ctx.open({ init: false });
      const key = `probe:storage-event:${ctx.companyId}`;
      const wrote = await ctx.home.eval((k) => { const t = Date.now(); localStorage.setItem(k, String(t)); return t; }, key);
      let storageEvents;
      try {
        const ev = await waitFor(async () => (await probeOf(other)).storageEvents.find((e) => e.key === key), { timeout: 3000, what: 'the storage event' });
        storageEvents = `yes, ${ev.at - wrote} ms`;
      } catch {
        storageEvents = 'no event within 3 s';
      }
      ctx.feature('storageEvents', storageEvents);
      details.push(`storage events: ${storageEvents}`);
      await other.close();

      // keepalive: a page with nothing sent yet (flushDelayMs 60 s) is closed; only the
      // request it makes as it goes can deliver the events (no other page is open, and
      // the next page would wait 10 s for such a request anyway). At the same moment
      // the page makes a plain fetch (no keepalive) as a control. Three rounds: whether
      // the control survives can be a race.
      const ROUNDS = 3;
      let arrived = 0;
      let plainArrived = 0;
      const flags = new Set();
      for (let round = 0; round < ROUNDS; round += 1) {
        const control = `${ctx.emu.url}/client/keepalive-control?company_id=${ctx.companyId}&round=${round}`;
        const page = await ctx.open({ flushDelayMs: 60_000, control });
        const ids = await trackMany(page, 3, { metric: 'Keepalive Probe', props: { round } });
        assert.equal(ctx.summary().requests.filter((r) => r.uniqueIds.some((id) => ids.includes(id))).length, 0, 'nothing sent before the close (flushDelayMs 60 s)');
        await page.close();
        const ok = await waitFor(() => { const s = ctx.summary(); return ids.every((id) => s.uniqueIdCounts[id] >= 1); }, { timeout: 5000, what: 'the request made on close' }).then(() => true, () => false);
        if (ok) arrived += 1;
        // Sent at the same moment: 1.5 s more is plenty for the control, if it comes.
        const seen = () => ctx.summary().requests.some((r) => r.path === '/client/keepalive-control' && r.query.round === String(round));
        if (await waitFor(seen, { timeout: ok ? 1500 : 100, what: 'the control fetch' }).then(() => true, () => false)) plainArrived += 1;
        const leavingFetch = await ctx.home.eval(() => localStorage.getItem('probe:leaving-fetch'));
        flags.add(leavingFetch ? `keepalive: ${JSON.parse(leavingFetch).keepalive}` : 'no fetch seen as the page went');
      }
      const keepalive = `delivered ${arrived}/${ROUNDS}`;
      ctx.feature('keepaliveOnClose', `${keepalive} (${[...flags].join(', ')}); a plain fetch made then: arrived ${plainArrived}/${ROUNDS}`);
      details.push(`windows closed with 3 unsent events: their request ${keepalive} (${[...flags].join(', ')}), a plain fetch made at the same moment arrived ${plainArrived}/${ROUNDS}`);

      // compileStreaming and its MIME check: the .wasm answered as application/octet-stream.
      const odd = await ctx.open({ wasmMime: 'octet' });
      const p = await probeOf(odd);
      const st = p.streaming.map((x) => `${x.fn} ${x.state}${x.error ? ` (${x.error.split(':')[0]})` : ''}`).join(', ') || 'not called';
      const mime = `${st}${p.compiled ? ' → plain compile' : ''}, tracker ready`;
      ctx.feature('wasmWrongMime', mime);
      details.push(`wrong wasm MIME: ${mime}`);
      await noPageErrors(odd);
      return details.join('; ');
    },
  },
  {
    name: 'inline-build',
    what: 'klaviyo-wasm/inline: one file, no .wasm asked for, no compileStreaming; identify and 2 events accepted once each',
    async run(ctx) {
      const page = await ctx.open({ build: 'inline' });
      await page.eval(() => window.kl.identify({ email: 'engine.inline@example.com' }));
      const ids = await trackMany(page, 2, { metric: 'Engine Matrix Inline' });
      const s = await delivered(ctx, ids);
      onceEach(s, ids);
      const seen = await page.eval(() => ({
        files: performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname).filter((p) => p.startsWith('/dist/web/')),
        streaming: window.probe.streaming.length,
      }));
      assert.deepEqual(seen.files, ['/dist/web/inline.js'], 'the package is one file');
      assert.equal(seen.streaming, 0, 'no compileStreaming: nothing to stream');
      await noPageErrors(page);
      return `files from the package: ${seen.files.join(', ')}; ${ids.length} events accepted once each`;
    },
  },
  {
    name: 'same-page-trackers',
    what: 'a second tracker of the shop in the page, from the inline build (its own copy of the module): both trackers\' events accepted once each, and a denial on it stops the first',
    async run(ctx) {
      const page = await ctx.open();
      await page.eval(async () => {
        const q = new URLSearchParams(location.search);
        const { Klaviyo } = await import('/dist/web/inline.js');
        window.other = await Klaviyo.init({ companyId: q.get('companyId'), apiBase: q.get('apiBase'), activeOnSite: 'manual' });
      });
      const ids = [
        ...await trackMany(page, 2, { metric: 'Engine Matrix Same Page' }),
        ...await page.eval(() => [0, 1, 2].map((n) => window.other.track('Engine Matrix Same Page Other', { n }))),
      ];
      const s = await delivered(ctx, ids);
      onceEach(s, ids);
      await page.eval(() => window.other.setConsent('denied'));
      await waitFor(() => page.eval(() => window.kl.consent === 'denied'), { what: 'the first tracker to follow the denial', interval: 50 });
      const sent = ctx.summary().requests.length;
      await trackMany(page, 2, { metric: 'Engine Matrix After Denial' });
      const flushed = await page.eval(() => window.kl.flush());
      assert.equal(flushed.sent, 0, 'nothing sent after the denial');
      assert.equal(ctx.summary().requests.length, sent, 'Klaviyo received nothing more');
      await noPageErrors(page);
      return `${ids.length} events of two trackers (npm + inline build) accepted once each; the first followed the second's denial`;
    },
  },
  {
    name: 'trackers-start-together',
    what: 'two trackers of the shop made in one task on empty storage (as the tabs of a restored session start, each hearing the other\'s write before its own): both follow the one visitor stored, and their events are accepted once each',
    async run(ctx) {
      const page = await ctx.open({ init: 0 });
      await page.eval(async (companyId, apiBase) => {
        const { Klaviyo } = await import('/dist/web/index.js');
        const o = { companyId, apiBase, activeOnSite: 'manual' };
        window.kl = Klaviyo.create(o);
        window.other = Klaviyo.create(o);
        await Promise.all([window.kl.ready, window.other.ready]);
      }, ctx.companyId, ctx.emu.url);
      // Before, each took the other's id from the event: they swapped for good.
      const visitor = await waitFor(() => page.eval((key) => {
        const stored = JSON.parse(localStorage.getItem(key) || 'null');
        const id = stored && stored.anonymous_id;
        return id && window.kl.anonymousId === id && window.other.anonymousId === id ? id : null;
      }, `klaviyo:${ctx.companyId}:id`), { what: 'both trackers on the stored visitor', interval: 50 });
      const ids = [
        ...await trackMany(page, 2, { metric: 'Engine Matrix Together' }),
        ...await page.eval(() => [0, 1].map((n) => window.other.track('Engine Matrix Together Other', { n }))),
      ];
      const s = await delivered(ctx, ids);
      onceEach(s, ids);
      await noPageErrors(page);
      return `one visitor (${visitor.slice(0, 8)}…) in both trackers and storage; ${ids.length} events accepted once each`;
    },
  },
];

// ---------------------------------------------------------------- offline variants

/** Firefox: the browser really offline (navigator.onLine false), pages still load. */
async function offlineWithReloads(ctx, offline) {
  let page = await ctx.open();
  await offline.set(true);
  // Work Offline lets loopback through, so Klaviyo (the emulator on 127.0.0.1) is made
  // unreachable as well: a request the library tried anyway would be seen, and fail.
  ctx.emu.addFault({ path: '/client/', drop: true, count: 100_000, name: 'offline' });
  try {
    await waitFor(() => page.eval(() => navigator.onLine === false), { what: 'navigator.onLine false' });
    const ids = [];
    for (let round = 0; round < 3; round += 1) {
      ids.push(...await trackMany(page, 20, { metric: 'Offline Reload', from: round * 20, props: { round } }));
      await page.eval(() => window.kl.flush()); // whatever was due has been tried now
      const p = await probeOf(page);
      assert.equal(p.fetches.length, 0, `round ${round}: no request attempted while offline`);
      if (round < 2) {
        page = await page.reload();
        assert.equal(await page.eval(() => navigator.onLine), false, 'still offline after the reload');
        assert.equal(await pendingOf(page), ids.length, `after reload ${round + 1}: the queue is restored from localStorage`);
      }
    }
    assert.equal(ctx.summary().count, 0, 'nothing reached Klaviyo while offline');
    ctx.emu.clearFaults();
    await offline.set(false);
    const back = Date.now();
    await delivered(ctx, ids);
    const took = Date.now() - back;
    await drained(ctx, page);
    onceEach(ctx.summary(), ids);
    await noPageErrors(page);
    return `browser offline [${offline.how}]: 60 events over 2 offline reloads, 0 requests while offline; delivered once each ${took} ms after going online`;
  } finally {
    ctx.emu.clearFaults();
    await offline.set(false).catch(() => {});
  }
}

/**
 * Chromium: DevTools' offline emulation blocks every request, 127.0.0.1 included, so a
 * reload while offline shows the browser's error page. The emulation also lifts for a
 * moment when the page navigates away ("online" fires before pagehide), which a real
 * offline device never does: Klaviyo stays unreachable (the emulator drops connections)
 * until the test goes back online, as it would be.
 */
async function offlineThenErrorPage(ctx, offline) {
  const page = await ctx.open();
  const url = await page.eval(() => location.href);
  await offline.set(true);
  ctx.emu.addFault({ path: '/client/', drop: true, count: 100_000, name: 'offline' });
  let ids;
  let blip;
  try {
    await waitFor(() => page.eval(() => navigator.onLine === false), { what: 'navigator.onLine false' });
    ids = await trackMany(page, 20, { metric: 'Offline Reload' });
    await page.eval(() => window.kl.flush());
    assert.equal((await probeOf(page)).fetches.length, 0, 'no request attempted while offline');
    assert.equal(await pendingOf(page), 20);
    assert.equal(ctx.summary().count, 0, 'nothing reached Klaviyo while offline');
    // The reload while offline: the browser's own error page, no tracker.
    await page.load(url);
    const shown = await page.eval(() => location.href).catch(() => '?');
    assert.ok(!shown.startsWith('http'), `the reload while offline shows the browser's error page (${shown})`);
    blip = ctx.summary().count;
    assert.equal(ctx.summary({ accepted: true }).count, 0, 'nothing accepted while offline');
  } finally {
    ctx.emu.clearFaults();
    await offline.set(false).catch(() => {});
  }
  await page.goto(url);
  ids.push(...await trackMany(page, 20, { metric: 'Offline Reload', from: 20 }));
  await delivered(ctx, ids, { timeout: 25_000 });
  await drained(ctx, page);
  onceEach(ctx.summary(), ids);
  await noPageErrors(page);
  return `browser offline [${offline.how}]: 20 events, 0 requests while offline; the reload offline showed the error page (the emulation blocks 127.0.0.1 too)${blip ? `; ${blip} request(s) went out as the page unloaded (the emulation lifts at navigation: "online" fired), dropped as Klaviyo is unreachable` : ''}; the next page online delivered those 20 + 20 new once each`;
}

/** No offline switch over WebDriver: Klaviyo unreachable instead (dropped connections). */
async function unreachableWithReloads(ctx, why) {
  ctx.emu.addFault({ path: '/client/', drop: true, count: 100_000, name: 'unreachable' });
  let page = await ctx.open();
  const ids = [];
  for (let round = 0; round < 3; round += 1) {
    const mine = await trackMany(page, 20, { metric: 'Unreachable Reload', from: round * 20, props: { round } });
    ids.push(...mine);
    // This page tried: a dropped request carried its newest events.
    await waitFor(() => ctx.summary().requests.some((r) => r.fault === 'unreachable' && r.uniqueIds.includes(mine[19])), { what: `round ${round}: a dropped attempt` });
    if (round < 2) {
      page = await page.reload();
      assert.equal(await pendingOf(page), ids.length, `after reload ${round + 1}: the queue is restored from localStorage`);
    }
  }
  const dropped = ctx.summary().count;
  ctx.emu.clearFaults();
  const back = Date.now();
  await delivered(ctx, ids, { timeout: 25_000 });
  const took = Date.now() - back;
  await drained(ctx, page);
  onceEach(ctx.summary({ accepted: true }), ids);
  await noPageErrors(page);
  return `no browser offline (${why}): emulator dropped every connection instead; 60 events over 2 reloads, ${dropped} dropped attempts; delivered once each ${took} ms after Klaviyo came back`;
}
