// The edge adapter: reads the request, asks the wasm what to do, does it. Every
// decision (routes, origins, signatures, validation, retries) is made in Rust
// (src/edge/); this file only moves bytes and waits.

// The settings the worker reads from `env` (vars and secrets). Only strings are passed.
const SETTINGS = [
  "KLAVIYO_PRIVATE_KEY", "KLAVIYO_PUBLIC_KEY", "ALLOWED_ORIGINS", "KLAVIYO_API_BASE",
  "KLAVIYO_REVISION", "EDGE_SIGNING_SECRET", "BROWSER_SERVER_METRICS",
  "KLAVIYO_WEBHOOK_SECRET", "WEBHOOK_FORWARD_URL", "MAX_BODY_BYTES", "ROUTE_PREFIX", "UPSTREAM_TIMEOUT_MS",
];

function settingsOf(env) {
  const out = {};
  for (const k of SETTINGS) if (typeof env?.[k] === "string") out[k] = env[k];
  return out;
}

// The body as text, reading no more than `limit` bytes: [text, tooLarge].
async function readBody(request, limit) {
  if (!request.body) return ["", false];
  const declared = Number(request.headers.get("content-length"));
  if (declared > limit) return ["", true];
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return ["", true];
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { all.set(c, at); at += c.byteLength; }
  return [new TextDecoder().decode(all), false];
}

function respond({ status, headers, body }) {
  return new Response(status === 204 || body === "" ? null : body, { status, headers });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A fetch handler `(request, env, ctx) => Response` over an initialised wasm module. */
export function createHandler(wasm) {
  return async function handle(request, env, ctx) {
    const settings = settingsOf(env);
    const url = new URL(request.url);
    const [body, tooLarge] = await readBody(request, wasm.bodyLimit(settings));
    const decision = JSON.parse(wasm.decide(
      request.method, url.pathname, url.search.slice(1), [...request.headers],
      body, tooLarge, settings, Date.now(),
    ));
    if (decision.notify) {
      const { url: to, body: raw } = decision.notify;
      const sent = fetch(to, { method: "POST", headers: { "content-type": "application/json" }, body: raw })
        .catch(() => {});
      if (ctx?.waitUntil) ctx.waitUntil(sent);
    }
    if (decision.reply) return respond(decision.reply);
    const fwd = decision.forward;
    for (let attempt = 0; ; attempt++) {
      let status = 0, retryAfter = null, type = null, text = "";
      try {
        const r = await fetch(fwd.url, {
          method: "POST", headers: fwd.headers, body: fwd.body, signal: AbortSignal.timeout(fwd.timeoutMs),
        });
        status = r.status;
        retryAfter = r.headers.get("retry-after");
        type = r.headers.get("content-type");
        text = await r.text();
      } catch {
        status = 0; // no answer: refused, dropped, or no answer within timeoutMs
      }
      const next = JSON.parse(wasm.afterUpstream(attempt, status, retryAfter, type, text, fwd.cors));
      if (next.reply) return respond(next.reply);
      await sleep(next.retryIn);
    }
  };
}
