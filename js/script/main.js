// dist/script/klaviyo-wasm.js: the script-tag install as ONE classic script (this file,
// js/index.js, js/runtime.js and the wasm-bindgen glue, bundled by esbuild as an IIFE).
// It loads klaviyo_wasm_bg.wasm from beside itself (or `data-wasm-url`, or the init
// option `wasmUrl`) and turns `window.klaviyoWasm` into a command queue that runs at
// once. It never writes `window.klaviyo` or touches `window._learnq`: those belong to
// Klaviyo's own onsite script (js/index.js reads `window.klaviyo` to hand it our
// identify). See docs/script-tag.md.
import { Klaviyo, preload } from "../index.js";
import { runner, fromData } from "./run.js";

const queued = window.klaviyoWasm;
// currentScript is only set while this script runs for the first time.
const el = document.currentScript || document.querySelector('script[src*="klaviyo-wasm"]');
if (queued?.loaded) {
  // A second copy (the snippet's and a tag of the shop's): the first runs the queue, and
  // takes this tag's data attributes if its own had none (it tracked nothing, silently).
  if (el && "companyId" in el.dataset) queued.tag?.(fromData(el.dataset, el.src));
} else {
  const warn = (e) => console.warn("klaviyo-wasm:", e?.message ?? e);
  const defaults = fromData(el?.dataset ?? {}, el?.src || location.href);
  // The .wasm downloads while the page goes on to its `init` (which may come later).
  preload(defaults.wasmUrl);
  const r = runner((o) => Klaviyo.create(o), warn, defaults, whenParsed);
  const wait = !!el && "waitForInit" in el.dataset;
  window.klaviyoWasm = r.api;
  // The snippet's queue: commands in order, their push times in `t` (a plain array
  // made by the page itself has none: those calls take the time they run).
  if (Array.isArray(queued)) {
    // Code that kept a reference to the old queue still reaches the tracker.
    queued.push = r.api.push;
    r.start(queued, Array.isArray(queued.t) ? queued.t : [], wait);
  } else {
    r.start([], [], wait);
  }
}

/**
 * `f` once the page's HTML is parsed: for `data-wait-for-init` (the edge worker sets it
 * where it gave the company id) and Klaviyo's `account`, so that an `init` anywhere in
 * the HTML still wins, though this async script ran before it. "interactive" comes
 * before the deferred and module scripts have run, and so before DOMContentLoaded: an
 * `init` there must still win (no navigation entry: taken as past). `load` too, in case
 * the entry read 0 for an event already past (timestamps rounded down; `f` starts the
 * tracker once).
 */
function whenParsed(f, state = document.readyState) {
  const nav = performance.getEntriesByType?.("navigation")[0];
  return state === "loading" || (state === "interactive" && nav && !nav.domContentLoadedEventStart)
    ? (addEventListener("DOMContentLoaded", f), addEventListener("load", f))
    : f();
}
