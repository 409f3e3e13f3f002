use super::*;

const NOW: i64 = 1_795_669_339;
const SECRET: &str = "s3cret";
const WH_SECRET: &str = "whsecret";
const BODY: &[u8] = br#"{"data":{}}"#;

fn hex_tag(key: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(hmac_sha256(key, parts))
}

/// A body as a `POST /api/events` signs it.
fn to_events(body: &[u8]) -> Signed<'_> {
    Signed {
        method: "POST",
        path: "/api/events",
        body,
    }
}

/// What `POST /api/events` at NOW signs before the body.
const SIGNED_HEAD: &[u8] = b"1795669339\nPOST\n/api/events\n";

/// A replay key from a name.
fn k(name: &str) -> [u8; 32] {
    Sha256::digest(name.as_bytes()).into()
}

/// The webhook signature Klaviyo would send for `body` and `ts`.
fn klaviyo_sign(body: &[u8], ts: &str) -> String {
    hex_tag(WH_SECRET.as_bytes(), &[body, ts.as_bytes()])
}

#[test]
fn hmac_sha256_matches_rfc_4231_test_case_1() {
    assert_eq!(
        hex_tag(&[0x0b; 20], &[b"Hi There"]),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
}

#[test]
fn hmac_sha256_matches_rfc_4231_test_case_2_split_across_parts() {
    assert_eq!(
        hex_tag(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn hmac_sha256_matches_rfc_4231_test_case_6_with_a_key_longer_than_the_block() {
    assert_eq!(
        hex_tag(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
        ),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn a_signed_backend_request_verifies_and_returns_its_lower_case_signature() {
    let h = sign_backend(to_events(BODY), SECRET, NOW);
    let sig = hex_tag(SECRET.as_bytes(), &[SIGNED_HEAD, BODY]);
    assert_eq!(h, format!("t=1795669339,v2={sig}"));
    assert_eq!(
        verify_backend(Some(&h), to_events(BODY), SECRET, NOW + 10).map(hex::encode),
        Ok(sig)
    );
}

#[test]
fn a_backend_signature_with_the_wrong_secret_is_refused() {
    let h = sign_backend(to_events(BODY), "other", NOW);
    assert_eq!(
        verify_backend(Some(&h), to_events(BODY), SECRET, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_tampered_backend_body_is_refused() {
    let h = sign_backend(to_events(BODY), SECRET, NOW);
    assert_eq!(
        verify_backend(Some(&h), to_events(br#"{"data":1}"#), SECRET, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn moving_the_signed_timestamp_breaks_the_signature() {
    let h = sign_backend(to_events(BODY), SECRET, NOW);
    let moved = h.replace("t=1795669339", "t=1795669400");
    assert_eq!(
        verify_backend(Some(&moved), to_events(BODY), SECRET, NOW + 60),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_missing_or_blank_backend_header_is_missing() {
    assert_eq!(
        verify_backend(None, to_events(BODY), SECRET, NOW),
        Err(AuthError::Missing)
    );
    assert_eq!(
        verify_backend(Some("  "), to_events(BODY), SECRET, NOW),
        Err(AuthError::Missing)
    );
}

#[test]
fn malformed_backend_headers_are_malformed() {
    let sig = hex_tag(SECRET.as_bytes(), &[SIGNED_HEAD, BODY]);
    let cases = [
        format!("v2={sig}"),
        "t=1795669339".to_owned(),
        format!("t=1795669339,t=1795669339,v2={sig}"),
        format!("t=1795669339,v2={sig},v2={sig}"),
        format!("t=soon,v2={sig}"),
        format!("t=+1795669339,v2={sig}"),
        format!("t=,v2={sig}"),
        format!("t=1795669339,v2={sig}0"),
        "t=1795669339,v2=zz".to_owned(),
        "garbage".to_owned(),
    ];
    for h in cases {
        assert_eq!(
            verify_backend(Some(&h), to_events(BODY), SECRET, NOW),
            Err(AuthError::Malformed),
            "{h}"
        );
    }
}

#[test]
fn a_backend_header_with_spaces_and_unknown_parts_still_verifies() {
    let sig = hex_tag(SECRET.as_bytes(), &[SIGNED_HEAD, BODY]);
    let h = format!(" v0=dead , t = 1795669339 ,  v2= {sig} , extra,");
    assert_eq!(
        verify_backend(Some(&h), to_events(BODY), SECRET, NOW).map(hex::encode),
        Ok(sig)
    );
}

#[test]
fn upper_case_backend_hex_is_accepted_and_returned_lower_case() {
    let h = sign_backend(to_events(BODY), SECRET, NOW);
    let (t, sig) = h.split_once(",v2=").unwrap_or_default();
    let upper = format!("{t},v2={}", sig.to_ascii_uppercase());
    assert_eq!(
        verify_backend(Some(&upper), to_events(BODY), SECRET, NOW).map(hex::encode),
        Ok(sig.to_owned())
    );
}

#[test]
fn a_signature_of_the_wrong_length_does_not_match() {
    assert_eq!(
        verify_backend(Some("t=1795669339,v2=00"), to_events(BODY), SECRET, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_body_with_a_bom_verifies_over_its_exact_bytes() {
    let body = b"\xEF\xBB\xBF{\"data\":{}}";
    let h = sign_backend(to_events(body), SECRET, NOW);
    assert!(verify_backend(Some(&h), to_events(body), SECRET, NOW).is_ok());
    assert_eq!(
        verify_backend(Some(&h), to_events(&body[3..]), SECRET, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_body_that_is_not_utf8_verifies_over_its_exact_bytes() {
    let body: &[u8] = &[0xff, 0xfe, 0x00, b'{', 0x80, b'}', 0xc3];
    assert!(std::str::from_utf8(std::hint::black_box(body)).is_err());
    let h = sign_backend(to_events(body), SECRET, NOW);
    assert!(verify_backend(Some(&h), to_events(body), SECRET, NOW).is_ok());
    assert_eq!(
        verify_backend(Some(&h), to_events(&body[..body.len() - 1]), SECRET, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_webhook_body_with_a_bom_verifies_over_its_exact_bytes() {
    let body = b"\xEF\xBB\xBF{\"data\":[]}";
    let sig = klaviyo_sign(body, "1795669339");
    let check = |b: &[u8]| {
        verify_webhook(Some(&sig), Some("1795669339"), b, WH_SECRET, NOW).map(hex::encode)
    };
    assert_eq!(check(body), Ok(sig.clone()));
    assert_eq!(check(&body[3..]), Err(AuthError::BadSignature));
}

#[test]
fn fresh_holds_exactly_within_the_window_and_never_overflows() {
    assert!(fresh(NOW, NOW));
    assert!(fresh(NOW + 300, NOW));
    assert!(fresh(NOW - 300, NOW));
    assert!(!fresh(NOW + 301, NOW));
    assert!(!fresh(NOW - 301, NOW));
    // `(now - ts).abs()` overflows for these; in release it wrapped to "fresh".
    assert!(!fresh(i64::MIN, NOW));
    assert!(!fresh(i64::MAX, NOW));
    assert!(!fresh(i64::MIN, i64::MAX));
    assert!(!fresh(i64::MAX, i64::MIN));
    assert!(fresh(i64::MIN, i64::MIN));
}

/// Timestamps at the window's edges and the ends of i64, with whether each is fresh at NOW.
const WINDOW_EDGES: [(i64, bool); 6] = [
    (NOW + 300, true),
    (NOW - 300, true),
    (NOW + 301, false),
    (NOW - 301, false),
    (i64::MIN, false),
    (i64::MAX, false),
];

#[test]
fn backend_timestamps_are_fresh_within_300_seconds_and_stale_beyond() {
    for (ts, want_ok) in WINDOW_EDGES {
        let h = sign_backend(to_events(BODY), SECRET, ts);
        let got = verify_backend(Some(&h), to_events(BODY), SECRET, NOW);
        if want_ok {
            assert!(got.is_ok(), "{ts}");
        } else {
            assert_eq!(got, Err(AuthError::Stale), "{ts}");
        }
    }
}

#[test]
fn webhook_timestamps_are_fresh_within_300_seconds_and_stale_beyond() {
    for (ts, want_ok) in WINDOW_EDGES {
        let t = ts.to_string();
        let sig = klaviyo_sign(BODY, &t);
        let got = verify_webhook(Some(&sig), Some(&t), BODY, WH_SECRET, NOW).map(hex::encode);
        if want_ok {
            assert_eq!(got, Ok(sig), "{ts}");
        } else {
            assert_eq!(got, Err(AuthError::Stale), "{ts}");
        }
    }
}

#[test]
fn a_valid_webhook_verifies_and_returns_its_lower_case_signature() {
    let body = br#"{"data":[],"meta":{"klaviyo_webhook_id":"wh_1"}}"#;
    let sig = klaviyo_sign(body, "1795669339");
    let upper = sig.to_ascii_uppercase();
    assert_eq!(
        verify_webhook(Some(&upper), Some("1795669339"), body, WH_SECRET, NOW).map(hex::encode),
        Ok(sig)
    );
}

#[test]
fn a_webhook_with_a_bad_signature_is_refused() {
    let sig = klaviyo_sign(BODY, "1795669339");
    // The timestamp is signed: another one breaks the signature.
    assert_eq!(
        verify_webhook(Some(&sig), Some("1795669340"), BODY, WH_SECRET, NOW),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify_webhook(Some(&sig), Some("1795669339"), b"{}", WH_SECRET, NOW),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify_webhook(Some(&sig), Some("1795669339"), BODY, "other", NOW),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify_webhook(Some("00"), Some("1795669339"), BODY, WH_SECRET, NOW),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify_webhook(Some("not hex"), Some("1795669339"), BODY, WH_SECRET, NOW),
        Err(AuthError::Malformed)
    );
}

#[test]
fn the_webhook_signature_is_checked_before_the_timestamp_is_read() {
    // A stale or unreadable timestamp on an unsigned body is a bad signature.
    assert_eq!(
        verify_webhook(Some(&"0".repeat(64)), Some("1"), BODY, WH_SECRET, NOW),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify_webhook(Some(&"0".repeat(64)), Some("later"), BODY, WH_SECRET, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_stale_webhook_is_refused() {
    let sig = klaviyo_sign(BODY, "1795669339");
    assert_eq!(
        verify_webhook(Some(&sig), Some("1795669339"), BODY, WH_SECRET, NOW + 301),
        Err(AuthError::Stale)
    );
}

#[test]
fn a_signed_but_unreadable_webhook_timestamp_is_malformed() {
    let sig = klaviyo_sign(BODY, "later");
    assert_eq!(
        verify_webhook(Some(&sig), Some("later"), BODY, WH_SECRET, NOW),
        Err(AuthError::Malformed)
    );
}

#[test]
fn a_webhook_timestamp_in_milliseconds_is_read_as_seconds() {
    let ms = "1795669339123";
    let sig = klaviyo_sign(BODY, ms);
    assert_eq!(
        verify_webhook(Some(&sig), Some(ms), BODY, WH_SECRET, NOW).map(hex::encode),
        Ok(sig.clone())
    );
    assert_eq!(
        verify_webhook(Some(&sig), Some(ms), BODY, WH_SECRET, NOW + 301),
        Err(AuthError::Stale)
    );
}

#[test]
fn an_iso_webhook_timestamp_is_signed_as_sent_and_read_as_a_time() {
    let iso = "2026-11-26T05:02:19Z";
    assert_eq!(time::secs_from_iso(iso), Some(NOW));
    let sig = klaviyo_sign(BODY, iso);
    assert_eq!(
        verify_webhook(Some(&sig), Some(iso), BODY, WH_SECRET, NOW).map(hex::encode),
        Ok(sig.clone())
    );
    assert_eq!(
        verify_webhook(Some(&sig), Some(iso), BODY, WH_SECRET, NOW - 301),
        Err(AuthError::Stale)
    );
}

#[test]
fn a_webhook_without_its_signature_or_timestamp_is_missing() {
    let sig = klaviyo_sign(BODY, "1795669339");
    for (s, t) in [
        (None, Some("1795669339")),
        (Some(sig.as_str()), None),
        (None, None),
        (Some(""), Some("1795669339")),
        (Some(sig.as_str()), Some(" ")),
    ] {
        assert_eq!(
            verify_webhook(s, t, BODY, WH_SECRET, NOW),
            Err(AuthError::Missing)
        );
    }
}

#[test]
fn error_details_never_echo_the_request() {
    let secret = "topsecretvalue";
    let h = "t=1795669339,v2=deadbeefdeadbeef";
    let Err(e) = verify_backend(Some(h), to_events(b"private body"), secret, NOW) else {
        panic!("a forged signature verified");
    };
    let text = format!("{e:?} {}", e.detail());
    for leaked in [secret, "deadbeef", "1795669339", "private body"] {
        assert!(!text.contains(leaked), "{text}");
    }
    for e in [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::Stale,
        AuthError::BadSignature,
        AuthError::Replayed,
    ] {
        assert!(!e.detail().is_empty());
    }
}

#[test]
fn a_signature_made_for_one_route_is_refused_on_every_other() {
    let order = Signed {
        method: "POST",
        path: "/api/orders",
        body: BODY,
    };
    let h = sign_backend(order, SECRET, NOW);
    assert!(verify_backend(Some(&h), order, SECRET, NOW).is_ok());
    for path in [
        "/api/orders/refunded",
        "/api/events",
        "/klaviyo/api/orders",
        "/api/orders/",
    ] {
        let moved = Signed { path, ..order };
        assert_eq!(
            verify_backend(Some(&h), moved, SECRET, NOW),
            Err(AuthError::BadSignature),
            "{path}"
        );
    }
    let other_method = Signed {
        method: "PUT",
        ..order
    };
    assert_eq!(
        verify_backend(Some(&h), other_method, SECRET, NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_version_1_signature_is_refused_as_outdated() {
    let v1 = hex_tag(SECRET.as_bytes(), &[b"1795669339.", BODY]);
    let h = format!("t=1795669339,v1={v1}");
    let e = verify_backend(Some(&h), to_events(BODY), SECRET, NOW).unwrap_err();
    assert_eq!(e, AuthError::Outdated);
    assert!(e.detail().contains("v2"), "{}", e.detail());
}

#[test]
fn the_webhook_forward_is_signed_with_a_key_of_its_own_direction() {
    let fwd = sign_forward(BODY, SECRET, NOW);
    assert!(verify_forward(Some(&fwd), BODY, SECRET, NOW).is_ok());
    // A forward is no backend call, on any route.
    for path in [FORWARD_PATH, "/api/events", "/api/orders"] {
        let as_call = Signed {
            method: "POST",
            path,
            body: BODY,
        };
        assert_eq!(
            verify_backend(Some(&fwd), as_call, SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }
    // And a backend call to the same route is no forward.
    let call = sign_backend(
        Signed {
            method: "POST",
            path: FORWARD_PATH,
            body: BODY,
        },
        SECRET,
        NOW,
    );
    assert_eq!(
        verify_forward(Some(&call), BODY, SECRET, NOW),
        Err(AuthError::BadSignature)
    );
    // The derivation is the documented one.
    let key = hex_tag(SECRET.as_bytes(), &[b"klaviyo-wasm webhook forward"]);
    let tag = hex_tag(
        &hex::decode(key).unwrap_or_default(),
        &[b"1795669339\nPOST\n/webhooks/klaviyo\n", BODY],
    );
    assert_eq!(fwd, format!("t=1795669339,v2={tag}"));
}

#[test]
fn the_guard_is_bounded_in_bytes() {
    let mut guard = ReplayGuard::new(1_000);
    for i in 0..5_000 {
        guard.first_use(&k(&i.to_string()), NOW);
        assert!(guard.heap_bytes() <= ReplayGuard::max_heap_bytes(1_000));
    }
}

#[test]
fn a_second_use_within_the_window_is_a_replay() {
    let mut guard = ReplayGuard::new(100);
    assert!(guard.is_empty());
    assert!(guard.first_use(&k("abc"), NOW));
    assert!(!guard.first_use(&k("abc"), NOW));
    assert!(!guard.first_use(&k("abc"), NOW + 299));
    assert!(guard.first_use(&k("def"), NOW + 1));
    assert_eq!(guard.len(), 2);
}

#[test]
fn a_claim_released_when_nothing_was_acted_on_is_accepted_again_once() {
    let mut guard = ReplayGuard::new(100);
    assert!(guard.first_use(&k("abc"), NOW));
    assert!(guard.first_use(&k("def"), NOW));
    // The queue took nothing: the claim made at NOW is released, and the same call,
    // sent again, is accepted (once).
    assert!(guard.release(&k("abc"), NOW));
    assert_eq!(guard.len(), 1);
    assert!(guard.first_use(&k("abc"), NOW + 1));
    assert!(
        !guard.first_use(&k("abc"), NOW + 2),
        "a replay of the retry"
    );
    // A release names the claim it made: one of another time (a late or second
    // release) leaves the newer claim standing, and an unknown key is no claim.
    assert!(!guard.release(&k("abc"), NOW));
    assert!(!guard.first_use(&k("abc"), NOW + 3));
    assert!(!guard.release(&k("xyz"), NOW));
    assert!(
        !guard.first_use(&k("def"), NOW + 3),
        "another claim untouched"
    );
    assert_eq!(guard.len(), 2);
}

#[test]
fn a_released_claim_leaves_no_entry_behind_to_count_or_expire() {
    let mut guard = ReplayGuard::new(2);
    for n in 0..10 {
        assert!(guard.first_use(&k("same"), NOW + n));
        assert!(guard.release(&k("same"), NOW + n));
    }
    // Two others fill the guard; nothing released takes their room.
    assert!(guard.first_use(&k("a"), NOW + 10));
    assert!(guard.first_use(&k("b"), NOW + 10));
    assert!(!guard.first_use(&k("a"), NOW + 11));
    assert!(!guard.first_use(&k("b"), NOW + 11));
    assert!(guard.heap_bytes() <= ReplayGuard::max_heap_bytes(2) + 64 * 10);
}

#[test]
fn a_signature_is_accepted_again_only_once_it_was_kept_twice_the_window() {
    let mut guard = ReplayGuard::new(100);
    assert!(guard.first_use(&k("abc"), NOW));
    assert!(guard.first_use(&k("def"), NOW + 100));
    // Still kept past one window: a timestamp signed ahead is fresh that long.
    assert!(!guard.first_use(&k("abc"), NOW + 300));
    assert!(!guard.first_use(&k("abc"), NOW + 600));
    assert!(guard.first_use(&k("abc"), NOW + 601));
    // "def" is still remembered; the old "abc" entry was dropped, the new kept.
    assert_eq!(guard.len(), 2);
    assert!(!guard.first_use(&k("abc"), NOW + 602));
    assert!(!guard.first_use(&k("def"), NOW + 700));
    assert!(guard.first_use(&k("def"), NOW + 701));
}

/// A backend call signed `ahead` seconds into the future, accepted at `NOW`, then sent
/// again at each of `later` (seconds after `NOW`): whether verify + guard took it.
fn replayed_at(ahead: i64, later: &[i64]) -> Vec<Result<bool, AuthError>> {
    let body = br#"{"data":{}}"#;
    let header = sign_backend(to_events(body), SECRET, NOW + ahead);
    let mut guard = ReplayGuard::new(100);
    let mut take = |now: i64| {
        verify_backend(Some(&header), to_events(body), SECRET, now)
            .map(|tag| guard.first_use(&tag, now))
    };
    assert_eq!(take(NOW), Ok(true), "accepted the first time");
    later.iter().map(|d| take(NOW + d)).collect()
}

#[test]
fn a_future_dated_signature_replayed_after_one_window_is_refused() {
    // Signed 250 s ahead: fresh from acceptance until NOW + 550. Every replay in that
    // time must be refused by the guard, at +301 s too (past one window since it was
    // accepted), and after that the timestamp itself is stale.
    let got = replayed_at(250, &[1, 299, 300, 301, 450, 540, 550, 551]);
    assert_eq!(
        got,
        vec![
            Ok(false),
            Ok(false),
            Ok(false),
            Ok(false),
            Ok(false),
            Ok(false),
            Ok(false),
            Err(AuthError::Stale),
        ]
    );
}

#[test]
fn a_signature_dated_a_full_window_ahead_is_refused_until_it_goes_stale() {
    // The worst case: t = NOW + 300 is fresh until NOW + 600, twice the window after
    // it was accepted. The guard keeps it exactly that long.
    let got = replayed_at(300, &[301, 599, 600, 601]);
    assert_eq!(
        got,
        vec![Ok(false), Ok(false), Ok(false), Err(AuthError::Stale)]
    );
}

#[test]
fn the_guard_keeps_every_signature_as_long_as_any_timestamp_can_stay_fresh() {
    // A timestamp accepted at NOW (|t - NOW| <= WINDOW_S) is fresh until t + WINDOW_S,
    // at most NOW + KEEP_S: the guard must still hold the tag at that last second.
    for ahead in [-300_i64, -1, 0, 1, 150, 299, 300] {
        let t = NOW + ahead;
        let last_fresh = t + WINDOW_S as i64;
        let mut guard = ReplayGuard::new(10);
        assert!(guard.first_use(&k("x"), NOW));
        assert!(
            !guard.first_use(&k("x"), last_fresh),
            "t = now{ahead:+}: replay at its last fresh second accepted"
        );
    }
}

#[test]
fn expired_signatures_are_dropped_from_memory() {
    let mut guard = ReplayGuard::new(100);
    for i in 0..50 {
        assert!(guard.first_use(&k(&format!("k{i}")), NOW));
    }
    assert_eq!(guard.len(), 50);
    assert!(guard.first_use(&k("mid"), NOW + 300));
    assert_eq!(guard.len(), 51, "kept past one window");
    assert!(guard.first_use(&k("late"), NOW + 601));
    assert_eq!(guard.len(), 2);
}

#[test]
fn the_guard_never_remembers_more_than_max_entries_and_forgets_the_oldest() {
    let mut guard = ReplayGuard::new(3);
    for (i, key) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        assert!(guard.first_use(&k(key), NOW + i as i64));
        assert!(guard.len() <= 3);
    }
    assert_eq!(guard.len(), 3);
    // The newest are remembered; the oldest were forgotten and can be replayed.
    assert!(!guard.first_use(&k("e"), NOW + 5));
    assert!(!guard.first_use(&k("c"), NOW + 5));
    assert!(guard.first_use(&k("a"), NOW + 5));
    assert_eq!(guard.len(), 3);
}

#[test]
fn a_guard_of_size_zero_remembers_nothing() {
    let mut guard = ReplayGuard::new(0);
    assert!(guard.first_use(&k("a"), NOW));
    assert!(guard.first_use(&k("a"), NOW));
    assert!(guard.is_empty());
}

#[test]
fn the_guard_stays_bounded_when_the_clock_goes_backwards() {
    let mut guard = ReplayGuard::new(4);
    assert!(guard.first_use(&k("a"), NOW));
    // Seen "in the future": still a replay.
    assert!(!guard.first_use(&k("a"), NOW - 1000));
    assert!(guard.first_use(&k("b"), NOW - 1000));
    // "b" (accepted at NOW - 1000) is old by now but sits behind "a" in the queue.
    assert!(guard.first_use(&k("b"), NOW + 100));
    for i in 0..20 {
        guard.first_use(&k(&format!("k{i}")), NOW + 100);
        assert!(guard.len() <= 4);
        assert!(guard.order.len() <= 4);
    }
}

#[test]
fn the_guard_does_constant_work_per_call_under_a_long_stream() {
    // 200,000 distinct keys, one per second, through the guard: each call
    // pops at most what it pushed, so this runs in linear time and memory stays at
    // KEEP_S seconds' worth of entries.
    let mut guard = ReplayGuard::new(1_000);
    for i in 0..200_000_i64 {
        assert!(guard.first_use(&k(&i.to_string()), NOW + i));
        assert!(guard.order.len() <= 601);
    }
    assert_eq!(guard.len(), 601);
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Header-like strings: the parts we read, in any number and order, with junk.
    fn header_like() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "( ?(t|v1|v0|x) ?= ?[-+0-9a-fA-Fz ]{0,70} ?,?){0,4}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fresh_matches_exact_arithmetic_for_any_pair(ts in any::<i64>(), now in any::<i64>()) {
            prop_assert_eq!(fresh(ts, now), (ts as i128 - now as i128).abs() <= 300);
        }

        #[test]
        fn fresh_matches_exact_arithmetic_near_the_window_edge(
            now in any::<i64>(),
            delta in -600_i64..=600,
        ) {
            let ts = now.wrapping_add(delta);
            prop_assert_eq!(fresh(ts, now), (ts as i128 - now as i128).abs() <= 300);
        }

        #[test]
        fn verify_backend_never_panics_on_any_header_or_body(
            header in header_like(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
            now in any::<i64>(),
        ) {
            let _ = verify_backend(Some(&header), to_events(&body), SECRET, now);
            let _ = verify_webhook(Some(&header), Some(&header), &body, WH_SECRET, now);
        }

        #[test]
        fn any_body_signed_now_verifies_and_any_changed_byte_breaks_it(
            body in proptest::collection::vec(any::<u8>(), 1..256),
            secret in ".{0,100}",
            now in any::<i64>(),
            at in any::<prop::sample::Index>(),
        ) {
            let h = sign_backend(to_events(&body), &secret, now);
            prop_assert!(verify_backend(Some(&h), to_events(&body), &secret, now).is_ok());
            let mut changed = body.clone();
            let i = at.index(changed.len());
            changed[i] ^= 1;
            prop_assert_eq!(
                verify_backend(Some(&h), to_events(&changed), &secret, now),
                Err(AuthError::BadSignature)
            );
        }
    }
}
