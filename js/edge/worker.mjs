// The Cloudflare Workers / workerd entry: the wasm is imported as a module (the way
// workerd and wrangler load .wasm) and instantiated once per isolate.
import wasmModule from "./klaviyo_edge_bg.wasm";
import { initSync, bodyLimit, decide, afterUpstream } from "./klaviyo_edge.mjs";
import { createHandler } from "./handler.mjs";

initSync({ module: wasmModule });
const handle = createHandler({ bodyLimit, decide, afterUpstream });

export default {
  fetch: (request, env, ctx) => handle(request, env, ctx),
};
