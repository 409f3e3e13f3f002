//! The JSON:API request bodies, exactly as Klaviyo's OpenAPI (revision 2026-07-15)
//! describes them. Builders only: inputs are already validated.

use super::json::Json;

/// `{"type": kind, "attributes": attributes}`
fn resource(kind: &str, attributes: Json) -> Json {
    Json::obj()
        .with("type", Json::str(kind))
        .with("attributes", attributes)
}

fn data(v: Json) -> Json {
    Json::obj().with("data", v)
}

/// `{"data":{"type":"profile","attributes":...}}`, the profile relationship of an event.
pub fn profile_data(profile: Json) -> Json {
    data(resource("profile", profile))
}

/// The attributes of one event, without its profile (events of one profile share it
/// in a bulk request).
pub struct EventParts<'a> {
    pub metric: &'a str,
    pub properties: Json,
    pub time: String,
    pub value: Option<String>,
    pub value_currency: Option<String>,
    pub unique_id: &'a str,
}

pub fn event_attributes(e: EventParts) -> Json {
    let mut a = Json::obj()
        .with("properties", e.properties)
        .with("time", Json::Str(e.time));
    if let Some(v) = e.value {
        a.set("value", Json::Num(v));
    }
    if let Some(c) = e.value_currency {
        a.set("value_currency", Json::Str(c));
    }
    a.with("unique_id", Json::str(e.unique_id)).with(
        "metric",
        data(resource(
            "metric",
            Json::obj().with("name", Json::str(e.metric)),
        )),
    )
}

/// `POST /client/events` (schema EventCreateQueryV2). `event` and `profile` are JSON text
/// as stored in the queue.
pub fn client_event(event: &str, profile: &str, out: &mut String) {
    out.push_str(r#"{"data":{"type":"event","attributes":"#);
    splice_profile(event, profile, out);
    out.push_str("}}");
}

/// Writes the event attributes object with `"profile":{...}` added as its last key.
fn splice_profile(event: &str, profile: &str, out: &mut String) {
    // `event` is an object we wrote ourselves, so it ends with `}`.
    let open = event.strip_suffix('}').unwrap_or(event);
    out.push_str(open);
    if open.len() > 1 {
        out.push(',');
    }
    out.push_str(r#""profile":{"data":{"type":"profile","attributes":"#);
    out.push_str(profile);
    out.push_str("}}}");
}

/// `POST /client/event-bulk-create` (schema EventsBulkCreateQuery): one profile and its events.
pub fn bulk_client_events<'a>(
    profile: &str,
    events: impl Iterator<Item = &'a str>,
    out: &mut String,
) {
    out.push_str(r#"{"data":{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":"#);
    out.push_str(profile);
    out.push_str(r#"}},"events":{"data":["#);
    for (i, e) in events.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"type":"event","attributes":"#);
        out.push_str(e);
        out.push('}');
    }
    out.push_str("]}}}}");
}

/// `POST /client/profiles` (schema OnsiteProfileCreateQuery).
pub fn client_profile(profile: Json) -> Json {
    profile_data(profile)
}

/// `POST /client/subscriptions` (schema OnsiteSubscriptionCreateQuery): consent for
/// marketing on each channel, to one list.
pub fn client_subscription(
    list_id: &str,
    mut profile: Json,
    channels: &[&str],
    custom_source: Option<&str>,
) -> Json {
    let mut subs = Json::obj();
    for ch in channels {
        let marketing = Json::obj().with("consent", Json::str("SUBSCRIBED"));
        subs.set(ch, Json::obj().with("marketing", marketing));
    }
    profile.set("subscriptions", subs);
    let mut attrs = Json::obj();
    if let Some(src) = custom_source {
        attrs.set("custom_source", Json::str(src));
    }
    attrs.set("profile", profile_data(profile));
    let list = data(
        Json::obj()
            .with("type", Json::str("list"))
            .with("id", Json::str(list_id)),
    );
    data(resource("subscription", attrs).with("relationships", Json::obj().with("list", list)))
}

/// `POST /client/back-in-stock-subscriptions` (schema ClientBISSubscriptionCreateQuery).
pub fn client_back_in_stock(variant_id: &str, profile: Json, channels: &[&str]) -> Json {
    let chans = channels
        .iter()
        .map(|c| Json::Str(c.to_ascii_uppercase()))
        .collect();
    let attrs = Json::obj()
        .with("channels", Json::Arr(chans))
        .with("profile", profile_data(profile));
    let variant = data(
        Json::obj()
            .with("type", Json::str("catalog-variant"))
            .with("id", Json::str(variant_id)),
    );
    data(
        resource("back-in-stock-subscription", attrs)
            .with("relationships", Json::obj().with("variant", variant)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::parse;

    fn parts(unique_id: &str) -> EventParts<'_> {
        EventParts {
            metric: "Viewed Product",
            properties: parse(r#"{"ProductID":"p1"}"#).unwrap(),
            time: "2026-11-26T05:02:19Z".into(),
            value: Some("9.5".into()),
            value_currency: Some("USD".into()),
            unique_id,
        }
    }

    #[test]
    fn client_event_has_the_exact_jsonapi_shape() {
        let ev = event_attributes(parts("u-1")).to_text();
        let mut out = String::new();
        client_event(&ev, r#"{"anonymous_id":"a-1"}"#, &mut out);
        assert_eq!(
            out,
            r#"{"data":{"type":"event","attributes":{"properties":{"ProductID":"p1"},"time":"2026-11-26T05:02:19Z","value":9.5,"value_currency":"USD","unique_id":"u-1","metric":{"data":{"type":"metric","attributes":{"name":"Viewed Product"}}},"profile":{"data":{"type":"profile","attributes":{"anonymous_id":"a-1"}}}}}}"#
        );
        assert!(parse(&out).is_ok());
    }

    #[test]
    fn bulk_body_shares_one_profile() {
        let a = event_attributes(parts("u-1")).to_text();
        let b = event_attributes(parts("u-2")).to_text();
        let mut out = String::new();
        bulk_client_events(
            r#"{"email":"a@b.co"}"#,
            [a.as_str(), b.as_str()].into_iter(),
            &mut out,
        );
        let v = parse(&out).unwrap();
        let attrs = v.get("data").unwrap().get("attributes").unwrap();
        assert_eq!(
            attrs.get("profile").unwrap().to_text(),
            r#"{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}"#
        );
        let Some(Json::Arr(events)) = attrs.get("events").unwrap().get("data") else {
            panic!("no events array")
        };
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].get("type"), Some(&Json::str("event")));
    }

    #[test]
    fn subscription_and_back_in_stock_shapes() {
        let sub = client_subscription(
            "Lst123",
            parse(r#"{"email":"a@b.co"}"#).unwrap(),
            &["email", "sms"],
            None,
        );
        assert_eq!(
            sub.to_text(),
            r#"{"data":{"type":"subscription","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}},"sms":{"marketing":{"consent":"SUBSCRIBED"}}}}}}},"relationships":{"list":{"data":{"type":"list","id":"Lst123"}}}}}"#
        );
        let bis = client_back_in_stock(
            "$shopify:::$default:::42",
            parse(r#"{"email":"a@b.co"}"#).unwrap(),
            &["email"],
        );
        assert_eq!(
            bis.to_text(),
            r#"{"data":{"type":"back-in-stock-subscription","attributes":{"channels":["EMAIL"],"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}},"relationships":{"variant":{"data":{"type":"catalog-variant","id":"$shopify:::$default:::42"}}}}}"#
        );
    }
}
