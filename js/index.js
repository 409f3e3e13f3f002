// The browser entry: loads the wasm once, then hands every call to the Rust tracker.
// Policy lives in Rust; this file only adapts names and makes `init` async.
import load, { Tracker } from "./klaviyo_wasm.js";

let loading;

/** Loads and instantiates the wasm module once per page, however many trackers exist. */
function ready(wasmUrl) {
  loading ??= load(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  return loading;
}

export class Klaviyo {
  #t;

  constructor(tracker) {
    if (!(tracker instanceof Tracker)) {
      throw new Error("klaviyo: use `await Klaviyo.init({ companyId })`");
    }
    this.#t = tracker;
  }

  static async init(options = {}) {
    await ready(options.wasmUrl);
    const { onError, wasmUrl, ...rest } = options;
    if (onError !== undefined && typeof onError !== "function") {
      throw new Error("init: onError must be a function");
    }
    return new Klaviyo(new Tracker(rest, onError));
  }

  async identify(profile) { this.#t.call("identify", profile); }
  track(metric, properties, options) { return this.#t.track(metric, properties, options); }
  viewedProduct(product, options) { return this.#t.call("viewedProduct", product, options); }
  addedToCart(item, options) { return this.#t.call("addedToCart", item, options); }
  startedCheckout(checkout, options) { return this.#t.call("startedCheckout", checkout, options); }
  async subscribe(options) { this.#t.call("subscribe", options); }
  async backInStock(options) { this.#t.call("backInStock", options); }
  flush() { return this.#t.flush(); }
  pending() { return this.#t.call("pending"); }
  reset() { this.#t.call("reset"); }
  /** Stops sending and listening (the queue stays on disk for the next page). */
  close() { this.#t.call("close"); }
  get anonymousId() { return this.#t.call("anonymousId"); }
}

export default Klaviyo;
