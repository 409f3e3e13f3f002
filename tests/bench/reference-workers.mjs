// The JavaScript workers the edge benches compare ours with (tests/bench/edge-bench.mjs,
// tests/bench/edge-profile.mjs), as module sources.
import { readFileSync } from 'node:fs';

// A trivial pass-through worker: what any fetch-handler proxy costs in this workerd.
export const TRIVIAL_WORKER = `export default {
  fetch(request, env) {
    const url = new URL(request.url);
    return fetch(new Request(env.UPSTREAM + url.pathname + url.search, request));
  },
};`;

// Every step ours takes on a `/client` call, in plain JavaScript (tests/bench/same-steps-worker.mjs,
// with the bot patterns of src/edge/bots.txt put in as ours compiles them in). Its bindings are
// ours. tests/edge/reference-parity.test.mjs shows it answers and forwards as ours does. The
// target of `ours ÷ JavaScript` is read against this one.
const BOT_PATTERNS = readFileSync(new URL('../../src/edge/bots.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#') && l.includes('\t'))
  .map((l) => l.slice(0, l.indexOf('\t')));
export const SAME_STEPS_JS_WORKER = readFileSync(new URL('./same-steps-worker.mjs', import.meta.url), 'utf8')
  .replace('/* BOT_PATTERNS */ []', JSON.stringify(BOT_PATTERNS));

// A floor, not the same work: fewer steps than ours in plain JavaScript: read the body,
// decode it fatally, parse it, check the origin, build a new upstream request (three headers,
// no redirects), await it, and answer with the CORS headers. It cannot refuse duplicate keys
// (JSON.parse keeps the last) and checks no field: a floor for this route's work in workerd,
// showing how much of ours is the work itself and how much is running it from wasm.
export const SAME_WORK_JS_WORKER = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const origin = request.headers.get('origin');
    if (origin !== env.ORIGIN) return new Response(null, { status: 403 });
    const bytes = await request.arrayBuffer();
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    const headers = new Headers();
    headers.append('content-type', 'application/vnd.api+json');
    headers.append('revision', request.headers.get('revision') ?? env.REVISION);
    const ua = request.headers.get('user-agent');
    if (ua !== null) headers.append('user-agent', ua);
    const res = await fetch(new Request(env.UPSTREAM + url.pathname + url.search,
      { method: 'POST', headers, body: bytes, redirect: 'manual' }));
    const out = new Headers();
    out.append('access-control-allow-origin', origin);
    out.append('access-control-expose-headers', 'retry-after');
    out.append('vary', 'Origin');
    const empty = res.headers.get('content-length') === '0';
    return new Response(empty ? null : await res.text(), { status: res.status, headers: out });
  },
};`;
