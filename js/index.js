// The browser package: `Klaviyo.create(options)` returns a tracker at once; its calls
// are accepted before the wasm has loaded and handed to the core, in order, once it
// has. `await Klaviyo.init(options)` is the same, ready. All rules live in the wasm
// core; this file only adapts names, stamps each call with its id and time, and keeps
// the calls of the loading window.
import { Runtime, NS, storage, report, attach, cookies, listenToOtherTabs, trackers, now, uuid, deniedSince, heardLate } from "./runtime.js";
import { WASM_URL, wasmModule } from "./wasm-source.js";

// The core's Op codes (`enum Op` in src/core/client/mod.rs, named alike; tests/build/seam.test.mjs
// fails if they differ). The EARLY_ codes are no Op: they mark, in the loading window,
// a reset() and a change of consent, so that the core replays them in order.
const IDENTIFY = 1, TRACK = 2, VIEWED_PRODUCT = 3, ADDED_TO_CART = 4, STARTED_CHECKOUT = 5,
  SUBSCRIBE = 6, BACK_IN_STOCK = 7, VIEWED_COLLECTION = 8, SUBMITTED_SEARCH = 9,
  ACTIVE_ON_SITE = 10, PAGE_VIEW = 11, EARLY_RESET = 0, EARLY_CONSENT = -1;
/** Numbers that JSON would turn into null ("not given"): sent as strings instead, so
 * the core refuses them by name. */
/** The fields the core reads as numbers (src/core/ecommerce.rs), and an event's time. */
const NUMBERS = ["value", "Price", "Quantity", "CartTotal", "CompareAtPrice", "AddedItemPrice", "AddedItemQuantity", "$value", "ResultCount", "time"];

/** Consent states, by the code the core takes (src/core/consent.rs has the rules). */
const CONSENT = ["pending", "granted", "denied"];
const PENDING = 0, GRANTED = 1, DENIED = 2;
/** A third of EARLY_STALE_MS (src/core/client/mod.rs), after which the sender tab adopts
 * a saved loading window as a closed page's. */
const ALIVE_MS = 20_000;
/** The core's codes for a denial carried out before it ran: here (told, erased), or by
 * another tab while this page was in the back/forward cache or frozen (erased there,
 * the worker's cookie deleted there). It drops what it holds without erasing again
 * (src/browser/exports.rs, CONSENT); the adapter deletes the cookie for the first only. */
const DENIED_HERE = 4, DENIED_AWAY = 5;
/** The code of a consent state; throws, naming `who`, for anything else. */
function consentCode(state, who) {
  const code = CONSENT.indexOf(state);
  if (code < 0) throw Error(`${who}: consent must be "pending", "granted" or "denied"`);
  return code;
}

/** Why a tracker's currency (`currency`, `setCurrency`) is refused, or nothing: three
 * letters, or none given (null, undefined, blank). The core checks it again. */
const badCurrency = (c) => (typeof c == "string" ? c.trim() && !/^[a-z]{3}$/i.test(c) : c != null) &&
  "currency must be a three-letter ISO 4217 code, like USD";

let loading;

/** Why the wasm did not load, as `onError` and `ready` report it (kind `load`). Chromium
 * and WebKit name 'unsafe-eval' in a policy's refusal; Firefox says CSP. */
function loadError(e, url) {
  const why = String(e?.message ?? e);
  return report("load", `klaviyo: the wasm did not load from ${url} (${why})${/CSP|unsafe-eval/i.test(why)
    ? ": add 'wasm-unsafe-eval' to the Content-Security-Policy's script-src" : ""}`);
}

/** Trackers told of each single-page route change (`activeOnSite: "auto"`). */
const routes = new Set();
/** The page's last view of each shop (each tracker's core keeps its own), and whether
 * the tracker that made it delivers: one map for every copy of this module in the page
 * (the npm package beside the script tag, or the inline build). */
const viewed = (globalThis[Symbol.for("klaviyo-wasm views 1")] ||= {});
let watching;
/** Wraps the History API once: `pushState`, and `replaceState` to another path, are
 * route changes, and so is `popstate`. */
function watchRoutes() {
  if (watching) return;
  watching = true;
  const changed = () => routes.forEach((f) => f());
  for (const k of ["pushState", "replaceState"]) {
    const original = history[k];
    try {
      history[k] = function (...args) {
        const path = location.pathname;
        original.apply(this, args); // returns nothing
        if (k === "pushState" || location.pathname !== path) changed();
      };
    } catch { /* a page that froze history: its route changes are not seen, popstate is */ }
  }
  addEventListener("popstate", changed);
}

// Ids: one random UUID per page and a counter: unique across pages (the UUID) and
// within the page (the counter), and far cheaper than a crypto.randomUUID() per call.
const seed = uuid() + "-";
let count = 0;
const nextId = () => seed + ++count;
/** The last call's text, as the core reads it. */
let sent;
/** An event's `$event_id` (Klaviyo's) as the core takes it for the `unique_id` where the
 * options give none (a string but "", a number as its text), read from the call's text
 * as the core reads it (not the page's object: `toJSON`, getters, inherited members), so
 * that the call returns the id sent. The properties are the first object argument. */
function eventId(op) {
  if (!sent.includes('"$event_id"')) return;
  const e = JSON.parse(sent)[op == TRACK ? 3 : 2]?.$event_id;
  return typeof e == "number" || e && typeof e == "string" ? String(e) : undefined;
}

/** The URL being loaded; the abort of a load started ahead that no tracker awaits yet;
 * whether a tracker was created (its own load then starts at the end of its task). */
let loadingUrl, ahead, created;

/** Fetches and compiles the wasm once per page, however many trackers exist. A load
 * started ahead (`preload`) for another URL than the first tracker's is dropped. */
function load(url) {
  const u = String(url || WASM_URL);
  if (loading && (u === loadingUrl || !ahead)) {
    ahead = null;
    return loading;
  }
  ahead?.abort();
  ahead = null;
  return start(u);
}

function start(u, signal) {
  loadingUrl = u;
  let me;
  me = loading = (async () => {
    try {
      const module = wasmModule(u, signal);
      listenToOtherTabs(); // while it downloads: off the path to ready
      // Its exports are called as they are (see js/runtime.js): it imports nothing, so
      // no import object, and wasm-bindgen's generated wrappers are not needed.
      const compiled = await module;
      if (signal?.aborted) return; // another URL was asked for: its load attaches
      attach(new WebAssembly.Instance(compiled).exports);
    } catch (e) {
      if (loading === me) loading = 0; // the next tracker created loads it again
      throw loadError(e, u);
    }
  })();
  loading.catch(() => {}); // a tracker that awaits it reports it
  return loading;
}

/** Starts the download before any tracker exists, so that `create` finds it under way.
 * At the end of the current task (the last URL asked wins): a tracker created in this
 * task loads what it names itself; one created later with another `wasmUrl` aborts it. */
let wanted;
export function preload(url = WASM_URL) {
  if (!url || !globalThis.document) return; // not a page (server-side rendering, a test)
  if (!wanted) {
    queueMicrotask(() => {
      const u = String(wanted);
      wanted = null;
      if (created || (loading && (!ahead || u === loadingUrl))) return;
      ahead?.abort();
      ahead = new AbortController();
      start(u, ahead.signal);
    });
  }
  wanted = url;
}
preload();

/** A number JSON cannot hold, or an invalid Date (of any window, so not `instanceof`:
 * an iframe's too; anything else with a `getTime` is no valid value there either). */
const bad = (o) => (typeof o === "number" || o?.getTime) && !isFinite(o);

/** `JSON.stringify([id, now, ...args])`; a value JSON cannot hold becomes `?`, which the
 * core refuses naming the argument. */
function encode(id, now, args, free) {
  // JSON.stringify's replacer: in those fields of the arguments (not of `free`, track's
  // own properties), a number JSON cannot hold, or an invalid Date (it would make either
  // `null`, "not given"), as text, which the core refuses naming the field. Nothing else
  // is touched.
  const finite = function (k, v) {
    return args.includes(this) && this !== free && NUMBERS.includes(k) && bad(this[k]) ? String(this[k]) : v;
  };
  try {
    // The replacer only where a field needs it (it slows every call); a getter that
    // throws, or a revoked Proxy, is refused below like any value JSON cannot hold.
    let nonFinite;
    for (const a of args) {
      if (a && typeof a === "object" && a !== free) {
        for (const k of NUMBERS) if (bad(a[k])) nonFinite = finite;
      }
    }
    return JSON.stringify([id, now, ...args], nonFinite);
  } catch {
    return `["${id}",${now}${args.map((a) => {
      try { return "," + (JSON.stringify(a, finite) ?? "null"); } catch { return ",?"; }
    }).join("")}]`;
  }
}

const TOKEN = Symbol("klaviyo");
/** The page an automatic Active on Site names: as `page`, where Klaviyo's onsite script
 * puts it (segments and flows on that metric read it), and as `URL`. No fragment. */
const here = (u = location.href.split("#")[0]) => ({ page: u, URL: u });
/** A page prerendered that the visitor has not seen (yet: it may never be shown). */
const unseen = () => globalThis.document?.prerendering;

export class Klaviyo {
  /** The Runtime once the core is ready (undefined until then). */
  #rt;
  /** Calls made before the core is ready: [op, text, settle], in order. */
  #early = [];
  /** Where in #early the calls the core will keep start: those made since consent was
   * last given back after a denial (Infinity while denied). Only they are stored. */
  #from = 0;
  #earlyKey;
  /** A save is due at the end of this task (undefined: none). */
  #saving;
  /** The timer that keeps the saved window fresh while the wasm loads. */
  #alive;
  #options;
  /** `options.debug === true`. */
  #debug;
  /** The consent state's code until the core holds it; the one it starts with. */
  #consent;
  #consent0;
  /** Why the wasm did not load (then the window's calls stay stored). */
  #failed;
  /** While the wasm loads, or after it failed: hears another tab's withdrawal, and
   * another page adopting the saved calls (js/runtime.js `trackers`). */
  #listener;

  /** Starts a tracker now and returns it; calls are accepted at once. */
  static create(options = {}) {
    return new Klaviyo(TOKEN, options);
  }

  /** Starts a tracker and waits until its core is ready (bad options reject here). */
  static async init(options = {}) {
    return Klaviyo.create(options).ready;
  }

  constructor(token, options) {
    if (token !== TOKEN) {
      throw Error("klaviyo: use Klaviyo.create(options) or await Klaviyo.init(options)");
    }
    if (Object(options) !== options) throw Error("init: options must be an object");
    if (options.onError != null && typeof options.onError !== "function") {
      throw Error("init: onError must be a function");
    }
    const auto = options.activeOnSite ?? "auto";
    if (auto !== "auto" && auto !== "manual") {
      throw Error('init: activeOnSite must be "auto" or "manual"');
    }
    // A bad one costs the tracker nothing else (a page's data, not its set-up): reported,
    // and the values go in no currency.
    const currency = options.currency; // read once: a getter may answer otherwise twice
    const bad = badCurrency(currency);
    if (bad) queueMicrotask(() => this.#emit(report("invalid", "init: " + bad)));
    else this.#currency = currency?.trim() || undefined; // (blank: none)
    this.#options = options;
    this.#debug = options.debug === true; // taken here, where a getter that throws refuses create
    created = true;
    const consent = consentCode(options.consent === undefined ? "granted" : options.consent, "init");
    // A denial at create is replayed as one made in the window (the core then does not
    // tell the other tabs again: it was done here).
    this.#consent = this.#consent0 = consent === DENIED ? PENDING : consent;
    this.#prefix = `${NS}${options.companyId}:`;
    this.#earlyKey = `${this.#prefix}pre:${uuid()}`;
    if (consent === DENIED) this.#deny(true);
    this.#listener = {
      own_: this.#earlyKey, // its name in js/runtime.js `tell`, as its core's will be
      otherTab: (e) => {
        if (e.newValue === "denied" && e.key === this.#prefix + "consent") this.#deny(0, heardLate(this.#prefix) && DENIED_AWAY);
        // (A denial's erasure removes it too: the marker came first, and the core drops them.)
        else if (e.newValue === null && e.key === this.#earlyKey && this.#consent !== DENIED) this.#adopted(e.oldValue);
      },
      // Back from the cache, or unfrozen: a denial made since `from`, when it went.
      restored_: (from) => deniedSince(this.#prefix, from) && this.#deny(0, DENIED_AWAY),
    };
    trackers.add(this.#listener);
    /** Resolves to this tracker once the core runs; rejects if it refused the options. */
    // The download starts at the end of this task (if `preload` has not started it): a
    // first fetch() costs milliseconds, and the calls the page makes right after
    // create() should not wait.
    // A page prerendered ahead of a click (speculation rules, the address bar's guess)
    // is one the visitor may never see: its calls are held in memory only (stored,
    // another tab would send them once this page went stale) and its core starts when
    // it is shown. Then they are saved as any loading window's, unless it started.
    const shown = unseen() && new Promise((r) => document.addEventListener("prerenderingchange", () => r(setTimeout(() => this.#save()))));
    this.ready = Promise.resolve()
      .then(() => load(options.wasmUrl))
      .then(() => shown)
      .then(() => this.#start(), (e) => this.#fail(e));
    this.ready.catch(() => {}); // reported through onError; never an unhandled rejection
    // (Not in a Web Worker: no page, and its location is the worker's script.)
    if (auto === "auto" && globalThis.document) {
      // One Active on Site per page view and per route change (never two in a row for
      // one URL, the core sees to it), unless Klaviyo's onsite script sends its own.
      this.#pageView = (view = [here()]) => {
        // Not for a tracker closed before the load (close() takes it out of routes).
        if (!routes.has(this.#pageView)) return;
        // Klaviyo's onsite script (static.klaviyo.com/onsite/js/, it loads its modules
        // from there too) sends its own for a visitor it knows (its cookie, which it may
        // have written since we read it, or an email click's _kx in this URL): the core
        // then sends ours only for one we know and it does not.
        try {
          if (document.querySelector('script[src*="//static.klaviyo.com/onsite/js/"]')) {
            if (/[?&]_kx=/.test(view[0].URL)) return;
            this.#rt?.cookies_();
            view = [view[0], { ...view[1], onsite: 1 }];
          }
          // One view of a URL in a row for the page, however many of the shop's trackers
          // see it (a second one, or one created again after close(), as a component
          // mounts again). A landing view made at the load for a page the visitor has
          // left since is kept apart: it stands for no view of where they are.
          const url = view[0].URL, key = this.#prefix + (url !== location.href.split("#")[0]);
          const [was, delivers] = viewed[key] || [];
          // (Unless the tracker that made it will not deliver it: denied, failed, or
          // closed while pending, which drops what it holds.)
          if (was !== url || !delivers()) {
            this.#call(PAGE_VIEW, view);
            viewed[key] = [url, (c = this.#rt?.state ?? this.#consent) => !this.#failed && (c === GRANTED || c === PENDING && routes.has(this.#pageView))];
          }
        } catch { /* never into the page (it runs inside the router's pushState) */ }
      };
      routes.add(this.#pageView);
      watchRoutes();
      // Klaviyo's tag often comes after ours (the end of the body, added on load by the
      // shop's platform or a tag manager): the first view is decided once the page
      // loaded, as the landing page's, at the time it was shown (a route change before
      // the load sends its own at once).
      // Created after the load: at the end of this task, after an identify made right
      // after create (beside klaviyo.js, the core decides by who our calls named).
      // Prerendered: the view is the one made when the page is shown.
      const firstView = () => {
        if (document.readyState === "complete") queueMicrotask(this.#pageView);
        else {
          const landing = [here(), { time: now() }];
          addEventListener("load", () => setTimeout(this.#pageView, 0, landing));
        }
      };
      shown ? shown.then(firstView) : firstView();
    }
  }

  #pageView;
  #prefix;
  #edge;

  /** Consent is withdrawn in the loading window: by this page (`tell`: as the core would,
   * the other tabs are told through the marker first) or by another tab. Everything we
   * stored is erased at once (not for one made while this page was in the back/forward
   * cache, `back`: DENIED_AWAY, erased then); the core replays the denial in its place
   * among the calls (those before it are dropped, and reported, there; storage is not
   * erased again). */
  #deny(tell, back) {
    if (this.#consent === DENIED) return;
    this.#consent = DENIED;
    this.#from = Infinity;
    this.#early.push(EARLY_CONSENT, back || DENIED_HERE, undefined);
    // Made in another tab while this page was in the back/forward cache: carried out
    // there (what was written since is others', the worker's cookie a new visitor's),
    // but this page's calls saved since, before it heard of it (a call made by the
    // shop's own pageshow or resume listener, which ran before this module's: only a
    // page gone a minute has its calls adopted, so none is sent meanwhile).
    if (back) return storage.del(this.#earlyKey, this.#earlyKey);
    // Read before the erase: the replayed denial clears the worker's cookie (runtime.js visitor_).
    this.#edge ||= storage.get(this.#prefix + "edge");
    if (tell) storage.set(this.#prefix + "consent", "denied", this.#earlyKey);
    storage.dropPrefix(this.#prefix, this.#earlyKey);
  }

  /** Another page adopted the saved calls (`old`, the record it removed; a page adopts
   * those of a page still loading after a minute, or whose wasm failed): they are its
   * to send, so they leave the window. The rest are saved again. */
  #adopted(old) {
    const early = this.#early;
    for (let i = this.#from; i < early.length; i += 3) {
      if (early[i] > 0 && String(old).includes(JSON.stringify(early[i + 1]))) early.splice(i, 3)[2]?.(), i -= 3;
    }
    this.#save();
  }

  /** The window's promises get `e`: the core refused the options, or never loaded. */
  #settleAll(e) {
    for (let i = 2; i < this.#early.length; i += 3) this.#early[i]?.(e);
  }

  /** onError, which may not throw into us. */
  #emit(e) {
    // `debug`: logged as the core's reports are (runtime.js `log_`), with or without an onError.
    if (this.#debug) console.debug(NS, e.message);
    try { this.#options.onError?.(e); } catch { /* the shop's handler: ignored */ }
  }

  /** This tracker never runs; throws `e`. The wasm did not load, or the page's
   * environment kept the core from starting: the window's calls stay stored (a later
   * page of the shop adopts them); or the core refused the options (`#start` drops them
   * first). Those that promise an answer get `e`, as do the later ones. */
  #fail(e) {
    this.#failed = e;
    this.#settleAll(e);
    this.#emit(e);
    throw e;
  }

  #start() {
    // (The currency is this file's: it goes with each call, never in the core's options.)
    const { onError, debug, wasmUrl, currency, ...rest } = this.#options;
    rest.consent = this.#consent0; // the window's changes are replayed in order
    let rt;
    try {
      rt = new Runtime(rest, onError, this.#debug, this.#edge, this.#earlyKey);
      trackers.delete(this.#listener);
    } catch (e) {
      // Not the core's refusal of the options: the page broke something it needs.
      if (e?.kind !== "invalid") this.#fail(report("load", `klaviyo: the tracker could not start (${e instanceof Error ? e.message : typeof e})`));
      trackers.delete(this.#listener);
      // Refused: this tracker never runs. Its promises, now and later, get the refusal;
      // its calls are neither kept nor saved (no later page could send them either).
      this.#settleAll(e);
      this.#early = [];
      storage.del(this.#earlyKey, this.#earlyKey);
      this.#earlyKey = "";
      this.#fail(e); // throws
    }
    // The window's calls, in order, with the id and time they were given. The core is
    // ready for calls made meanwhile (from onError, hearing a refused one): in order.
    const early = this.#early;
    this.#early = [];
    this.#rt = rt;
    rt.replayWindow(() => {
      for (let i = 0; i < early.length; i += 3) {
        let err;
        try {
          const op = early[i];
          if (op === EARLY_RESET) rt.reset();
          else if (op === EARLY_CONSENT) rt.consent(early[i + 1]);
          else rt.call(op, early[i + 1]);
        } catch (e) {
          err = e;
          rt.emit(report("invalid", e.message));
        }
        early[i + 2]?.(err);
      }
    });
    return this;
  }

  /** A call: to the core when it is ready, else kept (and saved) until it is. */
  #call(op, args, settle) {
    const id = nextId();
    // (track's own properties are free-form, unless they are its options too)
    const text = encode(id, now(), args, op === TRACK && args[1] !== args[2] && args[1]);
    if (this.#rt) this.#rt.call(op, text);
    else this.#keep(op, text, settle);
    sent = text; // after: the shop's onError, run by the core meanwhile, may call again
    return id;
  }

  #keep(op, text, settle) {
    if (!this.#earlyKey) return; // the core refused the options
    this.#early.push(op, text, settle);
    this.#save();
  }

  /** Once per task: the window's calls survive a tab closed before the wasm loads (or
   * a page whose wasm failed). Only with consent granted and no `__kla_off`, and only
   * those made since the last denial: the rest stay in memory (the core decides their
   * fate once it runs). A reset is saved as op 0, which adoption skips. */
  #save() {
    if (this.#saving) return;
    this.#saving = true;
    queueMicrotask(() => {
      this.#saving = false;
      const off = /(^|; *)__kla_off=true(;|$)/.test(cookies(this.#options));
      if (this.#rt || !this.#earlyKey || this.#consent !== GRANTED || off || unseen()) return;
      const calls = [];
      for (let i = this.#from; i < this.#early.length; i += 3) {
        if (this.#early[i] >= 0) calls.push(this.#early[i], this.#early[i + 1]);
      }
      if (calls.length) {
        storage.set(this.#earlyKey, JSON.stringify([now(), ...calls]), this.#earlyKey);
        // Saved again while the wasm loads, so that it is stale only once this page is
        // gone or its load failed: the sender never adopts what this page may replay.
        this.#alive ||= !this.#failed && setInterval(() => (this.#rt || this.#failed ? clearInterval(this.#alive) : this.#save()), ALIVE_MS);
      } else storage.del(this.#earlyKey, this.#earlyKey);
    });
  }

  /** Async calls: resolve once queued; before ready, once the core accepted them. Bad
   * input rejects (the executor catches what #call throws), and so does a closed tracker. */
  #async(op, args, accepted) {
    const rt = this.#rt, failed = this.#failed;
    const p = new Promise((resolve, reject) => {
      if (this.#closed) throw this.#shut(1); // the caller's catch hears it
      this.#call(op, args, rt || failed ? undefined : (e) => (e ? reject(e) : resolve(accepted?.())));
      if (rt) resolve(accepted?.());
      else if (failed) reject(failed); // kept, for a later page to send
    });
    // Never an unhandled rejection in the page (index.d.ts promises it): before ready it
    // is also reported through onError, after it the caller's await or catch hears it.
    p.catch(() => {});
    return p;
  }

  /** After close(): nothing is kept or sent, and the shop hears it (onError, not
   * again for a call its onError makes: 2 while it runs). */
  #closed;
  #shut(quiet) {
    const e = report("invalid", "tracker closed: call not kept");
    if (!quiet && this.#closed < 2) {
      this.#closed = 2;
      this.#emit(e);
      this.#closed = 1;
    }
    return e;
  }

  /** The currency an event's value is in, unless the call names its own. */
  #currency;
  /** Events: their `unique_id`, the given one if any, else the properties' `$event_id`
   * ("" once closed). The tracker's currency goes after the call's arguments, as it is
   * now: the core applies it to a value, and a later page that adopts the saved call
   * still has it. Without one the slot is left out (a cold call cost about 1 µs more
   * with it), so a later build that adds after it must fill it (`null`). */
  #event(op, args, options) {
    if (this.#closed) return this.#shut() && "";
    if (this.#currency) args.push(this.#currency); // (each method's own array)
    const id = this.#call(op, args);
    try {
      return options?.uniqueId ?? eventId(op) ?? id;
    } catch {
      return id; // options whose getter throws: refused by the core, by name
    }
  }

  /** Also tells Klaviyo's onsite script, where the page has it (`window.klaviyo`, its
   * snippet's queue too), whom the shop named by email or phone number: its own
   * `identify` then names the browser in its cookie, so its forms and its tracking see
   * the shopper we see. */
  identify(profile) {
    // What klaviyo.js gets, made now: the shop may reuse the object.
    let named;
    try {
      // Blank is not given (the core leaves it out): never handed on.
      let { email, phone_number } = profile;
      email = email?.trim?.() && email;
      phone_number = phone_number?.trim?.() && phone_number;
      if (email || phone_number) named = email ? phone_number ? { email, phone_number } : { email } : { phone_number };
    } catch { /* refused by the core, by name */ }
    return this.#async(IDENTIFY, [profile], () => {
      // Accepted: held with the visitor it named, and handed over once consent is granted
      // (made while pending: at the grant), while that visitor is still ours (a denial or
      // a reset since made another: the core dropped the call, or gave it the one before).
      const anon = this.#rt?.anonymousId(), held = this.#held; // (none: another page adopted it)
      this.#held = [...(held?.[0] === anon && held || [anon]), named];
      queueMicrotask(() => this.#tell()); // in the loading window's replay: once it ends
    });
  }
  /** [the visitor they named, ...what the accepted identifies hand over, not yet]. */
  #held;
  #tell() {
    try {
      const rt = this.#rt, [anon, ...named] = this.#held || [], k = globalThis.klaviyo;
      if (rt?.state !== GRANTED) return;
      this.#held = 0;
      if (anon === rt.anonymousId() && k?.identify && this.#options.klaviyoCookie !== false) {
        for (const ids of named) {
          try {
            ids && Promise.resolve(k.identify(ids)).catch(() => {});
          } catch { /* this one alone */ }
        }
      }
    } catch { /* Klaviyo's script: never into the page */ }
  }
  track(metric, properties, options) {
    return this.#event(TRACK, [metric, properties, options], options);
  }
  viewedProduct(product, options) {
    return this.#event(VIEWED_PRODUCT, [product, options], options);
  }
  addedToCart(item, options) {
    return this.#event(ADDED_TO_CART, [item, options], options);
  }
  startedCheckout(checkout, options) {
    return this.#event(STARTED_CHECKOUT, [checkout, options], options);
  }
  viewedCollection(collection, options) {
    return this.#event(VIEWED_COLLECTION, [collection, options], options);
  }
  submittedSearch(search, options) {
    return this.#event(SUBMITTED_SEARCH, [search, options], options);
  }
  activeOnSite(page, options) {
    return this.#event(ACTIVE_ON_SITE, [page, options], options);
  }
  /** Whether the visitor is known (an email, a phone number, an external id or a `_kx`,
   * ours or Klaviyo's onsite script's); false until the core is ready. */
  isIdentified() {
    return this.#rt?.identified() ?? false;
  }
  subscribe(options) {
    return this.#async(SUBSCRIBE, [options]);
  }
  backInStock(options) {
    return this.#async(BACK_IN_STOCK, [options]);
  }
  /** Sends what is due; resolves to `{ sent, pending, failed }` for this flush. */
  flush() {
    if (this.#rt) return this.#rt.flush();
    const p = this.ready.then(() => this.#rt.flush());
    p.catch(() => {}); // rejects as `ready` did, reported through onError
    return p;
  }
  /** Calls queued and not yet accepted by Klaviyo. */
  pending() {
    if (this.#rt) return this.#rt.pending();
    let n = 0;
    for (let i = this.#from; i < this.#early.length; i += 3) n += this.#early[i] > 0;
    return n;
  }
  /** On logout: later calls belong to a new anonymous profile. */
  reset() {
    if (this.#closed) return;
    if (this.#rt) this.#rt.reset();
    else this.#keep(EARLY_RESET, "", undefined);
  }
  /** Stops sending and listening (the queue stays on disk for the next page). */
  close() {
    // What consent is now stays this tracker's answer (kl.consent), and a denial made
    // after close() still erases (setConsent).
    if (!this.#closed) this.#consent = this.#rt?.state ?? this.#consent;
    this.#closed = 1;
    routes.delete(this.#pageView);
    // Closed while pending, it drops the views it made: the shop's other trackers make
    // the page's again (each skips one a tracker that delivers has made).
    if (this.consent === "pending") routes.forEach((f) => f());
    if (this.#rt) this.#rt.close();
    else this.ready.then(() => this.#rt.close(), () => trackers.delete(this.#listener));
  }
  /** The anonymous profile id (null until the core is ready, and while denied). */
  get anonymousId() {
    return this.#rt?.anonymousId() || null;
  }
  /**
   * The visitor's answer, from the page's consent manager: `"granted"` sends as usual;
   * `"pending"` holds calls in memory, storing and sending nothing; `"denied"` erases
   * what we stored and drops calls (`onError` kind `consent`, once).
   */
  setConsent(state) {
    const code = consentCode(state, "setConsent");
    // Closed once ready: a denial still erases, and clears the worker's cookie (closed
    // before, the window replays it to the core as ever).
    if (this.#closed && this.#rt) {
      if (code !== DENIED) this.#consent = code;
      else if (this.#consent !== DENIED) this.#deny(true), this.#rt.visitor_("DELETE");
      return;
    }
    if (this.#rt) return void (this.#rt.consent(code), this.#tell());
    if (code === DENIED) return this.#deny(true);
    if (code === this.#consent) return;
    if (this.#consent === DENIED) this.#from = this.#early.length + 3;
    this.#consent = code;
    this.#early.push(EARLY_CONSENT, code, undefined);
    this.#save();
  }
  /** The currency of later calls' values, where they name none (the shopper switched
   * currency); null, undefined or blank: none. */
  setCurrency(code) {
    const bad = badCurrency(code);
    if (bad) throw Error("setCurrency: " + bad);
    this.#currency = code?.trim() || undefined;
  }
  /** The consent state in force. */
  get consent() {
    return CONSENT[this.#closed || !this.#rt ? this.#consent : this.#rt.state];
  }
}

export default Klaviyo;
