//! Every JSON body the worker reads goes through [`parse`]: serde_json into a typed
//! struct, with two things serde alone does not give.
//!
//! - **Duplicate keys are refused** at any depth, inside free-form objects such as
//!   event `properties` too. serde_json keeps the last of duplicate keys in a map and
//!   ignores repeated unknown fields; Klaviyo reads the last one as well. A check that
//!   read the first (`"name":"Started Checkout","name":"Placed Order"`) would let a body
//!   through that Klaviyo understands differently, so no such body is read at all.
//! - **Errors name the field** by JSON pointer (RFC 6901), the way Klaviyo answers:
//!   `/data/attributes/metric/data/attributes/name`. Details say what is expected and
//!   never repeat a value (it may be an email address or a phone number).
//!
//! Limits are serde_json's: 128 or more nested arrays or objects are refused (its
//! recursion limit; the parser counts, so hostile input cannot exhaust the stack), as
//! are numbers beyond
//! `f64` (`1e400`) and lone UTF-16 surrogates in escapes (`"\ud800"`).

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use crate::core::validate::ValidationError;

/// A refused body: `pointer` is a JSON pointer into it (`""` for the whole body), and
/// `detail` says what is wrong without repeating the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub pointer: String,
    pub detail: String,
}

impl Invalid {
    /// An error at `pointer` (already escaped).
    pub fn new(pointer: &str, detail: &str) -> Invalid {
        Invalid {
            pointer: pointer.to_string(),
            detail: detail.to_string(),
        }
    }

    /// A core rule's failure about `base/field`: the detail is the field's name and
    /// the rule's reason (`email is not a valid email address`).
    pub fn from_rule(base: &str, e: ValidationError) -> Invalid {
        let mut detail = e.field.clone();
        detail.push(' ');
        detail.push_str(e.reason);
        Invalid {
            pointer: at(base, &e.field),
            detail,
        }
    }
}

/// Runs a core rule for the field `base/<field>`.
pub fn rule<T>(base: &str, r: crate::core::validate::Result<T>) -> Result<T, Invalid> {
    r.map_err(|e| Invalid::from_rule(base, e))
}

const NOT_JSON: &str = "the body is not valid JSON";

/// The detail of a member the body's shape does not have (its pointer names it). Each
/// caller says in its own words which members there are.
pub const UNKNOWN_MEMBER: &str = "is not a member here";

/// Parses a JSON body (already-valid UTF-8 text) into `T`.
///
/// Duplicate object keys are refused at any depth, with the pointer of the duplicate
/// (`/data/attributes/metric/data/attributes/name`, detail `is a duplicate key`). Type
/// and missing-field errors carry the pointer of the field (`missing field` points at
/// the field that is missing), object keys and array indices escaped per RFC 6901
/// (`~` as `~0`, `/` as `~1`). Malformed JSON gives pointer `""` and detail
/// `the body is not valid JSON`.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Invalid> {
    no_duplicates(text)?;
    parse_checked(text)
}

/// [`parse`] for text that [`check`] has passed already: the typed pass alone.
pub fn parse_checked<T: DeserializeOwned>(text: &str) -> Result<T, Invalid> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| typed_error(&e))?;
    // The first pass read to the end already; this only keeps `parse` correct alone.
    de.end().map_err(|_| Invalid::new("", NOT_JSON))?;
    Ok(value)
}

/// `base` + `/` + `key` escaped per RFC 6901.
pub fn at(base: &str, key: &str) -> String {
    let mut p = String::with_capacity(base.len() + key.len() + 1);
    p.push_str(base);
    p.push('/');
    push_escaped(&mut p, key);
    p
}

/// `base` + `/` + `index`.
pub fn at_index(base: &str, index: usize) -> String {
    let mut p = String::from(base);
    p.push('/');
    crate::core::text::push_u64(&mut p, index as u64);
    p
}

fn push_escaped(out: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// Checks a body the worker forwards without reading it (a `/client` body): valid JSON
/// with no duplicate key, in one pass.
pub fn check(text: &str) -> Result<(), Invalid> {
    no_duplicates(text)
}

/// The first pass: walks the whole body without building it, refusing duplicate keys.
/// It also meets every syntax error first, so they are told apart here.
fn no_duplicates(text: &str) -> Result<(), Invalid> {
    let mut state = Walk {
        path: Vec::new(),
        duplicate: false,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let result = Node { state: &mut state }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            // Segments were pushed while the error unwound: innermost first.
            state.path.reverse();
            let pointer = state.path.concat();
            if state.duplicate {
                Err(Invalid::new(&pointer, "is a duplicate key"))
            } else {
                Err(json_error(&e, &pointer))
            }
        }
    }
}

/// Where an error was: one escaped `/segment` per level, pushed only as an error
/// unwinds (the success path allocates nothing per key).
struct Walk {
    path: Vec<String>,
    duplicate: bool,
}

struct Node<'s> {
    state: &'s mut Walk,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let state = &mut *self.state;
            match seq.next_element_seed(Node { state }) {
                Ok(Some(())) => index += 1,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.state.path.push(at_index("", index));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = Keys::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // A borrowed key clones as a pointer; only an escaped one is copied.
            let this = key.clone();
            if let Err(key) = seen.insert(key) {
                self.state.path.push(at("", &key));
                self.state.duplicate = true;
                return Err(de::Error::custom("duplicate key"));
            }
            let state = &mut *self.state;
            if let Err(e) = map.next_value_seed(Node { state }) {
                self.state.path.push(at("", &this));
                return Err(e);
            }
        }
        Ok(())
    }
}

/// An object's keys so far: a short list searched in place (most objects have a few
/// keys), an ordered set past that (so a huge object costs no quadratic search). Not a
/// hash set: a table that doubles costs wasm memory the sum of all its sizes (a freed
/// table cannot hold the next, larger one, and wasm memory never shrinks), 6.3 times a
/// 5 MB body of keys in one object; a B-tree grows node by node, 3.8 times (measured).
#[derive(Default)]
struct Keys<'de> {
    few: Vec<Cow<'de, str>>,
    many: BTreeSet<Cow<'de, str>>,
}

const FEW_KEYS: usize = 16;

impl<'de> Keys<'de> {
    /// Adds `key`; gives it back when it was already there.
    fn insert(&mut self, key: Cow<'de, str>) -> Result<(), Cow<'de, str>> {
        if self.few.len() < FEW_KEYS {
            if self.few.contains(&key) {
                return Err(key);
            }
            self.few.push(key);
            return Ok(());
        }
        if self.many.is_empty() {
            self.many.extend(self.few.iter().cloned());
        }
        if self.many.contains(&key) {
            return Err(key);
        }
        self.many.insert(key);
        Ok(())
    }
}

/// A key, borrowed from the body where it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// An error of serde_json's own (grammar and limits), at `pointer` when it has one.
fn json_error(e: &serde_json::Error, pointer: &str) -> Invalid {
    // serde_json exposes these two only through their messages (pinned by the tests).
    let msg = e.to_string();
    if msg.starts_with("number out of range") {
        Invalid::new(pointer, "is a number out of range")
    } else if msg.starts_with("recursion limit exceeded") {
        Invalid::new("", "nests arrays and objects 128 or more levels deep")
    } else {
        Invalid::new("", NOT_JSON)
    }
}

/// An error of the typed pass: the pointer from serde_path_to_error, the detail from
/// serde's message with the value left out.
fn typed_error(e: &serde_path_to_error::Error<serde_json::Error>) -> Invalid {
    let mut pointer = String::new();
    for segment in e.path() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                pointer = at_index(&pointer, *index);
            }
            serde_path_to_error::Segment::Map { key } => pointer = at(&pointer, key),
            serde_path_to_error::Segment::Enum { variant } => pointer = at(&pointer, variant),
            serde_path_to_error::Segment::Unknown => pointer = at(&pointer, "?"),
        }
    }
    let inner = e.inner();
    if inner.classify() != serde_json::error::Category::Data {
        return json_error(inner, &pointer);
    }
    let msg = inner.to_string();
    let mut suffix = String::from(" at line ");
    crate::core::text::push_u64(&mut suffix, inner.line() as u64);
    suffix.push_str(" column ");
    crate::core::text::push_u64(&mut suffix, inner.column() as u64);
    let msg = msg.strip_suffix(suffix.as_str()).unwrap_or(&msg);
    if let Some(field) = quoted_after(msg, "missing field `") {
        return Invalid::new(&at(&pointer, field), "is required");
    }
    if let Some(field) = quoted_after(msg, "duplicate field `") {
        return Invalid::new(&at(&pointer, field), "is a duplicate key");
    }
    // `deny_unknown_fields`: the path already ends at the member.
    if msg.starts_with("unknown field `") {
        return Invalid::new(&pointer, UNKNOWN_MEMBER);
    }
    // `invalid type: string "…", expected a JSON number`: the value is on the left, and
    // the right is our own code's wording, which holds no `, expected `.
    if let Some((_, expected)) = msg.rsplit_once(", expected ") {
        let mut detail = String::from("must be ");
        match describe(expected) {
            Some(what) => detail.push_str(what),
            None => return Invalid::new(&pointer, "has the wrong type"),
        }
        return Invalid::new(&pointer, &detail);
    }
    // The checks' own messages (`must be "event"`, `is a string longer than 100 KB`,
    // `has more than 400 keys`) hold no value; serde's own start otherwise.
    if msg.starts_with("must ") || msg.starts_with("is ") || msg.starts_with("has ") {
        return Invalid::new(&pointer, msg);
    }
    Invalid::new(&pointer, "is invalid")
}

/// `missing field `name``: the name (from our own struct, not from the body).
fn quoted_after<'m>(msg: &'m str, prefix: &str) -> Option<&'m str> {
    msg.strip_prefix(prefix)?.strip_suffix('`')
}

/// serde's name of an expected type, in words for a caller.
fn describe(expected: &str) -> Option<&str> {
    Some(match expected {
        "a string" => "a string",
        "a boolean" => "true or false",
        "a JSON number" | "f64" | "f32" => "a number",
        "i64" | "i32" => "a whole number",
        "u64" | "u32" | "usize" => "a whole number, 0 or more",
        "a sequence" => "an array",
        "a map" => "an object",
        _ if expected.starts_with("struct ") => "an object",
        // Our own types' wording: `"event"`, `a string or a number`, ...
        _ if expected.starts_with('"')
            || expected.starts_with("a ")
            || expected.starts_with("an ") =>
        {
            expected
        }
        _ => return None,
    })
}

/// A value that may be a JSON string or a number (a location's latitude, a ProductID).
#[derive(Clone, Debug, PartialEq)]
pub enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

impl serde::Serialize for StringOrNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StringOrNumber::String(v) => s.serialize_str(v),
            StringOrNumber::Number(n) => n.serialize(s),
        }
    }
}

impl<'de> de::Deserialize<'de> for StringOrNumber {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StringOrNumber;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }

            fn visit_str<E>(self, s: &str) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber::String(s.to_string()))
            }

            fn visit_u64<E>(self, n: u64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber::Number(n.into()))
            }

            fn visit_i64<E>(self, n: i64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber::Number(n.into()))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<StringOrNumber, E> {
                serde_json::Number::from_f64(n)
                    .map(StringOrNumber::Number)
                    .ok_or_else(|| E::custom("must be a finite number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a JSON:API `type` that must be `expected` (`"event"`), in the body's order, so
/// `{"type":"profile","attributes":{}}` for an event is refused at `/data/type` first.
pub fn expect_tag<'de, D: de::Deserializer<'de>>(
    d: D,
    expected: &'static str,
) -> Result<(), D::Error> {
    struct V(&'static str);
    impl Visitor<'_> for V {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("\"")?;
            f.write_str(self.0)?;
            f.write_str("\"")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
            if s == self.0 {
                Ok(())
            } else {
                Err(E::custom(format_args!("must be \"{}\"", self.0)))
            }
        }
    }
    d.deserialize_str(V(expected))
}

#[cfg(test)]
#[path = "bodies_tests.rs"]
mod tests;
