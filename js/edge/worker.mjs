// The Cloudflare Workers / workerd entry: the wasm is imported as a module (the way
// workerd and wrangler load .wasm) and instantiated once per isolate. Everything else
// is the Rust fetch handler (src/edge/worker.rs).
import wasmModule from "./klaviyo_edge_bg.wasm";
import { initSync, handle } from "./klaviyo_edge.mjs";

initSync({ module: wasmModule });

export default { fetch: handle };
