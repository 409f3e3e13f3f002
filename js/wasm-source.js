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

/** The module at `url`. It calls fetch before it returns, so the download is under way;
 * one request, whatever it answers (a server without the file is asked once). */
export async function wasmModule(url, signal) {
  const res = await fetch(url, { signal });
  if (!res.ok) throw Error(`HTTP ${res.status}`);
  // Compiles while it downloads, off the main thread, where the engine has it and the
  // server names exactly the type it takes (a parameter, `; charset=...`, is refused, and
  // engines differ on letter case); otherwise the bytes are read whole, then compiled.
  try {
    if (WebAssembly.compileStreaming && res.headers.get("content-type") === "application/wasm") {
      return await WebAssembly.compileStreaming(res.clone());
    }
  } catch (e) {
    // A Response of a page's fetch polyfill, which it refuses (a TypeError): compiled
    // whole. Bad bytes or a Content-Security-Policy's refusal are not tried again (a
    // second violation report for the shop).
    if (!(e instanceof TypeError)) throw e;
  }
  return WebAssembly.compile(await res.arrayBuffer());
}
