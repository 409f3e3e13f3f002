//! Orders, natively: every member checked with its pointer, the job each order
//! becomes, and its exact decimals.

use super::*;
use serde_json::{json, Value};

const NOW: u64 = 1_795_669_339_000;
const NOW_ISO: &str = "2026-11-26T05:02:19Z";

const TWO_LINES: &str = r#"{
    "order_id": "1001",
    "time": "2026-11-20T10:00:00+01:00",
    "value": 84.97,
    "value_currency": "usd",
    "profile": {"email": "a@b.co", "external_id": "c-1"},
    "items": [
        {"product_id": "P1", "name": "Tee", "quantity": 3, "price": 19.99, "sku": "T-1",
         "url": "https://shop.example/tee", "image_url": "https://shop.example/tee.jpg",
         "categories": ["Tops", "Sale"], "brand": "Acme"},
        {"product_id": 42, "name": "Cap", "quantity": 1, "price": 25,
         "categories": ["Hats", "Sale"]}
    ],
    "properties": {"DiscountCode": "WELCOME", "Shipping": {"Method": "UPS"}}
}"#;

fn job(kind: OrderEvent, text: &str) -> Value {
    let body = order_job(kind, text, NOW).unwrap();
    assert_job_shape(&body);
    serde_json::from_str(&body).unwrap()
}

fn err(kind: OrderEvent, text: &str) -> Invalid {
    order_job(kind, text, NOW).unwrap_err()
}

/// The keys of an object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn subset(v: &Value, allowed: &[&str], required: &[&str]) {
    for k in keys(v) {
        assert!(allowed.contains(&k), "{k} is not in the spec's schema");
    }
    for r in required {
        assert!(v.get(r).is_some(), "{r} is required");
    }
}

/// The structure of `EventsBulkCreateJob` as the spec (revision 2026-07-15) gives it:
/// every member known to its schema, the required ones present, the types right, the
/// enums their one value. Then our own checks of such a job on top.
fn assert_job_shape(body: &str) {
    let v: Value = serde_json::from_str(body).unwrap();
    subset(&v, &["data"], &["data"]);
    let data = &v["data"];
    subset(data, &["type", "attributes"], &["type", "attributes"]);
    assert_eq!(data["type"], "event-bulk-create-job");
    subset(
        &data["attributes"],
        &["events-bulk-create"],
        &["events-bulk-create"],
    );
    let ebc = &data["attributes"]["events-bulk-create"];
    subset(ebc, &["data"], &["data"]);
    let entries = ebc["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "one profile per order");
    let entry = &entries[0];
    subset(entry, &["type", "attributes"], &["type", "attributes"]);
    assert_eq!(entry["type"], "event-bulk-create");
    subset(
        &entry["attributes"],
        &["backfill", "profile", "events"],
        &["profile", "events"],
    );
    let profile = &entry["attributes"]["profile"];
    subset(profile, &["data"], &["data"]);
    subset(
        &profile["data"],
        &["type", "id", "attributes", "meta"],
        &["type", "attributes"],
    );
    assert_eq!(profile["data"]["type"], "profile");
    subset(
        &profile["data"]["attributes"],
        &[
            "email",
            "phone_number",
            "external_id",
            "anonymous_id",
            "_kx",
            "first_name",
            "last_name",
            "organization",
            "locale",
            "title",
            "image",
            "location",
            "properties",
        ],
        &[],
    );
    for (key, v) in profile["data"]["attributes"].as_object().unwrap() {
        assert!(v.is_string() || key == "location" && v.is_object(), "{key}");
    }
    let events = &entry["attributes"]["events"];
    subset(events, &["data"], &["data"]);
    let events = events["data"].as_array().unwrap();
    assert!(!events.is_empty() && events.len() <= 1000);
    for e in events {
        subset(e, &["type", "attributes"], &["type", "attributes"]);
        assert_eq!(e["type"], "event");
        let a = &e["attributes"];
        subset(
            a,
            &[
                "properties",
                "time",
                "value",
                "value_currency",
                "backfill",
                "metric",
                "unique_id",
            ],
            &["properties", "metric"],
        );
        assert!(a["properties"].is_object());
        assert!(a["time"].is_string());
        assert!(a["value"].is_number());
        assert!(a["unique_id"].is_string());
        assert!(a.get("value_currency").is_none_or(Value::is_string));
        subset(&a["metric"], &["data"], &["data"]);
        subset(
            &a["metric"]["data"],
            &["type", "attributes"],
            &["type", "attributes"],
        );
        assert_eq!(a["metric"]["data"]["type"], "metric");
        subset(
            &a["metric"]["data"]["attributes"],
            &["name", "service"],
            &["name"],
        );
        assert!(a["metric"]["data"]["attributes"]["name"].is_string());
    }
    assert_eq!(api_rules::bulk_create_events(body, NOW), Ok(()));
}

#[test]
fn a_placed_order_of_two_lines_makes_one_job_with_three_events() {
    let body = order_job(OrderEvent::Placed, TWO_LINES, NOW).unwrap();
    // Exact decimals: 19.99 × 3 is 59.97, not 59.970000000000006.
    assert!(body.contains(r#""RowTotal":59.97,"#), "{body}");
    assert!(!body.contains("59.970000"));
    let time = "2026-11-20T09:00:00Z";
    let order_props = json!({
        "OrderId": "1001",
        "Items": [
            {"ProductID": "P1", "ProductName": "Tee", "Quantity": 3, "ItemPrice": 19.99,
             "RowTotal": 59.97, "SKU": "T-1", "ProductURL": "https://shop.example/tee",
             "ImageURL": "https://shop.example/tee.jpg", "Categories": ["Tops", "Sale"],
             "Brand": "Acme"},
            {"ProductID": 42, "ProductName": "Cap", "Quantity": 1, "ItemPrice": 25,
             "RowTotal": 25, "Categories": ["Hats", "Sale"]}
        ],
        "ItemNames": ["Tee", "Cap"],
        "Categories": ["Tops", "Sale", "Hats"],
        "Brands": ["Acme"],
        "DiscountCode": "WELCOME",
        "Shipping": {"Method": "UPS"}
    });
    let metric = |name: &str| json!({"data": {"type": "metric", "attributes": {"name": name}}});
    let expected = json!({"data": {
        "type": "event-bulk-create-job",
        "attributes": {"events-bulk-create": {"data": [{
            "type": "event-bulk-create",
            "attributes": {
                "profile": {"data": {"type": "profile",
                    "attributes": {"email": "a@b.co", "external_id": "c-1"}}},
                "events": {"data": [
                    {"type": "event", "attributes": {
                        "properties": order_props, "time": time, "value": 84.97,
                        "value_currency": "USD", "unique_id": "1001",
                        "metric": metric("Placed Order")}},
                    {"type": "event", "attributes": {
                        "properties": {"OrderId": "1001", "ProductID": "P1", "SKU": "T-1",
                            "ProductName": "Tee", "Quantity": 3,
                            "ProductURL": "https://shop.example/tee",
                            "ImageURL": "https://shop.example/tee.jpg",
                            "Categories": ["Tops", "Sale"], "ProductBrand": "Acme"},
                        "time": time, "value": 59.97, "value_currency": "USD",
                        "unique_id": "1001-0", "metric": metric("Ordered Product")}},
                    {"type": "event", "attributes": {
                        "properties": {"OrderId": "1001", "ProductID": 42,
                            "ProductName": "Cap", "Quantity": 1,
                            "Categories": ["Hats", "Sale"]},
                        "time": time, "value": 25, "value_currency": "USD",
                        "unique_id": "1001-1", "metric": metric("Ordered Product")}}
                ]}
            }
        }]}}
    }});
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);
    assert_job_shape(&body);
}

#[test]
fn fulfilled_cancelled_and_refunded_make_one_event_with_the_order_properties() {
    let placed = job(OrderEvent::Placed, TWO_LINES);
    let placed_props = &placed.pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/properties").unwrap();
    for (kind, name) in [
        (OrderEvent::Fulfilled, "Fulfilled Order"),
        (OrderEvent::Cancelled, "Cancelled Order"),
        (OrderEvent::Refunded, "Refunded Order"),
    ] {
        let v = job(kind, TWO_LINES);
        let events = v
            .pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data")
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(events.len(), 1);
        let a = &events[0]["attributes"];
        assert_eq!(a["metric"]["data"]["attributes"]["name"], name);
        assert_eq!(a["unique_id"], "1001");
        assert_eq!(a["value"], json!(84.97));
        assert_eq!(&a["properties"], *placed_props);
    }
    // Without items: the order's id and the extra properties.
    let bare = r#"{"order_id":"1001","value":10,"profile":{"phone_number":"+15005550006"},"properties":{"Reason":"late"}}"#;
    let v = job(OrderEvent::Refunded, bare);
    let a = v
        .pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes")
        .unwrap();
    assert_eq!(
        a["properties"],
        json!({"OrderId": "1001", "Reason": "late"})
    );
    assert_eq!(a["time"], NOW_ISO);
    assert!(a.get("value_currency").is_none());
    let items_empty = bare.replace(r#""value":10"#, r#""value":10,"items":[]"#);
    let v = job(OrderEvent::Fulfilled, &items_empty);
    let props = v
        .pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/properties")
        .unwrap();
    assert_eq!(props["Items"], json!([]));
}

#[test]
fn an_event_id_makes_each_shipment_or_refund_of_one_order_its_own_event() {
    // Klaviyo keeps one event per unique_id, metric and profile: two partial refunds of
    // one order, both with the order's id, would be one refund there.
    let refund = |event_id: &str, value: &str| {
        format!(
            r#"{{"order_id":"1001","event_id":{event_id},"value":{value},"profile":{{"email":"a@b.co"}}}}"#
        )
    };
    let unique = |v: &Value| {
        v.pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/unique_id")
            .unwrap()
            .clone()
    };
    for kind in [
        OrderEvent::Fulfilled,
        OrderEvent::Cancelled,
        OrderEvent::Refunded,
    ] {
        let first = job(kind, &refund(r#""r-1""#, "5"));
        let second = job(kind, &refund(r#""r-2""#, "7"));
        assert_eq!(unique(&first), "1001:r-1");
        assert_eq!(unique(&second), "1001:r-2");
        // The same call again (a retry) is the same event; none: the order's id, as before.
        assert_eq!(unique(&job(kind, &refund(r#""r-1""#, "5"))), "1001:r-1");
        let bare = r#"{"order_id":"1001","value":5,"profile":{"email":"a@b.co"}}"#;
        assert_eq!(unique(&job(kind, bare)), "1001");
    }
    let long = format!(r#""{}""#, "e".repeat(251));
    let cases = [
        (OrderEvent::Placed, placed_with_event_id(), "/event_id"),
        (OrderEvent::Refunded, refund(r#""""#, "5"), "/event_id"),
        (OrderEvent::Refunded, refund("7", "5"), "/event_id"),
        (
            OrderEvent::Refunded,
            refund(r#""a\u0001""#, "5"),
            "/event_id",
        ),
        (OrderEvent::Refunded, refund(&long, "5"), "/event_id"),
    ];
    for (kind, text, pointer) in cases {
        let e = err(kind, &text);
        assert_eq!(e.pointer, pointer, "{text}: {}", e.detail);
    }
    assert!(err(OrderEvent::Placed, &placed_with_event_id())
        .detail
        .contains("placed order is one event"));
    assert!(err(OrderEvent::Refunded, &refund(&long, "5"))
        .detail
        .contains("must fit in 255"));
    // 250 + ":" + 4 = 255: fits.
    let fits = format!(
        r#"{{"order_id":"{}","event_id":"r-12","value":5,"profile":{{"email":"a@b.co"}}}}"#,
        "o".repeat(250)
    );
    assert!(order_job(OrderEvent::Refunded, &fits, NOW).is_ok());
}

fn placed_with_event_id() -> String {
    TWO_LINES.replace(
        r#""order_id": "1001","#,
        r#""order_id": "1001", "event_id": "r-1","#,
    )
}

#[test]
fn no_order_value_is_negative_not_even_a_cancelled_ones() {
    // Klaviyo's integration guide sends a cancellation's amount as a positive value; a
    // negative one counts as the opposite in every sum of Cancelled Order.
    let negative = TWO_LINES.replace("84.97", "-84.97");
    for kind in [
        OrderEvent::Placed,
        OrderEvent::Fulfilled,
        OrderEvent::Cancelled,
        OrderEvent::Refunded,
    ] {
        assert_eq!(
            err(kind, &negative),
            Invalid::new(
                "/value",
                "must not be negative (a cancelled or refunded order's is the amount, positive)"
            )
        );
    }
    // Zero in any spelling is not negative.
    for zero in ["0", "-0", "-0.0", "0e2147483647", "0e-2147483647"] {
        let t = TWO_LINES.replace("84.97", zero);
        assert!(order_job(OrderEvent::Placed, &t, NOW).is_ok(), "{zero}");
    }
}

#[test]
fn times_are_iso_with_an_offset_or_epoch_milliseconds_else_now() {
    let with = |t: &str| TWO_LINES.replace(r#""2026-11-20T10:00:00+01:00""#, t);
    let time_of = |v: &Value| {
        v.pointer(
            "/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/time",
        )
        .cloned()
    };
    assert_eq!(
        time_of(&job(OrderEvent::Placed, &with("1795669339123"))),
        Some(json!(NOW_ISO))
    );
    assert_eq!(
        time_of(&job(OrderEvent::Placed, &with("null"))),
        Some(json!(NOW_ISO))
    );
    assert_eq!(
        time_of(&job(
            OrderEvent::Placed,
            &with(r#""2026-11-26T06:02:19.9+01:00""#)
        )),
        Some(json!(NOW_ISO))
    );
    let no_time = TWO_LINES.replace(r#""time": "2026-11-20T10:00:00+01:00","#, "");
    assert_eq!(
        time_of(&job(OrderEvent::Placed, &no_time)),
        Some(json!(NOW_ISO))
    );
    for (bad, detail) in [
        (
            r#""2026-11-20T10:00:00""#,
            "must be an ISO 8601 date-time with offset",
        ),
        (r#""tomorrow""#, "must be an ISO 8601 date-time with offset"),
        (
            r#""1980-01-01T00:00:00Z""#,
            "time must be between 1990 and one year from now",
        ),
        // Seconds where milliseconds belong: 1970.
        (
            "1795669339",
            "time must be between 1990 and one year from now",
        ),
        (
            "-1",
            "must be an ISO 8601 date-time with offset or epoch milliseconds",
        ),
        (
            "1.5",
            "must be an ISO 8601 date-time with offset or epoch milliseconds",
        ),
        (
            "true",
            "must be an ISO 8601 date-time with offset or epoch milliseconds",
        ),
        (
            "18446744073709551615",
            "time must be between 1990 and one year from now",
        ),
    ] {
        assert_eq!(
            err(OrderEvent::Placed, &with(bad)),
            Invalid::new("/time", detail),
            "{bad}"
        );
    }
}

#[test]
fn a_placed_order_needs_1_to_999_lines() {
    let base = r#"{"order_id":"1","value":1,"profile":{"email":"a@b.co"}"#;
    assert_eq!(
        err(OrderEvent::Placed, &format!("{base}}}")),
        Invalid::new("/items", "is required for a placed order")
    );
    assert_eq!(
        err(OrderEvent::Placed, &format!(r#"{base},"items":null}}"#)),
        Invalid::new("/items", "is required for a placed order")
    );
    assert_eq!(
        err(OrderEvent::Placed, &format!(r#"{base},"items":[]}}"#)),
        Invalid::new("/items", "must hold 1 to 999 lines")
    );
    let lines = |n: usize| {
        let line = r#"{"product_id":"P","name":"N","quantity":1,"price":0.1}"#;
        format!(r#"{base},"items":[{}]}}"#, vec![line; n].join(","))
    };
    // 999 lines and the order: Klaviyo's 1000 events per job.
    let v = job(OrderEvent::Placed, &lines(999));
    let events = v
        .pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data")
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(events.len(), 1000);
    assert_eq!(events[999]["attributes"]["unique_id"], "1-998");
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["attributes"]["unique_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "unique ids are unique");
    for kind in [OrderEvent::Placed, OrderEvent::Refunded] {
        assert_eq!(err(kind, &lines(1000)).pointer, "/items");
    }
    assert!(order_job(OrderEvent::Refunded, &lines(999), NOW).is_ok());
}

#[test]
fn order_errors_point_into_the_order() {
    let cases = [
        (
            TWO_LINES.replace(r#""order_id": "1001""#, r#""order": "1001""#),
            "/order",
        ),
        (TWO_LINES.replace(r#""order_id": "1001","#, ""), "/order_id"),
        (
            TWO_LINES.replace(r#""order_id": "1001""#, r#""order_id": 1001"#),
            "/order_id",
        ),
        (
            TWO_LINES.replace(r#""order_id": "1001""#, r#""order_id": """#),
            "/order_id",
        ),
        (
            TWO_LINES.replace(
                r#""order_id": "1001""#,
                &format!(r#""order_id": "{}""#, "o".repeat(254)),
            ),
            "/order_id",
        ),
        (TWO_LINES.replace("84.97", r#""84.97""#), "/value"),
        (TWO_LINES.replace("84.97", "1e400"), "/value"),
        (TWO_LINES.replace("84.97", "1e30"), "/value"),
        (TWO_LINES.replace(r#""value": 84.97,"#, ""), "/value"),
        (
            TWO_LINES.replace(r#""usd""#, r#""dollars""#),
            "/value_currency",
        ),
        (
            TWO_LINES.replace(r#""email": "a@b.co", "external_id": "c-1""#, ""),
            "/profile",
        ),
        (
            TWO_LINES.replace(r#""email": "a@b.co""#, r#""email": "a@""#),
            "/profile/email",
        ),
        (
            TWO_LINES.replace(r#""email": "a@b.co""#, r#""phone_number": "555""#),
            "/profile/phone_number",
        ),
        (
            TWO_LINES.replace(
                r#""email": "a@b.co", "external_id": "c-1""#,
                r#""email": "", "external_id": " ""#,
            ),
            "/profile",
        ),
        (
            TWO_LINES.replace(r#""external_id": "c-1""#, r#""title": "A""#),
            "/profile/title",
        ),
        (
            TWO_LINES.replace(
                r#""email": "a@b.co", "external_id": "c-1""#,
                r#""email": null"#,
            ),
            "/profile",
        ),
        (
            TWO_LINES.replace(
                r#""profile": {"email": "a@b.co", "external_id": "c-1"},"#,
                "",
            ),
            "/profile",
        ),
        (
            TWO_LINES.replace(
                r#""profile": {"email": "a@b.co", "external_id": "c-1"}"#,
                r#""profile": "a@b.co""#,
            ),
            "/profile",
        ),
        (
            TWO_LINES.replace(r#""quantity": 3"#, r#""quantity": 0"#),
            "/items/0/quantity",
        ),
        (
            TWO_LINES.replace(r#""quantity": 3"#, r#""quantity": -3"#),
            "/items/0/quantity",
        ),
        (
            TWO_LINES.replace(r#""quantity": 3"#, r#""quantity": "3""#),
            "/items/0/quantity",
        ),
        (
            TWO_LINES.replace(r#""price": 25"#, r#""price": -25"#),
            "/items/1/price",
        ),
        (
            TWO_LINES.replace(r#""price": 25"#, r#""price": "25""#),
            "/items/1/price",
        ),
        (
            TWO_LINES.replace(r#""price": 25"#, r#""price": 1e300"#),
            "/items/1/price",
        ),
        (
            TWO_LINES
                .replace(r#""price": 25"#, r#""price": 9999999999"#)
                .replace(r#""quantity": 1,"#, r#""quantity": 9999999999,"#),
            "/items/1/price",
        ),
        (
            TWO_LINES.replace(r#""product_id": 42"#, r#""product_id": {}"#),
            "/items/1/product_id",
        ),
        (
            TWO_LINES.replace(r#""product_id": 42"#, r#""product_id": """#),
            "/items/1/product_id",
        ),
        (
            TWO_LINES.replace(r#""name": "Cap""#, r#""name": "  ""#),
            "/items/1/name",
        ),
        (TWO_LINES.replace(r#""name": "Cap", "#, ""), "/items/1/name"),
        (
            TWO_LINES.replace(r#"["Hats", "Sale"]"#, r#"["Hats", 7]"#),
            "/items/1/categories/1",
        ),
        (
            TWO_LINES.replace(r#""brand": "Acme""#, r#""brand": "Acme", "colour": "red""#),
            "/items/0/colour",
        ),
        (
            TWO_LINES.replace(r#""sku": "T-1""#, r#""sku": 1"#),
            "/items/0/sku",
        ),
        (
            TWO_LINES.replace(r#""DiscountCode""#, r#""Items""#),
            "/properties/Items",
        ),
        (
            TWO_LINES.replace(r#""DiscountCode""#, r#""OrderId""#),
            "/properties/OrderId",
        ),
        (
            TWO_LINES.replace(
                r#"{"DiscountCode": "WELCOME", "Shipping": {"Method": "UPS"}}"#,
                "[]",
            ),
            "/properties",
        ),
        (
            TWO_LINES
                .replace(r#""items": ["#, r#""items": {"#)
                .replace("]\n        ],", "]}\n        ],"),
            "",
        ),
        ("[]".to_string(), ""),
        ("".to_string(), ""),
    ];
    for (body, pointer) in cases {
        assert_eq!(err(OrderEvent::Placed, &body).pointer, pointer, "{body}");
    }
}

#[test]
fn duplicate_keys_in_an_order_are_refused() {
    let cases = [
        (
            TWO_LINES.replace(r#""value": 84.97,"#, r#""value": 84.97, "value": 0.01,"#),
            "/value",
        ),
        (
            TWO_LINES.replace(r#""price": 25"#, r#""price": 25, "price": 0"#),
            "/items/1/price",
        ),
        (
            TWO_LINES.replace(
                r#""email": "a@b.co""#,
                r#""email": "a@b.co", "email": "b@c.co""#,
            ),
            "/profile/email",
        ),
        (
            TWO_LINES.replace(r#""UPS""#, r#""UPS", "Method": "DHL""#),
            "/properties/Shipping/Method",
        ),
    ];
    for (body, pointer) in cases {
        assert_eq!(
            err(OrderEvent::Placed, &body),
            Invalid::new(pointer, "is a duplicate key"),
            "{body}"
        );
    }
}

#[test]
fn extra_properties_keep_the_event_limits() {
    let props = |n: usize| {
        (0..n)
            .map(|i| format!(r#""P{i}":{i}"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    let with = |p: String| {
        TWO_LINES.replace(
            r#"{"DiscountCode": "WELCOME", "Shipping": {"Method": "UPS"}}"#,
            &format!("{{{p}}}"),
        )
    };
    // 395 extra and the order's own five: 400.
    assert!(order_job(OrderEvent::Placed, &with(props(395)), NOW).is_ok());
    assert_eq!(
        err(OrderEvent::Placed, &with(props(396))),
        Invalid::new("/properties", "has more than 400 keys with the order's own")
    );
    let long = "x".repeat(validate::MAX_STRING_BYTES + 1);
    assert_eq!(
        err(
            OrderEvent::Placed,
            &with(format!(r#""Notes":["ok","{long}"]"#))
        ),
        Invalid::new("/properties/Notes/1", "is a string longer than 100 KB")
    );
    let long_name = TWO_LINES.replace(r#""name": "Cap""#, &format!(r#""name": "{long}""#));
    assert_eq!(
        err(OrderEvent::Placed, &long_name),
        Invalid::new("/items/1/name", "is a string longer than 100 KB")
    );
}

#[test]
fn row_totals_are_exact_decimals() {
    for (price, quantity, total) in [
        ("19.99", "3", "59.97"),
        ("0.1", "3", "0.3"),
        ("2.50", "2", "5"),
        ("0.05", "0.5", "0.025"),
        ("1.5e2", "2", "300"),
        ("0", "7", "0"),
    ] {
        let t = TWO_LINES
            .replace(r#""price": 19.99"#, &format!(r#""price": {price}"#))
            .replace(r#""quantity": 3"#, &format!(r#""quantity": {quantity}"#));
        let body = order_job(OrderEvent::Placed, &t, NOW).unwrap();
        let needle = format!(r#""RowTotal":{total},"#);
        assert!(body.contains(&needle), "{price} × {quantity}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v.pointer("/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/value")
                .map(Value::to_string)
                .as_deref(),
            Some(total)
        );
    }
}

#[test]
fn the_order_event_comes_from_the_path() {
    assert_eq!(
        OrderEvent::from_path("/api/orders"),
        Some(OrderEvent::Placed)
    );
    assert_eq!(
        OrderEvent::from_path("/api/orders/fulfilled"),
        Some(OrderEvent::Fulfilled)
    );
    assert_eq!(
        OrderEvent::from_path("/api/orders/cancelled"),
        Some(OrderEvent::Cancelled)
    );
    assert_eq!(
        OrderEvent::from_path("/api/orders/refunded"),
        Some(OrderEvent::Refunded)
    );
    assert_eq!(OrderEvent::from_path("/api/orders/"), None);
    assert_eq!(OrderEvent::from_path("/api/orders/shipped"), None);
}

#[test]
fn order_errors_never_repeat_personal_data() {
    for body in [
        TWO_LINES.replace(r#""a@b.co""#, r#""secret@""#),
        TWO_LINES.replace(r#""a@b.co""#, r#"["secret@b.co"]"#),
        TWO_LINES.replace("84.97", r#""secret""#),
        TWO_LINES.replace(r#""c-1""#, r#"{"secret":1}"#),
    ] {
        let e = err(OrderEvent::Placed, &body);
        assert!(!e.detail.contains("secret"), "{e:?}");
    }
}

#[test]
fn a_past_order_marked_backfill_starts_no_flow_and_others_are_not_marked() {
    let past = TWO_LINES.replace(
        r#""order_id": "1001","#,
        r#""order_id": "1001", "backfill": true,"#,
    );
    for kind in [OrderEvent::Placed, OrderEvent::Refunded] {
        let v = job(kind, &past);
        let entry = &v["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"];
        assert_eq!(entry["backfill"], json!(true), "{kind:?}");
        // The job still passes the queue's reading: divided and re-sent with its mark.
        let body = order_job(kind, &past, NOW).unwrap();
        assert!(crate::edge::bulk_job::read(&body)
            .is_some_and(|e| e[0].members.starts_with(r#""backfill":true,"#)));
    }
    for plain in [
        TWO_LINES.to_string(),
        TWO_LINES.replace(
            r#""order_id": "1001","#,
            r#""order_id": "1001", "backfill": false,"#,
        ),
    ] {
        let v = job(OrderEvent::Placed, &plain);
        let entry = &v["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"];
        assert_eq!(entry.get("backfill"), None);
    }
    assert_eq!(
        err(
            OrderEvent::Placed,
            &TWO_LINES.replace(
                r#""order_id": "1001","#,
                r#""order_id": "1001", "backfill": "yes","#
            )
        )
        .pointer,
        "/backfill"
    );
}

#[test]
fn an_order_time_is_a_date_time_never_a_date_alone() {
    // A date alone would be midnight UTC: the evening before for a shop in the Americas.
    for date in ["2026-11-20", "2026-11-19"] {
        let t = TWO_LINES.replace("2026-11-20T10:00:00+01:00", date);
        assert_eq!(
            err(OrderEvent::Placed, &t),
            Invalid::new("/time", "must be an ISO 8601 date-time with offset"),
            "{date}"
        );
    }
    let t = TWO_LINES.replace("2026-11-20T10:00:00+01:00", "2026-11-20T10:00:00Z");
    assert!(order_job(OrderEvent::Placed, &t, NOW).is_ok());
}

#[test]
fn the_buyers_name_and_address_travel_with_the_order() {
    // A guest's first order is often all Klaviyo learns of them: Klaviyo's integration
    // guide sends the name and address on the order's profile.
    let with_buyer = TWO_LINES.replace(
        r#""external_id": "c-1"}"#,
        r#""external_id": "c-1", "first_name": "Sarah", "last_name": "Mason",
            "location": {"address1": "89 E 42nd St", "city": "New York", "region": "NY",
                         "country": "United States", "zip": "10017"}}"#,
    );
    assert_ne!(with_buyer, TWO_LINES);
    let v = job(OrderEvent::Placed, &with_buyer);
    let p = &v["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["profile"]
        ["data"]["attributes"];
    assert_eq!(p["first_name"], "Sarah");
    assert_eq!(p["last_name"], "Mason");
    assert_eq!(
        p["location"],
        json!({"address1": "89 E 42nd St", "city": "New York", "region": "NY",
               "country": "United States", "zip": "10017"})
    );
    // A name or an address names nobody: an identifier is still needed.
    let only_name = r#"{"order_id": "1", "value": 1, "profile": {"first_name": "Sarah"},
        "items": [{"product_id": "P", "name": "N", "quantity": 1, "price": 1}]}"#;
    assert_eq!(err(OrderEvent::Placed, only_name).pointer, "/profile");
    // A blank member is left out, never a reason to refuse the order (platforms send
    // an empty address2 or region); a location left with nothing is left out whole.
    let blank = with_buyer
        .replace(r#""city": "New York""#, r#""city": " ", "address2": """#)
        .replace(r#""first_name": "Sarah""#, r#""first_name": """#);
    let v = job(OrderEvent::Placed, &blank);
    let p = &v["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["profile"]
        ["data"]["attributes"];
    assert_eq!(p.get("first_name"), None);
    assert_eq!(p["location"].get("city"), None);
    assert_eq!(p["location"].get("address2"), None);
    assert_eq!(p["location"]["zip"], "10017");
    let empty = TWO_LINES.replace(
        r#""external_id": "c-1"}"#,
        r#""external_id": "c-1", "location": {"address2": "", "region": null}}"#,
    );
    let v = job(OrderEvent::Placed, &empty);
    let p = &v["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["profile"]
        ["data"]["attributes"];
    assert_eq!(p.get("location"), None, "{p}");
    // A member that is no string, or one the location does not have, is named.
    let number = with_buyer.replace(r#""zip": "10017""#, r#""zip": 10017"#);
    assert_eq!(
        err(OrderEvent::Placed, &number).pointer,
        "/profile/location/zip"
    );
    let unknown = with_buyer.replace(r#""zip": "10017""#, r#""zip": "10017", "street": "x""#);
    let e = err(OrderEvent::Placed, &unknown);
    assert_eq!(e.pointer, "/profile/location/street");
    assert!(e.detail.contains("order's profile location"), "{e:?}");
}

/// A one-line placed order with `profile` and `extra` members on its line.
fn one_line(profile: &str, extra: &str) -> String {
    format!(
        r#"{{"order_id": "o1", "value": 10, "profile": {profile},
            "items": [{{"product_id": "P1", "name": "Tee", "quantity": 1, "price": 10{extra}}}]}}"#
    )
}

/// The profile attributes and the events' properties of an order's job.
fn profile_and_properties(v: &Value) -> (&Value, Vec<&Value>) {
    let entry = &v["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"];
    let events = entry["events"]["data"].as_array().unwrap();
    (
        &entry["profile"]["data"]["attributes"],
        events
            .iter()
            .map(|e| &e["attributes"]["properties"])
            .collect(),
    )
}

#[test]
fn blank_or_null_optional_line_members_are_left_out_and_never_refuse_the_order() {
    // WooCommerce and Shopify send `"sku": ""` for a product without one: an ordinary
    // order, sent as if the member were not there.
    let email = r#"{"email": "b@x.co"}"#;
    let bare = job(OrderEvent::Placed, &one_line(email, ""));
    for blanks in [
        r#", "sku": """#,
        r#", "sku": " ", "brand": "", "url": "", "image_url": "\t ""#,
        r#", "sku": null, "brand": null, "url": null, "image_url": null, "categories": null"#,
    ] {
        assert_eq!(
            job(OrderEvent::Placed, &one_line(email, blanks)),
            bare,
            "{blanks}"
        );
    }
    // A blank or null category is left out, the others kept.
    let v = job(
        OrderEvent::Placed,
        &one_line(email, r#", "categories": ["", "Tops", " ", null]"#),
    );
    let (_, props) = profile_and_properties(&v);
    assert_eq!(props[0]["Items"][0]["Categories"], json!(["Tops"]));
    assert_eq!(props[0]["Categories"], json!(["Tops"]));
    assert_eq!(props[1]["Categories"], json!(["Tops"]));
    // A blank brand is no brand of the order either.
    let two = one_line(email, r#", "brand": """#).replace(
        "]}",
        r#", {"product_id": "P2", "name": "Cap", "quantity": 1, "price": 0, "brand": "Acme"}]}"#,
    );
    let v = job(OrderEvent::Placed, &two);
    let (_, props) = profile_and_properties(&v);
    assert_eq!(props[0]["Brands"], json!(["Acme"]));
    assert_eq!(props[0]["Items"][0].get("Brand"), None);
    assert_eq!(props[1].get("ProductBrand"), None);
    // Required members stay required: blank or null, they are refused by name.
    for (member, pointer) in [
        (r#""name": "Tee""#, "/items/0/name"),
        (r#""product_id": "P1""#, "/items/0/product_id"),
        (r#""order_id": "o1""#, "/order_id"),
    ] {
        let key = member.split(':').next().unwrap();
        for blank in [" \"\"", " \" \"", " null"] {
            let body = one_line(email, "").replace(member, &format!("{key}:{blank}"));
            assert_eq!(err(OrderEvent::Placed, &body).pointer, pointer, "{body}");
        }
    }
    // Blank, these would change what Klaviyo records unseen: refused, never dropped.
    for (member, pointer) in [
        (r#""event_id": "", "#, "/event_id"),
        (r#""value_currency": " ", "#, "/value_currency"),
        (r#""time": "", "#, "/time"),
    ] {
        let body = one_line(email, "").replace(r#""value""#, &format!(r#"{member}"value""#));
        assert_eq!(err(OrderEvent::Refunded, &body).pointer, pointer, "{body}");
    }
}

#[test]
fn a_blank_or_null_identifier_is_not_given_and_one_is_still_needed() {
    // Shopify POS orders can have `"email": ""` beside a phone number.
    for (profile, sent) in [
        (
            r#"{"email": "", "phone_number": "+15005550006"}"#,
            json!({"phone_number": "+15005550006"}),
        ),
        (
            r#"{"email": "b@x.co", "phone_number": "", "external_id": " ", "anonymous_id": ""}"#,
            json!({"email": "b@x.co"}),
        ),
        (
            r#"{"email": null, "phone_number": null, "external_id": "c-1", "anonymous_id": null}"#,
            json!({"external_id": "c-1"}),
        ),
        (
            r#"{"email": " ", "anonymous_id": "a-1", "first_name": "Sam"}"#,
            json!({"anonymous_id": "a-1", "first_name": "Sam"}),
        ),
    ] {
        let v = job(OrderEvent::Placed, &one_line(profile, ""));
        assert_eq!(*profile_and_properties(&v).0, sent, "{profile}");
    }
    let none = Invalid::new(
        "/profile",
        "needs at least one identifier: email, phone_number, external_id, anonymous_id",
    );
    for profile in [
        r#"{"email": "", "phone_number": " ", "external_id": "", "anonymous_id": "\t"}"#,
        r#"{"email": "", "phone_number": null, "first_name": "Sam"}"#,
    ] {
        assert_eq!(
            err(OrderEvent::Placed, &one_line(profile, "")),
            none,
            "{profile}"
        );
    }
    // One that is there is still checked.
    assert_eq!(
        err(
            OrderEvent::Placed,
            &one_line(r#"{"email": "", "phone_number": "555"}"#, "")
        )
        .pointer,
        "/profile/phone_number"
    );
}
