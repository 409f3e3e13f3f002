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
fn a_person_named_twice_is_imported_and_added_once() {
    let m = members(r#"{"profiles":[{"email":"a@b.co"},{"email":"a@b.co"}]}"#).unwrap();
    assert_eq!(m.ids, vec![None]);
    assert_eq!(m.imports.len(), 1);
    let m = members(r#"{"profiles":[{"id":"01X"},{"id":"01X"},{"id":"01Y"}]}"#).unwrap();
    assert_eq!(
        m.ids,
        vec![Some("01X".to_string()), Some("01Y".to_string())]
    );
    assert!(m.imports.is_empty());
}

#[test]
fn entries_that_share_an_identifier_are_one_person_with_all_their_identifiers() {
    let m = members(
        r#"{"profiles":[{"email":"a@b.co"},{"phone_number":"+15005550006"},{"external_id":"c-1","email":"a@b.co"},{"id":"01X"},{"id":"01X","email":"z@b.co"},{"email":"b@c.co","phone_number":"+15005550006"},{"external_id":"c-1"},{"email":"z@b.co"}]}"#,
    )
    .unwrap();
    // a@b.co and c-1; +15005550006 and b@c.co; 01X (its z@b.co never sent: an entry
    // with an id is used as it is); z@b.co alone, imported (never joined to a person
    // with an id, whose identifiers are not sent).
    assert_eq!(m.ids, vec![None, None, Some("01X".to_string()), None]);
    let imports: Vec<(usize, Value)> = m
        .imports
        .iter()
        .map(|(i, b)| (*i, serde_json::from_str(b).unwrap()))
        .collect();
    assert_eq!(
        imports,
        vec![
            (
                0,
                json!({"data": {"type": "profile", "attributes": {"email": "a@b.co", "external_id": "c-1"}}})
            ),
            (
                1,
                json!({"data": {"type": "profile", "attributes": {"phone_number": "+15005550006", "email": "b@c.co"}}})
            ),
            (
                3,
                json!({"data": {"type": "profile", "attributes": {"email": "z@b.co"}}})
            ),
        ]
    );
    // Named by an id and by identifiers without one, in either order: two, so that the
    // identifiers reach Klaviyo (a phone number beside the email was dropped before);
    // the add leaves out the id if the import finds the same profile.
    for body in [
        r#"{"profiles":[{"email":"a@b.co","phone_number":"+15005550006"},{"id":"01X","email":"a@b.co"}]}"#,
        r#"{"profiles":[{"id":"01X","email":"a@b.co"},{"email":"a@b.co","phone_number":"+15005550006"}]}"#,
    ] {
        let m = members(body).unwrap();
        assert_eq!(
            m.ids.iter().flatten().collect::<Vec<_>>(),
            ["01X"],
            "{body}"
        );
        assert_eq!(m.imports.len(), 1, "{body}");
        assert!(m.imports[0].1.contains("+15005550006"), "{body}");
    }
}

#[test]
fn entries_that_disagree_on_an_identifier_stay_apart() {
    // One email, two phone numbers (or two ids): no one profile holds both, so each
    // entry is imported as before, and the add leaves out an id that comes back twice.
    for body in [
        r#"{"profiles":[{"email":"a@b.co","phone_number":"+15005550006"},{"email":"a@b.co","phone_number":"+15005550007"}]}"#,
        r#"{"profiles":[{"id":"01X","email":"a@b.co"},{"id":"01Y","email":"a@b.co"}]}"#,
    ] {
        assert_eq!(members(body).unwrap().ids.len(), 2, "{body}");
    }
    // An entry that names two people already told apart is a third, as before.
    let m = members(
        r#"{"profiles":[{"email":"a@b.co"},{"phone_number":"+15005550006"},{"email":"a@b.co","phone_number":"+15005550006"}]}"#,
    )
    .unwrap();
    assert_eq!(m.imports.len(), 3);
}

#[test]
fn the_add_to_list_body_names_each_profile_once() {
    assert_eq!(
        add_to_list_body(&["01A".to_string(), "01B".to_string(), "01A".to_string()]),
        r#"{"data":[{"id":"01A","type":"profile"},{"id":"01B","type":"profile"}]}"#
    );
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

/// `n` entries, each a person of its own.
fn entries(n: usize) -> String {
    let all: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"email":"a{i}@b.co"}}"#))
        .collect();
    format!(r#"{{"profiles":[{}]}}"#, all.join(","))
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
        (r#"{"profiles":[{"external_id":" "}]}"#, "/profiles/0"),
        (r#"{"profiles":[{"id":"01G/../x"}]}"#, "/profiles/0/id"),
        (r#"{"profiles":[{"id":""}]}"#, "/profiles/0"),
        (
            r#"{"profiles":[{"id":"a b","email":"a@b.co"}]}"#,
            "/profiles/0/id",
        ),
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
fn a_blank_identifier_is_not_given_and_an_entry_still_needs_one() {
    // A shop's export has `"email": ""` for a customer known by phone alone: one such
    // entry refused the whole call of up to 1000.
    let m = members(
        r#"{"profiles":[{"email":"","phone_number":"+15005550006"},{"id":" ","email":"a@b.co","phone_number":"","external_id":"\t"},{"email":"","external_id":"c-1"}]}"#,
    )
    .unwrap();
    // Blank identifiers name nobody: the entries with `"email": ""` stay apart.
    assert_eq!(m.ids, vec![None, None, None]);
    let imported: Vec<Value> = m
        .imports
        .iter()
        .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap()["data"]["attributes"].clone())
        .collect();
    assert_eq!(
        imported,
        vec![
            json!({"phone_number": "+15005550006"}),
            json!({"email": "a@b.co"}),
            json!({"external_id": "c-1"}),
        ]
    );
    for blank in [
        r#"{"id":"","email":"","phone_number":" ","external_id":""}"#,
        r#"{"email":"","phone_number":null}"#,
    ] {
        let body = format!(r#"{{"profiles":[{{"email":"a@b.co"}},{blank}]}}"#);
        assert_eq!(
            members(&body).unwrap_err(),
            Invalid::new(
                "/profiles/1",
                "needs at least one of: id, email, phone_number, external_id"
            ),
            "{body}"
        );
    }
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
