use super::*;
use crate::edge::bodies::{parse, Invalid};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Event {
    properties: Properties,
    meta: Option<AnyObject>,
}

fn event(text: &str) -> Result<Event, Invalid> {
    parse::<Event>(text)
}

#[test]
fn properties_are_checked_with_pointers_and_not_kept() {
    assert!(event(r#"{"properties":{"a":[1,{"b":"c"}],"n":null}}"#).is_ok());
    let long = "x".repeat(100 * 1024 + 1);
    let e = event(&format!(
        r#"{{"properties":{{"a":[1,{{"b/c":"{long}"}}]}}}}"#
    ))
    .unwrap_err();
    assert_eq!(
        e,
        Invalid::new("/properties/a/1/b~1c", "is a string longer than 100 KB")
    );
    let exactly = "x".repeat(100 * 1024);
    assert!(event(&format!(r#"{{"properties":{{"a":"{exactly}"}}}}"#)).is_ok());
    // The limit is on the string, not on its escaped text.
    let escaped = "\\u0078".repeat(100 * 1024);
    assert!(event(&format!(r#"{{"properties":{{"a":"{escaped}"}}}}"#)).is_ok());
    let keys: Vec<String> = (0..401).map(|i| format!("\"k{i}\":{i}")).collect();
    let e = event(&format!(r#"{{"properties":{{{}}}}}"#, keys.join(","))).unwrap_err();
    assert_eq!(e, Invalid::new("/properties", "has more than 400 keys"));
    let e = event(r#"{"properties":[]}"#).unwrap_err();
    assert_eq!(e, Invalid::new("/properties", "must be an object"));
}

#[test]
fn any_object_must_be_an_object_and_keeps_nothing() {
    assert!(event(r#"{"properties":{},"meta":{"a":[1,2,{"b":[]}]}}"#).is_ok());
    assert!(event(r#"{"properties":{},"meta":null}"#).is_ok());
    let e = event(r#"{"properties":{},"meta":"x"}"#).unwrap_err();
    assert_eq!(e, Invalid::new("/meta", "must be an object"));
}

#[test]
fn a_capped_array_keeps_n_and_counts_the_rest() {
    #[derive(Debug, Deserialize)]
    struct List {
        data: Capped<u32, 3>,
    }
    let l: List = parse(r#"{"data":[1,2,3,4,"five",{"six":[]}]}"#).unwrap();
    assert_eq!(l.data.kept(), [1, 2, 3]);
    assert_eq!(l.data.total(), 6);
    let l: List = parse(r#"{"data":[1]}"#).unwrap();
    assert_eq!((l.data.kept(), l.data.total()), (&[1][..], 1));
    let e = parse::<List>(r#"{"data":[1,"x"]}"#).unwrap_err();
    assert_eq!(
        e,
        Invalid::new("/data/1", "must be a whole number, 0 or more")
    );
    let e = parse::<List>(r#"{"data":{}}"#).unwrap_err();
    assert_eq!(e, Invalid::new("/data", "must be an array"));
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Kept {
    name: String,
    nick: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Dropped {
    name: Checked<String>,
    nick: Option<Checked<String>>,
}

#[test]
fn checked_members_are_refused_as_their_type_is_and_hold_nothing() {
    for text in [
        r#"{"name":5}"#,
        r#"{"name":"a","nick":[]}"#,
        r#"{"nick":"b"}"#,
        r#"{"name":"a","nick":"\ud800"}"#,
    ] {
        assert_eq!(
            parse::<Dropped>(text).unwrap_err(),
            parse::<Kept>(text).unwrap_err(),
            "{text}"
        );
    }
    assert!(parse::<Dropped>(r#"{"name":"a","nick":null}"#).is_ok());
    assert!(parse::<Dropped>(r#"{"name":"a"}"#).is_ok());
    assert_eq!(std::mem::size_of::<Option<Checked<String>>>(), 1);
}
