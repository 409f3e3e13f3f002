// The inline build's wasm source (dist/web/inline.js, `klaviyo-wasm/inline`): the .wasm's
// bytes travel inside the module as a Latin-1 string, one character a byte, so the page
// makes no second request, and the module is compiled as soon as the package is
// evaluated. After minification (a minifier would escape them), .ci/inline-wasm.mjs
// writes the decoder's bytes over their placeholder, and the .wasm's at the top of the
// file as a variable that its placeholder's place then names; it refuses a build where
// either placeholder is not there exactly once.
import { wasmModule as fetched } from "./wasm-fetch.js";

/** Not a URL: the bytes below. A `wasmUrl` given to create() is fetched as usual. */
export const WASM_URL = "inline";

export function wasmModule(url, signal) {
  return url === WASM_URL ? compiled("__KLAVIYO_WASM_BYTES__") : fetched(url, signal);
}

/** Compiled here and now: with no download to overlap, a synchronous compile (about
 * 1.5 ms for 52 KB) is answered sooner than an asynchronous one. The text becomes bytes
 * at native speed: TextEncoder writes it as UTF-8 into a tiny wasm's memory, whose one
 * function folds it back (js/latin1-decoder.wat). A JavaScript loop, run before V8 has
 * compiled it, made ready 5 ms later (16.2 against 11.3 ms, tests/bench/queue-bench.mjs). */
function compiled(latin1) {
  const decoder = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array("__KLAVIYO_LATIN1_DECODER__"))).exports;
  decoder.m.grow((latin1.length >> 15) + 1); // UTF-8: at most 2 bytes a character
  const text = new Uint8Array(decoder.m.buffer);
  return new WebAssembly.Module(text.subarray(0, decoder.f(new TextEncoder().encodeInto(latin1, text).written)));
}
