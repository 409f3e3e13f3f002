// The JavaScript workers the edge benches compare ours with (tests/bench/edge-bench.mjs,
// tests/bench/edge-profile.mjs), as module sources.

// A trivial pass-through worker: what any fetch-handler proxy costs in this workerd.
export const TRIVIAL_WORKER = `export default {
  fetch(request, env) {
    const url = new URL(request.url);
    return fetch(new Request(env.UPSTREAM + url.pathname + url.search, request));
  },
};`;

// For reference only (no target): the same work as ours in plain JavaScript: read the body,
// decode it fatally, parse it, check the origin, build a new upstream request (two headers,
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
