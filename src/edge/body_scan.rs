//! The `/client` path's one pass over a body: checked (JSON, no duplicate key, within
//! serde_json's limits) and the profile's attributes found, in one loop over the bytes.
//! It runs on every page call, so it replaces two serde passes there (the duplicate-key
//! walk of `bodies.rs` and the profile's look-up of `visitor.rs`) for the ordinary body.
//!
//! It only ever accepts: on anything it does not take whole (a syntax error, an escaped
//! key, a number past `f64`, 128 levels, a crowded object, a path through an array) it
//! answers `None`, and the caller asks serde_json, which names the error or reads the
//! body the slow way. So what this accepts is a subset of what serde_json accepts, and
//! what it finds is what the serde look-up finds (`body_scan_tests.rs` checks both).

use crate::core::jsontext::{hex4, number_end, ws};

/// What the profile's attributes object holds of what the additions touch, by byte
/// offsets into the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts<'a> {
    /// The attributes object's `{`.
    pub open: usize,
    pub empty: bool,
    /// `anonymous_id`'s value: its span, and its text when it is a string without escapes.
    pub anonymous_id: Option<(usize, usize, Option<&'a str>)>,
    pub kx: bool,
    /// An email, phone number or external id other than `null`: the body names someone.
    pub named: bool,
    pub location: Option<LocationSeen>,
}

/// The attributes' `location`: an object (its `{`, whether it is empty, whether it has
/// `ip`), or another kind of value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocationSeen {
    Object {
        open: usize,
        empty: bool,
        has_ip: bool,
    },
    Other,
}

/// serde_json refuses the 128th level of nested arrays and objects.
const MAX_DEPTH: usize = 128;

/// Objects with more keys than this go to serde_json, whose key set is not quadratic.
const MAX_KEYS: usize = 32;

/// What a value is to the look-up, by the keys that lead to it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Reached by the first `n` keys of the profile's path.
    Path(usize),
    /// The profile's attributes.
    Attrs,
    /// `location` in the attributes.
    Location,
    /// `anonymous_id` in the attributes.
    AnonymousId,
    /// `email`, `phone_number` or `external_id` in the attributes.
    Identifier,
    Other,
}

struct Frame {
    object: bool,
    role: Role,
    /// Where this object's keys start in the shared list.
    keys_from: usize,
}

/// The pass's state: the open containers, the keys of the open objects (one list, each
/// object's from its frame's `keys_from`), and what was found on the profile's path.
struct Walk<'a, 'p> {
    text: &'a str,
    path: &'p [&'p str],
    stack: Vec<Frame>,
    keys: Vec<&'a str>,
    facts: Option<Facts<'a>>,
}

/// `Some(facts)` when `text` is one JSON value that serde_json accepts with no duplicate
/// key, with the facts about the object at `path` (`None` inside when there is none);
/// `None` when serde_json must decide.
pub fn scan<'a>(text: &'a str, path: &[&str]) -> Option<Option<Facts<'a>>> {
    let b = text.as_bytes();
    let mut w = Walk {
        text,
        path,
        stack: Vec::with_capacity(12),
        keys: Vec::with_capacity(32),
        facts: None,
    };
    let mut role = if path.is_empty() {
        Role::Attrs
    } else {
        Role::Path(0)
    };
    let mut i = ws(b, 0);
    loop {
        // A value, whose role is `role`.
        let start = i;
        match *b.get(i)? {
            open @ (b'{' | b'[') => {
                if w.stack.len() + 1 >= MAX_DEPTH {
                    return None;
                }
                let object = open == b'{';
                match (role, object) {
                    // serde reads a struct from an array too: the slow way decides.
                    (Role::Path(_) | Role::AnonymousId, false) | (Role::AnonymousId, true) => {
                        return None
                    }
                    (Role::Attrs, true) => {
                        w.facts = Some(Facts {
                            open: i,
                            empty: true,
                            anonymous_id: None,
                            kx: false,
                            named: false,
                            location: None,
                        });
                    }
                    (Role::Identifier, _) => {
                        if let Some(f) = w.facts.as_mut() {
                            f.named = true;
                        }
                    }
                    (Role::Location, _) => {
                        if let Some(f) = w.facts.as_mut() {
                            f.location = Some(if object {
                                LocationSeen::Object {
                                    open: i,
                                    empty: true,
                                    has_ip: false,
                                }
                            } else {
                                LocationSeen::Other
                            });
                        }
                    }
                    _ => {}
                }
                w.stack.push(Frame {
                    object,
                    role,
                    keys_from: w.keys.len(),
                });
                i = ws(b, i + 1);
                let close = if object { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    w.stack.pop();
                    i += 1;
                } else if object {
                    (i, role) = w.member(i)?;
                    continue;
                } else {
                    role = Role::Other;
                    continue;
                }
            }
            b'"' => {
                let end = string_end(b, i)?;
                if let Some(f) = w.facts.as_mut() {
                    match role {
                        Role::AnonymousId => {
                            let inner = &text[i + 1..end - 1];
                            f.anonymous_id =
                                Some((start, end, (!inner.contains('\\')).then_some(inner)));
                        }
                        Role::Location => f.location = Some(LocationSeen::Other),
                        Role::Identifier => f.named = true,
                        _ => {}
                    }
                }
                i = end;
            }
            _ => {
                let end = scalar_end(b, i)?;
                if let Some(f) = w.facts.as_mut() {
                    match role {
                        Role::AnonymousId => f.anonymous_id = Some((start, end, None)),
                        Role::Location => f.location = Some(LocationSeen::Other),
                        Role::Identifier => f.named |= &text[start..end] != "null",
                        _ => {}
                    }
                }
                i = end;
            }
        }
        // After a value: the next member or element, or the end of containers.
        loop {
            i = ws(b, i);
            let Some(top) = w.stack.last() else {
                return (i == b.len()).then_some(w.facts);
            };
            match (b.get(i)?, top.object) {
                (b',', true) => {
                    (i, role) = w.member(ws(b, i + 1))?;
                    break;
                }
                (b',', false) => {
                    i = ws(b, i + 1);
                    role = Role::Other;
                    break;
                }
                (b'}', true) | (b']', false) => {
                    if let Some(f) = w.stack.pop().filter(|f| f.object) {
                        w.keys.truncate(f.keys_from);
                    }
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

impl<'a> Walk<'a, '_> {
    /// A member's key and colon at `i` in the innermost object, the key checked against
    /// the object's others: the index of its value, and the value's role.
    fn member(&mut self, i: usize) -> Option<(usize, Role)> {
        let b = self.text.as_bytes();
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let end = string_end(b, i)?;
        let key = &self.text[i + 1..end - 1];
        let frame = self.stack.last()?;
        let mine = &self.keys[frame.keys_from..];
        // An escaped key may equal another spelt plainly: serde_json compares them.
        if key.contains('\\') || mine.len() >= MAX_KEYS || mine.contains(&key) {
            return None;
        }
        self.keys.push(key);
        let role = match frame.role {
            Role::Path(n) if self.path.get(n) == Some(&key) => {
                if n + 1 == self.path.len() {
                    Role::Attrs
                } else {
                    Role::Path(n + 1)
                }
            }
            Role::Attrs => {
                if let Some(f) = self.facts.as_mut() {
                    f.empty = false;
                    f.kx |= key == "_kx";
                }
                match key {
                    "anonymous_id" => Role::AnonymousId,
                    "location" => Role::Location,
                    "email" | "phone_number" | "external_id" => Role::Identifier,
                    _ => Role::Other,
                }
            }
            Role::Location => {
                if let Some(LocationSeen::Object { empty, has_ip, .. }) =
                    self.facts.as_mut().and_then(|f| f.location.as_mut())
                {
                    *empty = false;
                    *has_ip |= key == "ip";
                }
                Role::Other
            }
            _ => Role::Other,
        };
        // The colon, then the value.
        let i = ws(b, end);
        (b.get(i) == Some(&b':')).then(|| (ws(b, i + 1), role))
    }
}

/// The index after the string opening at `i`: escapes valid, surrogates paired, no
/// control character. Stricter than `core::jsontext`'s, which takes a lone surrogate
/// escape as `JSON.stringify` may write one: serde_json refuses it.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let u = hex4(b, i + 2)?;
                    i += 6;
                    if (0xDC00..0xE000).contains(&u) {
                        return None;
                    }
                    if (0xD800..0xDC00).contains(&u) {
                        if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
                            return None;
                        }
                        if !(0xDC00..0xE000).contains(&hex4(b, i + 2)?) {
                            return None;
                        }
                        i += 6;
                    }
                }
                _ => return None,
            },
            0..=0x1F => return None,
            _ => i += 1,
        }
    }
}

/// The index after the number or literal at `i`; a number must be within `f64`.
fn scalar_end(b: &[u8], i: usize) -> Option<usize> {
    for lit in [&b"true"[..], b"false", b"null"] {
        if b.get(i..i + lit.len()) == Some(lit) {
            return Some(i + lit.len());
        }
    }
    let end = number_end(b, i)?;
    let number = b.get(i..end)?;
    // Without an exponent, fewer than 309 digits are always within f64.
    if number.len() > 300 || number.iter().any(|c| matches!(c, b'e' | b'E')) {
        let n: f64 = std::str::from_utf8(number).ok()?.parse().ok()?;
        if !n.is_finite() {
            return None;
        }
    }
    Some(end)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "body_scan_tests.rs"]
mod tests;
