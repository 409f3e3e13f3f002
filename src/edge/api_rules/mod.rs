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
use super::bounded::{AnyObject, Capped, Checked, Properties};
use crate::core::{text, time, validate};

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
tag!(Subscribed, "SUBSCRIBED");

/// An optional member that the spec does not make nullable (use with
/// `#[serde(default)]`): left out it is none, but `null` is refused with its pointer, as
/// Klaviyo refuses it; a queued body would otherwise end as a dead letter.
struct NotNull<T>(#[allow(dead_code)] Option<T>);

impl<T> Default for NotNull<T> {
    fn default() -> Self {
        NotNull(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NotNull<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|v| NotNull(Some(v)))
    }
}

/// A string member that must be one of a few values (an enum of the spec's), read in the
/// body's order; the message names them all.
macro_rules! one_of {
    ($name:ident, $msg:literal, [$($lit:literal),+]) => {
        #[doc = concat!("One of ", $msg, ".")]
        struct $name;

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s: Cow<'de, str> = Deserialize::deserialize(d)?;
                match s.as_ref() {
                    $($lit)|+ => Ok($name),
                    _ => Err(serde::de::Error::custom(concat!("must be ", $msg))),
                }
            }
        }
    };
}

one_of!(PushPlatform, r#""android" or "ios""#, ["android", "ios"]);
one_of!(PushVendor, r#""apns" or "fcm""#, ["apns", "fcm"]);
one_of!(
    PushEnablement,
    r#""AUTHORIZED", "DENIED", "NOT_DETERMINED", "PROVISIONAL" or "UNAUTHORIZED""#,
    [
        "AUTHORIZED",
        "DENIED",
        "NOT_DETERMINED",
        "PROVISIONAL",
        "UNAUTHORIZED"
    ]
);
one_of!(
    PushBackground,
    r#""AVAILABLE", "DENIED" or "RESTRICTED""#,
    ["AVAILABLE", "DENIED", "RESTRICTED"]
);

// The shapes below follow the spec's schemas. Fields that no rule reads are typed all
// the same, for the pointer a wrong type gets (hence `allow(dead_code)`), and those of
// list elements are `Checked`: read, then dropped, as list elements are kept. Free-form
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
    service: Option<Checked<String>>,
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
    first_name: Option<Checked<String>>,
    last_name: Option<Checked<String>>,
    organization: Option<Checked<String>>,
    locale: Option<Checked<String>>,
    title: Option<Checked<String>>,
    image: Option<Checked<String>>,
    location: Option<Checked<Location>>,
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

mod browser_path;
mod subscriptions;

#[cfg(test)]
use browser_path::BROWSER_ONLY;
pub use browser_path::{browser_event, Refusal};
pub use subscriptions::{bulk_subscribe, bulk_subscribe_at};

#[cfg(test)]
mod tests;
