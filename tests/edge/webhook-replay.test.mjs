// Webhooks too large for one queue message, and a signature let go when nothing of its
// call was queued, in workerd (Miniflare) with real Queues and the REPLAY_GUARD Durable
// Object.
//
// - A Klaviyo webhook larger than a message is queued in parts (its events divided,
//   meta in each), so that a receiver that is down at first still gets every event
//   once it is back (it was sent once, unread, before).
// - A call the queue takes none of is answered 503 queue_unavailable and its signature
//   is released (the isolate's memory and the Durable Object): the same request sent
//   again is accepted once the queue takes it, and then refused as a replay. A signed
//   call of which a part was queued (409 queue_partial) keeps its signature; a webhook
//   taken in part is answered 503 and let go (Klaviyo retries only a 429 or a 5xx).
//
// The second half wraps DELIVERY_QUEUE (tests/edge/queue-wrapper.mjs) to refuse a
// chosen send, as Queues does over its rate; that worker records what was queued.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Miniflare } from 'miniflare';
import {
  ROOT, isEdgeBuilt, NOT_BUILT, makeSecrets, fullBindings, miniflareOptions, signedHeaders,
  webhookRequest, startSink, readResponse, edgeBuildId,
} from './harness.mjs';
import { waitFor } from '../support/browser.mjs';
import { startEmulator } from '../emulator/server.mjs';

const GUARD = { REPLAY_GUARD: 'ReplayGuard' };
let emu, hooks, secrets, plain, wrapped;

before(async () => {
  if (!isEdgeBuilt()) throw new Error(NOT_BUILT);
  emu = await startEmulator({ port: 0 });
  hooks = await startSink();
  secrets = makeSecrets();
  const bindings = fullBindings({ emu, secrets, forwardUrl: hooks.url });
  // The worker as shipped, consuming its own queue (forwards go to the sink).
  plain = new Miniflare({
    ...miniflareOptions(bindings),
    queueProducers: { DELIVERY_QUEUE: 'replay-test-deliveries', DELIVERY_DEAD_LETTERS: 'replay-test-dead' },
    queueConsumers: { 'replay-test-deliveries': { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 50 } },
    durableObjects: GUARD,
  });
  await plain.ready;
  // The worker with its queue wrapped to refuse a chosen send.
  wrapped = new Miniflare({
    ...miniflareOptions(bindings),
    modulesRoot: ROOT,
    scriptPath: path.join(ROOT, 'tests/edge/queue-wrapper.mjs'),
    queueProducers: { DELIVERY_QUEUE: 'replay-test-wrapped', DELIVERY_DEAD_LETTERS: 'replay-test-wrapped-dead' },
    queueConsumers: { 'replay-test-wrapped': { maxBatchSize: 100, maxBatchTimeout: 1 } },
    durableObjects: GUARD,
  });
  await wrapped.ready;
  console.log(`# edge build ${edgeBuildId()}`);
});

after(async () => {
  await plain?.dispose().catch(() => {});
  await wrapped?.dispose().catch(() => {});
  await hooks?.close();
  await emu?.close();
});

/** A system webhook of `items` events of about `pad` bytes each, numbered by `payload.n`. */
function bigWebhook(items, pad) {
  const webhookId = `01JW${randomBytes(11).toString('hex').toUpperCase()}`.slice(0, 26);
  const run = randomBytes(4).toString('hex');
  const body = JSON.stringify({
    data: Array.from({ length: items }, (_, n) => ({
      external_id: `ext-${run}-${n}`,
      payload: { n, pad: 'x'.repeat(pad) },
      topic: 'event:klaviyo.sent_sms',
    })),
    meta: { klaviyo_webhook_id: webhookId, first_sent_at: new Date().toISOString() },
  });
  return { webhookId, run, ...webhookRequest(secrets.KLAVIYO_WEBHOOK_SECRET, { webhookId, body }) };
}

async function post(mf, route, { headers, body }) {
  const worker = await mf.getWorker();
  const res = await worker.fetch(`https://shop.example${route}`, { method: 'POST', headers, body });
  return readResponse(res, `POST ${route}`);
}

test('a webhook larger than a queue message reaches a receiver down at first in parts, every event once', { timeout: 120_000 }, async () => {
  hooks.clear();
  hooks.setStatus(503);
  const hook = bigWebhook(300, 1_000);
  assert.ok(hook.body.length > 300_000, `${hook.body.length} B`);
  const res = await post(plain, '/webhooks/klaviyo', hook);
  assert.equal(res.status, 200, res.text);
  const ours = () => hooks.received.filter((r) => r.body.includes(hook.run));
  // Every part tried while the receiver is down (the direct send was one attempt, lost).
  await waitFor(() => new Set(ours().map((r) => r.body)).size >= 3, { timeout: 30_000, interval: 200, what: 'every part tried while down' });
  hooks.setStatus(200);
  const parts = new Set(ours().map((r) => r.body)).size;
  await waitFor(() => ours().filter((r) => r.answered === 200).length >= parts, { timeout: 60_000, interval: 300, what: 'every part after the outage' });
  const delivered = ours().filter((r) => r.answered === 200);
  const bodies = delivered.map((r) => JSON.parse(r.body));
  assert.equal(delivered.length, parts, 'each part once');
  for (const [i, b] of bodies.entries()) {
    assert.deepEqual(Object.keys(b).sort(), ['data', 'meta'], `part ${i}`);
    assert.equal(b.meta.klaviyo_webhook_id, hook.webhookId, `part ${i}: meta in each`);
    assert.ok(delivered[i].body.length <= 120_000, `part ${i}: ${delivered[i].body.length} B`);
    assert.match(delivered[i].headers['x-klaviyo-edge-signature'], /^t=\d+,v2=[0-9a-f]{64}$/);
  }
  const numbers = bodies.flatMap((b) => b.data.map((e) => e.payload.n)).sort((a, b) => a - b);
  assert.deepEqual(numbers, Array.from({ length: 300 }, (_, n) => n), 'every event once');
  console.log(`# a ${hook.body.length} B webhook arrived in ${parts} parts`);
});

/** The next run of the wrapped queue: its `failAt`-th send refused (0: none). */
async function arrange(failAt) {
  const worker = await wrapped.getWorker();
  const r = await worker.fetch('https://shop.example/__queue', { method: 'POST', body: JSON.stringify({ failAt }) });
  assert.equal(r.status, 200);
  await r.arrayBuffer();
}

async function queued() {
  const worker = await wrapped.getWorker();
  return (await (await worker.fetch('https://shop.example/__queue')).json()).received.map((t) => JSON.parse(t));
}

const event = () => JSON.stringify({ data: { type: 'event', attributes: {
  properties: { probe: 'release' }, unique_id: `rel-${randomBytes(6).toString('hex')}`,
  metric: { data: { type: 'metric', attributes: { name: 'Release Probe' } } },
  profile: { data: { type: 'profile', attributes: { email: 'ann@example.com' } } },
} } });

test('a signed call the queue took none of is accepted when sent again as it was, once', { timeout: 60_000 }, async () => {
  const body = event();
  const headers = signedHeaders(secrets.EDGE_SIGNING_SECRET, body, { path: '/api/events' });
  const delivery = `dlv_${headers['x-klaviyo-edge-signature'].split('v2=')[1].slice(0, 24)}`;
  await arrange(1);
  const refused = await post(wrapped, '/api/events', { headers, body });
  assert.equal(refused.status, 503, refused.text);
  assert.equal(refused.json.errors[0].code, 'queue_unavailable');
  await arrange(0);
  const again = await post(wrapped, '/api/events', { headers, body });
  assert.equal(again.status, 202, `the same request after the 503: ${again.text}`);
  assert.equal(again.json.data.id, delivery);
  // Queued now: a third send is a replay.
  const third = await post(wrapped, '/api/events', { headers, body });
  assert.equal(third.status, 401, third.text);
  await waitFor(async () => (await queued()).some((m) => m.id === delivery), { timeout: 20_000, interval: 200, what: 'the message' });
  assert.equal((await queued()).filter((m) => m.id === delivery).length, 1, 'queued once');
});

test('Klaviyo\'s retry of a webhook the queue took none of, or only part of, is kept: every event reaches the receiver', { timeout: 90_000 }, async () => {
  const small = webhookRequest(secrets.KLAVIYO_WEBHOOK_SECRET, { webhookId: `01JW${randomBytes(11).toString('hex').toUpperCase()}`.slice(0, 26) });
  await arrange(1);
  const refused = await post(wrapped, '/webhooks/klaviyo', small);
  assert.equal(refused.status, 503, refused.text);
  await arrange(0);
  const retried = await post(wrapped, '/webhooks/klaviyo', small);
  assert.equal(retried.status, 200, `Klaviyo's retry after the 503: ${retried.text}`);
  assert.equal((await post(wrapped, '/webhooks/klaviyo', small)).status, 401, 'kept once');

  // Two batches (two messages each at most): the first taken, the second refused. Klaviyo
  // retries a webhook only after a 429 or a 5xx: a 409 would have left the rest unsent.
  const big = bigWebhook(360, 1_000);
  await arrange(2);
  const partly = await post(wrapped, '/webhooks/klaviyo', big);
  assert.equal(partly.status, 503, partly.text);
  await arrange(0);
  const again = await post(wrapped, '/webhooks/klaviyo', big);
  assert.equal(again.status, 200, `Klaviyo's retry of the webhook taken in part: ${again.text}`);
  assert.equal((await post(wrapped, '/webhooks/klaviyo', big)).status, 401, 'then kept once');
  // Every event queued (the first part twice: the receiver de-duplicates by external_id).
  await waitFor(async () => {
    const seen = new Set((await queued()).flatMap((m) => (m.work.forward ? m.work.forward.body.data.filter((e) => e.external_id.includes(big.run)).map((e) => e.payload.n) : [])));
    return seen.size === 360;
  }, { timeout: 30_000, interval: 200, what: 'every event of the large webhook queued' });
});
