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
mod tests {
    use super::*;
    use crate::edge::api_rules;

    #[test]
    fn list_ids_are_1_to_64_ascii_letters_and_digits() {
        for ok in ["Y6nRLr", "a", "0123456789", &"x".repeat(64)] {
            assert!(list_id_ok(ok), "{ok}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "Y6n-Lr",
            "Y6n/Lr",
            "..",
            "Y6n%2F",
            "Y6nRLr ",
            "ÄbC",
            "a\u{0}",
        ] {
            assert!(!list_id_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_used_as_they_are_and_the_others_are_imported_first() {
        let m = members(
            r#"{"profiles":[{"id":"01GDDKASAP8TKDDA2GRZDSVP4H"},{"email":"a@b.co"},{"phone_number":"+15005550006","external_id":"c-1"},{"id":"01H","email":"b@c.co"}]}"#,
        )
        .unwrap();
        assert_eq!(
            m.ids,
            vec![
                Some("01GDDKASAP8TKDDA2GRZDSVP4H".to_string()),
                None,
                None,
                Some("01H".to_string()),
            ]
        );
        assert_eq!(m.imports.len(), 2);
        assert_eq!(m.imports[0].0, 1);
        assert_eq!(m.imports[1].0, 2);
        let first: Value = serde_json::from_str(&m.imports[0].1).unwrap();
        assert_eq!(
            first,
            json!({"data": {"type": "profile", "attributes": {"email": "a@b.co"}}})
        );
        let second: Value = serde_json::from_str(&m.imports[1].1).unwrap();
        assert_eq!(
            second,
            json!({"data": {"type": "profile", "attributes": {"phone_number": "+15005550006", "external_id": "c-1"}}})
        );
        // Each import is a body the profile-import route itself would accept.
        for (_, body) in &m.imports {
            assert_eq!(api_rules::profile_import(body), Ok(()));
        }
    }

    #[test]
    fn identifiers_that_would_need_escaping_stay_json() {
        let m = members(r#"{"profiles":[{"external_id":"a\"b\\c\u2028"}]}"#).unwrap();
        let body: Value = serde_json::from_str(&m.imports[0].1).unwrap();
        assert_eq!(
            body.pointer("/data/attributes/external_id")
                .and_then(Value::as_str),
            Some("a\"b\\c\u{2028}")
        );
    }

    fn entries(n: usize) -> String {
        let one = r#"{"email":"a@b.co"}"#;
        format!(r#"{{"profiles":[{}]}}"#, vec![one; n].join(","))
    }

    #[test]
    fn a_list_call_holds_1_to_1000_entries() {
        assert_eq!(members(&entries(1000)).unwrap().imports.len(), 1000);
        for n in [0, 1001] {
            assert_eq!(
                members(&entries(n)).unwrap_err(),
                Invalid::new("/profiles", "must hold 1 to 1000 profiles")
            );
        }
    }

    #[test]
    fn entries_are_checked_with_pointers() {
        let cases = [
            (r#"{"profiles":[{"email":"a@b.co"},{}]}"#, "/profiles/1"),
            (
                r#"{"profiles":[{"email":"a@b.co"},{"email":null}]}"#,
                "/profiles/1",
            ),
            (r#"{"profiles":[{"email":"x@"}]}"#, "/profiles/0/email"),
            (
                r#"{"profiles":[{"phone_number":"555"}]}"#,
                "/profiles/0/phone_number",
            ),
            (
                r#"{"profiles":[{"external_id":" "}]}"#,
                "/profiles/0/external_id",
            ),
            (r#"{"profiles":[{"id":"01G/../x"}]}"#, "/profiles/0/id"),
            (r#"{"profiles":[{"id":""}]}"#, "/profiles/0/id"),
            (r#"{"profiles":[{"id":7}]}"#, "/profiles/0/id"),
            (
                r#"{"profiles":[{"email":"a@b.co","first_name":"A"}]}"#,
                "/profiles/0/first_name",
            ),
            (r#"{"profiles":[{"email":"a@b.co"}],"list":"L"}"#, "/list"),
            (r#"{"profile":[{"email":"a@b.co"}]}"#, "/profile"),
            (r#"{"profiles":null}"#, "/profiles"),
            (r#"{"profiles":{"email":"a@b.co"}}"#, "/profiles"),
            (r#"{"profiles":["a@b.co"]}"#, "/profiles/0"),
            (r#"{}"#, "/profiles"),
            (
                r#"{"profiles":[{"email":"a@b.co","email":"b@c.co"}]}"#,
                "/profiles/0/email",
            ),
            (r#"{"profiles":[{"id":"A","id":"B"}]}"#, "/profiles/0/id"),
            ("[", ""),
        ];
        for (body, pointer) in cases {
            assert_eq!(members(body).unwrap_err().pointer, pointer, "{body}");
        }
        let e = members(r#"{"profiles":[{"email":"secret@"}]}"#).unwrap_err();
        assert!(!e.detail.contains("secret"));
    }

    #[test]
    fn the_profile_id_comes_from_a_profile_import_answer() {
        let answer = r#"{"data":{"type":"profile","id":"01GDDKASAP8TKDDA2GRZDSVP4H","attributes":{"email":"a@b.co","first_name":null,"created":"2026-07-20T12:00:00+00:00"},"relationships":{"lists":{"links":{"self":"https://a.klaviyo.com/api/profiles/01GDDKASAP8TKDDA2GRZDSVP4H/relationships/lists/"}}},"links":{"self":"https://a.klaviyo.com/api/profiles/01GDDKASAP8TKDDA2GRZDSVP4H/"}},"links":{"self":"https://a.klaviyo.com/api/profile-import/"}}"#;
        assert_eq!(
            profile_id(answer).as_deref(),
            Some("01GDDKASAP8TKDDA2GRZDSVP4H")
        );
        for bad in [
            "",
            "{}",
            r#"{"data":{}}"#,
            r#"{"data":{"id":null}}"#,
            r#"{"data":{"id":""}}"#,
            r#"{"data":{"id":7}}"#,
            r#"{"data":{"id":"01G/../../x"}}"#,
            r#"{"data":{"id":"A","id":"B"}}"#,
            r#"{"errors":[{"id":"e","code":"invalid","title":"t","detail":"d"}]}"#,
        ] {
            assert_eq!(profile_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_add_to_list_body_names_each_profile_by_id() {
        let body = add_to_list_body(&["01A".to_string(), "01B".to_string()]);
        assert_eq!(
            body,
            r#"{"data":[{"id":"01A","type":"profile"},{"id":"01B","type":"profile"}]}"#
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            json!({"data": [{"type": "profile", "id": "01A"}, {"type": "profile", "id": "01B"}]})
        );
        assert_eq!(add_to_list_body(&[]), r#"{"data":[]}"#);
    }
}
