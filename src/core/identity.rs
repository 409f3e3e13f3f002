//! Who the visitor is: an `anonymous_id` made once per browser, the `_kx` exchange id
//! from an email click, and what `identify` said. Every request carries these, so
//! Klaviyo can merge anonymous browsing into the known profile.

use super::json::{self, Json};

#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub anonymous_id: String,
    pub kx: Option<String>,
    /// Identifiers and attributes from `identify`, as Klaviyo names them.
    pub profile: Json,
}

impl Identity {
    pub fn new(anonymous_id: String) -> Identity {
        Identity {
            anonymous_id,
            kx: None,
            profile: Json::obj(),
        }
    }

    /// Rebuilds an identity from what [`Identity::to_storage`] wrote; `None` for anything else.
    pub fn restore(text: &str) -> Option<Identity> {
        let mut v = json::parse(text).ok()?;
        let anonymous_id = match v.take("anonymous_id")? {
            Json::Str(s) if !s.is_empty() => s,
            _ => return None,
        };
        let kx = match v.take("_kx") {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        };
        let profile = match v.take("profile") {
            Some(p @ Json::Obj(_)) => p,
            _ => Json::obj(),
        };
        Some(Identity {
            anonymous_id,
            kx,
            profile,
        })
    }

    pub fn to_storage(&self) -> String {
        let mut v = Json::obj().with("anonymous_id", Json::str(&self.anonymous_id));
        if let Some(kx) = &self.kx {
            v.set("_kx", Json::str(kx));
        }
        v.with("profile", self.profile.clone()).to_text()
    }

    /// Adds what `identify` said: identifiers and attributes replace earlier ones, custom
    /// `properties` merge key by key.
    pub fn merge(&mut self, attrs: Json) {
        let Json::Obj(entries) = attrs else { return };
        for (k, v) in entries {
            match (k.as_str(), self.profile.get("properties"), v) {
                ("properties", Some(Json::Obj(_)), Json::Obj(new)) => {
                    if let Some(Json::Obj(old)) = self.profile_mut("properties") {
                        for (pk, pv) in new {
                            match old.iter_mut().find(|(ok, _)| *ok == pk) {
                                Some(slot) => slot.1 = pv,
                                None => old.push((pk, pv)),
                            }
                        }
                    }
                }
                (_, _, Json::Null) => {
                    self.profile.take(&k);
                }
                (_, _, v) => self.profile.set(&k, v),
            }
        }
    }

    fn profile_mut(&mut self, key: &str) -> Option<&mut Json> {
        match &mut self.profile {
            Json::Obj(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The profile attributes sent with every event and profile request.
    pub fn profile_attributes(&self) -> Json {
        let mut p = self.profile.clone();
        p.set("anonymous_id", Json::str(&self.anonymous_id));
        if let Some(kx) = &self.kx {
            p.set("_kx", Json::str(kx));
        }
        p
    }

    /// Only the identifiers Klaviyo accepts on `keys` (subscription and back-in-stock
    /// bodies take fewer than events do).
    pub fn identifiers(&self, keys: &[&str]) -> Json {
        let all = self.profile_attributes();
        let mut out = Json::obj();
        for k in keys {
            if let Some(v) = all.get(k) {
                out.set(k, v.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_identifiers_and_merges_properties() {
        let mut id = Identity::new("anon-1".into());
        id.merge(json::parse(r#"{"email":"a@b.co","properties":{"x":1,"y":2}}"#).unwrap());
        id.merge(json::parse(r#"{"email":"c@d.co","properties":{"y":3,"z":4}}"#).unwrap());
        assert_eq!(
            id.profile.to_text(),
            r#"{"email":"c@d.co","properties":{"x":1,"y":3,"z":4}}"#
        );
        id.kx = Some("KX".into());
        assert_eq!(
            id.profile_attributes().to_text(),
            r#"{"email":"c@d.co","properties":{"x":1,"y":3,"z":4},"anonymous_id":"anon-1","_kx":"KX"}"#
        );
    }

    #[test]
    fn survives_a_storage_round_trip_and_refuses_garbage() {
        let mut id = Identity::new("anon-1".into());
        id.kx = Some("KX".into());
        id.merge(json::parse(r#"{"external_id":"c-9"}"#).unwrap());
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
    }

    #[test]
    fn identifiers_picks_only_the_allowed_keys() {
        let mut id = Identity::new("anon-1".into());
        id.merge(json::parse(r#"{"email":"a@b.co","first_name":"A"}"#).unwrap());
        assert_eq!(
            id.identifiers(&["email", "phone_number", "external_id"])
                .to_text(),
            r#"{"email":"a@b.co"}"#
        );
    }
}
