// klaviyo-wasm/sign (js/sign.mjs): the signature the shop's backend sends to the edge worker.
// Checked against node:crypto's createHmac over the exact bytes, and over real HTTP against a
// tiny local node:http server. Needs no build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { getEventListeners } from 'node:events';
import path from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Miniflare } from 'miniflare';
import { sign, signedFetch, verifyForward, SIGNATURE_HEADER } from '../../js/sign.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NOW_MS = 1_795_669_339_000; // 2026-11-26T05:02:19Z
const SECRET = 's3cret';
/** The route the signatures below are made for. */
const P = '/api/events';

/** The expected header, computed independently: node:crypto over `<t>\n<METHOD>\n<path>\n` + the body bytes. */
function expected(secret, bytes, t, path = P, method = 'POST') {
  const mac = createHmac('sha256', secret).update(Buffer.from(`${t}\n${method}\n${path}\n`)).update(bytes).digest('hex');
  return `t=${t},v2=${mac}`;
}

test('a known vector: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, "<t>\\n<METHOD>\\n<path>\\n<body>")>', async () => {
  const body = '{"data":{"type":"event"}}';
  const h = await sign(body, SECRET, { route: P, now: NOW_MS });
  assert.equal(h, expected(SECRET, Buffer.from(body), 1_795_669_339));
  assert.match(h, /^t=1795669339,v2=[0-9a-f]{64}$/);
  assert.equal(
    await sign('{}', SECRET, { route: '/api/orders', now: NOW_MS }),
    `t=1795669339,v2=${createHmac('sha256', SECRET).update('1795669339\nPOST\n/api/orders\n{}').digest('hex')}`,
  );
  // An empty body signs the head alone.
  assert.equal(await sign('', SECRET, { route: P, now: NOW_MS }), expected(SECRET, Buffer.alloc(0), 1_795_669_339));
  assert.equal(SIGNATURE_HEADER, 'x-klaviyo-edge-signature');
});

test('a signature names its method and route: another path or method signs differently', async () => {
  const at = (route, method) => sign('{}', SECRET, { route, method, now: NOW_MS });
  const placed = await at('/api/orders');
  for (const [route, method] of [['/api/orders/refunded'], ['/klaviyo/api/orders'], ['/api/orders', 'PUT']]) {
    assert.notEqual(await at(route, method), placed, `${method ?? 'POST'} ${route}`);
  }
  assert.equal(placed, expected(SECRET, Buffer.from('{}'), 1_795_669_339, '/api/orders'));
});

test('a string, a Uint8Array, a Buffer and an ArrayBuffer of the same bytes sign alike', async () => {
  const text = '{"data":{"attributes":{"email":"ann@example.com"}}}';
  const buf = Buffer.from(text);
  const want = expected(SECRET, buf, 1_795_669_339);
  const u8 = new Uint8Array(buf);
  for (const body of [text, u8, buf, u8.buffer]) {
    assert.equal(await sign(body, SECRET, { route: P, now: NOW_MS }), want);
  }
  // A view signs only its own bytes, not the whole buffer behind it.
  const padded = new Uint8Array(buf.length + 8);
  padded.set(buf, 4);
  assert.equal(await sign(padded.subarray(4, 4 + buf.length), SECRET, { route: P, now: NOW_MS }), want);
  assert.equal(await sign(new DataView(padded.buffer, 4, buf.length), SECRET, { route: P, now: NOW_MS }), want);
});

test('a BOM and non-ASCII text are signed over their UTF-8 bytes', async () => {
  const t = 1_795_669_339;
  const bom = '\uFEFF{"data":{}}';
  const bomBytes = Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"data":{}}')]);
  assert.equal(await sign(bom, SECRET, { route: P, now: NOW_MS }), expected(SECRET, bomBytes, t));
  assert.equal(await sign(new Uint8Array(bomBytes), SECRET, { route: P, now: NOW_MS }), expected(SECRET, bomBytes, t));
  // The BOM is part of what is signed: without it the signature differs.
  assert.notEqual(await sign(bom, SECRET, { route: P, now: NOW_MS }), await sign('{"data":{}}', SECRET, { route: P, now: NOW_MS }));

  const name = '{"first_name":"Zoë","city":"Kraków","note":"東京 🎉"}';
  assert.equal(await sign(name, SECRET, { route: P, now: NOW_MS }), expected(SECRET, Buffer.from(name, 'utf8'), t));
  assert.notEqual(await sign(name, SECRET, { route: P, now: NOW_MS }), expected(SECRET, Buffer.from(name, 'latin1'), t));
  // Bytes that are not UTF-8 are signed as they are.
  const raw = new Uint8Array([0x7b, 0xff, 0xfe, 0x00, 0x7d]);
  assert.equal(await sign(raw, SECRET, { route: P, now: NOW_MS }), expected(SECRET, raw, t));
  // A non-ASCII secret is used as UTF-8 (as the worker reads EDGE_SIGNING_SECRET).
  assert.equal(await sign('{}', 'clé-ü', { route: P, now: NOW_MS }), expected('clé-ü', Buffer.from('{}'), t));
});

test('now: milliseconds or a Date, floored to the second; default the clock', async () => {
  assert.match(await sign('{}', SECRET, { route: P, now: NOW_MS + 999 }), /^t=1795669339,/);
  assert.match(await sign('{}', SECRET, { route: P, now: new Date(NOW_MS) }), /^t=1795669339,/);
  assert.match(await sign('{}', SECRET, { route: P, now: 0 }), /^t=0,/);
  const before = Math.floor(Date.now() / 1000);
  const t = Number(/^t=(\d+),/.exec(await sign('{}', SECRET, { route: P }))[1]);
  assert.ok(t >= before && t <= Math.floor(Date.now() / 1000), `t=${t}`);
  // t is part of the signed text.
  assert.notEqual(
    (await sign('{}', SECRET, { route: P, now: NOW_MS })).split('v2=')[1],
    (await sign('{}', SECRET, { route: P, now: NOW_MS + 1000 })).split('v2=')[1],
  );
});

test('bad arguments reject with a TypeError', async () => {
  for (const body of [undefined, null, 42, { data: {} }, ['{}']]) {
    await assert.rejects(sign(body, SECRET, { route: P }), TypeError, String(body));
  }
  for (const secret of ['', undefined, 42]) {
    await assert.rejects(sign('{}', secret, { route: P }), TypeError, String(secret));
  }
  // The route is part of what is signed: it must be given, as a path.
  for (const route of [undefined, '', 'api/events', 'https://shop.example/api/events', '/api/events?x=1', 42]) {
    await assert.rejects(sign('{}', SECRET, { route }), TypeError, String(route));
  }
  // signedFetch reads it from the URL, or must be told.
  await assert.rejects(signedFetch('https://shop.example/klaviyo/health', '{}', SECRET), TypeError);
  for (const method of ['post', '', 'PO ST', 7]) {
    await assert.rejects(sign('{}', SECRET, { route: P, method }), TypeError, String(method));
  }
  for (const now of [NaN, -1, 'soon', Infinity]) {
    await assert.rejects(sign('{}', SECRET, { route: P, now }), TypeError, String(now));
  }
  // A different secret after a cached one is not mixed up.
  const a = await sign('{}', 'first', { route: P, now: NOW_MS });
  const b = await sign('{}', 'second', { route: P, now: NOW_MS });
  assert.equal(a, expected('first', Buffer.from('{}'), 1_795_669_339));
  assert.equal(b, expected('second', Buffer.from('{}'), 1_795_669_339));
});

/** A server that checks the signature as the worker does (5-minute window, exact bytes). */
async function verifier(secret) {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = req.headers[SIGNATURE_HEADER] ?? '';
      const m = /^t=(\d+),v2=([0-9a-f]{64})$/.exec(header);
      let ok = false;
      if (m && Math.abs(Date.now() / 1000 - Number(m[1])) <= 300) {
        // The route below the prefix: the path from its first /api/.
        const route = new URL(req.url, 'http://x').pathname.replace(/^.*?(?=\/api\/)/, '');
        const want = createHmac('sha256', secret).update(`${m[1]}\n${req.method}\n${route}\n`).update(body).digest();
        ok = timingSafeEqual(want, Buffer.from(m[2], 'hex'));
      }
      received.push({ method: req.method, url: req.url, headers: req.headers, body, ok });
      res.writeHead(ok ? 202 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok }));
    });
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    received,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

test('signedFetch POSTs the exact signed bytes with the JSON:API type and the signature header', async (t) => {
  const srv = await verifier(SECRET);
  t.after(() => srv.close());

  const body = '\uFEFF{"data":{"type":"event","attributes":{"name":"Zoë 🎉"}}}';
  const res = await signedFetch(`${srv.url}/klaviyo/api/events?x=1`, body, SECRET, {
    headers: { revision: '2026-07-15', [SIGNATURE_HEADER]: 'forged' },
    method: 'PUT',
  });
  assert.equal(res.status, 202);
  assert.deepEqual(await res.json(), { ok: true });
  const [r] = srv.received;
  assert.equal(r.method, 'POST');
  assert.equal(r.url, '/klaviyo/api/events?x=1');
  assert.equal(r.headers['content-type'], 'application/vnd.api+json');
  assert.equal(r.headers.revision, '2026-07-15');
  assert.ok(r.ok, `signature ${r.headers[SIGNATURE_HEADER]}`);
  assert.deepEqual(r.body, Buffer.from(body, 'utf8'));
  assert.deepEqual([...r.body.subarray(0, 3)], [0xef, 0xbb, 0xbf]);

  // Bytes and an ArrayBuffer go as they are; a content type the caller sets is kept.
  const bytes = new Uint8Array([0x7b, 0xc3, 0xa9, 0x7d]);
  assert.equal((await signedFetch(new URL('/b/api/orders/refunded', srv.url), bytes.buffer, SECRET, {
    headers: new Headers({ 'content-type': 'application/json' }),
  })).status, 202);
  assert.deepEqual([...srv.received[1].body], [...bytes]);
  assert.equal(srv.received[1].headers['content-type'], 'application/json');

  // The wrong secret is refused by the server.
  assert.equal((await signedFetch(`${srv.url}/c/api/events`, '{}', 'not-the-secret')).status, 401);
  assert.equal(srv.received[2].ok, false);
  // A route the URL does not end in is named with init.route, and not sent to fetch.
  assert.equal((await signedFetch(`${srv.url}/d/api/lists/api/profiles`, '{}', SECRET)).status, 202, 'a list whose id is "api"');
  assert.equal((await signedFetch(`${srv.url}/e/api/events`, '{}', SECRET, { route: '/api/profile-import' })).status, 401, 'signed for another route');
});

test('verifyForward accepts what the worker signs for a forward, and nothing a backend call carries', async () => {
  const body = '{"data":[],"meta":{"klaviyo_webhook_id":"wh_1"}}';
  const t = 1_795_669_339;
  const key = createHmac('sha256', SECRET).update('klaviyo-wasm webhook forward').digest();
  const forward = `t=${t},v2=${createHmac('sha256', key).update(`${t}\nPOST\n/webhooks/klaviyo\n${body}`).digest('hex')}`;
  assert.equal(await verifyForward(body, forward, SECRET, { route: P, now: NOW_MS }), true);
  assert.equal(await verifyForward(Buffer.from(body), forward.toUpperCase().replace('T=', 't=').replace('V2=', 'v2='), SECRET, { route: P, now: NOW_MS }), true);
  assert.equal(await verifyForward(`${body} `, forward, SECRET, { route: P, now: NOW_MS }), false, 'another body');
  assert.equal(await verifyForward(body, forward, 'other', { now: NOW_MS }), false, 'another secret');
  assert.equal(await verifyForward(body, forward, SECRET, { now: NOW_MS + 301_000 }), false, 'stale');
  // A backend call to the same route, with the same secret, is no forward.
  const call = await sign(body, SECRET, { route: '/webhooks/klaviyo', now: NOW_MS });
  assert.equal(await verifyForward(body, call, SECRET, { route: P, now: NOW_MS }), false);
  for (const header of [undefined, '', 'garbage', `t=${t}`, forward.replace('v2=', 'v1=')]) {
    assert.equal(await verifyForward(body, header, SECRET, { route: P, now: NOW_MS }), false, String(header));
  }
});

test('the package exports it as klaviyo-wasm/sign and ships it', async () => {
  const viaName = await import('klaviyo-wasm/sign');
  assert.equal(viaName.sign, sign);
  assert.equal(import.meta.resolve('klaviyo-wasm/sign'), pathToFileURL(path.join(ROOT, 'js/sign.mjs')).href);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.exports['./sign'].types, './js/sign.d.ts');
  const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
  }));
  const names = packed[0].files.map((f) => f.path);
  assert.ok(names.includes('js/sign.mjs') && names.includes('js/sign.d.ts'), names.join(' '));
  // Nothing node-only: it must load in Deno, Bun and workers.
  const code = readFileSync(path.join(ROOT, 'js/sign.mjs'), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  assert.doesNotMatch(code, /\bfrom\s+["']node:|\brequire\(|\bimport\(|\bBuffer\b|\bprocess\./);
});

test('it runs unchanged in workerd and agrees with Node', async (t) => {
  const mf = new Miniflare({
    modules: [
      {
        type: 'ESModule',
        path: 'entry.mjs',
        contents: `import { sign, SIGNATURE_HEADER } from './sign.mjs';
          export default { async fetch(request) {
            const body = new Uint8Array(await request.arrayBuffer());
            const now = Number(new URL(request.url).searchParams.get('now'));
            const route = '/api/events';
            return Response.json({ header: SIGNATURE_HEADER, fromBytes: await sign(body, 's3cret', { route, now }),
              fromText: await sign(new TextDecoder('utf-8', { ignoreBOM: true }).decode(body), 's3cret', { route, now }) });
          } };`,
      },
      { type: 'ESModule', path: 'sign.mjs', contents: readFileSync(path.join(ROOT, 'js/sign.mjs'), 'utf8') },
    ],
    compatibilityDate: '2025-01-01',
  });
  t.after(() => mf.dispose());
  const body = '\uFEFF{"note":"Zoë 🎉"}';
  const res = await mf.dispatchFetch(`http://edge.local/?now=${NOW_MS}`, { method: 'POST', body });
  const got = await res.json();
  const want = expected(SECRET, Buffer.from(body, 'utf8'), 1_795_669_339);
  assert.deepEqual(got, { header: SIGNATURE_HEADER, fromBytes: want, fromText: want });
});

// ---------- signedFetch's retries, against a scripted local server ----------

/** Answers with `status` (and `headers`), the body naming the attempt: `attempt <n>`. */
const reply = (status, headers = {}) => (req, res, n) => {
  res.writeHead(status, { 'content-type': 'text/plain', ...headers });
  res.end(`attempt ${n}`);
};
/** Drops the connection without an answer: fetch rejects (a network error). */
const destroy = (req) => req.socket.destroy();
/** Never answers. */
const hang = () => {};

/**
 * A server that answers its n-th request with `script[n - 1]` (the last step repeats): a status,
 * or a step above. Like the worker, it refuses (401) a signature it has seen before. Records
 * each request as received: when it arrived (performance.now(), Date.now()), its headers and
 * body bytes, its `t`, and whether its signature verifies for `route` (by default the URL's
 * path from its first /api/), checked with node:crypto.
 */
async function scripted(script, { secret = SECRET, route } = {}) {
  const received = [];
  const seen = new Set();
  const server = http.createServer((req, res) => {
    const at = performance.now();
    const wall = Date.now();
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = req.headers[SIGNATURE_HEADER] ?? '';
      const t = Number(/^t=(\d+),/.exec(header)?.[1] ?? NaN);
      const path = route ?? new URL(req.url, 'http://x').pathname.replace(/^.*?(?=\/api\/)/, '');
      const ok = header === expected(secret, body, t, path, req.method) && Math.abs(wall / 1000 - t) <= 300;
      const replayed = seen.has(header);
      seen.add(header);
      received.push({ at, wall, method: req.method, url: req.url, headers: { ...req.headers }, names: req.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase()), body, header, t, ok, replayed });
      const n = received.length;
      if (replayed) return reply(401)(req, res, n);
      const step = script[Math.min(n, script.length) - 1];
      (typeof step === 'number' ? reply(step) : step)(req, res, n);
    });
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    received,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** Every attempt carried a fresh signature that verifies, with a later t each time, over `bytes`. */
function assertAttempts(received, bytes, count) {
  assert.equal(received.length, count, 'attempts');
  received.forEach((r, i) => {
    assert.equal(r.method, 'POST');
    assert.ok(r.ok, `attempt ${i + 1} verifies: ${r.header}`);
    assert.equal(r.replayed, false, `attempt ${i + 1} is no replay`);
    assert.deepEqual(r.body, Buffer.from(bytes), `attempt ${i + 1} sent the bytes`);
    if (i > 0) assert.ok(r.t > received[i - 1].t, `attempt ${i + 1}: t=${r.t} after t=${received[i - 1].t}`);
    // Never far ahead of the clock: at most a second per attempt made within one second.
    assert.ok(r.t <= Math.floor(r.wall / 1000) + i, `attempt ${i + 1}: t=${r.t} at ${r.wall}`);
  });
  assert.equal(new Set(received.map((r) => r.header)).size, count, 'every signature differs');
}

/**
 * Instruments what js/sign.mjs sees of the clockwork for the test's length (once a test): the
 * delays it gives setTimeout (its waits) are recorded in `waits`, and run at once when `fast`;
 * its Math.random returns `randoms` in turn. Both can be changed on the way.
 */
function clockwork(t, { randoms = [0.5], fast = false } = {}) {
  const realTimeout = globalThis.setTimeout;
  const realRandom = Math.random;
  const fromSign = () => new Error().stack.includes('/js/sign.mjs');
  const clock = { waits: [], randoms, fast };
  let i = 0;
  globalThis.setTimeout = function (fn, ms, ...args) {
    if (fromSign()) {
      clock.waits.push(ms);
      if (clock.fast) ms = 0;
    }
    return realTimeout.call(this, fn, ms, ...args);
  };
  Math.random = () => (fromSign() ? clock.randoms[i++ % clock.randoms.length] : realRandom());
  t.after(() => { globalThis.setTimeout = realTimeout; Math.random = realRandom; });
  return clock;
}

/** Replaces fetch for the test's length (once a test) with one that records its arguments and calls the real one. */
function spyFetch(t, onResponse = () => {}) {
  const real = globalThis.fetch;
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init });
    const res = await real(url, init);
    onResponse(res);
    return res;
  };
  t.after(() => { globalThis.fetch = real; });
  return calls;
}

/** The longest a test whose server holds an attempt may take: a hang fails it, not the run. */
const HANG_MS = 20_000;
const near = (got, want, label) => assert.ok(Math.abs(got - want) < 1e-9, `${label}: ${got} != ${want}`);

test('signedFetch retries a 5xx with every attempt signed anew (a later t) over the same bytes, and resolves to the last answer', async (t) => {
  const srv = await scripted([503, 503, 202]);
  t.after(() => srv.close());
  const body = '\uFEFF{"data":{"type":"event","attributes":{"name":"Zoë 🎉"}}}';
  const start = Math.floor(Date.now() / 1000);
  const res = await signedFetch(`${srv.url}/klaviyo/api/events`, body, SECRET, { retryDelayMs: 5 });
  assert.equal(res.status, 202);
  assert.equal(await res.text(), 'attempt 3');
  assertAttempts(srv.received, Buffer.from(body, 'utf8'), 3);
  assert.ok(srv.received[0].t >= start);

  // Still failing after the last retry: that last answer, whatever its status (3 retries by default).
  const down = await scripted([503]);
  t.after(() => down.close());
  const last = await signedFetch(`${down.url}/api/orders`, '{}', SECRET, { retryDelayMs: 5 });
  assert.equal(last.status, 503);
  assert.equal(await last.text(), 'attempt 4');
  assertAttempts(down.received, Buffer.from('{}'), 4);
  // retries: 0 sends once.
  const once = await scripted([503]);
  t.after(() => once.close());
  assert.equal((await signedFetch(`${once.url}/api/orders`, '{}', SECRET, { retries: 0, retryDelayMs: 5 })).status, 503);
  assert.equal(once.received.length, 1);
  // retries: 1, two attempts.
  const twice = await scripted([500]);
  t.after(() => twice.close());
  assert.equal(await (await signedFetch(`${twice.url}/api/orders`, '{}', SECRET, { retries: 1, retryDelayMs: 5 })).text(), 'attempt 2');
  assertAttempts(twice.received, Buffer.from('{}'), 2);
});

test('signedFetch retries 408, 429 and every 5xx, and never another status', async (t) => {
  for (const status of [408, 429, 500, 501, 502, 503, 504, 507, 599]) {
    const srv = await scripted([status, 202]);
    t.after(() => srv.close());
    const res = await signedFetch(`${srv.url}/api/events`, '{}', SECRET, { retryDelayMs: 5 });
    assert.equal(res.status, 202, `${status} then 202`);
    assertAttempts(srv.received, Buffer.from('{}'), 2);
  }
  for (const status of [200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 422, 425, 431, 451]) {
    const srv = await scripted([reply(status, { 'retry-after': '0' }), 202]);
    t.after(() => srv.close());
    const res = await signedFetch(`${srv.url}/api/events`, '{}', SECRET, { retryDelayMs: 5 });
    assert.equal(res.status, status, `${status} is the answer`);
    assert.equal(srv.received.length, 1, `${status} is not retried`);
    assert.equal(res.headers.get('retry-after'), '0');
    if (status !== 204) assert.equal(await res.text(), 'attempt 1');
  }
});

test('signedFetch retries a network error (the connection dropped) and rejects with the last error', { timeout: HANG_MS }, async (t) => {
  const srv = await scripted([destroy, destroy, 202]);
  t.after(() => srv.close());
  const res = await signedFetch(`${srv.url}/api/events`, '{"n":1}', SECRET, { retryDelayMs: 5 });
  assert.equal(res.status, 202);
  assertAttempts(srv.received, Buffer.from('{"n":1}'), 3);

  // Every attempt fails: the last attempt's error (a drop after timeouts, a timeout after drops).
  const dropped = await scripted([hang, hang, destroy]);
  t.after(() => dropped.close());
  await assert.rejects(
    signedFetch(`${dropped.url}/api/events`, '{}', SECRET, { retries: 2, retryDelayMs: 5, attemptTimeoutMs: 100 }),
    (e) => e instanceof TypeError && e.name === 'TypeError',
  );
  assertAttempts(dropped.received, Buffer.from('{}'), 3);
  const late = await scripted([destroy, destroy, hang]);
  t.after(() => late.close());
  await assert.rejects(
    signedFetch(`${late.url}/api/events`, '{}', SECRET, { retries: 2, retryDelayMs: 5, attemptTimeoutMs: 100 }),
    (e) => e.name === 'TimeoutError',
  );
  assertAttempts(late.received, Buffer.from('{}'), 3);
});

test('attemptTimeoutMs: an attempt whose answer has no head in time is aborted and retried; a slow body is not cut', { timeout: HANG_MS }, async (t) => {
  const srv = await scripted([hang, hang, 202]);
  t.after(() => srv.close());
  const res = await signedFetch(`${srv.url}/api/events`, '{}', SECRET, { retryDelayMs: 5, attemptTimeoutMs: 150 });
  assert.equal(res.status, 202);
  assertAttempts(srv.received, Buffer.from('{}'), 3);
  for (const i of [1, 2]) {
    const gap = srv.received[i].at - srv.received[i - 1].at;
    // Sent a little after its timer started: most of the 150 ms, not at once.
    assert.ok(gap >= 100, `attempt ${i + 1} came ${gap} ms after the one before, not after its 150 ms`);
  }

  // The head in time, the body well after: one attempt, read whole.
  const slow = await scripted([(req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('head, ');
    setTimeout(() => res.end('then the rest'), 300);
  }]);
  t.after(() => slow.close());
  const whole = await signedFetch(`${slow.url}/api/events`, '{}', SECRET, { retryDelayMs: 5, attemptTimeoutMs: 100 });
  assert.equal(await whole.text(), 'head, then the rest');
  assert.equal(slow.received.length, 1);
});

test('Retry-After in seconds is waited at least (measured by the server)', async (t) => {
  const srv = await scripted([reply(429, { 'retry-after': '1' }), 202]);
  t.after(() => srv.close());
  const res = await signedFetch(`${srv.url}/api/events`, '{}', SECRET, { retryDelayMs: 5 });
  assert.equal(res.status, 202);
  assertAttempts(srv.received, Buffer.from('{}'), 2);
  const gap = srv.received[1].at - srv.received[0].at;
  assert.ok(gap >= 990, `the retry came ${gap} ms after a Retry-After: 1`);
});

test('Retry-After as an HTTP date is waited until', async (t) => {
  let until;
  const srv = await scripted([(req, res, n) => {
    until = (Math.floor(Date.now() / 1000) + 2) * 1000; // 1 to 2 s ahead, a whole second
    reply(503, { 'retry-after': new Date(until).toUTCString() })(req, res, n);
  }, 202]);
  t.after(() => srv.close());
  const res = await signedFetch(`${srv.url}/api/events`, '{}', SECRET, { retryDelayMs: 5 });
  assert.equal(res.status, 202);
  assertAttempts(srv.received, Buffer.from('{}'), 2);
  assert.ok(srv.received[1].wall >= until - 10, `the retry came at ${srv.received[1].wall}, before ${until}`);
  assert.ok(srv.received[1].at - srv.received[0].at >= 990);
});

test('a Retry-After longer than maxRetryDelayMs ends the retries with that answer', async (t) => {
  for (const retryAfter of ['3600', '2', () => new Date(Date.now() + 86_400_000).toUTCString()]) {
    const srv = await scripted([503, (req, res, n) => reply(503, {
      'retry-after': typeof retryAfter === 'function' ? retryAfter() : retryAfter,
    })(req, res, n), 202]);
    t.after(() => srv.close());
    const started = performance.now();
    const res = await signedFetch(`${srv.url}/api/events`, '{}', SECRET, { retryDelayMs: 5, maxRetryDelayMs: 1000 });
    assert.equal(res.status, 503);
    assert.equal(await res.text(), 'attempt 2', 'the answer asking too long a wait');
    assert.ok(res.headers.get('retry-after'), 'its Retry-After intact');
    assertAttempts(srv.received, Buffer.from('{}'), 2);
    assert.ok(performance.now() - started < 900, 'without waiting for it');
  }
});

test('the waits: retryDelayMs doubling, capped at maxRetryDelayMs, half of each random; Retry-After at least', async (t) => {
  // Math.random as sign.mjs sees it: 0, 0.5, 0.999, 0.25, 0.75, ...
  const clock = clockwork(t, { randoms: [0, 0.5, 0.999, 0.25, 0.75, 0] });
  const { waits } = clock;
  const srv = await scripted([
    503, reply(503, { 'retry-after': '0' }), reply(500, { 'retry-after': 'soon' }), 502, reply(429, { 'retry-after': 'Thu, 01 Jan 1970 00:00:00 GMT' }), 503,
  ]);
  t.after(() => srv.close());
  const res = await signedFetch(`${srv.url}/api/events`, '{}', SECRET, { retries: 5, retryDelayMs: 20, maxRetryDelayMs: 50 });
  assert.equal(res.status, 503);
  assertAttempts(srv.received, Buffer.from('{}'), 6);
  // 20, 40, then 80 and 160 and 320 capped at 50; each half that plus the random part of the other half.
  const want = [10 + 0 * 10, 20 + 0.5 * 20, 25 + 0.999 * 25, 25 + 0.25 * 25, 25 + 0.75 * 25];
  assert.equal(waits.length, want.length, `waits ${waits}`);
  want.forEach((w, i) => near(waits[i], w, `wait ${i + 1}`));
  // Each was waited between the attempts, as the server saw them.
  want.forEach((w, i) => {
    const gap = srv.received[i + 1].at - srv.received[i].at;
    assert.ok(gap >= w - 2, `attempt ${i + 2} came ${gap} ms after the one before, not after ${w} ms`);
  });

  // A Retry-After within the cap and over the backoff is the wait.
  Object.assign(clock, { waits: [], randoms: [0], fast: true });
  const srv2 = await scripted([reply(503, { 'retry-after': '3' }), 202]);
  t.after(() => srv2.close());
  assert.equal((await signedFetch(`${srv2.url}/api/events`, '{}', SECRET, { retryDelayMs: 20, maxRetryDelayMs: 5000 })).status, 202);
  assert.deepEqual(clock.waits, [3000]);
  assertAttempts(srv2.received, Buffer.from('{}'), 2);
});

test('the defaults: 3 retries, 500 ms doubling, capped at 30 s (a Retry-After of 30 s waited, of 31 s not)', async (t) => {
  // The waits sign.mjs asks for are recorded and run at once; its Math.random is 0.5.
  const { waits } = clockwork(t, { randoms: [0.5], fast: true });
  const srv = await scripted([503]);
  t.after(() => srv.close());
  assert.equal((await signedFetch(`${srv.url}/api/events`, '{}', SECRET)).status, 503);
  assertAttempts(srv.received, Buffer.from('{}'), 4);
  assert.deepEqual(waits, [375, 750, 1500]);

  waits.length = 0;
  const long = await scripted([503]);
  t.after(() => long.close());
  assert.equal((await signedFetch(`${long.url}/api/events`, '{}', SECRET, { retries: 8 })).status, 503);
  assertAttempts(long.received, Buffer.from('{}'), 9);
  assert.deepEqual(waits, [375, 750, 1500, 3000, 6000, 12000, 22500, 22500]);

  waits.length = 0;
  const asks = await scripted([reply(503, { 'retry-after': '30' }), reply(503, { 'retry-after': '31' }), 202]);
  t.after(() => asks.close());
  const res = await signedFetch(`${asks.url}/api/events`, '{}', SECRET);
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '31');
  assert.deepEqual(waits, [30_000]);
  assertAttempts(asks.received, Buffer.from('{}'), 2);
});

test('init.signal aborts signedFetch before, during an attempt and during a wait, with its reason', { timeout: HANG_MS }, async (t) => {
  let onResponse = () => {};
  spyFetch(t, (res) => onResponse(res));
  for (const attemptTimeoutMs of [undefined, 5000]) {
    const opts = { retryDelayMs: 60_000, maxRetryDelayMs: 60_000, attemptTimeoutMs };
    const label = `attemptTimeoutMs ${attemptTimeoutMs}`;

    // Aborted before the call: nothing sent.
    const srv = await scripted([503]);
    t.after(() => srv.close());
    const reason = new Error('stopped');
    await assert.rejects(signedFetch(`${srv.url}/api/events`, '{}', SECRET, { ...opts, signal: AbortSignal.abort(reason) }), (e) => e === reason, label);
    // Aborted while the first attempt is signed: nothing sent either.
    const ac0 = new AbortController();
    const p0 = signedFetch(`${srv.url}/api/events`, '{}', SECRET, { ...opts, signal: ac0.signal });
    ac0.abort(reason);
    await assert.rejects(p0, (e) => e === reason, label);
    assert.equal(srv.received.length, 0, label);

    // During an attempt the server holds: that attempt ends, and no other is made.
    const ac1 = new AbortController();
    const holding = await scripted([() => ac1.abort(reason)]);
    t.after(() => holding.close());
    await assert.rejects(signedFetch(`${holding.url}/api/events`, '{}', SECRET, { ...opts, signal: ac1.signal }), (e) => e === reason, label);
    assert.equal(holding.received.length, 1, label);

    // During the wait after a 503 (a minute, or the Retry-After's 30 s): at once, no other attempt.
    for (const step of [503, reply(503, { 'retry-after': '30' })]) {
      const ac2 = new AbortController();
      const answered = [];
      // Once fetch has answered, signedFetch goes on to its wait within the same turn.
      onResponse = (res) => { answered.push(res.status); setImmediate(() => ac2.abort(reason)); };
      const down = await scripted([step]);
      t.after(() => down.close());
      const started = performance.now();
      await assert.rejects(signedFetch(`${down.url}/api/events`, '{}', SECRET, { ...opts, signal: ac2.signal }), (e) => e === reason, label);
      assert.deepEqual(answered, [503], `${label}: aborted after the answer, in the wait`);
      assert.equal(down.received.length, 1, label);
      assert.ok(performance.now() - started < 5000, `${label}: at once`);
    }
  }
});

test('signedFetch sends the bytes of the body as they were when called, whatever the caller does to them after', async (t) => {
  const text = '{"data":{"attributes":{"note":"Kraków 東京"}}}';
  // A Buffer overwritten at once, and again between the attempts.
  const buf = Buffer.from(text);
  const srv = await scripted([(req, res, n) => { buf.fill(0x21); reply(503)(req, res, n); }, 202]);
  t.after(() => srv.close());
  const p = signedFetch(`${srv.url}/api/events`, buf, SECRET, { retryDelayMs: 5 });
  buf.fill(0x20);
  assert.equal((await p).status, 202);
  assertAttempts(srv.received, Buffer.from(text), 2);

  // An ArrayBuffer overwritten between the attempts, then detached.
  const ab = new TextEncoder().encode(text).buffer;
  const srv2 = await scripted([
    (req, res, n) => { new Uint8Array(ab).fill(0); reply(500)(req, res, n); },
    (req, res, n) => { structuredClone(ab, { transfer: [ab] }); reply(502)(req, res, n); },
    202,
  ]);
  t.after(() => srv2.close());
  assert.equal((await signedFetch(`${srv2.url}/api/events`, ab, SECRET, { retryDelayMs: 5 })).status, 202);
  assert.equal(ab.byteLength, 0, 'detached');
  assertAttempts(srv2.received, Buffer.from(text), 3);

  // A view: its own bytes only, overwritten between the attempts.
  const backing = new Uint8Array(Buffer.from(`xx${text}yy`));
  const view = backing.subarray(2, 2 + Buffer.byteLength(text));
  const srv3 = await scripted([(req, res, n) => { backing.fill(0x30); reply(429)(req, res, n); }, 202]);
  t.after(() => srv3.close());
  assert.equal((await signedFetch(`${srv3.url}/api/events`, view, SECRET, { retryDelayMs: 5 })).status, 202);
  assertAttempts(srv3.received, Buffer.from(text), 2);
});

test('the retry options never reach fetch or the request; the other fetch options do', async (t) => {
  // What a plain fetch of the same request sends, header by header.
  const srv = await scripted([202], { route: '/api/orders' });
  t.after(() => srv.close());
  await (await fetch(`${srv.url}/hook`, {
    method: 'POST', body: '{}', headers: { revision: '2026-07-15', 'content-type': 'application/vnd.api+json', [SIGNATURE_HEADER]: 'x' },
  })).text();
  const plain = srv.received.shift().names.sort();

  const calls = spyFetch(t);
  const down = await scripted([503, 503, 202], { route: '/api/orders' });
  t.after(() => down.close());
  const res = await signedFetch(`${down.url}/hook`, '{}', SECRET, {
    route: '/api/orders', retries: 2, retryDelayMs: 5, maxRetryDelayMs: 10, attemptTimeoutMs: 5000,
    headers: { revision: '2026-07-15' }, redirect: 'error', method: 'PUT',
  });
  assert.equal(res.status, 202);
  assertAttempts(down.received, Buffer.from('{}'), 3);
  assert.equal(calls.length, 3);
  for (const [i, { init }] of calls.entries()) {
    assert.deepEqual(Object.keys(init).sort(), ['body', 'headers', 'method', 'redirect', 'signal'], `fetch ${i + 1}'s init`);
    assert.equal(init.method, 'POST');
    assert.equal(init.redirect, 'error');
  }
  for (const r of down.received) {
    assert.equal(r.url, '/hook');
    assert.deepEqual(r.names.sort(), plain, 'the headers a plain fetch sends, no more');
    assert.equal(r.headers.revision, '2026-07-15');
    assert.equal(r.headers['content-type'], 'application/vnd.api+json');
  }
});

test('signedFetch refuses bad retry options and a ReadableStream body with a TypeError, sending nothing', async (t) => {
  const srv = await scripted([202]);
  t.after(() => srv.close());
  const url = `${srv.url}/api/events`;
  const bad = {
    retries: [-1, 1.5, '3', NaN, Infinity, null, 3n],
    retryDelayMs: [-1, NaN, '5', Infinity, 2 ** 31, null],
    maxRetryDelayMs: [-1, NaN, '5', Infinity, 2 ** 31, null],
    attemptTimeoutMs: [0, -5, NaN, '100', Infinity, 2 ** 31, null],
  };
  for (const [name, values] of Object.entries(bad)) {
    for (const value of values) {
      await assert.rejects(signedFetch(url, '{}', SECRET, { [name]: value }), TypeError, `${name}: ${String(value)}`);
    }
  }
  // The bounds themselves are fine.
  assert.equal((await signedFetch(url, '{}', SECRET, { retries: 0, retryDelayMs: 0, maxRetryDelayMs: 2 ** 31 - 1, attemptTimeoutMs: 2 ** 31 - 1 })).status, 202);
  assert.equal(srv.received.length, 1);
  srv.received.length = 0;

  // A stream cannot be signed before it is sent, nor sent again: refused, not read.
  const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('{}')); c.close(); } });
  await assert.rejects(signedFetch(url, stream, SECRET, { retryDelayMs: 5 }), TypeError);
  assert.equal(stream.locked, false, 'not read');
  for (const body of [new Blob(['{}']), new URLSearchParams('a=1'), { data: {} }, undefined]) {
    await assert.rejects(signedFetch(url, body, SECRET, { retryDelayMs: 5 }), TypeError, String(body));
  }
  // Nor are an empty secret or a URL that is none retried.
  await assert.rejects(signedFetch(url, '{}', '', { retryDelayMs: 5 }), TypeError);
  await assert.rejects(signedFetch('not a url', '{}', SECRET, { route: P, retryDelayMs: 5 }), TypeError);
  assert.equal(srv.received.length, 0);
});

test('one long-lived signal shared by many calls with attemptTimeoutMs collects no listeners', async (t) => {
  const server = await scripted([202]);
  t.after(server.close);
  const shutdown = new AbortController();
  const warnings = [];
  const onWarning = (w) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  for (let i = 0; i < 30; i += 1) {
    const res = await signedFetch(`${server.url}/api/events`, '{}', SECRET, { signal: shutdown.signal, attemptTimeoutMs: 5_000 });
    await res.text();
  }
  assert.equal(server.received.length, 30);
  assert.equal(getEventListeners(shutdown.signal, 'abort').length, 0, 'no listener left on the caller\'s signal');
  await new Promise((resolve) => setImmediate(resolve)); // a warning is emitted on the next tick
  assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
});
