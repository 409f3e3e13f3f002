// The command queue behind `window.klaviyoWasm`: runs `["method", ...args]` commands on
// one tracker, in order. Commands queued before the script ran, or pushed before the
// tracker exists (no `init` yet), keep the time they were pushed, which event calls
// carry as their `time` option.
// No page globals here (js/script/main.js wires it to the page), so it runs under
// node --test with a stand-in tracker: tests/script/run.test.mjs.
import { translate, isObject } from "./shapes.js";

/** Event calls and where their options argument is: the push time becomes `time`. */
const OPTIONS_AT = { track: 2, viewedProduct: 1, addedToCart: 1, startedCheckout: 1,
  viewedCollection: 1, submittedSearch: 1, activeOnSite: 1 };
/** A product's ProductID as text, or undefined. */
const productId = (p) => (isObject(p) && p.ProductID != null ? String(p.ProductID) : undefined);
const isInit = (c) => Array.isArray(c) && (c[0] === "init" || c[0] === "account");
/** The page's URL (none under node --test). */
const here = () => globalThis.location?.href ?? "";

/**
 * Options from the script element's data attributes: `data-company-id`, `data-api-base`,
 * `data-revision`, `data-consent`, `data-active-on-site`, `data-currency`, `data-debug`
 * (present and not "false"), `data-klaviyo-cookie="false"`, and `data-wasm-url`, else
 * the `.wasm` beside the script (`scriptUrl`).
 */
export function fromData(data, scriptUrl) {
  const o = { wasmUrl: data.wasmUrl || new URL("klaviyo_wasm_bg.wasm", scriptUrl).href };
  for (const k of ["companyId", "apiBase", "revision", "consent", "activeOnSite", "currency"]) if (data[k]) o[k] = data[k];
  if (data.debug !== undefined && data.debug !== "false") o.debug = true;
  if (data.klaviyoCookie === "false") o.klaviyoCookie = false;
  return o;
}

/**
 * A command runner.
 * @param create   `(options) => tracker` (Klaviyo.create)
 * @param warn     `(error) => void`: how a failing command is reported (never thrown)
 * @param defaults options from the script element's data attributes
 * @param parsed   `(f) => void`: f once the page's HTML is parsed (`start`'s `wait`, an `account`, and a
 *                 second copy's attributes, wait for it); none: at once
 * @returns `{ start(queue, times), run(command, time), api }`
 */
export function runner(create, warn, defaults = {}, parsed = (f) => f()) {
  let kl = null;
  let options;
  /** The company id of Klaviyo's `["account", id]` while no tracker runs. */
  let account;
  /** Whether the tracker's core runs (its `ready` resolved). */
  let ready = false;
  /** The messages onError has heard: a waiting call that rejects with one of them was
   * warned there (a refused option or a load failure rejects every waiting call). */
  const told = {};
  /** [command, push time] pairs waiting for `init`. */
  let held = [];
  /** ProductID -> the URL of its Viewed Product on this page: a `trackViewedItem` of it at
   * that URL is dropped (after a route change, or a reset, it is a new view). */
  const viewed = new Map();
  /** `trackViewedItem` calls waiting for the end of the task. */
  let items = null;
  /** Starts the tracker from the defaults (the tag's attributes, an `account`'s id),
   * unless one runs by then. */
  const fromDefaults = () => kl || run(["init"]);

  /** One command; returns what the tracker's method returned. Never throws. */
  function run(cmd, time) {
    try {
      if (!Array.isArray(cmd) || typeof cmd[0] !== "string") {
        throw Error('a command is an array like ["track", "Metric", { ... }]');
      }
      if (cmd[0] === "init") return init(cmd[1]);
      // Klaviyo's `["account", "AbC123"]`: init with that company id, once the page's HTML
      // is parsed, so that an `init` of the page's (with its consent, apiBase, ...) wins
      // and takes the id; commands until then wait for the tracker, with their push time.
      if (cmd[0] === "account") {
        if (kl) return options.companyId === cmd[1] ? undefined : init({ companyId: cmd[1] });
        const first = !account;
        account = cmd[1];
        if (first) parsed(fromDefaults);
        return undefined;
      }
      if (!kl) {
        held.push([cmd, time ?? Date.now()]); // kept until init, with its push time
        return undefined;
      }
      return exec(cmd, time);
    } catch (e) {
      warn(e);
      return undefined;
    }
  }

  function init(given = {}) {
    if (kl) throw Error("init: already initialised; this one is ignored");
    if (!isObject(given)) throw Error("init: options must be an object");
    const o = { ...defaults, ...(account && { companyId: account }) };
    // What the page leaves undefined, null or "" does not replace the tag's `data-*`:
    // spread over them, `consent: undefined` tracked a `data-consent="denied"` page, and
    // `apiBase: ""` went past the shop's worker. Without one, `create` judges it.
    for (const k of Object.keys(given)) if (given[k] != null && given[k] !== "" || !(k in o)) o[k] = given[k];
    // Calls the core refuses before it is ready reach onError (kind `invalid`) instead
    // of throwing: warn about those always, about the rest (network...) with debug. A
    // `ready` that fails otherwise (the wasm did not load) is warned too.
    // A refused async call also rejects: warned once, by whichever hears it first.
    let refused;
    const own = o.onError;
    o.onError = (e) => {
      if (e?.kind === "invalid") refused = e.message;
      told[e?.message] = 1;
      if (own) own(e);
      else if (o.debug === true || e?.kind === "invalid") warn(e);
    };
    kl = create(o);
    options = o;
    kl.ready?.then(
      () => (ready = true),
      (e) => e?.message !== refused && warn(e),
    );
    const waiting = held;
    held = [];
    for (const [c, t] of waiting) run(c, t);
    return undefined;
  }

  function exec(cmd, time) {
    // A change of consent: the trackViewedItem calls pushed before it go first, under
    // the answer they were pushed with. (Not for a currency: they go at the end of the
    // task, in the one in force then, so that one pushed beside its Viewed Product stays
    // one event.)
    const set = { consent: "setConsent", currency: "setCurrency" }[cmd[0]];
    if (set) {
      if (set === "setConsent") drain();
      if (typeof kl[set] !== "function") throw Error(`${cmd[0]}: this build has no ${set}`);
      return kl[set](cmd[1]);
    }
    // A page view of Klaviyo's trackViewedItem belongs to the visitor it was pushed
    // under: it goes before a reset (an identify names the same visitor, and a "Viewed
    // Product" of the same product after it still makes it one event).
    if (cmd[0] === "reset") {
      drain();
      viewed.clear(); // the next visitor's views are their own
    }
    const { method, args, viewedItem } = translate(cmd);
    // Klaviyo's own "Active on Site" beside ours ("auto": one a page view and a route)
    // would be the page's second.
    if (method === "activeOnSite" && cmd[0] === "track" && options.activeOnSite !== "manual") return undefined;
    const at = OPTIONS_AT[method];
    if (time !== undefined && at !== undefined) {
      const o = args[at];
      if (o === undefined || o === null) args[at] = { time };
      else if (isObject(o) && o.time == null) args[at] = { ...o, time };
    }
    if (viewedItem) return later(args);
    if (method === "viewedProduct") viewed.set(productId(args[0]), here());
    // Before the core is ready, an async call it refuses also reaches onError (warned
    // there); after, the rejection is the only word of it. Calls made as the core
    // starts (from a callback of an earlier call) go to it directly: only the rejection.
    const wasReady = ready;
    const out = kl[method](...args);
    if (out && typeof out.then === "function") {
      out.then(undefined, (e) => (wasReady || !told[e?.message]) && warn(e));
    }
    return out;
  }

  /**
   * Klaviyo's `trackViewedItem` comes in theme code beside a `track` "Viewed Product" of
   * the same product, before or after it. It runs at the end of the task, as a Viewed
   * Product only if none of that product came on this page: one view, one event.
   */
  function later(args) {
    if (!items) {
      items = [];
      queueMicrotask(drain);
    }
    items.push(args);
    return undefined;
  }

  /** The `trackViewedItem` calls waiting, now. */
  function drain() {
    const list = items || [];
    items = null;
    for (const a of list) {
      try {
        const id = productId(a[0]);
        if (id !== undefined && viewed.get(id) === here()) continue;
        viewed.set(id, here());
        kl.viewedProduct(...a);
      } catch (e) {
        warn(e);
      }
    }
  }

  return {
    /**
     * Runs what the page queued before the script loaded, in order; `times[i]` is when
     * `queue[i]` was pushed (the snippet records it; undefined: now). Without an `init`
     * in the queue, a `data-company-id` starts the tracker first (with `wait`, once the
     * HTML is parsed, unless an `init` came by then).
     */
    start(queue = [], times = [], wait = false) {
      const n = queue.length;
      let given = false;
      for (let i = 0; i < n; i++) given ||= isInit(queue[i]);
      // `wait` (`data-wait-for-init`): an `init` anywhere in the HTML wins over the
      // attributes; commands until then wait for it.
      if (!given && defaults.companyId) (wait ? parsed : (f) => f())(fromDefaults);
      for (let i = 0; i < n; i++) run(queue[i], times[i]);
    },
    run,
    /** What `window.klaviyoWasm` becomes once the script runs: push runs at once. */
    api: {
      loaded: true,
      /**
       * A second copy of the script ran (the snippet's and a tag of the shop's): when this
       * copy's tag had no company id, the second's data attributes are taken as its own,
       * and start the tracker once the page's HTML is parsed (an `init` of the page's, as
       * ever, wins), unless one runs by then.
       */
      tag(data) {
        if (kl || defaults.companyId) return warn(Error("a second klaviyo-wasm script is ignored"));
        Object.assign(defaults, data);
        parsed(fromDefaults);
      },
      push(...cmds) {
        let out;
        for (const c of cmds) out = run(c);
        return out;
      },
      /** The tracker (null until `init`), for `flush()`, `pending()`, `ready`. */
      get tracker() {
        return kl;
      },
    },
  };
}
