//! `/webhooks/klaviyo`: Klaviyo's signed system webhooks, verified, answered, and
//! forwarded signed to `WEBHOOK_FORWARD_URL`.

use super::*;

/// `/webhooks/klaviyo` before the body: the secret is set, and the signature, its
/// timestamp and the webhook id were all sent.
#[inline(never)]
pub(super) fn webhook_head(head: &Head, cfg: &EdgeConfig) -> Result<RouteKind, Reply> {
    if cfg.webhook_secret.is_none() {
        return Err(missing("KLAVIYO_WEBHOOK_SECRET"));
    }
    if auth::present(head.header("klaviyo-signature")).is_none()
        || auth::present(head.header("klaviyo-timestamp")).is_none()
    {
        return Err(unauthorized(AuthError::Missing));
    }
    if auth::present(head.header("klaviyo-webhook-id")).is_none() {
        return Err(webhook_id_mismatch());
    }
    Ok(RouteKind::Webhook)
}

pub(super) fn webhook_id_mismatch() -> Reply {
    error(
        401,
        "unauthorized",
        "Unauthorized.",
        "the Klaviyo-Webhook-Id header and meta.klaviyo_webhook_id must both be sent, and match",
        None,
    )
}

/// A webhook body as far as the check reads it: `meta.klaviyo_webhook_id`.
#[derive(serde::Deserialize)]
pub(super) struct WebhookEnvelope {
    meta: Option<WebhookMeta>,
}

#[derive(serde::Deserialize)]
pub(super) struct WebhookMeta {
    klaviyo_webhook_id: Option<String>,
}

/// `/webhooks/klaviyo`: Klaviyo's system webhooks, verified as Klaviyo signs them, and
/// bound to their id: the body's `meta.klaviyo_webhook_id` must equal the header.
#[inline(never)]
pub(super) fn webhook(head: &Head, cfg: &EdgeConfig, body: &[u8]) -> Decision {
    let Some(secret) = &cfg.webhook_secret else {
        return Action::Reply(missing("KLAVIYO_WEBHOOK_SECRET")).into();
    };
    let verified = auth::verify_webhook(
        head.header("klaviyo-signature"),
        head.header("klaviyo-timestamp"),
        body,
        secret,
        (head.now_ms / 1000) as i64,
    );
    let (tag, text) = match verified_text(verified, body) {
        Ok(v) => v,
        Err(r) => return Action::Reply(r).into(),
    };
    if let Err(e) = bodies::check(text) {
        return Action::Reply(invalid(e)).into();
    }
    // JSON, signed by Klaviyo, but maybe not of the shape that carries an id.
    let id = bodies::parse_checked::<WebhookEnvelope>(text)
        .ok()
        .and_then(|envelope| envelope.meta)
        .and_then(|m| m.klaviyo_webhook_id);
    if id.is_none() || id.as_deref() != head.header("klaviyo-webhook-id") {
        return Action::Reply(webhook_id_mismatch()).into();
    }
    let reply = reply::ok(200, &[]);
    let action = match &cfg.webhook_forward_url {
        None => Action::Reply(reply),
        Some(url) => {
            let Some(signing) = &cfg.signing_secret else {
                return Action::Reply(missing("EDGE_SIGNING_SECRET")).into();
            };
            // Signed with the key derived for forwards: the receiver can trust it, and
            // it authorises no backend call.
            let signature = auth::sign_forward(body, signing, (head.now_ms / 1000) as i64);
            Action::ReplyAndNotify {
                reply,
                notify: Forward {
                    url: url.clone(),
                    headers: vec![
                        ("content-type", "application/json".into()),
                        ("x-klaviyo-edge-signature", signature),
                    ],
                    body: Payload::AsReceived,
                    cors: None,
                    timeout_ms: Some(cfg.upstream_timeout_ms),
                },
            }
        }
    };
    Decision {
        action,
        gate: Gate {
            replay_key: Some(tag),
            ..Gate::default()
        },
    }
}
