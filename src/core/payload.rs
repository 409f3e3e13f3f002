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
mod tests {
    use super::*;

    fn ev(unique_id: &str) -> Event<'_> {
        Event {
            time_s: 1_795_669_339,
            unique_id,
            value: "9.5",
            currency: "USD",
            metric: r#""Viewed Product""#,
            properties: r#"{"ProductID":"p1"}"#,
        }
    }

    #[test]
    fn client_event_has_the_exact_jsonapi_shape() {
        let mut out = String::new();
        client_event(&ev(r#""u-1""#), r#"{"anonymous_id":"a-1"}"#, &mut out);
        assert_eq!(
            out,
            r#"{"data":{"type":"event","attributes":{"properties":{"ProductID":"p1"},"time":"2026-11-26T05:02:19Z","value":9.5,"value_currency":"USD","unique_id":"u-1","metric":{"data":{"type":"metric","attributes":{"name":"Viewed Product"}}},"profile":{"data":{"type":"profile","attributes":{"anonymous_id":"a-1"}}}}}}"#
        );
        assert!(jt::check(&out).is_ok());
    }

    #[test]
    fn optional_value_and_currency_are_left_out() {
        let mut e = ev(r#""u-1""#);
        e.value = "";
        e.currency = "";
        let mut out = String::new();
        client_event(&e, "{}", &mut out);
        assert!(!out.contains("value"));
        assert!(jt::check(&out).is_ok());
    }

    #[test]
    fn bulk_body_shares_one_profile() {
        let mut out = String::new();
        bulk_client_events(
            r#"{"email":"a@b.co"}"#,
            [ev(r#""u-1""#), ev(r#""u-2""#)].into_iter(),
            &mut out,
        );
        let v = jt::check(&out).unwrap();
        let attrs = jt::get(jt::get(&v, "data").unwrap(), "attributes").unwrap();
        assert_eq!(
            jt::get(attrs, "profile"),
            Some(r#"{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}"#)
        );
        let events: Vec<&str> =
            jt::items(jt::get(jt::get(attrs, "events").unwrap(), "data").unwrap()).collect();
        assert_eq!(events.len(), 2);
        assert_eq!(jt::get(events[1], "type"), Some(r#""event""#));
        // The per-event allowance used to size batches covers the wrapper and keys.
        let one = {
            let mut o = String::new();
            bulk_client_events("{}", [ev(r#""u""#)].into_iter(), &mut o);
            o.len()
        };
        let two = out.len() - r#"{"email":"a@b.co"}"#.len() + 2;
        let e = ev(r#""u""#);
        let fields = e.unique_id.len()
            + e.value.len()
            + e.currency.len()
            + e.metric.len()
            + e.properties.len();
        assert!(two - one - fields <= EVENT_OVERHEAD);
    }

    #[test]
    fn subscription_and_back_in_stock_shapes() {
        let sub = client_subscription("Lst123", r#"{"email":"a@b.co"}"#, &["email", "sms"], None);
        assert_eq!(
            sub,
            r#"{"data":{"type":"subscription","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}},"sms":{"marketing":{"consent":"SUBSCRIBED"}}}}}}},"relationships":{"list":{"data":{"type":"list","id":"Lst123"}}}}}"#
        );
        let bis = client_back_in_stock(
            "$shopify:::$default:::42",
            r#"{"email":"a@b.co"}"#,
            &["email"],
        );
        assert_eq!(
            bis,
            r#"{"data":{"type":"back-in-stock-subscription","attributes":{"channels":["EMAIL"],"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}},"relationships":{"variant":{"data":{"type":"catalog-variant","id":"$shopify:::$default:::42"}}}}}"#
        );
        let src = client_subscription("L", "{}", &["email"], Some("Footer \"form\""));
        assert!(src.contains(r#""custom_source":"Footer \"form\"""#));
        assert!(jt::check(&src).is_ok());
    }
}
