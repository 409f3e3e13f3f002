// The browser adapter: carries out what the wasm core decides. It owns the page's
// facilities (fetch, localStorage, timers, page lifecycle, Web Locks) and no policy:
// what to store, what to send, when, and what to retry are the core's answers.

// control() codes: the table in src/browser/exports.rs (`mod what`); tests/build/seam.test.mjs
// fails if the two differ.
const SYNC = 1, FAILED = 2, NEXT = 3, WAKE = 4, HIDE = 5, ONLINE = 6, SENDER = 7,
  STORAGE = 8, RESYNC = 9, PENDING = 10, ANON = 11, RESET = 12, REPORTS = 13,
  TOTALS = 14, LEASE = 15, CLOSE = 16, INFO = 17, CONSENT = 18, COOKIES = 19,
  IDENTIFIED = 20, ADOPT = 21, VISITOR = 22;
const SEP = "\u0001", SUB = "\u0002";
/** All our storage keys start with this (then the company id). */
export const NS = "klaviyo:";
/** Browsers allow 64 KB of keepalive request bodies in flight; stay under it. */
const KEEPALIVE = 60 * 1024;
const LEASE_MS = 1000;

// localStorage that never throws: null when missing or refused (sandbox, privacy mode).
let store;
try {
  store = globalThis.localStorage;
  store.length;
} catch {
  store = null;
}
export const storage = {
  get(k) {
    try { return store ? store.getItem(k) : null; } catch { return null; }
  },
  /** false when the write failed (quota exceeded, storage gone) */
  set(k, v) {
    try { store.setItem(k, v); return true; } catch { return false; }
  },
  del(k) {
    try { store && store.removeItem(k); } catch { /* nothing to do */ }
  },
  /** Removes every key starting with `prefix` (consent was denied): listed first, as
   * removing while walking the indices may skip keys. */
  dropPrefix(prefix) {
    for (const kv of this.scan(prefix).split(SEP)) if (kv) this.del(kv.split(SUB)[0]);
  },
  /** `key SUB value SEP ...` of every key starting with `prefix` */
  scan(prefix) {
    let out = "";
    try {
      for (let i = 0; store && i < store.length; i++) {
        const k = store.key(i);
        if (k !== null && k.startsWith(prefix)) out += SEP + k + SUB + store.getItem(k);
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
function open(options, stored, query, fresh, cookies, now) {
  return wasm.open(...put(options, stored, query, fresh, cookies), now);
}
function control(h, what, n, a = "", b) {
  return answer(wasm.control(h, what, n, ...put(a, b)));
}
function tellAnswer(h, tx, status, retryAfter, body, now, jitter) {
  wasm.answered(h, tx, status, ...put(retryAfter, body), now, jitter);
}

/** `Retry-After` as seconds: its delay-seconds as they are, an HTTP-date read by the
 * browser's own `Date` ("" when absent, hidden by CORS, or unreadable). */
function seconds(header) {
  if (!header || /^\s*\d+\s*$/.test(header)) return header || "";
  const at = Date.parse(header);
  return Number.isNaN(at) ? "" : String(Math.max(0, Math.ceil((at - Date.now()) / 1000)));
}

/** An Error carrying the fields onError documents. */
export function report(kind, message, status = 0, count = 1, detail) {
  const e = new Error(message);
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

/** The open trackers, told of other tabs' storage writes by one listener. */
const trackers = new Set();
let listening;
/** Adds that listener, once. Registering it costs about a millisecond in Chromium, so
 * index.js calls this while the wasm downloads, before any tracker needs it. */
export function listenToOtherTabs() {
  if (listening) return;
  listening = true;
  addEventListener("storage", (e) => trackers.forEach((t) => t.otherTab(e)));
}

/** One tracker's adapter: a handle into the wasm core plus the page wiring. */
export class Runtime {
  #h; #prefix; #early; #closed; #electing; #kaBytes; #busy; #waiters; #timerAt; #timer; #queued; #stop; #release; #ballot; #sender; #revision; #reread; #options; #onError; #debug; #adopting; #id; #fresh; #edge;
  constructor(options, onError, debug) {
    const fresh = crypto.randomUUID();
    const h = open(JSON.stringify(options), storage.scan(NS), location.search, fresh,
      cookies(options), Date.now());
    if (h < 0) throw new Error(answer(wasm.answer_len())); // u32::MAX: refused
    this.#h = h;
    this.#options = options;
    let due;
    [this.#prefix, this.#revision, due] = control(h, INFO, 0, "").split(SEP);
    this.#adoptAt(due);
    this.#onError = onError;
    this.#debug = debug;
    this.#busy = false; // a request is in flight (one at a time, keepalive ones aside)
    this.#kaBytes = 0; // keepalive body bytes in flight
    this.#electing = false; // learning whether this tab sends
    this.#waiters = []; // flush() promises, resolved when the loop runs dry
    this.#timer = 0;
    this.#timerAt = Infinity;
    this.#queued = false;
    this.#closed = false;
    this.#stop = new AbortController();
    // The first-party visitor cookie of the shop's edge worker: used once apiBase has
    // answered as that worker (#edge: remembered in storage, read before a denial erases it).
    const base = options.apiBase;
    this.#id = base && options.firstPartyId !== false ? base.replace(/\/+$/, "") + "/id" : "";
    this.#edge = this.#id && storage.get(this.#prefix + "edge");
    this.#fresh = this.anonymousId() === fresh; // storage held no identity
    this.#watch();
    this.consent();
  }

  /**
   * The worker's first-party cookie (`/id`): asked for the visitor on a start with empty
   * storage (Safari wipes it), written with ours once consent is granted, cleared on a
   * denial. No call waits on it; a failure leaves things as they are.
   */
  #visitor(how) {
    if (!this.#edge || !how) return;
    if (how === "GET") this.#fresh = false;
    const init = { method: how, credentials: "include", keepalive: true };
    if (how === "POST") init.body = control(this.#h, ANON, 1, "");
    fetch(this.#id, init).then((r) => (how === "GET" && r.ok ? r.json() : 0)).then((v) => {
      if (v?.anonymous_id && !this.#closed) {
        control(this.#h, VISITOR, 0, v.anonymous_id, v._kx || "");
        this.#atEndOfTask();
      }
      if (how === "GET") this.#visitor("POST");
    }).catch(() => {});
  }

  #log(...parts) {
    if (this.#debug) console.debug("klaviyo:", ...parts);
  }

  /** A call of the API; throws the core's Error when it refuses it. */
  call(op, text) {
    const refused = wasm.call(this.#h, op, put1(text));
    if (refused) throw new Error(answer(refused));
    this.#atEndOfTask();
  }

  /**
   * The calls of the loading window, kept under storage key `early` until the core's own
   * record holds them: `run` hands them to the core now; they are written and sent in
   * the next task, off the path to ready. A call made before then writes them with its
   * own at the end of its task, as any call does. The key goes with the first write.
   */
  replayWindow(early, run) {
    this.#early = early;
    this.#queued = true; // no end-of-task write for the replayed calls: the key holds them
    try { run(); } finally { this.#queued = false; }
    setTimeout(() => this.syncAndSend());
  }

  /** The end of the current task: persist its calls as one record, then send. */
  #atEndOfTask() {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      this.syncAndSend();
    });
  }

  syncAndSend() {
    if (this.#closed) return;
    this.#sync();
    this.#sendDue();
  }

  /** Carries out the core's storage writes; hands failures back, then the reports. */
  #sync() {
    for (;;) {
      let failed = false;
      for (const op of control(this.#h, SYNC, Date.now(), "").split(SEP)) {
        if (!op) continue;
        const i = op.indexOf(SUB);
        if (i < 0) storage.del(op);
        else if (!i) storage.dropPrefix(op.slice(1));
        else if (!storage.set(op.slice(0, i), op.slice(i + 1))) {
          control(this.#h, FAILED, 0, op.slice(0, i));
          failed = true;
        }
      }
      if (!failed) break;
    }
    if (this.#early) {
      storage.del(this.#early);
      this.#early = "";
    }
    this.#reports();
  }

  #reports() {
    for (const r of control(this.#h, REPORTS, 0, "").split(SEP)) {
      if (!r) continue;
      const [kind, status, count, message, text] = r.split(SUB);
      let detail;
      if (text) {
        try { detail = JSON.parse(text); } catch { detail = text; }
      }
      this.emit(report(kind, message, +status, +count, detail));
    }
  }

  /** onError, which may not throw into us. */
  emit(e) {
    this.#log(e.message);
    try { this.#onError?.(e); } catch { /* the shop's handler failed: nothing to do */ }
  }

  /** Sends what is due, one request at a time; then sets the timer. */
  #sendDue() {
    if (this.#closed || this.#electing) return;
    // The onsite script may have set its cookies since we started: read them again
    // before the page's first send.
    if (!this.#reread) {
      this.#reread = true;
      control(this.#h, COOKIES, 0, cookies(this.#options));
    }
    while (!this.#busy) {
      const t = control(this.#h, NEXT, Date.now(), "");
      if (!t) break;
      this.#send(t, false);
    }
    if (this.#busy) return;
    const at = control(this.#h, WAKE, 0, "");
    if (at) this.#wakeAt(+at);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Wakes the loop by `at` (never sooner than 10 ms: no busy loop, whatever happens). */
  #wakeAt(at) {
    at = Math.max(at, Date.now() + 10);
    if (this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity;
      this.syncAndSend();
    }, at - Date.now());
  }

  /**
   * POSTs a transmit `tx SEP url SEP items SEP bytes SEP body`. Bodies that fit the
   * keepalive allowance go with `keepalive`, so a page that closes mid-request does not
   * cancel it. `hiding`: sent while the page goes away, beside the one in flight.
   */
  #send(t, hiding) {
    const [tx, url, items, bytes] = t.split(SEP, 4);
    const body = t.slice(tx.length + url.length + items.length + bytes.length + 4);
    const keepalive = +bytes <= KEEPALIVE - this.#kaBytes;
    if (keepalive) this.#kaBytes += +bytes;
    if (!hiding) this.#busy = true;
    const path = url.slice(url.indexOf("/client"), url.indexOf("?"));
    this.#log("POST", path, `(${items}${keepalive ? ", keepalive" : ""})`);
    let signal;
    try { signal = AbortSignal.timeout(30000); } catch { /* older browsers: no timeout */ }
    const answered = (status, retryAfter, text) => {
      if (keepalive) this.#kaBytes -= +bytes;
      if (!hiding) this.#busy = false;
      this.#log(path, "->", status);
      tellAnswer(this.#h, +tx, status, seconds(retryAfter), text, Date.now(), (Math.random() * 65536) | 0);
      this.syncAndSend();
    };
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/vnd.api+json", revision: this.#revision },
      body,
      keepalive,
      signal,
    }).then(
      (r) => {
        const ra = r.headers.get("retry-after");
        if (this.#id && !this.#edge && r.headers.get("x-klaviyo-edge")) {
          this.#edge = storage.set(this.#prefix + "edge", "1") || 1;
          this.#visitor(this.#fresh ? "GET" : "POST");
        }
        // The body is read only for failures, where onError reports it.
        if (r.status < 300) answered(r.status, ra, "");
        else r.text().then((b) => answered(r.status, ra, b), () => answered(r.status, ra, ""));
      },
      () => answered(0, null, ""),
    );
  }

  /** The page is hidden or going away: hand what fits to keepalive requests now. */
  #hide() {
    if (this.#closed) return;
    this.#sync();
    const now = Date.now();
    for (;;) {
      const t = control(this.#h, NEXT, now, "", String(Math.max(0, KEEPALIVE - this.#kaBytes)));
      if (!t) break;
      this.#send(t, true);
    }
    control(this.#h, HIDE, now, "");
    this.#sync();
  }

  #watch() {
    const opt = { signal: this.#stop.signal };
    // The network and the page's visibility are watched from the next task, off the
    // path to ready (registering costs about a millisecond): every call is stored by
    // then, and the next page sends what a page hidden sooner leaves.
    setTimeout(() => {
      const online = (on) => {
        control(this.#h, ONLINE, 0, on ? "1" : "0");
        this.#log(on ? "online" : "offline");
        if (on) this.syncAndSend();
      };
      if (this.#closed) return;
      if (navigator.onLine === false) online(false);
      addEventListener("online", () => online(true), opt);
      addEventListener("offline", () => online(false), opt);
      addEventListener("pagehide", () => this.#hide(), opt);
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "hidden") this.#hide();
      }, opt);
    });
    // Other tabs' writes, from the start: what this tab's queue knows must stay true.
    trackers.add(this);
    listenToOtherTabs();
  }

  /** Another tab wrote to storage (a `storage` event). */
  otherTab(e) {
    if (e.key === null) control(this.#h, RESYNC, 0, storage.scan(this.#prefix));
    else if (e.key.startsWith(this.#prefix)) {
      control(this.#h, STORAGE, 0, e.key, e.newValue);
      this.consent(); // another tab's withdrawal reaches the core this way
    } else return;
    this.#atEndOfTask();
  }

  /**
   * Sets the core's consent state to `set` (0 pending, 1 granted, 2 denied; 3 only
   * asks) and keeps the one it holds in `state`. On a change, this tab takes part in
   * choosing the sender only while granted (a pending or denied tab holding the lock
   * would stall the others' queue), and the core's storage writes (a denial's
   * erasure) are made at once.
   */
  consent(set = 3) {
    const was = this.state;
    this.state = +control(this.#h, CONSENT, set, crypto.randomUUID());
    if (this.state !== was) {
      this.#log("consent", this.state);
      this.#ballot?.abort();
      this.#release?.();
      this.#electing = false;
      if (this.state === 1) this.#elect((this.#ballot = new AbortController()).signal);
      this.#visitor(this.state === 2 ? "DELETE" : this.state && (this.#fresh ? "GET" : "POST"));
      // At start, only a denial's erasure is written at once; the rest waits for the
      // loading window's write in the next task (replayWindow), off the path to ready.
      if (was !== undefined || this.state === 2) this.syncAndSend();
    }
  }

  /** Which tab sends: the holder of a Web Lock, else of a lease in storage, until
   * `signal` aborts (consent withdrawn, or closed). */
  #elect(signal) {
    if (!store) {
      this.#log("no localStorage: this tab sends its own requests");
      return this.#became(true);
    }
    this.#electing = true;
    const name = this.#prefix + "sender";
    const locks = navigator.locks;
    if (locks) {
      const hold = () => {
        if (signal.aborted) return undefined;
        this.#became(true);
        return new Promise((r) => (this.#release = r));
      };
      locks.request(name, { ifAvailable: true }, (lock) => {
        if (lock) return hold();
        if (signal.aborted) return undefined;
        this.#became(false);
        // Waits its turn; an abort withdraws it (the rejection is expected).
        locks.request(name, { signal }, hold).catch(() => {});
        return undefined;
      }).catch(() => this.#became(true));
      return;
    }
    const me = crypto.randomUUID();
    const key = this.#prefix + "lease";
    const beat = () => {
      const v = control(this.#h, LEASE, Date.now(), me, storage.get(key));
      if (v) storage.set(key, v);
      if (this.#electing || !!v !== this.#sender) this.#became(!!v);
    };
    beat();
    const id = setInterval(beat, LEASE_MS);
    signal.addEventListener("abort", () => clearInterval(id));
  }

  #became(sender) {
    if (this.#closed) return;
    this.#electing = false;
    this.#sender = sender;
    control(this.#h, SENDER, 0, sender ? "1" : "0", sender ? storage.scan(this.#prefix) : "");
    this.#log(sender ? "this tab sends" : "this tab queues; another tab sends");
    this.syncAndSend();
  }

  flush() {
    const [sent0, failed0] = control(this.#h, TOTALS, 0, "").split(" ");
    return new Promise((resolve) => {
      this.#waiters.push(() => {
        const [sent, failed] = control(this.#h, TOTALS, 0, "").split(" ");
        resolve({ sent: sent - sent0, failed: failed - failed0, pending: this.pending() });
      });
      this.syncAndSend();
    });
  }

  pending() {
    return +control(this.#h, PENDING, 0, "");
  }

  identified() {
    return control(this.#h, IDENTIFIED, 0, "") === "1";
  }

  /** At `due` (ms, "" for never): another page's loading-window calls, seen fresh at
   * start, are stale; those storage still holds are adopted. */
  #adoptAt(due) {
    if (!due) return;
    this.#adopting = setTimeout(() => {
      this.#adoptAt(control(this.#h, ADOPT, Date.now(), storage.scan(this.#prefix + "pre:")));
      this.#atEndOfTask();
    }, Math.max(0, due - Date.now()));
  }

  anonymousId() {
    return control(this.#h, ANON, 0, "");
  }

  reset() {
    control(this.#h, RESET, 0, crypto.randomUUID());
    if (this.state === 1) this.#visitor("POST");
    this.#atEndOfTask();
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    trackers.delete(this);
    this.#stop.abort();
    this.#ballot?.abort();
    clearTimeout(this.#timer);
    clearTimeout(this.#adopting);
    this.#release?.();
    control(this.#h, CLOSE, 0, "");
  }
}
