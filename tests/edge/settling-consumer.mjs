// The worker with its queue consumer watched (tests/edge/durable.test.mjs): every ack()
// and retry() it makes is recorded with the message's body, its DELIVERY_DEAD_LETTERS
// binding can refuse the next sends as Queues does over its rate, and settings can be
// taken out of the consumer's env (a secret deleted before it is put again).
//   POST /__consumer {"refuseDeadLetters": n, "drop": ["KLAVIYO_PRIVATE_KEY"], "ageThrottledS": s}  set; clears the record
//   (a binding can be dropped too: "DELIVERY_DEAD_LETTERS"; `ageThrottledS` dates a
//   message the consumer queues again `s` seconds further back in its first 429, as
//   days of 429s would: the isolate's clock cannot move, as Queues' sends read it)
//   GET  /__consumer  {"settled": [{"how": "ack"|"retry", "delaySeconds", "body"}], "refused": n, "logs": [lines]}
import worker, { ReplayGuard } from "../../dist/edge/worker.mjs";

export { ReplayGuard };

const state = { refuseDeadLetters: 0, drop: [], ageThrottledS: 0, settled: [], refused: 0, logs: [] };

// The worker's log lines (it reads console.log at each line), kept for the test too.
const print = console.log.bind(console);
console.log = (...args) => {
  state.logs.push(args.join(" "));
  print(...args);
};

function watched(m) {
  const record = (how) => (options) => {
    state.settled.push({ how, delaySeconds: options?.delaySeconds ?? null, body: m.body });
    return how === "ack" ? m.ack() : m.retry(options);
  };
  return new Proxy(m, {
    get(target, key) {
      if (key === "ack" || key === "retry") return record(key);
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

function consumerEnv(env) {
  const out = { ...env };
  const real = env.DELIVERY_DEAD_LETTERS;
  out.DELIVERY_DEAD_LETTERS = {
    send(body, options) {
      if (state.refuseDeadLetters > 0) {
        state.refuseDeadLetters -= 1;
        state.refused += 1;
        return Promise.reject(new Error("Queue send failed: Too Many Requests"));
      }
      return real.send(body, options);
    },
  };
  const queue = env.DELIVERY_QUEUE;
  if (queue) {
    out.DELIVERY_QUEUE = {
      send(body, options) {
        if (state.ageThrottledS && typeof body === "string" && body.includes('"throttled_since"')) {
          const m = JSON.parse(body);
          m.throttled_since -= state.ageThrottledS;
          body = JSON.stringify(m);
        }
        return queue.send(body, options);
      },
      sendBatch: (messages, options) => queue.sendBatch(messages, options),
    };
  }
  for (const k of state.drop) delete out[k];
  return out;
}

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__consumer") {
      if (request.method === "POST") {
        const { refuseDeadLetters = 0, drop = [], ageThrottledS = 0 } = await request.json();
        Object.assign(state, { refuseDeadLetters, drop, ageThrottledS, settled: [], refused: 0, logs: [] });
      }
      return Response.json({ settled: state.settled, refused: state.refused, logs: state.logs });
    }
    return worker.fetch(request, env, ctx);
  },
  queue(batch, env, ctx) {
    const messages = batch.messages.map(watched);
    return worker.queue({ queue: batch.queue, messages }, consumerEnv(env), ctx);
  },
};
