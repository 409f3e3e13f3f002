use super::*;

#[test]
fn each_text_has_its_own_slot_and_others_none() {
    for (i, t) in FIXED_TEXTS.iter().enumerate() {
        assert_eq!(fixed_slot(t), Some(i), "{t}");
    }
    let mut seen = std::collections::BTreeSet::new();
    assert!(FIXED_TEXTS.iter().all(|t| seen.insert(*t)), "no text twice");
    for other in ["", "Content-Type", "x-other", "origin "] {
        assert_eq!(fixed_slot(other), None, "{other}");
    }
    assert_eq!(FIXED_SLOTS, 29);
}
