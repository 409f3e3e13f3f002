// The page facilities the browser adapter uses, wrapped so each hands Rust one plain
// callback. No policy here: what to send and when is decided in Rust.

// One POST. Calls `done` exactly once: (status, retryAfter, body) for an HTTP answer,
// (0, null, "") for none (offline, DNS, CORS, dropped connection, 30 s timeout).
// The body is read only for failures, where the queue reports it.
export function send(url, revision, body, keepalive, done) {
  let signal;
  try { signal = AbortSignal.timeout(30000); } catch { /* older browsers: no timeout */ }
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/vnd.api+json", revision },
    body,
    keepalive,
    signal,
  }).then(
    (r) => {
      const ra = r.headers.get("retry-after");
      return r.status < 300
        ? done(r.status, ra, "")
        : r.text().then((t) => done(r.status, ra, t), () => done(r.status, ra, ""));
    },
    () => done(0, null, ""),
  );
}

// Page events as (kind, key, value): "online", "offline", "hide" (tab hidden or page
// being unloaded), "storage" (another tab changed one of our keys; key null: cleared).
// Returns [navigator.onLine, stop()].
export function watch(prefix, on) {
  const ctl = new AbortController();
  const opt = { signal: ctl.signal };
  addEventListener("online", () => on("online", null, null), opt);
  addEventListener("offline", () => on("offline", null, null), opt);
  addEventListener("pagehide", () => on("hide", null, null), opt);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") on("hide", null, null);
  }, opt);
  addEventListener("storage", (e) => {
    if (e.key === null || e.key.startsWith(prefix)) on("storage", e.key, e.newValue);
  }, opt);
  return [navigator.onLine !== false, () => ctl.abort()];
}

// The sender tab: whoever holds the Web Lock `name`. Calls on(true) when this tab gets
// it, on(false) when another tab has it. Returns release(), or null without Web Locks.
export function lead(name, on) {
  const locks = globalThis.navigator && navigator.locks;
  if (!locks) return null;
  let release;
  let closed = false;
  const held = new Promise((r) => (release = r));
  const hold = () => {
    if (closed) return undefined;
    on(true);
    return held;
  };
  locks.request(name, { ifAvailable: true }, (lock) => {
    if (lock) return hold();
    on(false);
    if (!closed) locks.request(name, hold);
    return undefined;
  }).catch(() => on(true));
  return () => {
    closed = true;
    release();
  };
}

// Calls `tick` every `ms` until stop() (the lease heartbeat without Web Locks).
export function every(ms, tick) {
  const id = setInterval(tick, ms);
  return () => clearInterval(id);
}

// localStorage that never throws. `null` everywhere when it is missing or refuses use.
let store;
try {
  store = globalThis.localStorage;
  store.length;
} catch {
  store = null;
}
export const storage = {
  shared: () => store != null,
  get(key) {
    try { return store ? store.getItem(key) : null; } catch { return null; }
  },
  // false when the write failed (quota exceeded, storage gone)
  set(key, value) {
    try { store.setItem(key, value); return true; } catch { return false; }
  },
  del(key) {
    try { store && store.removeItem(key); } catch { /* nothing to do */ }
  },
  // [key, value, key, value, ...] of every key starting with prefix
  scan(prefix) {
    const out = [];
    try {
      for (let i = 0; store && i < store.length; i++) {
        const k = store.key(i);
        if (k !== null && k.startsWith(prefix)) out.push(k, store.getItem(k));
      }
    } catch { /* what we have so far */ }
    return out;
  },
};

export function query() {
  try { return location.search; } catch { return ""; }
}
