/**
 * klaviyo-wasm/edge/worker: the ready-made Cloudflare Worker (`dist/edge/worker.mjs`), its
 * settings from `env` alone. Deploy it as it is (see `js/edge/wrangler.toml` in the
 * repository), or re-export it: `export { default } from "klaviyo-wasm/edge/worker";`.
 */
import type { DeliveryHandler, EdgeHandler } from "./index.js";

export { ReplayGuard } from "./index.js";
declare const worker: { fetch: EdgeHandler; queue: DeliveryHandler };
export default worker;
