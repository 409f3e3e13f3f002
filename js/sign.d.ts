/**
 * klaviyo-wasm/sign: signs requests from the shop's backend for the edge worker
 * (`x-klaviyo-edge-signature`), and checks the webhooks the worker forwards. WebCrypto
 * only: Node >= 20, Deno, Bun, workers. Keep it, and the secret, on the server.
 */

/** The request header the edge worker reads the signature from. */
export declare const SIGNATURE_HEADER: "x-klaviyo-edge-signature";

/** A request body: a string is signed (and sent) as UTF-8; bytes are signed as they are. */
export type SignableBody = string | Uint8Array | ArrayBuffer;

export interface SignOptions {
  /** The worker's route below its ROUTE_PREFIX, e.g. `/api/orders` (no query). */
  route: string;
  /** The HTTP method, upper-case. Default `"POST"`. */
  method?: string | undefined;
  /** The signing time, in milliseconds since the epoch or as a Date. Default `Date.now()`. */
  now?: number | Date | undefined;
}

/**
 * `t=<unix seconds>,v2=<lower-case hex HMAC-SHA256(secret, "<t>\n<METHOD>\n<route>\n<body bytes>")>`,
 * the value of `x-klaviyo-edge-signature` for one call on one route. The worker accepts it
 * once, for 5 minutes either side of `t`, on that method and route only.
 */
export declare function sign(body: SignableBody, secret: string, options: SignOptions): Promise<string>;

/**
 * Whether `header` (the `x-klaviyo-edge-signature` of a webhook the worker forwarded)
 * signs the exact `body` received, with the key the worker derives from `secret` (its
 * EDGE_SIGNING_SECRET) for forwards, within 5 minutes of `now`.
 */
export declare function verifyForward(
  body: SignableBody,
  header: string | null | undefined,
  secret: string,
  options?: { now?: number | Date | undefined },
): Promise<boolean>;

/** What `signedFetch` takes besides fetch's own `RequestInit` (none of it goes to fetch). */
export interface SignedFetchOptions {
  /** The worker's route to sign for, when the URL does not end in it (e.g. `/api/orders`). */
  route?: string | undefined;
  /**
   * How many times to try again after the first attempt: default 3 (at most 4 attempts).
   * `0` sends once. An attempt is retried when fetch rejects (a network error, or
   * `attemptTimeoutMs` passed) and on 408, 429 and 5xx; never on another status.
   */
  retries?: number | undefined;
  /**
   * The first wait before a retry, in ms (default 500), doubling with each retry up to
   * `maxRetryDelayMs`; each wait is half that plus a random part of up to the other half.
   */
  retryDelayMs?: number | undefined;
  /**
   * The longest wait between attempts, in ms (default 30000). A `Retry-After` (seconds or
   * an HTTP date) is waited at least; one asking for longer than this ends the retries,
   * and `signedFetch` resolves with that answer (its `Retry-After` intact).
   */
  maxRetryDelayMs?: number | undefined;
  /**
   * A limit for each attempt, in ms, until the answer's head arrives; none by default. An
   * attempt over it is aborted with a `TimeoutError` and retried like a network error.
   * For a limit on the whole call, waits included, pass `signal: AbortSignal.timeout(ms)`.
   */
  attemptTimeoutMs?: number | undefined;
}

/**
 * POSTs `body` to `url`, signed with `secret` for the worker's route the URL ends in
 * (`.../api/orders` -> `/api/orders`; `init.route` names it otherwise), with
 * `content-type: application/vnd.api+json` unless `init.headers` sets another. The method is
 * always POST and the body is `body` (`init` takes neither); the other `RequestInit` fields
 * go to fetch.
 *
 * Retries as `init.retries` says. Each attempt is signed anew, with a later `t` than the one
 * before (the worker accepts a signature only once), over the same bytes: the body is
 * copied when `signedFetch` is called, so it can be sent again. (A `ReadableStream` could
 * not be: it is refused, as by `sign`, since its bytes must be signed before they are sent.
 * Read it into bytes first.) `init.signal` cancels the attempt in flight and any wait, and
 * `signedFetch` rejects with its reason.
 *
 * Resolves to the last attempt's Response, whatever its status (a final 503 or a 400 too);
 * rejects with the last attempt's error if fetch rejected. A retry sends the call again
 * after one whose answer was lost: give events a `unique_id` (orders have one) so that
 * Klaviyo keeps one.
 */
export declare function signedFetch(
  url: string | URL,
  body: SignableBody,
  secret: string,
  init?: Omit<RequestInit, "method" | "body"> & SignedFetchOptions,
): Promise<Response>;
