// klaviyo-wasm/edge for Node, Deno, Bun and bundlers (the package's default export
// condition; workerd gets workerd.mjs). The wasm is read from the package on the first
// request (or by `ready()`): from the file system when this module is a file (Node, Deno,
// Bun), else fetched from beside it (a bundler that copies the asset).
import { initSync } from "../../dist/edge/klaviyo_edge.mjs";
import { makeFactories } from "./create.mjs";

const WASM = new URL("../../dist/edge/klaviyo_edge_bg.wasm", import.meta.url);
// Not a literal in import(): bundlers for other targets must not try to resolve it.
const FS = "node:fs/promises";

let loaded = false;
let loading;

async function compile() {
  if (WASM.protocol === "file:") {
    const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ FS);
    return WebAssembly.compile(await readFile(WASM));
  }
  const res = await fetch(WASM);
  if (!res.ok) throw new Error(`klaviyo-wasm/edge: could not fetch ${WASM.href} (${res.status})`);
  return WebAssembly.compile(await res.arrayBuffer());
}

/** Loads the wasm (once); resolves when the handler can run without waiting. */
export function ready() {
  if (loaded) return Promise.resolve();
  loading ??= compile().then(
    (module) => { initSync({ module }); loaded = true; },
    (e) => { loading = undefined; throw e; },
  );
  return loading;
}

export const { createHandler, createQueueHandler } = makeFactories(() => loaded, ready);
// The Durable Object class of REPLAY_GUARD (workerd only: the class is made by the runtime).
export { ReplayGuard } from "../../dist/edge/klaviyo_edge.mjs";
