// Fault rules: queued by tests, consumed in order by incoming (non-admin) requests.

// Small seeded PRNG (xorshift32) so probabilistic faults replay identically.
function prng(seed) {
  let x = (Number(seed) >>> 0) || 0x9e3779b9;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

const KNOWN = ['count', 'status', 'retryAfter', 'delayMs', 'drop', 'hold', 'path', 'method', 'probability', 'seed', 'name', 'body', 'headers', 'contentType', 'rateLimit'];

/** Throws on a rule that cannot work, so a typo in a test fails loudly. */
export function normalizeRule(input) {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error('fault rule must be an object');
  const unknown = Object.keys(input).filter((k) => !KNOWN.includes(k));
  if (unknown.length) throw new Error(`unknown fault rule field(s): ${unknown.join(', ')}`);
  const r = { ...input };
  // `rateLimit: { limit, windowMs }`: Klaviyo's steady rate limit on `path`. At most
  // `limit` requests pass in any `windowMs`; the rest are answered 429 with a
  // `Retry-After` of the seconds until one of those leaves the window. Refused ones do
  // not count. Unlimited `count` by default.
  if (r.rateLimit !== undefined) {
    const { limit, windowMs } = r.rateLimit ?? {};
    if (!(Number.isInteger(limit) && limit > 0 && windowMs > 0)) throw new Error('rateLimit needs { limit: a whole number > 0, windowMs > 0 }');
    if (r.retryAfter !== undefined || r.probability !== undefined || (r.status ?? 429) !== 429) throw new Error('rateLimit sets its own status (429) and Retry-After');
    r.status = 429;
    r.count ??= Infinity;
  }
  if (r.status !== undefined && !(Number.isInteger(r.status) && r.status >= 100 && r.status <= 599)) throw new Error('status must be an HTTP status code');
  if (r.delayMs !== undefined && !(Number(r.delayMs) >= 0)) throw new Error('delayMs must be >= 0');
  if (r.retryAfter !== undefined && r.status === undefined) throw new Error('retryAfter needs a status');
  if (r.headers !== undefined && (typeof r.headers !== 'object' || r.status === undefined)) throw new Error('headers must be an object, with a status');
  // `contentType`: the body is sent as that type, as text (an HTML error page of a proxy).
  if (r.contentType !== undefined && (typeof r.contentType !== 'string' || typeof r.body !== 'string')) throw new Error('contentType must be a string, with a string body');
  if (r.probability !== undefined && !(r.probability >= 0 && r.probability <= 1)) throw new Error('probability must be within [0, 1]');
  if (r.status === undefined && !r.delayMs && !r.drop && !r.hold) throw new Error('rule needs status, delayMs, drop or hold');
  if (r.drop && r.status !== undefined) throw new Error('drop and status exclude each other');
  // Without probability a rule hits the next `count` requests (default 1);
  // with probability, count is a cap (default: unlimited).
  const count = r.count === undefined ? (r.probability === undefined ? 1 : Infinity) : Number(r.count);
  if (!(count >= 0)) throw new Error('count must be >= 0');
  const label = r.name || (r.rateLimit ? `rate:${r.rateLimit.limit}/${r.rateLimit.windowMs}ms` : null) || [
    r.delayMs ? `delay:${r.delayMs}` : null,
    r.hold ? 'hold' : null,
    r.drop ? 'drop' : null,
    r.status !== undefined ? `status:${r.status}` : null,
  ].filter(Boolean).join('+');
  return { ...r, remaining: count, hits: 0, label, random: r.probability === undefined ? null : prng(r.seed ?? 1), passed: [] };
}

export class FaultQueue {
  constructor() { this.rules = []; }

  add(input) {
    const rule = normalizeRule(input);
    this.rules.push(rule);
    return rule;
  }

  clear() { this.rules = []; }

  /** The first rule that fires for this request, or null. Exhausted rules go away. */
  take(method, pathname) {
    for (const rule of this.rules) {
      if (rule.remaining <= 0) continue;
      if (rule.path && !pathname.startsWith(rule.path)) continue;
      if (rule.method && rule.method.toUpperCase() !== method) continue;
      // A probabilistic rule that does not fire lets later rules have a go.
      if (rule.random && rule.random() >= rule.probability) continue;
      if (rule.rateLimit && !this.#overLimit(rule)) continue;
      rule.remaining -= 1;
      rule.hits += 1;
      this.rules = this.rules.filter((r) => r.remaining > 0);
      return rule;
    }
    return null;
  }

  /** Whether a request now is over `rule.rateLimit`: if not, it passes and counts; if
   * so, the rule's `retryAfter` is set to when the oldest passed one leaves the window. */
  #overLimit(rule) {
    const now = Date.now();
    const { limit, windowMs } = rule.rateLimit;
    rule.passed = rule.passed.filter((t) => t > now - windowMs);
    if (rule.passed.length < limit) {
      rule.passed.push(now);
      return false;
    }
    rule.retryAfter = Math.max(1, Math.ceil((rule.passed[0] + windowMs - now) / 1000));
    return true;
  }

  list() {
    return this.rules.map(({ random, remaining, passed, ...r }) => ({ ...r, remaining: remaining === Infinity ? null : remaining }));
  }
}
