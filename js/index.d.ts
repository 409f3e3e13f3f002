/** Klaviyo tracking for storefronts: a tiny Rust/WebAssembly client with a durable queue. */

/**
 * The visitor's answer to tracking, as your consent manager (CMP) gives it:
 * - `granted`: calls are stored and sent as documented.
 * - `pending`: calls are validated (bad input throws as ever) and held in memory only.
 *   Nothing is written to localStorage (not even the anonymous id) and nothing is sent.
 *   Granting later stores and sends them with their own `unique_id` and time; denying
 *   drops them. A page closed or reloaded while pending loses them.
 * - `denied`: everything stored under `klaviyo:<companyId>:` is erased, and from then on
 *   calls are validated, then dropped without throwing (`onError` hears of it once, kind
 *   `consent`). Other open tabs of the shop follow a denial at once.
 *
 * Nothing remembers the answer across page loads: pass it at every load.
 */
export type ConsentState = "pending" | "granted" | "denied";

export interface KlaviyoOptions {
  /** Your 6-character Klaviyo public API key (site id). */
  companyId: string;
  /** Where `/client/*` requests go: Klaviyo, or your first-party proxy. Default `https://a.klaviyo.com`. */
  apiBase?: string | undefined;
  /** Klaviyo API revision header. Default `2026-07-15`. */
  revision?: string | undefined;
  /** Most calls kept in localStorage (default 1000). Past it the oldest leave storage
   * (`onError` kind `evicted`); this page still holds and sends them. */
  maxQueueEvents?: number | undefined;
  /** Most bytes kept in localStorage (default 1 MB). */
  maxQueueBytes?: number | undefined;
  /** Most bytes of calls this page holds, stored or not (default 16 MB); past it the
   * oldest are dropped (`onError` kind `dropped`). */
  maxMemoryBytes?: number | undefined;
  /** Wait this long (ms) for more calls to share one request. Default 0: a task's calls
   * go at the end of the task. */
  flushDelayMs?: number | undefined;
  /** Log queue decisions to the console (never personal data). */
  debug?: boolean | undefined;
  /**
   * The visitor's consent at page load, from your consent manager (default `"granted"`,
   * which is the behaviour without this option). Pass it at every load: the library
   * keeps no record of it. Anything else makes `create` throw (`init` reject).
   * Change it later with `setConsent`.
   */
  consent?: ConsentState | undefined;
  /**
   * Where to load the `.wasm` from, if not next to this module. The download of the one
   * next to it starts when this module is evaluated; a tracker created in a later task
   * with another `wasmUrl` aborts it (call `preload(wasmUrl)` early instead). With
   * `klaviyo-wasm/inline` the `.wasm` is inside the module, compiled at the end of the
   * task that evaluates it; a `wasmUrl` is fetched all the same.
   */
  wasmUrl?: string | URL | undefined;
  /**
   * `"auto"` (default): an `Active on Site` on each page view and each single-page route
   * change (`pushState`, `replaceState` to another path, `popstate`), never two in a row
   * for one URL, and none on a page where Klaviyo's onsite script (`klaviyo.js`) runs,
   * since it sends its own. `"manual"`: only `activeOnSite()` calls.
   */
  activeOnSite?: "auto" | "manual" | undefined;
  /**
   * Read Klaviyo's onsite cookies (default `true`): the visitor `klaviyo.js` knows
   * (`__kla_id`: its `$exchange_id` as `_kx`, and its email or phone while ours name
   * nobody) and its opt-out (`__kla_off=true` acts like consent `"denied"`). They are
   * never written; where the page has `window.klaviyo`, `identify`'s email or phone is
   * handed to `klaviyo.identify` (with consent), which names the browser in its own.
   */
  klaviyoCookie?: boolean | undefined;
  /**
   * The currency the shop's prices are in on this page (ISO 4217, like `EUR`): an event
   * with a value (its `value` option, a product's `Price`, a checkout's `value` or
   * `$value`, ...) and no `valueCurrency` of its own is sent with it as
   * `value_currency`; one without a value gets none. Without it, a value is taken to be
   * in the Klaviyo account's currency. A code that is not three letters is reported
   * (`onError`, kind `invalid`) and the tracker runs without one; blank is none. Change
   * it with `setCurrency` when the shopper switches currency.
   */
  currency?: string | null | undefined;
  /**
   * Keep the visitor in a first-party cookie of the shop's edge worker (`<apiBase>/id`),
   * which outlives the script storage Safari deletes after 7 days without a visit.
   * Default `true` when `apiBase` is not Klaviyo's. Once consent is granted the ids are
   * written there; a start with empty storage asks the worker for them; a denial clears
   * the cookie. No call waits on it.
   */
  firstPartyId?: boolean | undefined;
  /** Hears about failures that never throw into the page (network, 4xx, evictions). */
  onError?: ((error: KlaviyoError) => void) | null | undefined;
}

/** Klaviyo's JSON:API error body: what it answers a request it refuses. */
export interface KlaviyoErrorBody {
  errors: Array<{ id?: string; code: string; title: string; detail: string; source?: { pointer?: string; parameter?: string } }>;
}

/** What `onError` receives. */
export interface KlaviyoError extends Error {
  /**
   * - `rejected`: Klaviyo refused a request (4xx); it left the queue.
   * - `retry`: sending failed; it stays queued and is retried.
   * - `evicted`: the stored queue is full; the oldest calls left storage (this page
   *   still sends them).
   * - `dropped`: this page's memory bound was reached; the oldest calls were dropped.
   * - `gave_up`: too many attempts or too old; dropped.
   * - `storage`: localStorage refused a write; calls are kept in memory for this page.
   * - `invalid`: a call made before the tracker was ready broke a rule (the message
   *   names the field), `Klaviyo.create` got bad options, or a call came after
   *   `close()` ("tracker closed: call not kept").
   * - `consent`: consent is denied (or Klaviyo's `__kla_off=true` cookie is set), so
   *   calls are dropped (nothing is stored or sent). Reported once per denial, at the
   *   first calls dropped; `count` is how many were dropped then (calls held or queued
   *   when consent was withdrawn, or 1).
   * - `load`: the wasm could not be fetched or compiled (a Content-Security-Policy
   *   without `'wasm-unsafe-eval'` in `script-src`, a 404, offline). The message names
   *   the cause; `ready` rejects with the same error, and so do the promises of
   *   `identify`, `subscribe`, `backInStock` and `flush` (made before or after it). The
   *   page's calls stay stored, and a later page of the shop sends them, once.
   */
  kind: "rejected" | "retry" | "evicted" | "dropped" | "gave_up" | "storage" | "invalid" | "consent" | "load";
  /** HTTP status, or 0 for a network error or a local decision. */
  status: number;
  /** How many queued requests it concerns. */
  count: number;
  /**
   * The body of the answer that refused the request: parsed when it is JSON, else its
   * text. Klaviyo answers with a `KlaviyoErrorBody`, but a server on the way (your
   * first-party proxy, a gateway's error page) may answer any JSON, so check the shape
   * before reading `errors`. Emails and phone numbers in its texts read `[redacted]`.
   * A local decision (`status` 0) has none, but for a call kept from a closed page's
   * loading window that the core refused: the rule's message, as text.
   */
  detail?: unknown;
}

export interface Location {
  address1?: string | null | undefined;
  address2?: string | null | undefined;
  city?: string | null | undefined;
  country?: string | null | undefined;
  region?: string | null | undefined;
  zip?: string | null | undefined;
  timezone?: string | null | undefined;
  ip?: string | null | undefined;
  latitude?: number | string | null | undefined;
  longitude?: number | string | null | undefined;
}

export interface Profile {
  email?: string | null | undefined;
  /** E.164, like `+15005550006`. */
  phone_number?: string | null | undefined;
  external_id?: string | null | undefined;
  first_name?: string | null | undefined;
  last_name?: string | null | undefined;
  organization?: string | null | undefined;
  title?: string | null | undefined;
  image?: string | null | undefined;
  locale?: string | null | undefined;
  location?: Location | null | undefined;
  /** Custom profile properties. */
  properties?: { [key: string]: any } | null | undefined;
}

export interface EventOptions {
  /** Monetary value of the event. */
  value?: number | null | undefined;
  /** ISO 4217 code, like `USD`. */
  valueCurrency?: string | null | undefined;
  /** Klaviyo de-duplicates on this; by default the properties' `$event_id` (Klaviyo's
   * name: a string but `""`, or a number as its text; it then leaves them), else a
   * random, unique id. */
  uniqueId?: string | null | undefined;
  /** When it happened (default now): a Date, epoch ms or an ISO 8601 string with offset. */
  time?: Date | number | string | null | undefined;
}

export interface Product {
  ProductID: string | number;
  ProductName: string;
  SKU?: string | null | undefined;
  Price?: number | null | undefined;
  URL?: string | null | undefined;
  ImageURL?: string | null | undefined;
  Categories?: readonly string[] | null | undefined;
  Brand?: string | null | undefined;
  CompareAtPrice?: number | null | undefined;
  [key: string]: any;
}

/** A cart's or checkout's line, as Klaviyo's custom-integration guide writes it (its
 * abandoned-cart and abandoned-checkout emails show these). */
export interface LineItem {
  ProductID?: string | number | null | undefined;
  SKU?: string | null | undefined;
  ProductName?: string | null | undefined;
  Quantity?: number | null | undefined;
  ItemPrice?: number | null | undefined;
  RowTotal?: number | null | undefined;
  ProductURL?: string | null | undefined;
  ImageURL?: string | null | undefined;
  ProductCategories?: readonly string[] | null | undefined;
  [key: string]: any;
}

/** Our shape of Added to Cart. The item's members (`ProductID` ... `CompareAtPrice`)
 * reach Klaviyo under the guide's names (`AddedItemProductID` ...), which its
 * abandoned-cart templates read; the cart's keep theirs. */
export interface CartItem extends Product {
  Price: number;
  /** With it the item is read in the guide's names (`GuideCartItem`): use one shape. */
  AddedItemProductID?: null | undefined;
  /** Default 1. */
  Quantity?: number | null | undefined;
  /** The event value when given; otherwise Price × Quantity. */
  CartTotal?: number | null | undefined;
  ItemNames?: readonly string[] | null | undefined;
  /** The whole cart, the added item among its lines. */
  Items?: readonly LineItem[] | null | undefined;
  CheckoutURL?: string | null | undefined;
}

/** Added to Cart as Klaviyo's custom-integration guide names it (sent as given, so
 * Klaviyo's flow templates find `AddedItemProductName` and the rest; but a `$event_id`:
 * see `EventOptions.uniqueId`). */
export interface GuideCartItem {
  AddedItemProductID: string | number;
  AddedItemProductName: string;
  AddedItemPrice: number;
  /** Default 1. */
  AddedItemQuantity?: number | null | undefined;
  /** The cart total: the event value when given; otherwise price × quantity. */
  $value?: number | null | undefined;
  ItemNames?: readonly string[] | null | undefined;
  Items?: readonly LineItem[] | null | undefined;
  CheckoutURL?: string | null | undefined;
  [key: string]: any;
}

export interface Collection {
  CollectionID: string | number;
  CollectionHandle?: string | null | undefined;
  CollectionName?: string | null | undefined;
  URL?: string | null | undefined;
  [key: string]: any;
}

export interface Search {
  SearchTerm: string;
  ResultCount?: number | null | undefined;
  URL?: string | null | undefined;
  [key: string]: any;
}

export interface PageVisit {
  page?: string | null | undefined;
  URL?: string | null | undefined;
  [key: string]: any;
}

export interface Checkout {
  CheckoutURL?: string | null | undefined;
  ItemNames?: readonly string[] | null | undefined;
  Items?: readonly LineItem[] | null | undefined;
  Categories?: readonly string[] | null | undefined;
  /** Becomes the event's value. */
  value?: number | null | undefined;
  /** Klaviyo's guide's name for it: the event's value where there is no `value`. Text
   * (a money string) stays a property; `NaN`, `Infinity` are refused, as in `value`, and
   * so is their text (`"NaN"`, `"Infinity"`, `"-Infinity"`, `"Invalid Date"`), which the
   * package cannot tell from them. */
  $value?: number | null | undefined;
  [key: string]: any;
}

export type Channel = "email" | "sms";

export interface SubscribeOptions {
  listId: string;
  /** Defaults to the identified email. */
  email?: string | null | undefined;
  /** Defaults to the identified phone number. */
  phone_number?: string | null | undefined;
  channels: readonly Channel[];
  customSource?: string | null | undefined;
}

export interface BackInStockOptions {
  /** Catalog variant id, like `$shopify:::$default:::123`. */
  variantId: string;
  email?: string | null | undefined;
  phone_number?: string | null | undefined;
  channels: readonly Channel[];
}

/** A JSON object: any object type (an interface, a class instance, a record, a union
 * of them), not an array, a `Map`, a `Set` or a `Date` (which the runtime refuses, or
 * sends as `{}`): they are iterable or turn into a primitive. */
export type JsonObject = { [key: string]: any } & { [Symbol.iterator]?: never; [Symbol.toPrimitive]?: never };

export interface FlushResult {
  /** Requests (events) Klaviyo accepted during this flush. */
  sent: number;
  /** Still queued. */
  pending: number;
  /** Attempts that failed during this flush (retryable ones stay queued). */
  failed: number;
}

export class Klaviyo {
  private constructor();
  /**
   * Starts a tracker and returns it at once, before the wasm has loaded (start the
   * download early with `<link rel="preload" href=".../klaviyo_wasm_bg.wasm" as="fetch"
   * crossorigin>`). Its calls are accepted immediately, given their `unique_id` and
   * time, and handed in order to the core once it is ready; one the core then refuses
   * reaches `onError` with kind `invalid` (it can no longer throw at its caller).
   */
  static create(options: KlaviyoOptions): Klaviyo;
  /** `create` and wait until ready. Rejects with an Error naming a bad option (but for
   * `currency`, which is reported through `onError`): await or catch it (the one promise
   * here whose rejection, left unhandled, reaches the page). */
  static init(options: KlaviyoOptions): Promise<Klaviyo>;
  /** Resolves to this tracker once its core runs; rejects if it refused the options. In a
   * page prerendered ahead of the visitor, the core runs once the page is shown. */
  readonly ready: Promise<Klaviyo>;
  /** Adds identifiers and attributes to this visitor's profile and to later events
   * (its email or phone also to `klaviyo.js`'s, where the page has it: see
   * `klaviyoCookie`). Resolves once queued; rejects on bad input, or with the `load` error if the wasm
   * did not load (the call is kept for a later page). Like every promise here, a
   * rejection left unhandled never reaches the page as `unhandledrejection` (but
   * `init`'s, which is yours to await). */
  identify(profile: Profile): Promise<void>;
  /** Queues an event; returns its `unique_id`. Once ready, throws an Error naming the
   * field on bad input (before, see `create`): a number or a `time` JSON cannot hold
   * (`NaN`, `Infinity`, an invalid `Date`) in `time` or a field the core reads as a
   * number (not in `track`'s own properties, which go as JSON makes them). After
   * `close()` nothing is kept: `onError` hears it (kind `invalid`) and this returns `""`.
   * On a tracker whose options were refused nothing is kept either (`ready` rejected and
   * `onError` heard why). `properties` is a JSON object: any object type, not an array.
   * A number in its `$value` (Klaviyo's onsite script's name) is the event's value where
   * `options.value` is not given, and then leaves the properties. */
  track(metric: string, properties?: JsonObject | null, options?: EventOptions | null): string;
  /** `Viewed Product`: its value is `Price`; its properties are sent as given (but a
   * `$event_id`: see `EventOptions.uniqueId`). Returns the `unique_id`; throws as `track`
   * does (`viewedProduct: ProductName ...`). */
  viewedProduct(product: Product, options?: EventOptions | null): string;
  /** `Added to Cart`, in our names or the guide's (chosen by `AddedItemProductID`); its
   * value is `CartTotal` (`$value`) when given, else price × quantity in exact decimals.
   * Returns the `unique_id`; throws as `track` does. */
  addedToCart(item: CartItem | GuideCartItem, options?: EventOptions | null): string;
  /** `Started Checkout`: `value` becomes the event's value. Returns the `unique_id`;
   * throws as `track` does. */
  startedCheckout(checkout: Checkout, options?: EventOptions | null): string;
  /** `Viewed Collection`: a product list (`CollectionID` required). */
  viewedCollection(collection: Collection, options?: EventOptions | null): string;
  /** `Submitted Search` (`SearchTerm` required). */
  submittedSearch(search: Search, options?: EventOptions | null): string;
  /** `Active on Site`; with `activeOnSite: "auto"` the tracker sends it itself. */
  activeOnSite(page?: PageVisit | null, options?: EventOptions | null): string;
  /** Whether the visitor is known: an email, a phone number, an external id or a `_kx`
   * (from our calls, the page URL, or Klaviyo's onsite script); false until ready, and
   * after `close()`. */
  isIdentified(): boolean;
  /** Email and/or SMS subscription. For a visitor our `identify` has not named (nobody,
   * or only an email click's `_kx` or Klaviyo's cookie: the call then goes with its own
   * email and phone alone), its email and phone number name them from then on, as Klaviyo's signup form identifies the browser;
   * provisionally: a sign-in (`identify` with an identifier) or a later subscription
   * replaces that name, never joins it. */
  subscribe(options: SubscribeOptions): Promise<void>;
  /** A back-in-stock alert; names a visitor nothing named yet, as `subscribe` does. */
  backInStock(options: BackInStockOptions): Promise<void>;
  /**
   * Sends what is due now. Never rejects on network errors (they go to `onError`).
   * Tabs of one shop share a queue and one of them sends: in the other tabs `flush()`
   * resolves at once, with `pending` counting what the sending tab will deliver.
   * After `close()` it resolves at once with zeros, and one still waiting when
   * `close()` comes resolves then, with what is still pending; if the wasm did not
   * load, or the options were refused, it rejects with that error (as `identify`,
   * `subscribe` and `backInStock` do).
   */
  flush(): Promise<FlushResult>;
  /** Requests queued and not yet accepted. */
  pending(): number;
  /** Starts a new anonymous profile (on logout). */
  reset(): void;
  /** Stops sending, timers and listeners; lets another tab send. The queue stays on disk.
   * Later calls are not kept: an event reaches `onError` (kind `invalid`, "tracker
   * closed") and returns `""`, `identify`, `subscribe` and `backInStock` reject, `reset()`
   * does nothing. `setConsent("denied")` still erases what is stored, and clears the
   * worker's visitor cookie. */
  close(): void;
  /** This visitor's anonymous id (null until ready, while consent is denied, and after
   * `close()`). */
  readonly anonymousId: string | null;
  /**
   * Tells the tracker the visitor's new answer (call it from your consent manager's
   * change event); works before `ready` too, with the same effect. `"granted"` stores
   * and sends what was held while pending. `"denied"` erases what is stored under
   * `klaviyo:<companyId>:` before this returns (before `ready` as well), drops what is
   * queued, and tells the shop's other open tabs, which stop too (a tab still loading its
   * wasm included). A call made while denied, or queued before the denial, is never sent,
   * even if consent is granted again; a grant after a denial starts a new anonymous
   * profile. Throws an Error on anything but the three states.
   */
  setConsent(state: ConsentState): void;
  /** The consent state in force. */
  readonly consent: ConsentState;
  /**
   * The currency of the calls made from now on (the shopper switched currency), as the
   * `currency` option; `null`, `undefined` or blank: none. Calls made before keep theirs.
   * Works before `ready` too. Throws an Error on a code that is not three letters.
   */
  setCurrency(code: string | null | undefined): void;
}

/**
 * Starts downloading and compiling the `.wasm` now, before any tracker exists (the one
 * next to this module is started this way when the module is evaluated; with
 * `klaviyo-wasm/inline`, the copy inside it is compiled then). Does nothing outside a
 * page, or once a load has started.
 */
export function preload(wasmUrl?: string | URL): void;

export default Klaviyo;
