//! Checks of the server-side bodies the worker forwards with the private key, using the
//! core's rules. A failure names the JSON:API pointer of the bad field, the way Klaviyo
//! answers, so the shop's backend gets the same kind of error before anything is sent.

use crate::core::json::Json;
use crate::core::time;
use crate::core::validate;

/// A refused body: `pointer` is a JSON pointer into it (`/data/attributes/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub pointer: String,
    pub detail: String,
}

type Result = std::result::Result<(), Invalid>;

fn invalid(pointer: &str, detail: &str) -> Invalid {
    Invalid {
        pointer: pointer.to_string(),
        detail: detail.to_string(),
    }
}

fn join(base: &str, key: &str) -> String {
    let mut p = String::from(base);
    p.push('/');
    p.push_str(key);
    p
}

fn index(base: &str, i: usize) -> String {
    let mut p = String::from(base);
    p.push('/');
    crate::core::text::push_u64(&mut p, i as u64);
    p
}

/// `v[key]`, which must be an object.
fn object<'a>(v: &'a Json, key: &str, at: &str) -> std::result::Result<&'a Json, Invalid> {
    match v.get(key) {
        Some(o @ Json::Obj(_)) => Ok(o),
        _ => Err(invalid(&join(at, key), "must be an object")),
    }
}

fn array<'a>(v: &'a Json, key: &str, at: &str) -> std::result::Result<&'a [Json], Invalid> {
    match v.get(key) {
        Some(Json::Arr(items)) => Ok(items),
        _ => Err(invalid(&join(at, key), "must be an array")),
    }
}

/// `v[key]`: an array of 1 to 1000 items (Klaviyo's bulk limit).
fn bulk<'a>(v: &'a Json, key: &str, at: &str) -> std::result::Result<&'a [Json], Invalid> {
    let items = array(v, key, at)?;
    if items.is_empty() || items.len() > 1000 {
        return Err(invalid(&join(at, key), "must hold 1 to 1000 profiles"));
    }
    Ok(items)
}

fn type_is(v: &Json, kind: &str, at: &str) -> Result {
    if v.get("type").and_then(Json::as_str) == Some(kind) {
        Ok(())
    } else {
        let mut d = String::from("must be \"");
        d.push_str(kind);
        d.push('"');
        Err(invalid(&join(at, "type"), &d))
    }
}

/// Turns a core rule's failure into a pointer error at `at/field`.
fn rule(at: &str, r: std::result::Result<(), validate::ValidationError>) -> Result {
    r.map_err(|e| {
        let mut d = e.field.clone();
        d.push(' ');
        d.push_str(e.reason);
        Invalid {
            pointer: join(at, &e.field),
            detail: d,
        }
    })
}

/// Profile attributes: the identifiers Klaviyo needs, and their syntax.
fn profile(attrs: &Json, at: &str, ids: &[&str]) -> Result {
    if !ids
        .iter()
        .any(|k| matches!(attrs.get(k), Some(Json::Str(s)) if !s.is_empty()))
    {
        let mut d = String::from("needs at least one identifier: ");
        d.push_str(&ids.join(", "));
        return Err(invalid(at, &d));
    }
    if let Some(Json::Str(e)) = attrs.get("email") {
        rule(at, validate::email("email", e))?;
    }
    if let Some(Json::Str(p)) = attrs.get("phone_number") {
        rule(at, validate::phone("phone_number", p))?;
    }
    Ok(())
}

const EVENT_IDS: &[&str] = &[
    "id",
    "email",
    "phone_number",
    "external_id",
    "anonymous_id",
    "_kx",
];
const IMPORT_IDS: &[&str] = &["id", "email", "phone_number", "external_id", "anonymous_id"];

/// The attributes of one event (without its profile).
fn event(attrs: &Json, at: &str, now_ms: u64) -> Result {
    let metric = object(attrs, "metric", at)?;
    let m_at = join(at, "metric/data/attributes");
    let name = metric
        .get("data")
        .and_then(|d| d.get("attributes"))
        .and_then(|a| a.get("name"))
        .and_then(Json::as_str)
        .ok_or_else(|| invalid(&join(&m_at, "name"), "is required"))?;
    rule(&m_at, validate::metric_name("name", name))?;
    let props = attrs
        .get("properties")
        .ok_or_else(|| invalid(&join(at, "properties"), "is required"))?;
    rule(at, validate::properties("properties", &props.to_text()))?;
    match attrs.get("time") {
        None | Some(Json::Null) => {}
        Some(Json::Str(t)) => {
            let secs = time::secs_from_iso(t).ok_or_else(|| {
                invalid(
                    &join(at, "time"),
                    "must be an ISO 8601 date-time with offset",
                )
            })?;
            rule(at, validate::event_time("time", secs, now_ms))?;
        }
        Some(_) => {
            return Err(invalid(
                &join(at, "time"),
                "must be an ISO 8601 date-time string",
            ))
        }
    }
    if let Some(v) = attrs.get("value").filter(|v| !v.is_null()) {
        rule(at, validate::number("value", &v.to_text()).map(|_| ()))?;
    }
    if let Some(c) = attrs.get("value_currency").filter(|v| !v.is_null()) {
        rule(
            at,
            validate::currency("value_currency", &c.to_text()).map(|_| ()),
        )?;
    }
    if let Some(u) = attrs.get("unique_id").filter(|v| !v.is_null()) {
        rule(
            at,
            validate::unique_id("unique_id", &u.to_text()).map(|_| ()),
        )?;
    }
    Ok(())
}

/// `POST /api/events` (EventCreateQueryV2).
pub fn create_event(body: &Json, now_ms: u64) -> Result {
    let data = object(body, "data", "")?;
    type_is(data, "event", "/data")?;
    let attrs = object(data, "attributes", "/data")?;
    event(attrs, "/data/attributes", now_ms)?;
    let p = object(attrs, "profile", "/data/attributes")?;
    let pa = p
        .get("data")
        .and_then(|d| d.get("attributes"))
        .ok_or_else(|| invalid("/data/attributes/profile/data/attributes", "is required"))?;
    profile(pa, "/data/attributes/profile/data/attributes", EVENT_IDS)
}

/// `POST /api/event-bulk-create-jobs` (EventsBulkCreateJob): profiles, each with events.
pub fn bulk_create_events(body: &Json, now_ms: u64) -> Result {
    let data = object(body, "data", "")?;
    type_is(data, "event-bulk-create-job", "/data")?;
    let attrs = object(data, "attributes", "/data")?;
    let jobs = object(attrs, "events-bulk-create", "/data/attributes")?;
    let items = bulk(jobs, "data", "/data/attributes/events-bulk-create")?;
    for (i, job) in items.iter().enumerate() {
        let at = index("/data/attributes/events-bulk-create/data", i);
        type_is(job, "event-bulk-create", &at)?;
        let ja = object(job, "attributes", &at)?;
        let ja_at = join(&at, "attributes");
        let pa = ja
            .get("profile")
            .and_then(|p| p.get("data"))
            .and_then(|d| d.get("attributes"))
            .ok_or_else(|| invalid(&join(&ja_at, "profile/data/attributes"), "is required"))?;
        profile(pa, &join(&ja_at, "profile/data/attributes"), EVENT_IDS)?;
        let events = object(ja, "events", &ja_at)?;
        let list = array(events, "data", &join(&ja_at, "events"))?;
        for (k, e) in list.iter().enumerate() {
            let e_at = index(&join(&ja_at, "events/data"), k);
            type_is(e, "event", &e_at)?;
            event(
                object(e, "attributes", &e_at)?,
                &join(&e_at, "attributes"),
                now_ms,
            )?;
        }
    }
    Ok(())
}

/// `POST /api/profile-import` (ProfileUpsertQuery).
pub fn profile_import(body: &Json) -> Result {
    let data = object(body, "data", "")?;
    type_is(data, "profile", "/data")?;
    profile(
        object(data, "attributes", "/data")?,
        "/data/attributes",
        IMPORT_IDS,
    )
}

/// `POST /api/profile-subscription-bulk-create-jobs` (SubscriptionCreateJobCreateQuery).
pub fn bulk_subscribe(body: &Json) -> Result {
    let data = object(body, "data", "")?;
    type_is(data, "profile-subscription-bulk-create-job", "/data")?;
    let attrs = object(data, "attributes", "/data")?;
    let profiles = object(attrs, "profiles", "/data/attributes")?;
    let items = bulk(profiles, "data", "/data/attributes/profiles")?;
    for (i, p) in items.iter().enumerate() {
        let at = index("/data/attributes/profiles/data", i);
        type_is(p, "profile", &at)?;
        let pa = object(p, "attributes", &at)?;
        let pa_at = join(&at, "attributes");
        profile(pa, &pa_at, &["email", "phone_number"])?;
        object(pa, "subscriptions", &pa_at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::parse;

    const NOW: u64 = 1_795_669_339_000;

    fn event_body(attrs: &str, profile: &str) -> Json {
        parse(&format!(
            r#"{{"data":{{"type":"event","attributes":{{{attrs}"metric":{{"data":{{"type":"metric","attributes":{{"name":"Placed Order"}}}}}},"profile":{{"data":{{"type":"profile","attributes":{profile}}}}}}}}}}}"#
        ))
        .unwrap()
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
    fn event_errors_point_at_the_field() {
        let cases = [
            (event_body(r#""properties":{},"#, r#"{}"#), "/data/attributes/profile/data/attributes"),
            (event_body(r#""properties":{},"#, r#"{"email":"x@"}"#), "/data/attributes/profile/data/attributes/email"),
            (event_body(r#""properties":[],"#, r#"{"email":"a@b.co"}"#), "/data/attributes/properties"),
            (event_body("", r#"{"email":"a@b.co"}"#), "/data/attributes/properties"),
            (event_body(r#""properties":{},"time":"1980-01-01T00:00:00Z","#, r#"{"email":"a@b.co"}"#), "/data/attributes/time"),
            (event_body(r#""properties":{},"value":"9","#, r#"{"email":"a@b.co"}"#), "/data/attributes/value"),
            (event_body(r#""properties":{},"value_currency":"EURO","#, r#"{"email":"a@b.co"}"#), "/data/attributes/value_currency"),
            (parse(r#"{"data":{"type":"profile","attributes":{}}}"#).unwrap(), "/data/type"),
            (parse(r#"{"data":{"type":"event","attributes":{"properties":{},"metric":{"data":{"attributes":{"name":""}}}}}}"#).unwrap(), "/data/attributes/metric/data/attributes/name"),
            (parse("[]").unwrap(), "/data"),
        ];
        for (body, pointer) in cases {
            assert_eq!(
                create_event(&body, NOW).unwrap_err().pointer,
                pointer,
                "{}",
                body.to_text()
            );
        }
    }

    #[test]
    fn bulk_jobs_point_into_the_right_event() {
        let good = r#"{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"M"}}}}}"#;
        let bad = r#"{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"M"}}},"value":"x"}}"#;
        let body = |events: &str| {
            parse(&format!(
                r#"{{"data":{{"type":"event-bulk-create-job","attributes":{{"events-bulk-create":{{"data":[{{"type":"event-bulk-create","attributes":{{"profile":{{"data":{{"type":"profile","attributes":{{"email":"a@b.co"}}}}}},"events":{{"data":[{events}]}}}}}}]}}}}}}}}"#
            ))
            .unwrap()
        };
        assert_eq!(
            bulk_create_events(&body(&format!("{good},{good}")), NOW),
            Ok(())
        );
        assert_eq!(
            bulk_create_events(&body(&format!("{good},{bad}")), NOW)
                .unwrap_err()
                .pointer,
            "/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/value"
        );
    }

    #[test]
    fn profile_import_and_bulk_subscribe() {
        assert_eq!(
            profile_import(
                &parse(r#"{"data":{"type":"profile","attributes":{"external_id":"c-1"}}}"#)
                    .unwrap()
            ),
            Ok(())
        );
        assert_eq!(
            profile_import(
                &parse(r#"{"data":{"type":"profile","attributes":{"first_name":"A"}}}"#).unwrap()
            )
            .unwrap_err()
            .pointer,
            "/data/attributes"
        );
        let sub = |attrs: &str| {
            parse(&format!(
                r#"{{"data":{{"type":"profile-subscription-bulk-create-job","attributes":{{"profiles":{{"data":[{{"type":"profile","attributes":{attrs}}}]}}}}}}}}"#
            ))
            .unwrap()
        };
        assert_eq!(
            bulk_subscribe(&sub(
                r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}"#
            )),
            Ok(())
        );
        assert_eq!(
            bulk_subscribe(&sub(r#"{"email":"a@b.co"}"#))
                .unwrap_err()
                .pointer,
            "/data/attributes/profiles/data/0/attributes/subscriptions"
        );
        assert_eq!(
            bulk_subscribe(&sub(r#"{"phone_number":"555","subscriptions":{}}"#))
                .unwrap_err()
                .pointer,
            "/data/attributes/profiles/data/0/attributes/phone_number"
        );
    }
}
