// The Cloudflare Workers / workerd entry: the wasm is imported as a module (the way
// workerd and wrangler load .wasm) and instantiated once per isolate. Everything else
// is Rust: the fetch handler (src/edge/worker/), the consumer of DELIVERY_QUEUE and of
// its dead-letter queue (src/edge/consumer.rs) and the Durable Object class of REPLAY_GUARD
// (src/edge/shared_replay.rs). It also serves the script-tag files built into it.
import wasmModule from "./klaviyo_edge_bg.wasm";
import { initSync, handle, consume, setScriptFiles } from "./klaviyo_edge.mjs";
// The script-tag install, served under /script/ (src/edge/script.rs): text and bytes.
import scriptJs from "./script/klaviyo-wasm.js.txt";
import scriptWasm from "./script/klaviyo_wasm_bg.wasm.bin";
import snippet from "./script/snippet.min.js.txt";

initSync({ module: wasmModule });
setScriptFiles(scriptJs, new Uint8Array(scriptWasm), snippet);

export { ReplayGuard } from "./klaviyo_edge.mjs";
export default { fetch: handle, queue: consume };
