// The worker with its DELIVERY_QUEUE binding wrapped, for tests/edge/queue-batches.test.mjs.
// Every send / sendBatch is recorded and passed to the real Queue, except the one the test
// names, which rejects as Queues does over its rate (the real queue never sees it). The
// test can also hide sendBatch, as on a binding without it. This worker consumes the
// queue itself and only records what reached it: the test reads what was queued, not
// what Klaviyo got.
//   POST /__queue {"failAt": n, "noBatch": bool, "noDeadLetters": bool}  the n-th binding call of the next run fails (0: none),
//                  DELIVERY_DEAD_LETTERS unbound or not; clears the calls
//   GET  /__queue                                  {"calls": [...], "received": [message bodies]}
import worker, { ReplayGuard } from "../../dist/edge/worker.mjs";

export { ReplayGuard };

const state = { failAt: 0, noBatch: false, noDeadLetters: false, calls: [], received: [] };
const wrappedEnvs = new WeakMap();

function refused(kind, messages) {
  state.calls.push({ kind, messages, ok: false });
  return Promise.reject(new Error("Queue send failed: Too Many Requests"));
}

// The same wrapped object for the same env, so the worker reads its settings once.
function wrap(env) {
  let wrapped = wrappedEnvs.get(env);
  if (wrapped) return wrapped;
  const real = env.DELIVERY_QUEUE;
  const queue = {
    send(body, options) {
      if (state.calls.length + 1 === state.failAt) return refused("send", 1);
      state.calls.push({ kind: "send", messages: 1, ok: true, bytes: String(body).length });
      return real.send(body, options);
    },
    // A getter, so that a run can take it away.
    get sendBatch() {
      if (state.noBatch) return undefined;
      return (messages, options) => {
        const list = [...messages];
        if (state.calls.length + 1 === state.failAt) return refused("sendBatch", list.length);
        const bytes = list.reduce((n, m) => n + String(m.body).length, 0);
        state.calls.push({ kind: "sendBatch", messages: list.length, ok: true, bytes });
        return real.sendBatch(list, options);
      };
    },
  };
  wrapped = { ...env, DELIVERY_QUEUE: queue };
  // A getter too: a run can unbind the dead-letter queue.
  Object.defineProperty(wrapped, "DELIVERY_DEAD_LETTERS", { get: () => (state.noDeadLetters ? undefined : env.DELIVERY_DEAD_LETTERS) });
  wrappedEnvs.set(env, wrapped);
  return wrapped;
}

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__queue") {
      if (request.method === "POST") {
        const { failAt = 0, noBatch = false, noDeadLetters = false } = await request.json();
        Object.assign(state, { failAt, noBatch, noDeadLetters, calls: [] });
      }
      return Response.json({ calls: state.calls, received: state.received });
    }
    return worker.fetch(request, wrap(env), ctx);
  },
  queue(batch) {
    for (const m of batch.messages) {
      state.received.push(m.body);
      m.ack();
    }
  },
};
