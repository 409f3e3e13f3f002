//! Server-side e-commerce events, as Klaviyo's integration checklist asks: the shop's
//! backend sends one call per order in a small format of our own, and the worker turns
//! it into the events Klaviyo's own integrations send, all in ONE
//! `event-bulk-create-job` (`POST /api/event-bulk-create-jobs`) for one profile.
//!
//! The input (`POST /api/orders`, `/api/orders/fulfilled`, `/api/orders/cancelled`,
//! `/api/orders/refunded`), every other member refused:
//!
//! ```json
//! {
//!   "order_id": "1001",                      // 1 to 255 characters, no control characters
//!   "event_id": "refund-2",                  // optional, not when placed: this shipment's,
//!                                            // cancellation's or refund's own id
//!   "time": "2026-11-20T10:00:00+01:00",     // optional: ISO 8601 date-time with offset, or
//!                                            // epoch ms; else now
//!   "backfill": true,                        // optional: a past order imported, which
//!                                            // Klaviyo records without starting flows
//!   "value": 84.97,                          // the order total (the amount cancelled or
//!                                            // refunded), never negative
//!   "value_currency": "USD",                 // optional, ISO 4217
//!   "profile": {"email": "a@b.co"},          // at least one of email, phone_number (E.164),
//!                                            // external_id, anonymous_id; optional
//!                                            // first_name, last_name, location (address1,
//!                                            // address2, city, region, country, zip)
//!   "items": [                               // placed: 1 to 999; otherwise optional (0 to 999)
//!     {"product_id": "P1", "name": "Tee", "quantity": 3, "price": 19.99,
//!      "sku": "T-1", "url": "https://…", "image_url": "https://…",
//!      "categories": ["Tops"], "brand": "Acme"}   // the last five optional
//!   ],
//!   "properties": {"DiscountCode": "X"}      // optional extra order properties
//! }
//! ```
//!
//! The output, per [`OrderEvent`]:
//! - Placed: `Placed Order` (value = the total, unique_id = order_id; properties
//!   `OrderId`, `Items` (each with `ProductID`, `ProductName`, `Quantity`, `ItemPrice`,
//!   `RowTotal` = price × quantity in exact decimals, `SKU`, `ProductURL`, `ImageURL`,
//!   `Categories`, `Brand`), `ItemNames`, `Categories`, `Brands`, and the extra
//!   properties), then one `Ordered Product` per line (value = its `RowTotal`,
//!   unique_id = `<order_id>-<line index from 0>`; properties `OrderId`, `ProductID`,
//!   `SKU`, `ProductName`, `Quantity`, `ProductURL`, `ImageURL`, `Categories`,
//!   `ProductBrand`: the names of Klaviyo's current custom-integration guide, which
//!   segments and recommendations read; its legacy Track API said `ProductCategories`).
//! - Fulfilled, Cancelled, Refunded: one `Fulfilled Order`, `Cancelled Order` or
//!   `Refunded Order` with the same order properties, value = the total, unique_id =
//!   order_id, or `<order_id>:<event_id>` with an `event_id`: Klaviyo keeps one event per
//!   unique_id, metric and profile, so a second partial refund or shipment of one order
//!   needs its own.
//!
//! Klaviyo takes at most 1000 events per job: a placed order of 999 lines makes 1000.
//! Optional members left out, null or blank (shop platforms send `"sku": ""` for "none")
//! are left out of the events too, and so is a blank or null entry of `categories`; a
//! blank or null identifier is not given either. `event_id`, `value_currency` and `time`
//! are the exceptions: blank, they are refused (see [`order_job`]).

use serde::de;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Number;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use super::api_rules;
use super::bodies::{self, at, at_index, rule, Invalid, StringOrNumber};
use super::bounded::{Capped, ShortStrings};
use crate::core::decimal::Decimal;
use crate::core::{text, time, validate};

/// Which order event a call is, from its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderEvent {
    /// `POST /api/orders`
    Placed,
    /// `POST /api/orders/fulfilled`
    Fulfilled,
    /// `POST /api/orders/cancelled`
    Cancelled,
    /// `POST /api/orders/refunded`
    Refunded,
}

impl OrderEvent {
    /// The event for a path below the route prefix (`/api/orders/refunded`).
    pub fn from_path(path: &str) -> Option<OrderEvent> {
        Some(match path {
            "/api/orders" => OrderEvent::Placed,
            "/api/orders/fulfilled" => OrderEvent::Fulfilled,
            "/api/orders/cancelled" => OrderEvent::Cancelled,
            "/api/orders/refunded" => OrderEvent::Refunded,
            _ => return None,
        })
    }

    /// The order-level metric Klaviyo's integrations use.
    pub fn metric(self) -> &'static str {
        match self {
            OrderEvent::Placed => "Placed Order",
            OrderEvent::Fulfilled => "Fulfilled Order",
            OrderEvent::Cancelled => "Cancelled Order",
            OrderEvent::Refunded => "Refunded Order",
        }
    }
}

/// Lines per order: with its `Placed Order`, a placed order's 999 `Ordered Product`
/// events make Klaviyo's limit of 1000 events per job.
pub const MAX_ITEMS: usize = api_rules::MAX_BULK - 1;

/// The per-line metric of a placed order.
pub const ORDERED_PRODUCT: &str = "Ordered Product";

/// Extra order properties as sent: each value kept as its JSON text (never a tree),
/// checked, and written into the job as it came.
type ExtraProperties = BTreeMap<String, Box<RawValue>>;

// Required members are options too, and any other member is refused where it stands
// (`deny_unknown_fields`), so a typo (`"order":…`) is named as such and never read.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderIn {
    order_id: Option<String>,
    event_id: Option<String>,
    time: Option<TimeIn>,
    backfill: Option<bool>,
    value: Option<Number>,
    value_currency: Option<String>,
    profile: Option<ProfileIn>,
    items: Option<Capped<ItemIn, MAX_ITEMS>>,
    properties: Option<ExtraProperties>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileIn {
    email: Option<String>,
    phone_number: Option<String>,
    external_id: Option<String>,
    anonymous_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    location: Option<LocationIn>,
}

/// The buyer's address, as Klaviyo's profile `location` names it: a guest's first
/// order is often all Klaviyo learns of them (location segments, local send times).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationIn {
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    region: Option<String>,
    country: Option<String>,
    zip: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn {
    product_id: Option<StringOrNumber>,
    name: Option<String>,
    quantity: Option<Number>,
    price: Option<Number>,
    sku: Option<String>,
    url: Option<String>,
    image_url: Option<String>,
    categories: Option<Vec<Option<String>>>,
    brand: Option<String>,
}

/// `time`: ISO 8601 with an offset, or milliseconds since the epoch.
enum TimeIn {
    Iso(String),
    Millis(u64),
}

impl<'de> Deserialize<'de> for TimeIn {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = TimeIn;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an ISO 8601 date-time with offset or epoch milliseconds")
            }

            fn visit_str<E>(self, s: &str) -> Result<TimeIn, E> {
                Ok(TimeIn::Iso(s.to_string()))
            }

            fn visit_u64<E>(self, ms: u64) -> Result<TimeIn, E> {
                Ok(TimeIn::Millis(ms))
            }
        }
        d.deserialize_any(V)
    }
}

const ORDER_MEMBERS: &str =
    "is not a member of an order (order_id, event_id, time, backfill, value, value_currency, profile, items, properties)";
const PROFILE_MEMBERS: &str = "is not a member of an order's profile (email, phone_number, \
external_id, anonymous_id, first_name, last_name, location)";
const LOCATION_MEMBERS: &str = "is not a member of an order's profile location (address1, \
address2, city, region, country, zip)";
const ITEM_MEMBERS: &str = "is not a member of an order line (product_id, name, quantity, \
price, sku, url, image_url, categories, brand)";

/// The properties the order sets itself; extra properties may not use these names.
const OWN_PROPERTIES: &[&str] = &["OrderId", "Items", "ItemNames", "Categories", "Brands"];

/// Reads an order, naming an unknown member by what the format has at its place.
fn read(text: &str) -> Result<OrderIn, Invalid> {
    bodies::parse(text).map_err(|mut e| {
        if e.detail == bodies::UNKNOWN_MEMBER {
            let depth = e.pointer.matches('/').count();
            e.detail = match depth {
                1 => ORDER_MEMBERS,
                2 => PROFILE_MEMBERS,
                _ if e.pointer.starts_with("/profile/") => LOCATION_MEMBERS,
                _ => ITEM_MEMBERS,
            }
            .to_string();
        }
        e
    })
}

/// A required member.
fn required<'a, T>(v: &'a Option<T>, base: &str, key: &str) -> Result<&'a T, Invalid> {
    v.as_ref()
        .ok_or_else(|| Invalid::new(&at(base, key), "is required"))
}

/// Exact decimal of a JSON number (shortest round-trip text of an `f64`).
fn decimal(n: &Number) -> Option<Decimal> {
    Decimal::parse(&n.to_string())
}

/// [`decimal`], or an error at `pointer`.
fn exact(n: &Number, pointer: &str) -> Result<Decimal, Invalid> {
    decimal(n).ok_or_else(|| {
        Invalid::new(
            pointer,
            "is out of range (at most 18 digits, 12 after the point)",
        )
    })
}

fn number(d: Decimal) -> Option<Number> {
    serde_json::from_str(&d.to_text()).ok()
}

fn is_negative(n: &Number) -> bool {
    n.as_f64().is_some_and(|f| f < 0.0)
}

/// A string of the input: not blank, at most 100 KB (Klaviyo's limit per string).
fn text_field(s: &str, pointer: &str) -> Result<(), Invalid> {
    if text::is_blank(s) {
        return Err(Invalid::new(pointer, "must be a non-empty string"));
    }
    validate::property_string("", s).map_err(|e| Invalid::new(pointer, e.reason))
}

/// An optional text member: blank is not given (shop platforms send an empty `sku`,
/// `address2` or `email` for "none"; an order is never refused for it), any other
/// checked as a string of the input.
fn optional_text<'a>(
    s: &'a Option<String>,
    base: &str,
    key: &str,
) -> Result<Option<&'a str>, Invalid> {
    match given(s) {
        Some(t) => text_field(t, &at(base, key)).map(|()| Some(t)),
        None => Ok(None),
    }
}

/// The member's text unless it is null or blank.
fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|t| !text::is_blank(t))
}

/// One order line, checked, with its row total and the optional members given.
struct Line<'a> {
    product_id: &'a StringOrNumber,
    name: &'a str,
    quantity: &'a Number,
    price: &'a Number,
    row_total: Number,
    sku: Option<&'a str>,
    url: Option<&'a str>,
    image_url: Option<&'a str>,
    /// Its blank and null entries left out.
    categories: Option<Vec<&'a str>>,
    brand: Option<&'a str>,
}

fn line<'a>(item: &'a ItemIn, base: &str) -> Result<Line<'a>, Invalid> {
    let product_id = required(&item.product_id, base, "product_id")?;
    if let StringOrNumber::String(id) = product_id {
        text_field(id, &at(base, "product_id"))?;
    }
    let name = required(&item.name, base, "name")?;
    text_field(name, &at(base, "name"))?;
    let quantity_n = required(&item.quantity, base, "quantity")?;
    let quantity = exact(quantity_n, &at(base, "quantity"))?;
    if quantity.is_zero() || is_negative(quantity_n) {
        return Err(Invalid::new(&at(base, "quantity"), "must be above 0"));
    }
    let price_n = required(&item.price, base, "price")?;
    let price = exact(price_n, &at(base, "price"))?;
    if is_negative(price_n) {
        return Err(Invalid::new(&at(base, "price"), "must not be negative"));
    }
    let row_total = price
        .times(quantity)
        .and_then(number)
        .ok_or_else(|| Invalid::new(&at(base, "price"), "times quantity is out of range"))?;
    let categories = match &item.categories {
        Some(list) => {
            let list_at = at(base, "categories");
            let mut kept = Vec::with_capacity(list.len());
            for (i, c) in list.iter().enumerate() {
                if let Some(c) = given(c) {
                    text_field(c, &at_index(&list_at, i))?;
                    kept.push(c);
                }
            }
            Some(kept)
        }
        None => None,
    };
    Ok(Line {
        product_id,
        name,
        quantity: quantity_n,
        price: price_n,
        row_total,
        sku: optional_text(&item.sku, base, "sku")?,
        url: optional_text(&item.url, base, "url")?,
        image_url: optional_text(&item.image_url, base, "image_url")?,
        categories,
        brand: optional_text(&item.brand, base, "brand")?,
    })
}

/// The event time: the order's (checked), else now.
fn event_time(t: &Option<TimeIn>, now_ms: u64) -> Result<String, Invalid> {
    let secs = match t {
        None => return Ok(time::iso_from_secs((now_ms / 1000) as i64)),
        Some(TimeIn::Iso(t)) => time::secs_from_iso_date_time(t)
            .ok_or_else(|| Invalid::new("/time", "must be an ISO 8601 date-time with offset"))?,
        Some(TimeIn::Millis(ms)) => i64::try_from(ms / 1000).unwrap_or(i64::MAX),
    };
    rule("", validate::event_time("time", secs, now_ms))?;
    Ok(time::iso_from_secs(secs))
}

/// The order total: exact, never negative. A cancelled or refunded order's is the
/// amount cancelled or refunded, as Klaviyo's integration guide sends it: a negative
/// one would count as the opposite in every sum of that metric.
fn order_value(value: &Option<Number>) -> Result<&Number, Invalid> {
    let value = required(value, "", "value")?;
    exact(value, "/value")?;
    if is_negative(value) {
        return Err(Invalid::new(
            "/value",
            "must not be negative (a cancelled or refunded order's is the amount, positive)",
        ));
    }
    Ok(value)
}

/// The order's lines, checked: 1 to 999 for a placed order, at most 999 otherwise.
fn lines<'a>(
    kind: OrderEvent,
    order: &'a OrderIn,
    order_id: &str,
) -> Result<Vec<Line<'a>>, Invalid> {
    let Some(items) = &order.items else {
        if kind == OrderEvent::Placed {
            return Err(Invalid::new("/items", "is required for a placed order"));
        }
        return Ok(Vec::new());
    };
    let fewest = usize::from(kind == OrderEvent::Placed);
    if items.total() < fewest || items.total() > MAX_ITEMS {
        let detail = if kind == OrderEvent::Placed {
            "must hold 1 to 999 lines"
        } else {
            "must hold at most 999 lines"
        };
        return Err(Invalid::new("/items", detail));
    }
    let lines = items
        .kept()
        .iter()
        .enumerate()
        .map(|(i, item)| line(item, &at_index("/items", i)))
        .collect::<Result<Vec<_>, _>>()?;
    if kind == OrderEvent::Placed {
        let mut last = order_id.to_string();
        last.push('-');
        text::push_u64(&mut last, lines.len().saturating_sub(1) as u64);
        if validate::unique_id_text("order_id", &last).is_err() {
            return Err(Invalid::new(
                "/order_id",
                "is too long to name each line: \"<order_id>-<line>\" must fit in 255 characters",
            ));
        }
    }
    Ok(lines)
}

/// The extra properties, checked: not a name the order sets, no string over 100 KB,
/// at most 400 properties with the order's own (`own` of them).
fn extra_properties(extra: Option<&ExtraProperties>, own: usize) -> Result<(), Invalid> {
    let Some(extra) = extra else {
        return Ok(());
    };
    for (key, raw) in extra {
        let pointer = at("/properties", key);
        if OWN_PROPERTIES.contains(&key.as_str()) {
            return Err(Invalid::new(&pointer, "is set from the order itself"));
        }
        if let Err(e) = bodies::parse_checked::<ShortStrings>(raw.get()) {
            return Err(Invalid::new(&(pointer + &e.pointer), &e.detail));
        }
    }
    if let Err(e) = validate::property_count("properties", own + extra.len()) {
        return Err(Invalid::new(
            "/properties",
            &(e.reason.to_string() + " with the order's own"),
        ));
    }
    Ok(())
}

/// Turns one order call into one `event-bulk-create-job` body (see the module docs for
/// both formats). `now_ms` is the time when the order has none. Errors point into the
/// order as it was sent (`/items/1/price`).
///
/// A blank `event_id`, `value_currency` or `time` is refused, not taken as left out:
/// each would change what Klaviyo records without a word (a second refund merged into
/// the first, the value in the account's currency, the time of receipt).
pub fn order_job(kind: OrderEvent, text: &str, now_ms: u64) -> Result<String, Invalid> {
    let order = read(text)?;
    let order_id = required(&order.order_id, "", "order_id")?;
    id_text("order_id", order_id)?;
    let unique_id = unique_id(kind, order_id, order.event_id.as_deref())?;
    let time = event_time(&order.time, now_ms)?;
    let value = order_value(&order.value)?;
    let currency = match &order.value_currency {
        Some(c) => Some(rule("", validate::currency_code("value_currency", c))?),
        None => None,
    };
    let profile = profile(required(&order.profile, "", "profile")?)?;
    let lines = lines(kind, &order, order_id)?;
    let own = if order.items.is_some() { 5 } else { 1 };
    extra_properties(order.properties.as_ref(), own)?;

    let job = job::Job {
        kind,
        order_id,
        unique_id: &unique_id,
        time: &time,
        backfill: order.backfill == Some(true),
        value,
        currency: currency.as_deref(),
        profile,
        lines: order.items.is_some().then_some(&lines[..]),
        extra: order.properties.as_ref(),
    };
    let body = job::to_text(&job)
        .ok_or_else(|| Invalid::new("", "makes an event job larger than Klaviyo's 5 MB"))?;
    // What the order makes must pass the same checks as a job sent as it is.
    if let Err(e) = api_rules::bulk_create_events(&body, now_ms) {
        let mut detail = String::from("makes an event job Klaviyo would refuse: ");
        detail.push_str(&e.detail);
        return Err(Invalid::new("", &detail));
    }
    Ok(body)
}

/// An id of the order's own: not blank (a space is no order's id, and Klaviyo would
/// keep all such orders as one), 1 to 255 bytes, no control characters.
fn id_text(key: &str, s: &str) -> Result<(), Invalid> {
    if text::is_blank(s) {
        return Err(Invalid::new(&at("", key), "must be a non-empty string"));
    }
    rule("", validate::unique_id_text(key, s))
}

/// The order event's `unique_id`: the order's id, or with an `event_id` (one shipment,
/// cancellation or refund of several) `<order_id>:<event_id>`. A placed order is one
/// event per order: an `event_id` there is refused.
fn unique_id(kind: OrderEvent, order_id: &str, event_id: Option<&str>) -> Result<String, Invalid> {
    let Some(e) = event_id else {
        return Ok(order_id.to_string());
    };
    if kind == OrderEvent::Placed {
        return Err(Invalid::new(
            "/event_id",
            "is for fulfilled, cancelled and refunded orders only: a placed order is one event per order_id",
        ));
    }
    id_text("event_id", e)?;
    let mut id = order_id.to_string();
    id.push(':');
    id.push_str(e);
    if validate::unique_id_text("event_id", &id).is_err() {
        return Err(Invalid::new(
            "/event_id",
            "is too long: \"<order_id>:<event_id>\" must fit in 255 characters",
        ));
    }
    Ok(id)
}

/// The job's one profile: the identifiers given (a blank one is not: a POS order's
/// `"email": ""` beside its phone number), checked with the core's rules.
fn profile(p: &ProfileIn) -> Result<job::Profile<'_>, Invalid> {
    let email = given(&p.email);
    if let Some(e) = email {
        rule("/profile", validate::email("email", e))?;
    }
    let phone_number = given(&p.phone_number);
    if let Some(n) = phone_number {
        rule("/profile", validate::phone("phone_number", n))?;
    }
    let at_location = "/profile/location";
    let location = match &p.location {
        Some(l) => job::Location {
            address1: optional_text(&l.address1, at_location, "address1")?,
            address2: optional_text(&l.address2, at_location, "address2")?,
            city: optional_text(&l.city, at_location, "city")?,
            region: optional_text(&l.region, at_location, "region")?,
            country: optional_text(&l.country, at_location, "country")?,
            zip: optional_text(&l.zip, at_location, "zip")?,
        },
        None => job::Location::default(),
    };
    let out = job::Profile {
        email,
        phone_number,
        external_id: optional_text(&p.external_id, "/profile", "external_id")?,
        anonymous_id: optional_text(&p.anonymous_id, "/profile", "anonymous_id")?,
        first_name: optional_text(&p.first_name, "/profile", "first_name")?,
        last_name: optional_text(&p.last_name, "/profile", "last_name")?,
        location: (!location.is_empty()).then_some(location),
    };
    if out.is_empty() {
        return Err(Invalid::new(
            "/profile",
            "needs at least one identifier: email, phone_number, external_id, anonymous_id",
        ));
    }
    Ok(out)
}

/// The job, written straight from the checked order (borrowed, never a tree).
mod job;

#[cfg(test)]
mod tests;
