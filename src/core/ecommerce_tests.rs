use super::*;

fn field(r: Result<impl std::fmt::Debug>) -> String {
    r.unwrap_err().field.clone()
}

#[test]
fn viewed_product_needs_id_and_name_and_defaults_value_to_price() {
    let p = r#"{"ProductID":"1","ProductName":"Pooh","Price":9.99,"Categories":["Kids"]}"#;
    assert_eq!(viewed_product(p).unwrap().as_deref(), Some("9.99"));
    assert_eq!(
        viewed_product(r#"{"ProductID":7,"ProductName":"P"}"#).unwrap(),
        None
    );
    assert_eq!(field(viewed_product(r#"{"ProductName":"P"}"#)), "ProductID");
    assert_eq!(
        field(viewed_product(r#"{"ProductID":"","ProductName":"P"}"#)),
        "ProductID"
    );
    assert_eq!(
        field(viewed_product(r#"{"ProductID":"1","ProductName":" "}"#)),
        "ProductName"
    );
    assert_eq!(
        field(viewed_product(
            r#"{"ProductID":"1","ProductName":"P","Categories":[1]}"#
        )),
        "Categories"
    );
    assert_eq!(
        field(viewed_product(
            r#"{"ProductID":"1","ProductName":"P","URL":5}"#
        )),
        "URL"
    );
}

#[test]
fn added_to_cart_multiplies_exactly_or_takes_cart_total() {
    let base = r#"{"ProductID":"1","ProductName":"P","Price":19.99,"Quantity":3}"#;
    assert_eq!(added_to_cart(base).unwrap().1.as_deref(), Some("59.97"));
    let total = r#"{"ProductID":"1","ProductName":"P","Price":1,"CartTotal":42.5}"#;
    assert_eq!(added_to_cart(total).unwrap().1.as_deref(), Some("42.5"));
    let one = r#"{"ProductID":"1","ProductName":"P","Price":2.5}"#;
    assert_eq!(added_to_cart(one).unwrap().1.as_deref(), Some("2.5"));
    assert_eq!(
        field(added_to_cart(r#"{"ProductID":"1","ProductName":"P"}"#)),
        "Price"
    );
    for q in ["0", "-1", "0e-2147483647"] {
        let p = format!(r#"{{"ProductID":"1","ProductName":"P","Price":1,"Quantity":{q}}}"#);
        assert_eq!(field(added_to_cart(&p)), "Quantity", "{q}");
    }
}

#[test]
fn added_to_cart_in_our_shape_goes_under_the_guides_names() {
    // Klaviyo's abandoned-cart templates read `AddedItemProductName`, `AddedItemImageURL`
    // ...: the item's members take those names, the cart's stay, values as given.
    let ours = r#"{"ProductID":"1","ProductName":"Tee","Price":19.990,"Quantity":3,"SKU":"T-1","URL":"u","ImageURL":"i","Categories":["Tops"],"Brand":"Acme","CompareAtPrice":25,"CartTotal":84.97,"ItemNames":["Tee","Cap"],"CheckoutURL":"c","Items":[{"ProductID":"1"}],"Gift":true}"#;
    let (props, value) = added_to_cart(ours).unwrap();
    assert_eq!(
        props,
        r#"{"AddedItemProductID":"1","AddedItemProductName":"Tee","AddedItemPrice":19.990,"AddedItemQuantity":3,"AddedItemSKU":"T-1","AddedItemURL":"u","AddedItemImageURL":"i","AddedItemCategories":["Tops"],"AddedItemBrand":"Acme","AddedItemCompareAtPrice":25,"CartTotal":84.97,"ItemNames":["Tee","Cap"],"CheckoutURL":"c","Items":[{"ProductID":"1"}],"Gift":true}"#
    );
    assert_eq!(value.as_deref(), Some("84.97"));
    // A name written with an escape is the same name.
    let (props, _) =
        added_to_cart(r#"{"\u0050roductID":"1","ProductName":"P","Price":1}"#).unwrap();
    assert_eq!(
        props,
        r#"{"AddedItem\u0050roductID":"1","AddedItemProductName":"P","AddedItemPrice":1}"#
    );
    // A member of ours not given (null, blank) is left out, and one the page gave in the
    // guide's name beside ours is ours to fill: each name once (the edge worker refuses a
    // duplicate key, and Klaviyo keeps the last).
    let (props, _) = added_to_cart(
        r#"{"ProductID":"7","AddedItemProductID":null,"ProductName":"Tee","AddedItemProductName":"Old","Price":5,"SKU":null,"AddedItemSKU":"T-1","URL":" ","AddedItemURL":"u"}"#,
    )
    .unwrap();
    assert_eq!(
        props,
        r#"{"AddedItemProductID":"7","AddedItemProductName":"Tee","AddedItemPrice":5,"AddedItemSKU":"T-1","AddedItemURL":"u"}"#
    );
    // The guide's shape goes as given.
    let guide =
        r#"{"AddedItemProductID":"1","AddedItemProductName":"P","AddedItemPrice":1,"SKU":"x"}"#;
    assert_eq!(added_to_cart(guide).unwrap().0, guide);
}

#[test]
fn started_checkout_takes_the_guides_dollar_value_where_no_value() {
    let (props, value) =
        started_checkout(r#"{"$value":29.98,"CheckoutURL":"u","$event_id":"c-1"}"#).unwrap();
    assert_eq!(props, r#"{"CheckoutURL":"u","$event_id":"c-1"}"#);
    assert_eq!(value.as_deref(), Some("29.98"));
    // `value` wins; `$value` then stays a property.
    let (props, value) = started_checkout(r#"{"$value":1,"value":2}"#).unwrap();
    assert_eq!(props, r#"{"$value":1}"#);
    assert_eq!(value.as_deref(), Some("2"));
    // Not a number (Shopify's money strings, an empty template value): a property, as
    // before; and `value: null` is not given.
    for text in [r#""29.98""#, r#""""#, "null"] {
        let p = format!(r#"{{"$value":{text}}}"#);
        let (props, value) = started_checkout(&p).unwrap();
        assert_eq!((&*props, value), (&*p, None), "{text}");
    }
    let (props, value) = started_checkout(r#"{"value":null,"$value":29.98,"x":1}"#).unwrap();
    assert_eq!(props, r#"{"x":1}"#);
    assert_eq!(value.as_deref(), Some("29.98"));
}

#[test]
fn started_checkout_moves_value_out_of_the_properties() {
    let (props, value) =
        started_checkout(r#"{"CheckoutURL":"u","value":19.98,"ItemNames":["a"]}"#).unwrap();
    assert_eq!(props, r#"{"CheckoutURL":"u","ItemNames":["a"]}"#);
    assert_eq!(value.as_deref(), Some("19.98"));
    assert_eq!(started_checkout("{}").unwrap(), (Cow::Borrowed("{}"), None));
    assert_eq!(field(started_checkout(r#"{"value":"x"}"#)), "value");
    assert_eq!(field(started_checkout(r#"{"Items":{}}"#)), "Items");
}

#[test]
fn started_checkout_refuses_a_dollar_value_json_cannot_hold() {
    // `startedCheckout({ $value: NaN })`: the adapter writes `String(NaN)` where JSON
    // would write `null` ("not given"); refused by name, as `value: NaN` is, also
    // where `value` is given and `$value` would stay a property.
    for text in ["NaN", "Infinity", "-Infinity", "Invalid Date"] {
        for p in [
            format!(r#"{{"$value":"{text}","CheckoutURL":"u"}}"#),
            format!(r#"{{"value":5,"$value":"{text}"}}"#),
        ] {
            let err = started_checkout(&p).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.reason),
                ("$value", "must be a finite number"),
                "{p}"
            );
        }
    }
    // Other text stays a property: a money string, or a word that only starts the same.
    for text in ["NaN €", "Infinity Pool", "nan"] {
        let p = format!(r#"{{"$value":"{text}"}}"#);
        assert_eq!(started_checkout(&p).unwrap(), (Cow::Borrowed(&*p), None));
    }
}
