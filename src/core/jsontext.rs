//! JSON kept as text. The browser hands the core `JSON.stringify` output, and the core
//! sends JSON text on; in between it only checks values and picks out a few fields. So
//! instead of building a tree (an allocation per value), this module checks the grammar
//! in one pass and then reads values as slices of the original text. Numbers stay as
//! written: nothing is rounded through `f64` and no float formatting is linked.
//!
//! A *raw value* below is a slice of checked JSON text holding exactly one value, with
//! no surrounding whitespace (`"a\"b"`, `{"k":[1,2]}`, `-0.5`). The readers (`get`,
//! [`entries`], [`items`]) never panic on text that was not checked; they just stop.

use super::text;

/// Deep enough for any real event; shallow enough that hostile input cannot exhaust the
/// (small) wasm stack. The checker itself does not recurse.
pub const MAX_DEPTH: usize = 64;

/// What a raw value is, from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Num,
    Str,
    Arr,
    Obj,
    /// Not a value (empty or malformed text).
    Bad,
}

pub fn kind(raw: &str) -> Kind {
    match raw.as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'-' | b'0'..=b'9') => Kind::Num,
        Some(b'"') => Kind::Str,
        Some(b'[') => Kind::Arr,
        Some(b'{') => Kind::Obj,
        _ => Kind::Bad,
    }
}

/// Whether `raw` is absent or `null` (an omitted argument or option).
pub fn is_absent(raw: Option<&str>) -> bool {
    matches!(raw.map(kind), None | Some(Kind::Null))
}

/// Checks that `text` is exactly one JSON value (surrounding whitespace allowed) and
/// returns it trimmed, compacted when it holds whitespace between tokens (the queue
/// stores values on one line). `Err` carries the byte offset of the first error.
pub fn check(text: &str) -> Result<std::borrow::Cow<'_, str>, usize> {
    let (start, end, spaced) = scan(text, None)?;
    let raw = &text[start..end];
    Ok(if spaced {
        std::borrow::Cow::Owned(compact(raw))
    } else {
        std::borrow::Cow::Borrowed(raw)
    })
}

/// The elements of a compact JSON array, checked in the same single pass that finds
/// them (the hot path: one call's arguments). `None` when `text` is not a JSON array
/// or has whitespace between tokens; [`check`] each element to learn which is wrong.
pub fn split_array(text: &str) -> Option<Vec<&str>> {
    if kind(text) != Kind::Arr {
        return None;
    }
    let mut items = Vec::new();
    match scan(text, Some(&mut items)) {
        Ok((0, end, false)) if end == text.len() => Some(items),
        _ => None,
    }
}

/// The checker: the value's `(start, end, spaced)`; with `items`, also the elements
/// of the top-level container, as slices of `text`.
fn scan<'a>(
    text: &'a str,
    mut items: Option<&mut Vec<&'a str>>,
) -> Result<(usize, usize, bool), usize> {
    let b = text.as_bytes();
    // Open containers: true for an object. A fixed array keeps the checker iterative.
    let mut stack = [false; MAX_DEPTH];
    let mut depth = 0;
    let mut i = ws(b, 0);
    let start = i;
    let mut spaced = false;
    // Where the current element of the top-level container began.
    let mut element = None;
    loop {
        // A value.
        if depth == 1 {
            element = Some(i);
        }
        match b.get(i) {
            Some(b'{' | b'[') => {
                if depth == MAX_DEPTH {
                    return Err(i);
                }
                let obj = b[i] == b'{';
                stack[depth] = obj;
                depth += 1;
                let j = ws(b, i + 1);
                spaced |= j != i + 1;
                i = j;
                match (obj, b.get(i)) {
                    (true, Some(b'}')) | (false, Some(b']')) => {
                        depth -= 1;
                        i += 1;
                    }
                    (true, Some(b'"')) => {
                        i = key(b, i, &mut spaced)?;
                        continue;
                    }
                    (true, _) => return Err(i),
                    (false, _) => continue,
                }
            }
            Some(b'"') => i = string_end(b, i).ok_or(i)?,
            Some(b'-' | b'0'..=b'9') => i = number_end(b, i).ok_or(i)?,
            Some(b't') if b[i..].starts_with(b"true") => i += 4,
            Some(b'f') if b[i..].starts_with(b"false") => i += 5,
            Some(b'n') if b[i..].starts_with(b"null") => i += 4,
            _ => return Err(i),
        }
        // After a value: a separator, a closer, or the end.
        loop {
            if depth == 1 {
                if let (Some(s), Some(out)) = (element.take(), items.as_deref_mut()) {
                    // Token boundaries are ASCII: always a whole slice.
                    if let Some(e) = text.get(s..i) {
                        out.push(e);
                    }
                }
            }
            let j = ws(b, i);
            if depth == 0 {
                if j != b.len() {
                    return Err(j);
                }
                return Ok((start, i, spaced));
            }
            spaced |= j != i;
            i = j;
            let obj = stack[depth - 1];
            match (obj, b.get(i)) {
                (_, Some(b',')) => {
                    let j = ws(b, i + 1);
                    spaced |= j != i + 1;
                    i = j;
                    if obj {
                        if b.get(i) != Some(&b'"') {
                            return Err(i);
                        }
                        i = key(b, i, &mut spaced)?;
                    }
                    break;
                }
                (true, Some(b'}')) | (false, Some(b']')) => {
                    depth -= 1;
                    i += 1;
                }
                _ => return Err(i),
            }
        }
    }
}

/// An object key and its colon; returns where the value starts.
fn key(b: &[u8], i: usize, spaced: &mut bool) -> Result<usize, usize> {
    let end = string_end(b, i).ok_or(i)?;
    let j = ws(b, end);
    if b.get(j) != Some(&b':') {
        return Err(j);
    }
    let k = ws(b, j + 1);
    *spaced |= j != end || k != j + 1;
    Ok(k)
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
pub(crate) fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// End (exclusive) of the string literal starting at `i`, checked: escapes are valid
/// and no raw control character appears.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                i += 1;
                match *b.get(i)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 1,
                    b'u' => {
                        hex4(b, i + 1)?;
                        i += 5;
                    }
                    _ => return None,
                }
            }
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// The index after the JSON number at `i` (its grammar only; no range).
pub(crate) fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > s).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

/// Four hex digits at `at`, exactly (no sign, unlike `from_str_radix`).
/// The value of the four hex digits at `at`.
pub(crate) fn hex4(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?
        .iter()
        .try_fold(0u32, |v, &c| Some(v * 16 + (c as char).to_digit(16)?))
}

/// `raw` without whitespace between tokens (strings untouched). Read by byte and
/// copied in runs: every byte it looks for is ASCII, so each cut is a char boundary.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut from = 0;
    for (i, &c) in raw.as_bytes().iter().enumerate() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            out.push_str(&raw[from..i]);
            from = i + 1;
        } else {
            in_str = c == b'"';
        }
    }
    out.push_str(&raw[from..]);
    out
}

/// End (exclusive) of the raw value starting at `i` in checked, compact text; the
/// text's length when it is cut short.
fn skip(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    loop {
        match b.get(i) {
            None => return b.len(),
            Some(b'"') => {
                i += 1;
                while let Some(&c) = b.get(i) {
                    i += if c == b'\\' { 2 } else { 1 };
                    if c == b'"' {
                        break;
                    }
                }
                if depth == 0 {
                    return i.min(b.len());
                }
            }
            Some(b'{' | b'[') => {
                depth += 1;
                i += 1;
            }
            Some(b'}' | b']') => {
                if depth == 0 {
                    return i; // the enclosing container's end
                }
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            Some(b',' | b':') if depth == 0 => return i,
            Some(_) => i += 1,
        }
    }
}

/// The members of a raw object, in order: `(key literal, raw value)`. Key literals
/// keep their quotes (`"Price"`); compare with [`key_is`].
pub fn entries(obj: &str) -> Entries<'_> {
    Entries {
        s: obj,
        i: if kind(obj) == Kind::Obj { 1 } else { obj.len() },
    }
}

pub struct Entries<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let b = self.s.as_bytes();
        if b.get(self.i) != Some(&b'"') {
            return None;
        }
        let k_end = skip(b, self.i);
        let v_start = k_end + 1;
        let v_end = skip(b, v_start);
        let k = self.s.get(self.i..k_end)?;
        let v = self.s.get(v_start..v_end)?;
        // Past the comma, or at the closing brace (then the next call stops).
        self.i = v_end + usize::from(b.get(v_end) == Some(&b','));
        Some((k, v))
    }
}

/// The elements of a raw array, in order.
pub fn items(arr: &str) -> Items<'_> {
    let start = if kind(arr) == Kind::Arr && arr.len() > 2 {
        1
    } else {
        arr.len()
    };
    Items { s: arr, i: start }
}

pub struct Items<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        if self.i >= b.len() || matches!(b.get(self.i), Some(b']')) {
            return None;
        }
        let end = skip(b, self.i);
        let v = self.s.get(self.i..end)?;
        self.i = end + 1;
        (!v.is_empty()).then_some(v)
    }
}

/// Whether a key literal (`"Price"`) names `key`. Keys with escapes are decoded first.
pub fn key_is(literal: &str, key: &str) -> bool {
    match literal
        .strip_prefix("\"")
        .and_then(|l| l.strip_suffix("\""))
    {
        Some(inner) if !text::has(inner, b'\\') => inner == key,
        _ => unescape(literal).is_some_and(|k| k == key),
    }
}

/// The raw value of `key` in a raw object (the last one, as Klaviyo reads duplicates).
pub fn get<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    let mut found = None;
    for (k, v) in entries(obj) {
        if key_is(k, key) {
            found = Some(v);
        }
    }
    found
}

/// The text of a raw string value; `None` for anything else.
pub fn unescape(raw: &str) -> Option<String> {
    let inner = raw.strip_prefix("\"")?.strip_suffix("\"")?;
    if !text::has(inner, b'\\') {
        return Some(inner.to_string());
    }
    let b = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    while i < b.len() {
        let plain = b[i..]
            .iter()
            .position(|&c| c == b'\\')
            .unwrap_or(b.len() - i);
        out.push_str(inner.get(i..i + plain)?);
        i += plain;
        if i == b.len() {
            break;
        }
        let c = match *b.get(i + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(b, i + 2)?;
                i += 6;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    // A pair; a lone surrogate becomes U+FFFD (as browsers decode it)
                    // and the escape after it is read on its own, not swallowed.
                    match (b.get(i..i + 2), hex4(b, i + 2)) {
                        (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                            i += 6;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        _ => 0xFFFD,
                    }
                } else {
                    hi
                };
                out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                continue;
            }
            _ => return None,
        };
        out.push(c);
        i += 2;
    }
    Some(out)
}

/// Writes `s` as a JSON string literal.
pub fn write_str(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    // Read by byte, copied in runs between escapes (every byte escaped is ASCII, so
    // each cut is a char boundary): most strings are one run.
    let mut from = 0;
    for (i, &c) in s.as_bytes().iter().enumerate() {
        let escape = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "\\u00",
            _ => continue,
        };
        out.push_str(&s[from..i]);
        out.push_str(escape);
        if escape.len() == 4 {
            out.push(HEX[usize::from(c >> 4)] as char);
            out.push(HEX[usize::from(c & 15)] as char);
        }
        from = i + 1;
    }
    out.push_str(&s[from..]);
    out.push('"');
}

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str(s, &mut out);
    out
}

/// An object text built member by member: `{"a":1,"b":"x"}`.
pub struct ObjWriter {
    out: String,
}

impl ObjWriter {
    pub fn new() -> ObjWriter {
        ObjWriter {
            out: String::from("{"),
        }
    }

    /// Adds `key` (written as a literal) with an already-raw value.
    pub fn raw(&mut self, key: &str, raw: &str) -> &mut ObjWriter {
        self.key(key);
        self.out.push_str(raw);
        self
    }

    /// Adds `key` with a key literal as given (already quoted).
    pub fn raw_lit(&mut self, key_literal: &str, raw: &str) -> &mut ObjWriter {
        self.raw_lit_after("", key_literal, raw)
    }

    /// Adds a key literal (already quoted) with `prefix` (plain text) before its name.
    pub fn raw_lit_after(&mut self, prefix: &str, key_literal: &str, raw: &str) -> &mut ObjWriter {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        self.out.push('"');
        self.out.push_str(prefix);
        self.out.push_str(key_literal.get(1..).unwrap_or_default());
        self.out.push(':');
        self.out.push_str(raw);
        self
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        write_str(key, &mut self.out);
        self.out.push(':');
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

impl Default for ObjWriter {
    fn default() -> ObjWriter {
        ObjWriter::new()
    }
}

/// A raw object with `key` set to `raw` (replaced where it was, else appended), or
/// removed when `raw` is `None`.
pub fn with(obj: &str, key: &str, raw: Option<&str>) -> String {
    let mut w = ObjWriter::new();
    let mut done = false;
    for (k, v) in entries(obj) {
        if key_is(k, key) {
            if let (Some(r), false) = (raw, done) {
                w.raw_lit(k, r);
            }
            done = true;
        } else {
            w.raw_lit(k, v);
        }
    }
    if let (Some(r), false) = (raw, done) {
        w.raw(key, r);
    }
    w.finish()
}

#[cfg(test)]
#[path = "jsontext_tests.rs"]
mod tests;
