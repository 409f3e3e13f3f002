use super::*;

fn d(s: &str) -> Decimal {
    Decimal::parse(s).unwrap()
}

#[test]
fn multiplies_prices_exactly() {
    assert_eq!(d("19.99").times(d("3")).unwrap().to_text(), "59.97");
    assert_eq!(d("0.1").times(d("3")).unwrap().to_text(), "0.3");
    assert_eq!(d("2.50").times(d("2")).unwrap().to_text(), "5");
    assert_eq!(d("-1.5").times(d("2")).unwrap().to_text(), "-3");
    assert_eq!(d("0.05").times(d("0.5")).unwrap().to_text(), "0.025");
}

#[test]
fn understands_exponents() {
    assert_eq!(d("1.5e2").to_text(), "150");
    assert_eq!(d("15E-3").to_text(), "0.015");
    assert_eq!(d("0").to_text(), "0");
}

#[test]
fn refuses_what_it_cannot_hold_exactly() {
    assert_eq!(Decimal::parse("1e30"), None);
    assert_eq!(Decimal::parse("1e-20"), None);
    assert_eq!(Decimal::parse("x"), None);
    assert_eq!(d("9999999999").times(d("9999999999")), None);
}

#[test]
fn extreme_exponents_are_refused_at_once() {
    // These used to loop once per unit of exponent (seconds natively) or overflow.
    for text in [
        "0e-2147483647",
        "0e2147483647",
        "1e-2147483648",
        "1e2147483647",
        "0.5e-2147483648",
        "1e99999999999",
    ] {
        let t0 = std::time::Instant::now();
        let _ = Decimal::parse(text);
        assert!(
            t0.elapsed().as_millis() < 50,
            "{text} took {:?}",
            t0.elapsed()
        );
    }
    assert_eq!(d("0e2147483647").to_text(), "0");
    assert!(d("0e-2147483647").is_zero());
    assert_eq!(Decimal::parse("1e-2147483648"), None);
    assert_eq!(d("1e18").to_text(), "1000000000000000000");
    assert_eq!(Decimal::parse("1e19"), None);
}

#[test]
fn the_largest_mantissa_fits_and_one_more_does_not() {
    assert_eq!(d("9223372036854775807").to_text(), "9223372036854775807");
    assert_eq!(
        d("-922337203685477580.7").to_text(),
        "-922337203685477580.7"
    );
    assert_eq!(Decimal::parse("9223372036854775808"), None);
    assert_eq!(Decimal::parse("92233720368547758.10"), None);
}

#[test]
fn mul_exact_is_checked_mul() {
    let edges = [
        0,
        1,
        -1,
        2,
        -2,
        3,
        10,
        -10,
        0xffff_ffff,
        0x1_0000_0000,
        -0x1_0000_0000,
        0x1_0000_0001,
        0xb504_f333,
        0xb504_f334,
        3_037_000_499,
        3_037_000_500,
        -3_037_000_500,
        i64::MAX / 2,
        i64::MAX / 2 + 1,
        i64::MIN / 2,
        i64::MIN / 2 - 1,
        i64::MAX / 3,
        i64::MAX,
        i64::MIN,
        i64::MIN + 1,
        4_294_967_296 * 2,
        1 << 62,
        -(1 << 62),
        1 << 31,
        -(1 << 31),
        1 << 33,
        -(1 << 30),
    ];
    for &a in &edges {
        for &b in &edges {
            assert_eq!(mul_exact(a, b), a.checked_mul(b), "{a} * {b}");
        }
    }
    // A pseudo-random walk over magnitudes of every size.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let a = (x as i64) >> (x % 64);
        let b = ((x.rotate_left(29)) as i64) >> ((x >> 6) % 64);
        assert_eq!(mul_exact(a, b), a.checked_mul(b), "{a} * {b}");
    }
}
