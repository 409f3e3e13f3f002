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
  method?: string;
  /** The signing time, in milliseconds since the epoch or as a Date. Default `Date.now()`. */
  now?: number | Date;
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
  options?: { now?: number | Date },
): Promise<boolean>;

/**
 * POSTs `body` to `url`, signed with `secret` for the worker's route the URL ends in
 * (`.../api/orders` -> `/api/orders`; `init.route` names it otherwise), with
 * `content-type: application/vnd.api+json` unless `init.headers` sets another. The method is
 * always POST.
 */
export declare function signedFetch(
  url: string | URL,
  body: SignableBody,
  secret: string,
  init?: RequestInit & { route?: string },
): Promise<Response>;
