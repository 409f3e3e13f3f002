use super::*;

#[test]
fn formats_to_the_second_in_utc() {
    assert_eq!(iso_from_secs(0), "1970-01-01T00:00:00Z");
    assert_eq!(iso_from_secs(MIN_TIME_S), "1990-01-01T00:00:00Z");
    assert_eq!(iso_from_secs(1_795_669_339), "2026-11-26T05:02:19Z");
    assert_eq!(iso_from_secs(951_782_400), "2000-02-29T00:00:00Z");
}

#[test]
fn parses_what_it_formats_and_common_offsets() {
    for s in [0, MIN_TIME_S, 1_795_669_339, 951_782_400, 4_102_444_799] {
        assert_eq!(secs_from_iso(&iso_from_secs(s)), Some(s));
    }
    assert_eq!(
        secs_from_iso("2026-11-26T06:02:19.987+01:00"),
        Some(1_795_669_339)
    );
    assert_eq!(
        secs_from_iso("2026-11-26T00:02:19-0500"),
        Some(1_795_669_339)
    );
    assert_eq!(secs_from_iso("2026-11-26"), Some(1_795_651_200));
    assert_eq!(secs_from_iso("2026-11-26T05:02Z"), Some(1_795_669_320));
}

#[test]
fn refuses_invalid_dates_and_missing_offsets() {
    for bad in [
        "2026-02-30",
        "2026-13-01",
        "2026-11-26T05:02:19",
        "2026-11-26T25:00:00Z",
        "26-11-26",
        "2026-11-26T05:02:19Zx",
        "2026-11-26T05:02:19.Z",
        "",
        "now",
        "2025-02-29",
    ] {
        assert_eq!(secs_from_iso(bad), None, "{bad}");
    }
    assert!(secs_from_iso("2024-02-29").is_some());
}

#[test]
fn month_lengths() {
    let common = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    for (i, &n) in common.iter().enumerate() {
        let m = i as u32 + 1;
        assert_eq!(days_in_month(2023, m), n, "month {m}");
        assert_eq!(days_in_month(2024, m), n + u32::from(m == 2), "month {m}");
    }
    assert_eq!(days_in_month(1900, 2), 28);
    assert_eq!(days_in_month(2000, 2), 29);
}

#[test]
fn day_counts_round_trip_over_years_0_to_9999() {
    let first = -719_528; // 0000-01-01
    let last = 2_932_896; // 9999-12-31
    assert_eq!(civil_from_days(first), (0, 1, 1));
    assert_eq!(civil_from_days(last), (9999, 12, 31));
    for z in first..=last {
        let (y, m, d) = civil_from_days(z);
        assert_eq!(days_from_civil(y as u32, m, d), z, "{y}-{m}-{d}");
    }
}
