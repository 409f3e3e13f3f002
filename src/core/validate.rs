//! Input rules, one function per rule. A failure names the field it is about and says
//! what is expected; it never repeats the value (it may be an email or a phone number).

use super::jsontext::{self as jt, Kind};
use super::text;
use super::time::{MAX_AHEAD_S, MIN_TIME_S};

/// A rejected input: `field` is the path the caller used (`email`, `properties.Price`).
/// One pointer wide, so a `Result<(), ValidationError>` is one word and `?` passes it
/// on without copying: the details are boxed, and only a refusal allocates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError(Box<Refusal>);

/// What a [`ValidationError`] says (read through it: `e.field`, `e.reason`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub reason: &'static str,
}

impl std::ops::Deref for ValidationError {
    type Target = Refusal;

    fn deref(&self) -> &Refusal {
        &self.0
    }
}

impl ValidationError {
    #[inline(never)]
    pub fn new(field: &str, reason: &'static str) -> ValidationError {
        ValidationError::owned(field.to_string(), reason)
    }

    /// A refusal of a field path built by the caller.
    pub fn owned(field: String, reason: &'static str) -> ValidationError {
        ValidationError(Box::new(Refusal { field, reason }))
    }

    /// `track: value must be a finite number`
    pub fn message(&self, call: &str) -> String {
        let mut m = String::with_capacity(call.len() + self.field.len() + self.reason.len() + 3);
        m.push_str(call);
        m.push_str(": ");
        m.push_str(&self.field);
        m.push(' ');
        m.push_str(self.reason);
        m
    }
}

pub type Result<T> = std::result::Result<T, ValidationError>;

pub const MAX_PROPERTIES: usize = 400;
pub const MAX_STRING_BYTES: usize = 100 * 1024;
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_METRIC_CHARS: usize = 128;

pub fn company_id(v: &str) -> Result<()> {
    if v.len() == 6 && v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "companyId",
            "must be your 6-character Klaviyo public API key (letters and digits)",
        ))
    }
}

/// A pragmatic address check: what a shop's form should already have caught, not RFC 5322.
pub fn email(field: &str, v: &str) -> Result<()> {
    let ok = match text::cut(v, b'@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= 64
                && v.len() <= 254
                && !text::has(domain, b'@')
                && !text::has_blank(v)
                && text::has(domain, b'.')
                && text::parts(domain, b'.')
                    .all(|l| !l.is_empty() && !l.starts_with("-") && !l.ends_with("-"))
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(field, "is not a valid email address"))
    }
}

/// E.164: `+`, a non-zero country digit, 7 to 15 digits in all.
pub fn phone(field: &str, v: &str) -> Result<()> {
    let digits = v.strip_prefix("+").unwrap_or("");
    let ok = (7..=15).contains(&digits.len())
        && !digits.starts_with("0")
        && digits.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be in E.164 format, like +15005550006",
        ))
    }
}

pub fn metric_name(field: &str, v: &str) -> Result<()> {
    let n = text::char_count(v);
    if (1..=MAX_METRIC_CHARS).contains(&n) && !text::is_blank(v) {
        Ok(())
    } else {
        Err(ValidationError::new(field, "must be 1 to 128 characters"))
    }
}

/// A string that must be present and not blank; returns its text.
pub fn non_empty(field: &str, raw: Option<&str>) -> Result<String> {
    match raw.and_then(jt::unescape) {
        Some(s) if !text::is_blank(&s) => Ok(s),
        _ => Err(ValidationError::new(field, "must be a non-empty string")),
    }
}

/// The member `key` of a raw object when it is there and not `null` (a blank string
/// counts: a subscription's empty email field, a blank `apiBase`, a blank `uniqueId`).
pub fn present<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    jt::get(obj, key).filter(|v| jt::kind(v) != Kind::Null)
}

/// The member `key` of a raw object when it is there, not `null` and no blank string
/// (an option or property left out any of those ways: storefront data has `""` and
/// `null` for what a shop does not have).
pub fn given<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    jt::get(obj, key).filter(|v| !unset(v))
}

/// A raw value that says nothing: `null`, or a string of nothing but blanks.
pub fn unset(v: &str) -> bool {
    match jt::kind(v) {
        Kind::Null => true,
        Kind::Str => jt::unescape(v).is_none_or(|s| text::is_blank(&s)),
        _ => false,
    }
}

/// A check of a field's text: `(field, text)`, a refusal naming `field`.
pub type Rule = fn(&str, &str) -> Result<()>;

/// [`non_empty`] for a string checked, not kept: `then` checks its text too. The text
/// is freed here, once, not at every caller.
pub fn non_empty_then(field: &str, raw: Option<&str>, then: Rule) -> Result<()> {
    then(field, &non_empty(field, raw)?)
}

/// The [`Rule`] for text that only has to be there ([`non_empty_then`]).
pub fn any_text(_: &str, _: &str) -> Result<()> {
    Ok(())
}

/// A shop's own `unique_id`: 1 to 255 characters, no control characters. Returns the
/// raw string literal, which is what the request carries.
pub fn unique_id<'a>(field: &str, raw: &'a str) -> Result<&'a str> {
    unique_id_text(field, &jt::unescape(raw).unwrap_or_default()).map(|()| raw)
}

/// [`unique_id`] of a plain string (the edge worker's bodies are parsed already).
pub fn unique_id_text(field: &str, s: &str) -> Result<()> {
    if (1..=255).contains(&s.len()) && !text::has_control(s) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be 1 to 255 characters without control characters",
        ))
    }
}

/// Event properties: an object of at most 400 keys, no string over 100 KB anywhere in it.
pub fn properties(field: &str, raw: &str) -> Result<()> {
    if jt::kind(raw) != Kind::Obj {
        return Err(ValidationError::new(field, "must be an object"));
    }
    // Each member takes at least 5 bytes (`"":0,`): shorter text cannot hold 401.
    if raw.len() > 5 * MAX_PROPERTIES && jt::entries(raw).count() > MAX_PROPERTIES {
        return Err(ValidationError::new(field, TOO_MANY));
    }
    // Nor can shorter text hold a string over the limit.
    if raw.len() <= MAX_STRING_BYTES {
        return Ok(());
    }
    let mut path = field.to_string();
    if too_long(raw, &mut path) {
        Err(ValidationError::owned(path, TOO_LONG))
    } else {
        Ok(())
    }
}

const TOO_LONG: &str = "is a string longer than 100 KB";
const TOO_MANY: &str = "has more than 400 keys";

/// [`properties`]' limit on keys, given how many the object has.
pub fn property_count(field: &str, keys: usize) -> Result<()> {
    if keys <= MAX_PROPERTIES {
        Ok(())
    } else {
        Err(ValidationError::new(field, TOO_MANY))
    }
}

/// [`properties`]' limit on one string anywhere in them (a plain, unescaped string).
pub fn property_string(field: &str, s: &str) -> Result<()> {
    if s.len() <= MAX_STRING_BYTES {
        Ok(())
    } else {
        Err(ValidationError::new(field, TOO_LONG))
    }
}

/// Whether `raw` holds a string over 100 KB; if so, `path` ends with where it is
/// (`.Items.Note`). Each key is added on the way down and taken off again when
/// nothing under it is too long: one text, no path built per level.
fn too_long(raw: &str, path: &mut String) -> bool {
    match jt::kind(raw) {
        Kind::Str => {
            raw.len() > MAX_STRING_BYTES
                && jt::unescape(raw).is_some_and(|s| s.len() > MAX_STRING_BYTES)
        }
        Kind::Arr => jt::items(raw).any(|v| too_long(v, path)),
        Kind::Obj => jt::entries(raw).any(|(k, v)| {
            let at = path.len();
            path.push('.');
            path.push_str(&jt::unescape(k).unwrap_or_default());
            let found = too_long(v, path);
            if !found {
                path.truncate(at);
            }
            found
        }),
        _ => false,
    }
}

pub fn body_size(len: usize) -> Result<()> {
    if len <= MAX_BODY_BYTES {
        Ok(())
    } else {
        Err(ValidationError::new("body", "is larger than 5 MB"))
    }
}

/// Klaviyo accepts event times from 1990 up to one year ahead.
pub fn event_time(field: &str, secs: i64, now_ms: u64) -> Result<()> {
    let now_s = (now_ms / 1000) as i64;
    if (MIN_TIME_S..=now_s + MAX_AHEAD_S).contains(&secs) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be between 1990 and one year from now",
        ))
    }
}

/// A JSON number (JSON has no NaN or Infinity: `JSON.stringify` turns them into null).
pub fn number<'a>(field: &str, raw: &'a str) -> Result<&'a str> {
    if jt::kind(raw) == Kind::Num && raw.len() <= 40 {
        Ok(raw)
    } else {
        Err(ValidationError::new(field, "must be a finite number"))
    }
}

/// ISO 4217: three letters, sent upper-case.
pub fn currency(field: &str, raw: &str) -> Result<String> {
    currency_code(field, &jt::unescape(raw).unwrap_or_default())
}

/// [`currency`] of a plain string: the code upper-case.
pub fn currency_code(field: &str, s: &str) -> Result<String> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
        // Pushed one by one: `collect`'s generic code is larger.
        let mut code = String::with_capacity(3);
        for b in s.bytes() {
            code.push((b & !0x20) as char);
        }
        Ok(code)
    } else {
        Err(ValidationError::new(
            field,
            "must be a three-letter ISO 4217 code, like USD",
        ))
    }
}

/// `revision` header: `YYYY-MM-DD` with an optional `.suffix`.
pub fn revision(v: &str) -> Result<()> {
    let date = text::cut(v, b'.').map_or(v, |(d, _)| d);
    let b = date.as_bytes();
    let ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "revision",
            "must look like 2026-07-15",
        ))
    }
}

/// `apiBase`: an http(s) origin, optionally with a path prefix.
pub fn api_base(v: &str) -> Result<()> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .unwrap_or("");
    if rest.is_empty()
        || rest.starts_with("/")
        || v.bytes().any(|b| matches!(b, b'?' | b'#' | b' '))
    {
        Err(ValidationError::new(
            "apiBase",
            "must be an http(s) URL like https://a.klaviyo.com",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
