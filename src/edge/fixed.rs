//! The texts that cross into the runtime on every request (header names the router
//! reads or writes, and values that never change), each made a JS string once per
//! isolate by `worker/js.rs`. One list, by name: the slots, the table and the lookup all
//! come from it, so none can be added on one side and forgotten on another.

use super::reply;

macro_rules! fixed_texts {
    ($($name:ident = $text:expr;)*) => {
        /// A text's slot: its place in the list.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        enum Slot { $($name),* }

        /// Every fixed text, in slot order.
        pub const FIXED_TEXTS: &[&str] = &[$($text),*];

        /// The slot of `text`, if it is one of them. A `match` compiles to a dispatch on
        /// the length and one comparison (a scan of the list cost about 2 µs a request).
        pub fn fixed_slot(text: &str) -> Option<usize> {
            $(const $name: &str = $text;)*
            match text {
                $($name => Some(Slot::$name as usize),)*
                _ => None,
            }
        }
    };
}

fixed_texts! {
    CONTENT_LENGTH = "content-length";
    CONTENT_TYPE = "content-type";
    ORIGIN = "origin";
    REVISION = "revision";
    KLAVIYO_SIGNATURE = "klaviyo-signature";
    KLAVIYO_TIMESTAMP = "klaviyo-timestamp";
    KLAVIYO_WEBHOOK_ID = "klaviyo-webhook-id";
    X_KLAVIYO_EDGE_SIGNATURE = "x-klaviyo-edge-signature";
    CF_CONNECTING_IP = "cf-connecting-ip";
    X_FORWARDED_FOR = "x-forwarded-for";
    AUTHORIZATION = "authorization";
    ACCEPT = "accept";
    RETRY_AFTER = "retry-after";
    ALLOW_ORIGIN = "access-control-allow-origin";
    EXPOSE_HEADERS = "access-control-expose-headers";
    ALLOW_METHODS = "access-control-allow-methods";
    ALLOW_HEADERS = "access-control-allow-headers";
    MAX_AGE = "access-control-max-age";
    VARY = "vary";
    VARY_ORIGIN = "Origin";
    POST = "POST";
    JSON_API = reply::JSONAPI;
    CONTENT_TYPE_OPTIONS = "x-content-type-options";
    NOSNIFF = "nosniff";
    USER_AGENT = "user-agent";
    COOKIE = "cookie";
    EXPOSED = reply::EXPOSED;
    FIRST_PARTY = reply::FIRST_PARTY;
    ID = "id";
}

/// How many there are: the size of the isolate's table of JS strings.
pub const FIXED_SLOTS: usize = FIXED_TEXTS.len();

#[cfg(test)]
#[path = "fixed_tests.rs"]
mod tests;
