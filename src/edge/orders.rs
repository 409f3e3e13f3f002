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
//!   "time": "2026-11-20T10:00:00+01:00",     // optional: ISO 8601 with offset, or epoch ms; else now
//!   "value": 84.97,                          // the order total; negative only when cancelled
//!   "value_currency": "USD",                 // optional, ISO 4217
//!   "profile": {"email": "a@b.co"},          // at least one of email, phone_number (E.164),
//!                                            // external_id, anonymous_id
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
//!   `SKU`, `ProductName`, `Quantity`, `ProductURL`, `ImageURL`, `ProductCategories`,
//!   `ProductBrand`).
//! - Fulfilled, Cancelled, Refunded: one `Fulfilled Order`, `Cancelled Order` or
//!   `Refunded Order` with the same order properties, value = the total, unique_id =
//!   order_id.
//!
//! Klaviyo takes at most 1000 events per job: a placed order of 999 lines makes 1000.
//! Optional members left out (or null) are left out of the events too.

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
    time: Option<TimeIn>,
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
    categories: Option<Vec<String>>,
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
    "is not a member of an order (order_id, time, value, value_currency, profile, items, properties)";
const PROFILE_MEMBERS: &str =
    "is not a member of an order's profile (email, phone_number, external_id, anonymous_id)";
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

fn optional_text(s: &Option<String>, base: &str, key: &str) -> Result<(), Invalid> {
    match s {
        Some(s) => text_field(s, &at(base, key)),
        None => Ok(()),
    }
}

/// One order line, checked, with its row total.
struct Line<'a> {
    item: &'a ItemIn,
    product_id: &'a StringOrNumber,
    name: &'a str,
    quantity: &'a Number,
    price: &'a Number,
    row_total: Number,
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
    optional_text(&item.sku, base, "sku")?;
    optional_text(&item.url, base, "url")?;
    optional_text(&item.image_url, base, "image_url")?;
    optional_text(&item.brand, base, "brand")?;
    if let Some(categories) = &item.categories {
        let list_at = at(base, "categories");
        for (i, c) in categories.iter().enumerate() {
            text_field(c, &at_index(&list_at, i))?;
        }
    }
    Ok(Line {
        item,
        product_id,
        name,
        quantity: quantity_n,
        price: price_n,
        row_total,
    })
}

/// The event time: the order's (checked), else now.
fn event_time(t: &Option<TimeIn>, now_ms: u64) -> Result<String, Invalid> {
    let secs = match t {
        None => return Ok(time::iso_from_secs((now_ms / 1000) as i64)),
        Some(TimeIn::Iso(t)) => time::secs_from_iso(t)
            .ok_or_else(|| Invalid::new("/time", "must be an ISO 8601 date-time with offset"))?,
        Some(TimeIn::Millis(ms)) => i64::try_from(ms / 1000).unwrap_or(i64::MAX),
    };
    rule("", validate::event_time("time", secs, now_ms))?;
    Ok(time::iso_from_secs(secs))
}

/// The order total: exact, and negative only when cancelled.
fn order_value(kind: OrderEvent, value: &Option<Number>) -> Result<&Number, Invalid> {
    let value = required(value, "", "value")?;
    exact(value, "/value")?;
    if is_negative(value) && kind != OrderEvent::Cancelled {
        return Err(Invalid::new(
            "/value",
            "must not be negative (only a cancelled order's may be)",
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
pub fn order_job(kind: OrderEvent, text: &str, now_ms: u64) -> Result<String, Invalid> {
    let order = read(text)?;
    let order_id = required(&order.order_id, "", "order_id")?;
    rule("", validate::unique_id_text("order_id", order_id))?;
    let time = event_time(&order.time, now_ms)?;
    let value = order_value(kind, &order.value)?;
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
        time: &time,
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

/// The job's one profile: the identifiers given, checked with the core's rules.
fn profile(p: &ProfileIn) -> Result<job::Profile<'_>, Invalid> {
    if let Some(e) = &p.email {
        rule("/profile", validate::email("email", e))?;
    }
    if let Some(n) = &p.phone_number {
        rule("/profile", validate::phone("phone_number", n))?;
    }
    for (key, v) in [
        ("external_id", &p.external_id),
        ("anonymous_id", &p.anonymous_id),
    ] {
        if let Some(s) = v {
            text_field(s, &at("/profile", key))?;
        }
    }
    let out = job::Profile {
        email: p.email.as_deref(),
        phone_number: p.phone_number.as_deref(),
        external_id: p.external_id.as_deref(),
        anonymous_id: p.anonymous_id.as_deref(),
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
mod job {
    use super::*;

    /// Everything the job is made of.
    pub struct Job<'a> {
        pub kind: OrderEvent,
        pub order_id: &'a str,
        pub time: &'a str,
        pub value: &'a Number,
        pub currency: Option<&'a str>,
        pub profile: Profile<'a>,
        /// The lines, when the order has `items` (even none).
        pub lines: Option<&'a [Line<'a>]>,
        pub extra: Option<&'a ExtraProperties>,
    }

    #[derive(serde::Serialize)]
    pub struct Profile<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub email: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub phone_number: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub external_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub anonymous_id: Option<&'a str>,
    }

    impl Profile<'_> {
        pub fn is_empty(&self) -> bool {
            self.email.is_none()
                && self.phone_number.is_none()
                && self.external_id.is_none()
                && self.anonymous_id.is_none()
        }
    }

    /// The job as text, or `None` when it would be larger than Klaviyo takes. Its size
    /// is counted first, so an oversized job is never built.
    pub fn to_text(job: &Job) -> Option<String> {
        let mut size = Counter(0);
        serde_json::to_writer(&mut size, job).ok()?;
        validate::body_size(size.0).ok()?;
        let mut out = Vec::with_capacity(size.0);
        serde_json::to_writer(&mut out, job).ok()?;
        String::from_utf8(out).ok()
    }

    /// Counts what is written to it.
    struct Counter(usize);

    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `{"type": kind, "attributes": attributes}`.
    struct Resource<A> {
        kind: &'static str,
        attributes: A,
    }

    impl<A: Serialize> Serialize for Resource<A> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(2))?;
            m.serialize_entry("type", self.kind)?;
            m.serialize_entry("attributes", &self.attributes)?;
            m.end()
        }
    }

    /// `{"data": data}`.
    #[derive(serde::Serialize)]
    struct Data<T> {
        data: T,
    }

    impl Serialize for Job<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let entry = Resource {
                kind: "event-bulk-create",
                attributes: Entry { job: self },
            };
            let attributes = BulkAttributes {
                events_bulk_create: Data { data: [entry] },
            };
            Data {
                data: Resource {
                    kind: "event-bulk-create-job",
                    attributes,
                },
            }
            .serialize(s)
        }
    }

    #[derive(serde::Serialize)]
    struct BulkAttributes<T> {
        #[serde(rename = "events-bulk-create")]
        events_bulk_create: T,
    }

    /// One profile and its events.
    struct Entry<'j, 'a> {
        job: &'j Job<'a>,
    }

    impl Serialize for Entry<'_, '_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let profile = Data {
                data: Resource {
                    kind: "profile",
                    attributes: &self.job.profile,
                },
            };
            let mut m = s.serialize_map(Some(2))?;
            m.serialize_entry("profile", &profile)?;
            m.serialize_entry(
                "events",
                &Data {
                    data: Events { job: self.job },
                },
            )?;
            m.end()
        }
    }

    /// The order event, then (placed) one `Ordered Product` per line.
    struct Events<'j, 'a> {
        job: &'j Job<'a>,
    }

    impl Serialize for Events<'_, '_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let j = self.job;
            let lines = j.lines.unwrap_or_default();
            let mut seq = s.serialize_seq(None)?;
            seq.serialize_element(&event(
                j,
                j.kind.metric(),
                OrderProperties { job: j },
                j.value,
                j.order_id.to_string(),
            ))?;
            if j.kind == OrderEvent::Placed {
                for (i, l) in lines.iter().enumerate() {
                    let mut unique_id = j.order_id.to_string();
                    unique_id.push('-');
                    text::push_u64(&mut unique_id, i as u64);
                    let props = ProductProperties::of(j.order_id, l);
                    seq.serialize_element(&event(
                        j,
                        ORDERED_PRODUCT,
                        props,
                        &l.row_total,
                        unique_id,
                    ))?;
                }
            }
            seq.end()
        }
    }

    /// One event of the job (`BaseEventCreateQueryBulkEntryResourceObject`).
    fn event<'a, P: Serialize>(
        j: &Job<'a>,
        metric: &'a str,
        properties: P,
        value: &'a Number,
        unique_id: String,
    ) -> Resource<EventAttributes<'a, P>> {
        Resource {
            kind: "event",
            attributes: EventAttributes {
                properties,
                time: j.time,
                value,
                value_currency: j.currency,
                unique_id,
                metric: Data {
                    data: Resource {
                        kind: "metric",
                        attributes: Metric { name: metric },
                    },
                },
            },
        }
    }

    #[derive(serde::Serialize)]
    struct EventAttributes<'a, P> {
        properties: P,
        time: &'a str,
        value: &'a Number,
        #[serde(skip_serializing_if = "Option::is_none")]
        value_currency: Option<&'a str>,
        unique_id: String,
        metric: Data<Resource<Metric<'a>>>,
    }

    #[derive(serde::Serialize)]
    struct Metric<'a> {
        name: &'a str,
    }

    /// The order event's properties: its own, then the extra ones as sent.
    struct OrderProperties<'j, 'a> {
        job: &'j Job<'a>,
    }

    impl Serialize for OrderProperties<'_, '_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let j = self.job;
            let mut m = s.serialize_map(None)?;
            m.serialize_entry("OrderId", j.order_id)?;
            if let Some(lines) = j.lines {
                let items: Vec<ItemProperty> = lines.iter().map(ItemProperty::of).collect();
                m.serialize_entry("Items", &items)?;
                let names: Vec<&str> = lines.iter().map(|l| l.name).collect();
                m.serialize_entry("ItemNames", &names)?;
                let categories = lines
                    .iter()
                    .flat_map(|l| l.item.categories.iter().flatten());
                m.serialize_entry("Categories", &distinct(categories))?;
                let brands = lines.iter().filter_map(|l| l.item.brand.as_ref());
                m.serialize_entry("Brands", &distinct(brands))?;
            }
            for (key, raw) in j.extra.into_iter().flatten() {
                m.serialize_entry(key, raw)?;
            }
            m.end()
        }
    }

    /// Each distinct string once, in the order first seen.
    fn distinct<'a>(all: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
        let mut seen = HashSet::new();
        all.map(String::as_str)
            .filter(|s| seen.insert(*s))
            .collect()
    }

    /// What an order line says of its product, under the names both `Items` and
    /// `Ordered Product` use.
    #[derive(serde::Serialize)]
    struct Product<'a> {
        #[serde(rename = "ProductID")]
        product_id: &'a StringOrNumber,
        #[serde(rename = "ProductName")]
        name: &'a str,
        #[serde(rename = "Quantity")]
        quantity: &'a Number,
        #[serde(rename = "SKU", skip_serializing_if = "Option::is_none")]
        sku: Option<&'a str>,
        #[serde(rename = "ProductURL", skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
        #[serde(rename = "ImageURL", skip_serializing_if = "Option::is_none")]
        image_url: Option<&'a str>,
    }

    impl<'a> Product<'a> {
        fn of(l: &'a Line<'a>) -> Product<'a> {
            Product {
                product_id: l.product_id,
                name: l.name,
                quantity: l.quantity,
                sku: l.item.sku.as_deref(),
                url: l.item.url.as_deref(),
                image_url: l.item.image_url.as_deref(),
            }
        }
    }

    /// An order line as `Items` lists it.
    #[derive(serde::Serialize)]
    struct ItemProperty<'a> {
        #[serde(flatten)]
        product: Product<'a>,
        #[serde(rename = "ItemPrice")]
        price: &'a Number,
        #[serde(rename = "RowTotal")]
        row_total: &'a Number,
        #[serde(rename = "Categories", skip_serializing_if = "Option::is_none")]
        categories: Option<&'a [String]>,
        #[serde(rename = "Brand", skip_serializing_if = "Option::is_none")]
        brand: Option<&'a str>,
    }

    impl<'a> ItemProperty<'a> {
        fn of(l: &'a Line<'a>) -> ItemProperty<'a> {
            ItemProperty {
                product: Product::of(l),
                price: l.price,
                row_total: &l.row_total,
                categories: l.item.categories.as_deref(),
                brand: l.item.brand.as_deref(),
            }
        }
    }

    /// An `Ordered Product`'s properties.
    #[derive(serde::Serialize)]
    struct ProductProperties<'a> {
        #[serde(rename = "OrderId")]
        order_id: &'a str,
        #[serde(flatten)]
        product: Product<'a>,
        #[serde(rename = "ProductCategories", skip_serializing_if = "Option::is_none")]
        categories: Option<&'a [String]>,
        #[serde(rename = "ProductBrand", skip_serializing_if = "Option::is_none")]
        brand: Option<&'a str>,
    }

    impl<'a> ProductProperties<'a> {
        fn of(order_id: &'a str, l: &'a Line<'a>) -> ProductProperties<'a> {
            ProductProperties {
                order_id,
                product: Product::of(l),
                categories: l.item.categories.as_deref(),
                brand: l.item.brand.as_deref(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: u64 = 1_795_669_339_000;
    const NOW_ISO: &str = "2026-11-26T05:02:19Z";

    const TWO_LINES: &str = r#"{
        "order_id": "1001",
        "time": "2026-11-20T10:00:00+01:00",
        "value": 84.97,
        "value_currency": "usd",
        "profile": {"email": "a@b.co", "external_id": "c-1"},
        "items": [
            {"product_id": "P1", "name": "Tee", "quantity": 3, "price": 19.99, "sku": "T-1",
             "url": "https://shop.example/tee", "image_url": "https://shop.example/tee.jpg",
             "categories": ["Tops", "Sale"], "brand": "Acme"},
            {"product_id": 42, "name": "Cap", "quantity": 1, "price": 25,
             "categories": ["Hats", "Sale"]}
        ],
        "properties": {"DiscountCode": "WELCOME", "Shipping": {"Method": "UPS"}}
    }"#;

    fn job(kind: OrderEvent, text: &str) -> Value {
        let body = order_job(kind, text, NOW).unwrap();
        assert_job_shape(&body);
        serde_json::from_str(&body).unwrap()
    }

    fn err(kind: OrderEvent, text: &str) -> Invalid {
        order_job(kind, text, NOW).unwrap_err()
    }

    /// The keys of an object, sorted.
    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    fn subset(v: &Value, allowed: &[&str], required: &[&str]) {
        for k in keys(v) {
            assert!(allowed.contains(&k), "{k} is not in the spec's schema");
        }
        for r in required {
            assert!(v.get(r).is_some(), "{r} is required");
        }
    }

    /// The structure of `EventsBulkCreateJob` as the spec (revision 2026-07-15) gives it:
    /// every member known to its schema, the required ones present, the types right, the
    /// enums their one value. Then our own checks of such a job on top.
    fn assert_job_shape(body: &str) {
        let v: Value = serde_json::from_str(body).unwrap();
        subset(&v, &["data"], &["data"]);
        let data = &v["data"];
        subset(data, &["type", "attributes"], &["type", "attributes"]);
        assert_eq!(data["type"], "event-bulk-create-job");
        subset(
            &data["attributes"],
            &["events-bulk-create"],
            &["events-bulk-create"],
        );
        let ebc = &data["attributes"]["events-bulk-create"];
        subset(ebc, &["data"], &["data"]);
        let entries = ebc["data"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "one profile per order");
        let entry = &entries[0];
        subset(entry, &["type", "attributes"], &["type", "attributes"]);
        assert_eq!(entry["type"], "event-bulk-create");
        subset(
            &entry["attributes"],
            &["backfill", "profile", "events"],
            &["profile", "events"],
        );
        let profile = &entry["attributes"]["profile"];
        subset(profile, &["data"], &["data"]);
        subset(
            &profile["data"],
            &["type", "id", "attributes", "meta"],
            &["type", "attributes"],
        );
        assert_eq!(profile["data"]["type"], "profile");
        subset(
            &profile["data"]["attributes"],
            &[
                "email",
                "phone_number",
                "external_id",
                "anonymous_id",
                "_kx",
                "first_name",
                "last_name",
                "organization",
                "locale",
                "title",
                "image",
                "location",
                "properties",
            ],
            &[],
        );
        for (_, id) in profile["data"]["attributes"].as_object().unwrap() {
            assert!(id.is_string());
        }
        let events = &entry["attributes"]["events"];
        subset(events, &["data"], &["data"]);
        let events = events["data"].as_array().unwrap();
        assert!(!events.is_empty() && events.len() <= 1000);
        for e in events {
            subset(e, &["type", "attributes"], &["type", "attributes"]);
            assert_eq!(e["type"], "event");
            let a = &e["attributes"];
            subset(
                a,
                &[
                    "properties",
                    "time",
                    "value",
                    "value_currency",
                    "backfill",
                    "metric",
                    "unique_id",
                ],
                &["properties", "metric"],
            );
            assert!(a["properties"].is_object());
            assert!(a["time"].is_string());
            assert!(a["value"].is_number());
            assert!(a["unique_id"].is_string());
            assert!(a.get("value_currency").is_none_or(Value::is_string));
            subset(&a["metric"], &["data"], &["data"]);
            subset(
                &a["metric"]["data"],
                &["type", "attributes"],
                &["type", "attributes"],
            );
            assert_eq!(a["metric"]["data"]["type"], "metric");
            subset(
                &a["metric"]["data"]["attributes"],
                &["name", "service"],
                &["name"],
            );
            assert!(a["metric"]["data"]["attributes"]["name"].is_string());
        }
        assert_eq!(api_rules::bulk_create_events(body, NOW), Ok(()));
    }

    #[test]
    fn a_placed_order_of_two_lines_makes_one_job_with_three_events() {
        let body = order_job(OrderEvent::Placed, TWO_LINES, NOW).unwrap();
        // Exact decimals: 19.99 × 3 is 59.97, not 59.970000000000006.
        assert!(body.contains(r#""RowTotal":59.97,"#), "{body}");
        assert!(!body.contains("59.970000"));
        let time = "2026-11-20T09:00:00Z";
        let order_props = json!({
            "OrderId": "1001",
            "Items": [
                {"ProductID": "P1", "ProductName": "Tee", "Quantity": 3, "ItemPrice": 19.99,
                 "RowTotal": 59.97, "SKU": "T-1", "ProductURL": "https://shop.example/tee",
                 "ImageURL": "https://shop.example/tee.jpg", "Categories": ["Tops", "Sale"],
                 "Brand": "Acme"},
                {"ProductID": 42, "ProductName": "Cap", "Quantity": 1, "ItemPrice": 25,
                 "RowTotal": 25, "Categories": ["Hats", "Sale"]}
            ],
            "ItemNames": ["Tee", "Cap"],
            "Categories": ["Tops", "Sale", "Hats"],
            "Brands": ["Acme"],
            "DiscountCode": "WELCOME",
            "Shipping": {"Method": "UPS"}
        });
        let metric = |name: &str| json!({"data": {"type": "metric", "attributes": {"name": name}}});
        let expected = json!({"data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": [{
                "type": "event-bulk-create",
                "attributes": {
                    "profile": {"data": {"type": "profile",
                        "attributes": {"email": "a@b.co", "external_id": "c-1"}}},
                    "events": {"data": [
                        {"type": "event", "attributes": {
                            "properties": order_props, "time": time, "value": 84.97,
                            "value_currency": "USD", "unique_id": "1001",
                            "metric": metric("Placed Order")}},
                        {"type": "event", "attributes": {
                            "properties": {"OrderId": "1001", "ProductID": "P1", "SKU": "T-1",
                                "ProductName": "Tee", "Quantity": 3,
                                "ProductURL": "https://shop.example/tee",
                                "ImageURL": "https://shop.example/tee.jpg",
                                "ProductCategories": ["Tops", "Sale"], "ProductBrand": "Acme"},
                            "time": time, "value": 59.97, "value_currency": "USD",
                            "unique_id": "1001-0", "metric": metric("Ordered Product")}},
                        {"type": "event", "attributes": {
                            "properties": {"OrderId": "1001", "ProductID": 42,
                                "ProductName": "Cap", "Quantity": 1,
                                "ProductCategories": ["Hats", "Sale"]},
                            "time": time, "value": 25, "value_currency": "USD",
                            "unique_id": "1001-1", "metric": metric("Ordered Product")}}
                    ]}
                }
            }]}}
        }});
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);
        assert_job_shape(&body);
    }

    #[test]
    fn fulfilled_cancelled_and_refunded_make_one_event_with_the_order_properties() {
        let placed = job(OrderEvent::Placed, TWO_LINES);
        let placed_props = &placed.pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/properties").unwrap();
        for (kind, name) in [
            (OrderEvent::Fulfilled, "Fulfilled Order"),
            (OrderEvent::Cancelled, "Cancelled Order"),
            (OrderEvent::Refunded, "Refunded Order"),
        ] {
            let v = job(kind, TWO_LINES);
            let events = v
                .pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data")
                .unwrap()
                .as_array()
                .unwrap();
            assert_eq!(events.len(), 1);
            let a = &events[0]["attributes"];
            assert_eq!(a["metric"]["data"]["attributes"]["name"], name);
            assert_eq!(a["unique_id"], "1001");
            assert_eq!(a["value"], json!(84.97));
            assert_eq!(&a["properties"], *placed_props);
        }
        // Without items: the order's id and the extra properties.
        let bare = r#"{"order_id":"1001","value":10,"profile":{"phone_number":"+15005550006"},"properties":{"Reason":"late"}}"#;
        let v = job(OrderEvent::Refunded, bare);
        let a = v
            .pointer(
                "/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes",
            )
            .unwrap();
        assert_eq!(
            a["properties"],
            json!({"OrderId": "1001", "Reason": "late"})
        );
        assert_eq!(a["time"], NOW_ISO);
        assert!(a.get("value_currency").is_none());
        let items_empty = bare.replace(r#""value":10"#, r#""value":10,"items":[]"#);
        let v = job(OrderEvent::Fulfilled, &items_empty);
        let props = v
            .pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/properties")
            .unwrap();
        assert_eq!(props["Items"], json!([]));
    }

    #[test]
    fn only_a_cancelled_order_may_have_a_negative_value() {
        let negative = TWO_LINES.replace("84.97", "-84.97");
        let v = job(OrderEvent::Cancelled, &negative);
        assert_eq!(
            v.pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/value"),
            Some(&json!(-84.97))
        );
        for kind in [
            OrderEvent::Placed,
            OrderEvent::Fulfilled,
            OrderEvent::Refunded,
        ] {
            assert_eq!(
                err(kind, &negative),
                Invalid::new(
                    "/value",
                    "must not be negative (only a cancelled order's may be)"
                )
            );
        }
        // Zero in any spelling is not negative.
        for zero in ["0", "-0", "-0.0", "0e2147483647", "0e-2147483647"] {
            let t = TWO_LINES.replace("84.97", zero);
            assert!(order_job(OrderEvent::Placed, &t, NOW).is_ok(), "{zero}");
        }
    }

    #[test]
    fn times_are_iso_with_an_offset_or_epoch_milliseconds_else_now() {
        let with = |t: &str| TWO_LINES.replace(r#""2026-11-20T10:00:00+01:00""#, t);
        let time_of = |v: &Value| {
            v.pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/time")
                .cloned()
        };
        assert_eq!(
            time_of(&job(OrderEvent::Placed, &with("1795669339123"))),
            Some(json!(NOW_ISO))
        );
        assert_eq!(
            time_of(&job(OrderEvent::Placed, &with("null"))),
            Some(json!(NOW_ISO))
        );
        assert_eq!(
            time_of(&job(
                OrderEvent::Placed,
                &with(r#""2026-11-26T06:02:19.9+01:00""#)
            )),
            Some(json!(NOW_ISO))
        );
        let no_time = TWO_LINES.replace(r#""time": "2026-11-20T10:00:00+01:00","#, "");
        assert_eq!(
            time_of(&job(OrderEvent::Placed, &no_time)),
            Some(json!(NOW_ISO))
        );
        for (bad, detail) in [
            (
                r#""2026-11-20T10:00:00""#,
                "must be an ISO 8601 date-time with offset",
            ),
            (r#""tomorrow""#, "must be an ISO 8601 date-time with offset"),
            (
                r#""1980-01-01T00:00:00Z""#,
                "time must be between 1990 and one year from now",
            ),
            // Seconds where milliseconds belong: 1970.
            (
                "1795669339",
                "time must be between 1990 and one year from now",
            ),
            (
                "-1",
                "must be an ISO 8601 date-time with offset or epoch milliseconds",
            ),
            (
                "1.5",
                "must be an ISO 8601 date-time with offset or epoch milliseconds",
            ),
            (
                "true",
                "must be an ISO 8601 date-time with offset or epoch milliseconds",
            ),
            (
                "18446744073709551615",
                "time must be between 1990 and one year from now",
            ),
        ] {
            assert_eq!(
                err(OrderEvent::Placed, &with(bad)),
                Invalid::new("/time", detail),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_placed_order_needs_1_to_999_lines() {
        let base = r#"{"order_id":"1","value":1,"profile":{"email":"a@b.co"}"#;
        assert_eq!(
            err(OrderEvent::Placed, &format!("{base}}}")),
            Invalid::new("/items", "is required for a placed order")
        );
        assert_eq!(
            err(OrderEvent::Placed, &format!(r#"{base},"items":null}}"#)),
            Invalid::new("/items", "is required for a placed order")
        );
        assert_eq!(
            err(OrderEvent::Placed, &format!(r#"{base},"items":[]}}"#)),
            Invalid::new("/items", "must hold 1 to 999 lines")
        );
        let lines = |n: usize| {
            let line = r#"{"product_id":"P","name":"N","quantity":1,"price":0.1}"#;
            format!(r#"{base},"items":[{}]}}"#, vec![line; n].join(","))
        };
        // 999 lines and the order: Klaviyo's 1000 events per job.
        let v = job(OrderEvent::Placed, &lines(999));
        let events = v
            .pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data")
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(events.len(), 1000);
        assert_eq!(events[999]["attributes"]["unique_id"], "1-998");
        let mut ids: Vec<&str> = events
            .iter()
            .map(|e| e["attributes"]["unique_id"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 1000, "unique ids are unique");
        for kind in [OrderEvent::Placed, OrderEvent::Refunded] {
            assert_eq!(err(kind, &lines(1000)).pointer, "/items");
        }
        assert!(order_job(OrderEvent::Refunded, &lines(999), NOW).is_ok());
    }

    #[test]
    fn order_errors_point_into_the_order() {
        let cases = [
            (
                TWO_LINES.replace(r#""order_id": "1001""#, r#""order": "1001""#),
                "/order",
            ),
            (TWO_LINES.replace(r#""order_id": "1001","#, ""), "/order_id"),
            (
                TWO_LINES.replace(r#""order_id": "1001""#, r#""order_id": 1001"#),
                "/order_id",
            ),
            (
                TWO_LINES.replace(r#""order_id": "1001""#, r#""order_id": """#),
                "/order_id",
            ),
            (
                TWO_LINES.replace(
                    r#""order_id": "1001""#,
                    &format!(r#""order_id": "{}""#, "o".repeat(254)),
                ),
                "/order_id",
            ),
            (TWO_LINES.replace("84.97", r#""84.97""#), "/value"),
            (TWO_LINES.replace("84.97", "1e400"), "/value"),
            (TWO_LINES.replace("84.97", "1e30"), "/value"),
            (TWO_LINES.replace(r#""value": 84.97,"#, ""), "/value"),
            (
                TWO_LINES.replace(r#""usd""#, r#""dollars""#),
                "/value_currency",
            ),
            (
                TWO_LINES.replace(r#""email": "a@b.co", "external_id": "c-1""#, ""),
                "/profile",
            ),
            (
                TWO_LINES.replace(r#""email": "a@b.co""#, r#""email": "a@""#),
                "/profile/email",
            ),
            (
                TWO_LINES.replace(r#""email": "a@b.co""#, r#""phone_number": "555""#),
                "/profile/phone_number",
            ),
            (
                TWO_LINES.replace(r#""external_id": "c-1""#, r#""external_id": " ""#),
                "/profile/external_id",
            ),
            (
                TWO_LINES.replace(r#""external_id": "c-1""#, r#""first_name": "A""#),
                "/profile/first_name",
            ),
            (
                TWO_LINES.replace(
                    r#""email": "a@b.co", "external_id": "c-1""#,
                    r#""email": null"#,
                ),
                "/profile",
            ),
            (
                TWO_LINES.replace(
                    r#""profile": {"email": "a@b.co", "external_id": "c-1"},"#,
                    "",
                ),
                "/profile",
            ),
            (
                TWO_LINES.replace(
                    r#""profile": {"email": "a@b.co", "external_id": "c-1"}"#,
                    r#""profile": "a@b.co""#,
                ),
                "/profile",
            ),
            (
                TWO_LINES.replace(r#""quantity": 3"#, r#""quantity": 0"#),
                "/items/0/quantity",
            ),
            (
                TWO_LINES.replace(r#""quantity": 3"#, r#""quantity": -3"#),
                "/items/0/quantity",
            ),
            (
                TWO_LINES.replace(r#""quantity": 3"#, r#""quantity": "3""#),
                "/items/0/quantity",
            ),
            (
                TWO_LINES.replace(r#""price": 25"#, r#""price": -25"#),
                "/items/1/price",
            ),
            (
                TWO_LINES.replace(r#""price": 25"#, r#""price": "25""#),
                "/items/1/price",
            ),
            (
                TWO_LINES.replace(r#""price": 25"#, r#""price": 1e300"#),
                "/items/1/price",
            ),
            (
                TWO_LINES
                    .replace(r#""price": 25"#, r#""price": 9999999999"#)
                    .replace(r#""quantity": 1,"#, r#""quantity": 9999999999,"#),
                "/items/1/price",
            ),
            (
                TWO_LINES.replace(r#""product_id": 42"#, r#""product_id": {}"#),
                "/items/1/product_id",
            ),
            (
                TWO_LINES.replace(r#""product_id": 42"#, r#""product_id": """#),
                "/items/1/product_id",
            ),
            (
                TWO_LINES.replace(r#""name": "Cap""#, r#""name": "  ""#),
                "/items/1/name",
            ),
            (TWO_LINES.replace(r#""name": "Cap", "#, ""), "/items/1/name"),
            (
                TWO_LINES.replace(r#"["Hats", "Sale"]"#, r#"["Hats", 7]"#),
                "/items/1/categories/1",
            ),
            (
                TWO_LINES.replace(r#""brand": "Acme""#, r#""brand": "Acme", "colour": "red""#),
                "/items/0/colour",
            ),
            (
                TWO_LINES.replace(r#""sku": "T-1""#, r#""sku": 1"#),
                "/items/0/sku",
            ),
            (
                TWO_LINES.replace(r#""DiscountCode""#, r#""Items""#),
                "/properties/Items",
            ),
            (
                TWO_LINES.replace(r#""DiscountCode""#, r#""OrderId""#),
                "/properties/OrderId",
            ),
            (
                TWO_LINES.replace(
                    r#"{"DiscountCode": "WELCOME", "Shipping": {"Method": "UPS"}}"#,
                    "[]",
                ),
                "/properties",
            ),
            (
                TWO_LINES
                    .replace(r#""items": ["#, r#""items": {"#)
                    .replace("]\n        ],", "]}\n        ],"),
                "",
            ),
            ("[]".to_string(), ""),
            ("".to_string(), ""),
        ];
        for (body, pointer) in cases {
            assert_eq!(err(OrderEvent::Placed, &body).pointer, pointer, "{body}");
        }
    }

    #[test]
    fn duplicate_keys_in_an_order_are_refused() {
        let cases = [
            (
                TWO_LINES.replace(r#""value": 84.97,"#, r#""value": 84.97, "value": 0.01,"#),
                "/value",
            ),
            (
                TWO_LINES.replace(r#""price": 25"#, r#""price": 25, "price": 0"#),
                "/items/1/price",
            ),
            (
                TWO_LINES.replace(
                    r#""email": "a@b.co""#,
                    r#""email": "a@b.co", "email": "b@c.co""#,
                ),
                "/profile/email",
            ),
            (
                TWO_LINES.replace(r#""UPS""#, r#""UPS", "Method": "DHL""#),
                "/properties/Shipping/Method",
            ),
        ];
        for (body, pointer) in cases {
            assert_eq!(
                err(OrderEvent::Placed, &body),
                Invalid::new(pointer, "is a duplicate key"),
                "{body}"
            );
        }
    }

    #[test]
    fn extra_properties_keep_the_event_limits() {
        let props = |n: usize| {
            (0..n)
                .map(|i| format!(r#""P{i}":{i}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let with = |p: String| {
            TWO_LINES.replace(
                r#"{"DiscountCode": "WELCOME", "Shipping": {"Method": "UPS"}}"#,
                &format!("{{{p}}}"),
            )
        };
        // 395 extra and the order's own five: 400.
        assert!(order_job(OrderEvent::Placed, &with(props(395)), NOW).is_ok());
        assert_eq!(
            err(OrderEvent::Placed, &with(props(396))),
            Invalid::new("/properties", "has more than 400 keys with the order's own")
        );
        let long = "x".repeat(validate::MAX_STRING_BYTES + 1);
        assert_eq!(
            err(
                OrderEvent::Placed,
                &with(format!(r#""Notes":["ok","{long}"]"#))
            ),
            Invalid::new("/properties/Notes/1", "is a string longer than 100 KB")
        );
        let long_name = TWO_LINES.replace(r#""name": "Cap""#, &format!(r#""name": "{long}""#));
        assert_eq!(
            err(OrderEvent::Placed, &long_name),
            Invalid::new("/items/1/name", "is a string longer than 100 KB")
        );
    }

    #[test]
    fn row_totals_are_exact_decimals() {
        for (price, quantity, total) in [
            ("19.99", "3", "59.97"),
            ("0.1", "3", "0.3"),
            ("2.50", "2", "5"),
            ("0.05", "0.5", "0.025"),
            ("1.5e2", "2", "300"),
            ("0", "7", "0"),
        ] {
            let t = TWO_LINES
                .replace(r#""price": 19.99"#, &format!(r#""price": {price}"#))
                .replace(r#""quantity": 3"#, &format!(r#""quantity": {quantity}"#));
            let body = order_job(OrderEvent::Placed, &t, NOW).unwrap();
            let needle = format!(r#""RowTotal":{total},"#);
            assert!(body.contains(&needle), "{price} × {quantity}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                v.pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/value")
                    .map(Value::to_string)
                    .as_deref(),
                Some(total)
            );
        }
    }

    #[test]
    fn the_order_event_comes_from_the_path() {
        assert_eq!(
            OrderEvent::from_path("/api/orders"),
            Some(OrderEvent::Placed)
        );
        assert_eq!(
            OrderEvent::from_path("/api/orders/fulfilled"),
            Some(OrderEvent::Fulfilled)
        );
        assert_eq!(
            OrderEvent::from_path("/api/orders/cancelled"),
            Some(OrderEvent::Cancelled)
        );
        assert_eq!(
            OrderEvent::from_path("/api/orders/refunded"),
            Some(OrderEvent::Refunded)
        );
        assert_eq!(OrderEvent::from_path("/api/orders/"), None);
        assert_eq!(OrderEvent::from_path("/api/orders/shipped"), None);
    }

    #[test]
    fn order_errors_never_repeat_personal_data() {
        for body in [
            TWO_LINES.replace(r#""a@b.co""#, r#""secret@""#),
            TWO_LINES.replace(r#""a@b.co""#, r#"["secret@b.co"]"#),
            TWO_LINES.replace("84.97", r#""secret""#),
            TWO_LINES.replace(r#""c-1""#, r#"{"secret":1}"#),
        ] {
            let e = err(OrderEvent::Placed, &body);
            assert!(!e.detail.contains("secret"), "{e:?}");
        }
    }
}
