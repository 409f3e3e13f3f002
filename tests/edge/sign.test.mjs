// klaviyo-wasm/sign (js/sign.mjs): the signature the shop's backend sends to the edge worker.
// Checked against node:crypto's createHmac over the exact bytes, and over real HTTP against a
// tiny local node:http server. Needs no build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
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
