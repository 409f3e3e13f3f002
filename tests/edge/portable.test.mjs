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
