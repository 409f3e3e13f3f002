//! The order's bulk job, written straight from the checked order (borrowed, never a
//! tree): one `event-bulk-create-job` for its profile, sized before it is built.

use super::*;

/// Everything the job is made of.
pub struct Job<'a> {
    pub kind: OrderEvent,
    pub order_id: &'a str,
    /// The order event's (see `unique_id` in the module above).
    pub unique_id: &'a str,
    pub time: &'a str,
    /// A past order imported: Klaviyo records its events without starting flows.
    pub backfill: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location<'a>>,
}

/// The buyer's address members given (blank ones left out).
#[derive(serde::Serialize, Default)]
pub struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address1: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address2: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<&'a str>,
}

impl Location<'_> {
    pub fn is_empty(&self) -> bool {
        [
            self.address1,
            self.address2,
            self.city,
            self.region,
            self.country,
            self.zip,
        ]
        .iter()
        .all(Option::is_none)
    }
}

impl Profile<'_> {
    /// Whether it names nobody (names and an address identify no one).
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
        let mut m = s.serialize_map(Some(2 + usize::from(self.job.backfill)))?;
        if self.job.backfill {
            m.serialize_entry("backfill", &true)?;
        }
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
            j.unique_id.to_string(),
        ))?;
        if j.kind == OrderEvent::Placed {
            for (i, l) in lines.iter().enumerate() {
                let mut unique_id = j.order_id.to_string();
                unique_id.push('-');
                text::push_u64(&mut unique_id, i as u64);
                let props = ProductProperties::of(j.order_id, l);
                seq.serialize_element(&event(j, ORDERED_PRODUCT, props, &l.row_total, unique_id))?;
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
            let categories = lines.iter().flat_map(|l| l.categories.iter().flatten());
            m.serialize_entry("Categories", &distinct(categories.copied()))?;
            let brands = lines.iter().filter_map(|l| l.brand);
            m.serialize_entry("Brands", &distinct(brands))?;
        }
        for (key, raw) in j.extra.into_iter().flatten() {
            m.serialize_entry(key, raw)?;
        }
        m.end()
    }
}

/// Each distinct string once, in the order first seen.
fn distinct<'a>(all: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    all.filter(|s| seen.insert(*s)).collect()
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
            sku: l.sku,
            url: l.url,
            image_url: l.image_url,
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
    categories: Option<&'a [&'a str]>,
    #[serde(rename = "Brand", skip_serializing_if = "Option::is_none")]
    brand: Option<&'a str>,
}

impl<'a> ItemProperty<'a> {
    fn of(l: &'a Line<'a>) -> ItemProperty<'a> {
        ItemProperty {
            product: Product::of(l),
            price: l.price,
            row_total: &l.row_total,
            categories: l.categories.as_deref(),
            brand: l.brand,
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
    #[serde(rename = "Categories", skip_serializing_if = "Option::is_none")]
    categories: Option<&'a [&'a str]>,
    #[serde(rename = "ProductBrand", skip_serializing_if = "Option::is_none")]
    brand: Option<&'a str>,
}

impl<'a> ProductProperties<'a> {
    fn of(order_id: &'a str, l: &'a Line<'a>) -> ProductProperties<'a> {
        ProductProperties {
            order_id,
            product: Product::of(l),
            categories: l.categories.as_deref(),
            brand: l.brand,
        }
    }
}
