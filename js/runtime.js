// The browser adapter: carries out what the wasm core decides. It owns the page's
// facilities (fetch, localStorage, timers, page lifecycle, Web Locks) and no policy:
// what to store, what to send, when, and what to retry are the core's answers.

// control() codes: the table in src/browser/exports.rs (`mod what`); tests/build/seam.test.mjs
// fails if the two differ.
const SYNC = 1, FAILED = 2, NEXT = 3, WAKE = 4, HIDE = 5, ONLINE = 6, SENDER = 7,
  STORAGE = 8, CLEARED = 9, PENDING = 10, ANON = 11, RESET = 12, REPORTS = 13,
  TOTALS = 14, LEASE = 15, CLOSE = 16, INFO = 17, CONSENT = 18, COOKIES = 19,
  IDENTIFIED = 20, ADOPT = 21, VISITOR = 22;
const SEP = "\u0001", SUB = "\u0002";
/** All our storage keys start with this (then the company id). */
export const NS = "klaviyo:";
/** Browsers allow 64 KB of keepalive request bodies in flight; stay under it. */
const KEEPALIVE = 60 * 1024;
const LEASE_MS = 1000;
/** Klaviyo's answer to a refused call as `onError`'s detail gets it: each string (but
 * an error's id, code, pointer and parameter) less what reads as an email address (any
 * token with an `@`) or a phone number (7 digits or more), that it may quote from the
 * call, as a shop's onError often feeds an error tracker. A date, and digits that go on
 * from a letter, `:`, `.` or `-` (a time, an id), are matched apart and kept, so they
 * can neither be taken for a number nor run on into one. Linear in the text's length. */
const redact = (v, k) => typeof v == "string" && !/^(id|code|pointer|parameter)$/.test(k)
  ? v.replace(/[^\s"'<>(),;:@][^\s"<>(),;:@]{0,63}@[^\s"'<>(),;:]{1,255}|(\d{4}-\d\d-\d\d|[A-Za-z_:.-]\d+)|\+?\(?\d(?:[ ().-]{0,2}\d){6,}/g,
    (m, keep) => keep || "[redacted]")
  : v;

/** The time and a random UUID, each one short call for the bundle. */
export const now = () => Date.now();
/** A version-4 UUID of `getRandomValues`, which every page has: `crypto.randomUUID`
 * exists in secure contexts only, and a page served over plain http (not localhost)
 * must not fail to import the package. */
export const uuid = () => [...crypto.getRandomValues(new Uint8Array(16))]
  .map((b, i) => ((i === 6 ? b & 15 | 64 : i === 8 ? b & 63 | 128 : b) + 256).toString(16).slice(1))
  .join("")
  .replace(/(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");

// localStorage that never throws: null when missing or refused (sandbox, privacy mode),
// or a page's stand-in that cannot list its keys (a denial could not erase them): it
// needs `length` and `key()`.
let store;
try {
  store = globalThis.localStorage;
  store.key(store.length.toFixed());
} catch {
  store = null;
}
/** Announces a write to the page's trackers (see `tell`). */
const say = (from, key, newValue, oldValue) =>
  dispatchEvent(Object.assign(new Event(NS), { from, key, newValue, oldValue }));
/** A denial's marker, told once the denying tracker's erase is done (`dropPrefix`). */
let denial;
/** The prefix whose denial's time and marker had no room before its erase (`storage.set`). */
let undated;
/** The time of this page's own last denial (not one made in another tab: deniedSince). */
let ownDenial;
/** Tells the page's other trackers of a write by the tracker named `from`, as a `storage`
 * event tells other tabs: a page hears none for its own writes, and a second tracker of
 * the shop in it (the script tag beside the npm package) would wait for a sender that
 * never hears its calls. A window event, as each copy of this module has its own
 * `trackers`; in a microtask, as a storage event comes later too (a denial aside). A
 * tracker is named by its loading window's key (`own_`), the same before and after its
 * core starts, so it never hears its own writes; a name, not the object, so no page
 * script gets a hold of it. */
const tell = (...write) =>
  // A denial's marker before the call returns: the page's other trackers stop and erase
  // before the denying one can grant again and write calls of its own, which their erase
  // of the whole prefix would take (and it would forget them as delivered). After its
  // own erase: what they do on hearing it (an onError granting again) is not erased.
  write[2] === "denied" ? (denial = write) : queueMicrotask(() => say(...write));
/** Writes and removals name their tracker (`from`, its `own_`: it is not told of its own). */
export const storage = {
  get(k) {
    try { return store ? store.getItem(k) : null; } catch { return null; }
  },
  /** false when the write failed (quota exceeded, storage gone). A denial's marker is
   * told in the page even then: the page's other trackers must stop all the same. */
  set(k, v, from) {
    // A denial's marker (`<prefix>consent`): its time first, kept by the erase, so a tab
    // that hears the marker late reads it there (Chromium gives a frozen page the writes
    // made meanwhile one by one, with their events: see deniedSince). No room for it (a
    // full quota): both written once the erase has made some (`undated`).
    if (v === "denied") try { store.setItem(k.slice(0, -7) + "denied", ownDenial = now()); } catch { undated = k.slice(0, -7); }
    try { store.setItem(k, v); tell(from, k, v); return true; } catch { v === "denied" && tell(from, k, v); return false; }
  },
  del(k, from) {
    const old = this.get(k);
    try { old !== null && (store.removeItem(k), tell(from, k, null, old)); } catch { /* nothing to do */ }
  },
  /** Removes every key starting with `prefix` (consent was denied): listed first, as
   * removing while walking the indices may skip keys. */
  dropPrefix(prefix, from) {
    // But the denial's time (written with its marker; a tab hearing it does not date it
    // again): a page of the shop in the back/forward cache hears no storage event, and
    // reads it when it is back (Runtime.away_).
    for (const kv of this.scan(prefix, prefix + "denied").split(SEP)) if (kv) this.del(kv.split(SUB)[0], from);
    // A denial whose time and marker had no room (a full quota): written now, the marker
    // removed again as the erase removes it, so that the other tabs hear it all the same.
    if (undated === prefix) try {
      undated = 0;
      store.setItem(prefix + "denied", ownDenial = now());
      store.setItem(prefix + "consent", "denied");
      store.removeItem(prefix + "consent");
    } catch { /* no room still */ }
    const d = denial;
    denial = 0;
    if (d) say(...d);
  },
  /** `key SUB value SEP ...` of every key starting with `prefix`, but `skip` */
  scan(prefix, skip) {
    let out = "";
    try {
      for (let i = 0; store && i < store.length; i++) {
        const k = store.key(i);
        if (k !== null && k !== skip && k.startsWith(prefix)) out += SEP + k + SUB + store.getItem(k);
      }
    } catch { /* what we have so far */ }
    return out;
  },
};

// Text crosses to the wasm through its memory: strings are written into its input
// buffer with `encodeInto` (no allocation, no copy per character in JS) and passed as
// byte lengths; an answer is read from its out buffer. Only numbers cross the calls, so
// the exports (src/browser/exports.rs) are called directly, without wasm-bindgen's
// generated wrappers: a `u32` comes back as a signed i32, which only `open`'s
// `u32::MAX` (refused) makes negative; lengths and addresses stay below 2^31.
const utf8 = new TextEncoder();
const text = new TextDecoder();
const NONE = 0xffffffff; // an absent string
let wasm, memory, view, at = 0, room = 0;
/** The wasm instance's exports (set once it is instantiated). */
export function attach(exports) {
  wasm = exports;
  memory = exports.memory;
}
/** The input buffer, at least `need` bytes (UTF-8 takes at most 3 per UTF-16 unit). */
function input(need) {
  if (need > room) {
    room = Math.max(need, 4096);
    at = wasm.input_buffer(room);
    view = null;
  }
  // Any call may grow the memory, which detaches the old view.
  if (!view || view.buffer !== memory.buffer) view = new Uint8Array(memory.buffer, at, room);
  return view;
}
/** Writes one string (the hot path); returns its byte length. */
function put1(s) {
  return utf8.encodeInto(s, input(s.length * 3)).written;
}
/** Writes the strings one after another; returns their byte lengths. */
function put(...strings) {
  let need = 0;
  for (const s of strings) need += s == null ? 0 : s.length * 3;
  const v = input(need);
  let used = 0;
  return strings.map((s) => {
    if (s == null) return NONE;
    const n = utf8.encodeInto(s, v.subarray(used)).written;
    used += n;
    return n;
  });
}
/** The answer of the last export, `len` bytes long. */
function answer(len) {
  return len ? text.decode(new Uint8Array(memory.buffer, wasm.answer_ptr(), len)) : "";
}

/** A signal that aborts after `ms` (not `AbortSignal.timeout`: Safari 15 has none). */
function deadline(ms) {
  const c = new AbortController();
  setTimeout(() => c.abort(), ms);
  return c.signal;
}

/** `fetch`, whose throw or non-Response (a page's wrapper of it) is a failed request:
 * never an exception out of our task, nor a send loop left busy. */
const request = (url, init) => new Promise((r) => r(fetch(url, init))).then((r) => (r.headers.get("x"), r));

/** `Retry-After` as seconds: its delay-seconds as they are, an HTTP-date read by the
 * browser's own `Date` ("" when absent, hidden by CORS, or unreadable). */
function seconds(header) {
  if (!header || /^\s*\d+\s*$/.test(header)) return header || "";
  const at = Date.parse(header);
  return Number.isNaN(at) ? "" : String(Math.max(0, Math.ceil((at - now()) / 1000)));
}

/** An Error carrying the fields onError documents. */
export function report(kind, message, status = 0, count = 1, detail) {
  const e = Error(message);
  e.kind = kind;
  e.status = status;
  e.count = count;
  if (detail !== undefined) e.detail = detail;
  return e;
}

/** The page's cookies, where Klaviyo's onsite script keeps its visitor (`__kla_id`) and
 * its opt-out (`__kla_off`); "" when the shop turned reading them off. The core reads
 * them (src/core/onsite.rs). */
export function cookies(options) {
  try { return options.klaviyoCookie === false ? "" : document.cookie; } catch { return ""; }
}

/** Whether the shop's visitor denied consent in a tab of the shop from `at` to `to` (its
 * time, written with its marker: `storage.set`): while this page was in the back/forward
 * cache or frozen, where no storage event reached it (WebKit); or before it came back,
 * for a marker heard only since (Chromium delivers the events late, and a freeze may
 * begin after a denial not yet heard): that tab carried it out. Not a time ahead of the
 * clock (a clock set back since), nor this page's own (a denial made as it came back, by
 * the shop's listener that ran before ours). */
export const deniedSince = (prefix, at, to = now()) => {
  const d = +storage.get(prefix + "denied");
  return d >= at && d <= to && d !== ownDenial;
};

/** A denial's marker heard now: made before this page came back from the cache or was
 * unfrozen, or while it is still away as far as this module knows (Chromium may deliver
 * a frozen page's events before its `resume`), it was carried out by its tab. */
export const heardLate = (prefix) => deniedSince(prefix, 1, awayAt ? now() : wasAway[1] - 1);

/** The page's last stay in the back/forward cache, or frozen: [from, to] (see deniedSince;
 * set before any tracker hears of the stay's end: their listeners come after this one's);
 * and when the page went there, until this module's listener hears it is back. */
export let wasAway = [], awayAt;

/** The open trackers (and those whose wasm is loading: js/index.js), told of other
 * tabs' storage writes, and of this page's other trackers' (`tell`), by one listener. */
export const trackers = new Set();
let listening;
/** Adds that listener, once. Registering it costs about a millisecond in Chromium, so
 * index.js calls this while the wasm downloads, before any tracker needs it. */
export function listenToOtherTabs() {
  if (listening) return;
  listening = true;
  addEventListener("storage", (e) => {
    // Another tab's denial, told at once to every copy of this module in the page: the
    // browser runs microtasks between their listeners, and the erase of the first would
    // reach the others first (their calls forgotten as if delivered, not reported).
    if (e.newValue === "denied") say("", e.key, "denied");
    trackers.forEach((t) => t.otherTab(e));
  });
  addEventListener(NS, (e) => trackers.forEach((t) => t.own_ !== e.from && t.otherTab(e)));
  // Back from the back/forward cache, or unfrozen, a tracker whose wasm is loading (or
  // failed) catches up on a denial it could not hear there (a running one: Runtime.away_).
  // (Chromium tells a restored page both resume and pageshow: the first is its return.)
  const away = () => (awayAt ??= now());
  const back = () => {
    if (awayAt === undefined) return;
    wasAway = [awayAt, now()];
    awayAt = undefined;
    trackers.forEach((t) => t.restored_?.(wasAway[0]));
  };
  addEventListener("pagehide", (e) => e.persisted && away());
  addEventListener("pageshow", (e) => e.persisted && back());
  globalThis.document?.addEventListener("freeze", away);
  globalThis.document?.addEventListener("resume", back);
}

/** One tracker's adapter: a handle into the wasm core plus the page wiring. */
export class Runtime {
  /** `edge`: the loading window's denial erased the storage key that remembers the edge
   * worker; its value then. `early`: the storage key of this tracker's loading window,
   * never adopted by its own core (it is replayed: see replayWindow). */
  constructor(options, onError, debug, edge, early) {
    const fresh = uuid();
    this.own_ = early;
    const h = wasm.open(...put(JSON.stringify(options), storage.scan(NS), location.search, fresh,
      cookies(options)));
    if (h < 0) throw report("invalid", answer(wasm.answer_len())); // u32::MAX: refused
    this.h_ = h;
    this.options_ = options;
    [this.prefix_, this.revision_] = this.control_(INFO).split(SEP);
    this.onError_ = onError;
    this.debug_ = debug;
    // Left undefined (false) until set: busy_ (a request is in flight: one at a time,
    // keepalive ones aside), electing_ (learning whether this tab sends), queued_ (an
    // end-of-task send is due), closed_, timer_ and timerAt_ (none set: a comparison
    // with undefined is false, as with Infinity).
    this.kaBytes_ = 0; // keepalive body bytes in flight
    this.waiters_ = []; // flush() promises, resolved when the loop runs dry
    this.stop_ = new AbortController();
    // The first-party visitor cookie of the shop's edge worker: used once apiBase has
    // answered as that worker (edge_: remembered in storage, read before a denial erases it).
    const base = options.apiBase;
    this.id_ = base && options.firstPartyId !== false ? base.replace(/\/+$/, "") + "/id" : "";
    this.edge_ = this.id_ && (edge || storage.get(this.prefix_ + "edge"));
    // The storage key of the ids made up while the cookie is asked (see madeUp_).
    this.made_ = this.prefix_ + "madeUp";
    // Storage held no identity, or only one another page made up while it asked the
    // cookie and had no answer (a tab opened beside it, a page closed before it): the
    // worker's cookie may know the visitor (until it answers).
    const anon = this.anonymousId();
    this.fresh_ = anon === fresh || this.madeUp_().includes(anon);
    try {
      this.watch_();
      this.consent();
    } catch (e) {
      // Started in part (the page broke something it needs): stopped whole, writing
      // nothing, so that none of it runs beside the calls the page keeps for a later one.
      this.replaying_ = true;
      this.close();
      throw e;
    }
  }

  /** control() of the core (src/browser/exports.rs): `what` with `n` and strings `a`, `b`. */
  control_(what, n = 0, a = "", b) {
    return answer(wasm.control(this.h_, what, n, ...put(a, b)));
  }

  /**
   * The worker's first-party cookie (`/id`): asked for the visitor on a start with empty
   * storage (Safari wipes it), written with ours once consent is granted, cleared on a
   * denial. No call waits on it; a failure leaves things as they are.
   */
  visitor_(how = this.state === 2 ? "DELETE" : this.state && (this.fresh_ ? "GET" : "POST")) {
    // Never asked after a denial, even one made before the worker was known (storage
    // wiped whole): that cookie's visitor was to be forgotten.
    if (how === "DELETE") this.fresh_ = false;
    // The id made up meanwhile is stored with the next writes (see sync_), before the
    // worker is known too (storage wiped whole, its mark with it): a tab that starts
    // before the first answer must not take that id for a visitor it knows.
    if (how === "GET" && this.id_) this.ask_ = 1;
    if (!this.edge_) return;
    // Every change (a reset, a change of consent, even one that sends nothing) makes an
    // older GET's answer moot.
    const n = (this.asked_ = (this.asked_ | 0) + 1);
    if (!how) return;
    const init = { method: how, credentials: "include", keepalive: true };
    if (how === "POST") init.body = this.control_(ANON, 1);
    // Answered, failed, or aborted 10 s after it went: a hung one must not hold the
    // writes behind it, nor keep the calls after a reset without cookies, for the rest
    // of the page. (Chromium goes on with an aborted keepalive request: its late answer
    // may still set the cookie.)
    const send = () => request(this.id_, { ...init, signal: deadline(1e4) });
    // Answered, failed or timed out, the latest request settles what reset() started.
    const settled = () => this.asked_ === n && (this.stale_ = 0);
    // The worker writes the cookie in the page's order: each request goes once the write
    // before it has settled (two resets: the second visitor's POST lands last). A
    // denial's DELETE goes at once (the page may be closing) and, if a write is still
    // out, again after it, so that the write cannot bring the cookie back.
    const prev = this.writing_;
    const atOnce = how === "DELETE" && send();
    const req = atOnce && !prev ? atOnce : Promise.resolve(prev).then(send);
    if (how !== "GET") {
      // What the next one waits for: every request of this write (never rejects).
      // (Not Promise.allSettled: a page's Promise polyfill may lack it.)
      const w = (this.writing_ = Promise.all([atOnce, req].map((p) => Promise.resolve(p).catch(() => {}))));
      w.then(() => this.writing_ === w && (this.writing_ = 0));
    }
    req
      .then((r) => {
        settled();
        return how === "GET" && r.ok ? r.json() : 0;
      }).then((v) => {
      // The page's later word on its visitor stands: the cookie's older answer is then
      // neither taken nor written back. A failure (an error status) leaves things as they
      // are: the calls stay unmarked (the cookie's visitor stands), nothing is written
      // over the cookie, and the next page asks again (the made-up id is stored).
      if (how !== "GET" || this.asked_ !== n || this.closed_ || !v) return;
      // The worker has answered: from now on the page's visitor is its own.
      this.fresh_ = false;
      if (v.anonymous_id) {
        // The made-up id's calls stay the cookie's visitor's (it stays in storage).
        this.control_(VISITOR, 0, v.anonymous_id, v._kx || "");
        this.atEndOfTask_();
      }
      // The cookie knew no one (or a made-up id): that id is the visitor's own (a call
      // made with another of them keeps it, marked: the visitor is not known to be its).
      if (this.madeUp_().includes(this.anonymousId())) storage.del(this.made_, this.own_);
      if (this.state === 1) this.visitor_("POST");
    }).catch(settled);
  }

  log_(...parts) {
    if (this.debug_) console.debug(NS, ...parts);
  }

  /** A call of the API; throws the core's Error when it refuses it. */
  call(op, text) {
    // Made as the page comes back, before this tracker has heard it (the shop's own
    // pageshow or resume listener ran first): a denial made meanwhile is carried out
    // first, so that the call is neither written nor sent.
    if (this.out_ && deniedSince(this.prefix_, awayAt ?? wasAway[0])) this.consent(5);
    const refused = wasm.call(this.h_, op, put1(text));
    if (refused) throw Error(answer(refused));
    this.atEndOfTask_();
  }

  /**
   * The calls of the loading window, kept under storage key `early_` until the core's
   * own record holds them: `run` hands them to the core now; they are written and sent
   * in the next task, off the path to ready. A call made before then writes them with
   * its own at the end of its task, as any call does. The key goes with the first write.
   */
  replayWindow(run) {
    this.early_ = this.own_; // from now on, the first write removes it
    // No write before all are replayed (a consent change among them would sync): the
    // key holds them until the core's records do.
    this.replaying_ = true;
    try { run(); } finally { this.replaying_ = false; }
    setTimeout(() => this.syncAndSend());
  }

  /** The end of the current task: persist its calls as one record, then send. */
  atEndOfTask_() {
    if (this.queued_ || this.replaying_) return;
    this.queued_ = true;
    queueMicrotask(() => {
      this.queued_ = false;
      this.syncAndSend();
    });
  }

  syncAndSend() {
    if (this.closed_ || this.replaying_) return;
    this.sync_();
    this.sendDue_();
  }

  /** Carries out the core's storage writes; hands failures back, then the reports. */
  sync_() {
    for (;;) {
      let failed = false;
      for (const op of this.control_(SYNC, now()).split(SEP)) {
        if (!op) continue;
        const i = op.indexOf(SUB);
        if (i < 0) storage.del(op, this.own_);
        else if (!i) storage.dropPrefix(op.slice(1), this.own_);
        else if (!storage.set(op.slice(0, i), op.slice(i + 1), this.own_)) {
          this.control_(FAILED, 0, op.slice(0, i));
          failed = true;
        }
      }
      if (!failed) break;
    }
    if (this.early_) {
      storage.del(this.early_, this.own_);
      this.early_ = "";
    }
    // The id made up while the worker's cookie is asked, added to the others with the
    // identity (so never before a grant, nor after a denial replayed from the loading
    // window): every tab and later page then knows it for one the cookie's visitor may
    // replace. Tabs that start together each made one up, and one identity stays.
    if (this.ask_) {
      this.ask_ = 0;
      const a = this.anonymousId(), m = this.madeUp_();
      if (this.fresh_ && this.state === 1 && !m.includes(a)) storage.set(this.made_, m.concat(a).join(" ").trim(), this.own_);
    }
    this.reports_();
  }

  reports_() {
    for (const r of this.control_(REPORTS).split(SEP)) {
      if (!r) continue;
      const [kind, status, count, message, text] = r.split(SUB);
      let detail;
      if (text) {
        // (Only Klaviyo's answers: a report of our own names a field, never a value.)
        const clean = +status ? redact : (v) => v;
        try { detail = JSON.parse(text, (k, v) => clean(v, k)); } catch { detail = clean(text); }
      }
      this.emit(report(kind, message, +status, +count, detail));
    }
  }

  /** onError, which may not throw into us. */
  emit(e) {
    this.log_(e.message);
    try { this.onError_?.(e); } catch { /* the shop's handler failed: nothing to do */ }
  }

  /** Klaviyo's cookies read again. A `__kla_off` set since denies the core: the page's
   * state follows (kl.consent, the sender lock, the erase). */
  cookies_() {
    this.control_(COOKIES, 0, cookies(this.options_));
    this.consent();
  }

  /** Sends what is due, one request at a time; then sets the timer. */
  sendDue_() {
    if (this.closed_ || this.electing_) return;
    // The onsite script may have set its cookies since we started: read them again
    // before the page's first send.
    if (!this.reread_) {
      this.reread_ = true;
      this.cookies_();
    }
    while (!this.busy_) {
      const t = this.control_(NEXT, now());
      if (!t) break;
      this.send_(t, false);
    }
    if (this.busy_) return;
    const at = this.control_(WAKE);
    if (at) this.wakeAt_(+at);
    const waiters = this.waiters_;
    this.waiters_ = [];
    for (const w of waiters) w();
  }

  /** Wakes the loop by `at` (never sooner than 10 ms: no busy loop, whatever happens). */
  wakeAt_(at) {
    at = Math.max(at, now() + 10);
    if (this.timerAt_ <= at) return;
    clearTimeout(this.timer_);
    this.timerAt_ = at;
    this.timer_ = setTimeout(() => {
      this.timerAt_ = Infinity;
      this.syncAndSend();
    }, Math.min(at - now(), 2e9)); // past 2^31 ms a timer fires at once: wake, look again
  }

  /**
   * POSTs a transmit `tx SEP url SEP items SEP bytes SEP body`. Bodies that fit the
   * keepalive allowance go with `keepalive`, so a page that closes mid-request does not
   * cancel it. `hiding`: sent while the page goes away, beside the one in flight.
   */
  send_(t, hiding) {
    const [tx, url, items, bytes] = t.split(SEP, 4);
    const body = t.slice(tx.length + url.length + items.length + bytes.length + 4);
    const keepalive = +bytes <= KEEPALIVE - this.kaBytes_;
    if (keepalive) this.kaBytes_ += +bytes;
    if (!hiding) this.busy_ = true;
    const path = url.slice(url.indexOf("/client"), url.indexOf("?"));
    this.log_("POST", path, `(${items}${keepalive ? ", keepalive" : ""})`);
    const signal = deadline(30000);
    const answered = (status, retryAfter, text) => {
      if (keepalive) this.kaBytes_ -= +bytes;
      if (!hiding) this.busy_ = false;
      this.log_(path, "->", status);
      wasm.answered(this.h_, +tx, status, ...put(seconds(retryAfter), text), now(), (Math.random() * 65536) | 0);
      this.syncAndSend();
    };
    // visitor=page: the worker keeps the page's visitor, not the cookie's (which may
    // name one a logout dropped, its POST /id failed). The cookie's stands for a page
    // that started with empty storage until the worker has answered its GET /id, and,
    // if it gave the visitor, for the calls made with the id made up meanwhile, by any
    // tab or page (until a reset: the cookie may name the next visitor by then).
    const own = this.edge_ && !this.fresh_ && !this.madeUp_().some((m) => m && body.includes(m));
    request(own ? url + "&visitor=page" : url, {
      method: "POST",
      headers: { "content-type": "application/vnd.api+json", revision: this.revision_ },
      body,
      keepalive,
      signal,
      credentials: this.stale_ ? "omit" : undefined, // undefined: the default
    }).then(
      (r) => {
        const ra = r.headers.get("retry-after");
        if (this.id_ && !this.edge_ && r.headers.get("x-klaviyo-edge")) {
          // Remembered, and the cookie written, only while granted (a denial made while
          // this request was out clears the cookie instead).
          this.edge_ = (this.state === 1 && storage.set(this.prefix_ + "edge", "1", this.own_)) || 1;
          this.visitor_();
        }
        // Not the worker: no cookie of its puts another visitor in our calls, and none
        // knows another visitor than the one this page made up.
        if (!this.edge_) {
          this.stale_ = 0;
          if (r.ok && this.fresh_ && this.id_) {
            this.fresh_ = this.ask_ = 0;
            storage.del(this.made_, this.own_);
          }
        }
        // The body is read only for failures, where onError reports it.
        if (r.status < 300) answered(r.status, ra, "");
        else r.text().then((b) => answered(r.status, ra, b), () => answered(r.status, ra, ""));
      },
      () => answered(0, null, ""),
    );
  }

  /** The page is hidden or going away: hand what fits to keepalive requests now. */
  hide_() {
    // (Away, another tab may send by now: Chromium and WebKit say hidden after pagehide.)
    if (this.closed_ || this.out_) return;
    this.catchUp_();
    this.sync_();
    const t0 = now();
    for (;;) {
      const t = this.control_(NEXT, t0, "", String(Math.max(0, KEEPALIVE - this.kaBytes_)));
      if (!t) break;
      this.send_(t, true);
    }
    this.control_(HIDE, t0);
    this.sync_();
  }

  watch_() {
    const opt = { signal: this.stop_.signal };
    // The network and the page's visibility are watched from the next task, off the
    // path to ready (registering costs about a millisecond): every call is stored by
    // then, and the next page sends what a page hidden sooner leaves.
    setTimeout(() => {
      const online = (on) => {
        this.control_(ONLINE, 0, +on + ""); // "1" or "0"
        this.log_(on ? "online" : "offline");
        if (on) this.syncAndSend();
      };
      if (this.closed_) return;
      if (navigator.onLine === false) online(false);
      addEventListener("online", () => online(true), opt);
      addEventListener("offline", () => online(false), opt);
      // Into the back/forward cache (pagehide, persisted) or frozen: out of choosing
      // the sender until it is back (pageshow, resume).
      addEventListener("pagehide", (e) => {
        this.hide_();
        this.away_(e.persisted);
      }, opt);
      addEventListener("pageshow", () => this.away_(0), opt);
      // A Web Worker (Shopify's app pixels) has no document: nothing to watch there.
      const doc = globalThis.document;
      if (!doc) return;
      doc.addEventListener("visibilitychange", () => {
        if (doc.visibilityState === "hidden") this.hide_();
      }, opt);
      // (Frozen with a request out since it was hidden: marked first, so that the tab
      // taking over waits for it as for any page that left.)
      doc.addEventListener("freeze", () => {
        this.hide_();
        this.away_(1);
      }, opt);
      doc.addEventListener("resume", () => this.away_(0), opt);
    });
    // Other tabs' writes, from the start: what this tab's queue knows must stay true.
    trackers.add(this);
    listenToOtherTabs();
  }

  /** Another tab wrote to storage (a `storage` event). */
  otherTab(e) {
    if (e.key === null) this.control_(CLEARED, 0, storage.scan(this.prefix_)); // storage.clear(): nothing delivered
    // The made-up ids removed (a reset, the cookie knew no one, apiBase is no worker):
    // this tab's is not added back by its next write, and it asks no more.
    else if (e.key === this.made_ && e.newValue === null) this.fresh_ = this.ask_ = 0;
    else if (e.key.startsWith(this.prefix_)) {
      const anon = this.anonymousId();
      // What is stored now, not what the event says was written: an event comes late,
      // and its copy may be old (a record delivered since, or erased by this tab's own
      // denial: its calls went again, or went after the denial). The identity: the one
      // stored after this tab's own write still to come (two tabs that start together
      // each write theirs and hear the other's: they swapped). But the consent marker,
      // which its writer removes in the same task, is read as written.
      if (e.key === this.prefix_ + "id") this.sync_();
      // A denial made before this page came back from the cache or was unfrozen, heard
      // only now: carried out by its tab (what was written since is others', the worker's
      // cookie a new visitor's).
      if (e.newValue === "denied" && heardLate(this.prefix_)) this.consent(5);
      this.adoptAt_(this.control_(STORAGE, now(), e.key, e.key === this.prefix_ + "consent" ? e.newValue : storage.get(e.key)));
      this.consent(); // another tab's withdrawal reaches the core this way
      // Another tab's reset (this one follows its visitor): this tab sends its calls too.
      // (Denied here, no visitor: consent() took the way out of the denial as one.) Not
      // while this tab and another still ask the cookie (a made-up id is kept: a reset
      // removes it): the other's made-up id, or the cookie's visitor it was given, is
      // no new visitor, and a POST would write a made-up id over the cookie's.
      if (anon && anon !== this.anonymousId() && !(this.fresh_ && this.madeUp_()[0])) this.renewed_();
    } else return;
    this.atEndOfTask_();
  }

  /**
   * Sets the core's consent state to `set` (0 pending, 1 granted, 2 denied; 3 only
   * asks; 4 the loading window's denial, replayed: told and erased then, so the core
   * only drops what it holds; 5 the same for another tab's denial made while this page
   * was away, which deleted the worker's cookie too, the core removing the records this
   * page wrote before it heard) and keeps the one it holds in `state`. On a change, this
   * tab takes part in choosing the sender only while granted (a pending or denied tab
   * holding the lock would stall the others' queue), and the core's storage writes (a
   * denial's erasure) are made at once.
   */
  consent(set = 3) {
    const was = this.state;
    this.state = +this.control_(CONSENT, set, uuid());
    if (this.state !== was) {
      this.log_("consent", this.state);
      this.stand_(false);
      // Out of a denial is a new visitor (the core made one), as after a reset.
      if (was === 2) this.renewed_();
      // (Not the cookie's deletion for a denial made away: a visitor granted since has it.)
      else this.visitor_(set > 4 ? 0 : undefined);
      // At start, only a denial's erasure is written at once; the rest waits for the
      // loading window's write in the next task (replayWindow), off the path to ready.
      if (was !== undefined || this.state === 2) this.syncAndSend();
    }
  }

  /** Which tab sends: the holder of a Web Lock, else of a lease in storage, until
   * `signal` aborts (consent withdrawn, or closed). */
  elect_(signal) {
    if (!store) {
      this.log_("no localStorage: this tab sends its own requests");
      return this.became_(true);
    }
    this.electing_ = true;
    const name = this.prefix_ + "sender";
    const locks = navigator.locks;
    // (A page's Web Locks that throw at once: the lease in storage, as without them.)
    if (locks) try {
      const hold = () => {
        if (signal.aborted) return undefined;
        this.became_(true);
        return new Promise((r) => (this.release_ = r));
      };
      locks.request(name, { ifAvailable: true }, (lock) => {
        if (lock) return hold();
        if (signal.aborted) return undefined;
        this.became_(false);
        // Waits its turn; an abort withdraws it (the rejection is expected).
        locks.request(name, { signal }, hold).catch(() => {});
        return undefined;
      }).catch((e) => e?.name === "AbortError" || this.became_(true));
      // (Locks that fail: this tab sends. Not an engine's abort: WebKit's, of a page put
      // in the back/forward cache, which is away; another tab may hold the lock by now.)
      return;
    } catch { /* the lease */ }
    const me = uuid();
    const key = this.prefix_ + "lease";
    const beat = () => {
      const v = this.control_(LEASE, now(), me, storage.get(key));
      if (v) storage.set(key, v, this.own_);
      if (this.electing_ || !!v !== this.sender_) this.became_(!!v);
    };
    // Stopped with the signal, which is heard first: no beat that nothing could stop.
    let id;
    signal.addEventListener("abort", () => clearInterval(id));
    // The first beat in the next task: never a write or a send before the loading
    // window is replayed (the constructor elects).
    setTimeout(() => signal.aborted || beat());
    id = setInterval(beat, LEASE_MS);
  }

  /**
   * A page in the back/forward cache, or frozen, runs nothing: holding the sender's lock
   * (or lease) it would stall the shop's other tabs for as long as it stays there
   * (minutes), and a held Web Lock keeps the page out of the cache. So it leaves the
   * choice (`out` 1) and sends nothing meanwhile (answers that come are still settled
   * as the sender it was); back (`out` 0), it stands again.
   */
  away_(out) {
    if (this.closed_ || !out === !this.out_) return;
    this.out_ = out;
    const mark = this.prefix_ + "denied";
    if (out) {
      // The visitor stored as it goes (one written meanwhile is another tab's), and a
      // mark only a clear() removes (a denial writes its time there).
      this.idAway_ = storage.get(this.prefix_ + "id");
      if (this.state === 1 && storage.get(mark) === null) storage.set(mark, "0", this.own_);
    } else this.back_(storage.get(mark));
    this.stand_(out);
  }

  /** Back, it has heard nothing other tabs did meanwhile (WebKit tells a cached page no
   * storage event, and replays none). `mark`: the `denied` key now. */
  back_(mark) {
    const key = this.prefix_ + "id";
    // A denial since it went (wasAway: the module's listener heard the return first): as
    // the other tab carried it out, its records erased then, and the worker's cookie
    // (others' written since are theirs).
    if (deniedSince(this.prefix_, wasAway[0])) this.consent(5);
    // The mark gone, and no denial: a clear (logout code often runs one, and the next
    // page may store a visitor since), which delivered nothing: as a tab that heard it,
    // it keeps what it holds.
    else if (this.state === 1 && mark === null) this.otherTab({ key: null });
    // Else storage is read anew once it is the sender again (became_: what another tab
    // delivered meanwhile is not sent again), and a visitor another tab stored meanwhile
    // followed (not the one stored before: a pending tab's own is in its memory only).
    else {
      this.behind_ = 1;
      if (storage.get(key) !== this.idAway_) this.otherTab({ key });
    }
  }

  /** Back from the cache: the core as no sender, so that it reads storage anew before it
   * sends again (became_), or as the page hides (hide_: its keepalive requests would
   * carry what another tab delivered meanwhile). Not sooner: an answer that comes until
   * then is settled as the sender it was, and storage told of it. */
  catchUp_() {
    if (this.behind_) this.behind_ = 0, this.control_(SENDER, now(), "0");
  }

  /** Withdraws from choosing the sender (a lock or lease given up: `electing_` set to
   * `electing`, and kept while away: nothing is sent then), and stands again where it
   * may: granted, not away. */
  stand_(electing) {
    this.ballot_?.abort();
    this.release_?.();
    this.electing_ = electing || this.out_;
    if (this.state === 1 && !this.out_) this.elect_((this.ballot_ = new AbortController()).signal);
  }

  became_(sender) {
    if (this.closed_) return;
    this.electing_ = false;
    this.sender_ = sender;
    this.catchUp_();
    // The sender adopts the loading-window records of pages that never got ready.
    this.adoptAt_(this.control_(SENDER, now(), +sender + "", sender ? storage.scan(this.prefix_, this.own_) : ""));
    this.log_(sender ? "this tab sends" : "this tab queues; another tab sends");
    this.syncAndSend();
  }

  flush() {
    if (this.closed_) return Promise.resolve({ sent: 0, failed: 0, pending: 0 });
    const [sent0, failed0] = this.control_(TOTALS).split(" ");
    return new Promise((resolve) => {
      this.waiters_.push(() => {
        const [sent, failed] = this.control_(TOTALS).split(" ");
        resolve({ sent: sent - sent0, failed: failed - failed0, pending: this.pending() });
      });
      this.syncAndSend();
    });
  }

  pending() {
    return +this.control_(PENDING);
  }

  identified() {
    return this.control_(IDENTIFIED) === "1";
  }

  /** At `due` (ms, "" for never): another page's loading-window calls, seen fresh by
   * the sender, are stale; those storage still holds are adopted (if it still sends). */
  adoptAt_(due) {
    clearTimeout(this.adopting_);
    if (!due) return;
    this.adopting_ = setTimeout(() => {
      this.adoptAt_(this.control_(ADOPT, now(), storage.scan(this.prefix_ + "pre:", this.own_)));
      this.atEndOfTask_();
    }, Math.max(0, due - now()));
  }

  anonymousId() {
    return this.control_(ANON);
  }

  /** The ids pages made up while they asked the worker's cookie for the visitor
   * (stored space-separated; [""]: none, or the cookie knew no one): a call that
   * carries one is the cookie's visitor's. */
  madeUp_() {
    return ((this.id_ && storage.get(this.made_)) || "").split(" ");
  }

  reset() {
    this.control_(RESET, 0, uuid());
    storage.del(this.made_, this.own_);
    this.renewed_();
    this.atEndOfTask_();
  }

  /** A new visitor (a reset, here or in another tab). The worker's cookie names the one
   * before: it is never asked for it (GET), and until the worker has the new one (POST)
   * it would put it in place of ours, so the /client calls go without cookies until
   * that settles (pending: the grant's; the worker not known yet: once it is). */
  renewed_() {
    this.fresh_ = false;
    if (this.id_) this.stale_ = 1; // ends at an answer that is not the worker's (send_)
    this.visitor_(this.state === 1 && "POST");
  }

  close() {
    if (this.closed_) return;
    // The calls of this task are written now: the end-of-task write would find it closed.
    if (!this.replaying_) this.sync_();
    // flush() promises settle now: the loop that would have settled them stops.
    this.waiters_.forEach((w) => w());
    this.closed_ = true;
    trackers.delete(this);
    this.stop_.abort();
    this.ballot_?.abort();
    clearTimeout(this.timer_);
    clearTimeout(this.adopting_);
    this.release_?.();
    this.control_(CLOSE);
  }
}
