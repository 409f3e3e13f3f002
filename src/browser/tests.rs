//! The browser adapter in real headless Chromium: real localStorage, real fetch to the
//! Klaviyo emulator, whose URL comes from `KLAVIYO_EMULATOR` at build time
//! (`.ci/test.sh` starts it). Each test uses its own company id, so storage keys and the
//! emulator's records of one test never mix with another's.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

use super::host;
use super::tracker::Tracker;

wasm_bindgen_test_configure!(run_in_browser);

const EMULATOR: &str = match option_env!("KLAVIYO_EMULATOR") {
    Some(u) => u,
    None => "http://127.0.0.1:8787",
};

/// A company id unique to this run (`tag` + random), so the emulator's records of an
/// earlier run never count.
fn company(tag: &str) -> String {
    let mut b = [0u8; 4];
    use crate::core::client::Entropy;
    host::CryptoRng.fill(&mut b);
    let mut c = String::from(tag);
    for x in b {
        c.push(char::from(
            b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[usize::from(x % 32)],
        ));
    }
    c.truncate(6);
    c
}

fn anon(t: &Tracker) -> String {
    t.call("anonymousId", JsValue::UNDEFINED, JsValue::UNDEFINED)
        .unwrap()
        .as_string()
        .unwrap()
}

/// One poll interval (for polling with a deadline, never to wait for work to finish).
async fn pause_ms(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        host::set_timeout(&resolve, f64::from(ms));
    });
    JsFuture::from(p).await.unwrap();
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn options(company: &str, api_base: &str) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"companyId".into(), &company.into());
    let _ = Reflect::set(&o, &"apiBase".into(), &api_base.into());
    let _ = Reflect::set(&o, &"flushDelayMs".into(), &JsValue::from(0));
    o.into()
}

fn json(text: &str) -> JsValue {
    js_sys::JSON::parse(text).unwrap()
}

/// A tracker whose `onError` reports are collected as messages.
fn tracker(company: &str, api_base: &str) -> (Tracker, Rc<RefCell<Vec<String>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        sink.borrow_mut()
            .push(get(&e, "kind").as_string().unwrap_or_default());
    });
    let f: Function = cb.into_js_value().unchecked_into();
    let t = Tracker::new(options(company, api_base), Some(f)).unwrap();
    (t, seen)
}

fn storage() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn stored_keys(prefix: &str) -> Vec<String> {
    let s = storage();
    (0..s.length().unwrap())
        .filter_map(|i| s.key(i).unwrap())
        .filter(|k| k.starts_with(prefix))
        .collect()
}

fn clear(company: &str) {
    for k in stored_keys(&format!("klaviyo:{company}:")) {
        storage().remove_item(&k).unwrap();
    }
}

/// The emulator's records of requests made with `company_id=<company>`.
async fn received(company: &str) -> Vec<JsValue> {
    let url = format!("{EMULATOR}/__admin/requests");
    let resp = JsFuture::from(host::fetch(&url, &Object::new().into()))
        .await
        .unwrap();
    let resp: web_sys::Response = resp.unchecked_into();
    let body = JsFuture::from(resp.json().unwrap()).await.unwrap();
    array(&get(&body, "requests"))
        .into_iter()
        .filter(|r| get(&get(r, "query"), "company_id").as_string().as_deref() == Some(company))
        .collect()
}

fn array(v: &JsValue) -> Vec<JsValue> {
    if Array::is_array(v) {
        Array::from(v).iter().collect()
    } else {
        Vec::new()
    }
}

fn metric_names(r: &JsValue) -> Vec<String> {
    let body = get(r, "body");
    let attrs = get(&get(&body, "data"), "attributes");
    let one = get(
        &get(&get(&get(&attrs, "metric"), "data"), "attributes"),
        "name",
    );
    if let Some(n) = one.as_string() {
        return vec![n];
    }
    array(&get(&get(&attrs, "events"), "data"))
        .into_iter()
        .filter_map(|e| {
            let a = get(&e, "attributes");
            get(&get(&get(&get(&a, "metric"), "data"), "attributes"), "name").as_string()
        })
        .collect()
}

#[wasm_bindgen_test]
async fn track_is_delivered_to_the_emulator_and_validates() {
    let company = &company("T1");
    clear(company);
    let (t, errors) = tracker(company, EMULATOR);
    t.call(
        "identify",
        json(r#"{"email":"ann@example.com","first_name":"Ann"}"#),
        JsValue::UNDEFINED,
    )
    .unwrap();
    let id = t
        .track(
            "Ordered Sample".into(),
            json(r#"{"a":1}"#),
            JsValue::UNDEFINED,
        )
        .unwrap();
    t.call(
        "viewedProduct",
        json(r#"{"ProductID":"p1","ProductName":"Pooh","Price":9.99}"#),
        JsValue::UNDEFINED,
    )
    .unwrap();
    let r = JsFuture::from(t.flush()).await.unwrap();
    assert_eq!(get(&r, "pending").as_f64(), Some(0.0));
    assert_eq!(get(&r, "sent").as_f64(), Some(3.0));
    assert_eq!(t.pending(), 0);
    let reqs = received(company).await;
    assert!(reqs
        .iter()
        .all(|r| get(r, "accepted").as_bool() == Some(true)));
    let names: Vec<String> = reqs.iter().flat_map(metric_names).collect();
    assert!(names.contains(&"Ordered Sample".to_string()), "{names:?}");
    assert!(names.contains(&"Viewed Product".to_string()));
    let ids: Vec<String> = reqs
        .iter()
        .flat_map(|r| array(&get(r, "uniqueIds")))
        .filter_map(|v| v.as_string())
        .collect();
    assert!(ids.contains(&id));
    for r in &reqs {
        let h = get(r, "headers");
        assert_eq!(
            get(&h, "revision").as_string().as_deref(),
            Some("2026-07-15")
        );
        assert!(get(&h, "authorization").is_undefined());
    }
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    assert!(stored_keys(&format!("klaviyo:{company}:q:")).is_empty());
}

#[wasm_bindgen_test]
fn the_anonymous_id_is_kept_in_local_storage() {
    let company = &company("T2");
    clear(company);
    let (a, _) = tracker(company, EMULATOR);
    let (b, _) = tracker(company, EMULATOR);
    assert_eq!(anon(&a), anon(&b));
    a.call("reset", JsValue::UNDEFINED, JsValue::UNDEFINED)
        .unwrap();
    let (c, _) = tracker(company, EMULATOR);
    assert_ne!(anon(&c), anon(&b));
    assert_eq!(anon(&c), anon(&a));
}

#[wasm_bindgen_test]
fn bad_input_throws_an_error_naming_the_field_and_stores_nothing() {
    let company = &company("T3");
    clear(company);
    let (t, _) = tracker(company, EMULATOR);
    let before = stored_keys(&format!("klaviyo:{company}:q:")).len();
    let cases: Vec<(Result<(), JsValue>, &str)> = vec![
        (
            t.call("identify", json(r#"{"email":"x@"}"#), JsValue::UNDEFINED)
                .map(|_| ())
                .map_err(JsValue::from),
            "identify: email",
        ),
        (
            t.track("".into(), JsValue::UNDEFINED, JsValue::UNDEFINED)
                .map(|_| ())
                .map_err(JsValue::from),
            "track: metric",
        ),
        (
            t.track(JsValue::from(5), JsValue::UNDEFINED, JsValue::UNDEFINED)
                .map(|_| ())
                .map_err(JsValue::from),
            "track: metric must be a string",
        ),
        (
            t.track(
                "M".into(),
                JsValue::UNDEFINED,
                json(r#"{"valueCurrency":"US"}"#),
            )
            .map(|_| ())
            .map_err(JsValue::from),
            "track: valueCurrency",
        ),
        (
            t.track(
                "M".into(),
                JsValue::UNDEFINED,
                js_sys::eval("({value: NaN})").unwrap(),
            )
            .map(|_| ())
            .map_err(JsValue::from),
            "track: value must be a finite number",
        ),
        (
            t.call(
                "viewedProduct",
                js_sys::eval("({ProductID: 1, ProductName: 'P', Price: Infinity})").unwrap(),
                JsValue::UNDEFINED,
            )
            .map(|_| ())
            .map_err(JsValue::from),
            "viewedProduct: Price must be a finite number",
        ),
        (
            t.call(
                "addedToCart",
                json(r#"{"ProductID":"p","ProductName":"P"}"#),
                JsValue::UNDEFINED,
            )
            .map(|_| ())
            .map_err(JsValue::from),
            "addedToCart: Price",
        ),
    ];
    for (r, want) in cases {
        let err = r.unwrap_err();
        assert!(err.is_instance_of::<js_sys::Error>());
        let msg = get(&err, "message").as_string().unwrap();
        assert!(msg.starts_with(want), "{msg} does not start with {want}");
    }
    assert_eq!(t.pending(), 0);
    assert_eq!(stored_keys(&format!("klaviyo:{company}:q:")).len(), before);
}

#[wasm_bindgen_test]
fn init_rejects_a_bad_company_id() {
    let err = Tracker::new(options("nope", EMULATOR), None)
        .err()
        .map(JsValue::from)
        .unwrap();
    let msg = get(&err, "message").as_string().unwrap();
    assert!(msg.starts_with("init: companyId"), "{msg}");
}

#[wasm_bindgen_test]
async fn a_network_failure_goes_to_on_error_and_the_event_stays_queued_on_disk() {
    let company = &company("T4");
    clear(company);
    // Nothing listens on port 9: fetch fails like an offline network.
    let (t, errors) = tracker(company, "http://127.0.0.1:9");
    t.track("Offline".into(), JsValue::UNDEFINED, JsValue::UNDEFINED)
        .unwrap();
    assert_eq!(
        stored_keys(&format!("klaviyo:{company}:q:")).len(),
        1,
        "persisted before send"
    );
    let r = JsFuture::from(t.flush()).await.unwrap();
    assert_eq!(get(&r, "failed").as_f64(), Some(1.0));
    assert_eq!(t.pending(), 1);
    assert_eq!(errors.borrow().as_slice(), ["retry"]);
    assert_eq!(stored_keys(&format!("klaviyo:{company}:q:")).len(), 1);

    // The next page of the same shop (same storage) delivers it, with the same unique_id.
    // Closing the first tracker hands the sender lock on; the new one takes over.
    drop(t);
    let (next, _) = tracker(company, EMULATOR);
    assert_eq!(next.pending(), 1);
    let mut tries = 0;
    while next.pending() > 0 && tries < 100 {
        JsFuture::from(next.flush()).await.unwrap();
        pause_ms(20).await;
        tries += 1;
    }
    assert_eq!(next.pending(), 0);
    let reqs = received(company).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(get(&reqs[0], "accepted").as_bool(), Some(true));
    assert!(stored_keys(&format!("klaviyo:{company}:q:")).is_empty());
}

#[wasm_bindgen_test]
async fn a_rejected_request_is_reported_with_the_server_error_and_removed() {
    let company = &company("T5");
    clear(company);
    let (t, errors) = tracker(company, EMULATOR);
    // The emulator answers the next back-in-stock request with a 400, as Klaviyo would.
    let init = Object::new();
    let _ = Reflect::set(&init, &"method".into(), &"POST".into());
    let rule = r#"{"count":1,"status":400,"path":"/client/back-in-stock-subscriptions"}"#;
    let _ = Reflect::set(&init, &"body".into(), &rule.into());
    JsFuture::from(host::fetch(
        &format!("{EMULATOR}/__admin/faults"),
        &init.into(),
    ))
    .await
    .unwrap();
    t.call(
        "backInStock",
        json(r#"{"variantId":"$custom:::$default:::SKU-1","email":"a@b.co","channels":["email"]}"#),
        JsValue::UNDEFINED,
    )
    .unwrap();
    JsFuture::from(t.flush()).await.unwrap();
    assert_eq!(t.pending(), 0);
    assert_eq!(errors.borrow().as_slice(), ["rejected"]);
    assert!(stored_keys(&format!("klaviyo:{company}:q:")).is_empty());
}
