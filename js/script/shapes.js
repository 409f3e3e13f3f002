// Klaviyo's own command shapes -> this package's calls, so a shop's theme code written
// for Klaviyo's onsite script (`_learnq.push([...])`, `klaviyo.push([...])`) works when
// pushed to `klaviyoWasm` unchanged. Pure functions; the table is in docs/script-tag.md
// and the tests in tests/script/shapes.test.mjs.

const has = Object.hasOwn;
/** Given as the core takes it: not `null`, not a blank string (a theme's empty value). */
const given = (o, k) => o[k] != null && !/^\s*$/.test(o[k]);
/** A plain object (not null, not an array). */
export const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Klaviyo's special profile properties ($-prefixed) -> our identify keys. */
const PROFILE = {
  $email: "email",
  $phone_number: "phone_number",
  $id: "external_id",
  $first_name: "first_name",
  $last_name: "last_name",
  $organization: "organization",
  $title: "title",
  $image: "image",
  $locale: "locale",
};
/** Our identify's own keys: kept as they are. */
const OURS = [...Object.values(PROFILE), "location", "properties"];
/** Klaviyo's special location properties -> our `location` object. */
const LOCATION = ["address1", "address2", "city", "region", "country", "zip",
  "timezone", "latitude", "longitude", "ip"];

/**
 * An amount as a number: numbers as they are, and money text as Shopify's `money`
 * filter writes it ("$29.99", "29,99 €", "Rs. 1,499.00", "1.234,56", "1'299.50"). The
 * last `.` or `,` is the decimal mark, unless it is the only mark, occurs once and 3
 * digits follow it, or occurs more than once: then it groups thousands ("1,299" and
 * "1.299.000" are whole). `undefined` when there is no amount.
 */
export function money(v) {
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  if (typeof v !== "string") return undefined;
  const m = /\d(?:[\d.,' \u00a0\u202f]*\d)?/.exec(v);
  if (!m) return undefined;
  const s = m[0].replace(/[' \u00a0\u202f]/g, "");
  const last = Math.max(s.lastIndexOf("."), s.lastIndexOf(","));
  let int = s, frac = "";
  if (last >= 0) {
    const mark = s[last];
    const mixed = s.includes(mark === "." ? "," : ".");
    if (s.indexOf(mark) === last && (mixed || s.length - last !== 4)) {
      int = s.slice(0, last);
      frac = s.slice(last + 1);
    }
  }
  // The rest groups thousands by one mark, three digits at a time, or the Indian way
  // ("12,34,567"); anything else ("1.2.3") is no amount.
  if (!/^\d+$|^\d{1,3}([.,])\d{3}(\1\d{3})*$|^\d{1,2}(,\d\d)*,\d{3}$/.test(int)) return undefined;
  const n = Number(int.replace(/[.,]/g, "") + (frac && "." + frac));
  return Number.isFinite(n) ? n : undefined;
}

/** A copy of `item` with keys renamed (`names[from] = to`; `to` null drops `from`). A
 * key whose new name the item already has is dropped: the item's own value wins. */
function rename(item, names) {
  const out = {};
  for (const k of Object.keys(item)) {
    const to = names[k];
    if (to === undefined) out[k] = item[k];
    else if (to && !has(item, to)) out[to] = item[k];
  }
  return out;
}

/** Amounts as numbers. An optional one that cannot be read is dropped (the event still
 * goes); a required one is left as it is, so the core names it in its error. */
function amounts(p, optional, required) {
  for (const k of optional) {
    if (has(p, k) && !Number.isFinite(p[k])) {
      const n = money(p[k]);
      if (n === undefined) delete p[k];
      else p[k] = n;
    }
  }
  for (const k of required) {
    const n = money(p[k]);
    if (typeof p[k] === "string" && n !== undefined) p[k] = n;
  }
  return p;
}

/** What `String()` makes of a number JSON cannot hold, or of an invalid Date: the core
 * refuses it in Started Checkout's `$value` (src/core/ecommerce.rs `NOT_FINITE`). */
const NOT_FINITE = ["NaN", "Infinity", "-Infinity", "Invalid Date"];

/** Klaviyo's `$value` and `$event_id` properties -> our options `value` and `uniqueId`
 * (unless the options already say so), or `$value` -> the property `valueKey`. One that
 * cannot be read stays a property. Returns `[properties, options]`. */
function specials(props, options, valueKey) {
  let opts = isObject(options) ? { ...options } : options;
  const set = (k, v) => {
    opts ??= {};
    return isObject(opts) && opts[k] == null && (opts[k] = v, true);
  };
  const v = props.$value, value = money(v);
  // A number JSON cannot hold, or an invalid Date: `null`, as Klaviyo's onsite script's
  // JSON sends it (the package refuses one where it reads the value; a theme's event
  // still goes). Its text too ("NaN": `toFixed` of no total), which the core cannot tell
  // from the adapter's.
  if (value === undefined && ((typeof v === "number" || v?.getTime) && !isFinite(v) || NOT_FINITE.includes(v))) props.$value = null;
  // The guide's Added to Cart keeps its `$value` (the core reads it as the cart total).
  if (value !== undefined && valueKey !== "$value") {
    if (!valueKey) set("value", value);
    else if (props[valueKey] == null) props[valueKey] = value; // `null` is not given
    delete props.$value;
  }
  // As the core takes it from npm's calls: a string but "", a number JSON can hold.
  const id = props.$event_id;
  // The options' own wins, and the property then stays (as in the core).
  if ((typeof id === "string" ? id : typeof id === "number" && isFinite(id)) && set("uniqueId", String(id))) {
    delete props.$event_id;
  }
  return [props, opts];
}

/**
 * Klaviyo's identify properties -> our `identify` profile. `$email`, `$first_name`...
 * become `email`, `first_name`...; `$city`, `$zip`... go into `location`; our own keys
 * stay; anything else is a custom property (as Klaviyo treats it). A value given both
 * ways keeps ours (`email` over `$email`, `properties.x` over a loose `x`).
 */
export function profile(p) {
  if (!isObject(p)) return p;
  const out = {}, location = {}, properties = {};
  for (const k of Object.keys(p)) {
    const v = p[k];
    if (OURS.includes(k)) {
      if (k === "location" && isObject(v)) Object.assign(location, v);
      else if (k === "properties" && isObject(v)) continue;
      else out[k] = v;
    } else if (has(PROFILE, k)) {
      if (p[PROFILE[k]] == null) out[PROFILE[k]] = v; // ours null: not given
    } else if (k[0] === "$" && LOCATION.includes(k.slice(1))) {
      const key = k.slice(1);
      if (!(isObject(p.location) && has(p.location, key))) location[key] = v;
    } else {
      properties[k] = v;
    }
  }
  if (isObject(p.properties)) Object.assign(properties, p.properties);
  else if (has(p, "properties")) out.properties = p.properties; // the core names it
  if (Object.keys(location).length) out.location = location;
  else if (has(p, "location")) out.location = p.location;
  if (Object.keys(properties).length) out.properties = properties;
  return out;
}

/** Shopify's `Name` also as the `ProductName` the core requires; `Name` stays, as
 * templates and segments written for Klaviyo's onsite script read it. */
function named(item) {
  const p = { ...item };
  if (!has(p, "ProductName") && has(p, "Name")) p.ProductName = p.Name;
  return p;
}

/** Klaviyo's Viewed Product item (`Name` or `ProductName`, money text prices) -> our
 * `viewedProduct` product and options. */
export function viewedProduct(item, options) {
  if (!isObject(item)) return [item, options];
  return specials(amounts(named(item), ["Price", "CompareAtPrice"], []), options);
}

/** Klaviyo's Added to Cart properties -> our `addedToCart` item and options. The
 * guide's (`AddedItemProductID`, `AddedItemPrice`, ..., `$value` the cart total) keep
 * their names, which Klaviyo's Added to Cart flow templates read: the core takes that
 * shape as it is; only money text becomes numbers. */
export function addedToCart(item, options) {
  if (!isObject(item)) return [item, options];
  if (given(item, "AddedItemProductID")) {
    const p = amounts({ ...item }, ["$value", "CompareAtPrice"], ["AddedItemPrice", "AddedItemQuantity"]);
    return specials(p, options, "$value");
  }
  // (`$value` too: the core reads it as the total where there is no CartTotal.)
  const p = amounts(named(item), ["CompareAtPrice", "CartTotal", "$value"], ["Price", "Quantity"]);
  return specials(p, options, "CartTotal");
}

/** Klaviyo's Started Checkout properties (`$value`, `$event_id`) -> our `startedCheckout`. */
export function startedCheckout(checkout, options) {
  if (!isObject(checkout)) return [checkout, options];
  return specials({ ...checkout }, options, "value");
}

/** Klaviyo's recently-viewed item (`trackViewedItem`: Title, ItemId, Categories,
 * ImageUrl, Url, Metadata {Brand, Price, CompareAtPrice, ...}) -> our product. */
export function viewedItem(item) {
  if (!isObject(item)) return item;
  const meta = isObject(item.Metadata) ? item.Metadata : {};
  const p = rename({ ...meta, ...item }, {
    Metadata: null,
    ItemId: "ProductID",
    Title: "ProductName",
    ImageUrl: "ImageURL",
    Url: "URL",
  });
  return amounts(p, ["Price", "CompareAtPrice"], []);
}

/** Our e-commerce calls, and Klaviyo's metric names for them (`["track", "Viewed Product", item]`). */
const ECOMMERCE = { viewedProduct, addedToCart, startedCheckout };
const METRICS = {
  "Viewed Product": "viewedProduct",
  "Added to Cart": "addedToCart",
  "Started Checkout": "startedCheckout",
  "Viewed Collection": "viewedCollection",
  "Submitted Search": "submittedSearch",
  "Active on Site": "activeOnSite",
};

/** Our own commands: the tracker's methods a command may name. */
export const METHODS = ["identify", "track", "viewedProduct", "addedToCart", "startedCheckout",
  "viewedCollection", "submittedSearch", "activeOnSite", "subscribe", "backInStock", "reset", "flush"];

/**
 * A command array -> `{ method, args }` for the tracker, in our own shape or Klaviyo's.
 * `viewedItem: true` marks a `trackViewedItem` (the runner drops it when the same
 * product's Viewed Product came on this page). `init`, `account` and `consent` are the
 * runner's; anything else unknown throws an Error naming it.
 */
export function translate(cmd) {
  let [name, ...args] = cmd;
  // Klaviyo's own Added to Cart without an added item (its Shopify snippet on a page with
  // no product: the cart's `total_price`, `items`, `$value`) is a plain track, as its
  // onsite script sends it; the cart call needs the item.
  const cart = args[1];
  const itemless = name === "track" && args[0] === "Added to Cart" && isObject(cart) && !given(cart, "AddedItemProductID") && !given(cart, "ProductID");
  if (name === "track" && has(METRICS, args[0]) && !itemless) {
    [name, ...args] = [METRICS[args[0]], ...args.slice(1)];
    // Klaviyo's `$value` / `$event_id` for the storefront events without a value rule.
    if (!has(ECOMMERCE, name) && isObject(args[0])) return { method: name, args: specials({ ...args[0] }, args[1]) };
  }
  if (has(ECOMMERCE, name)) return { method: name, args: ECOMMERCE[name](args[0], args[1]) };
  if (name === "identify") return { method: name, args: [profile(args[0]), ...args.slice(1)] };
  if (name === "track" && isObject(args[1])) return { method: name, args: [args[0], ...specials({ ...args[1] }, args[2])] };
  if (name === "trackViewedItem") return { method: "viewedProduct", args: [viewedItem(args[0])], viewedItem: true };
  if (METHODS.includes(name)) return { method: name, args };
  throw Error(`unknown command ${typeof name === "string" ? JSON.stringify(name.slice(0, 40)) : typeof name}`);
}
