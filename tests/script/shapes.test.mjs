// Klaviyo's own command shapes -> our calls (js/script/shapes.js), without a browser.
// The table these tests hold to is docs/script-tag.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import { money, profile, viewedProduct, addedToCart, startedCheckout, viewedItem, translate, METHODS }
  from "../../js/script/shapes.js";

test("money: numbers as they are, money text as Shopify's money filter writes it", () => {
  const cases = [
    [9.5, 9.5], [0, 0], ["12", 12], ["$29.99", 29.99], ["$0.99", 0.99], ["29,99 €", 29.99],
    ["Rs. 1,499.00", 1499], ["1.234,56", 1234.56], ["1 234,56 kr", 1234.56],
    ["CHF 1'299.50", 1299.5], ["1,234,567", 1234567], ["1.234.567,89", 1234567.89],
    ["10.000,00", 10000], ["1,234.567", 1234.567], ["0,5", 0.5], ["Rs. 12,34,567.50", 1234567.5],
    // One mark followed by three digits groups thousands (documented ambiguity).
    ["1,299", 1299], ["€ 1.299", 1299],
  ];
  for (const [v, n] of cases) assert.equal(money(v), n, JSON.stringify(v));
  for (const v of [NaN, Infinity, "", "abc", "1.2.3", "1,2,345", null, undefined, {}, [1], true]) {
    assert.equal(money(v), undefined, String(v));
  }
});

test("identify: $-properties become our keys, location keys go into location, the rest are custom properties", () => {
  const input = {
    $email: "ann@example.com", $phone_number: "+15005550006", $id: "cust-1",
    $first_name: "Ann", $last_name: "Lee", $organization: "Acme", $title: "CEO",
    $image: "https://img.example/a.png", $locale: "en-US",
    $address1: "1 Main St", $address2: "Apt 2", $city: "Boston", $region: "MA",
    $country: "US", $zip: "02110", $timezone: "America/New_York", $latitude: 42.36,
    $longitude: -71.06, $ip: "127.0.0.1",
    Plan: "gold", $consent: ["email"],
  };
  const before = structuredClone(input);
  assert.deepEqual(profile(input), {
    email: "ann@example.com", phone_number: "+15005550006", external_id: "cust-1",
    first_name: "Ann", last_name: "Lee", organization: "Acme", title: "CEO",
    image: "https://img.example/a.png", locale: "en-US",
    location: {
      address1: "1 Main St", address2: "Apt 2", city: "Boston", region: "MA", country: "US",
      zip: "02110", timezone: "America/New_York", latitude: 42.36, longitude: -71.06, ip: "127.0.0.1",
    },
    properties: { Plan: "gold", $consent: ["email"] },
  });
  assert.deepEqual(input, before, "the page's object is not changed");
});

test("identify: our own shape passes unchanged; a value given both ways keeps ours", () => {
  const ours = { email: "ann@example.com", first_name: "Ann", location: { city: "Boston" }, properties: { vip: true } };
  assert.deepEqual(profile(ours), ours);
  assert.deepEqual(
    profile({ email: "a@example.com", $email: "b@example.com", location: { city: "X" }, $city: "Y", $zip: "1", properties: { Plan: "p" }, Plan: "loose" }),
    { email: "a@example.com", location: { city: "X", zip: "1" }, properties: { Plan: "p" } },
  );
  // Not an object, or bad members: left for the core to name.
  assert.equal(profile("x"), "x");
  assert.deepEqual(profile({ email: "a@example.com", properties: "p" }), { email: "a@example.com", properties: "p" });
  assert.deepEqual(profile({ email: "a@example.com", location: "here" }), { email: "a@example.com", location: "here" });
});

test("Viewed Product: Klaviyo's item (Shopify's Name, money text) -> our product; $value -> value", () => {
  const item = {
    Name: "Winnie the Pooh", ProductID: 1111, Categories: ["Kids"], ImageURL: "https://img.example/p.png",
    URL: "https://shop.example/p", Brand: "Kids Books", Price: "$9.99", CompareAtPrice: "$12.00",
  };
  // Name stays (templates and segments written for Klaviyo's onsite script read it),
  // and is the ProductName too.
  assert.deepEqual(viewedProduct(item), [{
    Name: "Winnie the Pooh", ProductName: "Winnie the Pooh", ProductID: 1111, Categories: ["Kids"], ImageURL: "https://img.example/p.png",
    URL: "https://shop.example/p", Brand: "Kids Books", Price: 9.99, CompareAtPrice: 12,
  }, undefined]);
  assert.equal(item.Price, "$9.99", "the page's object is not changed");
  // An optional amount JSON cannot hold is left out, as text that is no amount is: the
  // view still goes (the core refuses a Price of NaN by name).
  assert.deepEqual(viewedProduct({ ProductName: "P", ProductID: 1, Price: NaN, CompareAtPrice: -Infinity })[0], { ProductName: "P", ProductID: 1 });
  assert.deepEqual(addedToCart({ ProductID: 1, ProductName: "P", Price: 2, CartTotal: Infinity })[0], { ProductID: 1, ProductName: "P", Price: 2 });
  // Klaviyo's documented shape is ours already; $value and $event_id become options.
  assert.deepEqual(
    viewedProduct({ ProductName: "P", ProductID: "1", SKU: "S", Price: 5, $value: 5, $event_id: "v-1" }, { valueCurrency: "USD" }),
    [{ ProductName: "P", ProductID: "1", SKU: "S", Price: 5 }, { valueCurrency: "USD", value: 5, uniqueId: "v-1" }],
  );
  // An optional price that is no amount is left out: the view is still tracked.
  assert.deepEqual(viewedProduct({ ProductName: "P", ProductID: "1", Price: "call us" }), [{ ProductName: "P", ProductID: "1" }, undefined]);
});

test("Added to Cart: Klaviyo's AddedItem* properties keep their names (its flow templates read them); money text -> numbers", () => {
  const props = {
    $value: "$29.98", AddedItemProductName: "A Thousand Splendid Suns", AddedItemProductID: "1112",
    AddedItemSKU: "TALEOFTWO", AddedItemCategories: ["Fiction"], AddedItemImageURL: "https://img.example/2.png",
    AddedItemURL: "https://shop.example/2", AddedItemPrice: "$19.99", AddedItemQuantity: "1",
    ItemNames: ["Winnie the Pooh", "A Thousand Splendid Suns"], CheckoutURL: "https://shop.example/checkout",
    Items: [{ ProductID: "1111", ItemPrice: 9.99, Quantity: 1 }], $event_id: "cart-7",
  };
  assert.deepEqual(addedToCart(props), [{
    $value: 29.98, AddedItemProductName: "A Thousand Splendid Suns", AddedItemProductID: "1112",
    AddedItemSKU: "TALEOFTWO", AddedItemCategories: ["Fiction"], AddedItemImageURL: "https://img.example/2.png",
    AddedItemURL: "https://shop.example/2", AddedItemPrice: 19.99, AddedItemQuantity: 1,
    ItemNames: ["Winnie the Pooh", "A Thousand Splendid Suns"], CheckoutURL: "https://shop.example/checkout",
    Items: [{ ProductID: "1111", ItemPrice: 9.99, Quantity: 1 }],
  }, { uniqueId: "cart-7" }]);
  assert.equal(props.AddedItemPrice, "$19.99", "the page's object is not changed");
  // A required price that is no amount stays, so the core's error names AddedItemPrice.
  assert.equal(addedToCart({ AddedItemProductID: "1", AddedItemProductName: "P", AddedItemPrice: "free" })[0].AddedItemPrice, "free");
  // Shopify's Name in our shape stays beside the ProductName.
  assert.deepEqual(addedToCart({ Name: "P", ProductID: "1", Price: "$2" })[0], { Name: "P", ProductName: "P", ProductID: "1", Price: 2 });
  // A theme's empty AddedItemProductID beside ours (Shopify's `Name`, money text) is not
  // given: ours is read (before, the guide's shape was taken and ours refused).
  assert.deepEqual(addedToCart({ ProductID: 1, Name: "Tee", Price: "$5.00", AddedItemProductID: "" })[0],
    { ProductID: 1, Name: "Tee", ProductName: "Tee", Price: 5, AddedItemProductID: "" });
  assert.equal(addedToCart({ ProductID: 1, Name: "Tee", Price: 5, AddedItemProductID: null })[0].ProductName, "Tee");
  // Ours passes; a given CartTotal wins over $value.
  const ours = { ProductID: "1", ProductName: "P", Price: 2, Quantity: 3, CartTotal: 9 };
  assert.deepEqual(addedToCart({ ...ours, $value: 1 }), [ours, undefined]);
});

test("Started Checkout: $value -> the value property, $event_id -> uniqueId", () => {
  assert.deepEqual(
    startedCheckout({ $event_id: "cart-1-1700000000", $value: "29.98", ItemNames: ["P"], CheckoutURL: "https://shop.example/c" }),
    [{ ItemNames: ["P"], CheckoutURL: "https://shop.example/c", value: 29.98 }, { uniqueId: "cart-1-1700000000" }],
  );
  // `value: null` is not given: $value fills it (before, $value was dropped).
  assert.deepEqual(startedCheckout({ value: null, $value: "29.98" })[0], { value: 29.98 });
  // A number JSON cannot hold is sent as Klaviyo's onsite script sends it, `null`: the
  // event goes (the package refuses the adapter's "NaN" text where it reads the value).
  for (const n of [NaN, Infinity, -Infinity]) {
    assert.deepEqual(startedCheckout({ $value: n, CheckoutURL: "u" }), [{ $value: null, CheckoutURL: "u" }, undefined]);
    const guide = { AddedItemProductID: "1", AddedItemProductName: "P", AddedItemPrice: 2, $value: n };
    const { $value, ...rest } = guide; // (an optional amount of its shape: left out)
    assert.deepEqual(addedToCart(guide)[0], rest);
    assert.deepEqual(translate(["track", "Ordered", { $value: n }]).args, ["Ordered", { $value: null }, undefined]);
  }
  // The same number's text, as a theme writes it (`(cart.total / 100).toFixed(2)` with no
  // total is "NaN", `String(new Date(bad))` "Invalid Date"): the core now refuses those
  // four texts in Started Checkout's `$value` (it cannot tell them from the adapter's), so
  // the event, which Klaviyo's onsite script sends, was lost here.
  for (const text of ["NaN", "Infinity", "-Infinity", "Invalid Date"]) {
    assert.deepEqual(startedCheckout({ $value: text, CheckoutURL: "u" }), [{ $value: null, CheckoutURL: "u" }, undefined], text);
    assert.deepEqual(translate(["track", "Started Checkout", { $value: text }]).args, [{ $value: null }, undefined], text);
  }
  // Other text no amount can be read from still stays as it is (the core keeps it).
  assert.deepEqual(startedCheckout({ $value: "free" })[0], { $value: "free" });
});

test("Started Checkout's invalid Date $value is sent as null, as Klaviyo's onsite script's JSON sends it (the core now refuses its text)", () => {
  // An invalid Date in Started Checkout's $value: js/index.js encode writes it as the text
  // "Invalid Date" ($value is in NUMBERS), which src/core/ecommerce.rs now refuses (before
  // 70db2b5..HEAD the core kept it as a property and the event went). Klaviyo's onsite
  // script's JSON sends it as null, as it does NaN.
  const [sc] = startedCheckout({ $value: new Date("garbage"), CheckoutURL: "u" });
  assert.ok(sc.$value === null, `Started Checkout's invalid Date $value: sent as null, got ${Object.prototype.toString.call(sc.$value)}`);
});

test("our Added to Cart's $value that is no amount, without a CartTotal, is not left for the core to refuse", () => {
  // Our Added to Cart's $value when no CartTotal is given: the core reads it as the total
  // (added_value: optional_number(p, "$value")) and refuses anything but a number, while
  // specials leaves text that is no amount as a property. The guide's shape drops it
  // (amounts' optional "$value"); ours should too, or the event is refused.
  for (const v of ["free", "N/A", true, {}, new Date("garbage")]) {
    const [atc] = addedToCart({ ProductID: 1, ProductName: "P", Price: 2, $value: v });
    assert.ok(atc.$value == null, `our Added to Cart's $value ${String(v)}: left out or null, got ${Object.prototype.toString.call(atc.$value)} ${String(atc.$value)}`);
  }
});

test("trackViewedItem: Klaviyo's recently-viewed item -> our product", () => {
  assert.deepEqual(viewedItem({
    Title: "Winnie the Pooh", ItemId: 1111, Categories: ["Kids"], ImageUrl: "https://img.example/p.png",
    Url: "https://shop.example/p", Metadata: { Brand: "Kids Books", Price: "$9.99", CompareAtPrice: "$12.00" },
  }), {
    Brand: "Kids Books", Price: 9.99, CompareAtPrice: 12, ProductName: "Winnie the Pooh", ProductID: 1111,
    Categories: ["Kids"], ImageURL: "https://img.example/p.png", URL: "https://shop.example/p",
  });
});

test("translate: commands in both shapes -> the tracker's method and arguments", () => {
  assert.deepEqual(translate(["identify", { $email: "a@example.com" }]), { method: "identify", args: [{ email: "a@example.com" }] });
  assert.deepEqual(translate(["track", "Viewed Product", { Name: "P", ProductID: 1 }]),
    { method: "viewedProduct", args: [{ Name: "P", ProductID: 1, ProductName: "P" }, undefined] });
  // Klaviyo's Shopify Added to Cart snippet on a page with no product: the cart alone,
  // sent as a plain track (the cart call needs an added item).
  assert.deepEqual(translate(["track", "Added to Cart", { total_price: 2998, $value: 29.98, items: [{ id: 1 }] }]),
    { method: "track", args: ["Added to Cart", { total_price: 2998, items: [{ id: 1 }] }, { value: 29.98 }] });
  assert.equal(translate(["track", "Added to Cart", { AddedItemProductID: 1 }]).method, "addedToCart");
  assert.equal(translate(["track", "Added to Cart", { AddedItemProductID: "", total_price: 1 }]).method, "track", "an empty id is no item");
  assert.equal(translate(["track", "Started Checkout", {}]).method, "startedCheckout");
  assert.deepEqual(translate(["trackViewedItem", { ItemId: 1, Title: "P" }]),
    { method: "viewedProduct", args: [{ ProductID: 1, ProductName: "P" }], viewedItem: true });
  // Any other metric is a plain track; $value/$event_id become options.
  assert.deepEqual(translate(["track", "Ordered Sample", { $value: 5, $event_id: 7, a: 1 }, { valueCurrency: "USD" }]),
    { method: "track", args: ["Ordered Sample", { a: 1 }, { valueCurrency: "USD", value: 5, uniqueId: "7" }] });
  assert.deepEqual(translate(["track", "Ordered Sample", { a: 1 }, { value: 9 }]),
    { method: "track", args: ["Ordered Sample", { a: 1 }, { value: 9 }] });
  assert.deepEqual(translate(["track", "Bad", "not an object"]), { method: "track", args: ["Bad", "not an object"] });
  for (const m of METHODS) assert.equal(translate([m]).method, m);
  assert.throws(() => translate(["openForm", "X"]), /unknown command "openForm"/);
  assert.throws(() => translate(["constructor"]), /unknown command/);
});

test("the storefront events: our commands, and Klaviyo's track shapes, reach the same methods", () => {
  const collection = { CollectionID: 42, CollectionHandle: "tops" };
  for (const name of ["viewedCollection", "submittedSearch", "activeOnSite"]) {
    assert.ok(METHODS.includes(name), name);
    assert.deepEqual(translate([name, collection]), { method: name, args: [collection] });
  }
  assert.deepEqual(translate(["track", "Viewed Collection", collection]),
    { method: "viewedCollection", args: [collection, undefined] });
  assert.deepEqual(translate(["track", "Submitted Search", { SearchTerm: "tee", $event_id: "s-1" }]),
    { method: "submittedSearch", args: [{ SearchTerm: "tee" }, { uniqueId: "s-1" }] });
  assert.deepEqual(translate(["track", "Active on Site", { page: "https://shop.example/" }, { time: 5 }]),
    { method: "activeOnSite", args: [{ page: "https://shop.example/" }, { time: 5 }] });
});

test("identify: our key left null gives way to Klaviyo's $ one; options left null take $value and $event_id", () => {
  assert.deepEqual(profile({ email: null, $email: "ann@example.com" }).email, "ann@example.com");
  const { args } = translate(["track", "Ordered", { $value: 5, $event_id: "e-1" }, { value: null, uniqueId: null }]);
  assert.equal(args[2].value, 5);
  assert.equal(args[2].uniqueId, "e-1");
  // The options' own id wins, and the property then stays (as in the core).
  assert.deepEqual(translate(["track", "Ordered", { $event_id: "e-1" }, { uniqueId: "u-1" }]),
    { method: "track", args: ["Ordered", { $event_id: "e-1" }, { uniqueId: "u-1" }] });
  // As the core takes it from npm's calls: "" and a number JSON cannot hold stay properties.
  for (const id of ["", NaN, Infinity]) {
    assert.deepEqual(translate(["track", "Ordered", { $event_id: id }]), { method: "track", args: ["Ordered", { $event_id: id }, undefined] }, String(id));
  }
});
