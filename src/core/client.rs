//! The browser client's logic, sans IO: each call is validated, turned into a Klaviyo
//! request and queued. The adapter supplies the clock (`now_ms`), the random source
//! ([`Entropy`]), the stored state, and carries out the storage writes and transmits.

use super::config::Config;
use super::ecommerce;
use super::identity::Identity;
use super::json::{self, Json};
use super::payload::{self, EventParts};
use super::queue::{Payload, Queue, Report, StorageOp, Transmit};
use super::retry::Outcome;
use super::text;
use super::time;
use super::uuid::uuid_v4;
use super::validate::{self, ValidationError};

/// A source of random bytes (the browser's `crypto.getRandomValues`; a seeded
/// generator in tests).
pub trait Entropy {
    fn fill(&mut self, buf: &mut [u8]);
}

type Result<T> = std::result::Result<T, ValidationError>;

/// Profile keys `identify` accepts, as Klaviyo names them. Anything custom belongs in
/// `properties`.
const PROFILE_KEYS: &[&str] = &[
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "title",
    "image",
    "locale",
    "location",
    "properties",
];
const LOCATION_KEYS: &[&str] = &[
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
    "timezone",
    "ip",
];

/// The e-commerce events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commerce {
    /// `ProductID` and `ProductName` required; `value` defaults to `Price`.
    ViewedProduct,
    /// `Price` required; `value` defaults to `CartTotal`, else `Price * Quantity`.
    AddedToCart,
    /// A `value` property becomes the event's value.
    StartedCheckout,
}

pub struct Client<R: Entropy> {
    pub config: Config,
    identity: Identity,
    queue: Queue,
    rng: R,
    ops: Vec<StorageOp>,
}

impl<R: Entropy> Client<R> {
    /// `stored_identity` and `records` are what storage held under
    /// [`Config::identity_key`] and [`Config::queue_prefix`]; `page_query` is the page
    /// URL's query string, where an email click leaves `_kx`.
    pub fn new(
        config: Config,
        stored_identity: Option<&str>,
        records: Vec<(String, String)>,
        page_query: &str,
        mut rng: R,
    ) -> Client<R> {
        let identity = match stored_identity.and_then(Identity::restore) {
            Some(id) => id,
            None => Identity::new(new_id(&mut rng)),
        };
        let mut queue = Queue::new(config.queue_prefix(), config.limits.clone());
        queue.restore(records);
        let mut client = Client {
            config,
            identity,
            queue,
            rng,
            ops: Vec::new(),
        };
        let kx = text::query_param(page_query, "_kx").filter(|k| !k.is_empty());
        if kx.is_some() && kx != client.identity.kx {
            client.identity.kx = kx;
        }
        if stored_identity != Some(client.identity.to_storage().as_str()) {
            client.save_identity();
        }
        client
    }

    fn save_identity(&mut self) {
        self.ops.push(StorageOp::Put {
            key: self.config.identity_key(),
            value: self.identity.to_storage(),
        });
    }

    /// A fresh random id (for a tab, a request) from the injected RNG.
    pub fn new_id(&mut self) -> String {
        new_id(&mut self.rng)
    }

    pub fn anonymous_id(&self) -> &str {
        &self.identity.anonymous_id
    }

    /// `identify({ email, phone_number, external_id, first_name, ..., location, properties })`
    pub fn identify(&mut self, args: &str, now_ms: u64) -> Result<()> {
        let attrs = parse_object("profile", args)?;
        check_profile(&attrs)?;
        if profile_is_empty(&attrs) {
            return Err(ValidationError::new(
                "profile",
                "needs at least one of email, phone_number, external_id or an attribute",
            ));
        }
        self.identity.merge(attrs);
        self.save_identity();
        let body = payload::client_profile(self.identity.profile_attributes()).to_text();
        validate::body_size(body.len())?;
        // Identity only grows, so this body says everything a queued one for the same
        // anonymous profile did: send one, not both.
        let mut marker = String::from(r#""anonymous_id":"#);
        json::write_str(&self.identity.anonymous_id, &mut marker);
        self.queue
            .drop_superseded(super::queue::Endpoint::Profiles, &marker);
        let id = new_id(&mut self.rng);
        self.queue_body(id, super::queue::Endpoint::Profiles, body, now_ms);
        Ok(())
    }

    /// `track(metric, properties, { value, valueCurrency, uniqueId, time })`; returns the
    /// event's `unique_id`.
    pub fn track(
        &mut self,
        metric: &str,
        properties: &str,
        options: &str,
        now_ms: u64,
    ) -> Result<String> {
        validate::metric_name("metric", metric)?;
        let props = parse_object("properties", properties)?;
        let opts = parse_object("options", options)?;
        self.event(metric, props, opts, None, now_ms)
    }

    /// An e-commerce event with the property rules of Klaviyo's integrations (see
    /// [`Commerce`]); returns its `unique_id`.
    pub fn commerce(
        &mut self,
        kind: Commerce,
        properties: &str,
        options: &str,
        now_ms: u64,
    ) -> Result<String> {
        let mut props = parse_object("properties", properties)?;
        let opts = parse_object("options", options)?;
        let (metric, value) = match kind {
            Commerce::ViewedProduct => ("Viewed Product", ecommerce::viewed_product(&props)?),
            Commerce::AddedToCart => ("Added to Cart", ecommerce::added_to_cart(&props)?),
            Commerce::StartedCheckout => {
                ("Started Checkout", ecommerce::started_checkout(&mut props)?)
            }
        };
        self.event(metric, props, opts, value, now_ms)
    }

    fn event(
        &mut self,
        metric: &str,
        props: Json,
        opts: Json,
        default_value: Option<String>,
        now_ms: u64,
    ) -> Result<String> {
        validate::properties("properties", &props)?;
        let value = match opts.get("value") {
            None | Some(Json::Null) => default_value,
            Some(v) => Some(validate::number("value", v)?.to_string()),
        };
        let value_currency = match opts.get("valueCurrency") {
            None | Some(Json::Null) => None,
            Some(v) => Some(validate::currency("valueCurrency", v)?),
        };
        let secs = match opts.get("time") {
            None | Some(Json::Null) => (now_ms / 1000) as i64,
            Some(Json::Str(s)) => time::secs_from_iso(s).ok_or_else(|| {
                ValidationError::new(
                    "time",
                    "must be a Date, epoch milliseconds or an ISO 8601 time with offset",
                )
            })?,
            Some(Json::Num(n)) => text::parse_i64(n)
                .map(|ms| ms.div_euclid(1000))
                .ok_or_else(|| ValidationError::new("time", "must be whole epoch milliseconds"))?,
            Some(_) => {
                return Err(ValidationError::new(
                    "time",
                    "must be a Date, epoch milliseconds or an ISO 8601 string",
                ))
            }
        };
        validate::event_time("time", secs, now_ms)?;
        let unique_id = match opts.get("uniqueId") {
            None | Some(Json::Null) => None,
            Some(v) => Some(validate::unique_id("uniqueId", v)?.to_string()),
        };
        let item_id = new_id(&mut self.rng);
        let unique_id = unique_id.unwrap_or_else(|| item_id.clone());
        let event = payload::event_attributes(EventParts {
            metric,
            properties: props,
            time: time::iso_from_secs(secs),
            value,
            value_currency,
            unique_id: &unique_id,
        })
        .to_text();
        let profile = self.identity.profile_attributes().to_text();
        validate::body_size(event.len() + profile.len() + 200)?;
        let payload = Payload::Event {
            unique_id: unique_id.clone(),
            profile,
            event,
        };
        self.queue.push(item_id, payload, now_ms);
        Ok(unique_id)
    }

    /// `subscribe({ listId, email?, phone_number?, channels: ["email"|"sms"], customSource? })`:
    /// marketing consent for the given channels. Identifiers default to what `identify` said.
    pub fn subscribe(&mut self, args: &str, now_ms: u64) -> Result<()> {
        let a = parse_object("subscribe", args)?;
        let list_id = validate::non_empty("listId", a.get("listId"))?.to_string();
        let channels = channels(&a, &["email", "sms"])?;
        let profile = self.contact(&a, &["email", "phone_number", "external_id", "_kx"])?;
        for (ch, key) in [("email", "email"), ("sms", "phone_number")] {
            if channels.contains(&ch) && profile.get(key).is_none() {
                return Err(ValidationError::new(
                    key,
                    "is required to subscribe to this channel",
                ));
            }
        }
        let source = match a.get("customSource") {
            None | Some(Json::Null) => None,
            Some(_) => Some(validate::non_empty("customSource", a.get("customSource"))?),
        };
        let body = payload::client_subscription(&list_id, profile, &channels, source).to_text();
        let id = new_id(&mut self.rng);
        self.queue_body(id, super::queue::Endpoint::Subscriptions, body, now_ms);
        Ok(())
    }

    /// `backInStock({ variantId, email?, phone_number?, channels: ["email"|"sms"] })`
    pub fn back_in_stock(&mut self, args: &str, now_ms: u64) -> Result<()> {
        let a = parse_object("backInStock", args)?;
        let variant = validate::non_empty("variantId", a.get("variantId"))?.to_string();
        if !is_variant_id(&variant) {
            return Err(ValidationError::new(
                "variantId",
                "must be a catalog variant id like $custom:::$default:::SKU-1",
            ));
        }
        let channels = channels(&a, &["email", "sms"])?;
        let profile = self.contact(&a, &["email", "phone_number", "external_id"])?;
        if profile.get("email").is_none() && profile.get("phone_number").is_none() {
            return Err(ValidationError::new("email", "or phone_number is required"));
        }
        let body = payload::client_back_in_stock(&variant, profile, &channels).to_text();
        let id = new_id(&mut self.rng);
        self.queue_body(id, super::queue::Endpoint::BackInStock, body, now_ms);
        Ok(())
    }

    /// The identifiers for a subscription: given ones (validated) over identified ones.
    fn contact(&self, args: &Json, keys: &[&str]) -> Result<Json> {
        let mut profile = self.identity.identifiers(keys);
        if let Some(v) = args.get("email").filter(|v| !v.is_null()) {
            let e = validate::non_empty("email", Some(v))?;
            validate::email("email", e)?;
            profile.set("email", v.clone());
        }
        if let Some(v) = args.get("phone_number").filter(|v| !v.is_null()) {
            let p = validate::non_empty("phone_number", Some(v))?;
            validate::phone("phone_number", p)?;
            profile.set("phone_number", v.clone());
        }
        Ok(profile)
    }

    fn queue_body(
        &mut self,
        id: String,
        endpoint: super::queue::Endpoint,
        body: String,
        now_ms: u64,
    ) {
        self.queue
            .push(id, Payload::Body { endpoint, body }, now_ms);
    }

    /// Starts a new anonymous profile (on logout). Queued requests keep the identity
    /// they were made with.
    pub fn reset(&mut self) {
        self.identity = Identity::new(new_id(&mut self.rng));
        self.save_identity();
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    pub fn poll_transmit(&mut self, now_ms: u64) -> Option<Transmit> {
        self.queue.poll_transmit(now_ms)
    }

    pub fn on_outcome(&mut self, tx: u64, outcome: Outcome, now_ms: u64) {
        let mut j = [0u8; 2];
        self.rng.fill(&mut j);
        self.queue
            .on_outcome(tx, outcome, now_ms, u16::from_le_bytes(j));
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.queue.poll_timeout()
    }

    /// The next request that fits the page-unload keepalive allowance.
    pub fn poll_keepalive(&mut self, now_ms: u64, budget: usize) -> Option<Transmit> {
        self.queue.poll_keepalive(now_ms, budget)
    }

    pub fn set_online(&mut self, online: bool) {
        self.queue.set_online(online);
    }

    pub fn set_sender(&mut self, sender: bool) {
        self.queue.set_sender(sender);
    }

    pub fn is_sender(&self) -> bool {
        self.queue.is_sender()
    }

    /// Another tab changed a key of ours (`None`: removed).
    pub fn on_storage_change(&mut self, key: &str, value: Option<&str>) {
        if key == self.config.identity_key() {
            // Another tab identified or reset: follow it, so all tabs send one profile.
            if let Some(id) = value.and_then(Identity::restore) {
                self.identity = id;
            }
            return;
        }
        self.queue.on_storage_change(key, value);
    }

    /// Memory made to match storage (on becoming the sender tab).
    pub fn resync(&mut self, records: Vec<(String, String)>) {
        self.queue.resync(records);
    }

    /// Storage refused to write `key`.
    pub fn on_storage_failed(&mut self, key: &str) {
        self.queue.on_storage_failed(key);
    }

    /// Totals since start: (delivered, failed attempts).
    pub fn totals(&self) -> (usize, usize) {
        (self.queue.delivered, self.queue.failed)
    }

    pub fn take_storage_ops(&mut self) -> Vec<StorageOp> {
        let mut ops = std::mem::take(&mut self.ops);
        ops.append(&mut self.queue.take_ops());
        ops
    }

    pub fn take_reports(&mut self) -> Vec<Report> {
        self.queue.take_reports()
    }
}

/// `a:::b:::c` with three non-empty parts, as Klaviyo's catalog variant ids are.
fn is_variant_id(v: &str) -> bool {
    let Some(i) = text::find(v, ":::") else {
        return false;
    };
    let rest = &v[i + 3..];
    match text::find(rest, ":::") {
        Some(j) => {
            i > 0 && j > 0 && j + 3 < rest.len() && text::find(&rest[j + 3..], ":::").is_none()
        }
        None => false,
    }
}

fn new_id<R: Entropy>(rng: &mut R) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    uuid_v4(b)
}

/// JSON text from the adapter; `null` (an omitted argument) is an empty object.
fn parse_object(field: &str, text: &str) -> Result<Json> {
    match json::parse(text) {
        Ok(Json::Null) => Ok(Json::obj()),
        Ok(v @ Json::Obj(_)) => Ok(v),
        _ => Err(ValidationError::new(field, "must be an object")),
    }
}

fn channels(a: &Json, allowed: &[&'static str]) -> Result<Vec<&'static str>> {
    let Some(Json::Arr(items)) = a.get("channels") else {
        return Err(ValidationError::new(
            "channels",
            "must be a list like [\"email\"]",
        ));
    };
    let mut out = Vec::new();
    for it in items {
        let found = it
            .as_str()
            .and_then(|s| allowed.iter().find(|a| a.eq_ignore_ascii_case(s)));
        match found {
            Some(c) if !out.contains(c) => out.push(*c),
            Some(_) => {}
            None => {
                return Err(ValidationError::new(
                    "channels",
                    "may only contain \"email\" and \"sms\"",
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(ValidationError::new(
            "channels",
            "must name at least one channel",
        ));
    }
    Ok(out)
}

/// Checks every key `identify` got against Klaviyo's profile attributes.
fn check_profile(attrs: &Json) -> Result<()> {
    let Json::Obj(entries) = attrs else {
        return Err(ValidationError::new("profile", "must be an object"));
    };
    for (k, v) in entries {
        if !PROFILE_KEYS.contains(&k.as_str()) {
            return Err(ValidationError::new(
                k,
                "is not a Klaviyo profile attribute (put custom data in properties)",
            ));
        }
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "email" => validate::email("email", validate::non_empty("email", Some(v))?)?,
            "phone_number" => validate::phone(
                "phone_number",
                validate::non_empty("phone_number", Some(v))?,
            )?,
            "properties" => validate::properties("properties", v)?,
            "location" => check_location(v)?,
            key => {
                validate::non_empty(key, Some(v))?;
            }
        }
    }
    Ok(())
}

fn check_location(v: &Json) -> Result<()> {
    let Json::Obj(entries) = v else {
        return Err(ValidationError::new("location", "must be an object"));
    };
    for (k, v) in entries {
        if !LOCATION_KEYS.contains(&k.as_str()) {
            return Err(ValidationError::new(
                "location",
                "has an unknown key (see Klaviyo's ProfileLocation)",
            ));
        }
        let ok = match k.as_str() {
            "latitude" | "longitude" => matches!(v, Json::Num(_) | Json::Str(_) | Json::Null),
            _ => matches!(v, Json::Str(_) | Json::Null),
        };
        if !ok {
            return Err(ValidationError::new(
                "location",
                "values must be strings (latitude/longitude may be numbers)",
            ));
        }
    }
    Ok(())
}

fn profile_is_empty(attrs: &Json) -> bool {
    match attrs {
        Json::Obj(entries) => entries.iter().all(|(_, v)| v.is_null()),
        _ => true,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
