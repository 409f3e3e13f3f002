//! The export surface in real headless Chromium: text crossing the boundary both ways
//! (UTF-8 <-> UTF-16, separators), storage writes carried out in real localStorage,
//! and a real fetch to the Klaviyo emulator, whose URL comes from `KLAVIYO_EMULATOR`
//! at build time (`.ci/test.sh` starts it). Each test uses its own company id, so
//! storage keys and the emulator's records of one test never mix with another's.
//! (The JS half of the adapter, js/runtime.js, is driven by the Playwright suites.)

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

use super::exports::text_api::{answered, call, control, open};

wasm_bindgen_test_configure!(run_in_browser);

const EMULATOR: &str = match option_env!("KLAVIYO_EMULATOR") {
    Some(u) => u,
    None => "http://127.0.0.1:8787",
};

// control() codes: the table itself, not a copy.
use super::exports::what::{ANON, CONSENT, INFO, NEXT, PENDING, REPORTS, SYNC};

fn window() -> web_sys::Window {
    web_sys::window().expect("a window")
}

/// A company id unique to this run (`tag` + random), so the emulator's records of an
/// earlier run never count.
fn company(tag: &str) -> String {
    let mut b = [0u8; 4];
    window()
        .crypto()
        .expect("crypto")
        .get_random_values_with_u8_array(&mut b)
        .expect("random bytes");
    let mut c = String::from(tag);
    for x in b {
        c.push(char::from(
            b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[usize::from(x % 32)],
        ));
    }
    c.truncate(6);
    c
}

fn uuid() -> String {
    window().crypto().expect("crypto").random_uuid()
}

fn now() -> f64 {
    js_sys::Date::now()
}

fn storage() -> web_sys::Storage {
    window().local_storage().expect("storage").expect("storage")
}

/// What the runtime does with SYNC's answer: every write, in real localStorage.
fn apply(ops: &str) -> usize {
    let s = storage();
    let mut n = 0;
    for op in ops.split('\u{1}').filter(|o| !o.is_empty()) {
        match op.split_once('\u{2}') {
            // An empty key: every key under the prefix that follows.
            Some(("", prefix)) => {
                let keys: Vec<String> = (0..s.length().expect("length"))
                    .filter_map(|i| s.key(i).expect("key"))
                    .filter(|k| k.starts_with(prefix))
                    .collect();
                for k in keys {
                    s.remove_item(&k).expect("removeItem");
                }
            }
            Some((k, v)) => s.set_item(k, v).expect("setItem"),
            None => s.remove_item(op).expect("removeItem"),
        }
        n += 1;
    }
    n
}

/// What the runtime passes to `open`: every key under `klaviyo:`.
fn scan() -> String {
    let s = storage();
    let mut out = String::new();
    for i in 0..s.length().expect("length") {
        let Some(k) = s.key(i).expect("key") else {
            continue;
        };
        if k.starts_with("klaviyo:") {
            out.push('\u{1}');
            out.push_str(&k);
            out.push('\u{2}');
            out.push_str(&s.get_item(&k).expect("getItem").unwrap_or_default());
        }
    }
    out
}

fn options(company: &str) -> String {
    format!(r#"{{"companyId":"{company}","apiBase":"{EMULATOR}"}}"#)
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// POSTs a transmit (`tx SEP url SEP items SEP bytes SEP body`) as the runtime does and
/// hands the answer back; returns the status.
async fn send(h: u32, t: &str, revision: &str) -> u16 {
    let mut parts = t.splitn(5, '\u{1}');
    let tx: u32 = parts.next().and_then(|p| p.parse().ok()).expect("tx");
    let url = parts.next().expect("url");
    let _items = parts.next();
    let bytes: usize = parts.next().and_then(|p| p.parse().ok()).expect("bytes");
    let body = parts.next().expect("body");
    assert_eq!(bytes, body.len(), "the byte count is the UTF-8 length");
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let headers = Object::new();
    let _ = Reflect::set(
        &headers,
        &"content-type".into(),
        &"application/vnd.api+json".into(),
    );
    let _ = Reflect::set(&headers, &"revision".into(), &revision.into());
    init.set_headers(&headers);
    let resp = JsFuture::from(window().fetch_with_str_and_init(url, &init))
        .await
        .expect("fetch");
    let resp: web_sys::Response = resp.unchecked_into();
    let status = resp.status();
    answered(h, tx, status, now());
    status
}

/// The emulator's records of requests made with `company_id=<company>`.
async fn received(company: &str) -> Vec<JsValue> {
    let url = format!("{EMULATOR}/__admin/requests");
    let resp = JsFuture::from(window().fetch_with_str(&url))
        .await
        .expect("fetch");
    let resp: web_sys::Response = resp.unchecked_into();
    let body = JsFuture::from(resp.json().expect("json"))
        .await
        .expect("json");
    Array::from(&get(&body, "requests"))
        .iter()
        .filter(|r| get(&get(r, "query"), "company_id").as_string().as_deref() == Some(company))
        .collect()
}

#[wasm_bindgen_test]
fn bad_options_are_refused_with_a_message_naming_the_field() {
    let msg = open(r#"{"companyId":"abc"}"#, "", "", "f").unwrap_err();
    assert!(msg.starts_with("init: companyId"), "{msg}");
    let msg = open("not json", "", "", "f").unwrap_err();
    assert_eq!(msg, "init: options must be an object");
}

#[wasm_bindgen_test]
fn a_refused_call_names_the_field_and_queues_nothing() {
    let company = company("R1");
    let h = open(&options(&company), "", "", &uuid()).unwrap();
    let args = format!(r#"["{}",{},"",{{}},null]"#, uuid(), now());
    assert_eq!(
        call(h, 2, &args),
        Err("track: metric must be 1 to 128 characters".into())
    );
    let args = format!(r#"["{}",{},"M",{{}},{{"value":"NaN"}}]"#, uuid(), now());
    assert_eq!(
        call(h, 2, &args),
        Err("track: value must be a finite number".into())
    );
    assert_eq!(control(h, PENDING, 0.0, "", None), "0");
}

#[wasm_bindgen_test]
async fn one_task_is_one_record_and_its_request_is_accepted_by_the_emulator() {
    let company = company("E1");
    let h = open(&options(&company), &scan(), "?_kx=K%C3%A9", &uuid()).unwrap();
    let info = control(h, INFO, 0.0, "", None);
    // The storage prefix and the API revision.
    let mut info = info.split('\u{1}');
    let (prefix, revision) = (info.next().expect("prefix"), info.next().expect("revision"));
    assert_eq!(prefix, format!("klaviyo:{company}:"));
    let mut ids = Vec::new();
    for metric in ["Ordered Sample", "Ünïcødé ✓ 😀", "Tab\tand \"quote\""] {
        let id = uuid();
        let args = format!(
            r#"["{id}",{},{},{{"note":"é😀\u0001"}},null]"#,
            now(),
            js_sys::JSON::stringify(&JsValue::from_str(metric))
                .expect("json")
                .as_string()
                .expect("str")
        );
        assert_eq!(call(h, 2, &args), Ok(()));
        ids.push(id);
    }
    assert_eq!(
        control(h, NEXT, now(), "", None),
        "",
        "nothing is sent before the task's record is written"
    );
    // The identity and one record for the three calls.
    assert_eq!(apply(&control(h, SYNC, now(), "", None)), 2);
    let t = control(h, NEXT, now(), "", None);
    assert!(!t.is_empty());
    assert_eq!(send(h, &t, revision).await, 202);
    // The record goes once Klaviyo accepted its calls.
    assert_eq!(apply(&control(h, SYNC, now(), "", None)), 1);
    assert_eq!(control(h, PENDING, 0.0, "", None), "0");
    assert!(!scan().contains(&format!("{prefix}q:")));
    assert_eq!(control(h, REPORTS, 0.0, "", None), "");
    let reqs = received(&company).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(get(&reqs[0], "accepted").as_bool(), Some(true));
    let got: Vec<String> = Array::from(&get(&reqs[0], "uniqueIds"))
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    assert_eq!(got, ids);
    let body = get(&reqs[0], "body");
    let attrs = get(&get(&body, "data"), "attributes");
    let profile = get(&get(&get(&attrs, "profile"), "data"), "attributes");
    assert_eq!(get(&profile, "_kx").as_string().as_deref(), Some("Ké"));
    let events = Array::from(&get(&get(&attrs, "events"), "data"));
    let name = |e: JsValue| {
        let a = get(&e, "attributes");
        get(&get(&get(&get(&a, "metric"), "data"), "attributes"), "name").as_string()
    };
    assert_eq!(name(events.get(1)).as_deref(), Some("Ünïcødé ✓ 😀"));
    assert_eq!(name(events.get(2)).as_deref(), Some("Tab\tand \"quote\""));
    let props = get(&get(&events.get(0), "attributes"), "properties");
    assert_eq!(get(&props, "note").as_string().as_deref(), Some("é😀\u{1}"));
}

#[wasm_bindgen_test]
fn a_reload_restores_the_queue_and_the_anonymous_id_from_local_storage() {
    let company = company("L1");
    let h = open(&options(&company), &scan(), "", &uuid()).unwrap();
    let anon = control(h, ANON, 0.0, "", None);
    let args = format!(r#"["{}",{},"Kept",{{}},null]"#, uuid(), now());
    assert_eq!(call(h, 2, &args), Ok(()));
    apply(&control(h, SYNC, now(), "", None));
    // A new page: everything comes from what storage holds.
    let again = open(&options(&company), &scan(), "", &uuid()).unwrap();
    assert_eq!(control(again, ANON, 0.0, "", None), anon);
    assert_eq!(control(again, PENDING, 0.0, "", None), "1");
    let t = control(again, NEXT, now(), "", None);
    assert!(t.contains(r#""name":"Kept""#), "{t}");
}

#[wasm_bindgen_test]
fn consent_pending_holds_then_denied_erases_real_local_storage() {
    let company = company("C1");
    let prefix = format!("klaviyo:{company}:");
    storage()
        .set_item(&format!("{prefix}q:old"), "left by an earlier page")
        .expect("setItem");
    let pending = format!(r#"{{"companyId":"{company}","apiBase":"{EMULATOR}","consent":0}}"#);
    let h = open(&pending, &scan(), "", &uuid()).unwrap();
    assert_eq!(
        control(h, CONSENT, 3.0, "", None),
        "0",
        "pending; 3 only asks"
    );
    let args = format!(r#"["{}",{},"Held",{{}},null]"#, uuid(), now());
    assert_eq!(call(h, 2, &args), Ok(()));
    assert_eq!(
        control(h, SYNC, now(), "", None),
        "",
        "nothing written while pending"
    );
    assert_eq!(control(h, NEXT, now(), "", None), "", "nothing sent");
    assert_eq!(control(h, PENDING, 0.0, "", None), "1");
    assert_eq!(control(h, CONSENT, 2.0, &uuid(), None), "2");
    let ops = control(h, SYNC, now(), "", None);
    assert_eq!(
        ops,
        format!("\u{1}{prefix}consent\u{2}denied\u{1}\u{2}{prefix}"),
        "tell the other tabs, then erase"
    );
    apply(&ops);
    assert!(!scan().contains(&prefix), "every key of ours is gone");
    assert_eq!(control(h, PENDING, 0.0, "", None), "0");
    assert_eq!(control(h, ANON, 0.0, "", None), "");
    assert!(control(h, REPORTS, 0.0, "", None).starts_with("\u{1}consent\u{2}0\u{2}1\u{2}"));
    assert_eq!(call(h, 2, &args), Ok(()), "validated, dropped, no throw");
    assert_eq!(control(h, SYNC, now(), "", None), "");
    assert_eq!(control(h, NEXT, now(), "", None), "");
}
