use super::*;

const SECRET: &str = "edge-signing-5e4d3c2b1a";

fn id() -> VisitorId {
    VisitorId::new("3f1e7c52-1d0b-4a55-9d1e-2b7c6a8e9f01", Some("Kx0.AbC=")).unwrap()
}

#[test]
fn a_cookie_the_worker_made_reads_back() {
    let v = id().value(SECRET);
    assert_eq!(
        read(Some(&format!("a=1; {COOKIE}={v}; b=2")), SECRET),
        Some(id())
    );
    let no_kx = VisitorId::new("anon-1", None).unwrap();
    assert_eq!(
        read(Some(&format!("{COOKIE}={}", no_kx.value(SECRET))), SECRET),
        Some(no_kx)
    );
}

#[test]
fn a_forged_or_unsigned_cookie_is_ignored() {
    let v = id().value(SECRET);
    let forged = v.replacen("3f1e7c52", "00000000", 1);
    let unsigned = "v1|anon-1|";
    let other_key = id().value("another-secret");
    for bad in [
        forged.as_str(),
        unsigned,
        other_key.as_str(),
        "",
        "v1|a|b|zz",
        "junk",
    ] {
        assert_eq!(
            read(Some(&format!("{COOKIE}={bad}")), SECRET),
            None,
            "{bad}"
        );
    }
    assert_eq!(read(None, SECRET), None);
    assert_eq!(
        read(Some(&format!("x{COOKIE}={v}")), SECRET),
        None,
        "another cookie's name"
    );
}

#[test]
fn the_cookie_is_http_only_secure_lax_for_400_days_on_the_route_prefix() {
    let line = set_cookie(&id(), SECRET, "/klaviyo");
    assert!(line.starts_with(&format!("{COOKIE}=v1|")));
    assert!(line.ends_with("; Max-Age=34560000; Path=/klaviyo; HttpOnly; Secure; SameSite=Lax"));
    assert!(!line.contains(SECRET));
    assert_eq!(
        clear_cookie(""),
        format!("{COOKIE}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax")
    );
}

#[test]
fn a_post_names_what_it_cannot_keep() {
    assert_eq!(
        parse_post(r#"{"anonymous_id":"a-1","_kx":"k"}"#).unwrap(),
        VisitorId::new("a-1", Some("k")).unwrap()
    );
    assert_eq!(parse_post(r#"{"anonymous_id":"a-1"}"#).unwrap().kx, None);
    for (body, pointer) in [
        (r#"{"anonymous_id":""}"#, Some("/anonymous_id")),
        (r#"{"anonymous_id":"a;b"}"#, Some("/anonymous_id")),
        (r#"{"anonymous_id":"a|b"}"#, Some("/anonymous_id")),
        (r#"{"anonymous_id":"a","_kx":"has space"}"#, Some("/_kx")),
        (r#"{"anonymous_id":"a","email":"x@y.z"}"#, None),
        ("[]", None),
    ] {
        let r = parse_post(body).unwrap_err();
        assert_eq!(r.status, 400, "{body}");
        match pointer {
            Some(p) => assert!(r.body.contains(p), "{body}: {}", r.body),
            None => assert!(!r.body.contains("pointer"), "{body}"),
        }
    }
    let long = format!(r#"{{"anonymous_id":"{}"}}"#, "a".repeat(MAX_ID + 1));
    assert_eq!(parse_post(&long).unwrap_err().status, 400);
}

#[test]
fn the_answer_of_get_is_json() {
    assert_eq!(
        id().json(),
        r#"{"_kx":"Kx0.AbC=","anonymous_id":"3f1e7c52-1d0b-4a55-9d1e-2b7c6a8e9f01"}"#
    );
}
