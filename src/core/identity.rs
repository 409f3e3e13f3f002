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
    /// The profile's email and phone number came from a subscription, not `identify`:
    /// a sign-in replaces them rather than joining them (another person on a shared
    /// device), and so does a later subscription.
    pub provisional: bool,
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
            provisional: false,
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
        let mut id = Identity::with_profile(anonymous_id, kx, profile);
        id.provisional = jt::get(&v, "provisional") == Some("true");
        Some(id)
    }

    pub fn to_storage(&self) -> String {
        let mut out = String::new();
        self.write_storage(&mut out);
        out
    }

    /// [`Identity::to_storage`] written into `out` (straight into a storage write).
    pub fn write_storage(&self, out: &mut String) {
        self.write_ids(out);
        out.push_str(",\"profile\":");
        out.push_str(&self.profile);
        if self.provisional {
            out.push_str(",\"provisional\":true");
        }
        out.push('}');
    }

    /// `{"anonymous_id":…,"_kx":…` (`_kx` where there is one), left open: the head of
    /// the stored identity and of the first-party cookie's body.
    pub fn write_ids(&self, out: &mut String) {
        out.push_str("{\"anonymous_id\":");
        jt::write_str(&self.anonymous_id, out);
        if let Some(kx) = &self.kx {
            out.push_str(",\"_kx\":");
            jt::write_str(kx, out);
        }
    }

    /// Adds what `identify` said (a checked object): identifiers and attributes replace
    /// earlier ones, `null` removes one, custom `properties` merge key by key.
    pub fn merge(&mut self, attrs: &str) {
        let (profile, attributes) = self.merged(attrs);
        self.take_merged(profile, attributes);
    }

    /// What [`Identity::merge`] would make of `attrs`, this identity left as it is:
    /// the new profile and the attributes requests would then carry.
    pub fn merged(&self, attrs: &str) -> (String, String) {
        // A sign-in after a subscription named the visitor: nothing of that profile
        // (its name, its attributes) passes to the person signing in.
        let mut profile = if self.provisional && has_any(attrs, OWN_IDENTIFIERS) {
            String::from("{}")
        } else {
            self.profile.clone()
        };
        // A call naming someone: the identifiers it leaves null or blank are not theirs.
        let names = OWN_IDENTIFIERS
            .iter()
            .any(|k| crate::core::validate::given(attrs, k).is_some());
        for (k, v) in jt::entries(attrs) {
            let Some(key) = jt::unescape(k) else { continue };
            let old = jt::get(&profile, "properties").filter(|p| jt::kind(p) == Kind::Obj);
            // The value borrowed from `attrs`, unless properties are merged.
            let merged;
            let raw = match (key.as_str(), old, jt::kind(v)) {
                ("properties", Some(old), Kind::Obj) => {
                    let mut props = old.to_string();
                    for (pk, pv) in jt::entries(v) {
                        if let Some(pk) = jt::unescape(pk) {
                            props = jt::with(&props, &pk, Some(pv));
                        }
                    }
                    merged = props;
                    Some(merged.as_str())
                }
                // An identifier's `null` or blank removes it only beside another one
                // (someone else signing in: never two people's ids in one profile);
                // alone it is not given (a customer not loaded yet keeps the email).
                _ if crate::core::validate::unset(v) && OWN_IDENTIFIERS.contains(&key.as_str()) => {
                    if names {
                        None
                    } else {
                        continue;
                    }
                }
                // Another attribute's `null` removes it; its blank is not given.
                (_, _, Kind::Null) => None,
                _ if crate::core::validate::unset(v) => continue,
                _ => Some(v),
            };
            profile = jt::with(&profile, &key, raw);
        }
        let attributes = self.attributes_of(&profile);
        (profile, attributes)
    }

    /// Names the visitor by a subscription's email and phone number (`contact`, a
    /// checked object), in place of any a subscription gave before: provisionally.
    pub fn take_contact(&mut self, contact: &str) {
        let mut p = self.profile.clone();
        for k in OWN_IDENTIFIERS {
            p = jt::with(&p, k, None);
        }
        for k in REACHABLE {
            if let Some(v) = jt::get(contact, k) {
                p = jt::with(&p, k, Some(v));
            }
        }
        self.profile = p;
        self.provisional = true;
        self.refresh();
    }

    /// Becomes what [`Identity::merged`] gave.
    pub fn take_merged(&mut self, profile: String, attributes: String) {
        self.profile = profile;
        self.attributes = attributes;
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
    /// `_kx` unless the page's URL gave one; all of it is used only while our own calls
    /// name nobody (no email, phone number or external id), so two people are never
    /// merged into one profile.
    pub fn set_onsite(&mut self, visitor: String) {
        self.onsite = visitor;
        self.refresh();
    }

    fn refresh(&mut self) {
        self.attributes = self.attributes_of(&self.profile);
    }

    /// The attributes requests carry for `profile`: it, the anonymous id, and while it
    /// names nobody (no email, phone number or external id) our `_kx` and the onsite
    /// script's visitor under it. A `_kx` names a person too (an email click's, on a
    /// shared device perhaps another's): a call never carries two people's identifiers,
    /// which would merge their profiles.
    fn attributes_of(&self, profile: &str) -> String {
        let mut a = profile.to_string();
        if !has_any(profile, OWN_IDENTIFIERS) {
            for (k, v) in jt::entries(&self.onsite) {
                // The onsite script's `_kx` only without ours.
                if !(jt::key_is(k, "_kx") && self.kx.is_some()) {
                    if let Some(k) = jt::unescape(k) {
                        a = jt::with(&a, &k, Some(v));
                    }
                }
            }
            if let Some(kx) = &self.kx {
                a = jt::with(&a, "_kx", Some(&jt::quote(kx)));
            }
        }
        jt::with(&a, "anonymous_id", Some(&jt::quote(&self.anonymous_id)))
    }

    /// Whether we know the visitor (our calls named them, or an earlier email click's
    /// `_kx`) while Klaviyo's onsite script does not (its cookie names no one: it sends
    /// Active on Site only for a browser it has identified). This page's URL `_kx` is
    /// the adapter's to see: the onsite script identifies the browser by it too.
    pub fn known_only_to_us(&self) -> bool {
        (has_any(&self.profile, OWN_IDENTIFIERS) || self.kx.is_some())
            && !has_any(&self.onsite, IDENTIFIERS)
    }

    /// Whether our `identify` named the visitor (an email, a phone number or an external
    /// id, not a subscription's provisional name).
    pub fn named_for_good(&self) -> bool {
        has_any(&self.profile, OWN_IDENTIFIERS) && !self.provisional
    }

    /// Whether the visitor is known: an email, a phone number, an external id or a
    /// `_kx` (ours or the onsite script's).
    pub fn is_identified(&self) -> bool {
        has_any(&self.attributes, IDENTIFIERS)
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

/// The keys that name a person: the shop's own, then the onsite script's `_kx`. One
/// list: the shorter ones below are its beginnings.
pub(crate) const IDENTIFIERS: &[&str] = &["email", "phone_number", "external_id", "_kx"];
/// The identifiers a shop gives (no `_kx`).
pub(crate) const OWN_IDENTIFIERS: &[&str] = IDENTIFIERS.split_at(3).0;
/// The identifiers a message can reach: email and phone number.
pub(crate) const REACHABLE: &[&str] = IDENTIFIERS.split_at(2).0;

/// Whether object `obj` has one of `keys`.
pub(crate) fn has_any(obj: &str, keys: &[&str]) -> bool {
    keys.iter().any(|k| jt::get(obj, k).is_some())
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
