// The Cloudflare Workers / workerd entry: the wasm is imported as a module (the way
// workerd and wrangler load .wasm) and instantiated once per isolate. Everything else
// is Rust: the fetch handler (src/edge/worker.rs), the consumer of DELIVERY_QUEUE
// (src/edge/consumer.rs) and the Durable Object class of REPLAY_GUARD
// (src/edge/shared_replay.rs).
import wasmModule from "./klaviyo_edge_bg.wasm";
import { initSync, handle, consume } from "./klaviyo_edge.mjs";

initSync({ module: wasmModule });

export { ReplayGuard } from "./klaviyo_edge.mjs";
export default { fetch: handle, queue: consume };
