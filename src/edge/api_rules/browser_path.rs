//! The unsigned browser path of `/api/events`: a page of an allowed origin may send an
//! event whose metric is in `BROWSER_SERVER_METRICS`, carrying no more than a `/client`
//! event could (its metric name read alone first, then identifiers only).

use super::*;

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

pub(super) const BROWSER_ONLY: &str =
    "may not be sent unsigned from a page: it carries only event \
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
/// `value_currency`, `unique_id`, the metric name, and one profile identifier (`email`,
/// `phone_number`, `external_id`, `anonymous_id` or `_kx`: [`one_person`]).
/// No other profile attribute
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
        Ok(_) => one_person(&body.data.attributes.profile.data.attributes),
        Err(e) if e.detail == bodies::UNKNOWN_MEMBER => {
            Err(Refusal::Forbidden(Invalid::new(&e.pointer, BROWSER_ONLY)))
        }
        Err(e) => Err(Refusal::Invalid(e)),
    }
}

/// The identifiers. With the private key, Klaviyo joins those one event carries into one
/// profile (a `/client` event cannot change an existing profile's identifiers): from a
/// forged `Origin`, `{email: victim, phone_number: attacker}` would put the attacker's
/// phone on the victim's profile, and its texts. An `anonymous_id` joins as well, across
/// two calls: `{email: victim, anonymous_id: z}`, then `{anonymous_id: z, phone_number:
/// attacker}`.
const PERSON: [&str; 5] = [
    "email",
    "phone_number",
    "external_id",
    "anonymous_id",
    "_kx",
];

pub(super) const ONE_PERSON: &str = "may not be sent unsigned from a page beside another of email, phone_number, external_id, anonymous_id and _kx: a page names the shopper by one of them; joining them takes the signed path";

/// At most one of [`PERSON`], else 403 naming the second.
fn one_person(profile: &ProfileAttributes) -> Result<(), Refusal> {
    let mut named = PERSON.iter().filter(|k| profile.identifier(k).is_some());
    match (named.next(), named.next()) {
        (Some(_), Some(second)) => Err(Refusal::Forbidden(Invalid::new(
            &format!("/data/attributes/profile/data/attributes/{second}"),
            ONE_PERSON,
        ))),
        _ => Ok(()),
    }
}
