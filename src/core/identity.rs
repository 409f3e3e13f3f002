//! Who the visitor is: an `anonymous_id` made once per browser, the `_kx` exchange id
//! from an email click, and what `identify` said. Every request carries these, so
//! Klaviyo can merge anonymous browsing into the known profile. Under them, what
//! Klaviyo's onsite script knows (`onsite.rs`) fills what ours lack, for this page
//! only: it is never stored.
//!
//! The profile is kept as JSON text: it is sent with every event, so it is written
//! once when it changes and then copied, never rebuilt per event.

use super::jsontext::{self as jt, Kind, ObjWriter};

#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub anonymous_id: String,
    pub kx: Option<String>,
    /// Identifiers and attributes from `identify`, as Klaviyo names them: an object.
    profile: String,
    /// `profile` plus `anonymous_id` and `_kx`: what requests carry.
    attributes: String,
    /// What the onsite script's cookie knows (`onsite::Onsite::visitor`): used where
    /// ours say nothing; never stored, and dropped with this identity on a reset.
    pub onsite: String,
}

impl Identity {
    pub fn new(anonymous_id: String) -> Identity {
        Identity::with_profile(anonymous_id, None, String::from("{}"))
    }

    fn with_profile(anonymous_id: String, kx: Option<String>, profile: String) -> Identity {
        let mut id = Identity {
            anonymous_id,
            kx,
            profile,
            attributes: String::new(),
            onsite: String::from("{}"),
        };
        id.refresh();
        id
    }

    /// Rebuilds an identity from what [`Identity::to_storage`] wrote; `None` for anything else.
    pub fn restore(text: &str) -> Option<Identity> {
        let v = jt::check(text).ok()?;
        let anonymous_id = jt::get(&v, "anonymous_id")
            .and_then(jt::unescape)
            .filter(|s| !s.is_empty())?;
        let kx = jt::get(&v, "_kx").and_then(jt::unescape);
        let profile = match jt::get(&v, "profile") {
            Some(p) if jt::kind(p) == Kind::Obj => p.to_string(),
            _ => String::from("{}"),
        };
        Some(Identity::with_profile(anonymous_id, kx, profile))
    }

    pub fn to_storage(&self) -> String {
        let mut w = ObjWriter::new();
        w.raw("anonymous_id", &jt::quote(&self.anonymous_id));
        if let Some(kx) = &self.kx {
            w.raw("_kx", &jt::quote(kx));
        }
        w.raw("profile", &self.profile);
        w.finish()
    }

    /// Adds what `identify` said (a checked object): identifiers and attributes replace
    /// earlier ones, `null` removes one, custom `properties` merge key by key.
    pub fn merge(&mut self, attrs: &str) {
        let mut profile = self.profile.clone();
        for (k, v) in jt::entries(attrs) {
            let Some(key) = jt::unescape(k) else { continue };
            let old = jt::get(&profile, "properties").filter(|p| jt::kind(p) == Kind::Obj);
            let merged = match (key.as_str(), old, jt::kind(v)) {
                ("properties", Some(old), Kind::Obj) => {
                    let mut props = old.to_string();
                    for (pk, pv) in jt::entries(v) {
                        if let Some(pk) = jt::unescape(pk) {
                            props = jt::with(&props, &pk, Some(pv));
                        }
                    }
                    Some(props)
                }
                (_, _, Kind::Null) => None,
                _ => Some(v.to_string()),
            };
            profile = jt::with(&profile, &key, merged.as_deref());
        }
        self.profile = profile;
        self.refresh();
    }

    /// The visitor the shop's first-party cookie kept (the edge worker's `GET /id`), on a
    /// start that found no identity in storage: its anonymous id, and its `_kx` unless
    /// this page's URL gave a newer one.
    pub fn adopt(&mut self, anonymous_id: &str, kx: &str) {
        self.anonymous_id = anonymous_id.to_string();
        if self.kx.is_none() && !kx.is_empty() {
            self.kx = Some(kx.to_string());
        }
        self.refresh();
    }

    /// Sets the `_kx` from an email click.
    pub fn set_kx(&mut self, kx: String) {
        self.kx = Some(kx);
        self.refresh();
    }

    /// What Klaviyo's onsite script knows of the visitor. Its `$exchange_id` is the
    /// `_kx` unless the page's URL gave one; its email and phone number are used only
    /// while our own calls name nobody (no email, phone number or external id), so two
    /// people are never merged into one profile.
    pub fn set_onsite(&mut self, visitor: String) {
        self.onsite = visitor;
        self.refresh();
    }

    fn refresh(&mut self) {
        let mut a = self.profile.clone();
        let named = ["email", "phone_number", "external_id"]
            .iter()
            .any(|k| jt::get(&self.profile, k).is_some());
        for (k, v) in jt::entries(&self.onsite) {
            // The onsite script's `_kx` only without ours; its identifiers only while
            // ours name nobody.
            let skip = if jt::key_is(k, "_kx") {
                self.kx.is_some()
            } else {
                named
            };
            if !skip {
                if let Some(k) = jt::unescape(k) {
                    a = jt::with(&a, &k, Some(v));
                }
            }
        }
        a = jt::with(&a, "anonymous_id", Some(&jt::quote(&self.anonymous_id)));
        if let Some(kx) = &self.kx {
            a = jt::with(&a, "_kx", Some(&jt::quote(kx)));
        }
        self.attributes = a;
    }

    /// Whether the visitor is known: an email, a phone number, an external id or a
    /// `_kx` (ours or the onsite script's).
    pub fn is_identified(&self) -> bool {
        ["email", "phone_number", "external_id", "_kx"]
            .iter()
            .any(|k| jt::get(&self.attributes, k).is_some())
    }

    /// The profile attributes sent with every event and profile request (JSON object).
    pub fn attributes(&self) -> &str {
        &self.attributes
    }

    /// What `identify` said, as a JSON object.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// Only the identifiers Klaviyo accepts on `keys` (subscription and back-in-stock
    /// bodies take fewer than events do), as a JSON object.
    pub fn identifiers(&self, keys: &[&str]) -> String {
        let mut w = ObjWriter::new();
        for k in keys {
            if let Some(v) = jt::get(&self.attributes, k) {
                w.raw(k, v);
            }
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
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
        id.set_kx("KX".into());
        assert_eq!(
            id.attributes(),
            r#"{"email":"c@d.co","properties":{"x":1,"y":3,"z":4},"anonymous_id":"anon-1","_kx":"KX"}"#
        );
        id.merge(r#"{"email":null,"first_name":"Ann"}"#);
        assert_eq!(
            id.profile(),
            r#"{"properties":{"x":1,"y":3,"z":4},"first_name":"Ann"}"#
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
}
