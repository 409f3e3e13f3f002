use super::*;

#[test]
fn errors_are_jsonapi_with_an_optional_pointer() {
    let r = error(
        400,
        "invalid",
        "Invalid input.",
        "a \"quoted\" detail",
        Some("/data/type"),
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["errors"][0]["status"], "400");
    assert_eq!(v["errors"][0]["detail"], "a \"quoted\" detail");
    assert_eq!(v["errors"][0]["source"]["pointer"], "/data/type");
    assert_eq!(
        r.headers,
        [("content-type".to_string(), JSONAPI.to_string())]
    );
    let plain = error(404, "not_found", "Not found.", "no such route", None);
    assert!(!plain.body.contains("source"));
}

#[test]
fn cors_only_for_an_allowed_origin() {
    assert!(Reply::empty(204).cors(None).headers.is_empty());
    let r = Reply::empty(204).cors(Some("https://shop.example"));
    assert!(r.headers.contains(&(
        "access-control-allow-origin".into(),
        "https://shop.example".into()
    )));
    assert_eq!(
        ok(200, &[("revision", "2026-07-15")]).body,
        r#"{"ok":true,"revision":"2026-07-15"}"#
    );
}
