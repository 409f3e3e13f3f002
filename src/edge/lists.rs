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
//! `external_id` (nothing else); a blank or null one is not given (a shop's export has
//! `"email": ""` for a customer known by phone alone). Entries that share an identifier name one person
//! ([`members`]), imported and added once. A person with an `id` is used as it is (their
//! other identifiers are checked but not sent); each other person first goes through a
//! profile-import (`POST /api/profile-import`, `ProfileUpsertQuery`) whose 200/201
//! answer carries the id ([`profile_id`]). Then [`add_to_list_body`] adds them all, each
//! id once.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

use super::api_rules::MAX_BULK;
use super::bodies::{self, at, at_index, rule, Invalid};
use super::bounded::Capped;
use crate::core::{text, validate};

/// A list's members: the people the entries name, in the order of the first entry that
/// names each (so there are never more than entries, and the `n` first people are
/// named within the `n` first entries). `ids[i]` is person `i`'s profile id, `None` until
/// the profile-import in `imports` for `i` has answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    pub ids: Vec<Option<String>>,
    /// `(index into ids, profile-import body)`, in index order.
    pub imports: Vec<(usize, String)>,
}

/// An entry's or a person's identifiers, in the order of [`KINDS`].
type Ids<'a> = [Option<&'a str>; 4];

/// The identifiers an entry may carry; `id` first.
const KINDS: [&str; 4] = ["id", "email", "phone_number", "external_id"];

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
///
/// Entries that share an identifier (the same `id`, `email`, `phone_number` or
/// `external_id`, byte for byte) name one person: imported once with the identifiers of
/// all those entries, as the imports one by one would have left the profile (each is an
/// upsert), and added once. An entry whose identifiers disagree with the person it
/// shares one with (another phone number for the same email, another `id`, an `id` where
/// the person has none or the reverse), or that names two people already told apart,
/// stays a person of its own, imported as it is;
/// [`add_to_list_body`] then leaves out an id that comes back twice.
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
    let mut people: Vec<Ids> = Vec::new();
    // (kind, value) -> the person it names.
    let mut named: HashMap<(usize, &str), usize> = HashMap::new();
    for (i, m) in profiles.kept().iter().enumerate() {
        let entry = checked_entry(m, &at_index("/profiles", i))?;
        let person = same_person(&people, &named, &entry);
        let p = match person {
            Some(p) => {
                if let Some(known) = people.get_mut(p) {
                    for (slot, v) in known.iter_mut().zip(entry) {
                        *slot = slot.or(v);
                    }
                }
                p
            }
            None => {
                people.push(entry);
                people.len() - 1
            }
        };
        for (kind, v) in entry.iter().enumerate() {
            if let Some(v) = v {
                named.entry((kind, v)).or_insert(p);
            }
        }
    }
    let mut ids = Vec::with_capacity(people.len());
    let mut imports = Vec::new();
    for (p, person) in people.iter().enumerate() {
        if let Some(id) = person[0] {
            ids.push(Some(id.to_string()));
            continue;
        }
        let mut attrs = Map::new();
        for (kind, v) in KINDS.iter().zip(person).skip(1) {
            if let Some(v) = v {
                attrs.insert((*kind).into(), json!(v));
            }
        }
        let import = json!({"data": {"type": "profile", "attributes": attrs}});
        imports.push((p, import.to_string()));
        ids.push(None);
    }
    Ok(Members { ids, imports })
}

/// An entry's identifiers, checked; `base` points at the entry. A blank one is not
/// given: it names nobody, so it neither joins entries nor refuses the call.
fn checked_entry<'a>(m: &'a MemberIn, base: &str) -> Result<Ids<'a>, Invalid> {
    let given = |s: &'a Option<String>| s.as_deref().filter(|t| !text::is_blank(t));
    let entry = [
        given(&m.id),
        given(&m.email),
        given(&m.phone_number),
        given(&m.external_id),
    ];
    if let Some(e) = entry[1] {
        rule(base, validate::email("email", e))?;
    }
    if let Some(p) = entry[2] {
        rule(base, validate::phone("phone_number", p))?;
    }
    match entry[0] {
        Some(id) if !list_id_ok(id) => Err(Invalid::new(
            &at(base, "id"),
            "must be a Klaviyo profile id (1 to 64 letters and digits)",
        )),
        None if entry.iter().all(Option::is_none) => Err(Invalid::new(
            base,
            "needs at least one of: id, email, phone_number, external_id",
        )),
        _ => Ok(entry),
    }
}

/// The one person already named whom `entry` names too, if its identifiers agree with
/// theirs; `None` for a new person.
fn same_person(
    people: &[Ids],
    named: &HashMap<(usize, &str), usize>,
    entry: &Ids,
) -> Option<usize> {
    let mut found = None;
    for (kind, v) in entry.iter().enumerate() {
        if let Some(&p) = v.and_then(|v| named.get(&(kind, v))) {
            match found {
                Some(q) if q != p => return None,
                _ => found = Some(p),
            }
        }
    }
    let person = people.get(found?)?;
    // An entry with an id and one without are never joined: a person with an id is not
    // imported, so the other entry's identifiers would never reach the profile (and the
    // id may not be that email's profile at all).
    let agree = person[0].is_some() == entry[0].is_some()
        && person
            .iter()
            .zip(entry)
            .all(|(a, b)| a.is_none() || b.is_none() || a == b);
    found.filter(|_| agree)
}

/// The profile id in a profile-import answer (`PostProfileResponse`, `data.id`), if it
/// is one (1 to 64 letters and digits).
pub fn profile_id(import_answer: &str) -> Option<String> {
    let answer: ProfileAnswer = bodies::parse(import_answer).ok()?;
    answer.data.id.filter(|id| list_id_ok(id))
}

/// The `add_profiles_to_list` body (`ListMembersAddQuery`):
/// `{"data":[{"type":"profile","id":"…"},…]}`, each id once (two people of a call
/// whose imports found one profile, or an id given beside an entry that imports as it),
/// in the order given.
pub fn add_to_list_body(ids: &[String]) -> String {
    let mut seen = HashSet::with_capacity(ids.len());
    let data: Vec<Value> = ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .map(|id| json!({"type": "profile", "id": id}))
        .collect();
    json!({ "data": data }).to_string()
}

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;
