//! Checks of the server-side bodies the worker forwards with the private key. Each body
//! is parsed by [`bodies::parse`] into the JSON:API shape of Klaviyo's OpenAPI
//! (revision 2026-07-15), so a wrong type or a missing field is refused with its JSON
//! pointer, and no body with a duplicate key gets through. Then the core's rules run on
//! the typed values: identifiers, email and phone syntax, metric names, times,
//! currencies, unique ids and the limits on event properties. A refused body is never
//! forwarded; an accepted one is forwarded exactly as it came (the bytes checked here).
//!
//! Unknown fields are left for Klaviyo to judge on the signed routes; the unsigned
//! browser route ([`browser_event`]) allows only what a `/client` event could carry.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Number;
use std::borrow::Cow;

pub use super::bodies::Invalid;
use super::bodies::{self, at, at_index, rule, StringOrNumber};
use super::bounded::{AnyObject, Capped, Properties};
use crate::core::{time, validate};

/// Klaviyo's limit on profiles per bulk call and on events per bulk job.
pub const MAX_BULK: usize = 1000;

/// A `type` member that must be one value, read in the body's order.
macro_rules! tag {
    ($name:ident, $lit:literal) => {
        #[doc = concat!("The JSON:API type `\"", $lit, "\"`.")]
        struct $name;

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                bodies::expect_tag(d, $lit).map(|()| $name)
            }
        }
    };
}

tag!(EventType, "event");
tag!(MetricType, "metric");
tag!(ProfileType, "profile");
tag!(ListType, "list");
tag!(EventBulkCreateJobType, "event-bulk-create-job");
tag!(EventBulkCreateType, "event-bulk-create");
tag!(SubscriptionJobType, "profile-subscription-bulk-create-job");

// The shapes below follow the spec's schemas. Fields that no rule reads are typed all
// the same, for the pointer a wrong type gets (hence `allow(dead_code)`). Free-form
// members are checked as they stream past and not kept, and lists keep no more
// elements than their rules allow (`bounded`): a body costs memory by its size only.

/// `EventCreateQueryV2` (`POST /api/events`).
#[derive(Deserialize)]
struct EventCreateQuery {
    data: EventResource<ProfileRef>,
}

/// `EventCreateQueryV2ResourceObject`, and with `P = NoProfile` the entries of a bulk
/// job (`BaseEventCreateQueryBulkEntryResourceObject`).
#[derive(Deserialize)]
struct EventResource<P> {
    #[serde(rename = "type")]
    _type: EventType,
    attributes: EventAttributes<P>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct EventAttributes<P> {
    properties: Properties,
    time: Option<String>,
    value: Option<Number>,
    value_currency: Option<String>,
    unique_id: Option<String>,
    backfill: Option<bool>,
    metric: MetricRef,
    profile: P,
}

/// A bulk job's events have no profile of their own (it is the entry's); one there is
/// left to Klaviyo like any unknown field.
type NoProfile = Option<IgnoredAny>;

#[derive(Deserialize)]
struct MetricRef {
    data: MetricResource,
}

/// `MetricCreateQueryResourceObject`.
#[derive(Deserialize)]
struct MetricResource {
    #[serde(rename = "type")]
    _type: MetricType,
    attributes: MetricAttributes,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct MetricAttributes {
    name: String,
    service: Option<String>,
}

#[derive(Deserialize)]
struct ProfileRef {
    data: ProfileResource,
}

/// `EventProfileCreateQueryResourceObject`, `OnsiteProfileCreateQueryResourceObject`
/// and `ProfileUpsertQueryResourceObject`: the same members for what is checked here.
#[derive(Deserialize)]
#[allow(dead_code)]
struct ProfileResource {
    #[serde(rename = "type")]
    _type: ProfileType,
    id: Option<String>,
    attributes: ProfileAttributes,
    meta: Option<AnyObject>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ProfileAttributes {
    email: Option<String>,
    phone_number: Option<String>,
    external_id: Option<String>,
    anonymous_id: Option<String>,
    _kx: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    organization: Option<String>,
    locale: Option<String>,
    title: Option<String>,
    image: Option<String>,
    location: Option<Location>,
    properties: Option<AnyObject>,
}

impl ProfileAttributes {
    fn identifier(&self, name: &str) -> Option<&str> {
        match name {
            "email" => self.email.as_deref(),
            "phone_number" => self.phone_number.as_deref(),
            "external_id" => self.external_id.as_deref(),
            "anonymous_id" => self.anonymous_id.as_deref(),
            "_kx" => self._kx.as_deref(),
            _ => None,
        }
    }
}

/// `ProfileLocation`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Location {
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    country: Option<String>,
    latitude: Option<StringOrNumber>,
    longitude: Option<StringOrNumber>,
    region: Option<String>,
    zip: Option<String>,
    timezone: Option<String>,
    ip: Option<String>,
}

/// `EventsBulkCreateJob` (`POST /api/event-bulk-create-jobs`).
#[derive(Deserialize)]
struct EventsBulkCreateJob {
    data: EventsBulkCreateJobResource,
}

#[derive(Deserialize)]
struct EventsBulkCreateJobResource {
    #[serde(rename = "type")]
    _type: EventBulkCreateJobType,
    attributes: EventsBulkCreateJobAttributes,
}

#[derive(Deserialize)]
struct EventsBulkCreateJobAttributes {
    #[serde(rename = "events-bulk-create")]
    events_bulk_create: DataList<EventsBulkCreateResource>,
}

/// `{"data":[...]}`, of which a rule allows at most [`MAX_BULK`].
#[derive(Deserialize)]
struct DataList<T> {
    data: Capped<T, MAX_BULK>,
}

/// `EventsBulkCreateQueryResourceObject`: one profile and its events.
#[derive(Deserialize)]
struct EventsBulkCreateResource {
    #[serde(rename = "type")]
    _type: EventBulkCreateType,
    attributes: EventsBulkCreateAttributes,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct EventsBulkCreateAttributes {
    backfill: Option<bool>,
    profile: ProfileRef,
    events: DataList<EventResource<NoProfile>>,
}

/// `SubscriptionCreateJobCreateQuery` (`POST /api/profile-subscription-bulk-create-jobs`).
#[derive(Deserialize)]
struct SubscriptionJob {
    data: SubscriptionJobResource,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionJobResource {
    #[serde(rename = "type")]
    _type: SubscriptionJobType,
    attributes: SubscriptionJobAttributes,
    relationships: Option<SubscriptionJobRelationships>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionJobAttributes {
    custom_source: Option<String>,
    historical_import: Option<bool>,
    profiles: DataList<SubscriptionProfile>,
}

/// `ProfileSubscriptionCreateQueryResourceObject`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionProfile {
    #[serde(rename = "type")]
    _type: ProfileType,
    id: Option<String>,
    attributes: SubscriptionProfileAttributes,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionProfileAttributes {
    email: Option<String>,
    phone_number: Option<String>,
    subscriptions: SubscriptionChannels,
    age_gated_date_of_birth: Option<String>,
}

/// `SubscriptionChannels`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionChannels {
    email: Option<AnyObject>,
    sms: Option<AnyObject>,
    whatsapp: Option<AnyObject>,
    push: Option<AnyObject>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionJobRelationships {
    list: Option<ListRef>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ListRef {
    data: ListResource,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ListResource {
    #[serde(rename = "type")]
    _type: ListType,
    id: String,
}

/// Identifiers that make an event's profile (`id` is `profile.data.id`).
const EVENT_IDS: &[&str] = &[
    "id",
    "email",
    "phone_number",
    "external_id",
    "anonymous_id",
    "_kx",
];
/// `ProfileUpsertQuery` has no `anonymous_id`.
const IMPORT_IDS: &[&str] = &["id", "email", "phone_number", "external_id", "_kx"];

/// The attributes of one event (without its profile); `at` points at them.
fn event<P>(attrs: &EventAttributes<P>, at_attrs: &str, now_ms: u64) -> Result<(), Invalid> {
    let mut metric_at = at_attrs.to_string();
    metric_at.push_str("/metric/data/attributes");
    rule(
        &metric_at,
        validate::metric_name("name", &attrs.metric.data.attributes.name),
    )?;
    // `properties` were checked as they were read (`bounded::Properties`).
    if let Some(t) = &attrs.time {
        let secs = time::secs_from_iso(t).ok_or_else(|| {
            Invalid::new(
                &at(at_attrs, "time"),
                "must be an ISO 8601 date-time with offset",
            )
        })?;
        rule(at_attrs, validate::event_time("time", secs, now_ms))?;
    }
    // `value` is a number by its type (JSON has no NaN, and serde_json refuses numbers
    // beyond f64): nothing more to check.
    if let Some(c) = &attrs.value_currency {
        rule(at_attrs, validate::currency_code("value_currency", c))?;
    }
    if let Some(u) = &attrs.unique_id {
        rule(at_attrs, validate::unique_id_text("unique_id", u))?;
    }
    Ok(())
}

/// A profile: at least one of `ids`, and the email and phone syntax. `at_data` points at
/// the resource (`…/profile/data`).
fn profile(p: &ProfileResource, at_data: &str, ids: &[&str]) -> Result<(), Invalid> {
    let attrs_at = at(at_data, "attributes");
    let a = &p.attributes;
    let given = |name: &str| {
        let v = if name == "id" {
            p.id.as_deref()
        } else {
            a.identifier(name)
        };
        v.is_some_and(|s| !s.is_empty())
    };
    if !ids.iter().any(|k| given(k)) {
        return Err(needs_identifier(&attrs_at, ids));
    }
    if let Some(e) = &a.email {
        rule(&attrs_at, validate::email("email", e))?;
    }
    if let Some(n) = &a.phone_number {
        rule(&attrs_at, validate::phone("phone_number", n))?;
    }
    Ok(())
}

fn needs_identifier(pointer: &str, ids: &[&str]) -> Invalid {
    let mut d = String::from("needs at least one identifier: ");
    d.push_str(&ids.join(", "));
    Invalid::new(pointer, &d)
}

/// `POST /api/events` (`EventCreateQueryV2`).
pub fn create_event(text: &str, now_ms: u64) -> Result<(), Invalid> {
    event_rules(&bodies::parse(text)?, now_ms)
}

fn event_rules(body: &EventCreateQuery, now_ms: u64) -> Result<(), Invalid> {
    let a = &body.data.attributes;
    event(a, "/data/attributes", now_ms)?;
    profile(&a.profile.data, "/data/attributes/profile/data", EVENT_IDS)
}

/// `POST /api/event-bulk-create-jobs` (`EventsBulkCreateJob`): 1 to 1000 profiles, each
/// with its events, at most 1000 events in all.
pub fn bulk_create_events(text: &str, now_ms: u64) -> Result<(), Invalid> {
    let body: EventsBulkCreateJob = bodies::parse(text)?;
    let list_at = "/data/attributes/events-bulk-create/data";
    let entries = &body.data.attributes.events_bulk_create.data;
    if entries.total() == 0 || entries.total() > MAX_BULK {
        return Err(Invalid::new(list_at, "must hold 1 to 1000 profiles"));
    }
    let mut events = 0usize;
    for (i, entry) in entries.kept().iter().enumerate() {
        let entry_at = at_index(list_at, i);
        let a = &entry.attributes;
        let mut profile_at = entry_at.clone();
        profile_at.push_str("/attributes/profile/data");
        profile(&a.profile.data, &profile_at, EVENT_IDS)?;
        let mut events_at = entry_at;
        events_at.push_str("/attributes/events/data");
        let list = &a.events.data;
        for (k, e) in list.kept().iter().enumerate() {
            let event_at = at_index(&events_at, k);
            events += 1;
            if events > MAX_BULK {
                return Err(past_the_limit(&event_at));
            }
            event(&e.attributes, &at(&event_at, "attributes"), now_ms)?;
        }
        if list.total() > list.kept().len() {
            // The first event not kept is the 1001st of this profile at least.
            return Err(past_the_limit(&at_index(&events_at, list.kept().len())));
        }
    }
    Ok(())
}

fn past_the_limit(event_at: &str) -> Invalid {
    Invalid::new(event_at, "is past Klaviyo's limit of 1000 events per job")
}

/// `POST /api/profile-import` (`ProfileUpsertQuery`): one of `id`, `email`,
/// `phone_number`, `external_id`, `_kx`.
pub fn profile_import(text: &str) -> Result<(), Invalid> {
    let body: ProfileRef = bodies::parse(text)?;
    profile(&body.data, "/data", IMPORT_IDS)
}

/// `POST /api/profile-subscription-bulk-create-jobs` (`SubscriptionCreateJobCreateQuery`):
/// 1 to 1000 profiles, each with an email or a phone number and its `subscriptions`.
pub fn bulk_subscribe(text: &str) -> Result<(), Invalid> {
    let body: SubscriptionJob = bodies::parse(text)?;
    let list_at = "/data/attributes/profiles/data";
    let profiles = &body.data.attributes.profiles.data;
    if profiles.total() == 0 || profiles.total() > MAX_BULK {
        return Err(Invalid::new(list_at, "must hold 1 to 1000 profiles"));
    }
    for (i, p) in profiles.kept().iter().enumerate() {
        let mut attrs_at = at_index(list_at, i);
        attrs_at.push_str("/attributes");
        let a = &p.attributes;
        let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        if !has(&a.email) && !has(&a.phone_number) {
            return Err(needs_identifier(&attrs_at, &["email", "phone_number"]));
        }
        if let Some(e) = &a.email {
            rule(&attrs_at, validate::email("email", e))?;
        }
        if let Some(n) = &a.phone_number {
            rule(&attrs_at, validate::phone("phone_number", n))?;
        }
    }
    Ok(())
}

/// Why the unsigned browser path refused an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a valid event (400).
    Invalid(Invalid),
    /// A valid event the browser path may not send (403): its metric is not allowed,
    /// or it carries a field a `/client` event could not.
    Forbidden(Invalid),
}

// The browser path's allow-list, as types: the members named are the only ones
// allowed (`deny_unknown_fields`: any other is refused, by pointer, without being
// read). `create_event` has checked their types already.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserBody {
    #[serde(rename = "data")]
    _data: BrowserEvent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserEvent {
    #[serde(rename = "type", default)]
    _type: IgnoredAny,
    #[serde(rename = "attributes")]
    _attributes: BrowserEventAttributes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserEventAttributes {
    #[serde(rename = "properties", default)]
    _properties: IgnoredAny,
    #[serde(rename = "time", default)]
    _time: IgnoredAny,
    #[serde(rename = "value", default)]
    _value: IgnoredAny,
    #[serde(rename = "value_currency", default)]
    _value_currency: IgnoredAny,
    #[serde(rename = "unique_id", default)]
    _unique_id: IgnoredAny,
    #[serde(rename = "metric")]
    _metric: BrowserRef<BrowserMetricAttributes>,
    #[serde(rename = "profile")]
    _profile: BrowserRef<BrowserIdentifiers>,
}

/// `{"data":{"type":…,"attributes":A}}` and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserRef<A> {
    #[serde(rename = "data")]
    _data: BrowserResource<A>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserResource<A> {
    #[serde(rename = "type", default)]
    _type: IgnoredAny,
    #[serde(rename = "attributes")]
    _attributes: A,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserMetricAttributes {
    #[serde(rename = "name")]
    _name: IgnoredAny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserIdentifiers {
    #[serde(rename = "email", default)]
    _email: IgnoredAny,
    #[serde(rename = "phone_number", default)]
    _phone_number: IgnoredAny,
    #[serde(rename = "external_id", default)]
    _external_id: IgnoredAny,
    #[serde(rename = "anonymous_id", default)]
    _anonymous_id: IgnoredAny,
    #[serde(rename = "_kx", default)]
    _kx: IgnoredAny,
}

/// Just the metric name of an event body (`data.attributes.metric.data.attributes.name`),
/// borrowed where it has no escapes; every other member is skipped unread.
#[derive(Deserialize)]
struct MetricOnly<'a> {
    #[serde(borrow)]
    data: MetricOnlyData<'a>,
}

#[derive(Deserialize)]
struct MetricOnlyData<'a> {
    #[serde(borrow)]
    attributes: MetricOnlyAttributes<'a>,
}

#[derive(Deserialize)]
struct MetricOnlyAttributes<'a> {
    #[serde(borrow)]
    metric: MetricOnlyRef<'a>,
}

#[derive(Deserialize)]
struct MetricOnlyRef<'a> {
    #[serde(borrow)]
    data: MetricOnlyResource<'a>,
}

#[derive(Deserialize)]
struct MetricOnlyResource<'a> {
    #[serde(borrow)]
    attributes: MetricOnlyName<'a>,
}

#[derive(Deserialize)]
struct MetricOnlyName<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// The metric name of an event body, if it can be read where it must be.
fn metric_name(text: &str) -> Option<Cow<'_, str>> {
    serde_json::from_str::<MetricOnly>(text)
        .ok()
        .map(|m| m.data.attributes.metric.data.attributes.name)
}

const BROWSER_ONLY: &str = "may not be sent unsigned from a page: it carries only event \
properties, time, value, value_currency, unique_id, the metric name and profile identifiers \
(email, phone_number, external_id, anonymous_id, _kx)";

fn not_a_page_metric() -> Refusal {
    Refusal::Forbidden(Invalid::new(
        "/data/attributes/metric/data/attributes/name",
        "is not a metric pages may send (BROWSER_SERVER_METRICS)",
    ))
}

/// The unsigned browser path of `/api/events`, trusted only by its `Origin` header,
/// which any non-browser client can forge. So the event must pass [`create_event`], its
/// metric name must be one of `allowed_metrics` (exactly), and it may carry only what a
/// `/client` event could carry anyway: event properties, `time`, `value`,
/// `value_currency`, `unique_id`, the metric name, and profile identifiers (`email`,
/// `phone_number`, `external_id`, `anonymous_id`, `_kx`). No other profile attribute
/// (`first_name`, `properties`, `location`, the profile `id`, ...), no `backfill`, no
/// metric `service`, no other member anywhere.
///
/// Cheapest refusal first: after one validating pass over the bytes (syntax, depth,
/// duplicate keys, number range), the metric name is read alone, and a metric pages
/// may not send is refused before the event's rules run.
///
/// [`Refusal::Invalid`] is a 400; [`Refusal::Forbidden`] (metric not allowed, or a
/// member the browser path may not carry, with its pointer) a 403.
pub fn browser_event(text: &str, now_ms: u64, allowed_metrics: &[String]) -> Result<(), Refusal> {
    bodies::check(text).map_err(Refusal::Invalid)?;
    let allowed = |name: &str| allowed_metrics.iter().any(|m| m == name);
    if metric_name(text).is_some_and(|name| !allowed(&name)) {
        return Err(not_a_page_metric());
    }
    let body: EventCreateQuery = bodies::parse_checked(text).map_err(Refusal::Invalid)?;
    event_rules(&body, now_ms).map_err(Refusal::Invalid)?;
    if !allowed(&body.data.attributes.metric.data.attributes.name) {
        return Err(not_a_page_metric());
    }
    match bodies::parse_checked::<BrowserBody>(text) {
        Ok(_) => Ok(()),
        Err(e) if e.detail == bodies::UNKNOWN_MEMBER => {
            Err(Refusal::Forbidden(Invalid::new(&e.pointer, BROWSER_ONLY)))
        }
        Err(e) => Err(Refusal::Invalid(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_669_339_000;

    /// An `/api/events` body: `attrs` are extra members of `data.attributes` (each
    /// followed by a comma), `profile` the profile's attributes.
    fn event_body(attrs: &str, profile: &str) -> String {
        format!(
            r#"{{"data":{{"type":"event","attributes":{{{attrs}"metric":{{"data":{{"type":"metric","attributes":{{"name":"Placed Order"}}}}}},"profile":{{"data":{{"type":"profile","attributes":{profile}}}}}}}}}}}"#
        )
    }

    fn err(r: Result<(), Invalid>) -> Invalid {
        r.unwrap_err()
    }

    #[test]
    fn a_valid_event_passes() {
        let b = event_body(
            r#""properties":{"OrderId":"1"},"value":9.5,"value_currency":"EUR","time":"2026-11-20T10:00:00Z","#,
            r#"{"email":"a@b.co"}"#,
        );
        assert_eq!(create_event(&b, NOW), Ok(()));
    }

    #[test]
    fn the_spec_example_passes() {
        let example = r#"{"data":{"type":"event","attributes":{"properties":{"OrderId":"1234","Items":["SKU-1","SKU-2"]},"time":"2026-07-20T12:00:00Z","value":49.5,"value_currency":"EUR","unique_id":"order-1234","metric":{"data":{"type":"metric","attributes":{"name":"Placed Order"}}},"profile":{"data":{"type":"profile","attributes":{"email":"sarah.mason@klaviyo-demo.com","phone_number":"+15005550006","external_id":"cust-42"}}}}}}"#;
        assert_eq!(create_event(example, NOW), Ok(()));
    }

    #[test]
    fn optional_members_may_be_null_and_the_profile_may_be_named_by_id() {
        let b = event_body(
            r#""properties":{},"time":null,"value":null,"value_currency":null,"unique_id":null,"backfill":null,"#,
            r#"{"email":"a@b.co","first_name":null,"location":null,"properties":null}"#,
        );
        assert_eq!(create_event(&b, NOW), Ok(()));
        let by_id = r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"M"}}},"profile":{"data":{"type":"profile","id":"01GDDKASAP8TKDDA2GRZDSVP4H","attributes":{}}}}}}"#;
        assert_eq!(create_event(by_id, NOW), Ok(()));
    }

    #[test]
    fn event_errors_point_at_the_field() {
        let ok_profile = r#"{"email":"a@b.co"}"#;
        let cases = [
            // Every case of the tree-based checks, ported.
            (event_body(r#""properties":{},"#, "{}"), "/data/attributes/profile/data/attributes"),
            (event_body(r#""properties":{},"#, r#"{"email":"x@"}"#), "/data/attributes/profile/data/attributes/email"),
            (event_body(r#""properties":[],"#, ok_profile), "/data/attributes/properties"),
            (event_body("", ok_profile), "/data/attributes/properties"),
            (event_body(r#""properties":{},"time":"1980-01-01T00:00:00Z","#, ok_profile), "/data/attributes/time"),
            (event_body(r#""properties":{},"value":"9","#, ok_profile), "/data/attributes/value"),
            (event_body(r#""properties":{},"value_currency":"EURO","#, ok_profile), "/data/attributes/value_currency"),
            (r#"{"data":{"type":"profile","attributes":{}}}"#.to_string(), "/data/type"),
            // The metric's `type` is required by the spec, and is missing first here.
            (r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"attributes":{"name":""}}}}}}"#.to_string(), "/data/attributes/metric/data/type"),
            (r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":""}}},"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}}}}"#.to_string(), "/data/attributes/metric/data/attributes/name"),
            ("[]".to_string(), ""),
            ("{}".to_string(), "/data"),
            // More types.
            (event_body(r#""properties":{},"time":1795669339,"#, ok_profile), "/data/attributes/time"),
            (event_body(r#""properties":{},"time":"2026-11-20T10:00:00","#, ok_profile), "/data/attributes/time"),
            (event_body(r#""properties":{},"unique_id":"","#, ok_profile), "/data/attributes/unique_id"),
            (event_body(r#""properties":{},"unique_id":7,"#, ok_profile), "/data/attributes/unique_id"),
            (event_body(r#""properties":{},"backfill":"yes","#, ok_profile), "/data/attributes/backfill"),
            (event_body(r#""properties":{},"#, r#"{"email":"a@b.co","phone_number":"555"}"#), "/data/attributes/profile/data/attributes/phone_number"),
            (event_body(r#""properties":{},"#, r#"{"email":7}"#), "/data/attributes/profile/data/attributes/email"),
            (event_body(r#""properties":{},"#, r#"{"email":""}"#), "/data/attributes/profile/data/attributes"),
            (event_body(r#""properties":{},"#, r#"{"email":"a@b.co","location":{"latitude":true}}"#), "/data/attributes/profile/data/attributes/location/latitude"),
            (event_body(r#""properties":{},"#, r#"{"email":"a@b.co","properties":[]}"#), "/data/attributes/profile/data/attributes/properties"),
            (event_body(r#""properties":{},"#, "[]"), "/data/attributes/profile/data/attributes"),
            (r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":5}}}}}}"#.to_string(), "/data/attributes/metric/data/attributes/name"),
            (r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"M"}}},"profile":{"data":{"type":"event","attributes":{}}}}}}"#.to_string(), "/data/attributes/profile/data/type"),
            (r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"M"}}}}}}"#.to_string(), "/data/attributes/profile"),
        ];
        for (body, pointer) in cases {
            assert_eq!(
                create_event(&body, NOW).unwrap_err().pointer,
                pointer,
                "{body}"
            );
        }
    }

    #[test]
    fn event_error_details_say_what_is_expected() {
        let ok_profile = r#"{"email":"a@b.co"}"#;
        let b = |attrs: &str| event_body(attrs, ok_profile);
        let detail = |body: &str| create_event(body, NOW).unwrap_err().detail;
        assert_eq!(
            detail(&b(r#""properties":{},"value":"9","#)),
            "must be a number"
        );
        assert_eq!(detail(&b("")), "is required");
        assert_eq!(detail(&b(r#""properties":[],"#)), "must be an object");
        assert_eq!(
            detail(r#"{"data":{"type":"profile","attributes":{}}}"#),
            r#"must be "event""#
        );
        assert_eq!(
            detail(r#"{"data":{"type":1,"attributes":{}}}"#),
            r#"must be "event""#
        );
        assert_eq!(
            detail(&b(r#""properties":{},"time":"2026-11-20T10:00:00","#)),
            "must be an ISO 8601 date-time with offset"
        );
        assert_eq!(
            detail(&b(r#""properties":{},"time":"1980-01-01T00:00:00Z","#)),
            "time must be between 1990 and one year from now"
        );
        assert_eq!(
            detail(&event_body(r#""properties":{},"#, "{}")),
            "needs at least one identifier: id, email, phone_number, external_id, anonymous_id, _kx"
        );
    }

    #[test]
    fn error_details_never_repeat_personal_data() {
        let secret = "sarah.secret@example.com";
        for body in [
            event_body(
                r#""properties":{},"#,
                &format!(r#"{{"email":"{secret}x@"}}"#),
            ),
            event_body(
                &format!(r#""properties":{{}},"value":"{secret}","#),
                r#"{"email":"a@b.co"}"#,
            ),
            event_body(
                &format!(r#""properties":{{}},"time":"{secret}","#),
                r#"{"email":"a@b.co"}"#,
            ),
            event_body(
                r#""properties":{},"#,
                &format!(r#"{{"phone_number":"{secret}"}}"#),
            ),
            event_body(
                r#""properties":{},"#,
                &format!(r#"{{"email":"a@b.co","first_name":["{secret}"]}}"#),
            ),
            format!(r#"{{"data":{{"type":"{secret}"}}}}"#),
        ] {
            let e = create_event(&body, NOW).unwrap_err();
            assert!(!e.detail.contains("secret"), "{e:?}");
        }
    }

    #[test]
    fn event_properties_keep_the_cores_limits() {
        let ok_profile = r#"{"email":"a@b.co"}"#;
        let keys = |n: usize| {
            (0..n)
                .map(|i| format!(r#""k{i}":{i}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let body = event_body(&format!(r#""properties":{{{}}},"#, keys(400)), ok_profile);
        assert_eq!(create_event(&body, NOW), Ok(()));
        let body = event_body(&format!(r#""properties":{{{}}},"#, keys(401)), ok_profile);
        assert_eq!(
            err(create_event(&body, NOW)),
            Invalid::new("/data/attributes/properties", "has more than 400 keys")
        );
        let long = "x".repeat(validate::MAX_STRING_BYTES + 1);
        let fits = "x".repeat(validate::MAX_STRING_BYTES);
        let body = event_body(
            &format!(
                r#""properties":{{"a":"{fits}","Items":[{{"No/te":"{fits}"}},{{"No/te":"{long}"}}]}},"#
            ),
            ok_profile,
        );
        assert_eq!(
            err(create_event(&body, NOW)),
            Invalid::new(
                "/data/attributes/properties/Items/1/No~1te",
                "is a string longer than 100 KB"
            )
        );
    }

    #[test]
    fn duplicate_keys_are_refused_with_the_pointer_of_the_duplicate() {
        // An allow-list that read the first name would see "Started Checkout"; Klaviyo
        // reads the last. Such a body is refused before any check reads it.
        let two_names = r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"Started Checkout","name":"Placed Order"}}},"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}}}}"#;
        assert_eq!(
            err(create_event(two_names, NOW)),
            Invalid::new(
                "/data/attributes/metric/data/attributes/name",
                "is a duplicate key"
            )
        );
        let cases = [
            (
                event_body(
                    r#""properties":{"Total":1,"Total":2},"#,
                    r#"{"email":"a@b.co"}"#,
                ),
                "/data/attributes/properties/Total",
            ),
            (
                event_body(
                    r#""properties":{"Items":[{"SKU":"a"},{"SKU":"b","SKU":"c"}]},"#,
                    r#"{"email":"a@b.co"}"#,
                ),
                "/data/attributes/properties/Items/1/SKU",
            ),
            (
                event_body(
                    r#""properties":{},"#,
                    r#"{"email":"a@b.co","email":"b@c.co"}"#,
                ),
                "/data/attributes/profile/data/attributes/email",
            ),
            (
                event_body(
                    r#""properties":{},"value":1,"value":2,"#,
                    r#"{"email":"a@b.co"}"#,
                ),
                "/data/attributes/value",
            ),
            (
                event_body(
                    r#""properties":{},"unknown":1,"unknown":1,"#,
                    r#"{"email":"a@b.co"}"#,
                ),
                "/data/attributes/unknown",
            ),
            (
                format!(
                    r#"{{"data":{{}},"data":{}}}"#,
                    &event_body(r#""properties":{},"#, r#"{"email":"a@b.co"}"#)[8..]
                ),
                "/data",
            ),
        ];
        for (body, pointer) in cases {
            assert_eq!(
                err(create_event(&body, NOW)),
                Invalid::new(pointer, "is a duplicate key"),
                "{body}"
            );
        }
    }

    #[test]
    fn hostile_json_is_refused_without_a_panic() {
        let with_props = |p: &str| event_body(&format!(r#""properties":{p},"#), EMAIL);
        // 10,000 nested arrays in the properties: serde_json stops at 128 levels.
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            err(create_event(&with_props(&deep), NOW)),
            Invalid::new("", "nests arrays and objects 128 or more levels deep")
        );
        // As deep as the parser allows still goes through every typed layer.
        // The body, data, attributes and properties objects are 4 levels: 123 arrays more.
        let arrays = |n: usize| format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert_eq!(create_event(&with_props(&arrays(123)), NOW), Ok(()));
        let too_deep = arrays(124);
        assert_eq!(err(create_event(&with_props(&too_deep), NOW)).pointer, "");
        assert_eq!(
            err(create_event(
                &event_body(r#""properties":{},"value":1e400,"#, EMAIL),
                NOW
            )),
            Invalid::new("/data/attributes/value", "is a number out of range")
        );
        for fine in [
            "0e2147483647",
            "0e-2147483647",
            "-0",
            "1e308",
            "123456789012345678901234567890",
        ] {
            let b = event_body(
                &format!(r#""properties":{{"n":{fine}}},"value":{fine},"#),
                EMAIL,
            );
            assert_eq!(create_event(&b, NOW), Ok(()), "{fine}");
        }
        for text in [
            with_props(r#"{"a":"\ud800"}"#),
            with_props(r#"{"\udfff":1}"#),
            event_body(r#""properties":{},"#, r#"{"email":"a\ud800@b.co"}"#),
        ] {
            assert_eq!(
                err(create_event(&text, NOW)),
                Invalid::new("", "the body is not valid JSON")
            );
        }
    }

    fn bulk_body(entries: &[String]) -> String {
        format!(
            r#"{{"data":{{"type":"event-bulk-create-job","attributes":{{"events-bulk-create":{{"data":[{}]}}}}}}}}"#,
            entries.join(",")
        )
    }

    fn bulk_entry(profile: &str, events: &[&str]) -> String {
        format!(
            r#"{{"type":"event-bulk-create","attributes":{{"profile":{{"data":{{"type":"profile","attributes":{profile}}}}},"events":{{"data":[{}]}}}}}}"#,
            events.join(",")
        )
    }

    const GOOD: &str = r#"{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"M"}}}}}"#;
    const BAD: &str = r#"{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"M"}}},"value":"x"}}"#;
    const EMAIL: &str = r#"{"email":"a@b.co"}"#;

    #[test]
    fn bulk_jobs_point_into_the_right_event() {
        let one = |events: &[&str]| bulk_body(&[bulk_entry(EMAIL, events)]);
        assert_eq!(bulk_create_events(&one(&[GOOD, GOOD]), NOW), Ok(()));
        assert_eq!(
            err(bulk_create_events(&one(&[GOOD, BAD]), NOW)).pointer,
            "/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/value"
        );
        let two = bulk_body(&[bulk_entry(EMAIL, &[GOOD]), bulk_entry("{}", &[GOOD])]);
        assert_eq!(
            err(bulk_create_events(&two, NOW)).pointer,
            "/data/attributes/events-bulk-create/data/1/attributes/profile/data/attributes"
        );
        let bad_time = GOOD.replace(
            r#""properties":{}"#,
            r#""properties":{},"time":"2099-01-01T00:00:00Z""#,
        );
        assert_eq!(
            err(bulk_create_events(&one(&[GOOD, GOOD, &bad_time]), NOW)).pointer,
            "/data/attributes/events-bulk-create/data/0/attributes/events/data/2/attributes/time"
        );
        let wrong_type = GOOD.replace(r#"{"type":"event""#, r#"{"type":"events""#);
        assert_eq!(
            err(bulk_create_events(&one(&[&wrong_type]), NOW)).pointer,
            "/data/attributes/events-bulk-create/data/0/attributes/events/data/0/type"
        );
        let job_type = one(&[GOOD]).replace("event-bulk-create-job", "event-bulk-create");
        assert_eq!(
            err(bulk_create_events(&job_type, NOW)).pointer,
            "/data/type"
        );
    }

    #[test]
    fn bulk_jobs_hold_1_to_1000_profiles_and_at_most_1000_events() {
        assert_eq!(
            err(bulk_create_events(&bulk_body(&[]), NOW)),
            Invalid::new(
                "/data/attributes/events-bulk-create/data",
                "must hold 1 to 1000 profiles"
            )
        );
        let entry = bulk_entry(EMAIL, &[GOOD]);
        let full = bulk_body(&vec![entry.clone(); 1000]);
        assert_eq!(bulk_create_events(&full, NOW), Ok(()));
        let over = bulk_body(&vec![entry; 1001]);
        assert_eq!(
            err(bulk_create_events(&over, NOW)).pointer,
            "/data/attributes/events-bulk-create/data"
        );
        // 600 + 401 events: the 1001st is the second profile's event 400.
        let many = bulk_body(&[
            bulk_entry(EMAIL, &vec![GOOD; 600]),
            bulk_entry(EMAIL, &vec![GOOD; 401]),
        ]);
        assert_eq!(
            err(bulk_create_events(&many, NOW)),
            Invalid::new(
                "/data/attributes/events-bulk-create/data/1/attributes/events/data/400",
                "is past Klaviyo's limit of 1000 events per job"
            )
        );
        let exactly = bulk_body(&[
            bulk_entry(EMAIL, &vec![GOOD; 600]),
            bulk_entry(EMAIL, &vec![GOOD; 400]),
        ]);
        assert_eq!(bulk_create_events(&exactly, NOW), Ok(()));
    }

    fn subscribe_body(attrs: &str) -> String {
        format!(
            r#"{{"data":{{"type":"profile-subscription-bulk-create-job","attributes":{{"profiles":{{"data":[{{"type":"profile","attributes":{attrs}}}]}}}}}}}}"#
        )
    }

    #[test]
    fn profile_import_and_bulk_subscribe() {
        let import = |attrs: &str| {
            profile_import(&format!(
                r#"{{"data":{{"type":"profile","attributes":{attrs}}}}}"#
            ))
        };
        assert_eq!(import(r#"{"external_id":"c-1"}"#), Ok(()));
        assert_eq!(
            err(import(r#"{"first_name":"A"}"#)),
            Invalid::new(
                "/data/attributes",
                "needs at least one identifier: id, email, phone_number, external_id, _kx"
            )
        );
        // ProfileUpsertQuery has no anonymous_id.
        assert_eq!(
            err(import(r#"{"anonymous_id":"a"}"#)).pointer,
            "/data/attributes"
        );
        assert_eq!(
            err(import(r#"{"email":"a@"}"#)).pointer,
            "/data/attributes/email"
        );
        assert_eq!(
            err(import(r#"{"email":"a@b.co","location":{"city":1}}"#)).pointer,
            "/data/attributes/location/city"
        );
        assert_eq!(
            profile_import(
                r#"{"data":{"type":"profile","id":"01GDDKASAP8TKDDA2GRZDSVP4H","attributes":{"first_name":"A"}}}"#
            ),
            Ok(())
        );
        assert_eq!(
            err(profile_import(
                r#"{"data":{"type":"event","attributes":{}}}"#
            ))
            .pointer,
            "/data/type"
        );

        assert_eq!(
            bulk_subscribe(&subscribe_body(
                r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}"#
            )),
            Ok(())
        );
        assert_eq!(
            err(bulk_subscribe(&subscribe_body(r#"{"email":"a@b.co"}"#))),
            Invalid::new(
                "/data/attributes/profiles/data/0/attributes/subscriptions",
                "is required"
            )
        );
        assert_eq!(
            err(bulk_subscribe(&subscribe_body(
                r#"{"phone_number":"555","subscriptions":{}}"#
            )))
            .pointer,
            "/data/attributes/profiles/data/0/attributes/phone_number"
        );
        assert_eq!(
            err(bulk_subscribe(&subscribe_body(
                r#"{"external_id":"x","subscriptions":{}}"#
            ))),
            Invalid::new(
                "/data/attributes/profiles/data/0/attributes",
                "needs at least one identifier: email, phone_number"
            )
        );
        assert_eq!(
            err(bulk_subscribe(&subscribe_body(
                r#"{"email":"a@b.co","subscriptions":{"sms":[]}}"#
            )))
            .pointer,
            "/data/attributes/profiles/data/0/attributes/subscriptions/sms"
        );
        let none = r#"{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":[]}}}}"#;
        assert_eq!(
            err(bulk_subscribe(none)),
            Invalid::new(
                "/data/attributes/profiles/data",
                "must hold 1 to 1000 profiles"
            )
        );
        let with_list = r#"{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"a@b.co","subscriptions":{}}}]}},"relationships":{"list":{"data":{"type":"lists","id":"L1"}}}}}"#;
        assert_eq!(
            err(bulk_subscribe(with_list)).pointer,
            "/data/relationships/list/data/type"
        );
        assert_eq!(
            bulk_subscribe(&with_list.replace(r#""lists""#, r#""list""#)),
            Ok(())
        );
    }

    fn metrics(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn forbidden(r: Result<(), Refusal>) -> Invalid {
        match r {
            Err(Refusal::Forbidden(e)) => e,
            other => panic!("not forbidden: {other:?}"),
        }
    }

    #[test]
    fn the_browser_path_takes_an_allowed_metric_with_identifiers_only() {
        let allowed = metrics(&["Placed Order", "Viewed Product"]);
        let b = event_body(
            r#""properties":{"OrderId":"1","Nested":{"first_name":"x"}},"time":"2026-11-20T10:00:00Z","value":9.5,"value_currency":"EUR","unique_id":"o-1","#,
            r#"{"email":"a@b.co","phone_number":"+15005550006","external_id":"c-1","anonymous_id":"an-1","_kx":"kx"}"#,
        );
        assert_eq!(browser_event(&b, NOW, &allowed), Ok(()));
    }

    #[test]
    fn the_browser_path_refuses_an_unlisted_metric() {
        let b = event_body(r#""properties":{},"#, EMAIL);
        for allowed in [
            metrics(&[]),
            metrics(&["Viewed Product"]),
            metrics(&["placed order"]),
            metrics(&["Placed Order "]),
        ] {
            assert_eq!(
                forbidden(browser_event(&b, NOW, &allowed)),
                Invalid::new(
                    "/data/attributes/metric/data/attributes/name",
                    "is not a metric pages may send (BROWSER_SERVER_METRICS)"
                )
            );
        }
    }

    #[test]
    fn the_browser_path_refuses_a_duplicate_metric_name_as_invalid() {
        let allowed = metrics(&["Started Checkout"]);
        let two_names = r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"Started Checkout","name":"Placed Order"}}},"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}}}}"#;
        assert_eq!(
            browser_event(two_names, NOW, &allowed),
            Err(Refusal::Invalid(Invalid::new(
                "/data/attributes/metric/data/attributes/name",
                "is a duplicate key"
            )))
        );
    }

    #[test]
    fn the_browser_path_refuses_what_a_client_event_could_not_carry() {
        let allowed = metrics(&["Placed Order"]);
        let attrs_at = "/data/attributes/profile/data/attributes";
        let cases = [
            (
                event_body(
                    r#""properties":{},"#,
                    r#"{"email":"a@b.co","first_name":"A"}"#,
                ),
                format!("{attrs_at}/first_name"),
            ),
            (
                event_body(
                    r#""properties":{},"#,
                    r#"{"email":"a@b.co","first_name":null}"#,
                ),
                format!("{attrs_at}/first_name"),
            ),
            (
                event_body(
                    r#""properties":{},"#,
                    r#"{"email":"a@b.co","properties":{"vip":true}}"#,
                ),
                format!("{attrs_at}/properties"),
            ),
            (
                event_body(
                    r#""properties":{},"#,
                    r#"{"email":"a@b.co","location":{"city":"X"}}"#,
                ),
                format!("{attrs_at}/location"),
            ),
            (
                event_body(
                    r#""properties":{},"#,
                    r#"{"email":"a@b.co","organization":"O"}"#,
                ),
                format!("{attrs_at}/organization"),
            ),
            (
                event_body(r#""properties":{},"#, r#"{"email":"a@b.co","meta":{}}"#),
                format!("{attrs_at}/meta"),
            ),
            (
                event_body(r#""properties":{},"backfill":true,"#, EMAIL),
                "/data/attributes/backfill".to_string(),
            ),
            (
                event_body(r#""properties":{},"backfill":false,"#, EMAIL),
                "/data/attributes/backfill".to_string(),
            ),
            (
                event_body(r#""properties":{},"extra":1,"#, EMAIL),
                "/data/attributes/extra".to_string(),
            ),
            (
                event_body(r#""properties":{},"#, EMAIL).replace(
                    r#""type":"profile","#,
                    r#""type":"profile","id":"01GDDKASAP8TKDDA2GRZDSVP4H","#,
                ),
                "/data/attributes/profile/data/id".to_string(),
            ),
            (
                event_body(r#""properties":{},"#, EMAIL).replace(
                    r#""type":"profile","#,
                    r#""type":"profile","meta":{"patch_properties":{}},"#,
                ),
                "/data/attributes/profile/data/meta".to_string(),
            ),
            (
                event_body(r#""properties":{},"#, EMAIL).replace(
                    r#"{"name":"Placed Order"}"#,
                    r#"{"name":"Placed Order","service":"shop"}"#,
                ),
                "/data/attributes/metric/data/attributes/service".to_string(),
            ),
            (
                event_body(r#""properties":{},"#, EMAIL)
                    .replace(r#""type":"metric","#, r#""type":"metric","id":"m","#),
                "/data/attributes/metric/data/id".to_string(),
            ),
            (
                event_body(r#""properties":{},"#, EMAIL)
                    .replace(r#""profile":{"data""#, r#""profile":{"links":{},"data""#),
                "/data/attributes/profile/links".to_string(),
            ),
            (
                event_body(r#""properties":{},"#, EMAIL).replace(
                    r#"{"data":{"type":"event","#,
                    r#"{"data":{"id":"e","type":"event","#,
                ),
                "/data/id".to_string(),
            ),
            (
                event_body(r#""properties":{},"#, EMAIL).replace(
                    r#"{"data":{"type":"event","#,
                    r#"{"meta":{},"data":{"type":"event","#,
                ),
                "/meta".to_string(),
            ),
            (
                event_body(r#""properties":{},"#, r#"{"email":"a@b.co","a/b":1}"#),
                format!("{attrs_at}/a~1b"),
            ),
        ];
        for (body, pointer) in cases {
            let e = forbidden(browser_event(&body, NOW, &allowed));
            assert_eq!(e.pointer, pointer, "{body}");
            assert_eq!(e.detail, BROWSER_ONLY);
            // Signed, the same body is fine (Klaviyo judges unknown members there).
            assert_eq!(create_event(&body, NOW), Ok(()), "{body}");
        }
    }

    #[test]
    fn the_browser_path_refuses_invalid_events_as_invalid() {
        let allowed = metrics(&["Placed Order"]);
        for body in [
            event_body(r#""properties":{},"#, r#"{"email":"x@"}"#),
            event_body(r#""properties":{},"#, r#"{"first_name":"A"}"#),
            event_body("", EMAIL),
            "{".to_string(),
            "[]".to_string(),
        ] {
            assert!(
                matches!(
                    browser_event(&body, NOW, &allowed),
                    Err(Refusal::Invalid(_))
                ),
                "{body}"
            );
        }
    }
}
