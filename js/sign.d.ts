/**
 * klaviyo-wasm/sign: signs requests from the shop's backend for the edge worker
 * (`x-klaviyo-edge-signature`). WebCrypto only: Node >= 20, Deno, Bun, workers.
 * Keep it, and the secret, on the server.
 */

/** The request header the edge worker reads the signature from. */
export declare const SIGNATURE_HEADER: "x-klaviyo-edge-signature";

/** A request body: a string is signed (and sent) as UTF-8; bytes are signed as they are. */
export type SignableBody = string | Uint8Array | ArrayBuffer;

export interface SignOptions {
  /** The signing time, in milliseconds since the epoch or as a Date. Default `Date.now()`. */
  now?: number | Date;
}

/**
 * `t=<unix seconds>,v1=<lower-case hex HMAC-SHA256(secret, "<t>.<body bytes>")>`, the value
 * of `x-klaviyo-edge-signature`. The worker accepts it for 5 minutes either side of `t`.
 */
export declare function sign(body: SignableBody, secret: string, options?: SignOptions): Promise<string>;

/**
 * POSTs `body` to `url`, signed with `secret`, with `content-type: application/vnd.api+json`
 * unless `init.headers` sets another. The method is always POST.
 */
export declare function signedFetch(
  url: string | URL,
  body: SignableBody,
  secret: string,
  init?: RequestInit,
): Promise<Response>;
