// Where the wasm comes from, for the npm page and the script tag: its own file, compiled
// while it downloads. The inline build (dist/web/inline.js) takes this file as
// wasm-fetch.js and js/wasm-source-inline.js in its place (.ci/build.sh).

/** The wasm beside this module; a bundler sees this literal and ships the file. A
 * classic-script bundle has no import.meta.url: js/script/main.js names the URL. Marked
 * pure, so the inline build, which never reads it, leaves the literal out. */
export const WASM_URL = /* @__PURE__ */ beside();

function beside() {
  return import.meta.url && new URL("klaviyo_wasm_bg.wasm", import.meta.url).href;
}

/** The module at `url`. It calls fetch before it returns, so the download is under way. */
export async function wasmModule(url, signal) {
  try {
    // Compiles while it downloads, off the main thread; needs `application/wasm`.
    return await WebAssembly.compileStreaming(fetch(url, { signal }));
  } catch (e) {
    if (signal?.aborted) throw e;
    const res = await fetch(url);
    if (!res.ok) throw Error(`HTTP ${res.status}`);
    return WebAssembly.compile(await res.arrayBuffer());
  }
}
