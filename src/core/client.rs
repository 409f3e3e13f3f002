//! The browser client's logic, sans IO: each call of the JS API is validated, given
//! what must be fixed at call time (its id, its time, the profile it belongs to) and
//! queued; request bodies are built later, when they are sent. The adapter supplies
//! the clock (`now_ms`), fresh random ids, what storage held, and carries out the
//! storage writes and transmits.
//!
//! Consent (`consent.rs`) gates all of it: while pending nothing is written or sent and
//! calls are held; while denied storage is erased and calls are dropped. Klaviyo's own
//! opt-out cookie (`__kla_off=true`, `onsite.rs`) denies it for as long as it is set,
//! whatever the page's consent manager says.

use std::borrow::Cow;

use super::config::Config;
use super::consent::{self, Consent};
use super::ecommerce;
use super::identity::Identity;
use super::jsontext::{self as jt, Kind};
use super::onsite;
use super::payload::{self, Event};
use super::queue::{Endpoint, Queue, Report, ReportKind, StorageOp, Transmit};
use super::record;
use super::retry::Outcome;
use super::text;
use super::time;
use super::validate::{self, ValidationError};

type Result<T> = std::result::Result<T, ValidationError>;

/// A page keeps the calls made before its tracker is ready in storage (`pre:<page>`)
/// until its core has them. If it closes first, another page adopts them once they are
/// this old (the page that wrote them would have been ready long before).
pub const EARLY_STALE_MS: u64 = 60_000;

/// The calls of the JS API that queue something, by the number the adapter passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Identify = 1,
    Track,
    ViewedProduct,
    AddedToCart,
    StartedCheckout,
    Subscribe,
    BackInStock,
    ViewedCollection,
    SubmittedSearch,
    ActiveOnSite,
    /// `Active on Site` for a page view the tracker saw itself (`activeOnSite: "auto"`):
    /// never two in a row for one `URL`.
    PageView,
}

impl Op {
    pub fn from_code(code: u32) -> Option<Op> {
        const ALL: [Op; 11] = [
            Op::Identify,
            Op::Track,
            Op::ViewedProduct,
            Op::AddedToCart,
            Op::StartedCheckout,
            Op::Subscribe,
            Op::BackInStock,
            Op::ViewedCollection,
            Op::SubmittedSearch,
            Op::ActiveOnSite,
            Op::PageView,
        ];
        ALL.get(usize::try_from(code).ok()?.checked_sub(1)?)
            .copied()
    }

    /// The JS method name, which starts every error message.
    pub fn name(self) -> &'static str {
        match self {
            Op::Identify => "identify",
            Op::Track => "track",
            Op::ViewedProduct => "viewedProduct",
            Op::AddedToCart => "addedToCart",
            Op::StartedCheckout => "startedCheckout",
            Op::Subscribe => "subscribe",
            Op::BackInStock => "backInStock",
            Op::ViewedCollection => "viewedCollection",
            Op::SubmittedSearch => "submittedSearch",
            Op::ActiveOnSite | Op::PageView => "activeOnSite",
        }
    }

    /// What the n-th argument is called in messages.
    fn arg_name(self, n: usize) -> &'static str {
        match (self, n) {
            (Op::Track, 0) => "metric",
            (Op::Track, 1) => "properties",
            (Op::Track, _) => "options",
            (Op::Identify, _) => "profile",
            (Op::Subscribe | Op::BackInStock, _) => "options",
            (_, 0) => "properties",
            _ => "options",
        }
    }
}

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

pub struct Client {
    pub config: Config,
    identity: Identity,
    queue: Queue,
    /// What a denial left to write (the marker, the erasure), whatever the consent now.
    erasure: Vec<StorageOp>,
    /// `__kla_off=true` was seen: denied for the rest of the page, whatever the page's
    /// consent manager says (the next page reads the cookie again).
    opted_out: bool,
    /// The `URL` of the last automatic page view.
    last_page: String,
    /// When the first calls of another page's loading window, seen but still fresh,
    /// become stale (then [`Client::load_stored`] takes them).
    early_due: Option<u64>,
}

impl Client {
    /// `stored_identity` is what storage held under [`Config::identity_key`];
    /// `page_query` is the page URL's query string, where an email click leaves `_kx`;
    /// `fresh_id` becomes the anonymous id if none was stored. Stored records are
    /// handed in afterwards with [`Client::load`].
    pub fn new(
        config: Config,
        stored_identity: Option<&str>,
        page_query: &str,
        fresh_id: &str,
    ) -> Client {
        let mut identity = stored_identity
            .and_then(Identity::restore)
            .unwrap_or_else(|| Identity::new(fresh_id.to_string()));
        if let Some(kx) = text::query_param(page_query, "_kx").filter(|k| !k.is_empty()) {
            if identity.kx.as_ref() != Some(&kx) {
                identity.set_kx(kx);
            }
        }
        let queue = Queue::new(
            config.queue_prefix(),
            config.mark_prefix(),
            config.limits.clone(),
        );
        let consent = config.consent;
        let mut client = Client {
            config,
            identity,
            queue,
            erasure: Vec::new(),
            opted_out: false,
            last_page: String::new(),
            early_due: None,
        };
        // Denied: the identity read above is dropped with everything else.
        client.change(consent, "", true);
        if stored_identity != Some(client.identity.to_storage().as_str()) {
            client.save_identity();
        }
        client
    }

    /// Writes the identity, once consent is granted (pending: at the grant).
    fn save_identity(&mut self) {
        if self.consent() == Consent::Granted {
            self.queue.ops.push(StorageOp::Put {
                key: self.config.identity_key(),
                value: self.identity.to_storage(),
            });
        }
    }

    pub fn consent(&self) -> Consent {
        self.queue.consent()
    }

    /// The page's consent manager changed its answer (`kl.setConsent`). `fresh_id` is
    /// the anonymous id of a new profile, used when a grant follows a denial (the
    /// earlier identity was erased with everything else).
    pub fn set_consent(&mut self, consent: Consent, fresh_id: &str) {
        if !self.opted_out {
            self.change(consent, fresh_id, true);
        }
    }

    /// Reads Klaviyo's onsite cookies (`document.cookie`): at start, and again before
    /// the page's first send, since the onsite script may set them after we start. Its
    /// visitor fills what ours lack (`identity.rs`); `__kla_off=true` denies consent
    /// for the rest of the page, and the other tabs are told as for a withdrawal.
    pub fn read_cookies(&mut self, cookies: &str) {
        let onsite = onsite::read(cookies);
        if onsite.off && !self.opted_out {
            self.opted_out = true;
            self.change(Consent::Denied, "", true);
        }
        if self.consent() != Consent::Denied {
            self.identity.set_onsite(onsite.visitor);
        }
    }

    /// Whether the visitor is known: an email, a phone number, an external id or a `_kx`.
    pub fn is_identified(&self) -> bool {
        self.identity.is_identified()
    }

    /// Consent becomes `consent`. Denied: drop what the page holds (identity included)
    /// and erase every key under our prefix. When the denial is this page's (`tell`),
    /// the other tabs are told first, through the marker key, which the erasure removes
    /// at once: so they drop their calls as refused ones before they see the erasure.
    /// A grant or pending after a denial starts a new profile (`fresh_id`).
    fn change(&mut self, consent: Consent, fresh_id: &str, tell: bool) {
        let was = self.consent();
        if consent == was {
            return;
        }
        self.queue.set_consent(consent);
        let denied = consent == Consent::Denied;
        if denied || was == Consent::Denied {
            let id = if denied { "" } else { fresh_id };
            self.identity = Identity::new(id.to_string());
        }
        // Granted: the identity is written with the calls held while pending.
        self.save_identity();
        if !denied {
            return;
        }
        if tell {
            self.erasure.push(StorageOp::Put {
                key: self.config.consent_key(),
                value: consent::DENIED.to_string(),
            });
        }
        self.erasure.push(StorageOp::Erase {
            prefix: self.config.storage_prefix(),
        });
    }

    /// A key and value found in storage under our prefix (queue records, keepalive marks).
    /// Ignored while consent is denied (other tabs' data is not ours to hold then).
    pub fn load(&mut self, key: &str, value: &str) {
        self.queue.load(key, value);
    }

    /// A record of calls made before a page's tracker was ready:
    /// `[saved_ms, op, "[id,time,...args]", op, ...]`. Once stale it is adopted: its
    /// calls are queued with their own ids and times (refused ones are reported), and
    /// it is removed. A `reset` of that window is not replayed: the identity has moved on.
    pub fn adopt_early(&mut self, key: &str, value: &str, now_ms: u64) {
        if self.consent() == Consent::Denied {
            return; // erased
        }
        let Ok(v) = jt::check(value) else {
            return self.queue.ops.push(StorageOp::Remove {
                key: key.to_string(),
            });
        };
        let mut parts = jt::items(&v);
        let saved = parts.next().and_then(text::parse_u64);
        if let Some(stale) = saved.map(|t| t + EARLY_STALE_MS).filter(|s| *s > now_ms) {
            // Its page may still be loading: adopt it once it is stale, if it is left.
            self.early_due = Some(self.early_due.map_or(stale, |d| d.min(stale)));
            return;
        }
        let (mut refused, mut first) = (0, String::new());
        while let (Some(op), Some(args)) = (parts.next(), parts.next()) {
            let op = text::parse_u64(op).and_then(|n| Op::from_code(n as u32));
            let args = jt::unescape(args).unwrap_or_default();
            let Some(op) = op else { continue };
            if let Err(e) = self.call_json(op, &args, now_ms) {
                refused += 1;
                if first.is_empty() {
                    first = e.message(op.name());
                }
            }
        }
        if refused > 0 {
            self.queue.report(ReportKind::Invalid, 0, first, refused);
        }
        self.queue.ops.push(StorageOp::Remove {
            key: key.to_string(),
        });
    }

    /// When the first loading-window record seen still fresh becomes stale.
    pub fn early_due(&self) -> Option<u64> {
        self.early_due
    }

    /// What storage holds under our prefix: at start, and again at
    /// [`Client::early_due`] (then the adapter scans the loading-window keys only).
    /// Queue records and marks are loaded; loading-window records are adopted once
    /// stale, and the rest wait again.
    pub fn load_stored(&mut self, stored: &[(&str, &str)], now_ms: u64) {
        self.early_due = None;
        let early = self.config.early_prefix();
        for (key, value) in stored {
            if key.starts_with(&early) {
                self.adopt_early(key, value, now_ms);
            } else {
                self.load(key, value);
            }
        }
    }

    pub fn anonymous_id(&self) -> &str {
        &self.identity.anonymous_id
    }

    /// `{"anonymous_id":…,"_kx":…}` (`_kx` where there is one): what the shop's
    /// first-party cookie keeps (the edge worker's `POST /id`).
    pub fn visitor_json(&self, out: &mut String) {
        out.push_str("{\"anonymous_id\":");
        out.push_str(&jt::quote(&self.identity.anonymous_id));
        if let Some(kx) = &self.identity.kx {
            out.push_str(",\"_kx\":");
            out.push_str(&jt::quote(kx));
        }
        out.push('}');
    }

    /// One call as the adapter hands it over: `JSON.stringify([id, time, ...args])`
    /// (or with `?` for an argument JSON could not hold); `now_ms` stands in for a
    /// missing time.
    pub fn call_json(&mut self, op: Op, text: &str, now_ms: u64) -> Result<()> {
        let (parts, checked) = match jt::split_array(text) {
            Some(parts) if parts.len() >= 2 => (parts, true),
            // Not what JSON.stringify makes: check each part, to name the bad argument.
            _ => (jt::items(text).collect(), false),
        };
        // Our ids have no escapes: borrowed from the text.
        let id = match parts.first() {
            Some(p) if p.len() >= 2 && !text::has(p, b'\\') => Cow::Borrowed(&p[1..p.len() - 1]),
            Some(p) => Cow::Owned(jt::unescape(p).unwrap_or_default()),
            None => Cow::Borrowed(""),
        };
        let at = parts
            .get(1)
            .and_then(|t| text::parse_u64(t))
            .unwrap_or(now_ms);
        let args = parts.get(2..).unwrap_or(&[]);
        if checked {
            self.call_checked(op, args, &id, at)
        } else {
            self.call(op, args, &id, at)
        }
    }

    /// One call of the JS API. `args` are its arguments as JSON text (`null` for an
    /// omitted one), `id` a fresh random id (the event's `unique_id` unless the options
    /// give one) and `now_ms` the time of the call.
    pub fn call(&mut self, op: Op, args: &[&str], id: &str, now_ms: u64) -> Result<()> {
        let mut checked = Vec::with_capacity(args.len());
        for (n, a) in args.iter().enumerate() {
            checked.push(jt::check(a).map_err(|_| {
                ValidationError::new(
                    op.arg_name(n),
                    "must be plain JSON data (no cycles, functions or BigInt)",
                )
            })?);
        }
        let args: Vec<&str> = checked.iter().map(|a| a.as_ref()).collect();
        self.call_checked(op, &args, id, now_ms)
    }

    /// [`Client::call`] with arguments already checked and compact (as
    /// [`jt::split_array`] gives them): the hot path reads the text once.
    pub fn call_checked(&mut self, op: Op, args: &[&str], id: &str, now_ms: u64) -> Result<()> {
        let arg = |n: usize| args.get(n).copied().unwrap_or("null");
        match op {
            Op::Track => {
                let metric = arg(0);
                if jt::kind(metric) != Kind::Str {
                    return Err(ValidationError::new("metric", "must be a string"));
                }
                validate::metric_name("metric", &string(metric))?;
                let props = object(op, 1, arg(1))?;
                self.event(id, now_ms, metric, props, object(op, 2, arg(2))?, None)
            }
            Op::Identify => self.identify(object(op, 0, arg(0))?, id, now_ms),
            Op::Subscribe => self.subscribe(object(op, 0, arg(0))?, id, now_ms),
            Op::BackInStock => self.back_in_stock(object(op, 0, arg(0))?, id, now_ms),
            _ => {
                let props = object(op, 0, arg(0))?;
                let opts = object(op, 1, arg(1))?;
                let checkout;
                let (metric, props, value) = match op {
                    Op::ViewedProduct => (
                        "\"Viewed Product\"",
                        props,
                        ecommerce::viewed_product(props)?,
                    ),
                    Op::AddedToCart => {
                        ("\"Added to Cart\"", props, ecommerce::added_to_cart(props)?)
                    }
                    Op::StartedCheckout => {
                        let value;
                        (checkout, value) = ecommerce::started_checkout(props)?;
                        ("\"Started Checkout\"", checkout.as_str(), value)
                    }
                    Op::ViewedCollection => {
                        ecommerce::viewed_collection(props)?;
                        ("\"Viewed Collection\"", props, None)
                    }
                    Op::SubmittedSearch => {
                        ecommerce::submitted_search(props)?;
                        ("\"Submitted Search\"", props, None)
                    }
                    _ => {
                        ecommerce::active_on_site(props)?;
                        if op == Op::PageView {
                            // One page, one Active on Site: not again for the same URL.
                            let url = jt::get(props, "URL").unwrap_or("");
                            if url == self.last_page {
                                return Ok(());
                            }
                            self.last_page = url.to_string();
                        }
                        ("\"Active on Site\"", props, None)
                    }
                };
                self.event(id, now_ms, metric, props, opts, value)
            }
        }
    }

    /// `identify({ email, phone_number, external_id, first_name, ..., location, properties })`
    fn identify(&mut self, attrs: &str, id: &str, now_ms: u64) -> Result<()> {
        check_profile(attrs)?;
        if jt::entries(attrs).all(|(_, v)| jt::kind(v) == Kind::Null) {
            return Err(ValidationError::new(
                "profile",
                "needs at least one of email, phone_number, external_id or an attribute",
            ));
        }
        let mut next = self.identity.clone();
        next.merge(attrs);
        let body = payload::client_profile(next.attributes());
        validate::body_size(body.len())?;
        // Identity only grows, so this body says everything a queued one for the same
        // anonymous profile did: send one, not both.
        let mut marker = String::from(r#""anonymous_id":"#);
        jt::write_str(&self.identity.anonymous_id, &mut marker);
        self.queue.drop_superseded(Endpoint::Profiles, &marker);
        // Consent denied: dropped, and the page forgets it too.
        if self.queue.push_body(id, Endpoint::Profiles, body, now_ms) {
            std::mem::swap(&mut self.identity, &mut next);
            self.save_identity();
        }
        Ok(())
    }

    fn event(
        &mut self,
        id: &str,
        now_ms: u64,
        metric: &str,
        props: &str,
        opts: &str,
        default_value: Option<String>,
    ) -> Result<()> {
        validate::properties("properties", props)?;
        let given = |k| jt::get(opts, k).filter(|v| jt::kind(v) != Kind::Null);
        let value = match given("value") {
            Some(v) => validate::number("value", v)?,
            None => default_value.as_deref().unwrap_or(""),
        };
        let currency = match given("valueCurrency") {
            Some(c) => validate::currency("valueCurrency", c)?,
            None => String::new(),
        };
        let time_s = match given("time") {
            None => (now_ms / 1000) as i64,
            Some(t) => event_secs(t)?,
        };
        validate::event_time("time", time_s, now_ms)?;
        let own_id;
        let unique_id = match given("uniqueId") {
            Some(u) => validate::unique_id("uniqueId", u)?,
            None => {
                own_id = jt::quote(id);
                &own_id
            }
        };
        let fields = record::event_fields(&Event {
            time_s,
            unique_id,
            value,
            currency: &currency,
            metric,
            properties: props,
        });
        let profile = self.identity.attributes();
        validate::body_size(fields.len() + profile.len() + 400)?;
        self.queue.push_event(id, profile, fields, now_ms);
        Ok(())
    }

    /// `subscribe({ listId, email?, phone_number?, channels: ["email"|"sms"], customSource? })`:
    /// marketing consent for the given channels. Identifiers default to what `identify` said.
    fn subscribe(&mut self, a: &str, id: &str, now_ms: u64) -> Result<()> {
        let list_id = validate::non_empty("listId", jt::get(a, "listId"))?;
        let channels = channels(a)?;
        let profile = self.contact(a, &["email", "phone_number", "external_id", "_kx"])?;
        for &(ch, key) in &[("email", "email"), ("sms", "phone_number")] {
            if channels.contains(&ch) && jt::get(&profile, key).is_none() {
                return Err(ValidationError::new(
                    key,
                    "is required to subscribe to this channel",
                ));
            }
        }
        let source = match jt::get(a, "customSource") {
            s if jt::is_absent(s) => None,
            s => Some(validate::non_empty("customSource", s)?),
        };
        let body = payload::client_subscription(&list_id, &profile, &channels, source.as_deref());
        self.queue
            .push_body(id, Endpoint::Subscriptions, body, now_ms);
        Ok(())
    }

    /// `backInStock({ variantId, email?, phone_number?, channels: ["email"|"sms"] })`
    fn back_in_stock(&mut self, a: &str, id: &str, now_ms: u64) -> Result<()> {
        let variant = validate::non_empty("variantId", jt::get(a, "variantId"))?;
        if !is_variant_id(&variant) {
            return Err(ValidationError::new(
                "variantId",
                "must be a catalog variant id like $custom:::$default:::SKU-1",
            ));
        }
        let channels = channels(a)?;
        let profile = self.contact(a, &["email", "phone_number", "external_id"])?;
        if jt::get(&profile, "email").is_none() && jt::get(&profile, "phone_number").is_none() {
            return Err(ValidationError::new("email", "or phone_number is required"));
        }
        let body = payload::client_back_in_stock(&variant, &profile, &channels);
        self.queue
            .push_body(id, Endpoint::BackInStock, body, now_ms);
        Ok(())
    }

    /// The identifiers for a subscription: given ones (validated) over identified ones.
    fn contact(&self, args: &str, keys: &[&str]) -> Result<String> {
        let mut profile = self.identity.identifiers(keys);
        for &(key, check) in &[
            ("email", validate::email as fn(&str, &str) -> Result<()>),
            ("phone_number", validate::phone),
        ] {
            if let Some(v) = jt::get(args, key).filter(|v| jt::kind(v) != Kind::Null) {
                check(key, &validate::non_empty(key, Some(v))?)?;
                profile = jt::with(&profile, key, Some(v));
            }
        }
        Ok(profile)
    }

    /// Starts a new anonymous profile (on logout) with `fresh_id`. Queued calls keep
    /// the identity they were made with.
    /// The onsite script's visitor is not carried over: the shop said the person left.
    pub fn reset(&mut self, fresh_id: &str) {
        if self.consent() != Consent::Denied {
            self.identity = Identity::new(fresh_id.to_string());
            self.save_identity();
        }
    }

    /// The visitor of the shop's first-party cookie (see [`Identity::adopt`]), kept from
    /// now on. Refused while consent is denied, and for an id no longer than 128 bytes.
    pub fn adopt_visitor(&mut self, anonymous_id: &str, kx: &str) {
        if self.consent() != Consent::Denied && (1..=128).contains(&anonymous_id.len()) {
            self.identity.adopt(anonymous_id, kx);
            self.save_identity();
        }
    }

    /// Calls queued and not yet accepted by Klaviyo.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The end of a task: the storage writes to make now (the task's calls as one
    /// record, records that shrank, the identity). None while consent is pending or
    /// denied, but what a denial left (the erasure, once).
    pub fn take_storage_ops(&mut self, now_ms: u64) -> Vec<StorageOp> {
        let mut ops = std::mem::take(&mut self.erasure);
        if self.consent() == Consent::Granted {
            self.queue.sync(now_ms);
            ops.append(&mut self.queue.ops);
        }
        ops
    }

    pub fn poll_transmit(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        self.queue.poll_transmit(now_ms, max_body)
    }

    /// The page is going away: the next request that fits the keepalive allowance left.
    pub fn poll_keepalive(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        self.queue.poll_keepalive(now_ms, max_body)
    }

    pub fn on_outcome(&mut self, tx: u32, outcome: Outcome, now_ms: u64, jitter: u16) {
        self.queue.on_outcome(tx, outcome, now_ms, jitter);
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.queue.poll_timeout()
    }

    /// The page is being hidden or closed (after the keepalive transmits were taken).
    pub fn on_hide(&mut self, now_ms: u64) {
        self.queue.on_hide(now_ms);
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

    /// Another tab changed a key of ours (`None`: removed). The consent marker saying
    /// `denied` means another tab's page withdrew consent: so does this one.
    pub fn on_storage_change(&mut self, key: &str, value: Option<&str>) {
        if self.consent() == Consent::Denied {
            return;
        }
        if value.unwrap_or("") == consent::DENIED && key == self.config.consent_key() {
            return self.change(Consent::Denied, "", false);
        }
        if key == self.config.identity_key() {
            // Another tab identified or reset: follow it, so all tabs send one profile.
            if let Some(id) = value.and_then(Identity::restore) {
                // Klaviyo's cookie still describes this visitor: it stays under theirs.
                let old = std::mem::replace(&mut self.identity, id);
                self.identity.set_onsite(old.onsite);
            }
            return;
        }
        self.queue.on_storage_change(key, value);
    }

    /// Memory made to match storage (on becoming the sender tab).
    pub fn resync(&mut self, stored: &[(&str, &str)]) {
        self.queue.resync(stored);
    }

    /// Storage refused to write `key`.
    pub fn on_storage_failed(&mut self, key: &str) {
        self.queue.on_storage_failed(key);
    }

    /// Totals since start: (delivered, failed attempts).
    pub fn totals(&self) -> (usize, usize) {
        (self.queue.delivered, self.queue.failed)
    }

    pub fn take_reports(&mut self) -> Vec<Report> {
        self.queue.take_reports()
    }
}

/// The text of a checked string literal, decoded only when it has escapes.
fn string(raw: &str) -> std::borrow::Cow<'_, str> {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
    if text::has(inner, b'\\') {
        std::borrow::Cow::Owned(jt::unescape(raw).unwrap_or_default())
    } else {
        std::borrow::Cow::Borrowed(inner)
    }
}

/// An argument that must be an object; `null` (omitted) reads as `{}`.
fn object(op: Op, n: usize, raw: &str) -> Result<&str> {
    match jt::kind(raw) {
        Kind::Obj => Ok(raw),
        Kind::Null => Ok("{}"),
        _ => Err(ValidationError::new(op.arg_name(n), "must be an object")),
    }
}

/// `options.time`: a Date (as ISO text), an ISO 8601 string, or epoch milliseconds.
fn event_secs(raw: &str) -> Result<i64> {
    match jt::kind(raw) {
        Kind::Str => time::secs_from_iso(&string(raw)).ok_or_else(|| {
            ValidationError::new(
                "time",
                "must be a Date, epoch milliseconds or an ISO 8601 time with offset",
            )
        }),
        Kind::Num => text::parse_i64(raw)
            .map(|ms| ms.div_euclid(1000))
            .ok_or_else(|| ValidationError::new("time", "must be whole epoch milliseconds")),
        _ => Err(ValidationError::new(
            "time",
            "must be a Date, epoch milliseconds or an ISO 8601 string",
        )),
    }
}

/// `a:::b:::c` with three non-empty parts, as Klaviyo's catalog variant ids are.
fn is_variant_id(v: &str) -> bool {
    fn cut(s: &str) -> Option<(usize, &str)> {
        text::find(s, ":::").map(|i| (i, &s[i + 3..]))
    }
    match cut(v).and_then(|(a, rest)| cut(rest).map(|(b, c)| (a, b, c))) {
        Some((a, b, c)) => a > 0 && b > 0 && !c.is_empty() && cut(c).is_none(),
        None => false,
    }
}

fn channels(a: &str) -> Result<Vec<&'static str>> {
    let list = jt::get(a, "channels").filter(|l| jt::kind(l) == Kind::Arr);
    let Some(list) = list else {
        return Err(ValidationError::new(
            "channels",
            "must be a list like [\"email\"]",
        ));
    };
    let mut out = Vec::new();
    for it in jt::items(list) {
        let found = jt::unescape(it).and_then(|s| {
            ["email", "sms"]
                .iter()
                .find(|c| c.eq_ignore_ascii_case(&s))
                .copied()
        });
        match found {
            Some(c) if !out.contains(&c) => out.push(c),
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
fn check_profile(attrs: &str) -> Result<()> {
    for (k, v) in jt::entries(attrs) {
        let key = string(k);
        let Some(known) = PROFILE_KEYS.iter().find(|p| **p == key) else {
            return Err(ValidationError::new(
                &key,
                "is not a Klaviyo profile attribute (put custom data in properties)",
            ));
        };
        if jt::kind(v) == Kind::Null {
            continue;
        }
        match *known {
            "email" => validate::email("email", &validate::non_empty("email", Some(v))?)?,
            "phone_number" => validate::phone(
                "phone_number",
                &validate::non_empty("phone_number", Some(v))?,
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

fn check_location(v: &str) -> Result<()> {
    if jt::kind(v) != Kind::Obj {
        return Err(ValidationError::new("location", "must be an object"));
    }
    for (k, v) in jt::entries(v) {
        let key = string(k);
        if !LOCATION_KEYS.contains(&key.as_ref()) {
            return Err(ValidationError::new(
                "location",
                "has an unknown key (see Klaviyo's ProfileLocation)",
            ));
        }
        let ok = matches!(
            (key.as_ref(), jt::kind(v)),
            (_, Kind::Str | Kind::Null) | ("latitude" | "longitude", Kind::Num)
        );
        if !ok {
            return Err(ValidationError::new(
                "location",
                "values must be strings (latitude/longitude may be numbers)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
