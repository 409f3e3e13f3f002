// The worker with its DEAD_LETTER_STORE behind a binding that fails chosen methods, as
// KV does in an outage (tests/edge/dead-letters.test.mjs); the namespace behind it is
// Miniflare's real one.
//   POST /__store {"fail": ["delete", "list"]}  those methods throw until set again
import worker from "../../dist/edge/worker.mjs";

export { ReplayGuard } from "../../dist/edge/worker.mjs";

const state = { fail: [] };

function storeEnv(env) {
  const real = env.DEAD_LETTER_STORE;
  const store = {};
  for (const method of ["get", "getWithMetadata", "put", "list", "delete"]) {
    store[method] = (...args) =>
      state.fail.includes(method)
        ? Promise.reject(new Error(`KV ${method} failed: 503 Service Unavailable`))
        : real[method](...args);
  }
  return { ...env, DEAD_LETTER_STORE: store };
}

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__store") {
      state.fail = (await request.json()).fail ?? [];
      return Response.json({ fail: state.fail });
    }
    return worker.fetch(request, storeEnv(env), ctx);
  },
  queue(batch, env, ctx) {
    return worker.queue(batch, storeEnv(env), ctx);
  },
};
