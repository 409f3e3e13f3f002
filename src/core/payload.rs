//! The JSON:API request bodies, exactly as Klaviyo's OpenAPI (revision 2026-07-15)
//! describes them, written as text from parts that are already checked JSON. Builders
//! only: the inputs were validated when the call was made.

use super::jsontext::{self as jt, ObjWriter};
use super::time;

/// One event as the queue keeps it: every field fixed at call time, the body built
/// only when it is sent. Text fields are raw JSON (`unique_id` and `metric` are string
/// literals with their quotes, `properties` an object); `value` and `currency` are
/// empty when not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub time_s: i64,
    pub unique_id: &'a str,
    pub value: &'a str,
    pub currency: &'a str,
    pub metric: &'a str,
    pub properties: &'a str,
}

/// The members of an event's `attributes`, without braces (a bulk request adds
/// nothing, a single one adds the profile).
fn event_members(e: &Event, out: &mut String) {
    out.push_str(r#""properties":"#);
    out.push_str(e.properties);
    out.push_str(r#","time":""#);
    time::push_iso(out, e.time_s);
    out.push('"');
    if !e.value.is_empty() {
        out.push_str(r#","value":"#);
        out.push_str(e.value);
    }
    if !e.currency.is_empty() {
        out.push_str(r#","value_currency":""#);
        out.push_str(e.currency);
        out.push('"');
    }
    out.push_str(r#","unique_id":"#);
    out.push_str(e.unique_id);
    out.push_str(r#","metric":{"data":{"type":"metric","attributes":{"name":"#);
    out.push_str(e.metric);
    out.push_str("}}}");
}

fn profile_data(attributes: &str, out: &mut String) {
    out.push_str(r#"{"data":{"type":"profile","attributes":"#);
    out.push_str(attributes);
    out.push_str("}}");
}

/// `POST /client/events` (schema EventCreateQueryV2).
pub fn client_event(e: &Event, profile: &str, out: &mut String) {
    out.push_str(r#"{"data":{"type":"event","attributes":{"#);
    event_members(e, out);
    out.push_str(r#","profile":"#);
    profile_data(profile, out);
    out.push_str("}}}");
}

/// `POST /client/event-bulk-create` (schema EventsBulkCreateQuery): one profile and its events.
pub fn bulk_client_events<'a>(
    profile: &str,
    events: impl Iterator<Item = Event<'a>>,
    out: &mut String,
) {
    out.push_str(r#"{"data":{"type":"event-bulk-create","attributes":{"profile":"#);
    profile_data(profile, out);
    out.push_str(r#","events":{"data":["#);
    for (i, e) in events.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"type":"event","attributes":{"#);
        event_members(&e, out);
        out.push_str("}}");
    }
    out.push_str("]}}}}");
}

/// Bytes a bulk request adds per event beyond its own fields (wrapper, keys, time,
/// comma): 177 with a value and a currency. An upper bound, so a batch sized with it
/// never outgrows its budget (a keepalive body over budget is not sent at all).
pub const EVENT_OVERHEAD: usize = 192;

/// `POST /client/profiles` (schema OnsiteProfileCreateQuery).
pub fn client_profile(attributes: &str) -> String {
    let mut out = String::with_capacity(attributes.len() + 48);
    profile_data(attributes, &mut out);
    out
}

/// `{"data":{"type":kind,"id":id}}`, a relationship.
fn relationship(kind: &str, id: &str) -> String {
    let mut w = ObjWriter::new();
    w.raw("type", &jt::quote(kind)).raw("id", &jt::quote(id));
    let mut d = ObjWriter::new();
    d.raw("data", &w.finish());
    d.finish()
}

/// `POST /client/subscriptions` (schema OnsiteSubscriptionCreateQuery): consent for
/// marketing on each channel, to one list. `profile` is an object of identifiers.
pub fn client_subscription(
    list_id: &str,
    profile: &str,
    channels: &[&str],
    custom_source: Option<&str>,
) -> String {
    let mut subs = ObjWriter::new();
    for ch in channels {
        subs.raw(ch, r#"{"marketing":{"consent":"SUBSCRIBED"}}"#);
    }
    let profile = jt::with(profile, "subscriptions", Some(&subs.finish()));
    let mut attrs = ObjWriter::new();
    if let Some(src) = custom_source {
        attrs.raw("custom_source", &jt::quote(src));
    }
    let mut p = String::new();
    profile_data(&profile, &mut p);
    attrs.raw("profile", &p);
    resource(
        "subscription",
        &attrs.finish(),
        "list",
        &relationship("list", list_id),
    )
}

/// `POST /client/back-in-stock-subscriptions` (schema ClientBISSubscriptionCreateQuery).
pub fn client_back_in_stock(variant_id: &str, profile: &str, channels: &[&str]) -> String {
    let mut chans = String::from("[");
    for (i, c) in channels.iter().enumerate() {
        if i > 0 {
            chans.push(',');
        }
        chans.push_str(if *c == "sms" {
            r#""SMS""#
        } else {
            r#""EMAIL""#
        });
    }
    chans.push(']');
    let mut p = String::new();
    profile_data(profile, &mut p);
    let mut attrs = ObjWriter::new();
    attrs.raw("channels", &chans).raw("profile", &p);
    resource(
        "back-in-stock-subscription",
        &attrs.finish(),
        "variant",
        &relationship("catalog-variant", variant_id),
    )
}

/// `{"data":{"type":kind,"attributes":...,"relationships":{rel: ...}}}`
fn resource(kind: &str, attributes: &str, rel: &str, related: &str) -> String {
    let mut rels = ObjWriter::new();
    rels.raw(rel, related);
    let mut r = ObjWriter::new();
    r.raw("type", &jt::quote(kind))
        .raw("attributes", attributes)
        .raw("relationships", &rels.finish());
    let mut d = ObjWriter::new();
    d.raw("data", &r.finish());
    d.finish()
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
