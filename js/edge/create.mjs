// klaviyo-wasm/edge: the shared part of createHandler and createQueueHandler. The entry files (index.mjs for
// Node, Deno, Bun and bundlers; workerd.mjs for workerd / wrangler) only differ in how
// they load the wasm, and hand this module a `ready()` that says whether it is loaded
// and a `load()` that loads it.
import { handle, consume } from "../../dist/edge/klaviyo_edge.mjs";

/**
 * Whether a setting's value says nothing, so env's value stands: `undefined`, `null` (a
 * binding looked up and absent) or a blank string (an empty environment variable), as the
 * worker itself reads such a value as unset.
 */
function unset(value) {
  return value === undefined || value === null || (typeof value === "string" && value.trim() === "");
}

/** Own enumerable keys of `settings` whose value is not [unset], copied once. */
function ownSettings(settings) {
  if (settings === undefined) return {};
  if (settings === null || typeof settings !== "object" || Array.isArray(settings)) {
    throw new TypeError("createHandler: settings must be an object of worker settings (KLAVIYO_PUBLIC_KEY, ...)");
  }
  const own = {};
  for (const key of Object.keys(settings)) {
    if (!unset(settings[key])) own[key] = settings[key];
  }
  return own;
}

/**
 * Settings merged over each `env`. The wasm reads its settings once per `env` OBJECT
 * (src/edge/worker/mod.rs `config()` compares by identity), so the merge of one env must be
 * the same object every time: one merged object per env, kept as long as the env lives.
 */
function settingsFor(settings) {
  const own = ownSettings(settings);
  const merged = new WeakMap();
  let withoutEnv; // for runtimes that pass no env object (Node, itty-router, ...)
  return (env) => {
    if (env === null || (typeof env !== "object" && typeof env !== "function")) {
      return (withoutEnv ??= { ...own });
    }
    let m = merged.get(env);
    if (m === undefined) {
      // Settings win over env: what the code passes is what runs.
      m = Object.assign({}, env, own);
      merged.set(env, m);
    }
    return m;
  };
}

/**
 * `createHandler` and `createQueueHandler` for one way of loading the wasm. `ready()` is
 * true once the wasm is instantiated; `load()` returns a promise that resolves when it
 * is (called on the first request that finds it not ready, and again after a failed load).
 */
export function makeFactories(ready, load) {
  const run = (f) => (ready() ? f() : load().then(f));
  return {
    createHandler(settings) {
      const merge = settingsFor(settings);
      // `options`: `{ clientAddress }`, the caller's address where the host knows it.
      return function klaviyoEdge(request, env, ctx, options) {
        const merged = merge(env);
        return run(() => handle(request, merged, ctx, options));
      };
    },
    createQueueHandler(settings) {
      const merge = settingsFor(settings);
      return function klaviyoDeliveries(batch, env, ctx) {
        const merged = merge(env);
        return run(() => consume(batch, merged, ctx));
      };
    },
  };
}
