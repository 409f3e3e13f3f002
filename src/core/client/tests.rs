//! Native tests of the client: every call's validation and body shape, identity, one
//! record per task, and the stability of `unique_id` and `time` across resends and
//! reloads. Ids are deterministic (`id-0` is the anonymous id, then `id-1`, ...).

use super::*;
use crate::core::consent::Consent;
use crate::core::jsontext as jt;
use crate::core::queue::{ReportKind, KEEPALIVE_BUDGET, KEEPALIVE_WAIT_MS};
use serde_json::Value as Json;
use std::collections::BTreeMap;

const NOW: u64 = 1_795_669_339_123; // 2026-11-26T05:02:19.123Z
const ALL: usize = usize::MAX;
const IDENTITY_KEY: &str = "klaviyo:AbC123:id";

fn config() -> Config {
    Config::from_json(r#"{"companyId":"AbC123"}"#).unwrap()
}

/// A page: its client, the ids it hands out and the localStorage it writes.
struct Page {
    c: Client,
    ids: u32,
    disk: BTreeMap<String, String>,
}

/// What storage holds, as the adapter hands it over.
/// What `disk` holds, as the adapter hands it over.
fn pairs(disk: &BTreeMap<String, String>) -> String {
    let pairs: Vec<(&str, &str)> = disk.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Stored::pack(&pairs)
}

impl Page {
    fn new() -> Page {
        Page::with(config(), "")
    }

    fn with(config: Config, query: &str) -> Page {
        Page {
            c: Client::new(config, None, query, "id-0"),
            ids: 0,
            disk: BTreeMap::new(),
        }
    }

    fn id(&mut self) -> String {
        self.ids += 1;
        format!("id-{}", self.ids)
    }

    fn call(&mut self, op: Op, args: &[&str]) -> Result<()> {
        let id = self.id();
        self.c.call(op, args, &id, NOW)
    }

    /// The message of a refused call.
    fn refused(&mut self, op: Op, args: &[&str]) -> String {
        self.call(op, args).unwrap_err().message(op.name())
    }

    /// The end of the task: its storage writes, also made to `disk`.
    fn end_task(&mut self) -> Vec<StorageOp> {
        let ops = self.c.take_storage_ops(NOW);
        for op in &ops {
            match op {
                StorageOp::Put { key, value } => self.disk.insert(key.clone(), value.clone()),
                StorageOp::Remove { key } => self.disk.remove(key),
                StorageOp::Erase { prefix } => {
                    self.disk.retain(|k, _| !k.starts_with(prefix.as_str()));
                    None
                }
            };
        }
        ops
    }

    /// Ends the task and takes every request due now.
    fn sent(&mut self) -> Vec<Transmit> {
        self.end_task();
        std::iter::from_fn(|| self.c.poll_transmit(NOW, ALL)).collect()
    }

    /// Ends the task and takes the next request.
    fn send(&mut self) -> Transmit {
        self.end_task();
        self.c.poll_transmit(NOW, ALL).expect("a request")
    }

    /// A new page of the shop over the same storage.
    fn reload(&self) -> Page {
        let identity = self.disk.get(IDENTITY_KEY).map(String::as_str);
        let mut c = Client::new(config(), identity, "", "id-fresh");
        for (k, v) in self.disk.iter().filter(|(k, _)| *k != IDENTITY_KEY) {
            c.load(k, v);
        }
        Page {
            c,
            ids: self.ids + 1000,
            disk: self.disk.clone(),
        }
    }
}

fn ok() -> Outcome {
    Outcome::Status {
        status: 202,
        retry_after_s: None,
        body: String::new(),
    }
}

fn parse(t: &Transmit) -> Json {
    serde_json::from_str::<Json>(&t.body).expect("a valid JSON body")
}

fn at<'a>(v: &'a Json, path: &[&str]) -> &'a Json {
    path.iter().fold(v, |v, k| v.get(k).unwrap_or(&Json::Null))
}

fn num(n: &str) -> Json {
    serde_json::from_str(n).expect("a number")
}

/// `data.attributes` of a request.
fn attrs(t: &Transmit) -> Json {
    at(&parse(t), &["data", "attributes"]).clone()
}

/// The profile attributes of an event request.
fn profile(t: &Transmit) -> Json {
    at(&attrs(t), &["profile", "data", "attributes"]).clone()
}

fn queue_puts(ops: &[StorageOp]) -> usize {
    ops.iter()
        .filter(|op| matches!(op, StorageOp::Put { key, .. } if key.contains(":q:")))
        .count()
}

// ------------------------------------------------------------ track

#[test]
fn track_queues_a_client_event_with_its_unique_id_and_time() {
    let mut p = Page::new();
    p.call(
        Op::Track,
        &[
            r#""Ordered Sample""#,
            r#"{"any":"props"}"#,
            r#"{"value":9.5,"valueCurrency":"usd"}"#,
        ],
    )
    .unwrap();
    let t = p.send();
    assert_eq!((t.endpoint, t.items), (Endpoint::Events, 1));
    assert_eq!(
        t.body,
        r#"{"data":{"type":"event","attributes":{"properties":{"any":"props"},"time":"2026-11-26T05:02:19Z","value":9.5,"value_currency":"USD","unique_id":"id-1","metric":{"data":{"type":"metric","attributes":{"name":"Ordered Sample"}}},"profile":{"data":{"type":"profile","attributes":{"anonymous_id":"id-0"}}}}}}"#
    );
    assert_eq!(p.c.anonymous_id(), "id-0");
}

#[test]
fn omitted_properties_and_options_are_empty() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""M""#]).unwrap();
    p.call(Op::Track, &[r#""M""#, "null", "null"]).unwrap();
    let t = p.send();
    let v = parse(&t);
    let Json::Array(events) = at(&v, &["data", "attributes", "events", "data"]) else {
        panic!("{}", t.body)
    };
    for e in events {
        assert_eq!(at(e, &["attributes", "properties"]), &serde_json::json!({}));
        assert_eq!(at(e, &["attributes", "value"]), &Json::Null);
    }
}

#[test]
fn options_time_takes_iso_with_an_offset_a_date_and_epoch_milliseconds() {
    for (time, sent) in [
        (r#""2026-11-26T07:02:19+02:00""#, "2026-11-26T05:02:19Z"),
        (r#""2026-11-20T10:00:00.500Z""#, "2026-11-20T10:00:00Z"),
        (r#""2026-11-20""#, "2026-11-20T00:00:00Z"),
        ("1795669339999", "2026-11-26T05:02:19Z"),
        ("null", "2026-11-26T05:02:19Z"),
    ] {
        let mut p = Page::new();
        let opts = format!(r#"{{"time":{time}}}"#);
        p.call(Op::Track, &[r#""M""#, "{}", &opts]).unwrap();
        assert_eq!(
            at(&attrs(&p.send()), &["time"]).as_str(),
            Some(sent),
            "{time}"
        );
    }
    for time in [
        r#""yesterday""#,
        r#""2026-11-20T10:00:00""#,
        r#""1989-12-31T23:59:59Z""#,
        r#""2028-01-01T00:00:00Z""#,
        "1.5e12",
        "true",
        "[]",
    ] {
        let mut p = Page::new();
        let opts = format!(r#"{{"time":{time}}}"#);
        let e = p.call(Op::Track, &[r#""M""#, "{}", &opts]).unwrap_err();
        assert_eq!(e.field, "time", "{time}");
        assert_eq!(p.c.pending(), 0);
    }
}

#[test]
fn a_unique_id_with_quotes_and_backslashes_makes_valid_json_bodies() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""M""#, "{}", r#"{"uniqueId":"a\"b\\c"}"#])
        .unwrap();
    let t = p.send();
    assert_eq!(at(&attrs(&t), &["unique_id"]).as_str(), Some(r#"a"b\c"#));
    p.c.on_outcome(t.id, ok(), NOW, 0);
    // Two in one bulk request.
    p.call(Op::Track, &[r#""M""#, "{}", r#"{"uniqueId":"q\"1"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""M""#, "{}", r#"{"uniqueId":"q\\1"}"#])
        .unwrap();
    let t = p.send();
    assert_eq!(t.endpoint, Endpoint::BulkEvents);
    let v = parse(&t);
    let Json::Array(events) = at(&v, &["data", "attributes", "events", "data"]) else {
        panic!("{}", t.body)
    };
    let ids: Vec<&str> = events
        .iter()
        .map(|e| at(e, &["attributes", "unique_id"]).as_str().unwrap())
        .collect();
    assert_eq!(ids, [r#"q"1"#, r#"q\1"#]);
    // And they read back from storage the same way.
    let mut next = p.reload();
    assert_eq!(next.c.poll_transmit(NOW, ALL).unwrap().body, t.body);
}

#[test]
fn bad_track_input_names_the_field() {
    let long_metric = jt::quote(&"m".repeat(129));
    let long_id = format!(r#"{{"uniqueId":{}}}"#, jt::quote(&"u".repeat(256)));
    let cases: &[(&str, &str, &str, &str)] = &[
        ("null", "{}", "{}", "track: metric must be a string"),
        ("7", "{}", "{}", "track: metric must be a string"),
        (
            r#""""#,
            "{}",
            "{}",
            "track: metric must be 1 to 128 characters",
        ),
        (
            r#""  ""#,
            "{}",
            "{}",
            "track: metric must be 1 to 128 characters",
        ),
        (
            &long_metric,
            "{}",
            "{}",
            "track: metric must be 1 to 128 characters",
        ),
        (r#""M""#, "[]", "{}", "track: properties must be an object"),
        (
            r#""M""#,
            r#""x""#,
            "{}",
            "track: properties must be an object",
        ),
        (r#""M""#, "{}", "5", "track: options must be an object"),
        (
            r#""M""#,
            "{}",
            r#"{"value":"9"}"#,
            "track: value must be a finite number",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"value":true}"#,
            "track: value must be a finite number",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"value":null,"valueCurrency":"US"}"#,
            "track: valueCurrency must be a three-letter ISO 4217 code, like USD",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"valueCurrency":7}"#,
            "track: valueCurrency must be a three-letter ISO 4217 code, like USD",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"time":"yesterday"}"#,
            "track: time must be a Date, epoch milliseconds or an ISO 8601 time with offset",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"time":1.5}"#,
            "track: time must be whole epoch milliseconds",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"time":"1989-12-31T23:59:59Z"}"#,
            "track: time must be between 1990 and one year from now",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"uniqueId":""}"#,
            "track: uniqueId must be 1 to 255 characters without control characters",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"uniqueId":"a\nb"}"#,
            "track: uniqueId must be 1 to 255 characters without control characters",
        ),
        (
            r#""M""#,
            "{}",
            r#"{"uniqueId":12}"#,
            "track: uniqueId must be 1 to 255 characters without control characters",
        ),
        (
            r#""M""#,
            "{}",
            &long_id,
            "track: uniqueId must be 1 to 255 characters without control characters",
        ),
    ];
    for (metric, props, opts, msg) in cases {
        let mut p = Page::new();
        assert_eq!(p.refused(Op::Track, &[metric, props, opts]), *msg);
        assert_eq!(p.c.pending(), 0);
    }
}

#[test]
fn oversized_properties_are_refused_before_queueing() {
    let mut p = Page::new();
    let big = format!(
        r#"{{"a":"{}"}}"#,
        "x".repeat(validate::MAX_STRING_BYTES + 1)
    );
    assert_eq!(
        p.refused(Op::Track, &[r#""M""#, &big]),
        "track: properties.a is a string longer than 100 KB"
    );
    let keys: Vec<String> = (0..401).map(|i| format!(r#""k{i}":0"#)).collect();
    let many = format!("{{{}}}", keys.join(","));
    assert_eq!(
        p.refused(Op::Track, &[r#""M""#, &many]),
        "track: properties has more than 400 keys"
    );
    let chunks: Vec<String> = (0..60)
        .map(|i| format!(r#""k{i}":"{}""#, "y".repeat(100_000)))
        .collect();
    let huge = format!("{{{}}}", chunks.join(","));
    assert_eq!(
        p.refused(Op::Track, &[r#""M""#, &huge]),
        "track: body is larger than 5 MB"
    );
    assert_eq!(p.c.pending(), 0);
}

#[test]
fn an_argument_that_is_not_json_names_the_argument() {
    let mut p = Page::new();
    let plain = "must be plain JSON data (no cycles, functions or BigInt)";
    for (op, args, name) in [
        (Op::Track, &["M", "{}"][..], "metric"),
        (Op::Track, &[r#""M""#, "{bad"], "properties"),
        (Op::Track, &[r#""M""#, "{}", "undefined"], "options"),
        (Op::Identify, &["{"], "profile"),
        (Op::ViewedProduct, &["{", "{}"], "properties"),
        (Op::AddedToCart, &["{}", "nope"], "options"),
        (Op::Subscribe, &[""], "options"),
        (Op::BackInStock, &["[1,]"], "options"),
    ] {
        assert_eq!(
            p.refused(op, args),
            format!("{}: {name} {plain}", op.name())
        );
    }
    assert_eq!(p.c.pending(), 0);
}

#[test]
fn a_refused_call_queues_nothing_and_writes_nothing() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""M""#]).unwrap();
    p.end_task();
    for (op, args) in [
        (Op::Track, &[r#""""#][..]),
        (Op::Identify, &[r#"{"email":"x@"}"#]),
        (Op::AddedToCart, &[r#"{"ProductID":"1","ProductName":"P"}"#]),
        (Op::Subscribe, &[r#"{"listId":"L"}"#]),
    ] {
        assert!(p.call(op, args).is_err());
    }
    assert_eq!(p.c.pending(), 1);
    assert!(p.end_task().is_empty(), "no record, no identity write");
    assert_eq!(p.c.poll_transmit(NOW, ALL).unwrap().items, 1);
}

// ------------------------------------------------------------ one task, one record

#[test]
fn the_calls_of_one_task_are_one_record_and_nothing_is_sent_before_it() {
    let mut p = Page::new();
    p.end_task(); // the new anonymous id
    p.call(Op::Track, &[r#""A""#]).unwrap();
    p.call(
        Op::ViewedProduct,
        &[r#"{"ProductID":"1","ProductName":"P","Price":2}"#],
    )
    .unwrap();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""B""#]).unwrap();
    assert!(p.c.poll_transmit(NOW, ALL).is_none());
    assert_eq!(p.c.poll_timeout(), None);
    let ops = p.end_task();
    assert_eq!(queue_puts(&ops), 1);
    assert_eq!(ops.len(), 2, "the record and the identity: {ops:?}");
    assert_eq!(p.c.poll_timeout(), Some(NOW));
    // A later task: one new record, the first one untouched.
    p.call(Op::Track, &[r#""C""#]).unwrap();
    let ops = p.end_task();
    assert_eq!(ops.len(), 1);
    assert_eq!(queue_puts(&ops), 1);
    assert_eq!(p.disk.len(), 3);
    assert_eq!(p.c.pending(), 5);
}

#[test]
fn identify_in_the_middle_of_a_task_gives_each_event_its_own_profile() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""Before""#]).unwrap();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""After""#]).unwrap();
    p.end_task();
    let check = |c: &mut Client| {
        let before = c.poll_transmit(NOW, ALL).unwrap();
        assert_eq!(profile(&before).get("email"), None);
        let ident = c.poll_transmit(NOW, ALL).unwrap();
        assert_eq!(ident.endpoint, Endpoint::Profiles);
        let after = c.poll_transmit(NOW, ALL).unwrap();
        assert_eq!(
            at(&attrs(&after), &["metric", "data", "attributes", "name"]).as_str(),
            Some("After")
        );
        assert_eq!(
            profile(&after).get("email"),
            Some(&Json::from("ann@example.com"))
        );
        assert!(c.poll_transmit(NOW, ALL).is_none());
    };
    let mut next = p.reload();
    check(&mut p.c);
    check(&mut next.c);
}

#[test]
fn a_resend_carries_the_same_unique_id_and_time() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""M""#]).unwrap();
    let first = p.send();
    p.c.on_outcome(first.id, Outcome::Network, NOW + 5, 0);
    let later = NOW + 3_600_000;
    let second = p.c.poll_transmit(later, ALL).unwrap();
    assert_eq!(first.body, second.body);
}

#[test]
fn a_reload_resends_the_same_body_from_storage() {
    let mut p = Page::new();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""M""#, r#"{"n":1}"#]).unwrap();
    let profile_req = p.send();
    let sent = p.c.poll_transmit(NOW, ALL).unwrap();
    // The page dies with both requests in flight; the next page resends them.
    let mut next = p.reload();
    assert!(next.end_task().is_empty(), "the identity is unchanged");
    assert_eq!(next.c.pending(), 2);
    assert_eq!(next.c.anonymous_id(), "id-0");
    assert_eq!(
        next.c.poll_transmit(NOW + 10, ALL).unwrap().body,
        profile_req.body
    );
    assert_eq!(next.c.poll_transmit(NOW + 10, ALL).unwrap().body, sent.body);
}

#[test]
fn a_keepalive_request_is_not_raced_by_the_next_page() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""M""#]).unwrap();
    p.end_task();
    let t = p.c.poll_transmit(NOW, KEEPALIVE_BUDGET).unwrap();
    p.c.on_hide(NOW);
    p.end_task();
    assert_eq!(p.disk.len(), 3, "identity, record and mark");
    let mut next = p.reload();
    assert!(next.c.poll_transmit(NOW + 1, ALL).is_none());
    assert_eq!(next.c.poll_timeout(), Some(NOW + KEEPALIVE_WAIT_MS));
    let again = next.c.poll_transmit(NOW + KEEPALIVE_WAIT_MS, ALL).unwrap();
    assert_eq!(again.body, t.body);
}

#[test]
fn ten_thousand_calls_in_one_task_are_stored_as_the_newest_thousand() {
    let mut p = Page::new();
    let args = [r#""Viewed Page""#, r#"{"url":"https://shop.example/p/1"}"#];
    let started = std::time::Instant::now();
    for n in 1..=10_000 {
        p.c.call(Op::Track, &args, &format!("id-{n}"), NOW).unwrap();
    }
    let ops = p.c.take_storage_ops(NOW);
    let took = started.elapsed();
    eprintln!("10k track calls and the end of the task: {took:?}");
    assert_eq!(queue_puts(&ops), 1);
    assert_eq!(p.c.pending(), 10_000);
    let evicted: usize =
        p.c.take_reports()
            .iter()
            .filter(|r| r.kind == ReportKind::Evicted)
            .map(|r| r.count)
            .sum();
    assert_eq!(evicted, 9_000);
    // Generous: measured at a few tens of ms in debug builds.
    assert!(took.as_millis() < 2_000, "{took:?}");
}

// ------------------------------------------------------------ identity

#[test]
fn identify_sends_a_profile_and_later_events_carry_the_merged_profile() {
    let mut p = Page::new();
    p.call(
        Op::Identify,
        &[r#"{"email":"ann@example.com","first_name":"Ann","properties":{"vip":true},"location":{"city":"Oslo","latitude":59.9}}"#],
    )
    .unwrap();
    let t = p.send();
    assert_eq!(t.endpoint, Endpoint::Profiles);
    assert_eq!(
        t.body,
        r#"{"data":{"type":"profile","attributes":{"email":"ann@example.com","first_name":"Ann","properties":{"vip":true},"location":{"city":"Oslo","latitude":59.9},"anonymous_id":"id-0"}}}"#
    );
    p.c.on_outcome(t.id, ok(), NOW, 0);
    p.call(
        Op::Identify,
        &[r#"{"first_name":null,"properties":{"tier":2}}"#],
    )
    .unwrap();
    p.send();
    p.call(Op::Track, &[r#""M""#]).unwrap();
    let ev = p.c.poll_transmit(NOW, ALL);
    assert!(ev.is_none(), "the new event waits for the end of its task");
    let ev = p.send();
    let prof = profile(&ev);
    assert_eq!(prof.get("email"), Some(&Json::from("ann@example.com")));
    assert_eq!(prof.get("first_name"), None);
    assert_eq!(at(&prof, &["properties", "vip"]), &Json::Bool(true));
    assert_eq!(at(&prof, &["properties", "tier"]), &num("2"));
    assert_eq!(at(&prof, &["location", "city"]).as_str(), Some("Oslo"));
    assert_eq!(prof.get("anonymous_id"), Some(&Json::from("id-0")));
}

#[test]
fn repeated_identify_calls_are_coalesced_into_one_profile_request() {
    let mut p = Page::new();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::Identify, &[r#"{"first_name":"Ann"}"#]).unwrap();
    p.end_task();
    p.call(Op::Identify, &[r#"{"last_name":"Lee"}"#]).unwrap();
    assert_eq!(p.c.pending(), 1, "each replaces the one still queued");
    let t = p.send();
    let a = attrs(&t);
    for (k, v) in [
        ("email", "ann@example.com"),
        ("first_name", "Ann"),
        ("last_name", "Lee"),
    ] {
        assert_eq!(a.get(k), Some(&Json::from(v)));
    }
    // One in flight is not replaced: the next goes after it.
    p.call(Op::Identify, &[r#"{"title":"CEO"}"#]).unwrap();
    p.end_task();
    assert_eq!(p.c.pending(), 2);
    p.c.on_outcome(t.id, ok(), NOW, 0);
    assert_eq!(attrs(&p.send()).get("title"), Some(&Json::from("CEO")));
}

#[test]
fn blank_and_null_members_of_identify_are_not_given_and_never_take_an_identifier_back() {
    // Storefront data has "" and null for what a shopper has not given (a name): before,
    // a blank one refused the whole identify, and the email beside it never went.
    let mut p = Page::new();
    p.end_task();
    p.call(
        Op::Identify,
        &[r#"{"email":"ann@example.com","last_name":"","first_name":" ","external_id":null,"organization":"\t"}"#],
    )
    .unwrap();
    p.end_task();
    let t = p.send();
    let a = attrs(&t);
    assert_eq!(a.get("email"), Some(&Json::from("ann@example.com")));
    for k in ["last_name", "first_name", "external_id", "organization"] {
        assert_eq!(a.get(k), None, "{k} left out");
    }
    p.c.on_outcome(t.id, ok(), NOW, 0);
    // A later identify whose email is null or blank (a GraphQL `Maybe` not loaded yet)
    // keeps the email: a logout is `reset()`. Another attribute's null removes it.
    p.call(Op::Identify, &[r#"{"first_name":"Ann","last_name":"Lee"}"#])
        .unwrap();
    p.call(
        Op::Identify,
        &[r#"{"email":null,"phone_number":"","last_name":null,"title":"CEO"}"#],
    )
    .unwrap();
    p.end_task();
    let a = attrs(&p.send());
    assert_eq!(a.get("email"), Some(&Json::from("ann@example.com")));
    assert_eq!(a.get("first_name"), Some(&Json::from("Ann")));
    assert_eq!(a.get("last_name"), None);
    assert_eq!(a.get("phone_number"), None);
    assert!(p.c.is_identified());
}

#[test]
fn an_identifier_left_null_or_blank_beside_another_is_not_the_earlier_persons() {
    // Someone else signing in without a `reset()` (a phone-only customer): Ann's email
    // must not go beside Bob's ids, or Klaviyo merges the two profiles.
    for left in ["null", "\"\""] {
        let mut p = Page::new();
        p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
            .unwrap();
        p.end_task();
        let t = p.send();
        p.c.on_outcome(t.id, ok(), NOW, 0);
        let bob =
            format!(r#"{{"email":{left},"external_id":"bob-1","phone_number":"+15005550006"}}"#);
        p.call(Op::Identify, &[bob.as_str()]).unwrap();
        p.end_task();
        let a = attrs(&p.send());
        assert_eq!(a.get("email"), None, "{left}");
        assert_eq!(a.get("external_id"), Some(&Json::from("bob-1")));
    }
    // A visitor named only by a signup form: a sign-in whose email is blank still starts
    // from nobody, not from the subscriber.
    let mut p = subscribed_by_email();
    p.send();
    p.call(Op::Identify, &[r#"{"email":"","first_name":"Bob"}"#])
        .unwrap();
    p.end_task();
    let t = p.c.poll_transmit(NOW, ALL).expect("the profile");
    let a = attrs(&t);
    assert_eq!(a.get("email"), None);
    assert_eq!(a.get("first_name"), Some(&Json::from("Bob")));
}

#[test]
fn bad_identify_input_names_the_field() {
    for (args, msg) in [
        (r#"{"email":"x@"}"#, "identify: email is not a valid email address"),
        (
            r#"{"email":""}"#,
            "identify: profile needs at least one of email, phone_number, external_id or an attribute",
        ),
        (
            r#"{"phone_number":"5550006"}"#,
            "identify: phone_number must be in E.164 format, like +15005550006",
        ),
        (
            r#"{"nickname":"x"}"#,
            "identify: nickname is not a Klaviyo profile attribute (put custom data in properties)",
        ),
        (
            "{}",
            "identify: profile needs at least one of email, phone_number, external_id or an attribute",
        ),
        (
            r#"{"email":null}"#,
            "identify: profile needs at least one of email, phone_number, external_id or an attribute",
        ),
        ("[1]", "identify: profile must be an object"),
        ("null", "identify: profile needs at least one of email, phone_number, external_id or an attribute"),
        (
            r#"{"first_name":" "}"#,
            "identify: profile needs at least one of email, phone_number, external_id or an attribute",
        ),
        (r#"{"external_id":5}"#, "identify: external_id must be a non-empty string"),
        (r#"{"properties":[]}"#, "identify: properties must be an object"),
        (r#"{"location":"Oslo"}"#, "identify: location must be an object"),
        (
            r#"{"location":{"street":"x"}}"#,
            "identify: location has an unknown key (see Klaviyo's ProfileLocation)",
        ),
        (
            r#"{"location":{"city":5}}"#,
            "identify: location values must be strings (latitude/longitude may be numbers)",
        ),
    ] {
        let mut p = Page::new();
        p.end_task();
        assert_eq!(p.refused(Op::Identify, &[args]), msg, "{args}");
        assert_eq!(p.c.pending(), 0);
        assert!(p.end_task().is_empty(), "the identity is unchanged");
    }
    let mut p = Page::new();
    p.call(
        Op::Identify,
        &[r#"{"phone_number":"+15005550006","external_id":"c-9","location":{"latitude":59.9,"zip":null}}"#],
    )
    .unwrap();
}

#[test]
fn kx_from_the_page_url_is_sent_and_remembered() {
    let mut p = Page::with(config(), "?utm_source=x&_kx=abc%3D%3D.XyZ");
    p.call(Op::Track, &[r#""M""#]).unwrap();
    assert_eq!(
        profile(&p.send()).get("_kx"),
        Some(&Json::from("abc==.XyZ"))
    );
    let stored = p.disk.get(IDENTITY_KEY).unwrap();
    assert!(stored.contains(r#""_kx":"abc==.XyZ""#));
    let mut next = p.reload();
    next.call(Op::Track, &[r#""M""#]).unwrap();
    let t = next.send();
    assert_eq!(profile(&t).get("_kx"), Some(&Json::from("abc==.XyZ")));
    // An empty `_kx` changes nothing.
    let next = Client::new(config(), Some(stored), "?_kx=", "id-x");
    assert_eq!(next.anonymous_id(), "id-0");
}

#[test]
fn the_anonymous_id_is_made_once_and_kept() {
    let mut p = Page::new();
    let ops = p.end_task();
    assert_eq!(
        ops,
        vec![StorageOp::Put {
            key: IDENTITY_KEY.into(),
            value: r#"{"anonymous_id":"id-0","profile":{}}"#.into()
        }]
    );
    let mut next = p.reload();
    assert_eq!(next.c.anonymous_id(), "id-0");
    assert!(next.end_task().is_empty());
    // Garbage in its place is replaced by a fresh identity.
    let c = Client::new(config(), Some("{bad"), "", "id-new");
    assert_eq!(c.anonymous_id(), "id-new");
}

#[test]
fn reset_starts_a_new_anonymous_profile_and_queued_calls_keep_theirs() {
    let mut p = Page::new();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""Before""#]).unwrap();
    p.c.reset("id-reset");
    assert_eq!(p.c.anonymous_id(), "id-reset");
    p.call(Op::Track, &[r#""After""#]).unwrap();
    let ops = p.end_task();
    assert!(ops.contains(&StorageOp::Put {
        key: IDENTITY_KEY.into(),
        value: r#"{"anonymous_id":"id-reset","profile":{}}"#.into()
    }));
    let ident = p.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(ident.endpoint, Endpoint::Profiles);
    let before = p.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(
        profile(&before).get("email"),
        Some(&Json::from("ann@example.com"))
    );
    assert_eq!(
        profile(&before).get("anonymous_id"),
        Some(&Json::from("id-0"))
    );
    let after = p.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(profile(&after).get("email"), None);
    assert_eq!(
        profile(&after).get("anonymous_id"),
        Some(&Json::from("id-reset"))
    );
}

#[test]
fn an_identity_written_by_another_tab_is_followed() {
    let mut other = Page::new();
    other
        .call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    other.end_task();
    let mut p = Page::new();
    let value = other.disk.get(IDENTITY_KEY).unwrap();
    p.c.on_storage_change(IDENTITY_KEY, Some(value));
    p.c.on_storage_change(IDENTITY_KEY, None);
    p.call(Op::Track, &[r#""M""#]).unwrap();
    let prof = profile(&p.send());
    assert_eq!(prof.get("email"), Some(&Json::from("ann@example.com")));
}

// ------------------------------------------------------------ e-commerce

#[test]
fn viewed_product_uses_price_as_value() {
    let mut p = Page::new();
    p.call(
        Op::ViewedProduct,
        &[r#"{"ProductID":1111,"ProductName":"Pooh","SKU":"WINNIEPOOH","Price":9.99,"Categories":["Kids"],"URL":"https://x/p","ImageURL":"https://x/i.png","Brand":"Kids Book","CompareAtPrice":12}"#],
    )
    .unwrap();
    let a = attrs(&p.send());
    assert_eq!(
        at(&a, &["metric", "data", "attributes", "name"]).as_str(),
        Some("Viewed Product")
    );
    assert_eq!(at(&a, &["value"]), &num("9.99"));
    assert_eq!(at(&a, &["properties", "SKU"]).as_str(), Some("WINNIEPOOH"));
    assert_eq!(at(&a, &["properties", "ProductID"]), &num("1111"));
    // An explicit value wins over the price.
    let mut p = Page::new();
    p.call(
        Op::ViewedProduct,
        &[
            r#"{"ProductID":"1","ProductName":"P","Price":9.99}"#,
            r#"{"value":5,"valueCurrency":"EUR"}"#,
        ],
    )
    .unwrap();
    let a = attrs(&p.send());
    assert_eq!(
        (at(&a, &["value"]), at(&a, &["value_currency"]).as_str()),
        (&num("5"), Some("EUR"))
    );
}

#[test]
fn bad_e_commerce_input_names_the_field() {
    for (op, props, msg) in [
        (
            Op::ViewedProduct,
            r#"{"ProductName":"P"}"#,
            "viewedProduct: ProductID is required (a string or number)",
        ),
        (
            Op::ViewedProduct,
            r#"{"ProductID":"1"}"#,
            "viewedProduct: ProductName must be a non-empty string",
        ),
        (
            Op::ViewedProduct,
            r#"{"ProductID":"1","ProductName":"P","Price":"9"}"#,
            "viewedProduct: Price must be a finite number",
        ),
        (
            Op::ViewedProduct,
            r#"{"ProductID":"1","ProductName":"P","Categories":"a"}"#,
            "viewedProduct: Categories must be a list",
        ),
        (
            Op::ViewedProduct,
            r#"{"ProductID":"1","ProductName":"P","URL":5}"#,
            "viewedProduct: URL must be a string",
        ),
        (
            Op::ViewedProduct,
            "[]",
            "viewedProduct: properties must be an object",
        ),
        (
            Op::AddedToCart,
            r#"{"ProductID":"p","ProductName":"P"}"#,
            "addedToCart: Price is required and must be a number",
        ),
        (
            Op::AddedToCart,
            r#"{"ProductID":"p","ProductName":"P","Price":1,"Quantity":0}"#,
            "addedToCart: Quantity must be greater than zero",
        ),
        (
            Op::AddedToCart,
            r#"{"ProductID":"p","ProductName":"P","Price":1,"Quantity":-2}"#,
            "addedToCart: Quantity must be greater than zero",
        ),
        (
            Op::AddedToCart,
            r#"{"ProductID":"p","ProductName":"P","Price":1,"ItemNames":[1]}"#,
            "addedToCart: ItemNames must be a list of strings",
        ),
        (
            Op::AddedToCart,
            r#"{"ProductID":"p","ProductName":"P","Price":1,"Items":{}}"#,
            "addedToCart: Items must be a list",
        ),
        (
            Op::StartedCheckout,
            r#"{"value":"x"}"#,
            "startedCheckout: value must be a finite number",
        ),
        (
            Op::StartedCheckout,
            r#"{"CheckoutURL":1}"#,
            "startedCheckout: CheckoutURL must be a string",
        ),
        (
            Op::StartedCheckout,
            r#"{"Items":{}}"#,
            "startedCheckout: Items must be a list",
        ),
    ] {
        let mut p = Page::new();
        assert_eq!(p.refused(op, &[props]), msg, "{props}");
        assert_eq!(p.c.pending(), 0);
    }
}

#[test]
fn added_to_cart_value_is_cart_total_else_price_times_quantity_in_exact_decimals() {
    let mut p = Page::new();
    p.call(
        Op::AddedToCart,
        &[r#"{"ProductID":"p","ProductName":"P","Quantity":3,"Price":19.99}"#],
    )
    .unwrap();
    assert_eq!(at(&attrs(&p.send()), &["value"]), &num("59.97"));
    let mut p = Page::new();
    p.call(
        Op::AddedToCart,
        &[r#"{"ProductID":"p","ProductName":"P","Quantity":1,"Price":5,"CartTotal":42.5,"ItemNames":["P","Q"],"Items":[{"ProductID":"q"}]}"#],
    )
    .unwrap();
    let a = attrs(&p.send());
    assert_eq!(at(&a, &["value"]), &num("42.5"));
    assert_eq!(at(&a, &["properties", "CartTotal"]), &num("42.5"));
    // The item under the names Klaviyo's abandoned-cart templates read.
    assert_eq!(
        at(&a, &["properties", "AddedItemProductID"]).as_str(),
        Some("p")
    );
    assert_eq!(at(&a, &["properties"]).get("ProductID"), None);
}

#[test]
fn started_checkout_moves_value_out_of_the_properties() {
    let mut p = Page::new();
    p.call(
        Op::StartedCheckout,
        &[r#"{"CheckoutURL":"https://x/c","ItemNames":["A"],"Items":[],"value":30,"Categories":["K"]}"#],
    )
    .unwrap();
    let a = attrs(&p.send());
    assert_eq!(
        at(&a, &["metric", "data", "attributes", "name"]).as_str(),
        Some("Started Checkout")
    );
    assert_eq!(at(&a, &["value"]), &num("30"));
    assert_eq!(at(&a, &["properties"]).get("value"), None);
    assert_eq!(
        at(&a, &["properties", "CheckoutURL"]).as_str(),
        Some("https://x/c")
    );
}

// ------------------------------------------------------------ subscriptions

#[test]
fn subscribe_builds_consent_for_each_channel() {
    let mut p = Page::new();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"Y6nRLr","email":"ann@example.com","phone_number":"+15005550006","channels":["email","SMS","email"],"customSource":"Footer"}"#],
    )
    .unwrap();
    let t = p.send();
    assert_eq!(t.endpoint, Endpoint::Subscriptions);
    assert_eq!(
        t.body,
        r#"{"data":{"type":"subscription","attributes":{"custom_source":"Footer","profile":{"data":{"type":"profile","attributes":{"email":"ann@example.com","phone_number":"+15005550006","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}},"sms":{"marketing":{"consent":"SUBSCRIBED"}}}}}}},"relationships":{"list":{"data":{"type":"list","id":"Y6nRLr"}}}}}"#
    );
    assert!(serde_json::from_str::<Json>(&t.body).is_ok());
}

#[test]
fn a_signup_forms_empty_optional_field_is_not_given() {
    // A footer form with its phone field left empty: before, the `""` refused the email
    // subscription; and a back-in-stock form by SMS with the email left empty.
    let mut p = Page::new();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"Y6nRLr","email":"ann@example.com","phone_number":"","channels":["email"]}"#],
    )
    .unwrap();
    let t = p.send();
    let sent: Json = serde_json::from_str(&t.body).unwrap();
    let profile = &sent["data"]["attributes"]["profile"]["data"]["attributes"];
    assert_eq!(profile["email"], "ann@example.com");
    assert_eq!(profile.get("phone_number"), None);
    let mut p = Page::new();
    p.call(
        Op::BackInStock,
        &[r#"{"variantId":"$custom:::$default:::SKU-1","email":" ","phone_number":"+15005550006","channels":["sms"]}"#],
    )
    .unwrap();
    let sent: Json = serde_json::from_str(&p.send().body).unwrap();
    let profile = &sent["data"]["attributes"]["profile"]["data"]["attributes"];
    assert_eq!(profile.get("email"), None);
    assert_eq!(profile["phone_number"], "+15005550006");
    // Left empty where the channel needs it: refused by name, as when left out.
    let mut p = Page::new();
    assert_eq!(
        p.refused(
            Op::Subscribe,
            &[r#"{"listId":"Y6nRLr","email":"","phone_number":"+15005550006","channels":["email"]}"#]
        ),
        "subscribe: email is required to subscribe to this channel"
    );
}

/// A page whose visitor a subscription named (`sub@example.com`), its request queued.
fn subscribed_by_email() -> Page {
    let mut p = Page::new();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"L","email":"sub@example.com","channels":["email"]}"#],
    )
    .unwrap();
    p
}

#[test]
fn a_signup_forms_empty_email_is_never_filled_from_the_device() {
    // A subscriber on this device before (perhaps another person): an empty email field
    // is refused by name, never sent as theirs; a blank custom source is not given.
    let mut p = subscribed_by_email();
    p.send();
    for email in ["\"\"", "\"  \""] {
        let call = format!(r#"{{"listId":"L","email":{email},"channels":["email"]}}"#);
        assert_eq!(
            p.refused(Op::Subscribe, &[call.as_str()]),
            "subscribe: email is required to subscribe to this channel"
        );
    }
    let call = r#"{"variantId":"$custom:::$default:::SKU-1","email":"","channels":["email"]}"#;
    assert_eq!(
        p.refused(Op::BackInStock, &[call]),
        "backInStock: email or phone_number is required"
    );
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"L","email":"new@example.com","channels":["email"],"customSource":""}"#],
    )
    .unwrap();
    let sent = attrs(&p.send());
    assert_eq!(sent.get("custom_source"), None);
}

#[test]
fn subscribe_keeps_the_channels_in_the_order_given() {
    let mut p = Page::new();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"L","email":"a@b.co","phone_number":"+15005550006","channels":["Sms","email","sms"]}"#],
    )
    .unwrap();
    let body = p.send().body;
    assert!(
        body.contains(r#""subscriptions":{"sms":{"marketing":{"consent":"SUBSCRIBED"}},"email":"#),
        "{body}"
    );
}

#[test]
fn bad_subscribe_input_names_the_field() {
    for (args, msg) in [
        (
            r#"{"email":"a@b.co","channels":["email"]}"#,
            "subscribe: listId must be a non-empty string",
        ),
        (
            r#"{"listId":"L","email":"a@b.co"}"#,
            r#"subscribe: channels must be a list like ["email"]"#,
        ),
        (
            r#"{"listId":"L","email":"a@b.co","channels":["fax"]}"#,
            r#"subscribe: channels may only contain "email" and "sms""#,
        ),
        (
            r#"{"listId":"L","email":"a@b.co","channels":[]}"#,
            "subscribe: channels must name at least one channel",
        ),
        (
            r#"{"listId":"L","channels":["email"]}"#,
            "subscribe: email is required to subscribe to this channel",
        ),
        (
            r#"{"listId":"L","email":"a@b.co","channels":["sms"]}"#,
            "subscribe: phone_number is required to subscribe to this channel",
        ),
        (
            r#"{"listId":"L","email":"nope","channels":["email"]}"#,
            "subscribe: email is not a valid email address",
        ),
        (
            r#"{"listId":"L","phone_number":"555","channels":["sms"]}"#,
            "subscribe: phone_number must be in E.164 format, like +15005550006",
        ),
        (
            r#"{"listId":"L","email":"a@b.co","channels":["email"],"customSource":5}"#,
            "subscribe: customSource must be a non-empty string",
        ),
        ("5", "subscribe: options must be an object"),
    ] {
        let mut p = Page::new();
        assert_eq!(p.refused(Op::Subscribe, &[args]), msg, "{args}");
        assert_eq!(p.c.pending(), 0);
    }
}

#[test]
fn subscribe_uses_the_identified_email() {
    let mut p = Page::new();
    p.call(
        Op::Identify,
        &[r#"{"email":"ann@example.com","first_name":"Ann"}"#],
    )
    .unwrap();
    p.call(Op::Subscribe, &[r#"{"listId":"L","channels":["email"]}"#])
        .unwrap();
    p.send();
    let t = p.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(t.endpoint, Endpoint::Subscriptions);
    let prof = at(&attrs(&t), &["profile", "data", "attributes"]).clone();
    assert_eq!(prof.get("email"), Some(&Json::from("ann@example.com")));
    assert_eq!(prof.get("first_name"), None, "identifiers only");
    assert_eq!(prof.get("anonymous_id"), None);
}

#[test]
fn a_subscription_names_a_visitor_nothing_named_yet_as_klaviyos_form_does() {
    // Klaviyo's signup form identifies the browser it is submitted in: a new subscriber's
    // cart and browsing after it must reach their profile (abandoned-cart and browse
    // flows), with the anonymous profile's history merged in.
    let mut p = Page::new();
    assert!(!p.c.is_identified());
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"L","email":"new@example.com","channels":["email"]}"#],
    )
    .unwrap();
    assert!(p.c.is_identified());
    assert_eq!(p.send().endpoint, Endpoint::Subscriptions);
    assert!(p.disk[IDENTITY_KEY].contains(r#""email":"new@example.com""#));
    p.call(Op::Track, &[r#""Added to Cart""#]).unwrap();
    p.end_task();
    let t = p.c.poll_transmit(NOW, ALL).expect("the event");
    let prof = profile(&t);
    assert_eq!(prof.get("email"), Some(&Json::from("new@example.com")));
    assert_eq!(prof.get("anonymous_id"), Some(&Json::from("id-0")));
    // The next page knows them too.
    assert!(p.reload().c.is_identified());

    // A back-in-stock request does the same, with its phone number.
    let mut b = Page::new();
    b.call(
        Op::BackInStock,
        &[r#"{"variantId":"$custom:::$default:::SKU-1","phone_number":"+15005550006","channels":["sms"]}"#],
    )
    .unwrap();
    b.call(Op::Track, &[r#""Viewed""#]).unwrap();
    b.send();
    let t = b.c.poll_transmit(NOW, ALL).expect("the event");
    assert_eq!(
        profile(&t).get("phone_number"),
        Some(&Json::from("+15005550006"))
    );
}

/// A page whose visitor a subscription of a phone number named (its request not sent).
fn subscribed_by_phone() -> Page {
    let mut p = Page::new();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"L","phone_number":"+15005550006","channels":["sms"]}"#],
    )
    .unwrap();
    p
}

#[test]
fn a_sign_in_replaces_a_subscriptions_name_and_never_joins_it() {
    // A shared device: someone subscribed their phone, then someone else signs in (no
    // logout came between). The sign-in's profile and events must not carry the phone.
    let mut p = subscribed_by_phone();
    assert!(p.send().body.contains("+15005550006"));
    assert!(p.disk[IDENTITY_KEY].contains(r#""provisional":true"#));
    // A name alone (no identifier) keeps the subscription's.
    p.call(Op::Identify, &[r#"{"first_name":"Pat"}"#]).unwrap();
    p.end_task();
    assert!(p.disk[IDENTITY_KEY].contains(r#""provisional":true"#));
    assert!(p.reload().c.is_identified(), "a restored identity keeps it");
    p.call(Op::Identify, &[r#"{"email":"bo@example.com"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""Viewed""#]).unwrap();
    let sent = p.sent();
    let stored = &p.disk[IDENTITY_KEY];
    assert!(
        !stored.contains("+15005550006") && !stored.contains("provisional"),
        "{stored}"
    );
    for t in &sent {
        assert!(!t.body.contains("+15005550006"), "{}", t.body);
    }
    let event = sent
        .iter()
        .find(|t| t.endpoint == Endpoint::Events)
        .expect("the event");
    assert_eq!(
        profile(event).get("email"),
        Some(&Json::from("bo@example.com"))
    );
    // Nothing of the subscriber's profile passes to the person signing in.
    assert_eq!(profile(event).get("first_name"), None);
}

#[test]
fn a_null_email_while_a_subscription_named_the_visitor_is_none_given() {
    // `email: null` gives no email: the subscription named the visitor, and that
    // email is the one the second subscription goes with.
    let mut p = subscribed_by_email();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"M","email":null,"channels":["email"]}"#],
    )
    .unwrap();
    let second = p
        .sent()
        .into_iter()
        .find(|t| t.body.contains(r#""id":"M""#))
        .expect("the second subscription");
    assert!(second.body.contains("sub@example.com"), "{}", second.body);
}

#[test]
fn a_second_subscription_names_the_visitor_in_place_of_the_first() {
    // Named by a subscription only: a later one with its own email goes with that email
    // alone (not the first's phone), and names the visitor in its place.
    let mut p = subscribed_by_phone();
    p.send();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"L","email":"friend@example.com","channels":["email"]}"#],
    )
    .unwrap();
    let second = p
        .sent()
        .into_iter()
        .find(|t| t.body.contains("friend@example.com"))
        .expect("the second subscription");
    assert!(!second.body.contains("+15005550006"), "{}", second.body);
    let stored = &p.disk[IDENTITY_KEY];
    assert!(stored.contains("friend@example.com") && !stored.contains("+15005550006"));
}

#[test]
fn a_subscription_never_renames_a_known_visitor() {
    // Someone signed in subscribes a friend: the page's visitor stays who they are.
    let mut p = Page::new();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"L","email":"friend@example.com","channels":["email"]}"#],
    )
    .unwrap();
    p.call(Op::Track, &[r#""Viewed""#]).unwrap();
    let sent = p.sent();
    let event = sent
        .iter()
        .find(|t| t.endpoint == Endpoint::Events)
        .expect("the event");
    assert_eq!(
        profile(event).get("email"),
        Some(&Json::from("ann@example.com"))
    );
    assert!(!p.disk[IDENTITY_KEY].contains("friend@"));
}

#[test]
fn back_in_stock_names_the_variant_and_channels() {
    let mut p = Page::new();
    p.call(
        Op::BackInStock,
        &[r#"{"variantId":"$custom:::$default:::SKU-1","email":"ann@example.com","channels":["email"]}"#],
    )
    .unwrap();
    let t = p.send();
    assert_eq!(t.endpoint, Endpoint::BackInStock);
    assert_eq!(
        t.body,
        r#"{"data":{"type":"back-in-stock-subscription","attributes":{"channels":["EMAIL"],"profile":{"data":{"type":"profile","attributes":{"email":"ann@example.com"}}}},"relationships":{"variant":{"data":{"type":"catalog-variant","id":"$custom:::$default:::SKU-1"}}}}}"#
    );
    for (args, msg) in [
        (
            r#"{"email":"a@b.co","channels":["email"]}"#,
            "backInStock: variantId must be a non-empty string",
        ),
        (
            r#"{"variantId":"SKU-1","email":"a@b.co","channels":["email"]}"#,
            "backInStock: variantId must be a catalog variant id like $custom:::$default:::SKU-1",
        ),
        (
            r#"{"variantId":"a:::b:::c:::d","email":"a@b.co","channels":["email"]}"#,
            "backInStock: variantId must be a catalog variant id like $custom:::$default:::SKU-1",
        ),
        (
            r#"{"variantId":"a:::b:::c","channels":["email"]}"#,
            "backInStock: email or phone_number is required",
        ),
        (
            r#"{"variantId":"a:::b:::c","email":"a@b.co"}"#,
            r#"backInStock: channels must be a list like ["email"]"#,
        ),
    ] {
        // A fresh page: the request above named the visitor, whose email would do.
        assert_eq!(Page::new().refused(Op::BackInStock, &[args]), msg, "{args}");
    }
}

// ------------------------------------------------------------ batching

#[test]
fn events_of_one_profile_share_a_bulk_request() {
    let mut p = Page::new();
    for i in 0..5 {
        p.call(Op::Track, &[r#""M""#, &format!(r#"{{"i":{i}}}"#)])
            .unwrap();
    }
    let t = p.send();
    assert_eq!((t.endpoint, t.items), (Endpoint::BulkEvents, 5));
    let v = parse(&t);
    assert_eq!(
        at(&v, &["data", "type"]).as_str(),
        Some("event-bulk-create")
    );
    assert_eq!(
        at(
            &v,
            &[
                "data",
                "attributes",
                "profile",
                "data",
                "attributes",
                "anonymous_id"
            ]
        )
        .as_str(),
        Some("id-0")
    );
    let Json::Array(events) = at(&v, &["data", "attributes", "events", "data"]) else {
        panic!("no events")
    };
    assert_eq!(events.len(), 5);
    assert_eq!(at(&events[4], &["type"]).as_str(), Some("event"));
    assert_eq!(
        at(&events[4], &["attributes", "properties", "i"]),
        &num("4")
    );
    assert_eq!(
        at(&events[4], &["attributes", "unique_id"]).as_str(),
        Some("id-5")
    );
    assert!(p.c.poll_transmit(NOW, ALL).is_none());
}

#[test]
fn a_reused_unique_id_is_sent_separately_and_both_leave_the_queue() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""A""#, "{}", r#"{"uniqueId":"dup-1"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""B""#, "{}", r#"{"uniqueId":"dup-1"}"#])
        .unwrap();
    let ops = p.end_task();
    assert_eq!(queue_puts(&ops), 1, "one task, one record holding both");
    let first = p.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(
        first.endpoint,
        Endpoint::Events,
        "a bulk request must not repeat a unique_id"
    );
    let second = p.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(second.endpoint, Endpoint::Events);
    assert_ne!(first.body, second.body);
    p.c.on_outcome(first.id, ok(), NOW, 0);
    p.c.on_outcome(second.id, ok(), NOW, 0);
    assert_eq!(p.c.pending(), 0);
    assert_eq!(p.c.totals(), (2, 0));
    let ops = p.end_task();
    assert!(
        matches!(&ops[..], [StorageOp::Remove { key }] if key.starts_with("klaviyo:AbC123:q:"))
    );
    assert_eq!(p.disk.len(), 1, "only the identity is left");
}

#[test]
fn the_configured_queue_bounds_apply() {
    let config = Config::from_json(r#"{"companyId":"AbC123","maxQueueEvents":5}"#).unwrap();
    let mut p = Page::with(config, "");
    for _ in 0..8 {
        p.call(Op::Track, &[r#""M""#]).unwrap();
    }
    p.end_task();
    let reports = p.c.take_reports();
    assert_eq!(
        (reports[0].kind, reports[0].count),
        (ReportKind::Evicted, 3)
    );
    assert_eq!(p.c.pending(), 8);
    assert_eq!(p.reload().c.pending(), 5);
}

#[test]
fn op_codes_are_the_numbers_the_adapter_passes() {
    let ops: Vec<Op> = (1..=11).filter_map(Op::from_code).collect();
    assert_eq!(
        ops,
        [
            Op::Identify,
            Op::Track,
            Op::ViewedProduct,
            Op::AddedToCart,
            Op::StartedCheckout,
            Op::Subscribe,
            Op::BackInStock,
            Op::ViewedCollection,
            Op::SubmittedSearch,
            Op::ActiveOnSite,
            Op::PageView
        ]
    );
    assert_eq!(Op::from_code(0), None, "js/index.js's own reset");
    assert_eq!(Op::from_code(12), None);
    assert_eq!(Op::from_code(u32::MAX), None);
}

/// What js/index.js stores for calls made before the core is ready.
fn early_record(saved: u64, calls: &[(u32, &str)]) -> String {
    let mut v = format!("[{saved}");
    for (op, args) in calls {
        v.push_str(&format!(",{op},{}", jt::quote(args)));
    }
    v + "]"
}

#[test]
fn a_closed_pages_early_calls_are_adopted_once_stale_with_their_ids_and_times() {
    let key = "klaviyo:AbC123:pre:page-1";
    let at = NOW - EARLY_STALE_MS - 5_000;
    let value = early_record(
        at,
        &[
            (
                Op::Track as u32,
                &format!(r#"["early-1",{at},"Early",{{"a":1}},null]"#),
            ),
            (0, ""), // a reset of that window is not replayed
            (
                Op::Track as u32,
                &format!(r#"["early-2",{at},"",null,null]"#),
            ),
        ],
    );
    // Too young: the page that wrote it may still be loading.
    let mut young = Page::new();
    young.c.adopt_early(key, &value, at + 1_000);
    assert_eq!(young.c.pending(), 0);
    assert!(young
        .end_task()
        .iter()
        .all(|op| !matches!(op, StorageOp::Remove { key: k } if k == key)));

    let mut p = Page::new();
    let anon = p.c.anonymous_id().to_string();
    p.c.adopt_early(key, &value, NOW);
    assert_eq!(
        p.c.pending(),
        1,
        "the bad call is refused, the good one queued"
    );
    assert_eq!(p.c.anonymous_id(), anon);
    let reports = p.c.take_reports();
    assert_eq!(reports[0].kind, ReportKind::Invalid);
    assert_eq!(
        reports[0].detail,
        "track: metric must be 1 to 128 characters"
    );
    let ops = p.end_task();
    assert!(ops.contains(&StorageOp::Remove { key: key.into() }));
    let t = p.c.poll_transmit(NOW, ALL).unwrap();
    let a = attrs(&t);
    assert_eq!(a.get("unique_id"), Some(&Json::String("early-1".into())));
    assert_eq!(
        a.get("time"),
        Some(&Json::String(crate::core::time::iso_from_secs(
            (at / 1000) as i64
        )))
    );
}

#[test]
fn an_adopted_page_view_does_not_stand_for_this_pages_own_view_of_that_url() {
    let key = "klaviyo:AbC123:pre:closed";
    let at = NOW - EARLY_STALE_MS - 5_000;
    let view = |url: &str, id: &str| {
        (
            Op::PageView as u32,
            format!(r#"["{id}",{at},{{"URL":"https://shop.example{url}"}}]"#),
        )
    };
    let (a, b) = (view("/b", "closed-1"), view("/b", "closed-2"));
    let value = early_record(at, &[(a.0, a.1.as_str()), (b.0, b.1.as_str())]);
    let mut p = Page::new();
    p.call(Op::PageView, &[r#"{"URL":"https://shop.example/a"}"#])
        .unwrap();
    p.c.adopt_early(key, &value, NOW);
    assert_eq!(p.c.pending(), 2, "that page's /b once (its own rule)");
    p.call(Op::PageView, &[r#"{"URL":"https://shop.example/b"}"#])
        .unwrap();
    assert_eq!(p.c.pending(), 3, "this page's own /b is its own view");
    p.call(Op::PageView, &[r#"{"URL":"https://shop.example/b"}"#])
        .unwrap();
    assert_eq!(p.c.pending(), 3, "and then not twice in a row");
}

#[test]
fn an_unreadable_early_record_is_removed() {
    let mut p = Page::new();
    p.c.adopt_early("klaviyo:AbC123:pre:x", "{{", NOW);
    assert!(p.end_task().contains(&StorageOp::Remove {
        key: "klaviyo:AbC123:pre:x".into()
    }));
}

// ------------------------------------------------------------ consent

const PREFIX: &str = "klaviyo:AbC123:";
const MARKER: &str = "klaviyo:AbC123:consent";
const LATER: u64 = NOW + 60_000;

fn with_consent(consent: &str) -> Config {
    let code = ["pending", "granted", "denied"]
        .iter()
        .position(|c| *c == consent)
        .unwrap();
    Config::from_json(&format!(r#"{{"companyId":"AbC123","consent":{code}}}"#)).unwrap()
}

/// A page whose consent manager says `consent` at load, over `disk`.
fn page_with(consent: &str, disk: &BTreeMap<String, String>) -> Page {
    let identity = disk.get(IDENTITY_KEY).map(String::as_str);
    let mut c = Client::new(with_consent(consent), identity, "?_kx=abc", "id-0");
    for (k, v) in disk.iter().filter(|(k, _)| *k != IDENTITY_KEY) {
        c.load(k, v);
    }
    Page {
        c,
        ids: 0,
        disk: disk.clone(),
    }
}

/// A shop's storage after a granted page identified and queued one event (offline).
fn granted_disk() -> BTreeMap<String, String> {
    let mut p = Page::new();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""Earlier""#]).unwrap();
    p.end_task();
    p.disk.insert(format!("{PREFIX}lease"), "tab 9".into());
    p.disk.insert(format!("{PREFIX}pre:page"), "[1]".into());
    p.disk.insert("klaviyo:OtHer1:id".into(), "theirs".into());
    p.disk.insert("shop:cart".into(), "theirs".into());
    p.disk
}

fn consent_reports(c: &mut Client) -> Vec<usize> {
    c.take_reports()
        .into_iter()
        .filter(|r| r.kind == ReportKind::Consent)
        .map(|r| r.count)
        .collect()
}

/// The ops of a denial: in the page whose consent manager said it, first tell the other
/// tabs through the marker; then erase (the marker with the rest).
fn denial(tell: bool) -> Vec<StorageOp> {
    let mut ops = Vec::new();
    if tell {
        ops.push(StorageOp::Put {
            key: MARKER.into(),
            value: "denied".into(),
        });
    }
    ops.push(StorageOp::Erase {
        prefix: PREFIX.into(),
    });
    ops
}

#[test]
fn pending_holds_calls_in_memory_writes_nothing_and_sends_nothing() {
    let mut p = page_with("pending", &BTreeMap::new());
    assert_eq!(p.c.consent(), Consent::Pending);
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""Held""#, r#"{"n":1}"#]).unwrap();
    p.c.reset("id-reset");
    p.call(Op::Track, &[r#""Held""#, r#"{"n":2}"#]).unwrap();
    p.c.on_hide(NOW);
    for _ in 0..3 {
        assert_eq!(p.end_task(), vec![], "not even the anonymous id");
        assert_eq!(p.c.poll_transmit(LATER, ALL), None);
        assert_eq!(p.c.poll_keepalive(LATER, ALL), None);
        assert_eq!(p.c.poll_timeout(), None);
    }
    assert!(p.disk.is_empty());
    assert_eq!(p.c.pending(), 3);
    assert_eq!(p.c.anonymous_id(), "id-reset");
    assert!(p.c.take_reports().is_empty());
}

#[test]
fn bad_input_is_refused_the_same_whatever_the_consent() {
    let bad: [(Op, &[&str]); 3] = [
        (Op::Track, &["7"]),
        (Op::Identify, &[r#"{"email":"nope"}"#]),
        (Op::AddedToCart, &[r#"{"ProductID":"1","ProductName":"P"}"#]),
    ];
    for (op, args) in bad {
        let granted = Page::new().refused(op, args);
        for consent in ["pending", "denied"] {
            let mut p = page_with(consent, &BTreeMap::new());
            assert_eq!(p.refused(op, args), granted, "{consent}");
        }
    }
}

#[test]
fn a_grant_writes_then_sends_the_held_calls_with_their_own_ids_and_times() {
    let mut p = page_with("pending", &BTreeMap::new());
    p.call(Op::Track, &[r#""Held""#, r#"{"n":1}"#]).unwrap();
    p.call(Op::Track, &[r#""Held""#, r#"{"n":2}"#]).unwrap();
    assert!(p.end_task().is_empty());
    p.c.set_consent(Consent::Granted, "id-unused");
    assert_eq!(p.c.consent(), Consent::Granted);
    assert_eq!(p.c.poll_transmit(LATER, ALL), None, "stored before sent");
    p.c.set_sender(true); // the adapter's election, as after any grant
    let ops = p.end_task();
    assert_eq!(queue_puts(&ops), 1, "the held calls as one record");
    assert!(p.disk.contains_key(IDENTITY_KEY), "the identity now");
    let t = p.c.poll_transmit(LATER, ALL).expect("the held calls");
    assert_eq!((t.endpoint, t.items), (Endpoint::BulkEvents, 2));
    let events = at(&attrs(&t), &["events", "data"]).clone();
    for (n, e) in events.as_array().unwrap().iter().enumerate() {
        let a = &e["attributes"];
        assert_eq!(a["unique_id"], Json::from(format!("id-{}", n + 1)));
        assert_eq!(
            a["time"],
            Json::from("2026-11-26T05:02:19Z"),
            "the call's time"
        );
    }
    assert_eq!(profile(&t)["anonymous_id"], Json::from("id-0"));
    assert_eq!(profile(&t)["_kx"], Json::from("abc"));
    p.c.on_outcome(t.id, ok(), LATER, 0);
    p.end_task();
    assert_eq!(p.c.pending(), 0);
    assert_eq!(p.disk.keys().collect::<Vec<_>>(), [IDENTITY_KEY]);
    // Granting again changes nothing.
    p.c.set_consent(Consent::Granted, "id-x");
    assert!(p.end_task().is_empty());
}

#[test]
fn pending_keeps_what_storage_held_unsent_until_the_grant() {
    let disk = granted_disk();
    let mut p = page_with("pending", &disk);
    assert_eq!(p.c.anonymous_id(), "id-0", "read, not written");
    assert_eq!(p.c.pending(), 2);
    assert_eq!(p.c.poll_transmit(LATER, ALL), None);
    p.call(Op::Track, &[r#""Held""#]).unwrap();
    assert!(p.end_task().is_empty());
    assert_eq!(p.disk, disk, "untouched");
    p.c.set_consent(Consent::Granted, "id-x");
    p.end_task();
    assert!(
        p.c.poll_transmit(LATER, ALL).is_none(),
        "the stored calls wait for the election"
    );
    p.c.resync(Stored(&pairs(&p.disk)));
    p.c.set_sender(true);
    let mut sent = 0;
    while let Some(t) = p.c.poll_transmit(LATER, ALL) {
        sent += t.items;
        p.c.on_outcome(t.id, ok(), LATER, 0);
    }
    assert_eq!(sent, 3);
}

#[test]
fn a_denial_while_pending_drops_the_held_calls_and_reports_once() {
    let mut p = page_with("pending", &BTreeMap::new());
    for n in 0..3 {
        p.call(Op::Track, &[r#""Held""#, &format!(r#"{{"n":{n}}}"#)])
            .unwrap();
    }
    p.c.set_consent(Consent::Denied, "id-unused");
    assert_eq!(p.c.consent(), Consent::Denied);
    assert_eq!(p.c.pending(), 0);
    assert_eq!(p.end_task(), denial(true));
    assert!(p.disk.is_empty());
    assert_eq!(consent_reports(&mut p.c), [3]);
    // Later calls: accepted (no throw), dropped, not reported again.
    p.call(Op::Track, &[r#""Later""#]).unwrap();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    assert_eq!(p.c.pending(), 0);
    assert!(p.end_task().is_empty());
    assert!(consent_reports(&mut p.c).is_empty());
    assert_eq!(p.c.poll_transmit(LATER, ALL), None);
}

#[test]
fn denied_at_load_erases_our_keys_and_nothing_else_and_drops_calls() {
    let disk = granted_disk();
    let mut p = page_with("denied", &disk);
    assert_eq!(p.c.pending(), 0, "nothing stored is loaded");
    assert_eq!(p.c.anonymous_id(), "", "no identity");
    assert_eq!(p.end_task(), denial(true));
    assert_eq!(
        p.disk.keys().collect::<Vec<_>>(),
        ["klaviyo:OtHer1:id", "shop:cart"],
        "every key of ours is gone (id, q:, lease, pre:), and only ours"
    );
    assert!(p.c.take_reports().is_empty(), "nothing dropped yet");
    p.call(Op::Track, &[r#""A""#]).unwrap();
    p.call(
        Op::Subscribe,
        &[r#"{"listId":"Y6nRLr","email":"ann@example.com","channels":["email"]}"#],
    )
    .unwrap();
    p.c.reset("id-reset");
    p.c.adopt_early(&format!("{PREFIX}pre:x"), "[1]", LATER);
    assert_eq!(p.c.anonymous_id(), "");
    assert!(p.end_task().is_empty());
    assert_eq!(consent_reports(&mut p.c), [1]);
    assert_eq!(p.c.poll_transmit(LATER, ALL), None);
    assert_eq!(p.c.poll_timeout(), None);
}

#[test]
fn a_withdrawal_erases_storage_forgets_what_is_in_flight_and_drops_later_calls() {
    let mut p = Page::new();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::Track, &[r#""A""#]).unwrap();
    let in_flight = p.send();
    p.call(Op::Track, &[r#""B""#]).unwrap();
    p.end_task();
    assert!(p.disk.len() >= 2);
    p.c.set_consent(Consent::Denied, "id-unused");
    assert_eq!(p.end_task(), denial(true));
    assert!(p.disk.is_empty());
    assert_eq!(consent_reports(&mut p.c), [3]);
    // The answer to what was in flight changes nothing; nothing is written or sent.
    p.c.on_outcome(in_flight.id, ok(), NOW, 0);
    p.c.on_hide(NOW);
    p.call(Op::Track, &[r#""C""#]).unwrap();
    assert!(p.end_task().is_empty());
    assert_eq!(p.c.poll_transmit(LATER, ALL), None);
    assert_eq!(p.c.pending(), 0);
    assert!(consent_reports(&mut p.c).is_empty(), "once per denial");
    let (sent, _) = p.c.totals();
    assert_eq!(sent, 0);
}

#[test]
fn a_withdrawal_in_another_tab_is_followed_and_not_echoed() {
    let mut a = Page::new();
    a.end_task();
    let mut b = page_with("granted", &a.disk);
    b.call(Op::Track, &[r#""B""#]).unwrap();
    b.end_task();
    a.c.set_consent(Consent::Denied, "");
    let ops = a.end_task();
    // Tab B sees A's writes as storage events, the marker among them.
    for op in &ops {
        match op {
            StorageOp::Put { key, value } => b.c.on_storage_change(key, Some(value)),
            StorageOp::Remove { key } => b.c.on_storage_change(key, None),
            StorageOp::Erase { .. } => {}
        }
    }
    assert_eq!(b.c.consent(), Consent::Denied);
    assert_eq!(consent_reports(&mut b.c), [1], "its call, refused");
    assert_eq!(b.end_task(), denial(false), "erases too, tells no one");
    assert_eq!(b.c.pending(), 0);
    b.call(Op::Track, &[r#""Later""#]).unwrap();
    assert!(b.end_task().is_empty());
    assert_eq!(b.c.poll_transmit(LATER, ALL), None);
    // A denied tab ignores what other tabs write.
    let mut c = Page::new();
    c.call(Op::Track, &[r#""C""#]).unwrap();
    for op in c.end_task() {
        if let StorageOp::Put { key, value } = op {
            b.c.on_storage_change(&key, Some(&value));
        }
    }
    b.c.resync(Stored(&pairs(&c.disk)));
    assert_eq!(b.c.pending(), 0);
    // Only "denied" under the marker counts, and only the marker key.
    let mut d = Page::new();
    d.c.on_storage_change(MARKER, Some("granted"));
    d.c.on_storage_change(MARKER, None);
    d.c.on_storage_change(&format!("{PREFIX}q:x"), Some("denied"));
    assert_eq!(d.c.consent(), Consent::Granted);
}

#[test]
fn a_grant_after_a_denial_starts_a_new_profile() {
    let mut p = Page::new();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.end_task();
    p.c.set_consent(Consent::Denied, "");
    p.call(Op::Identify, &[r#"{"email":"bob@example.com"}"#])
        .unwrap();
    p.end_task();
    p.c.set_consent(Consent::Granted, "id-new");
    assert_eq!(p.c.anonymous_id(), "id-new");
    p.c.set_sender(true); // the adapter's election, as after any grant
    p.call(Op::Track, &[r#""After""#]).unwrap();
    let t = p.send();
    assert_eq!(
        profile(&t),
        serde_json::json!({ "anonymous_id": "id-new" }),
        "neither the erased profile nor what was said while denied"
    );
    assert_eq!(
        p.disk.get(IDENTITY_KEY).map(String::as_str),
        Some(r#"{"anonymous_id":"id-new","profile":{}}"#)
    );
}

#[test]
fn a_denial_another_tab_carried_out_while_away_removes_only_the_records_this_page_wrote() {
    // Another tab's queue, read at start; then this page's own call, written (as it came
    // back from the cache, before it heard of the denial made meanwhile).
    let disk = granted_disk();
    let mut p = page_with("granted", &disk);
    p.ids = 50; // ids of its own (the other tab's record is `id-1`'s)
    p.call(Op::Track, &[r#""As It Came Back""#]).unwrap();
    p.end_task();
    let own: Vec<String> = (p.disk.keys())
        .filter(|k| k.starts_with(&format!("{PREFIX}q:")) && !disk.contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(own.len(), 1, "its record written: {own:?}");
    p.c.denied_before_start();
    assert_eq!(p.c.consent(), Consent::Denied);
    let ops = p.end_task();
    assert_eq!(
        ops,
        vec![StorageOp::Remove {
            key: own[0].clone()
        }],
        "its record alone"
    );
    let queue = |d: &BTreeMap<String, String>| {
        d.iter()
            .filter(|(k, _)| *k != IDENTITY_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(queue(&p.disk), queue(&disk), "the other tab's queue stays");
}

/// Storage with two records of another tab's: one dated `before` the denial kept at
/// `denied` (a denying page with a stale view of storage left it), one dated after it.
fn records_around_a_denial(before: u64, denied: u64, after: u64) -> BTreeMap<String, String> {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""A Call""#]).unwrap();
    p.end_task();
    let (key, value) = (p.disk.iter())
        .find(|(k, _)| k.starts_with(&format!("{PREFIX}q:")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let dated = |at: u64| value.replacen(&NOW.to_string(), &at.to_string(), 1);
    let mut disk = BTreeMap::new();
    disk.insert(format!("{key}-before"), dated(before));
    disk.insert(format!("{key}-after"), dated(after));
    disk.insert(format!("{PREFIX}denied"), denied.to_string());
    disk
}

#[test]
fn a_record_dated_before_the_last_denial_is_never_sent_but_removed() {
    let disk = records_around_a_denial(NOW - 10, NOW - 5, NOW - 1);
    let before = disk
        .keys()
        .find(|k| k.ends_with("-before"))
        .unwrap()
        .clone();
    let removals = |ops: Vec<StorageOp>| {
        (ops.into_iter())
            .filter(|op| matches!(op, StorageOp::Remove { .. }))
            .collect::<Vec<_>>()
    };
    // Read at start, with the denial's time: the call made before it is forgotten as
    // the tab sends (SENDER in src/browser/exports.rs), and its record removed.
    let mut p = page_with("granted", &disk);
    p.c.forget_before_denial(NOW);
    assert_eq!(
        removals(p.end_task()),
        vec![StorageOp::Remove {
            key: before.clone()
        }]
    );
    assert_eq!(p.c.pending(), 1, "the call made after it kept");
    // The time heard after the record (a late event), or the record heard after it.
    let mut p = page_with("granted", &BTreeMap::new());
    p.c.on_storage_change(&before, disk.get(&before).map(String::as_str));
    p.c.on_storage_change(&format!("{PREFIX}denied"), Some(&(NOW - 5).to_string()));
    assert!(
        removals(p.end_task()).is_empty(),
        "not at a sync: the marker comes next"
    );
    p.c.forget_before_denial(NOW);
    assert_eq!(
        removals(p.end_task()),
        vec![StorageOp::Remove {
            key: before.clone()
        }]
    );
    assert_eq!(p.c.pending(), 0);
    // Written again (a late event): removed again before the sender sends.
    p.c.on_storage_change(&before, disk.get(&before).map(String::as_str));
    p.c.forget_before_denial(NOW);
    assert_eq!(
        removals(p.end_task()),
        vec![StorageOp::Remove { key: before }]
    );
    assert_eq!(p.c.pending(), 0, "never sent");
}

#[test]
fn a_clock_set_back_after_a_denial_keeps_the_calls_made_since() {
    // The denial read and applied; then the clock is set back an hour: a record made
    // since is dated before the denial, and must stay (sent, not removed).
    let back = NOW - 3_600_000;
    let disk = records_around_a_denial(back + 10, NOW - 5, back + 20);
    let mut p = page_with("granted", &BTreeMap::new());
    p.c.on_storage_change(&format!("{PREFIX}denied"), Some(&(NOW - 5).to_string()));
    p.end_task();
    for (k, v) in disk.iter().filter(|(k, _)| k.contains(":q:")) {
        p.c.on_storage_change(k, Some(v));
    }
    p.c.forget_before_denial(back + 30);
    let ops = p.c.take_storage_ops(back + 30);
    let removes = |op: &StorageOp| matches!(op, StorageOp::Remove { .. });
    assert!(!ops.iter().any(removes), "nothing removed: {ops:?}");
    assert_eq!(p.c.pending(), 2, "both kept");
}

#[test]
fn a_loading_window_saved_before_the_last_denial_is_not_adopted() {
    // A page closed in its loading window; the denial that followed did not erase its
    // record (a denying page with a stale view of storage).
    let at = NOW - EARLY_STALE_MS - 5_000;
    let call = format!(r#"["early-1",{at},"Early",{{}},null]"#);
    let value = early_record(at, &[(Op::Track as u32, &call)]);
    let key = "klaviyo:AbC123:pre:closed";
    let mut p = Page::new();
    p.c.on_storage_change(&format!("{PREFIX}denied"), Some(&(at + 1).to_string()));
    p.c.adopt_early(key, &value, NOW);
    assert_eq!(
        p.c.pending(),
        0,
        "its call made before the denial not adopted"
    );
    let ops = p.end_task();
    assert!(
        ops.contains(&StorageOp::Remove { key: key.into() }),
        "and its record removed: {ops:?}"
    );
}

#[test]
fn a_denial_time_ahead_of_the_clock_forgets_nothing() {
    // A clock set back since the denial: every record made now is dated before it.
    let disk = records_around_a_denial(NOW - 10, NOW + 60_000, NOW - 1);
    let mut p = page_with("granted", &disk);
    p.c.forget_before_denial(NOW);
    let ops = p.end_task();
    let removes = |op: &StorageOp| matches!(op, StorageOp::Remove { .. });
    assert!(!ops.iter().any(removes), "nothing removed: {ops:?}");
    assert_eq!(p.c.pending(), 2, "both kept");
    // Nor a granted page's mark (`0`), nor another key's time.
    p.c.on_storage_change(&format!("{PREFIX}denied"), Some("0"));
    p.c.on_storage_change(&format!("{PREFIX}lease"), Some(&(NOW - 1).to_string()));
    p.c.forget_before_denial(NOW);
    assert_eq!(p.c.pending(), 2, "still both");
}

#[test]
fn a_denial_carried_out_before_the_core_ran_drops_what_it_holds_and_erases_nothing() {
    // The page denied while its wasm loaded: the adapter told the other tabs and erased
    // then. A later tab queued a call since; this core opens over it, then replays
    // the denial among the window's calls.
    let disk = granted_disk();
    let mut p = page_with("pending", &disk);
    p.call(Op::Track, &[r#""Before The Denial""#]).unwrap();
    p.c.denied_before_start();
    assert_eq!(p.c.consent(), Consent::Denied);
    assert_eq!(p.c.pending(), 0, "what it held is dropped");
    assert_eq!(consent_reports(&mut p.c), [1], "and reported as refused");
    assert_eq!(p.end_task(), vec![], "no marker, no second erasure");
    assert_eq!(p.disk, disk, "the later tab's queue and identity stay");
    // The window's grant after it starts a new profile, as any grant after a denial.
    p.c.set_consent(Consent::Granted, "id-new");
    assert_eq!(p.c.anonymous_id(), "id-new");
}

#[test]
fn denied_then_pending_in_one_task_still_erases() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""A""#]).unwrap();
    p.end_task();
    p.c.set_consent(Consent::Denied, "");
    p.c.set_consent(Consent::Pending, "id-new");
    assert_eq!(p.end_task(), denial(true));
    assert!(p.disk.is_empty());
    p.call(Op::Track, &[r#""Held""#]).unwrap();
    assert!(p.end_task().is_empty());
    assert_eq!(p.c.pending(), 1);
    assert_eq!(p.c.anonymous_id(), "id-new");
}

#[test]
fn pending_after_a_grant_stops_writing_and_sending() {
    let mut p = Page::new();
    p.call(Op::Track, &[r#""Stored""#]).unwrap();
    p.end_task();
    let before = p.disk.clone();
    p.c.set_consent(Consent::Pending, "");
    p.call(Op::Track, &[r#""Held""#]).unwrap();
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    assert!(p.end_task().is_empty());
    assert_eq!(p.disk, before, "what was stored stays; nothing new");
    assert_eq!(p.c.poll_transmit(LATER, ALL), None);
    p.c.set_consent(Consent::Granted, "");
    assert!(!p.c.is_sender(), "until elected again");
    assert_eq!(p.c.anonymous_id(), "id-0", "the same profile");
    let ops = p.end_task();
    assert_eq!(queue_puts(&ops), 1);
    assert_eq!(p.c.pending(), 3);
}

#[path = "storefront_tests.rs"]
mod storefront;

#[path = "currency_tests.rs"]
mod currency;

#[path = "klaviyo_fields_tests.rs"]
mod klaviyo_fields;

#[test]
fn the_first_party_cookies_visitor_is_adopted_and_kept_with_a_newer_kx_winning() {
    let mut p = Page::new();
    p.c.adopt_visitor("anon-kept", "kx-kept");
    assert_eq!(p.c.anonymous_id(), "anon-kept");
    p.call(Op::Track, &[r#""After""#]).unwrap();
    let ops = p.end_task();
    assert!(ops.contains(&StorageOp::Put {
        key: IDENTITY_KEY.into(),
        value: r#"{"anonymous_id":"anon-kept","_kx":"kx-kept","profile":{}}"#.into()
    }));
    let sent = p.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(
        profile(&sent).get("anonymous_id"),
        Some(&Json::from("anon-kept"))
    );
    assert_eq!(profile(&sent).get("_kx"), Some(&Json::from("kx-kept")));
    // A _kx from this page's URL is newer than the cookie's.
    let mut d = page_with("granted", &BTreeMap::new());
    d.c.adopt_visitor("anon-kept", "kx-kept");
    assert_eq!(d.c.anonymous_id(), "anon-kept");
    d.call(Op::Track, &[r#""After""#]).unwrap();
    d.end_task();
    let sent = d.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(profile(&sent).get("_kx"), Some(&Json::from("abc")));
    // Nothing adopted while consent is denied, nor an empty or oversized id.
    let mut denied = page_with("denied", &BTreeMap::new());
    denied.c.adopt_visitor("anon-kept", "kx-kept");
    assert_ne!(denied.c.anonymous_id(), "anon-kept");
    let mut q = Page::new();
    q.c.adopt_visitor("", "k");
    q.c.adopt_visitor(&"a".repeat(129), "k");
    assert_eq!(q.c.anonymous_id(), "id-0");
}

#[test]
fn the_visitor_json_is_what_the_first_party_cookie_keeps() {
    let mut p = Page::new();
    let mut out = String::new();
    p.c.visitor_json(&mut out);
    assert_eq!(out, r#"{"anonymous_id":"id-0"}"#);
    p.c.adopt_visitor("a\"1", "k-1");
    out.clear();
    p.c.visitor_json(&mut out);
    assert_eq!(out, r#"{"anonymous_id":"a\"1","_kx":"k-1"}"#);
}
