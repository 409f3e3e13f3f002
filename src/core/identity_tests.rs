use super::*;

#[test]
fn merge_replaces_identifiers_and_merges_properties() {
    let mut id = Identity::new("anon-1".into());
    id.merge(r#"{"email":"a@b.co","properties":{"x":1,"y":2}}"#);
    id.merge(r#"{"email":"c@d.co","properties":{"y":3,"z":4}}"#);
    assert_eq!(
        id.profile(),
        r#"{"email":"c@d.co","properties":{"x":1,"y":3,"z":4}}"#
    );
    // An email click's `_kx` names a person too: not beside an email we were given.
    id.set_kx("KX".into());
    assert_eq!(
        id.attributes(),
        r#"{"email":"c@d.co","properties":{"x":1,"y":3,"z":4},"anonymous_id":"anon-1"}"#
    );
    // An identifier's null or blank is not given (a logout is `reset()`); another
    // attribute's null removes it.
    id.merge(r#"{"email":null,"phone_number":"","first_name":"Ann"}"#);
    assert_eq!(
        id.profile(),
        r#"{"email":"c@d.co","properties":{"x":1,"y":3,"z":4},"first_name":"Ann"}"#
    );
    id.merge(r#"{"first_name":null}"#);
    assert_eq!(
        id.profile(),
        r#"{"email":"c@d.co","properties":{"x":1,"y":3,"z":4}}"#
    );
}

#[test]
fn survives_a_storage_round_trip_and_refuses_garbage() {
    let mut id = Identity::new("anon-\"1".into());
    id.set_kx("KX".into());
    id.merge(r#"{"external_id":"c-9"}"#);
    assert_eq!(Identity::restore(&id.to_storage()), Some(id));
    for bad in [
        "",
        "null",
        "{}",
        r#"{"anonymous_id":5}"#,
        r#"{"anonymous_id":""}"#,
        "{{",
    ] {
        assert_eq!(Identity::restore(bad), None, "{bad}");
    }
    // What the previous version stored reads back the same way.
    let old = r#"{"anonymous_id":"a-1","_kx":"K","profile":{"email":"a@b.co"}}"#;
    let id = Identity::restore(old).unwrap();
    assert_eq!(id.to_storage(), old);
}

fn onsite(kx: Option<&str>, email: Option<&str>) -> String {
    let mut w = ObjWriter::new();
    if let Some(kx) = kx {
        w.raw("_kx", &jt::quote(kx));
    }
    if let Some(e) = email {
        w.raw("email", &jt::quote(e));
    }
    w.finish()
}

#[test]
fn the_onsite_scripts_visitor_fills_what_ours_lack_and_is_never_stored() {
    let mut id = Identity::new("anon-1".into());
    assert!(!id.is_identified());
    id.set_onsite(onsite(Some("KX-cookie"), Some("ann@example.com")));
    assert_eq!(
        id.attributes(),
        r#"{"_kx":"KX-cookie","email":"ann@example.com","anonymous_id":"anon-1"}"#
    );
    assert!(id.is_identified());
    assert_eq!(
        id.to_storage(),
        r#"{"anonymous_id":"anon-1","profile":{}}"#,
        "the cookie's data stays in memory"
    );
    // A _kx from the URL wins over the cookie's.
    id.set_kx("KX-url".into());
    assert_eq!(jt::get(id.attributes(), "_kx"), Some(r#""KX-url""#));
    // Once our own calls name the visitor, the cookie's identifiers are not used.
    id.merge(r#"{"external_id":"c-1"}"#);
    id.set_onsite(onsite(Some("KX-cookie"), Some("ann@example.com")));
    assert_eq!(jt::get(id.attributes(), "email"), None);
    assert_eq!(jt::get(id.attributes(), "external_id"), Some(r#""c-1""#));
}

#[test]
fn identified_means_an_email_a_phone_an_external_id_or_a_kx() {
    for attrs in [
        r#"{"email":"a@b.co"}"#,
        r#"{"phone_number":"+15005550006"}"#,
        r#"{"external_id":"c-1"}"#,
    ] {
        let mut id = Identity::new("anon-1".into());
        id.merge(attrs);
        assert!(id.is_identified(), "{attrs}");
    }
    let mut id = Identity::new("anon-1".into());
    id.merge(r#"{"first_name":"Ann"}"#);
    assert!(!id.is_identified());
    id.set_kx("KX".into());
    assert!(id.is_identified());
}

#[test]
fn identifiers_picks_only_the_allowed_keys() {
    let mut id = Identity::new("anon-1".into());
    id.merge(r#"{"email":"a@b.co","first_name":"A"}"#);
    assert_eq!(
        id.identifiers(&["email", "phone_number", "external_id"]),
        r#"{"email":"a@b.co"}"#
    );
}
