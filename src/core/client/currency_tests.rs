//! The tracker's currency (`currency`, `setCurrency`): the adapter puts it after an
//! event call's own arguments, as it was when the call was made.

use super::*;

/// The `value` and `value_currency` of the one event `args` (the call's JSON text, as
/// the adapter hands it over, with no time: made now) makes.
fn sent(op: Op, args: &str) -> (Json, Option<String>) {
    let mut p = Page::new();
    p.c.call_json(op, args, NOW).unwrap();
    let a = attrs(&p.send());
    let currency = a.get("value_currency").and_then(Json::as_str);
    (a["value"].clone(), currency.map(str::to_string))
}

#[test]
fn an_event_with_a_value_and_no_currency_of_its_own_takes_the_trackers() {
    let product = r#"{"ProductID":"1","ProductName":"P","Price":9.99}"#;
    let (value, currency) = sent(
        Op::ViewedProduct,
        &format!(r#"["id-9",{NOW},{product},null,"eur"]"#),
    );
    assert_eq!((value, currency.as_deref()), (num("9.99"), Some("EUR")));
    let (_, currency) = sent(
        Op::Track,
        &format!(r#"["id-9",{NOW},"Ordered",null,{{"value":5}},"GBP"]"#),
    );
    assert_eq!(currency.as_deref(), Some("GBP"), "track's value option");
    let checkout = r#"{"$value":19.98,"CheckoutURL":"https://shop.example/c"}"#;
    let (_, currency) = sent(
        Op::StartedCheckout,
        &format!(r#"["id-9",{NOW},{checkout},{{}},"JPY"]"#),
    );
    assert_eq!(currency.as_deref(), Some("JPY"), "the guide's $value");
}

#[test]
fn the_calls_own_currency_wins_and_an_event_without_a_value_takes_none() {
    let own = r#"["id-9",null,"Ordered",null,{"value":5,"valueCurrency":"usd"},"EUR"]"#;
    assert_eq!(sent(Op::Track, own).1.as_deref(), Some("USD"));
    // No value: no currency, whatever the tracker's.
    let none = r#"["id-9",null,"Browsed",{"n":1},null,"EUR"]"#;
    assert_eq!(sent(Op::Track, none), (Json::Null, None));
    let search = r#"["id-9",null,{"SearchTerm":"tee"},null,"EUR"]"#;
    assert_eq!(sent(Op::SubmittedSearch, search).1, None);
    // A blank option of the call's own is not given: the tracker's goes.
    let blank = r#"["id-9",null,"Ordered",null,{"value":5,"valueCurrency":" "},"EUR"]"#;
    assert_eq!(sent(Op::Track, blank).1.as_deref(), Some("EUR"));
    // None set (null, or a call from before the setting existed): as ever.
    for args in [
        r#"["id-9",null,"Ordered",null,{"value":5},null]"#,
        r#"["id-9",null,"Ordered",null,{"value":5}]"#,
    ] {
        assert_eq!(sent(Op::Track, args).1, None, "{args}");
    }
}

#[test]
fn the_slot_after_the_arguments_is_the_currencys_and_only_a_changed_record_holds_no_code_there() {
    // What a later build adds goes after the slot: this core sends the call as ever.
    let later = r#"["id-9",null,"M",null,{"value":1},null,{"v":2}]"#;
    assert_eq!(sent(Op::Track, later), (num("1"), None));
    let later = r#"["id-9",null,"M",null,{"value":1},"sek",{"v":2}]"#;
    assert_eq!(sent(Op::Track, later).1.as_deref(), Some("SEK"));
    // The adapter checks the code before it puts it there: anything else is refused by
    // name, as the call's own would be.
    let mut p = Page::new();
    let e =
        p.c.call_json(
            Op::Track,
            r#"["id-9",null,"M",null,{"value":1},"EURO"]"#,
            NOW,
        )
        .unwrap_err();
    assert_eq!(
        e.message("track"),
        "track: currency must be a three-letter ISO 4217 code, like USD"
    );
}

#[test]
fn an_adopted_loading_window_keeps_the_currency_its_page_had() {
    let key = "klaviyo:AbC123:pre:page-1";
    let saved = NOW - EARLY_STALE_MS - 5_000;
    let product = r#"{"ProductID":"1","ProductName":"P","Price":12}"#;
    let value = super::early_record(
        saved,
        &[
            (
                Op::ViewedProduct as u32,
                &format!(r#"["early-1",{saved},{product},null,"SEK"]"#),
            ),
            (
                Op::ViewedProduct as u32,
                &format!(r#"["early-2",{saved},{product},null]"#),
            ),
        ],
    );
    let mut p = Page::new();
    p.c.adopt_early(key, &value, NOW);
    p.end_task();
    let t = p.c.poll_transmit(NOW, ALL).expect("sent");
    let events = at(&parse(&t), &["data", "attributes", "events", "data"]).clone();
    let currencies: Vec<_> = (0..2)
        .map(|i| events[i]["attributes"].get("value_currency").cloned())
        .collect();
    assert_eq!(currencies, [Some(Json::from("SEK")), None]);
}
