use super::*;

fn ev() -> Event<'static> {
    Event {
        time_s: 1_795_669_339,
        unique_id: r#""u\"1""#,
        value: "9.5",
        currency: "USD",
        metric: r#""Viewed Product""#,
        properties: r#"{"a":"x\ty"}"#,
    }
}

#[test]
fn a_record_reads_back_line_by_line() {
    let fields = event_fields(&ev());
    let mut r = String::new();
    header(1234, &mut r);
    push_profile(r#"{"anonymous_id":"a"}"#, &mut r);
    push_event(0, &fields, &mut r);
    push_body(3, Endpoint::Profiles, r#"{"data":{}}"#, &mut r);
    push_event(7, &fields, &mut r);
    let (created, lines) = read(&r).unwrap();
    assert_eq!(created, 1234);
    assert_eq!(
        lines,
        vec![
            Line::Profile(r#"{"anonymous_id":"a"}"#),
            Line::Event {
                idx: 0,
                fields: &fields
            },
            Line::Body {
                idx: 3,
                endpoint: Endpoint::Profiles,
                body: r#"{"data":{}}"#
            },
            Line::Event {
                idx: 7,
                fields: &fields
            },
        ]
    );
    assert_eq!(read_event(&fields), Some(ev()));
}

#[test]
fn anything_else_is_not_a_record() {
    for bad in [
        "",
        "1\nE\n5\nu\n{}\n{}",
        "2",
        "2 x",
        "2 5\ne0\t1\t\"u\"\t\t\t\"m\"\t{}", // an event before any profile
        "2 5\np{}\ne0\t1\t\"u\"\t\t\t\"m\"",
        "2 5\np{}\nex\t1\t\"u\"\t\t\t\"m\"\t{}",
        "2 5\np{}\ne0\t1\tu\t\t\t\"m\"\t{}",
        "2 5\nb0\tX\t{}",
        "2 5\nb0\tP\tnull",
        "2 5\nz",
        "2 5\n",
    ] {
        assert!(read(bad).is_none(), "{bad:?}");
    }
    assert!(read("2 5").is_some_and(|(_, l)| l.is_empty()));
}

#[test]
fn marks_read_back() {
    let mut text = String::new();
    mark(99, &[0, 4, 12], &mut text);
    assert_eq!(text, "99 0,4,12");
    assert_eq!(read_mark(&text), Some((99, "0,4,12")));
    for idx in [0, 4, 12] {
        assert!(mark_lists("0,4,12", idx));
    }
    assert!(!mark_lists("0,4,12", 1));
    assert!(!mark_lists("0,4,12", 2));
    assert_eq!(read_mark("99 1,x"), None);
    assert_eq!(read_mark("99"), None);
    assert_eq!(read_mark("99 "), None);
    assert_eq!(read_mark("99 1,,2"), None);
    assert_eq!(read_mark("99 4294967296"), None);
}
