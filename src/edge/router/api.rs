//! `/api/*` with the private key: the backend's signed calls (Klaviyo's own routes,
//! orders, list membership) and the page's unsigned `/api/events` path.

use super::*;

/// A request to Klaviyo's private API with the key (never following a redirect).
pub fn private_call(
    cfg: &EdgeConfig,
    key: &str,
    path: &str,
    body: Payload,
    cors: Option<&str>,
) -> Forward {
    let mut url = String::from(&cfg.api_base);
    url.push_str(path);
    let mut auth = String::from("Klaviyo-API-Key ");
    auth.push_str(key);
    Forward {
        url,
        headers: vec![
            ("content-type", JSONAPI.into()),
            ("accept", JSONAPI.into()),
            ("revision", cfg.revision.clone()),
            ("authorization", auth),
        ],
        body,
        cors: cors.map(str::to_string),
        timeout_ms: Some(cfg.upstream_timeout_ms),
    }
}

/// `/api/*` before the body: the private key, then who is asking. A page of the shop
/// (an allowed `Origin`, no signature) may only send to `/api/events`; anyone else must
/// sign, and an unsigned call is refused here, its body unread.
#[inline(never)]
pub(super) fn api_head(
    path: &str,
    head: &Head,
    cfg: &EdgeConfig,
    origin: Option<&str>,
    allowed: Option<&str>,
    own: Option<Own>,
) -> Result<RouteKind, Reply> {
    if cfg.private_key.is_none() {
        return Err(missing("KLAVIYO_PRIVATE_KEY"));
    }
    let signature = head.header("x-klaviyo-edge-signature");
    if signature.is_none() && allowed.is_some() {
        // A page of the shop, trusted only by its Origin (any client can forge it).
        if path != "/api/events" {
            return Err(forbidden_metric());
        }
        return Ok(RouteKind::BrowserEvent);
    }
    if cfg.signing_secret.is_none() {
        return Err(missing("EDGE_SIGNING_SECRET"));
    }
    if auth::present(signature).is_none() {
        return Err(if origin.is_some() {
            forbidden_origin()
        } else {
            unauthorized(AuthError::Missing)
        });
    }
    Ok(RouteKind::Signed { own })
}

/// `/api/events` from a page: only listed metrics, identifiers only (see
/// [`api_rules::browser_event`]); forwarded byte for byte with the private key.
#[inline(never)]
pub(super) fn browser_event(
    head: &Head,
    cfg: &EdgeConfig,
    body: &[u8],
    cors: Option<&str>,
) -> Action {
    let Some(private) = &cfg.private_key else {
        return Action::Reply(missing("KLAVIYO_PRIVATE_KEY"));
    };
    let text = match text(body) {
        Ok(t) => t,
        Err(r) => return Action::Reply(r),
    };
    match api_rules::browser_event(text, head.now_ms, &cfg.browser_metrics) {
        Ok(()) => Action::Forward(private_call(
            cfg,
            private,
            "/api/events",
            stable("/api/events", text, head.now_ms),
            cors,
        )),
        Err(Refusal::Invalid(e)) => Action::Reply(invalid(e)),
        Err(Refusal::Forbidden(e)) => Action::Reply(error(
            403,
            "forbidden",
            "Forbidden.",
            &e.detail,
            Some(&e.pointer),
        )),
    }
}

/// `/api/*` from the backend: the signature over the method, the path and the exact
/// bytes first, then the body's rules.
#[inline(never)]
pub(super) fn signed(
    head: &Head,
    cfg: &EdgeConfig,
    body: &[u8],
    cors: Option<&str>,
    own: Option<&Own>,
) -> Decision {
    let (Some(private), Some(secret)) = (&cfg.private_key, &cfg.signing_secret) else {
        return Action::Reply(missing("EDGE_SIGNING_SECRET")).into();
    };
    // The route below the prefix: a signature does not depend on where the worker is
    // mounted (a router that strips the prefix itself shows the worker the route alone).
    let path = head
        .path
        .strip_prefix(cfg.route_prefix.as_str())
        .unwrap_or(head.path);
    let what = Signed {
        method: head.method,
        path,
        body,
    };
    let verified = auth::verify_backend(
        head.header("x-klaviyo-edge-signature"),
        what,
        secret,
        (head.now_ms / 1000) as i64,
    );
    let (tag, text) = match verified_text(verified, body) {
        Ok(v) => v,
        Err(r) => return Action::Reply(r).into(),
    };
    let action = match own {
        Some(Own::Order(kind)) => match orders::order_job(*kind, text, head.now_ms) {
            Ok(job) => Action::Forward(private_call(
                cfg,
                private,
                "/api/event-bulk-create-jobs",
                Payload::Text(job),
                cors,
            )),
            Err(e) => Action::Reply(invalid(e)),
        },
        Some(Own::DeadLetters(op)) => match dead_letters::ask(*op, text) {
            Ok(ask) => Action::DeadLetters(ask),
            Err(e) => Action::Reply(invalid(e)),
        },
        Some(Own::List(id)) if !lists::list_id_ok(id) => Action::Reply(not_found()),
        Some(Own::List(id)) => match lists::members(text) {
            Ok(members) => Action::AddToList {
                list_id: id.clone(),
                members,
                cors: cors.map(str::to_string),
            },
            Err(e) => Action::Reply(invalid(e)),
        },
        None => {
            let checked = match path {
                "/api/events" => api_rules::create_event(text, head.now_ms),
                "/api/event-bulk-create-jobs" => api_rules::bulk_create_events(text, head.now_ms),
                "/api/profile-import" => api_rules::profile_import(text),
                _ => api_rules::bulk_subscribe_at(text, head.now_ms),
            };
            match checked {
                // As received: queued, its events are made stable by the plan; sent
                // by the worker itself, by `direct`.
                Ok(()) => {
                    Action::Forward(private_call(cfg, private, path, Payload::AsReceived, cors))
                }
                Err(e) => Action::Reply(invalid(e)),
            }
        }
    };
    // A refused body costs its signature nothing: only what is acted on is remembered.
    if matches!(action, Action::Reply(_)) {
        action.into()
    } else {
        Decision {
            action,
            gate: Gate {
                replay_key: Some(tag),
                ..Gate::default()
            },
        }
    }
}

/// A signed call the worker sends itself (no queue bound, or too large for one): its
/// events given the time the worker accepted them, as a queued call's are (see
/// [`stable`]). An order's job (the worker's own text) has its times already.
pub fn direct(action: Action, body: &[u8], cfg: &EdgeConfig, now_ms: u64) -> Action {
    match action {
        Action::Forward(mut f) if f.body == Payload::AsReceived => {
            let path = f.url.strip_prefix(cfg.api_base.as_str());
            if let (Some(path), Ok(text)) = (path, std::str::from_utf8(body)) {
                f.body = stable(path, text, now_ms);
            }
            Action::Forward(f)
        }
        other => other,
    }
}

/// What a call to Klaviyo's `path` forwards: its events given the time the worker
/// accepted them where they have no `time` (a retry after a timeout or a 5xx is then
/// the same event to Klaviyo, as a queued one is), else the bytes as received.
fn stable(path: &str, text: &str, now_ms: u64) -> Payload {
    match crate::edge::stable_time::stable_direct(path, text, now_ms) {
        Some(body) => Payload::Text(body),
        None => Payload::AsReceived,
    }
}

pub(super) fn forbidden_metric() -> Reply {
    error(
        403,
        "forbidden_metric",
        "Forbidden.",
        "browsers may only send the metrics in BROWSER_SERVER_METRICS to /api/events",
        None,
    )
}

/// A profile-import call for one list member (its answer carries the profile id).
pub fn import_request(cfg: &EdgeConfig, body: &str, cors: Option<&str>) -> Option<Forward> {
    let key = cfg.private_key.as_deref()?;
    Some(private_call(
        cfg,
        key,
        "/api/profile-import",
        Payload::Text(body.to_string()),
        cors,
    ))
}

/// The add-to-list call once every member has an id.
pub fn add_to_list_request(
    cfg: &EdgeConfig,
    list_id: &str,
    ids: &[String],
    cors: Option<&str>,
) -> Option<Forward> {
    let key = cfg.private_key.as_deref()?;
    let mut path = String::from("/api/lists/");
    path.push_str(list_id);
    path.push_str("/relationships/profiles");
    Some(private_call(
        cfg,
        key,
        &path,
        Payload::Text(lists::add_to_list_body(ids)),
        cors,
    ))
}

/// After a member's profile-import was answered 2xx: its id, or the 502 to answer
/// when Klaviyo's answer holds none.
pub fn imported_id(answer: &str, cors: Option<&str>) -> Result<String, Reply> {
    lists::profile_id(answer).ok_or_else(|| {
        error(
            502,
            "upstream_unexpected",
            "Klaviyo's answer was not understood.",
            "a profile-import answer carried no profile id",
            None,
        )
        .cors(cors)
    })
}
