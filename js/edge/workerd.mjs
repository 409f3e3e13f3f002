// klaviyo-wasm/edge for workerd (Cloudflare Workers, wrangler, Miniflare): the package's
// "workerd" / "worker" export condition. The wasm is imported as a compiled module, the
// way workerd and wrangler load .wasm, and instantiated once per isolate at import.
import wasmModule from "../../dist/edge/klaviyo_edge_bg.wasm";
import { initSync } from "../../dist/edge/klaviyo_edge.mjs";
import { makeFactories } from "./create.mjs";

initSync({ module: wasmModule });

const loaded = Promise.resolve();

/** The wasm is loaded at import here: resolves at once (the same API as in Node). */
export function ready() {
  return loaded;
}

export const { createHandler, createQueueHandler } = makeFactories(() => true, ready);
// The Durable Object class of REPLAY_GUARD (workerd only: the class is made by the runtime).
export { ReplayGuard } from "../../dist/edge/klaviyo_edge.mjs";
