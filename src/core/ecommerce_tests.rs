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
    assert_eq!(added_to_cart(base).unwrap().as_deref(), Some("59.97"));
    let total = r#"{"ProductID":"1","ProductName":"P","Price":1,"CartTotal":42.5}"#;
    assert_eq!(added_to_cart(total).unwrap().as_deref(), Some("42.5"));
    let one = r#"{"ProductID":"1","ProductName":"P","Price":2.5}"#;
    assert_eq!(added_to_cart(one).unwrap().as_deref(), Some("2.5"));
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
fn started_checkout_moves_value_out_of_the_properties() {
    let (props, value) =
        started_checkout(r#"{"CheckoutURL":"u","value":19.98,"ItemNames":["a"]}"#).unwrap();
    assert_eq!(props, r#"{"CheckoutURL":"u","ItemNames":["a"]}"#);
    assert_eq!(value.as_deref(), Some("19.98"));
    assert_eq!(started_checkout("{}").unwrap(), (Cow::Borrowed("{}"), None));
    assert_eq!(field(started_checkout(r#"{"value":"x"}"#)), "value");
    assert_eq!(field(started_checkout(r#"{"Items":{}}"#)), "Items");
}
