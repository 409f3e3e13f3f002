// A call divided into several queue messages, in workerd (Miniflare) with a real Queue:
// the parts go in as few sendBatch calls as Queues' limits allow, each taken whole or not
// at all. So a refused send leaves either nothing queued (`503 queue_unavailable`) or a
// leading part the answer names (`409 queue_partial`, which signedFetch does not repeat),
// and sending the rest completes the call with nothing queued twice. The binding is wrapped (tests/edge/queue-wrapper.mjs)
// to refuse one chosen send, as Queues does over its rate, and to hide sendBatch.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import {
  ROOT, isEdgeBuilt, NOT_BUILT, makeSecrets, fullBindings, miniflareOptions, signedHeaders,
  readResponse, edgeBuildId, findSecrets, webhookRequest,
} from './harness.mjs';
import { waitFor } from '../support/browser.mjs';
import { startEmulator } from '../emulator/server.mjs';
import { signedFetch } from '../../js/sign.mjs';

const ROUTE = '/api/event-bulk-create-jobs';
const QUEUE = 'batches-test-deliveries';

let emu, secrets, mf, worker, url;

before(async () => {
  if (!isEdgeBuilt()) throw new Error(NOT_BUILT);
  emu = await startEmulator({ port: 0 });
  secrets = makeSecrets();
  // The wrapper sits in tests/edge and imports the built worker: the repo is the root.
  mf = new Miniflare({
    ...miniflareOptions(fullBindings({ emu, secrets })),
    modulesRoot: ROOT,
    scriptPath: path.join(ROOT, 'tests/edge/queue-wrapper.mjs'),
    queueProducers: { DELIVERY_QUEUE: QUEUE, DELIVERY_DEAD_LETTERS: `${QUEUE}-dead` },
    queueConsumers: { [QUEUE]: { maxBatchSize: 100, maxBatchTimeout: 1 } },
  });
  url = await mf.ready;
  worker = await mf.getWorker();
  console.log(`# edge build ${edgeBuildId()}`);
});

after(async () => {
  await mf?.dispose().catch(() => {});
  await emu?.close();
});

/** The next run: the `failAt`-th binding call refused (0: none); sendBatch hidden or not;
 * DELIVERY_DEAD_LETTERS unbound or not. */
async function arrange({ failAt = 0, noBatch = false, noDeadLetters = false } = {}) {
  const r = await worker.fetch('https://shop.example/__queue', { method: 'POST', body: JSON.stringify({ failAt, noBatch, noDeadLetters }) });
  assert.equal(r.status, 200);
  await r.arrayBuffer();
}

async function record() {
  return (await worker.fetch('https://shop.example/__queue')).json();
}

/** The queued messages of delivery `id`, parsed. */
async function queuedOf(id) {
  return (await record()).received.map((t) => JSON.parse(t)).filter((m) => m.id === id);
}

let jobs = 0;

/**
 * A bulk job of `profiles` × `per` events, none with a unique_id or a time (the worker
 * stamps them with the time it accepted them), each about `pad` bytes, numbered by
 * `properties.n`. Each job's bytes differ (`properties.job`): the same bytes signed in
 * the same second would be the same signature, refused as a replay.
 */
function job(profiles, per, pad) {
  jobs += 1;
  return {
    data: {
      type: 'event-bulk-create-job',
      attributes: {
        'events-bulk-create': {
          data: Array.from({ length: profiles }, (_, p) => ({
            type: 'event-bulk-create',
            attributes: {
              profile: { data: { type: 'profile', attributes: { email: `p${p}@example.com` } } },
              events: {
                data: Array.from({ length: per }, (_, e) => ({
                  type: 'event',
                  attributes: {
                    properties: { n: p * per + e, job: jobs, pad: 'x'.repeat(pad) },
                    metric: { data: { type: 'metric', attributes: { name: 'Batch Probe' } } },
                  },
                })),
              },
            },
          })),
        },
      },
    },
  };
}

/** What the caller sends again after `queue_partial`: the entries from `entries` on,
 * the first of them without the events already queued. */
function rest(whole, { entries, events }) {
  const copy = structuredClone(whole);
  const list = copy.data.attributes['events-bulk-create'].data;
  const before = list.slice(0, entries).reduce((n, e) => n + e.attributes.events.data.length, 0);
  list.splice(0, entries);
  if (list.length) list[0].attributes.events.data.splice(0, events - before);
  return copy;
}

async function send(body) {
  const text = JSON.stringify(body);
  const headers = signedHeaders(secrets.EDGE_SIGNING_SECRET, text, { path: ROUTE });
  const res = await worker.fetch(`https://shop.example${ROUTE}`, { method: 'POST', headers, body: text });
  const r = await readResponse(res, `POST ${ROUTE}`);
  const sig = headers['x-klaviyo-edge-signature'].split('v2=')[1];
  return { ...r, delivery: `dlv_${sig.slice(0, 24)}` };
}

/** The `properties.n` of every event in `messages`, in order. */
function numbers(messages) {
  return messages
    .sort((a, b) => a.part - b.part)
    .flatMap((m) => m.work.call.body.data.attributes['events-bulk-create'].data)
    .flatMap((e) => e.attributes.events.data.map((ev) => ev.attributes.properties.n));
}

const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

test('a call of several messages that fit one batch is one sendBatch: a refused second send cannot split it', { timeout: 60_000 }, async () => {
  // About 200 KB: two messages, which fit one batch (256 KB).
  const body = job(4, 50, 1000);
  await arrange({ failAt: 2 });
  const r = await send(body);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.data.attributes.parts, 2);
  const { calls } = await record();
  assert.deepEqual(calls.map((c) => [c.kind, c.messages, c.ok]), [['sendBatch', 2, true]]);
  const got = await waitFor(async () => {
    const m = await queuedOf(r.delivery);
    return m.length >= 2 && m;
  }, { timeout: 20_000, interval: 100, what: 'both parts on the queue' });
  assert.equal(got.length, 2);
  assert.deepEqual(numbers(got), range(0, 200), 'every event once, in order');
});

test('the queue refusing the only batch: 503 queue_unavailable, and nothing reached the queue', { timeout: 60_000 }, async () => {
  await arrange({ failAt: 1 });
  const r = await send(job(4, 50, 1000));
  assert.equal(r.status, 503, r.text);
  assert.equal(r.json.errors[0].code, 'queue_unavailable');
  assert.equal(r.headers['retry-after'], '1');
  const { calls } = await record();
  assert.deepEqual(calls.map((c) => [c.kind, c.ok]), [['sendBatch', false]]);
  // A call sent after it reaches the consumer: had any of the refused one been queued,
  // it would have been received by then.
  await arrange();
  const later = await send(job(1, 1, 10));
  assert.equal(later.status, 202, later.text);
  await waitFor(async () => (await queuedOf(later.delivery)).length === 1, { timeout: 20_000, interval: 100, what: 'the later call on the queue' });
  assert.deepEqual(await queuedOf(r.delivery), [], 'nothing queued');
});

test('three batches, the second refused: 409 queue_partial names the leading events queued; the rest sent alone completes the job once', { timeout: 90_000 }, async () => {
  // About 660 KB, 600 events without unique_id or time: six messages, three batches.
  const whole = job(6, 100, 1000);
  await arrange({ failAt: 2 });
  const r = await send(whole);
  assert.equal(r.status, 409, r.text);
  assert.equal(r.headers['retry-after'], '1');
  assert.deepEqual(findSecrets(r.text, secrets), []);
  const e = r.json.errors[0];
  assert.equal(e.code, 'queue_partial');
  assert.equal(e.status, '409');
  assert.equal(e.meta.delivery, r.delivery);
  assert.equal(e.meta.resend, 'rest');
  const { calls } = await record();
  assert.deepEqual(calls.map((c) => [c.kind, c.ok]), [['sendBatch', true], ['sendBatch', false]]);
  assert.ok(calls.every((c) => c.messages <= 100 && (c.bytes ?? 0) <= 256_000), JSON.stringify(calls));
  assert.equal(e.meta.queued_parts, calls[0].messages);
  const { events, entries } = e.meta.queued;
  assert.ok(events > 0 && events < 600, `${events} events`);
  assert.match(e.detail, new RegExp(`first ${events} events`));
  const first = await waitFor(async () => {
    const m = await queuedOf(r.delivery);
    return m.length >= e.meta.queued_parts && m;
  }, { timeout: 20_000, interval: 100, what: 'the leading batch on the queue' });
  assert.deepEqual(numbers(first), range(0, events), 'exactly the events the answer names');

  // The caller sends the rest, signed anew.
  await arrange();
  const again = await send(rest(whole, { entries, events }));
  assert.equal(again.status, 202, again.text);
  const second = await waitFor(async () => {
    const m = await queuedOf(again.delivery);
    return m.length >= again.json.data.attributes.parts && m;
  }, { timeout: 20_000, interval: 100, what: 'the rest on the queue' });
  assert.deepEqual([...numbers(first), ...numbers(second)], range(0, 600), 'each event once, none twice');
  // Nothing more of the first delivery came late.
  assert.equal((await queuedOf(r.delivery)).length, e.meta.queued_parts);
  console.log(`# 600 events in ${e.meta.parts} messages: the first ${e.meta.queued_parts} (${events} events) queued before the refusal; the rest sent again: 600 once each`);
});

test('a binding without sendBatch gets one send per message; a refusal part-way is queue_partial too', { timeout: 90_000 }, async () => {
  await arrange({ noBatch: true });
  const ok = await send(job(6, 100, 1000));
  assert.equal(ok.status, 202, ok.text);
  const parts = ok.json.data.attributes.parts;
  assert.ok(parts >= 3);
  assert.deepEqual((await record()).calls.map((c) => c.kind), Array(parts).fill('send'));
  const all = await waitFor(async () => {
    const m = await queuedOf(ok.delivery);
    return m.length >= parts && m;
  }, { timeout: 20_000, interval: 100, what: 'every part' });
  assert.deepEqual(numbers(all), range(0, 600));

  await arrange({ noBatch: true, failAt: 3 });
  const r = await send(job(6, 100, 1000));
  assert.equal(r.status, 409, r.text);
  const e = r.json.errors[0];
  assert.equal(e.code, 'queue_partial');
  assert.equal(e.meta.queued_parts, 2);
  const first = await waitFor(async () => {
    const m = await queuedOf(r.delivery);
    return m.length >= 2 && m;
  }, { timeout: 20_000, interval: 100, what: 'the two parts queued' });
  assert.deepEqual(numbers(first), range(0, e.meta.queued.events));
});

test('signedFetch does not send a call answered queue_partial again: its leading part stays queued once', { timeout: 60_000 }, async () => {
  const text = JSON.stringify(job(6, 100, 1000));
  await arrange({ failAt: 2 });
  const res = await signedFetch(new URL(ROUTE, url).href, text, secrets.EDGE_SIGNING_SECRET, { retryDelayMs: 10 });
  const r = await readResponse(res, `signedFetch ${ROUTE}`);
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.errors[0].code, 'queue_partial');
  // One attempt: the first batch taken, the second refused, and no second attempt.
  assert.deepEqual((await record()).calls.map((c) => [c.kind, c.ok]), [['sendBatch', true], ['sendBatch', false]]);
});

test('a queue bound without DELIVERY_DEAD_LETTERS: a signed call is a 500 naming it, nothing queued or sent (a refusal would have nowhere to go)', { timeout: 60_000 }, async () => {
  emu.reset();
  await arrange({ noDeadLetters: true });
  const r = await send(job(1, 2, 10));
  assert.equal(r.status, 500, r.text);
  assert.equal(r.json.errors[0].code, 'missing_setting');
  assert.equal(r.json.errors[0].detail, 'DELIVERY_DEAD_LETTERS is not set');
  assert.deepEqual((await record()).calls, [], 'nothing handed to the queue');
  assert.equal(emu.requests({ pathPrefix: '/api/' }).count, 0, 'nothing sent to Klaviyo');
  // A verified webhook with nowhere to forward it queues nothing: answered 200 as ever
  // (a 500 would have Klaviyo retry it for nothing).
  const hook = webhookRequest(secrets.KLAVIYO_WEBHOOK_SECRET, { webhookId: `01JNODLQ${String(Date.now()).padStart(18, '0')}` });
  const answered = await readResponse(await worker.fetch('https://shop.example/webhooks/klaviyo', { method: 'POST', headers: hook.headers, body: hook.body }), 'POST /webhooks/klaviyo');
  assert.equal(answered.status, 200, answered.text);
  // Bound again: calls are taken.
  await arrange();
  const again = await send(job(1, 2, 10));
  assert.equal(again.status, 202, again.text);
});
