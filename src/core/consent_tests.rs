use super::*;

#[test]
fn codes_round_trip() {
    for (n, c) in [Consent::Pending, Consent::Granted, Consent::Denied]
        .iter()
        .enumerate()
    {
        assert_eq!(Consent::from_code(n as u64), Some(*c));
        assert_eq!(*c as u64, n as u64);
    }
    assert_eq!(Consent::from_code(3), None);
}
