//! The calls of the API: each checked (the field named on a refusal), then queued with
//! the identity it was made with. The rules of each shape live here; `validate.rs` and
//! `ecommerce.rs` hold those shared with other modules.

use super::*;
use crate::core::identity::{has_any, IDENTIFIERS, OWN_IDENTIFIERS, REACHABLE};

impl Client {
    /// One call as the adapter hands it over: `JSON.stringify([id, time, ...args])`
    /// (or with `?` for an argument JSON could not hold); `now_ms` stands in for a
    /// missing time.
    pub fn call_json(&mut self, op: Op, text: &str, now_ms: u64) -> Result<()> {
        let (parts, checked) = match jt::split_array(text) {
            Some(parts) if parts.len() >= 2 => (parts, true),
            // Not what JSON.stringify makes: check each part, to name the bad argument.
            _ => (item_list(text), false),
        };
        // Our ids have no escapes: borrowed from the text.
        let id = string(parts.first().copied().unwrap_or(""));
        let at = parts
            .get(1)
            .and_then(|t| text::parse_u64(t))
            .unwrap_or(now_ms);
        let args = parts.get(2..).unwrap_or(&[]);
        if checked {
            self.call_checked(op, args, &id, at)
        } else {
            self.call(op, args, &id, at)
        }
    }

    /// One call of the JS API. `args` are its arguments as JSON text (`null` for an
    /// omitted one), `id` a fresh random id (the event's `unique_id` unless the options
    /// give one) and `now_ms` the time of the call.
    pub fn call(&mut self, op: Op, args: &[&str], id: &str, now_ms: u64) -> Result<()> {
        // Each checked alone (a refusal names it), then joined compact into one array
        // and read back as the hot path reads its arguments: one text, one list.
        let mut list = String::from("[");
        for (n, a) in args.iter().enumerate() {
            let a = jt::check(a).map_err(|_| {
                ValidationError::new(
                    op.arg_name(n),
                    "must be plain JSON data (no cycles, functions or BigInt)",
                )
            })?;
            if n > 0 {
                list.push(',');
            }
            list.push_str(&a);
        }
        list.push(']');
        let args = item_list(&list);
        self.call_checked(op, &args, id, now_ms)
    }

    /// [`Client::call`] with arguments already checked and compact (as
    /// [`jt::split_array`] gives them): the hot path reads the text once.
    pub fn call_checked(&mut self, op: Op, args: &[&str], id: &str, now_ms: u64) -> Result<()> {
        let arg = |n: usize| args.get(n).copied().unwrap_or("null");
        // The properties as sent, where the call rewrites them.
        let sent;
        // One call of `event` for all the event calls. After an event call's own
        // arguments the adapter puts the tracker's currency as it was when the call was
        // made (none: left out), so that a saved loading window adopted by another page
        // keeps it. That slot is the currency's for good: a later build that adds after
        // it fills it (`null` for none).
        let (metric, props, opts, value, tracker_currency) = match op {
            Op::Track => {
                let metric = arg(0);
                if jt::kind(metric) != Kind::Str {
                    return Err(ValidationError::new("metric", "must be a string"));
                }
                validate::metric_name("metric", &string(metric))?;
                let props = object(op, args, 1)?;
                let opts = object(op, args, 2)?;
                // Klaviyo's `$value` of the properties, as its onsite script takes it.
                let own = validate::given(opts, "value").is_some();
                let value;
                (sent, value) = ecommerce::dollar_value(props, own);
                (metric, &*sent, opts, value.map(Cow::Borrowed), args.get(3))
            }
            Op::Identify => return self.identify(object(op, args, 0)?, id, now_ms),
            Op::Subscribe => return self.subscribe(object(op, args, 0)?, id, now_ms),
            Op::BackInStock => return self.back_in_stock(object(op, args, 0)?, id, now_ms),
            _ => {
                let props = object(op, args, 0)?;
                let opts = object(op, args, 1)?;
                let (metric, props, value) = match op {
                    Op::ViewedProduct => (
                        "\"Viewed Product\"",
                        props,
                        ecommerce::viewed_product(props)?,
                    ),
                    Op::AddedToCart => {
                        let value;
                        (sent, value) = ecommerce::added_to_cart(props)?;
                        ("\"Added to Cart\"", &*sent, value)
                    }
                    Op::StartedCheckout => {
                        let value;
                        (sent, value) = ecommerce::started_checkout(props)?;
                        ("\"Started Checkout\"", &*sent, value)
                    }
                    Op::ViewedCollection => {
                        ecommerce::viewed_collection(props)?;
                        ("\"Viewed Collection\"", props, None)
                    }
                    Op::SubmittedSearch => {
                        ecommerce::submitted_search(props)?;
                        ("\"Submitted Search\"", props, None)
                    }
                    _ => {
                        ecommerce::active_on_site(props)?;
                        if op == Op::PageView {
                            // Beside Klaviyo's onsite script (`onsite`), which sends its
                            // own for a visitor it knows and none for others: ours only
                            // for one we know and it does not.
                            if jt::get(opts, "onsite").is_some()
                                && !self.identity.known_only_to_us()
                            {
                                return Ok(());
                            }
                            // One page, one Active on Site: not again for the same URL.
                            // The landing page's view, sent at the load with the time it
                            // was shown, is not the page the visitor is on after a route
                            // change: it leaves that one as the last.
                            let url = jt::get(props, "URL").unwrap_or("");
                            if url == self.last_page {
                                return Ok(());
                            }
                            if jt::get(opts, "time").is_none() || self.last_page.is_empty() {
                                self.last_page = url.to_string();
                            }
                        }
                        ("\"Active on Site\"", props, None)
                    }
                };
                (metric, props, opts, value, args.get(2))
            }
        };
        let tracker_currency = tracker_currency.copied();
        self.event(id, now_ms, metric, props, opts, tracker_currency, value)
    }

    /// `identify({ email, phone_number, external_id, first_name, ..., location, properties })`
    pub(super) fn identify(&mut self, attrs: &str, id: &str, now_ms: u64) -> Result<()> {
        if !check_profile(attrs)? {
            return Err(ValidationError::new(
                "profile",
                "needs at least one of email, phone_number, external_id or an attribute",
            ));
        }
        let (profile, attributes) = self.identity.merged(attrs);
        let body = payload::client_profile(&attributes);
        validate::body_size(body.len())?;
        // Identity only grows, so this body says everything a queued one for the same
        // anonymous profile did: send one, not both.
        let mut marker = String::from(r#""anonymous_id":"#);
        jt::write_str(&self.identity.anonymous_id, &mut marker);
        self.queue.drop_superseded(Endpoint::Profiles, &marker);
        // Consent denied: dropped, and the page forgets it too.
        if self.queue.push_body(id, Endpoint::Profiles, body, now_ms) {
            self.identity.take_merged(profile, attributes);
            // Named by identify now, not by a subscription.
            self.identity.provisional &= !has_any(attrs, OWN_IDENTIFIERS);
            self.save_identity();
        }
        Ok(())
    }

    /// `tracker_currency`: what the adapter put after the call's arguments (missing or
    /// `null`: the tracker has none, or an older page saved the call).
    #[allow(clippy::too_many_arguments)] // each is one of the call's parts
    pub(super) fn event(
        &mut self,
        id: &str,
        now_ms: u64,
        metric: &str,
        props: &str,
        opts: &str,
        tracker_currency: Option<&str>,
        default_value: Option<Cow<str>>,
    ) -> Result<()> {
        validate::properties("properties", props)?;
        let value = match validate::given(opts, "value") {
            Some(v) => validate::number("value", v)?,
            None => default_value.as_deref().unwrap_or(""),
        };
        // The call's own currency; else, for a value, the tracker's (`currency`,
        // `setCurrency`): an event without a value has no use for one.
        let currency = match (validate::given(opts, "valueCurrency"), tracker_currency) {
            (Some(c), _) => Some(("valueCurrency", c)),
            (None, Some(c)) if !value.is_empty() && !validate::unset(c) => Some(("currency", c)),
            _ => None,
        };
        // One call of the check for both (inlined once: smaller). The adapter checked
        // the tracker's; only a changed record could hold another there.
        let currency = match currency {
            Some((field, c)) => validate::currency(field, c)?,
            None => String::new(),
        };
        let time_s = match validate::given(opts, "time") {
            None => (now_ms / 1000) as i64,
            Some(t) => event_secs(t)?,
        };
        validate::event_time("time", time_s, now_ms)?;
        let (own_id, without_id);
        let mut props = props;
        // Not [`validate::given`]: a blank one is refused, as the page already returned it.
        let unique_id = match validate::present(opts, "uniqueId") {
            Some(u) => validate::unique_id("uniqueId", u)?,
            // Else Klaviyo's `$event_id`, which then leaves the properties.
            None => match event_id(props) {
                Some(e) => {
                    own_id = e;
                    without_id = jt::with(props, "$event_id", None);
                    props = &without_id;
                    validate::unique_id("$event_id", &own_id)?
                }
                None => {
                    own_id = Cow::Owned(jt::quote(id));
                    &own_id
                }
            },
        };
        let fields = record::event_fields(&Event {
            time_s,
            unique_id,
            value,
            currency: &currency,
            metric,
            properties: props,
        });
        let profile = self.identity.attributes();
        validate::body_size(fields.len() + profile.len() + 400)?;
        self.queue.push_event(id, profile, fields, now_ms);
        Ok(())
    }

    /// `subscribe({ listId, email?, phone_number?, channels: ["email"|"sms"], customSource? })`:
    /// marketing consent for the given channels. Identifiers default to what `identify` said.
    pub(super) fn subscribe(&mut self, a: &str, id: &str, now_ms: u64) -> Result<()> {
        let list_id = validate::non_empty("listId", jt::get(a, "listId"))?;
        let channels = channels(a)?;
        let profile = self.contact(a, IDENTIFIERS)?;
        for &(ch, key) in &[("email", "email"), ("sms", "phone_number")] {
            if channels.contains(&ch) && jt::get(&profile, key).is_none() {
                return Err(ValidationError::new(
                    key,
                    "is required to subscribe to this channel",
                ));
            }
        }
        let source = match validate::given(a, "customSource") {
            None => None,
            s => Some(validate::non_empty("customSource", s)?),
        };
        let body = payload::client_subscription(&list_id, &profile, channels, source.as_deref());
        if self
            .queue
            .push_body(id, Endpoint::Subscriptions, body, now_ms)
        {
            self.named_by(&profile);
        }
        Ok(())
    }

    /// `backInStock({ variantId, email?, phone_number?, channels: ["email"|"sms"] })`
    pub(super) fn back_in_stock(&mut self, a: &str, id: &str, now_ms: u64) -> Result<()> {
        let variant = validate::non_empty("variantId", jt::get(a, "variantId"))?;
        if !is_variant_id(&variant) {
            return Err(ValidationError::new(
                "variantId",
                "must be a catalog variant id like $custom:::$default:::SKU-1",
            ));
        }
        let channels = channels(a)?;
        let profile = self.contact(a, OWN_IDENTIFIERS)?;
        if !has_any(&profile, REACHABLE) {
            return Err(ValidationError::new("email", "or phone_number is required"));
        }
        let body = payload::client_back_in_stock(&variant, &profile, channels);
        if self
            .queue
            .push_body(id, Endpoint::BackInStock, body, now_ms)
        {
            self.named_by(&profile);
        }
        Ok(())
    }

    /// A subscription's email and phone number name a visitor our calls did not name for
    /// good (nobody, an earlier subscription, or only an email click's `_kx` or Klaviyo's
    /// cookie, perhaps another person's), as Klaviyo's signup form identifies the
    /// browser: the calls after it (a cart, a browse) then reach the subscriber's
    /// profile, with the anonymous one's history.
    fn named_by(&mut self, contact: &str) {
        if !self.identity.named_for_good() {
            self.identity.take_contact(contact);
            self.save_identity();
        }
    }

    /// The identifiers for a subscription: given ones (validated) over identified ones;
    /// given ones alone unless `identify` named the visitor (they may be another
    /// person's: a shared device).
    pub(super) fn contact(&self, args: &str, keys: &[&str]) -> Result<String> {
        // Given as blank counts too (an empty form field): that call is not the visitor's
        // own, and its blank is never filled from the device (perhaps another person's).
        let gives = REACHABLE
            .iter()
            .any(|k| validate::present(args, k).is_some());
        // A call that gives an email or phone number goes with those alone unless our
        // own calls named the visitor for good: what names them otherwise (a
        // subscription's name, an email click's `_kx`, Klaviyo's cookie) may be another
        // person on a shared device, and one call never joins two people.
        let mut profile = if gives && !self.identity.named_for_good() {
            String::from("{}")
        } else {
            self.identity.identifiers(keys)
        };
        for &(key, check) in &[
            ("email", validate::email as validate::Rule),
            ("phone_number", validate::phone),
        ] {
            match validate::present(args, key) {
                Some(v) if !validate::unset(v) => {
                    validate::non_empty_then(key, Some(v), check)?;
                    profile = jt::with(&profile, key, Some(v));
                }
                // Blank: left empty, for the channel's check to name.
                Some(_) => profile = jt::with(&profile, key, None),
                None => {}
            }
        }
        Ok(profile)
    }
}

/// Klaviyo's `$event_id` of an event's properties, as its onsite script takes it for the
/// event's `unique_id`: a string but `""`, or a number as its text (as JS's `String`
/// writes it, so the page returns the same id: `eventId` in `js/index.js`). Quoted.
fn event_id(props: &str) -> Option<Cow<'_, str>> {
    // A look-up reads the whole text: not for every call, only where a `$` is (the
    // adapter's text is `JSON.stringify`'s, which never escapes one).
    if !text::has(props, b'$') {
        return None;
    }
    let v = jt::get(props, "$event_id")?;
    match jt::kind(v) {
        // (A number's text has nothing to escape.)
        Kind::Num => Some(Cow::Owned(jt::quote(v))),
        Kind::Str if v != "\"\"" => Some(Cow::Borrowed(v)),
        _ => None,
    }
}

/// The elements of an array, as a list (pushed one by one: `collect`'s generic
/// growth code is larger).
fn item_list(arr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for it in jt::items(arr) {
        out.push(it);
    }
    out
}

/// The text of a checked string literal, decoded only when it has escapes.
pub(super) fn string(raw: &str) -> std::borrow::Cow<'_, str> {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
    if text::has(inner, b'\\') {
        std::borrow::Cow::Owned(jt::unescape(raw).unwrap_or_default())
    } else {
        std::borrow::Cow::Borrowed(inner)
    }
}

/// Argument `n`, which must be an object; `null` or omitted reads as `{}`.
pub(super) fn object<'a>(op: Op, args: &[&'a str], n: usize) -> Result<&'a str> {
    let raw = args.get(n).copied().unwrap_or("null");
    match jt::kind(raw) {
        Kind::Obj => Ok(raw),
        Kind::Null => Ok("{}"),
        _ => Err(ValidationError::new(op.arg_name(n), "must be an object")),
    }
}

/// `options.time`: a Date (as ISO text), an ISO 8601 string, or epoch milliseconds.
pub(super) fn event_secs(raw: &str) -> Result<i64> {
    match jt::kind(raw) {
        Kind::Str => time::secs_from_iso(&string(raw)).ok_or_else(|| {
            ValidationError::new(
                "time",
                "must be a Date, epoch milliseconds or an ISO 8601 time with offset",
            )
        }),
        Kind::Num => text::parse_i64(raw)
            .map(|ms| ms.div_euclid(1000))
            .ok_or_else(|| ValidationError::new("time", "must be whole epoch milliseconds")),
        _ => Err(ValidationError::new(
            "time",
            "must be a Date, epoch milliseconds or an ISO 8601 string",
        )),
    }
}

/// `a:::b:::c` with three non-empty parts, as Klaviyo's catalog variant ids are.
pub(super) fn is_variant_id(v: &str) -> bool {
    fn cut(s: &str) -> Option<(usize, &str)> {
        text::find(s, ":::").map(|i| (i, &s[i + 3..]))
    }
    match cut(v).and_then(|(a, rest)| cut(rest).map(|(b, c)| (a, b, c))) {
        Some((a, b, c)) => a > 0 && b > 0 && !c.is_empty() && cut(c).is_none(),
        None => false,
    }
}

/// The channels named, in the order given, without repeats: one of four fixed lists
/// (no list to build).
pub(super) fn channels(a: &str) -> Result<&'static [&'static str]> {
    let list = jt::get(a, "channels").filter(|l| jt::kind(l) == Kind::Arr);
    let Some(list) = list else {
        return Err(ValidationError::new(
            "channels",
            "must be a list like [\"email\"]",
        ));
    };
    // Bit 1 email, bit 2 sms; `first` is the bit named first.
    let (mut seen, mut first) = (0u8, 0u8);
    for it in jt::items(list) {
        // Read without a copy unless escaped (no other JSON value reads as a channel).
        let name = string(it);
        let bit = match name {
            s if s.eq_ignore_ascii_case("email") => 1,
            s if s.eq_ignore_ascii_case("sms") => 2,
            _ => {
                return Err(ValidationError::new(
                    "channels",
                    "may only contain \"email\" and \"sms\"",
                ))
            }
        };
        if seen == 0 {
            first = bit;
        }
        seen |= bit;
    }
    Ok(match (seen, first) {
        (0, _) => {
            return Err(ValidationError::new(
                "channels",
                "must name at least one channel",
            ))
        }
        (1, _) => &["email"],
        (2, _) => &["sms"],
        (_, 1) => &["email", "sms"],
        _ => &["sms", "email"],
    })
}

/// Checks every key `identify` got against Klaviyo's profile attributes; true when
/// one of them has a value (not `null`).
pub(super) fn check_profile(attrs: &str) -> Result<bool> {
    let mut any = false;
    for (k, v) in jt::entries(attrs) {
        let key = string(k);
        let Some(known) = PROFILE_KEYS.iter().find(|p| **p == key) else {
            return Err(ValidationError::new(
                &key,
                "is not a Klaviyo profile attribute (put custom data in properties)",
            ));
        };
        if validate::unset(v) {
            continue;
        }
        any = true;
        match *known {
            "email" => validate::non_empty_then("email", Some(v), validate::email)?,
            "phone_number" => validate::non_empty_then("phone_number", Some(v), validate::phone)?,
            "properties" => validate::properties("properties", v)?,
            "location" => check_location(v)?,
            key => validate::non_empty_then(key, Some(v), validate::any_text)?,
        }
    }
    Ok(any)
}

pub(super) fn check_location(v: &str) -> Result<()> {
    if jt::kind(v) != Kind::Obj {
        return Err(ValidationError::new("location", "must be an object"));
    }
    for (k, v) in jt::entries(v) {
        let key = string(k);
        if !LOCATION_KEYS.contains(&key.as_ref()) {
            return Err(ValidationError::new(
                "location",
                "has an unknown key (see Klaviyo's ProfileLocation)",
            ));
        }
        let ok = matches!(
            (key.as_ref(), jt::kind(v)),
            (_, Kind::Str | Kind::Null) | ("latitude" | "longitude", Kind::Num)
        );
        if !ok {
            return Err(ValidationError::new(
                "location",
                "values must be strings (latitude/longitude may be numbers)",
            ));
        }
    }
    Ok(())
}
