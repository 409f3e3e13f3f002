//! List membership by email, phone or external id. Klaviyo's `add_profiles_to_list`
//! (`POST /api/lists/{id}/relationships/profiles`) takes profile IDs only, at most 1000
//! per call. So the worker's `POST /api/lists/{id}/profiles` (signed) takes
//!
//! ```json
//! {"profiles": [{"id": "01GDDKASAP8TKDDA2GRZDSVP4H"}, {"email": "a@b.co"},
//!               {"phone_number": "+15005550006", "external_id": "c-1"}]}
//! ```
//!
//! 1 to 1000 entries, each with at least one of `id`, `email`, `phone_number`,
//! `external_id` (nothing else). An entry with an `id` is used as it is (its other
//! identifiers are checked but not sent); each other entry first goes through a
//! profile-import (`POST /api/profile-import`, `ProfileUpsertQuery`) whose 200/201
//! answer carries the id ([`profile_id`]). Then [`add_to_list_body`] adds them all.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::api_rules::MAX_BULK;
use super::bodies::{self, at, at_index, rule, Invalid};
use super::bounded::Capped;
use crate::core::{text, validate};

/// A list's members, in the order given: `ids[i]` is entry `i`'s profile id, `None`
/// until the profile-import in `imports` for `i` has answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    pub ids: Vec<Option<String>>,
    /// `(index into ids, profile-import body)`, in index order.
    pub imports: Vec<(usize, String)>,
}

// Any other member is refused where it stands (`deny_unknown_fields`), never read.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersIn {
    // Optional here so that an unknown member is named before a missing one.
    profiles: Option<Capped<MemberIn, MAX_BULK>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberIn {
    id: Option<String>,
    email: Option<String>,
    phone_number: Option<String>,
    external_id: Option<String>,
}

/// `PostProfileResponse`: only what is read.
#[derive(Deserialize)]
struct ProfileAnswer {
    data: ProfileAnswerData,
}

#[derive(Deserialize)]
struct ProfileAnswerData {
    id: Option<String>,
}

/// A list id (a path segment) or a profile id: 1 to 64 ASCII letters and digits.
pub fn list_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Reads a `POST /api/lists/{id}/profiles` body (see the module docs).
pub fn members(text: &str) -> Result<Members, Invalid> {
    let body: MembersIn = bodies::parse(text).map_err(|mut e| {
        if e.detail == bodies::UNKNOWN_MEMBER {
            e.detail = if e.pointer.matches('/').count() == 1 {
                "is not a member of this body (profiles)"
            } else {
                "is not a member of a list entry (id, email, phone_number, external_id)"
            }
            .to_string();
        }
        e
    })?;
    let profiles = body
        .profiles
        .ok_or_else(|| Invalid::new("/profiles", "is required"))?;
    if profiles.total() == 0 || profiles.total() > MAX_BULK {
        return Err(Invalid::new("/profiles", "must hold 1 to 1000 profiles"));
    }
    let mut ids = Vec::with_capacity(profiles.total());
    let mut imports = Vec::new();
    for (i, m) in profiles.kept().iter().enumerate() {
        let base = at_index("/profiles", i);
        let mut attrs = Map::new();
        if let Some(e) = &m.email {
            rule(&base, validate::email("email", e))?;
            attrs.insert("email".into(), json!(e));
        }
        if let Some(p) = &m.phone_number {
            rule(&base, validate::phone("phone_number", p))?;
            attrs.insert("phone_number".into(), json!(p));
        }
        if let Some(x) = &m.external_id {
            if text::is_blank(x) {
                return Err(Invalid::new(
                    &at(&base, "external_id"),
                    "must be a non-empty string",
                ));
            }
            attrs.insert("external_id".into(), json!(x));
        }
        match &m.id {
            Some(id) if list_id_ok(id) => ids.push(Some(id.clone())),
            Some(_) => {
                return Err(Invalid::new(
                    &at(&base, "id"),
                    "must be a Klaviyo profile id (1 to 64 letters and digits)",
                ))
            }
            None if attrs.is_empty() => {
                return Err(Invalid::new(
                    &base,
                    "needs at least one of: id, email, phone_number, external_id",
                ))
            }
            None => {
                let import = json!({"data": {"type": "profile", "attributes": attrs}});
                imports.push((i, import.to_string()));
                ids.push(None);
            }
        }
    }
    Ok(Members { ids, imports })
}

/// The profile id in a profile-import answer (`PostProfileResponse`, `data.id`), if it
/// is one (1 to 64 letters and digits).
pub fn profile_id(import_answer: &str) -> Option<String> {
    let answer: ProfileAnswer = bodies::parse(import_answer).ok()?;
    answer.data.id.filter(|id| list_id_ok(id))
}

/// The `add_profiles_to_list` body (`ListMembersAddQuery`):
/// `{"data":[{"type":"profile","id":"…"},…]}`.
pub fn add_to_list_body(ids: &[String]) -> String {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"type": "profile", "id": id}))
        .collect();
    json!({ "data": data }).to_string()
}

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;
