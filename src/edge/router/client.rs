//! `/client/*`: the browser package's first-party proxy (public key only): the head
//! (company, origin, bots), the body (checked, the visitor's additions), the mark on the
//! answer.

use super::*;

#[inline(never)]
pub(super) fn preflight(allowed: Option<&str>, known: bool) -> Reply {
    match allowed {
        Some(o) if known => Reply::empty(204)
            .header("access-control-allow-origin", o)
            .header("access-control-allow-methods", "POST, OPTIONS")
            .header("access-control-allow-headers", "content-type, revision")
            .header("access-control-max-age", "600")
            .header("vary", "Origin"),
        Some(_) => not_found(),
        None => forbidden_origin(),
    }
}

/// `/client/*` before the body: the public key, the origin, the company.
pub(super) fn client_head(
    head: &Head,
    cfg: &EdgeConfig,
    origin: Option<&str>,
    allowed: Option<&str>,
) -> Result<RouteKind, Reply> {
    if cfg.public_key.is_none() {
        return Err(missing("KLAVIYO_PUBLIC_KEY"));
    }
    if origin.is_some() && allowed.is_none() {
        return Err(forbidden_origin());
    }
    if query_param(head.query, "company_id").as_deref() != cfg.public_key.as_deref() {
        return Err(error(
            403,
            "wrong_company",
            "Forbidden.",
            "company_id is not this shop's public key",
            None,
        ));
    }
    if cfg.filter_bots {
        if let Some(bot) = bots::check(head.header("user-agent"), head.bot_score, cfg.bot_score_min)
        {
            // Answered as Klaviyo would, and not sent on; marked as a forwarded answer
            // is: a page told otherwise would take the worker for a plain proxy.
            let r = Reply::empty(202).header("x-klaviyo-edge-bot", bot.name());
            return Err(first_party_mark(r, head.path, cfg, allowed));
        }
    }
    Ok(RouteKind::Client)
}

/// `/client/*`: the first-party proxy for the browser package (public key only). The
/// body is checked (UTF-8, JSON, no duplicate key) in the pass that finds its profile,
/// and sent as received but for the visitor's additions.
pub(super) fn client(head: &Head, cfg: &EdgeConfig, body: &[u8], cors: Option<&str>) -> Action {
    let Some(public) = &cfg.public_key else {
        return Action::Reply(missing("KLAVIYO_PUBLIC_KEY"));
    };
    let body = match text(body) {
        Ok(t) => t,
        Err(r) => return Action::Reply(r),
    };
    let path = head
        .path
        .strip_prefix(cfg.route_prefix.as_str())
        .unwrap_or(head.path);
    // Checked, and the profile found for the additions, in one pass.
    let facts = match visitor::checked_facts(path, body) {
        Ok(f) => f,
        Err(e) => return Action::Reply(invalid(e)),
    };
    let mut url = String::from(&cfg.api_base);
    url.push_str(path);
    url.push_str("?company_id=");
    url.push_str(public);
    let revision = head.header("revision").unwrap_or(&cfg.revision).to_string();
    // `visitor=page`: the page knows its visitor (from its storage, a reset, or this
    // cookie already), and the cookie may name one it has dropped (a logout whose
    // POST /id failed). The cookie speaks only for a page that started with nothing.
    // (Looked for before it is decoded: most calls have no such parameter.)
    let own = head.query.contains("visitor")
        && query_param(head.query, "visitor").is_some_and(|v| v == "page");
    // A sandboxed frame may be any site's: the shop's visitor is not put in its calls.
    let id = cfg
        .signing_secret
        .as_deref()
        .filter(|_| !own && cors != Some(NULL_ORIGIN))
        .and_then(|secret| visitor_id::read(head.header("cookie"), secret));
    let add = Additions {
        ip: cfg
            .forward_visitor_ip
            .then(|| {
                ratelimit::client_ip(
                    head.peer,
                    head.header("cf-connecting-ip"),
                    head.header("x-forwarded-for"),
                    cfg.trust_forwarded_for,
                )
            })
            .flatten(),
        id: id.as_ref(),
    };
    let enriched = match (&facts, add.is_empty()) {
        (Some(f), false) => visitor::apply(path, body, f, &add),
        _ => None,
    };
    let body = match enriched {
        Some(text) => Payload::Text(text),
        None => Payload::AsReceived,
    };
    let mut headers = vec![("content-type", JSONAPI.into()), ("revision", revision)];
    // The visitor's browser, as a direct call would have named it (not the worker's).
    if let Some(ua) = head.header("user-agent") {
        headers.push(("user-agent", ua.to_string()));
    }
    Action::Forward(Forward {
        url,
        headers,
        body,
        cors: cors.map(str::to_string),
        timeout_ms: None,
    })
}

/// A `/client` answer (forwarded, or a bot's), marked as the edge worker's that keeps
/// the visitor cookie ([`reply::FIRST_PARTY`]: `id`) where it can sign one. `cors`: the
/// origin answered. Not to a sandboxed frame: `/id` refuses it, and a page told of the
/// cookie would ask it on every load (a failed request, a CORS error in its console).
pub fn first_party_mark(r: Reply, path: &str, cfg: &EdgeConfig, cors: Option<&str>) -> Reply {
    let route = path.strip_prefix(cfg.route_prefix.as_str()).unwrap_or(path);
    if route.starts_with("/client/") && cfg.signing_secret.is_some() && cors != Some(NULL_ORIGIN) {
        r.header(reply::FIRST_PARTY, "id")
    } else {
        r
    }
}
