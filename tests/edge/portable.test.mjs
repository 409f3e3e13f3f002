// The worker's fetch handler on a runtime other than workerd: plain Node (global fetch,
// Request, Response, ReadableStream), the wasm compiled from the file as Deno or Bun
// would; its upstream calls go through gloo-net, which binds the global fetch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startEmulator } from "../emulator/server.mjs";

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/edge");

test("the handler runs unchanged outside workerd", async () => {
  const wasm = await import(path.join(DIST, "klaviyo_edge.mjs"));
  wasm.initSync({ module: await WebAssembly.compile(await readFile(path.join(DIST, "klaviyo_edge_bg.wasm"))) });
  const handle = (request, env) => wasm.handle(request, env, {});
  const emu = await startEmulator({ port: 0 });
  try {
    const env = { KLAVIYO_PUBLIC_KEY: "AbC123", ALLOWED_ORIGINS: "https://shop.example", KLAVIYO_API_BASE: emu.url };
    const health = await handle(new Request("http://edge.local/health"), env);
    assert.equal(health.status, 200);
    const body = JSON.stringify({
      data: { type: "event", attributes: {
        properties: {}, unique_id: "portable-1",
        metric: { data: { type: "metric", attributes: { name: "Viewed Product" } } },
        profile: { data: { type: "profile", attributes: { anonymous_id: "a-1" } } },
      } },
    });
    const r = await handle(new Request("http://edge.local/client/events?company_id=AbC123", {
      method: "POST", body,
      headers: { origin: "https://shop.example", revision: "2026-07-15", "content-type": "application/vnd.api+json" },
    }), env);
    assert.equal(r.status, 202);
    assert.equal(r.headers.get("access-control-allow-origin"), "https://shop.example");
    const seen = await emu.requests();
    assert.equal(seen.requests.filter((q) => q.accepted && q.uniqueIds.includes("portable-1")).length, 1);
  } finally {
    await emu.close();
  }
});

// createHandler's settings are merged over env, and one that is null or a blank string
// is skipped like undefined: `createHandler({ DELIVERY_QUEUE: null })` (a binding looked
// up and absent) must not turn env's queue off, nor `KLAVIYO_PRIVATE_KEY: ""` (an empty
// environment variable) hide env's key behind a 500 missing_setting.
test("createHandler skips a null or blank setting: env's value stands", async () => {
  const { createHandler } = await import("../../js/edge/index.mjs");
  const { sign, SIGNATURE_HEADER } = await import("../../js/sign.mjs");
  const emu = await startEmulator({ port: 0 });
  const queued = [];
  const queue = (into) => ({
    async send(body) { into.push(body); },
    async sendBatch(messages) { for (const m of messages) into.push(m.body); },
  });
  const env = {
    KLAVIYO_PRIVATE_KEY: "pk_test", EDGE_SIGNING_SECRET: "secret", KLAVIYO_API_BASE: emu.url,
    DELIVERY_QUEUE: queue(queued), DELIVERY_DEAD_LETTERS: queue([]),
  };
  const { DELIVERY_QUEUE: _q, DELIVERY_DEAD_LETTERS: _d, ...direct } = env;
  let n = 0;
  const call = async (handler, callEnv) => {
    n += 1;
    const body = JSON.stringify({
      data: { type: "event", attributes: {
        properties: {}, unique_id: `skip-${n}`,
        metric: { data: { type: "metric", attributes: { name: "Placed Order" } } },
        profile: { data: { type: "profile", attributes: { email: "skip@example.com" } } },
      } },
    });
    const signature = await sign(body, "secret", { route: "/api/events" });
    const r = await handler(new Request("http://edge.local/api/events", {
      method: "POST", body,
      headers: { [SIGNATURE_HEADER]: signature, revision: "2026-07-15", "content-type": "application/vnd.api+json" },
    }), callEnv);
    return { status: r.status, body: await r.json().catch(() => null), uniqueId: `skip-${n}` };
  };
  try {
    for (const key of [null, "", "  ", undefined]) {
      const r = await call(createHandler({ KLAVIYO_PRIVATE_KEY: key }), direct);
      assert.equal(r.status, 202, `KLAVIYO_PRIVATE_KEY: ${JSON.stringify(key)} → ${JSON.stringify(r.body)}`);
      const seen = await emu.requests();
      assert.equal(seen.requests.filter((q) => q.accepted && q.uniqueIds.includes(r.uniqueId)).length, 1);
    }
    for (const binding of [null, "", undefined]) {
      const r = await call(createHandler({ DELIVERY_QUEUE: binding }), env);
      assert.equal(r.status, 202, `DELIVERY_QUEUE: ${JSON.stringify(binding)} → ${JSON.stringify(r.body)}`);
      assert.equal(queued.filter((m) => JSON.stringify(m).includes(r.uniqueId)).length, 1,
        `DELIVERY_QUEUE: ${JSON.stringify(binding)}: env's queue took the call`);
      const seen = await emu.requests();
      assert.equal(seen.requests.filter((q) => q.uniqueIds.includes(r.uniqueId)).length, 0, "nothing sent directly");
    }
    // A setting that is given still wins over env.
    const r = await call(createHandler({ KLAVIYO_PRIVATE_KEY: "pk_other", EDGE_SIGNING_SECRET: "other" }), direct);
    assert.equal(r.status, 401, "the code's signing secret, not env's");
  } finally {
    await emu.close();
  }
});
