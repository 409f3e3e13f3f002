//! The rules of `POST /api/profile-subscription-bulk-create-jobs`: the spec's shape of a
//! subscription job (profiles, their channels, each channel's consent) and the checks
//! Klaviyo makes of it (an identifier for each profile, the address its channel needs,
//! `consented_at` only for a historical import, and then in the past).

use super::*;

/// `POST /api/profile-subscription-bulk-create-jobs` (`SubscriptionCreateJobCreateQuery`):
/// 1 to 1000 profiles, each with an email, a phone number or its `id`, and its
/// `subscriptions`, typed as the spec's `SubscriptionChannels`: each channel's parameters
/// need `consent` `"SUBSCRIBED"` (the one value Klaviyo takes), and, unless the profile
/// is looked up by its `id`, email marketing needs the profile's `email`, and sms and
/// whatsapp its `phone_number`. `consented_at` is for a historical
/// import alone: refused without `historical_import: true`, and with it required in
/// every channel's parameters. It is not checked against a clock here: see
/// [`bulk_subscribe_at`].
pub fn bulk_subscribe(text: &str) -> Result<(), Invalid> {
    subscribe_rules(text, None)
}

/// [`bulk_subscribe`], and each `consented_at` in the past at `now_ms` (Klaviyo refuses
/// a historical import's consent given later than it receives the job).
pub fn bulk_subscribe_at(text: &str, now_ms: u64) -> Result<(), Invalid> {
    subscribe_rules(text, Some(now_ms))
}

fn subscribe_rules(text: &str, now_ms: Option<u64>) -> Result<(), Invalid> {
    let body: SubscriptionJob = bodies::parse(text)?;
    let list_at = "/data/attributes/profiles/data";
    let job = &body.data.attributes;
    let historical = job.historical_import == Some(true);
    let profiles = &job.profiles.data;
    if profiles.total() == 0 || profiles.total() > MAX_BULK {
        return Err(Invalid::new(list_at, "must hold 1 to 1000 profiles"));
    }
    for (i, p) in profiles.kept().iter().enumerate() {
        let mut attrs_at = at_index(list_at, i);
        attrs_at.push_str("/attributes");
        let a = &p.attributes;
        let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        // Looked up by its `id`, the profile needs no address here (the spec).
        let by_id = p.id.as_deref().is_some_and(|id| !text::is_blank(id));
        if !by_id && !has(&a.email) && !has(&a.phone_number) {
            return Err(needs_identifier(&attrs_at, &["email", "phone_number"]));
        }
        if let Some(e) = &a.email {
            rule(&attrs_at, validate::email("email", e))?;
        }
        if let Some(n) = &a.phone_number {
            rule(&attrs_at, validate::phone("phone_number", n))?;
        }
        let s = &a.subscriptions;
        // The channel's address is the profile's: Klaviyo has nothing to subscribe else,
        // unless it looks the profile up by its `id`. An email channel with no marketing
        // consent (open tracking alone, or nothing) subscribes no address.
        let needs = [
            (
                s.email.as_ref().is_some_and(|c| c.marketing.is_some()),
                &a.email,
                "email",
                "is required to subscribe on the email channel",
            ),
            (
                s.sms.is_some(),
                &a.phone_number,
                "phone_number",
                "is required to subscribe on the sms channel",
            ),
            (
                s.whatsapp.is_some(),
                &a.phone_number,
                "phone_number",
                "is required to subscribe on the whatsapp channel",
            ),
        ];
        for (channel, address, name, detail) in needs {
            if channel && !by_id && !has(address) {
                return Err(Invalid::new(&at(&attrs_at, name), detail));
            }
        }
        let [sms_marketing, sms_transactional] = PhoneChannel::parameters(&s.sms);
        let [whatsapp_marketing, whatsapp_transactional] = PhoneChannel::parameters(&s.whatsapp);
        let parameters = [
            (
                "email/marketing",
                s.email.as_ref().and_then(|c| c.marketing.as_ref()),
            ),
            ("sms/marketing", sms_marketing),
            ("sms/transactional", sms_transactional),
            ("whatsapp/marketing", whatsapp_marketing),
            ("whatsapp/transactional", whatsapp_transactional),
            ("push/marketing", s.push.as_ref().map(|c| &c.marketing)),
        ];
        // A historical import's consent time, in each channel that takes one: the spec
        // reads both ways ("required", "for each profile"), and a 400 now is loud where
        // Klaviyo's refusal of a queued job would be a dead letter.
        for (channel, params) in parameters {
            let Some(params) = params else { continue };
            let mut consented_at = attrs_at.clone();
            consented_at.push_str("/subscriptions/");
            consented_at.push_str(channel);
            consented_at.push_str("/consented_at");
            consent_time(params, &consented_at, historical, now_ms)?;
        }
    }
    Ok(())
}

/// A channel's `consented_at`: given exactly when the job is a historical import, and
/// then in the past (when the time is known).
fn consent_time(
    params: &SubscriptionParameters,
    pointer: &str,
    historical: bool,
    now_ms: Option<u64>,
) -> Result<(), Invalid> {
    match (&params.consented_at, historical) {
        (Some(_), false) => Err(Invalid::new(
            pointer,
            "is allowed only when historical_import is true",
        )),
        (None, true) => Err(Invalid::new(
            pointer,
            "is required when historical_import is true",
        )),
        (Some(DateTime(secs)), true) => match now_ms {
            Some(now) if *secs > (now / 1000) as i64 => {
                Err(Invalid::new(pointer, "must be in the past"))
            }
            _ => Ok(()),
        },
        (None, false) => Ok(()),
    }
}

/// `SubscriptionCreateJobCreateQuery` (`POST /api/profile-subscription-bulk-create-jobs`).
#[derive(Deserialize)]
struct SubscriptionJob {
    data: SubscriptionJobResource,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionJobResource {
    #[serde(rename = "type")]
    _type: SubscriptionJobType,
    attributes: SubscriptionJobAttributes,
    #[serde(default)]
    relationships: NotNull<SubscriptionJobRelationships>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionJobAttributes {
    custom_source: Option<String>,
    historical_import: Option<bool>,
    profiles: DataList<SubscriptionProfile>,
}

/// `ProfileSubscriptionCreateQueryResourceObject`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionProfile {
    #[serde(rename = "type")]
    _type: ProfileType,
    id: Option<String>,
    attributes: SubscriptionProfileAttributes,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionProfileAttributes {
    email: Option<String>,
    phone_number: Option<String>,
    subscriptions: SubscriptionChannels,
    age_gated_date_of_birth: Option<Checked<String>>,
}

/// `SubscriptionChannels`: no channel is required, and a null one is none.
#[derive(Deserialize)]
struct SubscriptionChannels {
    email: Option<EmailChannel>,
    sms: Option<PhoneChannel>,
    whatsapp: Option<PhoneChannel>,
    push: Option<PushChannel>,
}

/// `EmailSubscriptionParameters`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct EmailChannel {
    marketing: Option<SubscriptionParameters>,
    open_tracking: Option<Checked<OpenTracking>>,
}

/// `SMSSubscriptionParameters` and `WhatsAppSubscriptionParameters`.
#[derive(Deserialize)]
struct PhoneChannel {
    marketing: Option<SubscriptionParameters>,
    transactional: Option<SubscriptionParameters>,
}

impl PhoneChannel {
    /// Its `marketing` and `transactional` parameters, those given.
    fn parameters(c: &Option<PhoneChannel>) -> [Option<&SubscriptionParameters>; 2] {
        c.as_ref()
            .map(|c| [c.marketing.as_ref(), c.transactional.as_ref()])
            .unwrap_or_default()
    }
}

/// `PushSubscriptionParameters`: `marketing` is required (and not nullable).
#[derive(Deserialize)]
#[allow(dead_code)]
struct PushChannel {
    marketing: SubscriptionParameters,
    tokens: Option<Checked<Vec<Checked<PushToken>>>>,
    anonymous_id: Option<Checked<String>>,
}

/// `SubscriptionParameters`: `consent` is required and only `"SUBSCRIBED"` is taken;
/// `consented_at` belongs to a historical import alone (see [`bulk_subscribe`]).
#[derive(Deserialize)]
struct SubscriptionParameters {
    #[serde(rename = "consent")]
    _consent: Subscribed,
    consented_at: Option<DateTime>,
}

/// `OpenTrackingSubscriptionParameters`.
#[derive(Deserialize)]
struct OpenTracking {
    #[serde(rename = "consent")]
    _consent: Subscribed,
}

/// `PushTokenEntry`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct PushToken {
    token: String,
    platform: PushPlatform,
    vendor: PushVendor,
    enablement_status: Option<PushEnablement>,
    background: Option<PushBackground>,
    device_metadata: Option<AnyObject>,
}

/// A `format: date-time` member: an ISO 8601 date-time with its offset (a date alone
/// would be midnight UTC), read as UTC seconds.
struct DateTime(i64);

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Cow<'de, str> = Deserialize::deserialize(d)?;
        time::secs_from_iso_date_time(&s)
            .map(DateTime)
            .ok_or_else(|| serde::de::Error::custom("must be an ISO 8601 date-time with offset"))
    }
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SubscriptionJobRelationships {
    #[serde(default)]
    list: NotNull<ListRef>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ListRef {
    data: ListResource,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ListResource {
    #[serde(rename = "type")]
    _type: ListType,
    id: String,
}
