//! The e-commerce events Klaviyo's flows and reports expect, with the property names
//! of Klaviyo's own integrations (`ProductID`, `ProductName`, `Price`, ...).

use super::decimal::Decimal;
use super::json::Json;
use super::validate::{self, ValidationError};

type Result<T> = std::result::Result<T, ValidationError>;

/// "Viewed Product": returns the default event value (`Price`).
pub fn viewed_product(p: &Json) -> Result<Option<String>> {
    product(p)?;
    optional_strings(p, &["SKU", "URL", "ImageURL", "Brand"])?;
    list_of_strings(p, "Categories")?;
    optional_number(p, "CompareAtPrice")?;
    Ok(optional_number(p, "Price")?.map(str::to_string))
}

/// "Added to Cart": `Price` required; value is `CartTotal`, else `Price * Quantity`.
pub fn added_to_cart(p: &Json) -> Result<Option<String>> {
    product(p)?;
    let price = optional_number(p, "Price")?
        .ok_or_else(|| ValidationError::new("Price", "is required and must be a number"))?;
    let quantity = optional_number(p, "Quantity")?.unwrap_or("1");
    if quantity.starts_with('-') || Decimal::parse(quantity).is_some_and(Decimal::is_zero) {
        return Err(ValidationError::new(
            "Quantity",
            "must be greater than zero",
        ));
    }
    list_of_strings(p, "ItemNames")?;
    list(p, "Items")?;
    if let Some(total) = optional_number(p, "CartTotal")? {
        return Ok(Some(total.to_string()));
    }
    let value = Decimal::parse(price)
        .zip(Decimal::parse(quantity))
        .and_then(|(a, b)| a.times(b))
        .ok_or_else(|| ValidationError::new("Price", "times Quantity is out of range"))?;
    Ok(Some(value.to_text()))
}

/// "Started Checkout": the `value` property moves to the event's value.
pub fn started_checkout(p: &mut Json) -> Result<Option<String>> {
    optional_strings(p, &["CheckoutURL"])?;
    list_of_strings(p, "ItemNames")?;
    list_of_strings(p, "Categories")?;
    list(p, "Items")?;
    match p.take("value") {
        None | Some(Json::Null) => Ok(None),
        Some(v) => Ok(Some(validate::number("value", &v)?.to_string())),
    }
}

fn product(p: &Json) -> Result<()> {
    match p.get("ProductID") {
        Some(Json::Str(s)) if !s.is_empty() => {}
        Some(Json::Num(_)) => {}
        _ => {
            return Err(ValidationError::new(
                "ProductID",
                "is required (a string or number)",
            ))
        }
    }
    validate::non_empty("ProductName", p.get("ProductName"))?;
    Ok(())
}

fn optional_number<'a>(p: &'a Json, key: &str) -> Result<Option<&'a str>> {
    match p.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => validate::number(key, v).map(Some),
    }
}

fn optional_strings(p: &Json, keys: &[&str]) -> Result<()> {
    for key in keys {
        if !matches!(p.get(key), None | Some(Json::Null | Json::Str(_))) {
            return Err(ValidationError::new(key, "must be a string"));
        }
    }
    Ok(())
}

fn list<'a>(p: &'a Json, key: &str) -> Result<&'a [Json]> {
    match p.get(key) {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Arr(items)) => Ok(items),
        Some(_) => Err(ValidationError::new(key, "must be a list")),
    }
}

fn list_of_strings(p: &Json, key: &str) -> Result<()> {
    if list(p, key)?.iter().all(|i| matches!(i, Json::Str(_))) {
        Ok(())
    } else {
        Err(ValidationError::new(key, "must be a list of strings"))
    }
}
