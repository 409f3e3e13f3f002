//! What a call becomes on the queue: one message, or a bulk job, a list call or a
//! webhook divided into messages that each fit, every event given a stable time.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{delivery_id, Message, Part, Plan, Reach, Work, MAX_MESSAGE_BYTES, VERSION};
use crate::edge::bulk_job;
use crate::edge::config::EdgeConfig;
use crate::edge::lists::Members;
use crate::edge::router::{Action, Payload};
use crate::edge::stable_time::{single_event, stable_direct, stable_event};

/// What a decided call becomes with a queue: `None` for what is answered at once (a
/// refusal, a `/client` call, a page's call); else the messages, or `Direct` for a call
/// too large for a message. `tag` is the call's signature tag (signed calls and
/// webhooks only have one); `body` the request's bytes as received.
pub fn plan(
    action: &Action,
    tag: &[u8; 32],
    body: &[u8],
    cfg: &EdgeConfig,
    now_ms: u64,
) -> Option<Plan> {
    let id = delivery_id(tag);
    let text = std::str::from_utf8(body).ok()?;
    Some(match action {
        // Answered at once: a refusal, or a call on the kept dead letters.
        Action::Reply(_) | Action::DeadLetters(_) => return None,
        Action::Forward(f) => {
            let path = f.url.strip_prefix(cfg.api_base.as_str())?;
            match &f.body {
                Payload::AsReceived => plan_call(&id, path, text, now_ms),
                // A body of the worker's own on a signed route: an order's job.
                Payload::Text(t) => as_order(plan_call(&id, path, t, now_ms)),
            }
        }
        Action::AddToList {
            list_id, members, ..
        } => plan_list(&id, list_id, members),
        Action::ReplyAndNotify { .. } => plan_forward(&id, text),
    })
}

/// The messages for a call of Klaviyo's API at `path` with `body` (checked JSON), made
/// at `now_ms`.
pub fn plan_call(id: &str, path: &str, body: &str, now_ms: u64) -> Plan {
    let now_s = (now_ms / 1000) as i64;
    let bodies = match path {
        "/api/event-bulk-create-jobs" => match bulk_parts(body, now_s) {
            Some(parts) => parts,
            // Whole, and its events still given their stable time.
            None => vec![(
                stable_direct(path, body, now_ms).unwrap_or_else(|| body.to_string()),
                Reach::Whole,
            )],
        },
        "/api/events" => vec![(single_event(body, now_s).into_owned(), Reach::Whole)],
        _ => vec![(body.to_string(), Reach::Whole)],
    };
    let mut works = Vec::with_capacity(bodies.len());
    for (b, upto) in bodies {
        let Ok(body) = RawValue::from_string(b) else {
            return Plan::Direct;
        };
        let work = Work::Call {
            path: path.to_string(),
            body,
        };
        works.push((work, upto));
    }
    messages(id, works)
}

/// An order's plan: its parts' reach counted as the order's events.
fn as_order(plan: Plan) -> Plan {
    match plan {
        Plan::Enqueue(mut parts) => {
            for p in &mut parts {
                if let Reach::Events { events, .. } = p.upto {
                    p.upto = Reach::Order { events };
                }
            }
            Plan::Enqueue(parts)
        }
        direct => direct,
    }
}

/// The messages for list membership: one, or the members divided among several.
pub fn plan_list(id: &str, list_id: &str, members: &Members) -> Plan {
    let n = members.ids.len();
    // Halve the members per message until each fits (at most 1000 members: ten halvings).
    let mut per = n.max(1);
    loop {
        let mut works = Vec::new();
        let mut start = 0;
        while start < n {
            let end = (start + per).min(n);
            let mut imports = Vec::new();
            for (at, body) in members
                .imports
                .iter()
                .filter(|(at, _)| (start..end).contains(at))
            {
                let Ok(raw) = RawValue::from_string(body.clone()) else {
                    return Plan::Direct;
                };
                imports.push((at - start, raw));
            }
            let work = Work::List {
                list_id: list_id.to_string(),
                ids: members.ids[start..end].to_vec(),
                imports,
            };
            works.push((work, Reach::Profiles(end)));
            start = end;
        }
        match messages(id, works) {
            Plan::Direct if per > 1 => per = per.div_ceil(2),
            plan => return plan,
        }
    }
}

/// The messages for a webhook forward: one, the body as Klaviyo sent it; or, for a
/// system webhook too large for a message (`{"data": [events], "meta": {...}}`), its
/// events divided among several forwards, in order, each with the body's other members
/// unchanged. The receiver de-duplicates by `meta.klaviyo_webhook_id` and each event's
/// `external_id`, so a webhook in parts is the same events to it. `Direct` for a body
/// that is too large and not of that shape, or has one event too large on its own:
/// sent at once, as without a queue.
pub fn plan_forward(id: &str, body: &str) -> Plan {
    let Ok(raw) = RawValue::from_string(body.to_string()) else {
        return Plan::Direct;
    };
    match messages(id, vec![(Work::Forward { body: raw }, Reach::Whole)]) {
        Plan::Direct => match webhook_parts(id, body) {
            Some(works) => messages(id, works),
            None => Plan::Direct,
        },
        plan => plan,
    }
}

/// A webhook body's top-level members, in order, their values as sent.
struct TopLevel<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = TopLevel<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(TopLevel(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A system webhook's bodies, each holding a run of its `data` events (in order) and
/// its other members as they were, each to fit a message; with the events each body
/// and those before it hold. `None` when the body is not of that shape (an object with
/// one `data` list and one `meta` object), or one event does not fit a message alone.
fn webhook_parts(id: &str, body: &str) -> Option<Vec<(Work, Reach)>> {
    let TopLevel(members) = serde_json::from_str(body).ok()?;
    let named = |name: &str| members.iter().filter(|(k, _)| k == name).count();
    if named("data") != 1 || named("meta") != 1 {
        return None;
    }
    let meta = members.iter().find(|(k, _)| k == "meta")?.1;
    if !meta.get().starts_with('{') {
        return None;
    }
    let data = members.iter().find(|(k, _)| k == "data")?.1;
    let events: Vec<&RawValue> = serde_json::from_str(data.get()).ok()?;
    // The body around its events: before and after the `data` list's brackets.
    let (mut head, mut tail) = (String::from("{"), String::new());
    let mut after = false;
    for (at, (k, v)) in members.iter().enumerate() {
        let out = if after { &mut tail } else { &mut head };
        if at > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).ok()?);
        out.push(':');
        if k == "data" {
            out.push('[');
            after = true;
        } else {
            out.push_str(v.get());
        }
    }
    tail.insert(0, ']');
    tail.push('}');
    // A message's own members, at their longest (part and parts of ten digits).
    let envelope = serde_json::to_string(&Message {
        v: VERSION,
        id: id.to_string(),
        part: u32::MAX,
        parts: u32::MAX,
        work: Work::Forward {
            body: RawValue::from_string("{}".to_string()).ok()?,
        },
        throttled_since: None,
    })
    .ok()?
    .len()
        - 2;
    let room = MAX_MESSAGE_BYTES.checked_sub(envelope + head.len() + tail.len())?;
    let mut works = Vec::new();
    let mut run = String::new();
    let mut held = 0;
    let mut close = |run: &mut String, held: usize| -> Option<()> {
        let body = RawValue::from_string(format!("{head}{run}{tail}")).ok()?;
        works.push((Work::Forward { body }, Reach::Items(held)));
        run.clear();
        Some(())
    };
    for event in events {
        let event = event.get();
        if event.len() > room {
            return None; // one event too large on its own
        }
        if !run.is_empty() && run.len() + 1 + event.len() > room {
            close(&mut run, held)?;
        }
        if !run.is_empty() {
            run.push(',');
        }
        run.push_str(event);
        held += 1;
    }
    if held == 0 || !run.is_empty() {
        close(&mut run, held)?;
    }
    Some(works)
}

fn messages(id: &str, works: Vec<(Work, Reach)>) -> Plan {
    let parts = works.len() as u32;
    let mut out = Vec::with_capacity(works.len());
    for (part, (work, upto)) in works.into_iter().enumerate() {
        let m = Message {
            v: VERSION,
            id: id.to_string(),
            part: part as u32,
            parts,
            work,
            throttled_since: None,
        };
        match serde_json::to_string(&m) {
            Ok(text) if text.len() <= MAX_MESSAGE_BYTES => out.push(Part { text, upto }),
            _ => return Plan::Direct,
        }
    }
    if out.is_empty() {
        Plan::Direct
    } else {
        Plan::Enqueue(out)
    }
}

// ------------------------------------------------------------------ bodies

/// An `event-bulk-create-job` body as jobs that each fit a message, its profiles'
/// events divided among them in order (each event given a stable time as above), each
/// with how far into the job it and those before it reach.
/// `None` when the body has members this reading does not know (then it travels whole,
/// or directly when too large), or when one event alone is too large.
fn bulk_parts(body: &str, now_s: i64) -> Option<Vec<(String, Reach)>> {
    use crate::edge::bulk_job::{ENTRY, ENTRY_END, EVENTS, HEAD, TAIL};
    // Room for the body in a message (its id, part, path and kind take the rest).
    let room = MAX_MESSAGE_BYTES - 200 - HEAD.len() - TAIL.len() - ENTRY_END.len();

    let entries = bulk_job::read(body)?;
    let mut parts = Vec::new();
    // The entries of the part being filled, and which entry of the job is open in it.
    let mut part = String::new();
    let mut open: Option<usize> = None;
    // Events, and entries whole, placed so far (in the parts made and the open one).
    let mut reach = (0, 0);
    let upto = |(entries, events)| Reach::Events { entries, events };
    for (at, entry) in entries.iter().enumerate() {
        let members = &entry.members;
        let events: Vec<Option<Cow<str>>> = if entry.events.is_empty() {
            vec![None] // an entry without events stays one
        } else {
            entry
                .events
                .iter()
                .map(|e| Some(stable_event(e, now_s)))
                .collect()
        };
        let last = events.len().saturating_sub(1);
        for (n, event) in events.into_iter().enumerate() {
            let counted = usize::from(event.is_some());
            let event = event.as_deref().unwrap_or("");
            loop {
                let cost = if open == Some(at) {
                    1 + event.len()
                } else {
                    let close = if open.is_some() {
                        ENTRY_END.len() + 1
                    } else {
                        0
                    };
                    close + ENTRY.len() + members.len() + EVENTS.len() + event.len()
                };
                if part.len() + cost <= room {
                    break;
                }
                if part.is_empty() {
                    return None; // one event and its profile are too large on their own
                }
                part.push_str(ENTRY_END);
                parts.push((format!("{HEAD}{part}{TAIL}"), upto(reach)));
                part.clear();
                open = None;
            }
            if open == Some(at) {
                part.push(',');
            } else {
                if open.is_some() {
                    part.push_str(ENTRY_END);
                    part.push(',');
                }
                part.push_str(ENTRY);
                part.push_str(members);
                part.push_str(EVENTS);
                open = Some(at);
            }
            part.push_str(event);
            reach.1 += counted;
            if n == last {
                reach.0 = at + 1;
            }
        }
    }
    if open.is_some() {
        part.push_str(ENTRY_END);
    }
    parts.push((format!("{HEAD}{part}{TAIL}"), upto(reach)));
    Some(parts)
}
