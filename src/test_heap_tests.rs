use super::*;

#[test]
fn the_peak_of_a_call_is_counted_and_what_it_freed_is_not_kept() {
    let (len, peak) = peak_during(|| {
        let big = vec![1u8; 1_000_000];
        let small: Vec<u64> = (0..10).collect();
        big.len() + small.len()
    });
    assert_eq!(len, 1_000_010);
    assert!((1_000_080..1_100_000).contains(&peak), "{peak}");
    let ((), nothing) = peak_during(|| ());
    assert_eq!(nothing, 0);
}
