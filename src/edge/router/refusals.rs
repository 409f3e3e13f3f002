//! What the router answers itself when it refuses: JSON:API errors like Klaviyo's, each
//! naming what is wrong (a setting, a field by its pointer, the origin), never a value.

use super::*;

/// The answer to a browser client over its rate.
pub fn rate_limited(cors: Option<&str>) -> Reply {
    error(
        429,
        "throttled",
        "Request was throttled.",
        "too many unsigned calls from this client; retry later",
        None,
    )
    .header("retry-after", "60")
    .cors(cors)
}

/// The answer to a signature already used within its window.
pub fn replayed(cors: Option<&str>) -> Reply {
    unauthorized(AuthError::Replayed).cors(cors)
}

/// A setting that is present but unusable: a 500 naming the setting, never its value.
pub fn config_error(e: &ConfigError) -> Reply {
    let mut d = String::from(e.setting);
    d.push(' ');
    d.push_str(e.reason);
    error(
        500,
        "bad_setting",
        "The worker is not configured.",
        &d,
        None,
    )
}

/// A refused body: 400 with the JSON pointer of the field ("" is the whole body).
pub(crate) fn invalid(e: Invalid) -> Reply {
    error(
        400,
        "invalid",
        "Invalid input.",
        &e.detail,
        Some(&e.pointer),
    )
}

pub(crate) fn unauthorized(e: AuthError) -> Reply {
    error(401, "unauthorized", "Unauthorized.", e.detail(), None)
}

pub(crate) fn not_utf8() -> Reply {
    error(
        400,
        "malformed",
        "Malformed body.",
        "the body is not valid UTF-8",
        None,
    )
}

pub(crate) fn not_found() -> Reply {
    error(404, "not_found", "Not found.", "no such route", None)
}

/// The body as text: UTF-8 decoded fatally (a BOM stays, and then is not JSON).
pub(crate) fn text(body: &[u8]) -> Result<&str, Reply> {
    std::str::from_utf8(body).map_err(|_| not_utf8())
}

/// A signature's verdict, then the signed body as text: the tag and the text, or the
/// answer (401 for the signature, 400 for bytes that are not UTF-8).
pub(crate) fn verified_text(
    verified: Result<[u8; 32], AuthError>,
    body: &[u8],
) -> Result<([u8; 32], &str), Reply> {
    let tag = verified.map_err(unauthorized)?;
    Ok((tag, text(body)?))
}

pub(crate) fn too_large() -> Reply {
    error(
        413,
        "too_large",
        "Request body too large.",
        "the body is larger than MAX_BODY_BYTES",
        None,
    )
}
