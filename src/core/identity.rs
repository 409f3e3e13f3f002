//! Who the visitor is: an `anonymous_id` made once per browser, the `_kx` exchange id
//! from an email click, and what `identify` said. Every request carries these, so
//! Klaviyo can merge anonymous browsing into the known profile.
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

    /// Sets the `_kx` from an email click.
    pub fn set_kx(&mut self, kx: String) {
        self.kx = Some(kx);
        self.refresh();
    }

    fn refresh(&mut self) {
        let mut a = jt::with(
            &self.profile,
            "anonymous_id",
            Some(&jt::quote(&self.anonymous_id)),
        );
        if let Some(kx) = &self.kx {
            a = jt::with(&a, "_kx", Some(&jt::quote(kx)));
        }
        self.attributes = a;
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
