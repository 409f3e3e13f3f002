use super::*;

#[test]
fn cuts_and_splits_at_ascii_bytes_as_str_does_at_chars() {
    for s in [
        "",
        ",",
        ",,",
        "a",
        "a,",
        ",a",
        "a,b",
        "a,,b",
        "é,😀,ü",
        "😀",
        "x,é\u{1}y,",
    ] {
        for (b, c) in [(b',', ','), (b'\x01', '\u{1}'), (b'z', 'z')] {
            assert_eq!(cut(s, b), s.split_once(c), "{s:?} {c:?}");
            assert_eq!(
                parts(s, b).collect::<Vec<_>>(),
                s.split(c).collect::<Vec<_>>()
            );
            assert_eq!(has(s, b), s.contains(c));
        }
    }
}

#[test]
fn parses_integers_and_refuses_the_rest() {
    assert_eq!(parse_u64("0"), Some(0));
    assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_u64("18446744073709551616"), None);
    for bad in ["", "-1", "1.5", " 1", "1e3", "+"] {
        assert_eq!(parse_u64(bad), None, "{bad}");
    }
    assert_eq!(parse_i64("-42"), Some(-42));
    assert_eq!(parse_i64("+7"), Some(7));
    assert_eq!(parse_i64("-"), None);
}

#[test]
fn finds_substrings() {
    assert_eq!(find("a:::b", ":::"), Some(1));
    assert_eq!(find("abc", "d"), None);
    assert_eq!(find("ab", "abc"), None);
    assert_eq!(find("x", ""), Some(0));
}

#[test]
fn writes_integers() {
    for n in [
        0,
        7,
        10,
        999_999_999,
        1_000_000_000,
        1_000_000_001,
        1_795_669_339,
        1_795_669_339_123,
        10_000_000_000_000_000_000,
        u64::MAX,
    ] {
        let mut s = String::new();
        push_u64(&mut s, n);
        assert_eq!(s, n.to_string());
    }
}

#[test]
fn reads_query_parameters_percent_decoded() {
    assert_eq!(
        query_param("?utm=x&_kx=ab%3D%3D.cd+e", "_kx").as_deref(),
        Some("ab==.cd e")
    );
    assert_eq!(query_param("?utm=x", "_kx"), None);
    assert_eq!(query_param("", "_kx"), None);
    assert_eq!(query_param("?_kx=%zz", "_kx"), None);
    assert_eq!(query_param("?_kx=%C3%A9", "_kx").as_deref(), Some("é"));
}

#[test]
fn a_percent_escape_needs_two_hex_digits() {
    // `u8::from_str_radix("+1", 16)` is Ok(1): "%+1" must not decode to 0x01.
    assert_eq!(percent_decode("%+1", true), None);
    assert_eq!(percent_decode("%-1", true), None);
    assert_eq!(percent_decode("%4", true), None);
    assert_eq!(percent_decode("%", true), None);
    assert_eq!(percent_decode("%41%4a", true).as_deref(), Some("AJ"));
    assert_eq!(percent_decode("%ff", true), None, "not UTF-8");
    assert_eq!(percent_decode("a+b%2B", true).as_deref(), Some("a b+"));
    assert_eq!(percent_decode("a+b%2B", false).as_deref(), Some("a+b+"));
}

#[test]
fn blanks_are_found_without_unicode_tables() {
    for blank in [
        "",
        " ",
        "\t\n\r",
        "\u{a0}\u{3000}\u{2003}\u{2028}\u{205f}\u{1680}\u{85}",
    ] {
        assert!(is_blank(blank), "{blank:?}");
        assert!(blank.chars().all(char::is_whitespace));
    }
    for text in ["a", " a ", "\u{a0}x", "é", "\u{200b}"] {
        assert!(!is_blank(text), "{text:?}");
    }
    assert!(has_blank("a b") && has_blank("a\u{2009}b") && has_blank("a\u{1}b"));
    assert!(!has_blank("ann@example.com") && !has_blank("é😀"));
    assert!(has_control("a\u{7f}") && has_control("a\u{9f}") && has_control("\n"));
    assert!(!has_control("a b é 😀 \u{a0}"));
    assert_eq!(char_count("é😀ab"), 4);
    // Every char that std calls whitespace or control is caught.
    for c in (0..0x3001u32).filter_map(char::from_u32) {
        let s = c.to_string();
        assert_eq!(
            has_blank(&s),
            c.is_whitespace() || c.is_control(),
            "{:x}",
            c as u32
        );
        assert_eq!(has_control(&s), c.is_control(), "{:x}", c as u32);
    }
}

#[test]
fn utf8_agrees_with_std_at_every_boundary_of_the_encoding() {
    // Every lead byte, then each continuation byte at the edges of every range that
    // decides validity (overlongs, surrogates, past U+10FFFF), whole and cut short.
    let edges = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF];
    for lead in 0..=255u8 {
        for &a in &edges {
            for &b in &edges {
                for &c in &edges {
                    let bytes = [lead, a, b, c];
                    for end in 0..=bytes.len() {
                        let s = &bytes[..end];
                        assert_eq!(utf8(s), std::str::from_utf8(s).ok(), "{s:x?}");
                    }
                }
            }
        }
    }
    for s in [
        "",
        "plain",
        "é",
        "😀",
        "\u{FFFF}",
        "\u{10FFFF}",
        "a\u{0}b",
        "x😀é\u{7FF}",
    ] {
        assert_eq!(utf8(s.as_bytes()), Some(s));
        assert_eq!(utf8_string(s.as_bytes().to_vec()).as_deref(), Some(s));
    }
    assert_eq!(utf8_string(vec![b'a', 0xED, 0xA0, 0x80]), None); // a lone surrogate
}

// proptest runs natively (a dev-dependency of native targets only).
#[cfg(not(target_arch = "wasm32"))]
proptest::proptest! {
    #[test]
    fn utf8_agrees_with_std_on_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
        proptest::prop_assert_eq!(utf8(&bytes), std::str::from_utf8(&bytes).ok());
    }

    #[test]
    fn utf8_accepts_any_text(s in ".{0,40}") {
        proptest::prop_assert_eq!(utf8(s.as_bytes()), Some(s.as_str()));
    }
}
