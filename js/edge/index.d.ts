/**
 * klaviyo-wasm/edge: the edge worker as a fetch handler you mount in your own worker or
 * app (Hono, itty-router, a Next.js or Remix route, a bare `export default { fetch }`).
 *
 * ```ts
 * import { createHandler } from "klaviyo-wasm/edge";
 *
 * // Hono in workerd: the route sees the full path, so the handler strips the prefix.
 * const klaviyo = createHandler({ ROUTE_PREFIX: "/klaviyo", KLAVIYO_PUBLIC_KEY: "AbC123" });
 * app.all("/klaviyo/*", (c) => klaviyo(c.req.raw, c.env, c.executionCtx));
 *
 * // Or let Hono strip it (and find the ExecutionContext where there is one):
 * app.mount("/klaviyo", createHandler({ KLAVIYO_PUBLIC_KEY: "AbC123" }));
 *
 * // A bare worker: export default { fetch: createHandler({ ROUTE_PREFIX: "/klaviyo" }) };
 * ```
 *
 * In workerd (Cloudflare Workers, wrangler, Miniflare) the export conditions `workerd` and
 * `worker` pick a module that imports the `.wasm` as a compiled module. Everywhere else
 * (Node >= 20, Deno, Bun) the wasm is read from the package's file on the first request,
 * or when `ready()` is awaited.
 */

/** A setting's value: wrangler `[vars]` arrive as strings, numbers or booleans. A blank
 * string counts as missing. */
export type SettingValue = string | number | boolean;

/** What the worker needs of a KV namespace (Cloudflare's `KVNamespace` fits). */
export interface ReplayStore {
  get(key: string): Promise<unknown>;
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<unknown>;
}

/** What the worker needs of a KV namespace that keeps dead letters (Cloudflare's `KVNamespace` fits). */
export interface DeadLetterStore {
  getWithMetadata(key: string, type: "text"): Promise<{ value: string | null; metadata: unknown }>;
  put(key: string, value: string, options?: { metadata?: unknown }): Promise<unknown>;
  list(options?: { prefix?: string; limit?: number; cursor?: string }): Promise<{
    keys: { name: string; metadata?: unknown }[];
    list_complete: boolean;
    cursor?: string;
  }>;
  delete(key: string): Promise<unknown>;
}

/** What the worker needs of a queue producer (Cloudflare's `Queue` fits). */
export interface DeliveryQueue {
  send(body: string, options?: { contentType?: "text" }): Promise<unknown>;
  sendBatch(messages: Iterable<{ body: string; contentType?: "text" }>): Promise<unknown>;
}

/** What the worker needs of a Durable Object namespace (Cloudflare's fits). */
export interface ReplayGuardNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(input: string | Request, init?: RequestInit): Promise<Response> };
}

/** What the worker needs of Cloudflare's rate-limit binding. */
export interface RateLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/**
 * The worker's settings: the same keys as its `env` (README, "Settings (env)"). Passed to
 * `createHandler`, one that is `undefined`, `null` or a blank string is skipped: env's stands.
 */
export interface EdgeSettings {
  /** The 6-character company id; `/client` needs it. */
  KLAVIYO_PUBLIC_KEY?: SettingValue | null | undefined;
  /** Comma-separated origins allowed for CORS, `/client` and the browser path of `/api/events`. */
  ALLOWED_ORIGINS?: SettingValue | null | undefined;
  /** Secret: sent upstream on `/api/*`. Keep it in the platform's secrets, not in code. */
  KLAVIYO_PRIVATE_KEY?: SettingValue | null | undefined;
  /** Secret: the HMAC key of signed backend requests (see `klaviyo-wasm/sign`) and forwarded webhooks. */
  EDGE_SIGNING_SECRET?: SettingValue | null | undefined;
  /** Secret: Klaviyo's system-webhook secret (`Klaviyo-Signature`). */
  KLAVIYO_WEBHOOK_SECRET?: SettingValue | null | undefined;
  /** Comma-separated metric names a page may send unsigned to `/api/events`. */
  BROWSER_SERVER_METRICS?: SettingValue | null | undefined;
  /** Unsigned browser calls to `/api/events` per client and minute (default 60). */
  BROWSER_RATE_PER_MINUTE?: SettingValue | null | undefined;
  /** Default `https://a.klaviyo.com`; `https://` only (`http://` to loopback hosts). */
  KLAVIYO_API_BASE?: SettingValue | null | undefined;
  /** Default `2026-07-15`. */
  KLAVIYO_REVISION?: SettingValue | null | undefined;
  /** Verified webhooks are also POSTed here, signed. */
  WEBHOOK_FORWARD_URL?: SettingValue | null | undefined;
  /** Default 5242880 (5 MiB); a larger body gets 413. */
  MAX_BODY_BYTES?: SettingValue | null | undefined;
  /**
   * The path the handler is mounted under, e.g. `/klaviyo`: it must start with `/`, it is
   * stripped, and any path without it gets 404. Set it when your router passes the full
   * URL (Hono's `app.all("/klaviyo/*", ...)`); leave it out when the router strips the
   * prefix itself (Hono's `app.mount("/klaviyo", handler)`).
   */
  ROUTE_PREFIX?: SettingValue | null | undefined;
  /** Default 8000: an upstream call with the private key taking longer counts as failed. */
  UPSTREAM_TIMEOUT_MS?: SettingValue | null | undefined;
  /**
   * `true` when a proxy of your own in front of the worker sets `x-forwarded-for`: its
   * LAST hop then counts as the caller's address where the runtime gives none. Off by
   * default, since any caller can write that header.
   */
  TRUST_FORWARDED_FOR?: SettingValue | null | undefined;
  /** Default `true`: a page's `/client` call gets the visitor's address as its profile's `location.ip` where the body has none. */
  FORWARD_VISITOR_IP?: SettingValue | null | undefined;
  /** Default `true`: `/client` calls of crawlers, monitors and headless browsers are answered 202 and dropped. */
  FILTER_BOTS?: SettingValue | null | undefined;
  /** With Cloudflare Bot Management: a `/client` call scored below this is a bot's (30: "likely automated"). Unset: scores are not read. */
  BOT_SCORE_MIN?: SettingValue | null | undefined;
  /** Default `true`: the script-tag files are served under `/script/` (the ready-made worker, which has them built in). */
  SERVE_SCRIPT?: SettingValue | null | undefined;
  /**
   * Default `false`. `true`: `/client` (and its preflight) also takes `Origin: null`, what a
   * sandboxed iframe sends (Shopify's custom pixels), answered `null` without credentials,
   * without the visitor cookie, rate limited per network. Never `/id` nor `/api/events`.
   */
  ALLOW_NULL_ORIGIN?: SettingValue | null | undefined;
  /** Binding: a KV namespace that remembers used signatures across isolates. */
  REPLAY_KV?: ReplayStore | null | undefined;
  /** Binding: Cloudflare's rate limiter for the unsigned browser path. */
  BROWSER_RATE_LIMITER?: RateLimiter | null | undefined;
  /**
   * Binding: a Cloudflare Queue. Signed `/api/*` calls and verified webhooks' forwards are
   * then checked as ever, enqueued and answered `202` with a delivery id; the queue's
   * consumer (`createQueueHandler`, or the ready-made worker's `queue`) sends them.
   */
  DELIVERY_QUEUE?: DeliveryQueue | null | undefined;
  /**
   * Binding: a queue for the messages Klaviyo refused (a 4xx other than 401, 403, 408 and 429).
   * Required with `DELIVERY_QUEUE`: without it a call that would be queued is answered
   * `500 missing_setting` naming it, and nothing is queued.
   */
  DELIVERY_DEAD_LETTERS?: DeliveryQueue | null | undefined;
  /**
   * Binding: a KV namespace where the consumer of the dead-letter queue keeps each letter,
   * with no expiry (a queue deletes what nobody consumed after its retention, 14 days at
   * most); the backend lists, reads, sends again and deletes them with signed calls to
   * `/api/dead-letters` (README, "Durable delivery").
   */
  DEAD_LETTER_STORE?: DeadLetterStore | null | undefined;
  /**
   * The name of the queue whose batches the queue handler keeps in `DEAD_LETTER_STORE`
   * rather than delivers (default `klaviyo-deliveries-dead`): the dead-letter queue.
   */
  DEAD_LETTER_QUEUE?: SettingValue | null | undefined;
  /**
   * Binding: the Durable Object namespace of class `ReplayGuard`: each signature accepted
   * once across all isolates and locations (256 objects, by the signature's first byte).
   */
  REPLAY_GUARD?: ReplayGuardNamespace | null | undefined;
}

/** A message of a queue batch, as the consumer uses it (Cloudflare's `Message` fits). */
export interface DeliveryMessage {
  readonly body: unknown;
  /** Queues' id and time of the message: a kept dead letter's key. */
  readonly id?: string;
  readonly timestamp?: Date;
  readonly attempts: number;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
}

/** A queue batch (Cloudflare's `MessageBatch` fits). */
export interface DeliveryBatch {
  readonly queue: string;
  readonly messages: readonly DeliveryMessage[];
}

/**
 * A queue handler: `(batch, env, ctx) => Promise<void>`. Settles every message: `ack()`
 * once Klaviyo (or the forward's receiver) took it or refused it for good (then it is
 * logged, without personal data, and sent to `DELIVERY_DEAD_LETTERS`; without that
 * binding it is retried, or only its refused part is queued again),
 * `retry({ delaySeconds })` otherwise, after `Retry-After` or a backoff with jitter.
 * A batch of `DEAD_LETTER_QUEUE` is kept in `DEAD_LETTER_STORE` instead (each message
 * acknowledged once the store has it, else retried after a minute, doubling to 12 hours),
 * and so is a letter that reaches this handler from another queue. A body that is no
 * text, UTF-8 bytes or plain JSON is retried hourly (then Queues moves it to the
 * dead-letter queue, where bytes are kept as hex).
 */
export type DeliveryHandler = (
  batch: DeliveryBatch,
  env?: object | null,
  ctx?: ExecutionContextLike | null,
) => Promise<void>;

/** What the handler uses of the third fetch-handler argument (workerd's `ExecutionContext`). */
export interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}

/** What the host knows of a request that the request itself does not say. */
export interface RequestOptions {
  /**
   * The caller's IP address as the host sees it (Node: `req.socket.remoteAddress`; Deno:
   * `info.remoteAddr.hostname`; Bun: `server.requestIP(req)?.address`). It keys the rate
   * limit of the unsigned browser path (IPv6 by its /64). On Cloudflare leave it out:
   * the worker reads `cf-connecting-ip`, which Cloudflare's edge sets. Without either,
   * all pages of one origin share one bucket.
   */
  clientAddress?: string | undefined;
}

/**
 * A fetch handler: `(request, env, ctx, options) => Promise<Response>`. Never rejects for
 * a request it cannot serve: those get a JSON:API error response.
 */
export type EdgeHandler = (
  request: Request,
  env?: object | null,
  ctx?: ExecutionContextLike | null,
  options?: RequestOptions,
) => Promise<Response>;

/**
 * Makes a handler. Each request runs with `settings` merged over the request's `env`:
 * **settings win** over env keys of the same name; a setting whose value is `undefined`,
 * `null` or a blank string is skipped, so `createHandler({ KLAVIYO_PRIVATE_KEY: process.env.X })`
 * falls back to env when `X` is unset or empty, and `DELIVERY_QUEUE: maybeQueue ?? null`
 * leaves env's queue on. `settings` are copied when the handler is made.
 *
 * The merge is made once per `env` object and then reused (a WeakMap), so the worker
 * reads and checks its settings once per env: workerd passes the same `env` to every
 * request of an isolate. Where the runtime passes no env (plain Node), `settings` alone
 * are used. Throws a TypeError if `settings` is not an object.
 */
export declare function createHandler(settings?: EdgeSettings): EdgeHandler;

/**
 * Makes the consumer of `DELIVERY_QUEUE`, with the same settings as `createHandler`
 * (the private key, `KLAVIYO_API_BASE`, `EDGE_SIGNING_SECRET` and `WEBHOOK_FORWARD_URL`
 * for forwards). Its `env` needs `DELIVERY_QUEUE` as a producer too (a 429's messages
 * go back on it; without it each 429 spends a retry) and `DELIVERY_DEAD_LETTERS`:
 *
 * ```ts
 * import { createHandler, createQueueHandler, ReplayGuard } from "klaviyo-wasm/edge";
 * export { ReplayGuard };
 * export default { fetch: createHandler(settings), queue: createQueueHandler(settings) };
 * ```
 */
export declare function createQueueHandler(settings?: EdgeSettings): DeliveryHandler;

/**
 * The Durable Object class to bind as `REPLAY_GUARD` (workerd only): re-export it from
 * your worker's main module and declare it in wrangler's `durable_objects` with a
 * migration (see `js/edge/wrangler.toml`).
 */
export declare class ReplayGuard {
  constructor(state: unknown, env: unknown);
  fetch(request: Request): Promise<Response>;
  alarm(): Promise<void>;
}

/**
 * Loads the wasm now instead of on the first request (Node, Deno, Bun); rejects if the
 * file cannot be read. In workerd it is loaded at import and this resolves at once.
 */
export declare function ready(): Promise<void>;
