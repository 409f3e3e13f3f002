/**
 * klaviyo-wasm/script: the types of the script-tag install's command queue,
 * `window.klaviyoWasm` (docs/script-tag.md), for a theme or a page written in TypeScript:
 * `import type {} from "klaviyo-wasm/script";` once in the project makes `klaviyoWasm`
 * (and `window.klaviyoWasm`) known. Nothing of it runs: the script comes by its tag.
 */
import type {
  BackInStockOptions, CartItem, Checkout, Collection, ConsentState, EventOptions, FlushResult,
  GuideCartItem, Klaviyo, KlaviyoOptions, PageVisit, Product, Profile, Search, SubscribeOptions,
} from "../dist/web/index.js";

/** A JSON object. Klaviyo's own shapes are taken too (`$email`, `$value`, ...: see
 * docs/script-tag.md, "Klaviyo's command shapes"). */
export type KlaviyoWasmProperties = { [key: string]: any };

/** One command: its name, then what the npm package's method of that name takes. */
export type KlaviyoWasmCommand =
  /** `Klaviyo.create(options)`; `companyId` may come from the tag's `data-company-id`. */
  | [command: "init", options?: Partial<KlaviyoOptions>]
  | [command: "identify", profile: Profile | KlaviyoWasmProperties]
  /** Klaviyo's storefront metrics (`Viewed Product`, `Added to Cart`, ...) become their calls. */
  | [command: "track", metric: string, properties?: KlaviyoWasmProperties, options?: EventOptions]
  | [command: "viewedProduct", product: Product, options?: EventOptions]
  | [command: "addedToCart", item: CartItem | GuideCartItem, options?: EventOptions]
  | [command: "startedCheckout", checkout: Checkout, options?: EventOptions]
  | [command: "viewedCollection", collection: Collection, options?: EventOptions]
  | [command: "submittedSearch", search: Search, options?: EventOptions]
  | [command: "activeOnSite", page?: PageVisit, options?: EventOptions]
  | [command: "subscribe", options: SubscribeOptions]
  | [command: "backInStock", options: BackInStockOptions]
  | [command: "reset"]
  | [command: "flush"]
  /** `setConsent(state)`. */
  | [command: "consent", state: ConsentState]
  /** `setCurrency(code)`. */
  | [command: "currency", code: string | null]
  /** Klaviyo's: `init` with this company id once the page's HTML is parsed. */
  | [command: "account", companyId: string]
  /** Klaviyo's: a Viewed Product in its item shape. */
  | [command: "trackViewedItem", item: KlaviyoWasmProperties];

/** `window.klaviyoWasm` once the script has run. */
export interface KlaviyoWasmQueue {
  /** Runs the commands in order and returns what the last one returned: an event's
   * `unique_id`, the promise of `identify`, `subscribe`, `backInStock` or `flush`
   * (`FlushResult`), or `undefined` for one that waits for `init`. Never throws. */
  push(...commands: KlaviyoWasmCommand[]): string | Promise<void> | Promise<FlushResult> | undefined;
  readonly loaded: true;
  /** The tracker, `null` until `init`. */
  readonly tracker: Klaviyo | null;
}

declare global {
  /** The command queue: an array (the snippet's, or `window.klaviyoWasm || []`) until
   * the script has run, whose `push` returns its length; then a `KlaviyoWasmQueue`.
   * Declared as always there: code that may run before the snippet makes it first
   * (`window.klaviyoWasm = window.klaviyoWasm || []`). */
  var klaviyoWasm: KlaviyoWasmQueue | KlaviyoWasmCommand[];
}
