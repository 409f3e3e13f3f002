use super::*;

#[test]
fn an_empty_or_expired_or_garbled_lease_is_taken() {
    assert_eq!(decide(None, "a", 10), (true, Some("a 3010".into())));
    assert!(decide(Some("b 9"), "a", 10).0);
    assert!(decide(Some("nonsense"), "a", 10).0);
}

#[test]
fn a_live_lease_of_another_tab_is_respected_and_ours_is_renewed() {
    assert_eq!(decide(Some("b 5000"), "a", 10), (false, None));
    assert_eq!(
        decide(Some("a 5000"), "a", 10),
        (true, Some("a 3010".into()))
    );
}
