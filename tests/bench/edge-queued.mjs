// Section 5 of the edge bench (tests/bench/edge-bench.mjs): what a backend waits for a
// signed order, `POST /api/orders`, through the worker without a queue (synchronous:
// the worker sends the bulk job to Klaviyo and answers with Klaviyo's answer) and with
// DELIVERY_QUEUE bound (queued: the worker checks the order, enqueues it and answers 202;
// its queue consumer sends it later). Both are the same build in one workerd, each on
// its own socket, requests interleaved one by one (the order alternating), each order
// signed anew.
//
// Three conditions of Klaviyo (the emulator on loopback):
//   healthy   answers at once
//   slow      answers after `slowMs` (Klaviyo's bulk job endpoint is not instant)
//   down      answers 503: the synchronous path answers 502 after its own retries, and
//             the order is lost unless the backend keeps it; the queued path answers 202
// and, for the queued path, how long after its 202 each order reached the emulator when
// healthy (the consumer's batch window and the queue's own delay).
import { performance } from 'node:perf_hooks';
import { Miniflare } from 'miniflare';
import { sign, SIGNATURE_HEADER } from '../../js/sign.mjs';
import { startEmulator } from '../emulator/server.mjs';
import { miniflareOptions, fullBindings, makeSecrets, JSON_API, REVISION } from '../edge/harness.mjs';

const ROUTE = '/api/orders';
const order = (id) => JSON.stringify({
  order_id: id,
  value: 19.98,
  profile: { email: 'bench@example.com' },
  items: [{ product_id: 'p-1', name: 'Pooh', quantity: 2, price: 9.99 }],
});

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const p = (xs, q) => quantile([...xs].sort((a, b) => a - b), q);

async function startPair(emu, secrets, { batchTimeoutS }) {
  const { host: _h, port: _p, ...base } = miniflareOptions(fullBindings({ emu, secrets }));
  const socket = [{ host: '127.0.0.1', port: 0 }];
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: [
      { ...base, name: 'sync', unsafeDirectSockets: socket },
      {
        ...base,
        name: 'queued',
        unsafeDirectSockets: socket,
        queueProducers: { DELIVERY_QUEUE: 'bench-deliveries', DELIVERY_DEAD_LETTERS: 'bench-deliveries-dead' },
        queueConsumers: { 'bench-deliveries': { maxBatchSize: 100, maxBatchTimeout: batchTimeoutS, maxRetries: 100 } },
      },
    ],
  });
  await mf.ready;
  const url = async (name) => String(await mf.unsafeGetDirectURL(name)).replace(/\/$/, '');
  return { mf, urls: { sync: await url('sync'), queued: await url('queued') } };
}

/** One signed order to `base`; [ms, status]. The signature is made before the clock starts. */
async function post(base, secret, id) {
  const body = order(id);
  const signature = await sign(body, secret, { route: ROUTE });
  const headers = { 'content-type': JSON_API, revision: REVISION, [SIGNATURE_HEADER]: signature };
  const t0 = performance.now();
  const res = await fetch(base + ROUTE, { method: 'POST', headers, body });
  await res.text();
  return [performance.now() - t0, res.status];
}

/**
 * Runs section 5 and prints its table through `table(title, head, rows)`. Returns the
 * figures. `n`: orders per path and condition; `slowMs`: the slow Klaviyo's delay.
 */
export async function benchQueued({ n = 300, slowMs = 150, table, ms, times }) {
  const emu = await startEmulator({ port: 0 });
  const secrets = makeSecrets();
  const pair = await startPair(emu, secrets, { batchTimeoutS: 1 });
  const secret = secrets.EDGE_SIGNING_SECRET;
  const out = {};
  const sentAt = new Map(); // unique_id -> wall-clock ms of the queued 202
  let seq = 0;
  try {
    const run = async (condition, setUp) => {
      emu.reset();
      emu.clearFaults();
      setUp();
      const lat = { sync: [], queued: [] };
      const statuses = { sync: new Map(), queued: new Map() };
      for (let i = 0; i < n; i += 1) {
        for (const path of i % 2 ? ['queued', 'sync'] : ['sync', 'queued']) {
          const id = `bench-${condition}-${path}-${seq++}`;
          const [dt, status] = await post(pair.urls[path], secret, id);
          if (path === 'queued') sentAt.set(id, Date.now());
          lat[path].push(dt);
          statuses[path].set(status, (statuses[path].get(status) ?? 0) + 1);
        }
      }
      out[condition] = { lat, statuses };
    };
    // Warm both isolates (and V8's tiers) before anything is timed.
    await run('warm-up', () => {});
    await run('healthy', () => {});
    // The healthy run's queued orders: when each reached the emulator after its 202.
    const deadline = Date.now() + 30_000;
    let lags = [];
    while (Date.now() < deadline) {
      const reached = emu.requests({ pathPrefix: '/api/event-bulk-create-jobs', accepted: true }).requests;
      lags = reached.flatMap((r) => (r.uniqueIds ?? [])
        .filter((u) => u.startsWith('bench-healthy-queued-') && !/-\d+-\d+$/.test(u))
        .map((u) => r.at - sentAt.get(u)));
      if (lags.length >= n) break;
      await new Promise((r) => setTimeout(r, 100)); // polling the emulator's records, with a deadline
    }
    out.lag = lags;
    await run('slow', () => emu.addFault({ delayMs: slowMs, count: 1_000_000, path: '/api/event-bulk-create-jobs', name: 'slow' }));
    await run('down', () => emu.addFault({ status: 503, count: 1_000_000, path: '/api/event-bulk-create-jobs', name: 'down' }));
  } finally {
    await pair.mf.dispose().catch(() => {});
    await emu.close();
  }

  const status = (m) => [...m.entries()].map(([s, c]) => `${c}x ${s}`).join(', ');
  const rows = [];
  for (const condition of ['healthy', 'slow', 'down']) {
    const { lat, statuses } = out[condition];
    const label = condition === 'slow' ? `slow (+${slowMs} ms)` : condition;
    rows.push([`${label}: synchronous`, ms(p(lat.sync, 0.5)), ms(p(lat.sync, 0.99)), status(statuses.sync), '1.00x']);
    rows.push([`${label}: queued`, ms(p(lat.queued, 0.5)), ms(p(lat.queued, 0.99)), status(statuses.queued),
      times(p(lat.queued, 0.5) / p(lat.sync, 0.5))]);
  }
  table(`5. A signed order (POST ${ROUTE}): what the backend waits, synchronous vs queued (${n} each, interleaved)`,
    ['Klaviyo, path', 'p50', 'p99', 'answers', 'p50 / synchronous'], rows);
  if (out.lag.length) {
    console.log(`   queued, healthy: the order reached Klaviyo ${ms(p(out.lag, 0.5))} after its 202 at p50, ${ms(p(out.lag, 0.99))} at p99`
      + ` (${out.lag.length} of ${n}; the consumer's batch window here is 1 s, 5 s in wrangler.toml)`);
  }
  console.log('   down: every synchronous order was answered 502 and is the backend\'s to keep; every queued one was kept by the queue');
  return {
    healthy: { sync: p(out.healthy.lat.sync, 0.5), queued: p(out.healthy.lat.queued, 0.5) },
    slow: { sync: p(out.slow.lat.sync, 0.5), queued: p(out.slow.lat.queued, 0.5) },
    down: { sync: p(out.down.lat.sync, 0.5), queued: p(out.down.lat.queued, 0.5) },
    lagP50: p(out.lag, 0.5),
  };
}
