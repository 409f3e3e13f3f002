// Durable delivery and the shared replay guard, in workerd (Miniflare) with real Queues
// and Durable Objects: four instances of the worker (separate isolates) share one
// DELIVERY_QUEUE, whose consumer is the first, and one REPLAY_GUARD namespace; a fifth
// worker consumes the dead-letter queue into an HTTP sink. Klaviyo is the emulator,
// with faults; the webhook receiver is a sink that can be down.
//
// The outage test waits out a 60 s outage by design: its timer is the outage, not a
// wait for work (everything else is polled with a deadline).
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Miniflare } from 'miniflare';
import { parse as parseToml } from 'smol-toml';
import {
  ROOT, EDGE_DIR, WORKER_PATH, COMPATIBILITY_DATE, JSON_API, SHOP_ORIGIN, isEdgeBuilt, NOT_BUILT,
  makeSecrets, fullBindings, signedHeaders, signedPost, orderBody, webhookRequest, startSink, readResponse, edgeBuildId,
} from './harness.mjs';
import { waitFor } from '../support/browser.mjs';
import { startEmulator } from '../emulator/server.mjs';

const INSTANCES = 4;

// The queues, the consumer and the Durable Object as the shop deploys them: read from
// js/edge/wrangler.toml, so the configuration shipped is the one tested. Only the batch
// timeout is shortened (5 s there), to keep the test quick.
const wrangler = parseToml(readFileSync(path.join(ROOT, 'js/edge/wrangler.toml'), 'utf8'));
const producers = Object.fromEntries(wrangler.queues.producers.map((p) => [p.binding, p.queue]));
const consumer = wrangler.queues.consumers[0];
const QUEUE = producers.DELIVERY_QUEUE;
const DEAD = producers.DELIVERY_DEAD_LETTERS;
const guard = wrangler.durable_objects.bindings.find((b) => b.name === 'REPLAY_GUARD');

test('wrangler.toml declares the queue, its consumer with a dead-letter queue, and the Durable Object with its migration', () => {
  assert.equal(QUEUE, consumer.queue, 'the worker consumes its own queue');
  assert.equal(consumer.dead_letter_queue, DEAD, 'refused and exhausted messages reach the same dead-letter queue');
  assert.ok(consumer.max_retries >= 50 && consumer.max_batch_size <= 100);
  assert.equal(guard.class_name, 'ReplayGuard');
  assert.ok(wrangler.migrations.some((m) => (m.new_sqlite_classes ?? m.new_classes ?? []).includes('ReplayGuard')));
});

let emu, hooks, dead, secrets, mf;

const rules = [
  { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
  { type: 'CompiledWasm', include: ['**/*.wasm'] },
  // The script-tag files the worker serves (text, and the .wasm as bytes).
  { type: 'Text', include: ['**/*.txt'] },
  { type: 'Data', include: ['**/*.bin'] },
];

/** Miniflare: edge-0 .. edge-3 (edge-0 consumes the queue and holds the Durable Object
 * class), and the dead-letter reader. `consumerScript`: another entry for edge-0 (the
 * crash test's). */
async function startWorkers({ consumerScript } = {}) {
  const bindings = fullBindings({ emu, secrets, forwardUrl: hooks.url });
  const edge = (i) => ({
    name: `edge-${i}`,
    modules: true,
    modulesRoot: i === 0 && consumerScript ? ROOT : EDGE_DIR,
    scriptPath: i === 0 && consumerScript ? consumerScript : WORKER_PATH,
    modulesRules: rules,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings,
    queueProducers: producers,
    durableObjects: { [guard.name]: { className: guard.class_name, scriptName: 'edge-0' } },
    ...(i === 0 ? {
      queueConsumers: {
        [consumer.queue]: {
          maxBatchSize: consumer.max_batch_size,
          maxBatchTimeout: 1,
          maxRetries: consumer.max_retries,
          deadLetterQueue: consumer.dead_letter_queue,
        },
      },
    } : {}),
  });
  const workers = [...Array.from({ length: INSTANCES }, (_, i) => edge(i)), {
    name: 'dead-letters',
    modules: true,
    script: `export default { async queue(batch, env) {
      for (const m of batch.messages) {
        await fetch(env.SINK, { method: 'POST', body: typeof m.body === 'string' ? m.body : JSON.stringify(m.body) });
        m.ack();
      }
    } };`,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: { SINK: dead.url },
    queueConsumers: { [DEAD]: { maxBatchSize: 10, maxBatchTimeout: 1 } },
  }];
  const m = new Miniflare({ workers, host: '127.0.0.1', port: 0 });
  await m.ready;
  return m;
}

before(async () => {
  if (!isEdgeBuilt()) throw new Error(NOT_BUILT);
  emu = await startEmulator({ port: 0 });
  hooks = await startSink();
  dead = await startSink();
  secrets = makeSecrets();
  mf = await startWorkers();
  console.log(`# edge build ${edgeBuildId()}`);
});

after(async () => {
  await mf?.dispose().catch(() => {});
  await hooks?.close();
  await dead?.close();
  await emu?.close();
});

/** A signed call to instance `i` (a fresh signature each time unless `headers` given). */
const signedCall = (i, route, body, options) => signedPost(mf, `edge-${i}`, secrets.EDGE_SIGNING_SECRET, route, body, options);


/** Accepted unique_ids at the emulator for `path` (duplicates kept). */
function accepted(pathPrefix) {
  return emu.requests({ pathPrefix, accepted: true }).requests.flatMap((r) => r.uniqueIds ?? []);
}

const counts = (ids) => ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map());

test('Klaviyo down for 60 s: 100 signed orders answered 202 at once, all delivered once each when it is back', { timeout: 300_000 }, async () => {
  emu.reset();
  emu.addFault({ status: 503, count: 1_000_000, path: '/api/event-bulk-create-jobs', name: 'outage' });
  const outageStarted = Date.now();
  const run = randomBytes(3).toString('hex');
  const ids = Array.from({ length: 100 }, (_, n) => `o-${run}-${n}`);
  const answers = [];
  for (const [n, id] of ids.entries()) answers.push(await signedCall(n % INSTANCES, '/api/orders', orderBody(id)));
  for (const a of answers) {
    assert.equal(a.status, 202, a.text);
    assert.equal(a.json.data.type, 'delivery');
    assert.match(a.json.data.id, /^dlv_[0-9a-f]{24}$/);
  }
  assert.equal(new Set(answers.map((a) => a.json.data.id)).size, 100, 'one delivery id per call');
  assert.equal(accepted('/api/event-bulk-create-jobs').length, 0, 'nothing got through during the outage');
  // The outage lasts 60 s, by design.
  await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (Date.now() - outageStarted))));
  const tried = emu.requests({ pathPrefix: '/api/event-bulk-create-jobs' }).count;
  emu.clearFaults();
  await waitFor(() => {
    const got = new Set(accepted('/api/event-bulk-create-jobs'));
    return ids.every((id) => got.has(id));
  }, { timeout: 200_000, interval: 500, what: 'the 100 orders at Klaviyo' });
  const placed = accepted('/api/event-bulk-create-jobs').filter((u) => ids.includes(u));
  const c = counts(placed);
  assert.deepEqual([...c.values()].filter((n) => n !== 1), [], 'each order once at Klaviyo');
  assert.equal(c.size, 100);
  assert.ok(tried >= 100, `the consumer kept trying during the outage (${tried} attempts)`);
  console.log(`# outage: ${tried} attempts answered 503 in 60 s; all 100 orders delivered ${((Date.now() - outageStarted) / 1000).toFixed(0)} s after the first`);
});

test('a 429 with Retry-After: 5 on the bulk endpoint: the consumer waits at least that long', { timeout: 120_000 }, async () => {
  emu.reset();
  emu.addFault({ status: 429, retryAfter: 5, count: 1, path: '/api/event-bulk-create-jobs' });
  const id = `o-429-${randomBytes(3).toString('hex')}`;
  assert.equal((await signedCall(1, '/api/orders', orderBody(id))).status, 202);
  await waitFor(() => accepted('/api/event-bulk-create-jobs').includes(id), { timeout: 60_000, interval: 200, what: 'the order after the 429' });
  const tries = emu.requests({ pathPrefix: '/api/event-bulk-create-jobs' }).requests;
  assert.equal(tries.length, 2, 'one 429, one 202');
  assert.equal(tries[0].status, 429);
  const waited = tries[1].at - tries[0].at;
  assert.ok(waited >= 5_000, `waited ${waited} ms`);
  console.log(`# 429 Retry-After 5: next attempt after ${(waited / 1000).toFixed(1)} s`);
});

test('a message Klaviyo refuses with 400 is not retried and lands in the dead-letter queue', { timeout: 60_000 }, async () => {
  emu.reset();
  dead.clear();
  emu.addFault({ status: 400, count: 1, path: '/api/event-bulk-create-jobs' });
  const id = `o-400-${randomBytes(3).toString('hex')}`;
  const answer = await signedCall(2, '/api/orders', orderBody(id));
  assert.equal(answer.status, 202);
  await waitFor(() => dead.received.length === 1, { timeout: 30_000, interval: 200, what: 'the dead letter' });
  const letter = JSON.parse(dead.received[0].body);
  assert.equal(letter.status, 400);
  assert.equal(letter.message.id, answer.json.data.id, 'the delivery the caller was told of');
  assert.ok(letter.message.work.call, 'the call, to be sent again by hand');
  assert.ok(!dead.received[0].body.includes(secrets.KLAVIYO_PRIVATE_KEY), 'no key in a message');
  // The consumer acknowledges a refused message right after dead-lettering it: no retry follows.
  assert.equal(emu.requests({ pathPrefix: '/api/event-bulk-create-jobs' }).count, 1, 'tried once');
});

test('a queued list call one of whose members Klaviyo refuses: the others are added, that one alone is dead-lettered', { timeout: 60_000 }, async () => {
  emu.reset();
  dead.clear();
  const run = randomBytes(3).toString('hex');
  const emails = [0, 1, 2].map((n) => `member-${run}-${n}@example.com`);
  // The first profile-import is refused (as Klaviyo refuses a phone number it does not take).
  emu.addFault({ status: 400, count: 1, path: '/api/profile-import' });
  const answer = await signedCall(3, '/api/lists/Y6nRLr/profiles', JSON.stringify({ profiles: emails.map((email) => ({ email })) }));
  assert.equal(answer.status, 202, answer.text);
  await waitFor(() => dead.received.length === 1, { timeout: 30_000, interval: 200, what: 'the dead letter' });
  const letter = JSON.parse(dead.received[0].body);
  assert.equal(letter.status, 400);
  assert.equal(letter.message.id, answer.json.data.id, 'the delivery the caller was told of');
  const left = letter.message.work.list;
  assert.equal(left.list_id, 'Y6nRLr');
  assert.deepEqual(left.imports.map(([, body]) => body.data.attributes.email), [emails[0]], 'the refused member alone');
  const [add] = emu.requests({ pathPrefix: '/api/lists/Y6nRLr/relationships/profiles' }).requests;
  assert.ok(add?.accepted, 'the rest were added');
  assert.equal(add.body.data.length, 2, 'the two others');
  // Before, the one refusal dead-lettered the whole message: nobody was added.
});

test('a queued list call throttled partway through its imports carries on where it stopped: no member is imported twice, all are added', { timeout: 60_000 }, async () => {
  emu.reset();
  dead.clear();
  const run = randomBytes(3).toString('hex');
  const emails = [0, 1, 2, 3, 4, 5].map((n) => `member-${run}-${n}@example.com`);
  // Three imports go through, the fourth meets Klaviyo's throttle.
  emu.addFault({ delayMs: 1, count: 3, path: '/api/profile-import' });
  emu.addFault({ status: 429, retryAfter: 1, count: 1, path: '/api/profile-import' });
  const answer = await signedCall(3, '/api/lists/Y6nRLr/profiles', JSON.stringify({ profiles: emails.map((email) => ({ email })) }));
  assert.equal(answer.status, 202, answer.text);
  await waitFor(() => emu.requests({ pathPrefix: '/api/lists/Y6nRLr/relationships/profiles' }).requests.some((r) => r.accepted), { timeout: 30_000, interval: 200, what: 'the add to the list' });
  const imports = emu.requests({ pathPrefix: '/api/profile-import' }).requests;
  assert.equal(imports.filter((r) => r.status === 429).length, 1);
  const imported = imports.filter((r) => r.accepted).map((r) => r.body.data.attributes.email);
  // Before, the retry began again at the first member: three of them imported twice.
  assert.deepEqual(imported.sort(), [...emails].sort(), 'each member imported once');
  const adds = emu.requests({ pathPrefix: '/api/lists/Y6nRLr/relationships/profiles' }).requests;
  assert.equal(adds.length, 1);
  assert.equal(adds[0].body.data.length, 6, 'every member added, in one call');
  assert.equal(dead.received.length, 0);
});

test('a queued list call whose add to the list is throttled after its imports: the retry adds them without importing anyone again', { timeout: 60_000 }, async () => {
  emu.reset();
  dead.clear();
  const run = randomBytes(3).toString('hex');
  const emails = [0, 1, 2].map((n) => `member-${run}-${n}@example.com`);
  // Klaviyo's add to a list takes 150 a minute: the likeliest place for a 429.
  emu.addFault({ status: 429, retryAfter: 1, count: 1, path: '/api/lists/Y6nRLr/relationships/profiles' });
  const answer = await signedCall(3, '/api/lists/Y6nRLr/profiles', JSON.stringify({ profiles: emails.map((email) => ({ email })) }));
  assert.equal(answer.status, 202, answer.text);
  const adds = () => emu.requests({ pathPrefix: '/api/lists/Y6nRLr/relationships/profiles' }).requests;
  await waitFor(() => adds().some((r) => r.accepted), { timeout: 30_000, interval: 200, what: 'the add after the 429' });
  assert.deepEqual(adds().map((r) => r.status), [429, 204]);
  assert.equal(adds()[1].body.data.length, 3);
  const imported = emu.requests({ pathPrefix: '/api/profile-import' }).requests.filter((r) => r.accepted).map((r) => r.body.data.attributes.email);
  // Before, the retry imported all three again.
  assert.deepEqual(imported.sort(), [...emails].sort(), 'each member imported once');
});

test('a queued bulk job Klaviyo refuses for one profile: the other profiles\' events are delivered, that profile\'s alone dead-lettered', { timeout: 60_000 }, async () => {
  emu.reset();
  dead.clear();
  const run = randomBytes(3).toString('hex');
  const uid = (p, e) => `bulk-${run}-${p}-${e}`;
  const body = JSON.stringify({
    data: {
      type: 'event-bulk-create-job',
      attributes: {
        'events-bulk-create': {
          data: [0, 1, 2].map((p) => ({
            type: 'event-bulk-create',
            attributes: {
              profile: { data: { type: 'profile', attributes: { email: `p${p}-${run}@example.com` } } },
              events: {
                data: [0, 1].map((e) => ({
                  type: 'event',
                  attributes: {
                    properties: { value: 12.5 },
                    metric: { data: { type: 'metric', attributes: { name: 'Viewed Product' } } },
                    unique_id: uid(p, e),
                  },
                })),
              },
            },
          })),
        },
      },
    },
  });
  // As Klaviyo refuses a phone number or email it does not take: one error, its pointer
  // at the second profile (and one at an event of the third).
  const pointer = (p, rest) => `/data/attributes/events-bulk-create/data/${p}/attributes/${rest}`;
  emu.addFault({
    status: 400,
    count: 1,
    path: '/api/event-bulk-create-jobs',
    body: {
      errors: [
        { id: 'a', code: 'invalid', title: 'Invalid input.', detail: 'Invalid email address', source: { pointer: pointer(1, 'profile/data/attributes/email') } },
        { id: 'b', code: 'invalid', title: 'Invalid input.', detail: 'Invalid metric', source: { pointer: pointer(2, 'events/data/1/attributes/metric') } },
      ],
    },
  });
  const answer = await signedCall(0, '/api/event-bulk-create-jobs', body);
  assert.equal(answer.status, 202, answer.text);
  await waitFor(() => dead.received.length === 1, { timeout: 30_000, interval: 200, what: 'the dead letter' });
  const letter = JSON.parse(dead.received[0].body);
  assert.equal(letter.status, 400);
  assert.equal(letter.message.id, answer.json.data.id, 'the delivery the caller was told of');
  const refused = letter.message.work.call.body.data.attributes['events-bulk-create'].data;
  assert.deepEqual(
    refused.map((e) => e.attributes.events.data.map((ev) => ev.attributes.unique_id)),
    [[uid(1, 0), uid(1, 1)], [uid(2, 1)]],
    'the refused profile\'s events and the refused event alone, each with its profile',
  );
  assert.equal(refused[0].attributes.profile.data.attributes.email, `p1-${run}@example.com`);
  for (const e of refused.flatMap((r) => r.attributes.events.data)) {
    assert.match(e.attributes.time, /^\d{4}-/, 'each keeps the time the worker accepted it');
  }
  const tries = emu.requests({ pathPrefix: '/api/event-bulk-create-jobs' }).requests;
  assert.deepEqual(tries.map((t) => t.status), [400, 202], 'refused, then the rest sent again at once');
  assert.deepEqual(
    accepted('/api/event-bulk-create-jobs').sort(),
    [uid(0, 0), uid(0, 1), uid(2, 0)].sort(),
    'every other event delivered, once',
  );
  // Before, the one refusal dead-lettered the job whole: none of the six reached Klaviyo.
});

test('a queued subscription job Klaviyo refuses for one profile: the others are subscribed to the list, that one alone is dead-lettered', { timeout: 60_000 }, async () => {
  emu.reset();
  dead.clear();
  const run = randomBytes(3).toString('hex');
  const emails = [0, 1, 2].map((n) => `sub-${run}-${n}@example.com`);
  const body = JSON.stringify({
    data: {
      type: 'profile-subscription-bulk-create-job',
      attributes: {
        custom_source: 'Footer form',
        profiles: {
          data: emails.map((email) => ({
            type: 'profile',
            attributes: { email, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } },
          })),
        },
      },
      relationships: { list: { data: { type: 'list', id: 'Y6nRLr' } } },
    },
  });
  emu.addFault({
    status: 400,
    count: 1,
    path: '/api/profile-subscription-bulk-create-jobs',
    body: { errors: [{ id: 'a', code: 'invalid', title: 'Invalid input.', detail: 'Invalid email address', source: { pointer: '/data/attributes/profiles/data/0/attributes/email' } }] },
  });
  const answer = await signedCall(1, '/api/profile-subscription-bulk-create-jobs', body);
  assert.equal(answer.status, 202, answer.text);
  await waitFor(() => dead.received.length === 1, { timeout: 30_000, interval: 200, what: 'the dead letter' });
  const letter = JSON.parse(dead.received[0].body);
  assert.equal(letter.status, 400);
  const left = letter.message.work.call.body.data;
  assert.deepEqual(left.attributes.profiles.data.map((p) => p.attributes.email), [emails[0]], 'the refused profile alone');
  assert.equal(left.relationships.list.data.id, 'Y6nRLr', 'with its list');
  const tries = emu.requests({ pathPrefix: '/api/profile-subscription-bulk-create-jobs' }).requests;
  assert.deepEqual(tries.map((t) => t.status), [400, 202], 'refused, then the rest sent again at once');
  const sent = tries[1].body.data;
  assert.deepEqual(sent.attributes.profiles.data.map((p) => p.attributes.email), emails.slice(1), 'the two others subscribed');
  assert.equal(sent.relationships.list.data.id, 'Y6nRLr');
  assert.equal(sent.attributes.custom_source, 'Footer form');
  // Before, the one refusal dead-lettered the job whole: nobody's consent reached Klaviyo.
});

/** Runs `fn` with edge-0 on `script` (in tests/edge/) in place of the worker, then the
 * workers again as before: disposed, so the messages `fn` left retried do not come back
 * into the next tests. */
async function withConsumer(script, fn) {
  await mf.dispose();
  mf = await startWorkers({ consumerScript: path.join(ROOT, 'tests/edge', script) });
  try {
    await fn();
  } finally {
    await mf.dispose();
    mf = await startWorkers();
  }
}

/** The watched consumer's record (tests/edge/settling-consumer.mjs): `body` POSTed sets
 * it up and clears it. */
async function consumerState(body) {
  const w = await mf.getWorker('edge-0');
  const res = await w.fetch('https://shop.example/__consumer', body ? { method: 'POST', body: JSON.stringify(body) } : {});
  return res.json();
}

/** How the watched consumer settled the message of order `id`, once it has:
 * [how, delaySeconds] each time, and how many dead letters were refused by then. */
const settledOf = (id, what) => waitFor(async () => {
  const s = await consumerState();
  const mine = s.settled.filter((x) => x.body.includes(id)).map((x) => [x.how, x.delaySeconds]);
  return mine.length ? { mine, refused: s.refused, logs: s.logs } : null;
}, { timeout: 30_000, interval: 200, what });

test('a refused message the dead-letter queue does not take, or with DELIVERY_DEAD_LETTERS unbound, is retried, not acknowledged; one whose private key is gone, or refused by Klaviyo (401, 403), waits for it', { timeout: 120_000 }, async () => {
  await withConsumer('settling-consumer.mjs', async () => {
    // Klaviyo refuses the order (400) and the dead-letter queue refuses the letter: the
    // message is the only trace of the call, so it stays queued.
    emu.reset();
    dead.clear();
    await consumerState({ refuseDeadLetters: 1 });
    emu.addFault({ status: 400, count: 1, path: '/api/event-bulk-create-jobs' });
    const refusedId = `o-dlq-${randomBytes(3).toString('hex')}`;
    assert.equal((await signedCall(1, '/api/orders', orderBody(refusedId))).status, 202);
    const s1 = await settledOf(refusedId, 'the refused message settled');
    assert.equal(s1.refused, 1, 'the dead-letter queue refused the letter');
    assert.deepEqual(s1.mine, [['retry', 60]], 'retried in 60 s, never acknowledged');
    assert.equal(dead.received.length, 0);
    assert.ok(s1.logs.some((l) => /refused \(400\): the dead-letter queue did not take it: retried$/.test(l)), s1.logs.join('\n'));

    // DELIVERY_DEAD_LETTERS unbound by the time the consumer reads the message (the fetch
    // path queues nothing without it): kept the same way, not acknowledged into nothing.
    emu.reset();
    await consumerState({ drop: ['DELIVERY_DEAD_LETTERS'] });
    emu.addFault({ status: 400, count: 1, path: '/api/event-bulk-create-jobs' });
    const unboundId = `o-nodlq-${randomBytes(3).toString('hex')}`;
    assert.equal((await signedCall(3, '/api/orders', orderBody(unboundId))).status, 202);
    const s3 = await settledOf(unboundId, 'the refused message settled without a dead-letter binding');
    assert.deepEqual(s3.mine, [['retry', 60]], 'retried in 60 s, never acknowledged');
    assert.equal(dead.received.length, 0);
    assert.ok(s3.logs.some((l) => /refused \(400\): DELIVERY_DEAD_LETTERS is not bound: retried$/.test(l)), s3.logs.join('\n'));
    // A failed attempt is logged too, by delivery, route and status; never a body.
    emu.reset();
    await consumerState({});
    emu.addFault({ status: 503, count: 1, path: '/api/event-bulk-create-jobs' });
    const busyId = `o-503-${randomBytes(3).toString('hex')}`;
    assert.equal((await signedCall(3, '/api/orders', orderBody(busyId))).status, 202);
    const s4 = await settledOf(busyId, 'the 503 message settled');
    assert.equal(s4.mine[0][0], 'retry');
    assert.ok(s4.logs.some((l) => /to \/api\/event-bulk-create-jobs: attempt 1 answered 503: retried in \d+ s$/.test(l)), s4.logs.join('\n'));
    for (const l of [...s1.logs, ...s3.logs, ...s4.logs]) assert.ok(!l.includes('ann@example.com') && !l.includes(busyId), `no body in a log line: ${l}`);

    // Unbound too, a bulk job Klaviyo refuses for one profile: the rest is delivered once
    // and acknowledged, the refused part queued again alone (not the whole job resent).
    emu.reset();
    await consumerState({ drop: ['DELIVERY_DEAD_LETTERS'] });
    const run = randomBytes(3).toString('hex');
    const job = JSON.stringify({
      data: { type: 'event-bulk-create-job', attributes: { 'events-bulk-create': { data: [0, 1].map((p) => ({
        type: 'event-bulk-create',
        attributes: {
          profile: { data: { type: 'profile', attributes: { email: `p${p}-${run}@example.com` } } },
          events: { data: [{ type: 'event', attributes: { properties: {}, metric: { data: { type: 'metric', attributes: { name: 'Viewed Product' } } }, unique_id: `part-${run}-${p}` } }] },
        },
      })) } } },
    });
    emu.addFault({
      status: 400, count: 1, path: '/api/event-bulk-create-jobs',
      body: { errors: [{ id: 'a', code: 'invalid', title: 'Invalid input.', detail: 'Invalid email address', source: { pointer: '/data/attributes/events-bulk-create/data/1/attributes/profile/data/attributes/email' } }] },
    });
    assert.equal((await signedCall(3, '/api/event-bulk-create-jobs', job)).status, 202);
    const s5 = await settledOf(`part-${run}-0`, 'the partly refused job settled');
    assert.deepEqual(s5.mine, [['ack', null]], 'acknowledged once the refused part was queued again');
    assert.ok(s5.logs.some((l) => /DELIVERY_DEAD_LETTERS is not bound: the refused part queued again alone$/.test(l)), s5.logs.join('\n'));
    // (The 503's order above may be delivered meanwhile: only this job's calls count.)
    const ours = (id) => id.startsWith(`part-${run}`);
    assert.deepEqual(accepted('/api/event-bulk-create-jobs').filter(ours), [`part-${run}-0`], 'the rest delivered once');
    const calls = emu.requests({ pathPrefix: '/api/event-bulk-create-jobs' }).requests.filter((r) => (r.uniqueIds ?? []).some(ours));
    assert.deepEqual(calls.map((r) => [r.status, r.uniqueIds]), [[400, [`part-${run}-0`, `part-${run}-1`]], [202, [`part-${run}-0`]]]);
    assert.equal(dead.received.length, 0);

    // The private key deleted from the consumer's settings: the order waits an hour for
    // it; nothing is sent, nothing is dead-lettered.
    emu.reset();
    await consumerState({ drop: ['KLAVIYO_PRIVATE_KEY'] });
    const waitingId = `o-key-${randomBytes(3).toString('hex')}`;
    assert.equal((await signedCall(2, '/api/orders', orderBody(waitingId))).status, 202);
    const s2 = await settledOf(waitingId, 'the keyless message settled');
    assert.deepEqual(s2.mine, [['retry', 3600]]);
    assert.equal(emu.requests({ pathPrefix: '/api/' }).count, 0, 'nothing sent without the key');
    assert.equal(dead.received.length, 0, 'not dead-lettered');

    // Klaviyo refuses the key (rotated in the wrong order, revoked, short of a scope):
    // the orders answered 202 meanwhile wait an hour for the operator, as for a missing
    // key, instead of going to the dead-letter queue one after another.
    for (const status of [401, 403]) {
      emu.reset();
      await consumerState({});
      emu.addFault({ status, count: 1, path: '/api/event-bulk-create-jobs' });
      const id = `o-${status}-${randomBytes(3).toString('hex')}`;
      assert.equal((await signedCall(1, '/api/orders', orderBody(id))).status, 202);
      const s6 = await settledOf(id, `the order Klaviyo answered ${status} settled`);
      assert.deepEqual(s6.mine, [['retry', 3600]], `${status}: waits for the key`);
      assert.equal(emu.requests({ pathPrefix: '/api/event-bulk-create-jobs' }).count, 1, 'tried once');
      assert.equal(dead.received.length, 0, `${status}: not dead-lettered`);
    }
  });
});

test('a backlog behind Klaviyo\'s rate limit drains at its rate: a 429 spends no retry, the messages held behind it neither', { timeout: 300_000 }, async () => {
  await withConsumer('settling-consumer.mjs', async () => {
    emu.reset();
    dead.clear();
    await consumerState({});
    // Klaviyo's steady limit on bulk jobs (150 a minute), scaled down: 5 every 4 s.
    const limit = 5;
    const windowMs = 4_000;
    emu.addFault({ rateLimit: { limit, windowMs }, path: '/api/event-bulk-create-jobs' });
    const run = randomBytes(3).toString('hex');
    const ids = Array.from({ length: 30 }, (_, n) => `o-rate-${run}-${n}`);
    const started = Date.now();
    const answers = await Promise.all(ids.map((id, n) => signedCall(n % INSTANCES, '/api/orders', orderBody(id))));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [202]);
    await waitFor(() => ids.every((id) => accepted('/api/event-bulk-create-jobs').includes(id)),
      { timeout: 240_000, interval: 500, what: 'every order through the rate limit' });
    const drained = (Date.now() - started) / 1000;
    const c = counts(accepted('/api/event-bulk-create-jobs'));
    assert.deepEqual(ids.filter((id) => c.get(id) !== 1), [], 'each order once at Klaviyo');
    assert.equal(dead.received.length, 0, 'nothing dead-lettered');
    const state = await consumerState();
    const mine = state.settled.filter((x) => x.body.includes(`o-rate-${run}`));
    // Before: each 429 and each message held behind one was a retry, whose backoff grew
    // with the attempts (waits of 10, 16, 32, 73, 137, 288 s at a 5-per-10-s limit).
    assert.deepEqual(mine.filter((x) => x.how === 'retry').map((x) => x.delaySeconds), [], 'no retry spent on the throttle');
    const throttled = emu.requests({ pathPrefix: '/api/event-bulk-create-jobs' }).requests.filter((r) => r.status === 429).length;
    assert.ok(state.logs.some((l) => /throttled, queued again in \d+ s \(no retry spent\)$/.test(l)), state.logs.join('\n'));
    const ideal = (ids.length / limit - 1) * (windowMs / 1000);
    console.log(`# rate limit ${limit} per ${windowMs / 1000} s: 30 orders delivered in ${drained.toFixed(0)} s (the limit allows ${ideal.toFixed(0)} s), ${throttled} answers 429, ${mine.length} settles, none a retry`);
  });
});

test('a route that answers nothing but 429 holds a message a week at most: then it is dead-lettered, its letter as first queued', { timeout: 120_000 }, async () => {
  await withConsumer('settling-consumer.mjs', async () => {
    emu.reset();
    dead.clear();
    await consumerState({});
    // A proxy's rate limit in front of Klaviyo, or an account throttled for good.
    emu.addFault({ status: 429, retryAfter: 1, count: Infinity, path: '/api/event-bulk-create-jobs' });
    const id = `o-always-429-${randomBytes(3).toString('hex')}`;
    assert.equal((await signedCall(1, '/api/orders', orderBody(id))).status, 202);
    // Each 429 queues it again as a new message, stamped with the first 429's time.
    const twice = await waitFor(async () => {
      const s = await consumerState();
      const mine = s.settled.filter((x) => x.body.includes(id));
      return mine.length >= 2 ? mine : null;
    }, { timeout: 30_000, interval: 200, what: 'the order throttled twice' });
    assert.deepEqual(twice.map((x) => x.how), ['ack', 'ack'], 'queued again, no retry spent');
    const since = JSON.parse(twice[1].body).throttled_since;
    assert.ok(Number.isInteger(since) && Math.abs(since - Date.now() / 1000) < 60, `stamped: ${twice[1].body.slice(-60)}`);
    assert.equal(dead.received.length, 0);

    // Its first 429 dated a week and a minute back, as days of 429s would: the next one
    // dead-letters it.
    await consumerState({ ageThrottledS: 7 * 86_400 + 60 });
    await waitFor(() => dead.received.length > 0, { timeout: 30_000, interval: 200, what: 'the dead letter' });
    const letter = JSON.parse(dead.received[0].body);
    assert.equal(letter.status, 429);
    assert.ok(JSON.stringify(letter.message).includes(id));
    assert.equal(letter.message.throttled_since, undefined, 'sent again by hand, it starts afresh');
    const s = await consumerState();
    assert.ok(s.logs.some((l) => /: throttled for 168 h, longer than 168 h: dead-lettered$/.test(l)), s.logs.join('\n'));
    assert.deepEqual([...new Set(emu.requests({ pathPrefix: '/api/' }).requests.map((r) => r.status))], [429]);
    emu.clearFaults();
  });
});

test('an error thrown in the consumer mid-batch: the rest is delivered again, nothing twice at Klaviyo', { timeout: 120_000 }, async () => {
  await withConsumer('crashing-consumer.mjs', async () => {
    emu.reset();
    const run = randomBytes(3).toString('hex');
    const ids = Array.from({ length: 8 }, (_, n) => `o-crash-${run}-${n}`);
    // Sent within the consumer's batch window (1 s), so that they make one batch.
    for (const id of ids) assert.equal((await signedCall(1, '/api/orders', orderBody(id))).status, 202);
    await waitFor(() => ids.every((id) => accepted('/api/event-bulk-create-jobs').includes(id)),
      { timeout: 60_000, interval: 200, what: 'every order after the crash' });
    const c = counts(accepted('/api/event-bulk-create-jobs').filter((u) => ids.includes(u)));
    assert.deepEqual([...c.entries()].filter(([, n]) => n !== 1), [], 'none twice');
    const crashes = Number((await (await (await mf.getWorker('edge-0')).fetch('https://shop.example/__crashes')).text()) || 0);
    assert.equal(crashes, 1, 'the consumer did crash once');
  });
});

test('a signed call replayed to another instance is refused; 1,000 signatures over 4 instances are each accepted once', { timeout: 180_000 }, async () => {
  emu.reset();
  const event = (n) => JSON.stringify({ data: { type: 'event', attributes: {
    properties: { n }, unique_id: `r-${n}-${randomBytes(4).toString('hex')}`,
    metric: { data: { type: 'metric', attributes: { name: 'Replay Probe' } } },
    profile: { data: { type: 'profile', attributes: { email: 'ann@example.com' } } },
  } } });
  const first = event(0);
  const a = await signedCall(0, '/api/events', first);
  assert.equal(a.status, 202, a.text);
  for (let i = 1; i < INSTANCES; i++) {
    const again = await signedCall(i, '/api/events', first, { headers: a.sent });
    assert.equal(again.status, 401, `instance ${i}: ${again.text}`);
    assert.match(again.json.errors[0].detail, /already|replay/i);
  }
  const statuses = [];
  const sent = [];
  for (let n = 1; n <= 1000; n++) {
    const body = event(n);
    const r = await signedCall(n % INSTANCES, '/api/events', body);
    statuses.push(r.status);
    sent.push([body, r.sent, n % INSTANCES]);
  }
  assert.equal(statuses.filter((s) => s === 202).length, 1000, 'all accepted');
  // And each refused everywhere else.
  let refused = 0;
  for (const [body, headers, i] of sent.slice(0, 100)) {
    const r = await signedCall((i + 1) % INSTANCES, '/api/events', body, { headers });
    if (r.status === 401) refused += 1;
  }
  assert.equal(refused, 100, 'a second use is refused on another instance');
});

test('a webhook forward whose receiver is down for 30 s arrives once it is back', { timeout: 180_000 }, async () => {
  hooks.clear();
  hooks.setStatus(503);
  const downSince = Date.now();
  const webhookId = `01JW${randomBytes(10).toString('hex').toUpperCase()}`.slice(0, 26);
  const { body, headers } = webhookRequest(secrets.KLAVIYO_WEBHOOK_SECRET, { webhookId });
  const worker = await mf.getWorker('edge-3');
  const res = await readResponse(await worker.fetch('https://shop.example/webhooks/klaviyo', { method: 'POST', headers, body }), 'webhook');
  assert.equal(res.status, 200, res.text);
  await waitFor(() => hooks.received.length >= 1, { timeout: 30_000, interval: 200, what: 'a first forward attempt' });
  // The receiver is down for 30 s, by design.
  await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - downSince))));
  const whileDown = hooks.received.length;
  hooks.setStatus(200);
  await waitFor(() => hooks.received.some((r) => r.answered === 200), { timeout: 120_000, interval: 500, what: 'the forward after the outage' });
  const delivered = hooks.received.filter((r) => r.answered === 200);
  assert.equal(delivered.length, 1, 'once');
  assert.equal(delivered[0].body, body, 'as Klaviyo sent it');
  assert.match(delivered[0].headers['x-klaviyo-edge-signature'], /^t=\d+,v2=[0-9a-f]{64}$/);
  console.log(`# webhook forward: ${whileDown} attempts while down; delivered ${((Date.now() - downSince) / 1000).toFixed(0)} s after the webhook`);
});

test('the 202 of a queued call carries no secret and names its delivery', async () => {
  const r = await signedCall(0, '/api/orders', orderBody(`o-plain-${randomBytes(3).toString('hex')}`));
  assert.equal(r.status, 202);
  assert.equal(r.headers['content-type'], JSON_API);
  for (const s of Object.values(secrets)) assert.ok(!r.text.includes(s));
  assert.deepEqual(Object.keys(r.json.data.attributes).sort(), ['parts', 'status']);
  assert.equal(SHOP_ORIGIN, 'https://shop.example');
});
