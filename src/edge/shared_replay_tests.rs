use super::*;

#[test]
fn tags_spread_over_256_objects_by_their_first_byte() {
    let mut tag = [7u8; 32];
    assert_eq!(shard(&tag), "replay-07");
    tag[0] = 0xff;
    assert_eq!(shard(&tag), "replay-ff");
    tag[1] = 0;
    assert_eq!(
        shard(&tag),
        "replay-ff",
        "only the first byte picks the object"
    );
}

#[test]
fn a_claim_is_the_tag_in_hex_and_nothing_else_is_read() {
    let tag = [0xab; 32];
    assert_eq!(read_claim(&claim(&tag)), Some(&*"ab".repeat(32)));
    for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
        assert_eq!(read_claim(bad), None, "{bad}");
    }
}

#[test]
fn a_tag_is_fresh_until_claimed_and_again_once_its_window_is_past() {
    let now = 1_800_000_000;
    assert!(first_use(None, now));
    let expires = (now + KEEP_S) as f64;
    assert!(!first_use(Some(expires), now));
    assert!(!first_use(Some(expires), now + KEEP_S - 1));
    assert!(first_use(Some(expires), now + KEEP_S));
    assert_eq!(
        KEEP_S, 601,
        "twice the signature window, and its last second"
    );
    // A signature dated a whole window ahead stays fresh until accept + 600 s: still held.
    let (accepted, t) = (now, now + WINDOW_S as i64);
    let last_fresh = t + WINDOW_S as i64;
    assert!(!first_use(Some((accepted + KEEP_S) as f64), last_fresh));
}

#[test]
fn a_release_names_the_claim_it_undoes_and_nothing_else() {
    let tag = [0xcd; 32];
    let expires = 1_800_000_601.0;
    let body = release(&tag, expires);
    assert_eq!(body, format!("{} 1800000601", "cd".repeat(32)));
    assert_eq!(
        read_release(&body),
        Some(("cd".repeat(32).as_str(), expires))
    );
    for bad in [
        "",
        &"cd".repeat(32),
        &format!("{} x", "cd".repeat(32)),
        "zz 1",
    ] {
        assert_eq!(read_release(bad), None, "{bad}");
    }
    // Only the entry the claim stored is dropped: a later claim (another expiry) stays,
    // and a tag with no entry has nothing to release.
    assert!(releases(Some(expires), expires));
    assert!(!releases(Some(expires + 5.0), expires));
    assert!(!releases(None, expires));
    // A fresh claim's answer says the expiry it stored, for its release.
    assert_eq!(read_claimed("1800000601"), Some(expires));
    assert_eq!(read_claimed(""), None);
}

#[test]
fn an_object_sweeps_at_most_once_a_minute() {
    let now = 1_700_000_000;
    // Claims keep coming: the next expiry is a second away, the sweep a minute away.
    assert_eq!(next_sweep_s((now + 1) as f64, now), (now + 60) as f64);
    // Nothing expires for longer: the alarm waits for it.
    let later = (now + KEEP_S) as f64;
    assert_eq!(next_sweep_s(later, now), later);
}
