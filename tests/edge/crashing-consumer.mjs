// The worker with a consumer that crashes once (tests/edge/durable.test.mjs): in the first
// batch of two or more messages, reading the second message's body throws: an error in
// the middle of a batch, after the first message was delivered.
// GET /__crashes says how many times it crashed.
import worker, { ReplayGuard } from "../../dist/edge/worker.mjs";

export { ReplayGuard };

let crashes = 0;

export default {
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__crashes") return new Response(String(crashes));
    return worker.fetch(request, env, ctx);
  },
  queue(batch, env, ctx) {
    if (crashes > 0 || batch.messages.length < 2) return worker.queue(batch, env, ctx);
    crashes += 1;
    const messages = batch.messages.map((m, i) => (i < 1 ? m : new Proxy(m, {
      get(target, key) {
        if (key === "body") throw new Error("the consumer crashed");
        const v = Reflect.get(target, key);
        return typeof v === "function" ? v.bind(target) : v;
      },
    })));
    return worker.queue({ queue: batch.queue, messages }, env, ctx);
  },
};
