//! The `/api` bodies' rules, natively: every shape and rule with its JSON pointer.

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

#[test]
fn a_subscription_jobs_relationships_may_be_left_out_but_not_null() {
    // The spec makes neither `relationships` nor its `list` nullable: Klaviyo refuses
    // them with 400, so a job queued with one would end as a dead letter.
    let job = |relationships: &str| {
        format!(
            r#"{{"data":{{"type":"profile-subscription-bulk-create-job","attributes":{{"profiles":{{"data":[{{"type":"profile","attributes":{{"email":"a@b.co","subscriptions":{{}}}}}}]}}}}{relationships}}}}}"#
        )
    };
    for ok in [
        "",
        r#","relationships":{}"#,
        r#","relationships":{"list":{"data":{"type":"list","id":"L1"}}}"#,
    ] {
        assert_eq!(bulk_subscribe(&job(ok)), Ok(()), "{ok}");
    }
    for (bad, pointer) in [
        (r#","relationships":null"#, "/data/relationships"),
        (
            r#","relationships":{"list":null}"#,
            "/data/relationships/list",
        ),
        (
            r#","relationships":{"list":{"data":null}}"#,
            "/data/relationships/list/data",
        ),
    ] {
        assert_eq!(
            err(bulk_subscribe(&job(bad))),
            Invalid::new(pointer, "must be an object"),
            "{bad}"
        );
    }
}

/// A subscription job of one profile with `attrs`; `job` are extra members of the job's
/// attributes (each followed by a comma).
fn subscribe_job(job: &str, attrs: &str) -> String {
    format!(
        r#"{{"data":{{"type":"profile-subscription-bulk-create-job","attributes":{{{job}"profiles":{{"data":[{{"type":"profile","attributes":{attrs}}}]}}}}}}}}"#
    )
}

const SUBSCRIBED: &str = r#"{"consent":"SUBSCRIBED"}"#;

#[test]
fn subscription_channels_take_what_klaviyo_takes() {
    let ok = [
        ("", format!(r#"{{"email":"a@b.co","subscriptions":{{"email":{{"marketing":{SUBSCRIBED}}}}}}}"#)),
        ("", format!(r#"{{"email":"a@b.co","subscriptions":{{"email":{{"marketing":{SUBSCRIBED},"open_tracking":{SUBSCRIBED}}}}}}}"#)),
        ("", format!(r#"{{"phone_number":"+15005550006","subscriptions":{{"sms":{{"marketing":{SUBSCRIBED},"transactional":{SUBSCRIBED}}}}}}}"#)),
        ("", format!(r#"{{"phone_number":"+15005550006","subscriptions":{{"whatsapp":{{"marketing":{SUBSCRIBED},"transactional":{SUBSCRIBED}}}}}}}"#)),
        ("", format!(r#"{{"email":"a@b.co","phone_number":"+15005550006","subscriptions":{{"email":{{"marketing":{SUBSCRIBED}}},"sms":{{"marketing":{SUBSCRIBED}}}}}}}"#)),
        // Nullable members may be null; a null channel is no channel.
        ("", r#"{"phone_number":"+15005550006","subscriptions":{"email":null,"sms":{"marketing":{"consent":"SUBSCRIBED","consented_at":null},"transactional":null}}}"#.to_string()),
        ("\"historical_import\":false,", format!(r#"{{"email":"a@b.co","subscriptions":{{"email":{{"marketing":{SUBSCRIBED}}}}}}}"#)),
        ("\"historical_import\":null,", format!(r#"{{"email":"a@b.co","subscriptions":{{"email":{{"marketing":{SUBSCRIBED}}}}}}}"#)),
        (
            "\"historical_import\":true,",
            r#"{"email":"a@b.co","phone_number":"+15005550006","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED","consented_at":"2025-03-01T10:00:00+01:00"}},"sms":{"marketing":{"consent":"SUBSCRIBED","consented_at":"2025-03-01T09:00:00Z"}}}}"#.to_string(),
        ),
        (
            "",
            format!(r#"{{"email":"a@b.co","subscriptions":{{"push":{{"marketing":{SUBSCRIBED},"tokens":[{{"token":"abc","platform":"ios","vendor":"apns","enablement_status":"AUTHORIZED","background":null}}]}}}}}}"#),
        ),
        // SubscriptionChannels requires no channel: the spec lets the profile's email
        // and phone number be set with no subscription.
        ("", r#"{"email":"a@b.co","subscriptions":{}}"#.to_string()),
        // An email channel with no marketing consent subscribes no address.
        ("", format!(r#"{{"phone_number":"+15005550006","subscriptions":{{"email":{{}},"sms":{{"marketing":{SUBSCRIBED}}}}}}}"#)),
        // Open tracking alone takes no consent time, even in a historical import.
        (
            "\"historical_import\":true,",
            r#"{"email":"a@b.co","subscriptions":{"email":{"open_tracking":{"consent":"SUBSCRIBED"}}}}"#.to_string(),
        ),
    ];
    for (job, attrs) in &ok {
        assert_eq!(
            bulk_subscribe(&subscribe_job(job, attrs)),
            Ok(()),
            "{job}{attrs}"
        );
    }

    let p = "/data/attributes/profiles/data/0/attributes";
    let cases = [
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{}}}}"#,
            "/subscriptions/email/marketing/consent",
            "is required",
        ),
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"UNSUBSCRIBED"}}}}"#,
            "/subscriptions/email/marketing/consent",
            "must be \"SUBSCRIBED\"",
        ),
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":null}}}}"#,
            "/subscriptions/email/marketing/consent",
            "must be \"SUBSCRIBED\"",
        ),
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"email":{"open_tracking":{"consent":"NEVER_SUBSCRIBED"}}}}"#,
            "/subscriptions/email/open_tracking/consent",
            "must be \"SUBSCRIBED\"",
        ),
        (
            "",
            r#"{"phone_number":"+15005550006","subscriptions":{"sms":{"transactional":{}}}}"#,
            "/subscriptions/sms/transactional/consent",
            "is required",
        ),
        (
            "",
            r#"{"phone_number":"+15005550006","subscriptions":{"whatsapp":{"marketing":{"consent":"SUBSCRIBED"},"transactional":{"consent":"UNSUBSCRIBED"}}}}"#,
            "/subscriptions/whatsapp/transactional/consent",
            "must be \"SUBSCRIBED\"",
        ),
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"push":{}}}"#,
            "/subscriptions/push/marketing",
            "is required",
        ),
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"push":{"marketing":{"consent":"SUBSCRIBED"},"tokens":[{"token":"abc","platform":"windows","vendor":"apns"}]}}}"#,
            "/subscriptions/push/tokens/0/platform",
            "must be \"android\" or \"ios\"",
        ),
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"sms":{"marketing":{"consent":"SUBSCRIBED"}}}}"#,
            "/phone_number",
            "is required to subscribe on the sms channel",
        ),
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"whatsapp":{"marketing":{"consent":"SUBSCRIBED"}}}}"#,
            "/phone_number",
            "is required to subscribe on the whatsapp channel",
        ),
        (
            "",
            r#"{"phone_number":"+15005550006","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}"#,
            "/email",
            "is required to subscribe on the email channel",
        ),
        (
            "",
            r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED","consented_at":"2025-03-01T09:00:00Z"}}}}"#,
            "/subscriptions/email/marketing/consented_at",
            "is allowed only when historical_import is true",
        ),
        (
            "\"historical_import\":false,",
            r#"{"phone_number":"+15005550006","subscriptions":{"sms":{"transactional":{"consent":"SUBSCRIBED","consented_at":"2025-03-01T09:00:00Z"}}}}"#,
            "/subscriptions/sms/transactional/consented_at",
            "is allowed only when historical_import is true",
        ),
        (
            "\"historical_import\":true,",
            r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}"#,
            "/subscriptions/email/marketing/consented_at",
            "is required when historical_import is true",
        ),
        (
            "\"historical_import\":true,",
            r#"{"email":"a@b.co","phone_number":"+15005550006","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED","consented_at":"2025-03-01T09:00:00Z"}},"sms":{"marketing":{"consent":"SUBSCRIBED","consented_at":null}}}}"#,
            "/subscriptions/sms/marketing/consented_at",
            "is required when historical_import is true",
        ),
        (
            "\"historical_import\":true,",
            r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED","consented_at":"2025-03-01"}}}}"#,
            "/subscriptions/email/marketing/consented_at",
            "must be an ISO 8601 date-time with offset",
        ),
        (
            "\"historical_import\":true,",
            r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED","consented_at":"2025-03-01T09:00:00"}}}}"#,
            "/subscriptions/email/marketing/consented_at",
            "must be an ISO 8601 date-time with offset",
        ),
    ];
    for (job, attrs, pointer, detail) in cases {
        assert_eq!(
            err(bulk_subscribe(&subscribe_job(job, attrs))),
            Invalid::new(&format!("{p}{pointer}"), detail),
            "{job}{attrs}"
        );
    }
    // A profile looked up by its id: its email channel needs no address here.
    let by_id = r#"{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":[{"type":"profile","id":"01GDDKASAP8TKDDA2GRZDSVP4H","attributes":{"phone_number":"+15005550006","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}}]}}}}"#;
    assert_eq!(bulk_subscribe(by_id), Ok(()));
    assert_eq!(
        bulk_subscribe(&by_id.replace(r#""phone_number":"+15005550006","#, "")),
        Ok(()),
        "the id alone"
    );
    // An empty id looks nobody up.
    let empty = by_id
        .replace("01GDDKASAP8TKDDA2GRZDSVP4H", "")
        .replace(r#""phone_number":"+15005550006","#, "");
    assert_eq!(
        err(bulk_subscribe(&empty)).pointer,
        "/data/attributes/profiles/data/0/attributes"
    );
    // The second profile's own pointer.
    let two = r#"{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}},{"type":"profile","attributes":{"email":"b@b.co","subscriptions":{"sms":{"marketing":{"consent":"SUBSCRIBED"}}}}}]}}}}"#;
    assert_eq!(
        err(bulk_subscribe(two)).pointer,
        "/data/attributes/profiles/data/1/attributes/phone_number"
    );
}

#[test]
fn a_historical_consent_was_given_in_the_past() {
    let job = |at: &str| {
        subscribe_job(
            "\"historical_import\":true,",
            &format!(
                r#"{{"email":"a@b.co","subscriptions":{{"email":{{"marketing":{{"consent":"SUBSCRIBED","consented_at":"{at}"}}}}}}}}"#
            ),
        )
    };
    // NOW is 2026-11-26T05:02:19Z.
    for past in [
        "2026-11-26T05:02:19Z",
        "2026-11-26T06:02:19+01:00",
        "2019-01-01T00:00:00Z",
    ] {
        assert_eq!(bulk_subscribe_at(&job(past), NOW), Ok(()), "{past}");
    }
    for later in [
        "2026-11-26T05:02:20Z",
        "2026-11-26T05:02:19-00:01",
        "2027-01-01T00:00:00Z",
    ] {
        assert_eq!(
            err(bulk_subscribe_at(&job(later), NOW)),
            Invalid::new(
                "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consented_at",
                "must be in the past"
            ),
            "{later}"
        );
    }
    // Every other rule holds with the clock too.
    assert_eq!(
        err(bulk_subscribe_at(
            &subscribe_job(
                "",
                r#"{"email":"a@b.co","subscriptions":{"email":{"marketing":{}}}}"#
            ),
            NOW
        ))
        .pointer,
        "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consent"
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
        r#"{"email":"a@b.co"}"#,
    );
    assert_eq!(browser_event(&b, NOW, &allowed), Ok(()));
    // Every identifier at once was taken before; the private key would join them.
    let all = b.replace(
        r#""email":"a@b.co""#,
        r#""email":"a@b.co","phone_number":"+15005550006","external_id":"c-1","anonymous_id":"an-1","_kx":"kx""#,
    );
    assert_eq!(
        forbidden(browser_event(&all, NOW, &allowed)).pointer,
        "/data/attributes/profile/data/attributes/phone_number"
    );
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
