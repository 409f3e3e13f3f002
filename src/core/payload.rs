//! The JSON:API request bodies, exactly as Klaviyo's OpenAPI (revision 2026-07-15)
//! describes them, written as text from parts that are already checked JSON. Builders
//! only: the inputs were validated when the call was made.

use super::jsontext as jt;
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
    open_resource("event", out);
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
    open_resource("event-bulk-create", out);
    out.push_str(r#""profile":"#);
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

/// `POST /client/subscriptions` (schema OnsiteSubscriptionCreateQuery): consent for
/// marketing on each channel, to one list. `profile` is an object of identifiers
/// (never with `subscriptions` of its own: the channels' consent is added to it).
pub fn client_subscription(
    list_id: &str,
    profile: &str,
    channels: &[&str],
    custom_source: Option<&str>,
) -> String {
    let mut out = String::with_capacity(profile.len() + 320);
    open_resource("subscription", &mut out);
    if let Some(src) = custom_source {
        out.push_str(r#""custom_source":"#);
        jt::write_str(src, &mut out);
        out.push(',');
    }
    out.push_str(r#""profile":{"data":{"type":"profile","attributes":"#);
    // The identifiers, then `subscriptions`: the object is reopened at its brace.
    let members = profile.strip_suffix("}").unwrap_or("{");
    out.push_str(members);
    if members.len() > 1 {
        out.push(',');
    }
    out.push_str(r#""subscriptions":{"#);
    for (i, ch) in channels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        jt::write_str(ch, &mut out);
        out.push_str(r#":{"marketing":{"consent":"SUBSCRIBED"}}"#);
    }
    out.push_str("}}}}");
    close_resource("list", "list", list_id, &mut out);
    out
}

/// `POST /client/back-in-stock-subscriptions` (schema ClientBISSubscriptionCreateQuery).
pub fn client_back_in_stock(variant_id: &str, profile: &str, channels: &[&str]) -> String {
    let mut out = String::with_capacity(profile.len() + 320);
    open_resource("back-in-stock-subscription", &mut out);
    out.push_str(r#""channels":["#);
    for (i, c) in channels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(if *c == "sms" {
            r#""SMS""#
        } else {
            r#""EMAIL""#
        });
    }
    out.push_str(r#"],"profile":"#);
    profile_data(profile, &mut out);
    close_resource("variant", "catalog-variant", variant_id, &mut out);
    out
}

/// `{"data":{"type":kind,"attributes":{`: how every request body starts; its
/// members follow.
fn open_resource(kind: &str, out: &mut String) {
    out.push_str(r#"{"data":{"type":""#);
    out.push_str(kind);
    out.push_str(r#"","attributes":{"#);
}

/// Closes what [`open_resource`] opened, with one relationship:
/// `},"relationships":{rel:{"data":{"type":kind,"id":id}}}}}`.
fn close_resource(rel: &str, kind: &str, id: &str, out: &mut String) {
    out.push_str(r#"},"relationships":{""#);
    out.push_str(rel);
    out.push_str(r#"":{"data":{"type":""#);
    out.push_str(kind);
    out.push_str(r#"","id":"#);
    jt::write_str(id, out);
    out.push_str("}}}}}");
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
