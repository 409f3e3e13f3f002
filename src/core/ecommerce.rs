//! The storefront events' property rules, as Klaviyo's own integrations send them
//! (Klaviyo's storefront-events reference and its custom-integration guide). Each
//! check reads the (checked, raw) properties object and returns the event's default
//! `value` as JSON number text, where the event has one: borrowed from the properties
//! unless it is computed.

use std::borrow::Cow;

use super::decimal::Decimal;
use super::jsontext::{self as jt, Kind};
use super::text;
use super::validate::{self, ValidationError};

type Result<T> = std::result::Result<T, ValidationError>;

/// Viewed Product: `ProductID` and `ProductName` required; `value` defaults to `Price`.
pub fn viewed_product(p: &str) -> Result<Option<Cow<'_, str>>> {
    product(p)?;
    optional_strings(p, &["SKU", "URL", "ImageURL", "Brand"])?;
    list_of_strings(p, "Categories")?;
    optional_number(p, "CompareAtPrice")?;
    Ok(optional_number(p, "Price")?.map(Cow::Borrowed))
}

/// Our shape's members of the added item, sent under the guide's names (`AddedItem` +
/// name): Klaviyo's abandoned-cart templates and segments read those, whichever shape
/// the page used.
const ITEM: [&str; 10] = [
    "ProductID",
    "ProductName",
    "Price",
    "Quantity",
    "SKU",
    "URL",
    "ImageURL",
    "Categories",
    "Brand",
    "CompareAtPrice",
];
/// The added item's required members: ours, or those of Klaviyo's custom-integration
/// guide, which its Added to Cart flow templates read (`AddedItemProductName`, ...).
const OURS: [&str; 4] = [ITEM[0], ITEM[1], ITEM[2], ITEM[3]];
const GUIDE: [&str; 4] = [
    "AddedItemProductID",
    "AddedItemProductName",
    "AddedItemPrice",
    "AddedItemQuantity",
];

/// Added to Cart, in our shape (`ProductID`, `Price`, ...) or the guide's
/// (`AddedItemProductID`, `AddedItemPrice`, ...). The price is required; `value` is the
/// cart total when given (`CartTotal`, or the guide's `$value`, which it says to set to
/// the total of the cart's `Items`), otherwise price × quantity, in exact decimals.
/// Returns the properties to send (the guide's as given; ours with the item's members
/// under the guide's names) and the value.
pub fn added_to_cart(p: &str) -> Result<(Cow<'_, str>, Option<Cow<'_, str>>)> {
    let guide = validate::given(p, GUIDE[0]).is_some();
    let value = added_value(p, guide)?;
    if guide {
        return Ok((Cow::Borrowed(p), value));
    }
    let mut w = jt::ObjWriter::new();
    for (k, v) in jt::entries(p) {
        if ITEM.iter().any(|name| jt::key_is(k, name)) {
            // Ours, under the guide's name; not given (null, blank), left out, so that
            // one the page gave in the guide's name stands.
            if !validate::unset(v) {
                w.raw_lit_after("AddedItem", k, v);
            }
        } else if !k
            .strip_prefix("\"AddedItem")
            .and_then(|name| name.strip_suffix('"'))
            .is_some_and(|name| ITEM.contains(&name) && validate::given(p, name).is_some())
        {
            // (The guide's name of a member given in ours is ours to fill: one key.)
            w.raw_lit(k, v);
        }
    }
    Ok((Cow::Owned(w.finish()), value))
}

fn added_value(p: &str, guide: bool) -> Result<Option<Cow<'_, str>>> {
    let [id, name, price_key, quantity_key] = if guide { GUIDE } else { OURS };
    id_like(p, id)?;
    required_text(p, name)?;
    let price = optional_number(p, price_key)?
        .ok_or_else(|| ValidationError::new(price_key, "is required and must be a number"))?;
    let quantity = optional_number(p, quantity_key)?.unwrap_or("1");
    if quantity.starts_with("-") || Decimal::parse(quantity).is_some_and(Decimal::is_zero) {
        return Err(ValidationError::new(
            quantity_key,
            "must be greater than zero",
        ));
    }
    list_of_strings(p, "ItemNames")?;
    list(p, "Items")?;
    for total in &["CartTotal", "$value"] {
        if let Some(total) = optional_number(p, total)? {
            return Ok(Some(Cow::Borrowed(total)));
        }
    }
    let value = Decimal::parse(price)
        .zip(Decimal::parse(quantity))
        .and_then(|(a, b)| a.times(b))
        .ok_or_else(|| ValidationError::new(price_key, "times Quantity is out of range"))?;
    Ok(Some(Cow::Owned(value.to_text())))
}

/// Viewed Collection: `CollectionID` required; `CollectionHandle`, `CollectionName` and
/// `URL` text.
pub fn viewed_collection(p: &str) -> Result<()> {
    id_like(p, "CollectionID")?;
    optional_strings(p, &["CollectionHandle", "CollectionName", "URL"])
}

/// Submitted Search: `SearchTerm` required; `ResultCount` a number, `URL` text.
pub fn submitted_search(p: &str) -> Result<()> {
    required_text(p, "SearchTerm")?;
    optional_number(p, "ResultCount")?;
    optional_strings(p, &["URL"])
}

/// Active on Site: `page` and `URL` text, both optional.
pub fn active_on_site(p: &str) -> Result<()> {
    optional_strings(p, &["page", "URL"])
}

/// What `String()` makes of a number JSON cannot hold and of an invalid `Date`, as the
/// adapter writes them in a field the core reads as a number (`js/index.js`'s `encode`).
const NOT_FINITE: [&str; 4] = [
    "\"NaN\"",
    "\"Infinity\"",
    "\"-Infinity\"",
    "\"Invalid Date\"",
];

/// Started Checkout: its `value` property (or the guide's `$value`) becomes the event's
/// value and leaves the properties. Returns the properties to send and the value.
pub fn started_checkout(p: &str) -> Result<(Cow<'_, str>, Option<Cow<'_, str>>)> {
    // The adapter's text for a number JSON cannot hold (or an invalid `Date`), which
    // JSON would make `null`: bad input here, not a money string to keep.
    if let Some(v) = jt::get(p, "$value").filter(|v| NOT_FINITE.contains(v)) {
        validate::number("$value", v)?;
    }
    optional_strings(p, &["CheckoutURL"])?;
    list_of_strings(p, "ItemNames")?;
    list_of_strings(p, "Categories")?;
    list(p, "Items")?;
    // `value`, or where it is not given, a number in `$value`.
    let own = match validate::present(p, "value") {
        Some(v) => Some(validate::number("value", v)?),
        None => None,
    };
    let (mut props, dollar) = dollar_value(p, own.is_some());
    // `value` leaves the properties (null too).
    if jt::get(p, "value").is_some() {
        props = Cow::Owned(jt::with(&props, "value", None));
    }
    Ok((props, own.or(dollar).map(Cow::Borrowed)))
}

/// Klaviyo's `$value`, as its guides write it for its onsite script: a number there is
/// the event's value where the call gives none of its own (`own`), and then leaves the
/// properties. Text there (a shop's money string) stays a property. Returns the
/// properties to send and the value taken.
pub fn dollar_value(p: &str, own: bool) -> (Cow<'_, str>, Option<&str>) {
    // A look-up reads the whole text: not for every call, only where a `$` is (the
    // adapter's text is `JSON.stringify`'s, which never escapes one).
    let dollar = if own || !text::has(p, b'$') {
        None
    } else {
        jt::get(p, "$value")
    };
    match dollar.filter(|v| jt::kind(v) == Kind::Num) {
        Some(v) => (Cow::Owned(jt::with(p, "$value", None)), Some(v)),
        None => (Cow::Borrowed(p), None),
    }
}

fn product(p: &str) -> Result<()> {
    id_like(p, "ProductID")?;
    required_text(p, "ProductName")
}

/// A property that must be a non-blank string.
fn required_text(p: &str, key: &str) -> Result<()> {
    validate::non_empty_then(key, jt::get(p, key), validate::any_text)
}

/// An id: a number, or a non-empty string.
fn id_like(p: &str, key: &str) -> Result<()> {
    let id = jt::get(p, key);
    let ok = match id.map(jt::kind) {
        Some(Kind::Num) => true,
        Some(Kind::Str) => id != Some("\"\""),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            key,
            "is required (a string or number)",
        ))
    }
}

fn optional_number<'a>(p: &'a str, key: &str) -> Result<Option<&'a str>> {
    match validate::given(p, key) {
        Some(v) => validate::number(key, v).map(Some),
        None => Ok(None),
    }
}

fn optional_strings(p: &str, keys: &[&str]) -> Result<()> {
    for key in keys {
        if !matches!(
            jt::get(p, key).map(jt::kind),
            None | Some(Kind::Null | Kind::Str)
        ) {
            return Err(ValidationError::new(key, "must be a string"));
        }
    }
    Ok(())
}

fn list<'a>(p: &'a str, key: &str) -> Result<Option<&'a str>> {
    match jt::get(p, key) {
        Some(v) if jt::kind(v) == Kind::Arr => Ok(Some(v)),
        v if jt::is_absent(v) => Ok(None),
        _ => Err(ValidationError::new(key, "must be a list")),
    }
}

fn list_of_strings(p: &str, key: &str) -> Result<()> {
    let all_strings = list(p, key)?.is_none_or(|l| jt::items(l).all(|i| jt::kind(i) == Kind::Str));
    if all_strings {
        Ok(())
    } else {
        Err(ValidationError::new(key, "must be a list of strings"))
    }
}

#[cfg(test)]
#[path = "ecommerce_tests.rs"]
mod tests;
