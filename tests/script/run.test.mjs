// The command queue behind window.klaviyoWasm (js/script/run.js) against a stand-in
// tracker, without a browser: order, push times, init/data attributes, consent, the
// trackViewedItem pairing, and that nothing throws. tests/script/script.test.mjs runs
// the same through Chromium and the emulator.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runner, fromData } from "../../js/script/run.js";

/** A stand-in for Klaviyo.create: records every call; `ready` false = the core never runs. */
function stub({ ready = false, consent = true } = {}) {
  const calls = [];
  const made = [];
  const tracker = (options) => {
    const kl = {
      options,
      ready: ready ? Promise.resolve() : new Promise(() => {}),
      identify: (p) => (calls.push(["identify", p]), Promise.resolve()),
      track: (m, p, o) => {
        if (typeof p !== "object") throw new Error("track: properties must be an object");
        calls.push(["track", m, p, o]);
        return "id-" + calls.length;
      },
      viewedProduct: (p, o) => (calls.push(["viewedProduct", p, o]), "v"),
      addedToCart: (p, o) => (calls.push(["addedToCart", p, o]), "a"),
      startedCheckout: (p, o) => (calls.push(["startedCheckout", p, o]), "c"),
      activeOnSite: (p, o) => (calls.push(["activeOnSite", p, o]), "s"),
      subscribe: (o) => (calls.push(["subscribe", o]), Promise.reject(new Error("subscribe: listId is required"))),
      backInStock: (o) => (calls.push(["backInStock", o]), Promise.resolve()),
      reset: () => calls.push(["reset"]),
      flush: () => (calls.push(["flush"]), Promise.resolve({ sent: 0, pending: 0, failed: 0 })),
    };
    if (consent) kl.setConsent = (s) => calls.push(["setConsent", s]);
    kl.setCurrency = (c) => {
      if (c === "euro") throw new Error("setCurrency: currency must be a three-letter ISO 4217 code, like USD");
      calls.push(["setCurrency", c]);
    };
    made.push(kl);
    return kl;
  };
  const warnings = [];
  const out = { calls, made, warnings };
  out.runner = (defaults, parsed) => (out.api = runner(tracker, (e) => warnings.push(e.message ?? String(e)), defaults, parsed));
  return out;
}
const tick = () => new Promise((r) => setTimeout(r, 0));

test("commands queued before load run in order after init, events carrying their push time", () => {
  const s = stub();
  const r = s.runner({ wasmUrl: "https://cdn.example/k/klaviyo_wasm_bg.wasm" });
  const queue = [
    ["identify", { email: "a@example.com" }],
    ["track", "Ordered Sample", { a: 1 }],
    ["init", { companyId: "AbC123", apiBase: "https://proxy.example" }],
    ["viewedProduct", { ProductID: "1", ProductName: "P" }, { time: 5, value: 2 }],
    ["addedToCart", { ProductID: "1", ProductName: "P", Price: 1 }, { valueCurrency: "USD" }],
    ["startedCheckout", { value: 3 }],
    ["reset"],
  ];
  r.start(queue, [1000, 2000, 3000, 4000, 5000, 6000, 7000]);
  assert.equal(s.made.length, 1);
  assert.equal(s.made[0].options.companyId, "AbC123");
  assert.equal(s.made[0].options.apiBase, "https://proxy.example");
  assert.equal(s.made[0].options.wasmUrl, "https://cdn.example/k/klaviyo_wasm_bg.wasm");
  assert.deepEqual(s.calls, [
    ["identify", { email: "a@example.com" }],
    ["track", "Ordered Sample", { a: 1 }, { time: 2000 }],
    ["viewedProduct", { ProductID: "1", ProductName: "P" }, { time: 5, value: 2 }], // its own time wins
    ["addedToCart", { ProductID: "1", ProductName: "P", Price: 1 }, { valueCurrency: "USD", time: 5000 }],
    ["startedCheckout", { value: 3 }, { time: 6000 }],
    ["reset"],
  ]);
  assert.deepEqual(queue[4][2], { valueCurrency: "USD" }, "the page's options object is not changed");
  assert.deepEqual(s.warnings, []);
});

test("after load a push runs at once, stamped by the tracker itself; push returns the call's result", () => {
  const s = stub();
  const r = s.runner({});
  r.start([["init", { companyId: "AbC123" }]], [1]);
  const api = r.api;
  assert.equal(api.loaded, true);
  assert.equal(api.tracker, s.made[0]);
  assert.equal(api.push(["track", "Later", { b: 2 }]), "id-1");
  assert.deepEqual(s.calls, [["track", "Later", { b: 2 }, undefined]]);
  api.push(["reset"], ["flush"]);
  assert.deepEqual(s.calls.slice(1), [["reset"], ["flush"]]);
});

test("commands wait for a later init, keeping their push time; without one nothing is created", () => {
  const s = stub();
  const r = s.runner({});
  r.start([["track", "Early", {}]], [10]);
  const api = r.api;
  const t0 = Date.now();
  api.push(["identify", { email: "a@example.com" }], ["track", "Waiting", {}]);
  const t1 = Date.now();
  assert.equal(s.made.length, 0);
  assert.equal(api.tracker, null);
  api.push(["init", { companyId: "AbC123" }]);
  const { time } = s.calls[2][3];
  assert.ok(time >= t0 && time <= t1, "a command held for init keeps the time it was pushed");
  assert.deepEqual(s.calls, [
    ["track", "Early", {}, { time: 10 }],
    ["identify", { email: "a@example.com" }],
    ["track", "Waiting", {}, { time }],
  ]);
});

test("data attributes start the tracker without init; a queued init is merged over them", () => {
  const data = { companyId: "AbC123", apiBase: "https://proxy.example", revision: "2026-07-15", consent: "pending", debug: "" };
  const defaults = fromData(data, "https://cdn.example/k/klaviyo-wasm.js?v=1");
  assert.deepEqual(defaults, {
    wasmUrl: "https://cdn.example/k/klaviyo_wasm_bg.wasm", companyId: "AbC123", apiBase: "https://proxy.example",
    revision: "2026-07-15", consent: "pending", debug: true,
  });
  assert.equal(fromData({ wasmUrl: "/w.wasm", debug: "false" }, "https://cdn.example/k.js").wasmUrl, "/w.wasm");
  assert.equal(fromData({ debug: "false" }, "https://cdn.example/k.js").debug, undefined);

  let s = stub();
  s.runner(defaults).start([["track", "A", {}]], [1]);
  assert.equal(s.made.length, 1);
  assert.equal(s.made[0].options.consent, "pending");
  assert.deepEqual(s.calls, [["track", "A", {}, { time: 1 }]]);

  s = stub();
  s.runner(defaults).start([["track", "A", {}], ["init", { apiBase: "https://other.example", wasmUrl: "/x.wasm" }]], [1, 2]);
  assert.equal(s.made.length, 1);
  assert.equal(s.made[0].options.companyId, "AbC123");
  assert.equal(s.made[0].options.apiBase, "https://other.example");
  assert.equal(s.made[0].options.wasmUrl, "/x.wasm");
  assert.equal(s.calls.length, 1);
});

test("an init member left undefined, null or blank keeps its data attribute; a pushed time: null keeps the push time", () => {
  const defaults = fromData({ companyId: "AbC123", apiBase: "https://proxy.example", consent: "denied" }, "https://cdn.example/k.js");
  const s = stub();
  s.runner(defaults).start([
    ["init", { companyId: undefined, apiBase: "", consent: null, revision: undefined, debug: true }],
    ["track", "A", {}, { time: null }],
  ], [7, 8]);
  const o = s.made[0].options;
  assert.deepEqual([o.companyId, o.apiBase, o.consent, o.debug], ["AbC123", "https://proxy.example", "denied", true]);
  assert.ok(!("revision" in o) || o.revision === undefined);
  assert.deepEqual(s.calls, [["track", "A", {}, { time: 8 }]]);
  // Without an attribute, the member reaches create as given (which judges it).
  const t = stub();
  t.runner({ companyId: "AbC123" }).start([["init", { consent: null }]], [1]);
  assert.equal(t.made[0].options.consent, null);
});

test("a second init is ignored with a warning; Klaviyo's account command inits once", () => {
  const s = stub();
  const r = s.runner({});
  r.start([["account", "AbC123"], ["account", "AbC123"], ["init", { companyId: "XyZ789" }]], []);
  assert.equal(s.made.length, 1);
  assert.equal(s.made[0].options.companyId, "AbC123");
  assert.deepEqual(s.warnings, ["init: already initialised; this one is ignored"]);
});

test("Klaviyo's account waits for the parsed HTML: a later init's options win and take its id; alone, it starts the tracker then", () => {
  let s = stub();
  let parsed = [];
  s.runner({}, (f) => parsed.push(f)).start([["account", "AbC123"], ["track", "A", {}]], [1, 2]);
  assert.equal(s.made.length, 0, "no tracker before the HTML is parsed");
  s.api.run(["init", { consent: "pending", apiBase: "https://shop.example/klaviyo" }]);
  assert.equal(s.made.length, 1);
  const { companyId, consent, apiBase } = s.made[0].options;
  assert.deepEqual({ companyId, consent, apiBase }, { companyId: "AbC123", consent: "pending", apiBase: "https://shop.example/klaviyo" });
  for (const f of parsed) f();
  assert.equal(s.made.length, 1, "the parsed HTML starts no second one");
  assert.deepEqual(s.calls, [["track", "A", {}, { time: 2 }]]);
  assert.deepEqual(s.warnings, []);

  s = stub();
  parsed = [];
  s.runner({}, (f) => parsed.push(f)).start([["account", "AbC123"], ["track", "A", {}], ["account", "AbC123"]], [1, 2, 3]);
  assert.equal(parsed.length, 1, "one start, however many accounts");
  assert.equal(s.made.length, 0);
  parsed[0]();
  assert.equal(s.made.length, 1);
  assert.equal(s.made[0].options.companyId, "AbC123");
  assert.deepEqual(s.calls, [["track", "A", {}, { time: 2 }]]);
  parsed[0]();
  assert.equal(s.made.length, 1);
  assert.deepEqual(s.warnings, []);
});

test("a second copy's data attributes count when the first copy's tag had none, and wait for the parsed HTML: a later init wins", () => {
  let s = stub();
  let parsed = [];
  s.runner({ wasmUrl: "/first.wasm" }, (f) => parsed.push(f)).start([["track", "A", {}]], [1]);
  s.api.api.tag({ companyId: "AbC123", apiBase: "https://shop.example/klaviyo", wasmUrl: "/second.wasm" });
  assert.equal(s.made.length, 0, "no tracker before the HTML is parsed");
  s.api.run(["init", { consent: "pending" }]);
  assert.equal(s.made.length, 1);
  const { companyId, apiBase, consent } = s.made[0].options;
  assert.deepEqual({ companyId, apiBase, consent }, { companyId: "AbC123", apiBase: "https://shop.example/klaviyo", consent: "pending" });
  for (const f of parsed) f();
  assert.equal(s.made.length, 1);
  assert.deepEqual(s.warnings, []);
  // The first copy's own company id stands: the second copy is named and ignored.
  s = stub();
  parsed = [];
  s.runner({ companyId: "XyZ789" }, (f) => parsed.push(f)).start([], []);
  s.api.api.tag({ companyId: "AbC123" });
  assert.deepEqual(s.warnings, ["a second klaviyo-wasm script is ignored"]);
  for (const f of parsed) f();
  assert.equal(s.made[0].options.companyId, "XyZ789");
});

test("consent maps to setConsent, in order; without setConsent it only warns", () => {
  let s = stub();
  s.runner({}).start([["consent", "pending"], ["init", { companyId: "AbC123" }], ["track", "A", {}], ["consent", "granted"]], []);
  assert.deepEqual(s.calls.map((c) => c.slice(0, 2)), [["setConsent", "pending"], ["track", "A"], ["setConsent", "granted"]]);
  s = stub({ consent: false });
  s.runner({ companyId: "AbC123" }).start([["consent", "denied"], ["track", "A", {}]], []);
  assert.deepEqual(s.warnings, ["consent: this build has no setConsent"]);
  assert.equal(s.calls.length, 1);
});

test("currency maps to setCurrency, in order; a trackViewedItem still waits for the end of its task; data-currency is the currency option", async () => {
  assert.equal(fromData({ companyId: "AbC123", currency: "EUR" }, "https://cdn.example/k.js").currency, "EUR");
  assert.equal("currency" in fromData({ companyId: "AbC123", currency: "" }, "https://cdn.example/k.js"), false);
  const s = stub({ ready: true });
  const r = s.runner({ companyId: "AbC123" });
  r.start([["currency", "SEK"], ["track", "A", {}]], []);
  r.api.push(
    ["trackViewedItem", { ItemId: "9", Title: "Nine" }],
    ["currency", "NOK"],
    ["trackViewedItem", { ItemId: "10", Title: "Ten" }],
    ["currency", "euro"],
  );
  await tick();
  assert.deepEqual(s.calls.map((c) => (c[0] === "viewedProduct" ? `view ${c[1].ProductID}` : c[0] === "setCurrency" ? `currency ${c[1]}` : c[0])), [
    "currency SEK", "track", "currency NOK", "view 9", "view 10",
  ]);
  assert.deepEqual(s.warnings, ["setCurrency: currency must be a three-letter ISO 4217 code, like USD"], "a bad code warns, never throws");
});

test("trackViewedItem beside a Viewed Product of the same product, in either order, makes one event", async () => {
  const s = stub();
  const api = (() => {
    const r = s.runner({ companyId: "AbC123" });
    r.start([
      ["trackViewedItem", { ItemId: 1, Title: "P", Metadata: { Price: "$9.99" } }],
      ["track", "Viewed Product", { Name: "P", ProductID: 1, Price: "$9.99" }],
    ], [100, 200]);
    return r.api;
  })();
  api.push(["track", "Viewed Product", { ProductName: "Q", ProductID: "2" }]);
  api.push(["trackViewedItem", { ItemId: "2", Title: "Q" }]);
  api.push(["trackViewedItem", { ItemId: 3, Title: "R" }]);
  api.push(["trackViewedItem", { ItemId: 3, Title: "R" }]);
  await tick();
  assert.deepEqual(s.calls, [
    ["viewedProduct", { Name: "P", ProductName: "P", ProductID: 1, Price: 9.99 }, { time: 200 }],
    ["viewedProduct", { ProductName: "Q", ProductID: "2" }, undefined],
    ["viewedProduct", { ProductID: 3, ProductName: "R" }, undefined],
  ]);
  // Explicit Viewed Product calls are never dropped.
  api.push(["viewedProduct", { ProductName: "Q", ProductID: "2" }]);
  assert.equal(s.calls.length, 4);
});

test("a trackViewedItem of a product viewed before is a new view after a route change or a reset", async () => {
  const s = stub();
  const r = s.runner({ companyId: "AbC123" });
  r.start([], []);
  const saved = Object.getOwnPropertyDescriptor(globalThis, "location");
  try {
    Object.defineProperty(globalThis, "location", { value: { href: "https://shop.example/a" }, configurable: true });
    r.api.push(["track", "Viewed Product", { ProductName: "P", ProductID: "1" }]);
    r.api.push(["trackViewedItem", { ItemId: "1", Title: "P" }]);
    await tick();
    assert.equal(s.calls.length, 1, "its pair on the same page: one view");
    // A single-page shop's route change: the same product viewed again, by trackViewedItem alone.
    Object.defineProperty(globalThis, "location", { value: { href: "https://shop.example/b" }, configurable: true });
    r.api.push(["trackViewedItem", { ItemId: "1", Title: "P" }]);
    await tick();
    assert.equal(s.calls.length, 2, "a new view after the route change");
    r.api.push(["reset"]);
    r.api.push(["trackViewedItem", { ItemId: "1", Title: "P" }]);
    await tick();
    assert.deepEqual(s.calls.slice(2).map((c) => c[0]), ["reset", "viewedProduct"], "the next visitor's own view");
  } finally {
    if (saved) Object.defineProperty(globalThis, "location", saved);
    else delete globalThis.location;
  }
});

test("Klaviyo's own \"Active on Site\" is not sent beside ours (activeOnSite auto); with manual it is the page's", () => {
  let s = stub();
  s.runner({ companyId: "AbC123" }).start([["track", "Active on Site", { URL: "https://shop.example/" }]], [1]);
  assert.deepEqual(s.calls, [], "ours sends the page's one");
  s = stub();
  s.runner({ companyId: "AbC123", activeOnSite: "manual" }).start([["track", "Active on Site", { URL: "https://shop.example/" }]], [1]);
  assert.deepEqual(s.calls.map((c) => c[0]), ["activeOnSite"]);
});

test("a trackViewedItem alone is a Viewed Product with its push time", async () => {
  const s = stub();
  s.runner({ companyId: "AbC123" }).start([["trackViewedItem", { ItemId: 7, Title: "T" }]], [1234]);
  assert.equal(s.calls.length, 0, "waits for the end of the task");
  await tick();
  assert.deepEqual(s.calls, [["viewedProduct", { ProductID: 7, ProductName: "T" }, { time: 1234 }]]);
});

test("bad commands never throw: they warn; async refusals warn once", async () => {
  const s = stub({ ready: true });
  const r = s.runner({ companyId: "AbC123" });
  r.start([["track", "Bad", "not an object"], "nonsense", null, ["openForm", "X"], [42]], []);
  await tick(); // ready
  const api = r.api;
  assert.doesNotThrow(() => api.push(undefined, {}, ["init", "x"], ["subscribe", {}]));
  await tick();
  assert.deepEqual(s.warnings, [
    "track: properties must be an object",
    'a command is an array like ["track", "Metric", { ... }]',
    'a command is an array like ["track", "Metric", { ... }]',
    'unknown command "openForm"',
    'a command is an array like ["track", "Metric", { ... }]',
    'a command is an array like ["track", "Metric", { ... }]',
    'a command is an array like ["track", "Metric", { ... }]',
    "init: already initialised; this one is ignored",
    "subscribe: listId is required",
  ]);
});

test("before the core is ready, refusals come through onError (kind invalid) and are warned once", async () => {
  // As the tracker does: a call made before ready is refused as the core starts, reported
  // to onError, then its promise rejects.
  let refuse;
  const s = stub({ ready: false });
  const r = runner((o) => {
    const kl = { options: o, ready: new Promise(() => {}), subscribe: () => new Promise((_, no) => { refuse = no; }) };
    s.made.push(kl);
    return kl;
  }, (e) => s.warnings.push(e.message), { companyId: "AbC123" });
  r.start([["subscribe", {}]], []);
  const { onError } = s.made[0].options;
  onError(Object.assign(new Error("subscribe: listId is required"), { kind: "invalid" }));
  refuse(new Error("subscribe: listId is required"));
  await tick();
  onError(Object.assign(new Error("network"), { kind: "retry" }));
  assert.deepEqual(s.warnings, ["subscribe: listId is required"], "warned once; other kinds only with debug");

  const d = stub();
  d.runner({ companyId: "AbC123", debug: true }).start();
  d.made[0].options.onError(Object.assign(new Error("network"), { kind: "retry" }));
  assert.deepEqual(d.warnings, ["network"]);

  // A shop's own onError is used as it is.
  const seen = [];
  const own = stub();
  own.runner({}).start([["init", { companyId: "AbC123", onError: (e) => seen.push(e) }]]);
  own.made[0].options.onError(Object.assign(new Error("x"), { kind: "invalid" }));
  assert.equal(seen.length, 1);
  assert.deepEqual(own.warnings, []);
});

test("a bad call pushed from a callback as the core starts (before the runner heard ready) is warned once", async () => {
  // Such a call goes to the core directly: its rejection is the only word of it. Before,
  // the runner took it for one onError had warned about, and nobody warned.
  const warnings = [];
  const r = runner((o) => ({
    options: o,
    ready: new Promise(() => {}), // not yet resolved when the call is made
    subscribe: () => Promise.reject(new Error("subscribe: channels must be a list")),
  }), (e) => warnings.push(e.message), { companyId: "AbC123" });
  r.start();
  r.api.push(["subscribe", { email: 42, listId: "L1" }]);
  await tick();
  assert.deepEqual(warnings, ["subscribe: channels must be a list"]);
});

test("a wasm that fails to load is warned once, not once more for every call waiting on it", async () => {
  const warnings = [];
  let created;
  const r = runner((o) => {
    const e = Object.assign(new Error("Failed to fetch"), { kind: "load" });
    const ready = Promise.reject(e);
    created = { o, e };
    return { ready, identify: () => Promise.reject(e), subscribe: () => Promise.reject(e) };
  }, (e) => warnings.push(e.message), { companyId: "AbC123" });
  r.start([["identify", { email: "a@example.com" }], ["subscribe", { listId: "L1", email: "a@example.com" }]], []);
  created.o.onError(created.e); // the tracker reports the load failure, then its calls reject
  await tick();
  assert.deepEqual(warnings, ["Failed to fetch"]);
});

test("a trackViewedItem goes before a later reset or consent of the same task (its visitor's view)", async () => {
  const s = stub({ ready: true });
  const r = s.runner({ companyId: "AbC123" });
  r.start();
  r.api.push(
    ["identify", { email: "a@example.com" }],
    ["trackViewedItem", { ItemId: "9", Title: "Nine" }],
    ["reset"],
    ["identify", { email: "b@example.com" }],
    ["trackViewedItem", { ItemId: "10", Title: "Ten" }],
    ["consent", "denied"],
  );
  await tick();
  assert.deepEqual(s.calls.map((c) => (c[0] === "identify" ? `identify ${c[1].email}` : c[0] === "viewedProduct" ? `view ${c[1].ProductID}` : c[0])), [
    "identify a@example.com", "view 9", "reset", "identify b@example.com", "view 10", "setConsent",
  ]);
  // An identify names the same visitor: the item still waits, and a Viewed Product of
  // the same product after it makes it one event.
  const t = stub({ ready: true });
  const q = t.runner({ companyId: "AbC123" });
  q.start();
  q.api.push(["trackViewedItem", { ItemId: "42", Title: "Forty-two" }], ["identify", { email: "a@example.com" }], ["track", "Viewed Product", { ProductID: "42", ProductName: "Forty-two" }]);
  await tick();
  assert.deepEqual(t.calls.map((c) => c[0]), ["identify", "viewedProduct"]);
});

test("options the tracker refuses reject every waiting call: warned once, not once per call", async () => {
  const warnings = [];
  const r = runner((o) => {
    const e = new Error("companyId must be your 6-character Klaviyo public API key");
    const ready = Promise.reject(e);
    // As the tracker does: every waiting promise rejects, then onError hears it once.
    const waiting = [];
    const call = () => { const p = new Promise((_, no) => waiting.push(no)); return p; };
    queueMicrotask(() => { waiting.forEach((no) => no(e)); o.onError(Object.assign(new Error(e.message), { kind: "invalid" })); });
    return { ready, identify: call, subscribe: call };
  }, (e) => warnings.push(e.message), { companyId: "bad" });
  r.start([["identify", { email: "a@example.com" }], ["identify", { email: "b@example.com" }], ["subscribe", { listId: "L1", email: "a@example.com" }]], []);
  await tick();
  assert.deepEqual(warnings, ["companyId must be your 6-character Klaviyo public API key"]);
});

test("with data-wait-for-init (parsed), the attributes wait for the HTML: an init pushed by then wins", () => {
  const s = stub();
  let parsed;
  const r = s.runner({ companyId: "AbC123" }, (f) => { parsed = f; });
  r.start([], [], true);
  assert.equal(s.made.length, 0, "not started from the attributes yet");
  r.api.push(["track", "Before Init", {}]);
  r.api.push(["init", { consent: "pending", activeOnSite: "manual" }]);
  assert.equal(s.made.length, 1);
  assert.equal(s.made[0].options.consent, "pending");
  assert.equal(s.made[0].options.companyId, "AbC123", "laid over the attributes");
  assert.equal(s.calls[0][1], "Before Init", "the held command ran after init");
  parsed();
  assert.equal(s.made.length, 1, "no second tracker once parsed");
  // Without an init by then, the attributes start it.
  const t = stub();
  let done;
  t.runner({ companyId: "AbC123" }, (f) => { done = f; }).start([["track", "Held", {}]], [7], true);
  assert.equal(t.made.length, 0);
  done();
  assert.equal(t.made.length, 1);
  assert.deepEqual(t.calls[0].slice(0, 2), ["track", "Held"]);
  assert.equal(t.calls[0][3].time, 7, "its push time kept");
});

test("a ready that fails (the wasm did not load) is warned; a refused option only once", async () => {
  const failing = (message, invalid) => {
    const warnings = [];
    const r = runner((o) => {
      const ready = Promise.reject(new Error(message));
      if (invalid) o.onError(Object.assign(new Error(message), { kind: "invalid" }));
      return { ready };
    }, (e) => warnings.push(e.message), { companyId: "AbC123" });
    r.start();
    return warnings;
  };
  const a = failing("Failed to fetch", false);
  const b = failing("companyId must be your 6-character Klaviyo public API key", true);
  await tick();
  assert.deepEqual(a, ["Failed to fetch"]);
  assert.deepEqual(b, ["companyId must be your 6-character Klaviyo public API key"]);
});

// The pairing of a trackViewedItem with the Viewed Product of the same product rests on
// the item waiting for the end of its task: a currency command that drained it at once
// made a Viewed Product pushed after it in the same task a second event (a review).
test("a currency command between a trackViewedItem and the Viewed Product of the same product still makes one event", async () => {
  const s = stub({ ready: true });
  const r = s.runner({ companyId: "AbC123" });
  r.start([], []);
  r.api.push(
    ["trackViewedItem", { ItemId: "1", Title: "P", Metadata: { Price: 5 } }],
    ["currency", "GBP"],
    ["track", "Viewed Product", { ProductName: "P", ProductID: "1", Price: 5 }],
  );
  await tick();
  const views = s.calls.filter((c) => c[0] === "viewedProduct");
  assert.equal(views.length, 1, `one view, one event: ${JSON.stringify(s.calls)}`);
});
