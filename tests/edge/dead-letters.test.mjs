// Dead letters kept by the worker (README, "Durable delivery"), in workerd
// (Miniflare) with real Queues and KV: edge-0 consumes the delivery queue (few retries,
// its dead-letter queue the shipped one) and the dead-letter queue, which it keeps in
// DEAD_LETTER_STORE; the backend lists, reads, re-sends and deletes letters with signed
// calls. Klaviyo is the emulator, with faults. Other instances lack a binding each.
//
// Some letters are put on the dead-letter queue directly (through Miniflare's producer
// binding), for the kinds the consumer writes rarely (a 429 after a week, an unreadable
// message) and for a page of more than 100: the queue and the store are real all the same.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Miniflare } from 'miniflare';
import { parse as parseToml } from 'smol-toml';
import {
  ROOT, EDGE_DIR, WORKER_PATH, COMPATIBILITY_DATE, JSON_API, SHOP_ORIGIN, isEdgeBuilt, NOT_BUILT,
  makeSecrets, fullBindings, signedHeaders, signedPost, orderBody, readResponse, edgeBuildId, leaksInLog,
} from './harness.mjs';
import { waitFor } from '../support/browser.mjs';
import { startEmulator } from '../emulator/server.mjs';

const DEFAULT_DEAD_QUEUE = 'klaviyo-deliveries-dead';
const STORE = 'DEAD_LETTER_STORE';
// Few retries, so that a message runs out of them in seconds (76 shipped).
const MAX_RETRIES = 2;
const BULK = '/api/event-bulk-create-jobs';
const KEY = /^[0-9]{13}-[A-Za-z0-9_-]{1,128}$/;
// A well-formed key no letter has.
const UNKNOWN_KEY = '0000000000001-no-such-letter';

// The queues as the shop deploys them, read from js/edge/wrangler.toml; the dead-letter
// consumer may be missing before the feature, so the rest of the file still runs.
const wrangler = parseToml(readFileSync(path.join(ROOT, 'js/edge/wrangler.toml'), 'utf8'));
const producers = Object.fromEntries(wrangler.queues.producers.map((p) => [p.binding, p.queue]));
const QUEUE = producers.DELIVERY_QUEUE;
const DEAD = wrangler.vars?.DEAD_LETTER_QUEUE ?? DEFAULT_DEAD_QUEUE;
const deliveryConsumer = wrangler.queues.consumers.find((c) => c.queue === QUEUE);
const deadConsumer = wrangler.queues.consumers.find((c) => c.queue === DEAD);

test('wrangler.toml keeps letters: a consumer of the dead-letter queue, the DEAD_LETTER_STORE KV namespace, and the queue named to the worker', () => {
  assert.ok(deadConsumer, `a [[queues.consumers]] for ${DEAD}`);
  // DEAD is the worker's default name unless [vars] names it: it knows the batches to keep.
  assert.equal(producers.DELIVERY_DEAD_LETTERS, DEAD, 'refused messages are sent to the queue the worker keeps');
  assert.equal(deliveryConsumer.dead_letter_queue, DEAD, 'exhausted messages reach it too');
  assert.notEqual(deadConsumer.dead_letter_queue, DEAD, 'a letter not kept never loops back into its own queue');
  const kv = (wrangler.kv_namespaces ?? []).find((k) => k.binding === STORE);
  // (Its id may be left out: wrangler deploy provisions the namespace.)
  assert.ok(kv, `a [[kv_namespaces]] binding ${STORE}`);
});

let emu, secrets, mf;

const rules = [
  { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
  { type: 'CompiledWasm', include: ['**/*.wasm'] },
  { type: 'Text', include: ['**/*.txt'] },
  { type: 'Data', include: ['**/*.bin'] },
];

/** One edge worker's options: `store` binds DEAD_LETTER_STORE, `queues` the producers,
 * `consume` makes it the consumer of both queues, `script` another entry (in ROOT). */
function edge(name, { store = true, queues = producers, consume = false, extra = {}, script } = {}) {
  const bindings = fullBindings({ emu, secrets, extra });
  if (wrangler.vars?.DEAD_LETTER_QUEUE !== undefined) bindings.DEAD_LETTER_QUEUE = wrangler.vars.DEAD_LETTER_QUEUE;
  return {
    name,
    modules: true,
    modulesRoot: script ? ROOT : EDGE_DIR,
    scriptPath: script ?? WORKER_PATH,
    modulesRules: rules,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings,
    queueProducers: queues,
    ...(store ? { kvNamespaces: [STORE] } : {}),
    ...(consume ? {
      queueConsumers: {
        ...(consume === 'dead' ? {} : {
          [QUEUE]: {
            maxBatchSize: deliveryConsumer.max_batch_size,
            maxBatchTimeout: 1,
            maxRetries: MAX_RETRIES,
            deadLetterQueue: DEAD,
          },
        }),
        [DEAD]: { maxBatchSize: deadConsumer?.max_batch_size ?? 10, maxBatchTimeout: 1 },
      },
    } : {}),
  };
}

before(async () => {
  if (!isEdgeBuilt()) throw new Error(NOT_BUILT);
  emu = await startEmulator({ port: 0 });
  secrets = makeSecrets();
  const { DELIVERY_QUEUE: _q, ...noDeliveryQueue } = producers;
  mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: [
      edge('edge-0', { consume: true }),
      edge('edge-1', { store: false }),
      edge('edge-2', { queues: noDeliveryQueue }),
      // A [vars] string where the binding should be.
      edge('edge-3', { store: false, extra: { [STORE]: 'dlq-kv-name' } }),
    ],
  });
  await mf.ready;
  console.log(`# edge build ${edgeBuildId()}`);
});

after(async () => {
  await mf?.dispose().catch(() => {});
  await emu?.close();
});

/** A signed POST to `edge-<i>` (a fresh signature unless `headers` given). */
const signedCall = (i, route, body, options) => signedPost(mf, `edge-${i}`, secrets.EDGE_SIGNING_SECRET, route, body, options);

// Signatures are one use each and dated to the second: the same body to the same route
// twice in a second is a replay. Trailing spaces of a counter make each body its own.
let seq = 0;
const call = (route, value, i = 0) => signedCall(i, route, JSON.stringify(value) + ' '.repeat(seq++ % 1000));


/** Every letter listed, page after page; asserts each page's shape. */
async function listAll(i = 0) {
  const all = [];
  const pages = [];
  let cursor = null;
  do {
    const r = await call('/api/dead-letters', cursor === null ? {} : { cursor }, i);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['content-type'], JSON_API);
    assert.ok(r.json.data.length <= 100, 'at most 100 a page');
    pages.push(r.json.data.length);
    all.push(...r.json.data);
    cursor = r.json.meta.next_cursor;
    assert.ok(cursor === null || typeof cursor === 'string', 'next_cursor: text or null');
    assert.ok(pages.length < 50, 'the paging ends');
  } while (cursor !== null);
  return Object.assign(all, { pages });
}

/** The listed letter of delivery `id` with reason `reason`, once there. */
const letterOf = (id, reason, what) => waitFor(async () => (await listAll())
  .find((l) => l.attributes.delivery === id && l.attributes.reason === reason), { timeout: 45_000, interval: 250, what });

/** The shape every listed letter has: its id sorts by the message's time on the queue. */
function assertListed(l) {
  assert.equal(l.type, 'dead-letter');
  assert.match(l.id, KEY);
  // ISO 8601, to the second or finer.
  const at = l.attributes.queued_at;
  assert.match(at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.equal(Math.floor(Date.parse(at) / 1000), Math.floor(Number(l.id.slice(0, 13)) / 1000), `the key opens with that time: ${l.id} ${at}`);
}

/** Bodies the emulator got with order `id` among their unique_ids. */
const attemptsOf = (id) => emu.requests({ pathPrefix: BULK }).requests.filter((r) => (r.uniqueIds ?? []).includes(id));
const acceptedOf = (id) => attemptsOf(id).filter((r) => r.accepted);

/** Puts `text` on the dead-letter queue as the consumer does (a text message) and
 * returns its listed letter, once kept. */
async function injectLetter(text) {
  const before = new Set((await listAll()).map((l) => l.id));
  const q = await mf.getQueueProducer('DELIVERY_DEAD_LETTERS', 'edge-0');
  await q.send(text, { contentType: 'text' });
  const kv = await mf.getKVNamespace(STORE, 'edge-0');
  return waitFor(async () => {
    const fresh = (await listAll()).filter((l) => !before.has(l.id));
    for (const l of fresh) if ((await kv.get(`letter:${l.id}`)) === text) return l;
    return null;
  }, { timeout: 30_000, interval: 250, what: 'the injected letter kept' });
}

test('an order Klaviyo refuses (400) is kept as a letter: listed, read, and sent again once Klaviyo takes it, delivered once, no longer listed', { timeout: 120_000 }, async () => {
  emu.reset();
  emu.addFault({ status: 400, count: 1, path: BULK });
  const orderId = `o-dl-400-${randomBytes(3).toString('hex')}`;
  const answer = await signedCall(0, '/api/orders', orderBody(orderId));
  assert.equal(answer.status, 202, answer.text);
  const delivery = answer.json.data.id;
  assert.match(delivery, /^dlv_[0-9a-f]{24}$/);

  const listed = await letterOf(delivery, 'refused', 'the refused order listed');
  assertListed(listed);
  assert.deepEqual(
    { ...listed.attributes, queued_at: undefined },
    { reason: 'refused', status: 400, delivery, part: '1/1', route: BULK, queued_at: undefined },
  );
  assert.ok(Math.abs(Date.parse(listed.attributes.queued_at) - Date.now()) < 120_000, 'dated now');

  const read = await call('/api/dead-letters/read', { id: listed.id });
  assert.equal(read.status, 200, read.text);
  assert.equal(read.headers['content-type'], JSON_API);
  assert.equal(read.json.data.id, listed.id);
  const { letter, ...meta } = read.json.data.attributes;
  assert.deepEqual(meta, listed.attributes, 'the list\'s metadata');
  assert.equal(letter.status, 400);
  assert.equal(letter.message.id, delivery, 'the delivery the caller was told of');
  assert.ok(JSON.stringify(letter.message.work).includes(orderId), 'the call, as queued');
  // Kept as written, with no expiry.
  const kv = await mf.getKVNamespace(STORE, 'edge-0');
  assert.deepEqual(JSON.parse(await kv.get(`letter:${listed.id}`)), letter);
  const { keys } = await kv.list({ prefix: `letter:${listed.id}` });
  assert.equal(keys.length, 1);
  assert.equal(keys[0].expiration, undefined, 'no expiry');

  emu.clearFaults();
  const resend = await call('/api/dead-letters/resend', { ids: [listed.id] });
  assert.equal(resend.status, 200, resend.text);
  assert.deepEqual(resend.json.data, [{ type: 'dead-letter', id: listed.id, attributes: { result: 'queued', delivery } }]);
  assert.ok(!(await listAll()).some((l) => l.id === listed.id), 'no longer listed once queued');
  await waitFor(() => acceptedOf(orderId).length > 0, { timeout: 30_000, interval: 200, what: 'the order at Klaviyo after the resend' });
  const tries = attemptsOf(orderId);
  assert.deepEqual(tries.map((r) => r.status), [400, 202], 'refused once, then accepted once');
  assert.deepEqual(tries[1].body, tries[0].body, 'sent again as first queued: same unique_id, same time');
  assert.equal((await call('/api/dead-letters/read', { id: listed.id })).status, 404);
  assert.deepEqual(leaksInLog(secrets), [], 'no secret in a letter shown');
});

test('a message that runs out of retries (503 every time) is kept as it was queued, reason retries; sent again once Klaviyo is back, it is delivered once', { timeout: 120_000 }, async () => {
  emu.reset();
  emu.addFault({ status: 503, count: Infinity, path: BULK, name: 'down' });
  const orderId = `o-dl-503-${randomBytes(3).toString('hex')}`;
  const answer = await signedCall(0, '/api/orders', orderBody(orderId));
  assert.equal(answer.status, 202, answer.text);
  const delivery = answer.json.data.id;

  const listed = await letterOf(delivery, 'retries', 'the exhausted order listed');
  assertListed(listed);
  assert.deepEqual(
    { ...listed.attributes, queued_at: undefined },
    { reason: 'retries', status: null, delivery, part: '1/1', route: BULK, queued_at: undefined },
  );
  assert.equal(attemptsOf(orderId).length, MAX_RETRIES + 1, 'every attempt Queues allows, then kept');

  const read = await call('/api/dead-letters/read', { id: listed.id });
  assert.equal(read.status, 200, read.text);
  const { letter } = read.json.data.attributes;
  assert.equal(letter.id, delivery, 'the delivery message itself');
  assert.ok(JSON.stringify(letter.work).includes(orderId));

  emu.clearFaults();
  const resend = await call('/api/dead-letters/resend', { ids: [listed.id] });
  assert.equal(resend.status, 200, resend.text);
  assert.deepEqual(resend.json.data, [{ type: 'dead-letter', id: listed.id, attributes: { result: 'queued', delivery } }]);
  await waitFor(() => acceptedOf(orderId).length > 0, { timeout: 30_000, interval: 200, what: 'the order at Klaviyo after the resend' });
  const tries = attemptsOf(orderId);
  assert.deepEqual(tries.map((r) => r.status), [...Array(MAX_RETRIES + 1).fill(503), 202]);
  assert.deepEqual(tries.at(-1).body, tries[0].body, 'as first queued');
  assert.ok(!(await listAll()).some((l) => l.id === listed.id));
});

test('letters of each kind: a 429 is throttled, what cannot be read is unreadable and not re-sent; results in the order asked; delete removes letters', { timeout: 120_000 }, async () => {
  emu.reset();
  emu.addFault({ status: 400, count: 1, path: BULK });
  const orderId = `o-dl-kinds-${randomBytes(3).toString('hex')}`;
  const answer = await signedCall(0, '/api/orders', orderBody(orderId));
  assert.equal(answer.status, 202, answer.text);
  const delivery = answer.json.data.id;
  const refused = await letterOf(delivery, 'refused', 'the refused order listed');
  const { letter } = (await call('/api/dead-letters/read', { id: refused.id })).json.data.attributes;

  // The same message as the consumer dead-letters it after a week of 429s.
  const throttledText = JSON.stringify({ status: 429, message: letter.message });
  const throttled = await injectLetter(throttledText);
  assert.deepEqual(
    { ...throttled.attributes, queued_at: undefined },
    { reason: 'throttled', status: 429, delivery, part: '1/1', route: BULK, queued_at: undefined },
  );
  // What the consumer could not read (kept as a string), and what is no letter at all.
  const garbled = await injectLetter(JSON.stringify({ status: 0, message: 'v=9;not a delivery' }));
  const stranger = await injectLetter('{"hello":"world"}');
  const text = await injectLetter('not json at all');
  for (const l of [throttled, garbled, stranger, text]) assertListed(l);
  for (const l of [garbled, stranger, text]) {
    assert.equal(l.attributes.reason, 'unreadable', l.id);
    assert.equal(l.attributes.delivery, null);
  }
  const strangerRead = await call('/api/dead-letters/read', { id: stranger.id });
  assert.equal(strangerRead.status, 200, strangerRead.text);
  assert.deepEqual(strangerRead.json.data.attributes.letter, { hello: 'world' }, 'the stored value as JSON');
  // Listed oldest first.
  const ids = (await listAll()).map((l) => l.id);
  assert.deepEqual(ids, [...ids].sort());
  assert.ok(ids.indexOf(refused.id) < ids.indexOf(throttled.id) && ids.indexOf(throttled.id) < ids.indexOf(text.id));

  const resend = await call('/api/dead-letters/resend', { ids: [garbled.id, UNKNOWN_KEY, throttled.id, text.id] });
  assert.equal(resend.status, 200, resend.text);
  assert.deepEqual(resend.json.data.map((d) => [d.id, d.attributes.result]), [
    [garbled.id, 'not_resendable'], [UNKNOWN_KEY, 'not_found'], [throttled.id, 'queued'], [text.id, 'not_resendable'],
  ]);
  assert.equal(resend.json.data[2].attributes.delivery, delivery);
  await waitFor(() => acceptedOf(orderId).length > 0, { timeout: 30_000, interval: 200, what: 'the throttled letter\'s order at Klaviyo' });
  let left = (await listAll()).map((l) => l.id);
  assert.ok(!left.includes(throttled.id), 'the queued one is gone');
  for (const l of [refused, garbled, stranger, text]) assert.ok(left.includes(l.id), 'the others are kept');

  const del = await call('/api/dead-letters/delete', { ids: [refused.id, garbled.id, stranger.id, text.id] });
  assert.equal(del.status, 200, del.text);
  assert.deepEqual(del.json.data, [refused, garbled, stranger, text].map((l) => ({ type: 'dead-letter', id: l.id, attributes: { result: 'deleted' } })));
  left = (await listAll()).map((l) => l.id);
  for (const l of [refused, garbled, stranger, text]) assert.ok(!left.includes(l.id), 'deleted');
  const gone = await call('/api/dead-letters/read', { id: refused.id });
  assert.equal(gone.status, 404, gone.text);
  assert.equal(gone.headers['content-type'], JSON_API);
  assert.ok(Array.isArray(gone.json.errors));
  assert.equal(acceptedOf(orderId).length, 1, 'deleting the refused letter sent nothing');
  // Only a queued letter names a delivery.
  for (const d of resend.json.data.filter((x) => x.attributes.result !== 'queued')) {
    assert.deepEqual(Object.keys(d.attributes), ['result'], `${d.attributes.result}: ${JSON.stringify(d.attributes)}`);
  }
});

test('refusals: a malformed body or id is a 400 pointing at it, an unsigned call 401, a shop page 403, a missing or unusable binding 500 naming it', { timeout: 60_000 }, async () => {
  const bad = async (route, value, pointer) => {
    const r = typeof value === 'string' ? await signedCall(0, route, value) : await call(route, value);
    assert.equal(r.status, 400, `${route} ${JSON.stringify(value)}: ${r.text}`);
    assert.equal(r.headers['content-type'], JSON_API);
    if (pointer) assert.equal(r.json.errors[0].source?.pointer, pointer, `${route} ${JSON.stringify(value)}`);
    return r;
  };
  await bad('/api/dead-letters/resend', { ids: ['nope'] }, '/ids/0');
  await bad('/api/dead-letters/delete', { ids: [UNKNOWN_KEY, '0000000000002-no-such-letter', '1234-short'] }, '/ids/2');
  // Named twice, a letter KV still lists after its delete would be sent twice.
  await bad('/api/dead-letters/resend', { ids: [UNKNOWN_KEY, UNKNOWN_KEY] }, '/ids/1');
  await bad('/api/dead-letters/resend', { ids: [`${'1'.repeat(13)}-a/b`] }, '/ids/0');
  await bad('/api/dead-letters/read', { id: 'x' }, '/id');
  await bad('/api/dead-letters', { cursor: 42 }, '/cursor');
  await bad('/api/dead-letters/resend', { ids: [] });
  await bad('/api/dead-letters/delete', { ids: Array.from({ length: 101 }, (_, n) => `${String(n).padStart(13, '0')}-a`) });
  await bad('/api/dead-letters/resend', { ids: [UNKNOWN_KEY], all: true });
  await bad('/api/dead-letters', 'not json');

  const worker = await mf.getWorker('edge-0');
  const body = '{}';
  const unsigned = await readResponse(await worker.fetch('https://shop.example/api/dead-letters', { method: 'POST', headers: { 'content-type': JSON_API }, body }), 'unsigned');
  assert.equal(unsigned.status, 401, unsigned.text);
  const page = await readResponse(await worker.fetch('https://shop.example/api/dead-letters', { method: 'POST', headers: { 'content-type': JSON_API, origin: SHOP_ORIGIN }, body }), 'a shop page');
  assert.equal(page.status, 403, page.text);
  // Signed for the list, sent to delete: the route is signed.
  const listSig = signedHeaders(secrets.EDGE_SIGNING_SECRET, JSON.stringify({ ids: [UNKNOWN_KEY] }), { path: '/api/dead-letters' });
  const moved = await signedCall(0, '/api/dead-letters/delete', JSON.stringify({ ids: [UNKNOWN_KEY] }), { headers: listSig });
  assert.equal(moved.status, 401, moved.text);
  // One use per signature.
  const listBody = `{}${' '.repeat(seq++ % 1000)}`;
  const first = await signedCall(0, '/api/dead-letters', listBody);
  assert.equal(first.status, 200, first.text);
  const again = await signedCall(0, '/api/dead-letters', listBody, { headers: first.sent });
  assert.equal(again.status, 401, again.text);

  for (const [route, value] of [
    ['/api/dead-letters', {}], ['/api/dead-letters/read', { id: UNKNOWN_KEY }],
    ['/api/dead-letters/resend', { ids: [UNKNOWN_KEY] }], ['/api/dead-letters/delete', { ids: [UNKNOWN_KEY] }],
  ]) {
    const r = await call(route, value, 1);
    assert.equal(r.status, 500, `${route} without ${STORE}: ${r.text}`);
    assert.equal(r.json.errors[0].code, 'missing_setting');
    assert.match(r.json.errors[0].detail, /DEAD_LETTER_STORE/);
  }
  const noQueue = await call('/api/dead-letters/resend', { ids: [UNKNOWN_KEY] }, 2);
  assert.equal(noQueue.status, 500, noQueue.text);
  assert.match(noQueue.json.errors[0].detail, /DELIVERY_QUEUE/);
  const unusable = await call('/api/dead-letters', {}, 3);
  assert.equal(unusable.status, 500, unusable.text);
  assert.equal(unusable.json.errors[0].code, 'bad_setting');
  assert.match(unusable.json.errors[0].detail, /DEAD_LETTER_STORE.*must be a KV namespace binding/);
  assert.ok(!unusable.text.includes('dlq-kv-name'), 'the value is not echoed');
});

test('more than 100 letters: pages of 100 oldest first, the cursor leads through all of them once; 100 deleted in one call', { timeout: 120_000 }, async () => {
  const before = new Set((await listAll()).map((l) => l.id));
  const run = randomBytes(3).toString('hex');
  const q = await mf.getQueueProducer('DELIVERY_DEAD_LETTERS', 'edge-0');
  const texts = Array.from({ length: 105 }, (_, n) => `page-${run}-${n}`);
  await q.sendBatch(texts.slice(0, 100).map((body) => ({ body, contentType: 'text' })));
  await q.sendBatch(texts.slice(100).map((body) => ({ body, contentType: 'text' })));
  const all = await waitFor(async () => {
    const l = await listAll();
    return l.filter((x) => !before.has(x.id)).length >= texts.length ? l : null;
  }, { timeout: 60_000, interval: 500, what: 'the 105 letters kept' });
  const mine = all.filter((x) => !before.has(x.id));
  assert.equal(mine.length, texts.length, 'each kept once');
  assert.equal(all.pages[0], 100, 'a full first page');
  assert.ok(all.pages.length >= 2);
  const ids = all.map((l) => l.id);
  assert.equal(new Set(ids).size, ids.length, 'no letter on two pages');
  assert.deepEqual(ids, [...ids].sort(), 'oldest first across pages');
  for (const l of mine) assertListed(l);

  const del = await call('/api/dead-letters/delete', { ids: mine.slice(0, 100).map((l) => l.id) });
  assert.equal(del.status, 200, del.text);
  assert.equal(del.json.data.length, 100);
  assert.ok(del.json.data.every((d) => d.attributes.result === 'deleted'));
  assert.equal((await call('/api/dead-letters/delete', { ids: mine.slice(100).map((l) => l.id) })).status, 200);
  const left = await listAll();
  assert.deepEqual(left.map((l) => l.id).filter((id) => !before.has(id)), []);
  assert.deepEqual(leaksInLog(secrets), [], 'nothing answered so far carried a secret');
});

/** Runs `fn` with a workerd of its own whose edge-0 (options as `edge`'s) is the watched
 * consumer of the dead-letter queue (tests/edge/settling-consumer.mjs: it records every
 * ack and retry, and can take a binding out of the consumer's env). */
async function withWatched(options, fn) {
  const watched = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: [edge('edge-0', { ...options, consume: 'dead', script: path.join(ROOT, 'tests/edge/settling-consumer.mjs') })],
  });
  try {
    await watched.ready;
    const w = await watched.getWorker('edge-0');
    const state = async (set) => (await w.fetch('https://shop.example/__consumer', set ? { method: 'POST', body: JSON.stringify(set) } : {})).json();
    const q = await watched.getQueueProducer('DELIVERY_DEAD_LETTERS', 'edge-0');
    /** How the messages holding `marker` were settled, once one was. */
    const settledOf = (marker, what) => waitFor(async () => {
      const st = await state();
      const mine = st.settled.filter((x) => typeof x.body === 'string' && x.body.includes(marker));
      return mine.length ? { mine: mine.map((x) => [x.how, x.delaySeconds]), bodies: mine.map((x) => x.body), logs: st.logs } : null;
    }, { timeout: 30_000, interval: 200, what });
    await state({});
    await fn({ watched, state, q, settledOf });
  } finally {
    await watched.dispose().catch(() => {});
  }
}

test('the letter consumer acknowledges a letter once KV has it; without DEAD_LETTER_STORE it retries it after a minute, never acknowledges it into nothing', { timeout: 120_000 }, async () => {
  await withWatched({}, async ({ watched, state, q, settledOf }) => {
    const kv = await watched.getKVNamespace(STORE, 'edge-0');
    const kept = `kept-${randomBytes(3).toString('hex')}`;
    await q.send(JSON.stringify({ status: 0, message: kept }), { contentType: 'text' });
    const s1 = await settledOf(kept, 'the letter settled');
    assert.deepEqual(s1.mine, [['ack', null]]);
    const { keys } = await kv.list();
    assert.ok(keys.every((k) => k.name.startsWith('letter:')), 'every key a letter\'s');
    const values = await Promise.all(keys.map((k) => kv.get(k.name)));
    assert.equal(values.filter((v) => v.includes(kept)).length, 1, 'in KV when acknowledged');

    await state({ drop: [STORE] });
    const lost = `unkept-${randomBytes(3).toString('hex')}`;
    await q.send(JSON.stringify({ status: 0, message: lost }), { contentType: 'text' });
    const s2 = await settledOf(lost, 'the letter settled without a store');
    assert.deepEqual(s2.mine, [['retry', 60]], 'retried after a minute (the first attempt), doubling to 12 h');
    assert.ok(s2.logs.some((l) => l.includes(STORE)), `logged: ${s2.logs.join('\n')}`);
    const after = await kv.list();
    assert.equal(after.keys.length, keys.length, 'nothing kept');
  });
});

test('a letter reaching a worker whose settings are unusable (DEAD_LETTER_STORE a [vars] string) stays queued: retried, not re-wrapped into a letter of a letter', { timeout: 120_000 }, async () => {
  await withWatched({ store: false, extra: { [STORE]: 'dlq-kv-name' } }, async ({ q, settledOf }) => {
    const marker = `bad-setting-${randomBytes(3).toString('hex')}`;
    const text = JSON.stringify({ status: 0, message: marker });
    await q.send(text, { contentType: 'text' });
    const s = await settledOf(marker, 'the letter settled');
    // A letter read as a delivery is unreadable, and would be sent to its own queue again
    // wrapped in another letter, acknowledged, and so on.
    assert.deepEqual(s.mine, [['retry', 60]], 'kept in the queue for the operator, not acknowledged');
    assert.deepEqual(s.bodies, [text], 'no letter made of it');
  });
});

test('another setting malformed (MAX_BODY_BYTES): the dead-letter queue is still told apart, its letters kept, none delivered or wrapped again', { timeout: 120_000 }, async () => {
  await withWatched({ extra: { MAX_BODY_BYTES: 'lots' } }, async ({ watched, q, settledOf }) => {
    const letter = JSON.stringify({ status: 400, message: { v: 1, id: 'dlv_000000000000000000000001', part: 0, parts: 1, work: { call: { path: BULK, body: { marker: `malformed-${randomBytes(3).toString('hex')}` } } } } });
    await q.send(letter, { contentType: 'text' });
    const s = await settledOf('dlv_000000000000000000000001', 'the letter settled');
    assert.deepEqual(s.mine, [['ack', null]], 'acknowledged once kept');
    assert.deepEqual(s.bodies, [letter], 'not re-wrapped');
    const kv = await watched.getKVNamespace(STORE, 'edge-0');
    const values = (await keptLetters(kv)).map((l) => l.value);
    assert.ok(values.includes(letter), 'kept as it came');
  });
});

test('DEAD_LETTER_QUEUE naming another queue: a letter that reaches the delivery consumer is kept, not dead-lettered again', { timeout: 120_000 }, async () => {
  // The worker believes its dead-letter queue is "elsewhere": batches of the real one go
  // down the delivery path.
  await withWatched({ extra: { DEAD_LETTER_QUEUE: 'elsewhere' } }, async ({ watched, q, settledOf }) => {
    const marker = `misnamed-${randomBytes(3).toString('hex')}`;
    const letter = JSON.stringify({ status: 0, message: marker });
    await q.send(letter, { contentType: 'text' });
    const s = await settledOf(marker, 'the letter settled');
    assert.deepEqual(s.mine, [['ack', null]], 'acknowledged once kept');
    assert.deepEqual(s.bodies, [letter], 'never sent to a queue again, wrapped');
    assert.ok(s.logs.some((l) => l.includes('DEAD_LETTER_QUEUE')), `the operator is told: ${s.logs.join('\n')}`);
    const kv = await watched.getKVNamespace(STORE, 'edge-0');
    const values = (await keptLetters(kv)).map((l) => l.value);
    assert.ok(values.includes(letter), 'kept as it came');
  });
});

test('a letter of bytes is kept as its text (as hex where it is no UTF-8), one whose listing would pass KV\'s 1,024 bytes of metadata is kept all the same, and a Map body is left in its queue', { timeout: 120_000 }, async () => {
  await withWatched({}, async ({ watched, q, settledOf }) => {
    const kv = await watched.getKVNamespace(STORE, 'edge-0');
    const marker = `bytes-${randomBytes(3).toString('hex')}`;
    const text = JSON.stringify({ status: 0, message: marker });
    await q.send(new TextEncoder().encode(text), { contentType: 'bytes' });
    await waitFor(async () => (await state(watched)).settled.some((x) => x.how === 'ack'), { timeout: 30_000, interval: 200, what: 'the bytes letter settled' });
    const values = (await keptLetters(kv)).map((l) => l.value);
    assert.ok(values.includes(text), `kept as text: ${values.join(' | ')}`);
    // A foreign message whose route JSON escapes to six bytes a character.
    const odd = JSON.stringify({ status: 400, message: { v: 1, id: 'dlv_000000000000000000000002', part: 0, parts: 1, work: { call: { path: `/api/${'\u0001'.repeat(240)}`, body: {} } } } });
    await q.send(odd, { contentType: 'text' });
    const s = await settledOf('dlv_000000000000000000000002', 'the odd letter settled');
    assert.deepEqual(s.mine, [['ack', null]]);
    const oddKept = (await keptLetters(kv)).find((l) => l.value === odd);
    assert.ok(oddKept, 'kept');
    assert.equal(oddKept.metadata.reason, 'refused', 'listed with why, its route left out');
    // Bytes that are not UTF-8: kept whole, as hex, listed unreadable.
    await q.send(new Uint8Array([0xff, 0xfe, 0x00, 0x41]), { contentType: 'bytes' });
    const hex = '{"status":0,"message":{"bytes_hex":"fffe0041"}}';
    const kept = await waitFor(async () => (await keptLetters(kv)).find((l) => l.value === hex) ?? null,
      { timeout: 30_000, interval: 200, what: 'the bytes kept as hex' });
    assert.equal(kept.metadata.reason, 'unreadable');
    // A body no text holds (a Map): left in the queue, and the log says why, not the store.
    await q.send(new Map([['marker', 'map-body']]), { contentType: 'v8' });
    const left = await waitFor(async () => {
      const st = await state(watched);
      return st.settled.find((x) => x.how === 'retry') ? st : null;
    }, { timeout: 30_000, interval: 200, what: 'the Map body settled' });
    assert.ok(left.logs.some((l) => l.includes('its body is no text')), left.logs.join('\n'));
    assert.ok(!left.logs.some((l) => l.includes('DEAD_LETTER_STORE missing')), 'the store is not blamed');
  });
});

test('DEAD_LETTER_QUEUE naming another queue: a letter of bytes that reaches the delivery consumer is kept as its text, not wrapped again empty', { timeout: 120_000 }, async () => {
  // The delivery path once read string bodies alone: bytes escaped its letter guard.
  await withWatched({ extra: { DEAD_LETTER_QUEUE: 'elsewhere' } }, async ({ watched, q }) => {
    const kv = await watched.getKVNamespace(STORE, 'edge-0');
    const marker = `misnamed-bytes-${randomBytes(3).toString('hex')}`;
    const text = JSON.stringify({ status: 0, message: marker });
    await q.send(new TextEncoder().encode(text), { contentType: 'bytes' });
    const values = await waitFor(async () => {
      const vs = (await keptLetters(kv)).map((l) => l.value);
      return vs.length ? vs : null;
    }, { timeout: 30_000, interval: 200, what: 'a letter kept' });
    assert.deepEqual(values, [text], 'kept as its text, nothing else');
  });
});

test('a store failing mid-call: a letter queued whose delete failed is answered queued_still_kept and stays listed; a failing listing or read is a 503 to ask again, with or without a cursor', { timeout: 120_000 }, async () => {
  const failing = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: [edge('edge-0', { consume: 'dead', script: path.join(ROOT, 'tests/edge/failing-store.mjs') })],
  });
  try {
    await failing.ready;
    const w = await failing.getWorker('edge-0');
    const fail = async (methods) => (await w.fetch('https://shop.example/__store', { method: 'POST', body: JSON.stringify({ fail: methods }) })).json();
    const post = async (route, value) => {
      const body = JSON.stringify(value) + ' '.repeat(seq++ % 1000);
      const res = await w.fetch(`https://shop.example${route}`, { method: 'POST', headers: signedHeaders(secrets.EDGE_SIGNING_SECRET, body, { path: route }), body });
      return readResponse(res, `failing store: POST ${route}`);
    };
    const delivery = 'dlv_00000000000000000000000f';
    const message = { v: 1, id: delivery, part: 0, parts: 1, work: { call: { path: '/api/events', body: {
      data: { type: 'event', attributes: { unique_id: `u-${randomBytes(3).toString('hex')}`, properties: {}, metric: { data: { type: 'metric', attributes: { name: 'Placed Order' } } }, profile: { data: { type: 'profile', attributes: { external_id: 'c-1' } } } } },
    } } } };
    const q = await failing.getQueueProducer('DELIVERY_DEAD_LETTERS', 'edge-0');
    await q.send(JSON.stringify({ status: 400, message }), { contentType: 'text' });
    const [letter] = await waitFor(async () => {
      const r = await post('/api/dead-letters', {});
      return r.json?.data?.length ? r.json.data : null;
    }, { timeout: 30_000, interval: 200, what: 'the letter listed' });

    await fail(['delete']);
    const resend = await post('/api/dead-letters/resend', { ids: [letter.id] });
    assert.equal(resend.status, 200, resend.text);
    assert.deepEqual(resend.json.data[0].attributes, { result: 'queued_still_kept', delivery }, 'queued, and said to be still kept');
    await fail([]);
    assert.deepEqual((await post('/api/dead-letters', {})).json.data.map((l) => l.id), [letter.id], 'still listed, as answered');

    await fail(['list', 'getWithMetadata']);
    for (const [route, value] of [['/api/dead-letters', {}], ['/api/dead-letters', { cursor: 'AAAAAAAA' }], ['/api/dead-letters/read', { id: letter.id }]]) {
      const down = await post(route, value);
      assert.equal(down.status, 503, `${JSON.stringify(value)}: ${down.text}`);
      assert.equal(down.headers['retry-after'], '1');
      assert.equal(down.json.errors[0].code, 'store_unavailable');
    }
    await fail([]);
    const gone = await post('/api/dead-letters/delete', { ids: [letter.id] });
    assert.deepEqual(gone.json.data[0].attributes, { result: 'deleted' });
  } finally {
    await failing.dispose().catch(() => {});
  }
});

/** Every letter `kv` holds, in key order: its key's name and metadata, and its value. */
async function keptLetters(kv) {
  const { keys } = await kv.list({ prefix: 'letter:' });
  return Promise.all(keys.map(async (k) => ({ ...k, value: await kv.get(k.name) })));
}

/** The watched consumer's record. */
async function state(watched) {
  const w = await watched.getWorker('edge-0');
  return (await w.fetch('https://shop.example/__consumer')).json();
}
