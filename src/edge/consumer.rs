//! The queue consumer's I/O: `export default { queue: consume }` (see
//! `js/edge/worker.mjs`). Each message of `DELIVERY_QUEUE` is carried out with the
//! private key (a forward signed now), and acknowledged, retried or refused as
//! `delivery::after_attempt` says. A refused message goes to `DELIVERY_DEAD_LETTERS`,
//! with its status (retried while that is not bound); messages that run out of retries reach the
//! consumer's dead-letter queue through Queues itself. A batch of that queue (named by
//! `DEAD_LETTER_QUEUE`) is not delivered but kept in `DEAD_LETTER_STORE`
//! (`worker/dead_letters.rs`). Logs name a delivery, its part, the route and the
//! status: never a body.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use super::auth;
use super::config::{self, EdgeConfig};
use super::dead_letters;
use super::delivery::{self, Message, Verdict, Work};
use super::executor;
use super::refused_in_bulk;
use super::router::{self, Forward, Payload};
use super::upstream::Upstream;
use super::worker::{
    attempts_of, binding, body_text, call, config, sent_as_text, store_letter, Stored,
};

/// The queue handler: `queue(batch, env, ctx)`. Resolves once every message of the
/// batch is acknowledged or set to retry; a message it could not settle (an error of the
/// runtime) is left to Queues, which delivers it again.
#[wasm_bindgen]
pub fn consume(batch: JsValue, env: JsValue, _ctx: JsValue) -> Promise {
    executor::spawn(async move {
        run(&batch, &env).await?;
        Ok(JsValue::UNDEFINED)
    })
}

async fn run(batch: &JsValue, env: &JsValue) -> Result<(), JsValue> {
    let settled = config(env);
    let messages: Array = Reflect::get(batch, &"messages".into())?.dyn_into()?;
    // Told apart by name alone, whatever the other settings: a letter delivered as a
    // message would be unreadable, wrapped and dead-lettered again, round and round.
    let queue = Reflect::get(batch, &"queue".into())?.as_string();
    if queue.as_deref() == Some(dead_letter_queue(env).as_str()) {
        for m in messages.iter() {
            keep(&m, env).await;
        }
        return Ok(());
    }
    // A 429 holds its route back for the rest of the batch (its wait, in seconds): no
    // call into a known throttle.
    let mut throttled: Vec<(String, u32)> = Vec::new();
    for m in messages.iter() {
        // An error with one message is that message's alone: it is retried, and the batch
        // goes on. (Were the handler to throw, Queues would settle the batch as a whole,
        // and Miniflare would deliver again even the messages already acknowledged.)
        if one(&m, env, &settled, &mut throttled).await.is_err() {
            log("a message met an error of the runtime: retried");
            let _ = settle(&m, "retry", Some(1));
        }
    }
    Ok(())
}

/// The dead-letter queue's name: `DEAD_LETTER_QUEUE` as `env` holds it (read here, not
/// from the checked settings, so that a malformed other setting cannot make its letters
/// deliveries).
fn dead_letter_queue(env: &JsValue) -> String {
    let given = Reflect::get(env, &"DEAD_LETTER_QUEUE".into()).ok();
    // A `[vars]` value may come as a number, as for every setting.
    let given = given.and_then(|v| v.as_string().or_else(|| v.as_f64().map(|n| n.to_string())));
    config::dead_letter_queue(given.as_deref())
}

/// Keeps message `m` of the dead-letter queue in `DEAD_LETTER_STORE`, acknowledged once
/// the store has it; else retried (`dead_letters::keep_retry_s`), never acknowledged
/// into nothing.
async fn keep(m: &JsValue, env: &JsValue) {
    let why = match store_letter(m, env).await {
        Stored::Kept => {
            let _ = settle(m, "ack", None);
            return;
        }
        Stored::StoreFailed => "DEAD_LETTER_STORE missing or failing",
        Stored::NoText => "its body is no text, UTF-8 bytes or plain JSON",
    };
    let delay_s = dead_letters::keep_retry_s(attempts_of(m));
    log(&format!(
        "a dead letter was not kept ({why}): retried in {delay_s} s"
    ));
    let _ = settle(m, "retry", Some(delay_s));
}

/// Carries out message `m` and settles it.
async fn one(
    m: &JsValue,
    env: &JsValue,
    settled: &Result<EdgeConfig, super::config::ConfigError>,
    throttled: &mut Vec<(String, u32)>,
) -> Result<(), JsValue> {
    let attempts = attempts_of(m);
    let Some(text) = body_text(&Reflect::get(m, &"body".into())?) else {
        // No text keeps it faithfully (a letter of it would hold nothing): left to the
        // queue, whose retries (76 an hour apart, inside its 4 days) end in the
        // dead-letter queue with the body as it is.
        log("a message whose body is not text, UTF-8 or plain JSON: retried");
        return settle(m, "retry", Some(delivery::MAX_DELAY_S));
    };
    let Some(msg) = delivery::read(&text) else {
        if dead_letters::is_letter(&text) {
            // DEAD_LETTER_QUEUE names another queue than this letter's: kept all the same.
            log("a dead letter reached the delivery consumer: is DEAD_LETTER_QUEUE the dead-letter queue's name?");
            keep(m, env).await;
            return Ok(());
        }
        let letter = (text, 0);
        return dead_lettered(
            m,
            env,
            "a message this worker cannot read",
            false,
            &[letter],
        )
        .await;
    };
    let cfg = match settled {
        Ok(cfg) => cfg,
        Err(e) => {
            // The operator's to fix: keep the message.
            log(&format!(
                "delivery {} waits: setting {} {}",
                msg.id, e.setting, e.reason
            ));
            return settle(m, "retry", Some(delivery::MAX_DELAY_S));
        }
    };
    if let Some(setting) = delivery::missing_setting(&msg.work, cfg) {
        log(&format!(
            "delivery {} waits: setting {setting} is not set",
            msg.id
        ));
        return settle(m, "retry", Some(delivery::MAX_DELAY_S));
    }
    let route = msg.route().to_string();
    // What Klaviyo refused while the rest went through: dead-lettered alone.
    let mut left_out = LeftOut::default();
    let held = throttled.iter().find(|(r, _)| *r == route).map(|(_, w)| *w);
    // What each log line of this message opens with.
    let heading = || {
        format!(
            "delivery {} part {}/{} to {}",
            msg.id,
            msg.part + 1,
            msg.parts,
            route
        )
    };
    // What the attempt got, for the log line of a retry: its status, or no answer
    // (`None`: no attempt, the batch's 429 held it).
    let mut got = None;
    let jitter = (js_sys::Math::random() * f64::from(u16::MAX)) as u16;
    let verdict = match held {
        Some(wait_s) => delivery::held_behind(wait_s, jitter),
        None => {
            let outcome = attempt(&msg, cfg, &mut left_out).await;
            let now = js_sys::Date::now() as u64;
            got = Some(match outcome {
                Upstream::Answered { status, .. } => Some(status),
                Upstream::Failed => None,
            });
            delivery::after_attempt(&outcome, attempts, now, jitter)
        }
    };
    // What the attempt got, for a log line.
    let answer = || match got {
        Some(Some(status)) => format!("answered {status}"),
        Some(None) => "got no answer".to_string(),
        None => "held by the batch's 429".to_string(),
    };
    match verdict {
        Verdict::Ack if !left_out.is_empty() => {
            let what = format!(
                "{}: the rest delivered, {} refused ({})",
                heading(),
                left_out.what(),
                left_out.status()
            );
            let letters = left_out.letters(&msg);
            dead_lettered(m, env, &what, true, &letters).await
        }
        Verdict::Ack => settle(m, "ack", None),
        // Queued again as a new message, its retries unspent (a list's carried on).
        Verdict::Throttled { wait_s, delay_s } => {
            if got.is_some() {
                throttled.push((route.clone(), wait_s));
            }
            let what = format!("{}: attempt {attempts} {}", heading(), answer());
            let next = left_out.carried_on.take();
            let again = next.as_deref().unwrap_or(&text);
            let now_s = (js_sys::Date::now() / 1000.0) as u64;
            let again = match delivery::throttled(again, now_s) {
                delivery::Throttle::Again(again) => again,
                delivery::Throttle::Expired { since_s } => {
                    let what = format!(
                        "{what}: throttled for {} h, longer than {} h",
                        now_s.saturating_sub(since_s) / 3600,
                        delivery::MAX_THROTTLED_S / 3600
                    );
                    let letter = (next.unwrap_or(text), 429);
                    return dead_lettered(m, env, &what, false, &[letter]).await;
                }
            };
            if requeued(env, &again, delay_s).await {
                log(&format!(
                    "{what}: throttled, queued again in {delay_s} s (no retry spent)"
                ));
                return settle(m, "ack", None);
            }
            let delay_s = delivery::throttled_retry_s(delay_s, attempts, jitter);
            log(&format!(
                "{what}: throttled, not queued again: retried in {delay_s} s"
            ));
            settle(m, "retry", Some(delay_s))
        }
        // What was left out is refused again, and left out again, on the next attempt.
        Verdict::Retry { delay_s } => {
            let what = format!("{}: attempt {attempts} {}", heading(), answer());
            if let Some(next) = left_out.carried_on.take() {
                if requeued(env, &next, delay_s).await {
                    log(&format!(
                        "{what}: carried on in a new message, its imports kept"
                    ));
                    return settle(m, "ack", None);
                }
            }
            log(&format!("{what}: retried in {delay_s} s"));
            settle(m, "retry", Some(delay_s))
        }
        Verdict::Refused { status } => {
            let what = format!("{} refused ({status})", heading());
            let letter = (text, status);
            dead_lettered(m, env, &what, false, &[letter]).await
        }
    }
}

/// What Klaviyo refused of a message while the rest went through: list members
/// (their positions in the message, the status), or a bulk job's events or profiles
/// (a job of them, how many, the status).
#[derive(Default)]
struct LeftOut {
    members: Vec<(usize, u16)>,
    parts: Vec<(String, usize, u16)>,
    /// A list message to send in this one's place when it is retried: the members it
    /// imported before it stopped are not imported again (`delivery::list_carried_on`).
    carried_on: Option<String>,
}

impl LeftOut {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.parts.is_empty()
    }

    /// What was left out, for the log: counts, never bodies.
    fn what(&self) -> String {
        if self.members.is_empty() {
            let n: usize = self.parts.iter().map(|(_, n, _)| n).sum();
            format!("{n} of its events or profiles")
        } else {
            format!("{} of its members", self.members.len())
        }
    }

    fn status(&self) -> u16 {
        let first = self.members.first().map(|m| m.1);
        first.or(self.parts.first().map(|e| e.2)).unwrap_or(400)
    }

    /// The dead letters: one message of the refused members, or one per refused job.
    fn letters(self, msg: &Message) -> Vec<(String, u16)> {
        let status = self.status();
        let mut out = Vec::new();
        if !self.members.is_empty() {
            let at: Vec<usize> = self.members.iter().map(|(at, _)| *at).collect();
            out.push((
                delivery::refused_members(msg, &at).unwrap_or_default(),
                status,
            ));
        }
        for (job, _, status) in self.parts {
            out.push((delivery::refused_call(msg, job).unwrap_or_default(), status));
        }
        out
    }
}

/// How many times a bulk job Klaviyo refused for some of its events or profiles is
/// divided and the rest sent again in one attempt (Klaviyo names every bad one in one
/// answer; a second refusal of the rest is rare, a third ends the attempt).
const DIVISIONS: usize = 3;

/// One attempt at a message's work: the last answer it got. What Klaviyo refuses of it
/// while taking the rest is named in `left_out`, so that one bad member or event keeps
/// no other off the list or out of Klaviyo: a list member whose import it refuses (a 4xx:
/// a phone number it does not take), or the events or profiles of a bulk job its error
/// pointers name (`refused_in_bulk.rs`).
async fn attempt(msg: &Message, cfg: &EdgeConfig, left_out: &mut LeftOut) -> Upstream {
    let none = Uint8Array::new_with_length(0);
    match &msg.work {
        Work::Call { path, body } => {
            let (Some(key), true) = (&cfg.private_key, delivery::api_path_ok(path)) else {
                return refusal(400);
            };
            let mut body = body.get().to_string();
            let mut divisions = 0;
            loop {
                let payload = Payload::Text(std::mem::take(&mut body));
                let f = router::private_call(cfg, key, path, payload, None);
                let answer = call(&f, &none).await;
                let refused = refused_status(&answer);
                let divided = match (&answer, &f.body, refused) {
                    (
                        Upstream::Answered { body: errors, .. },
                        Payload::Text(sent),
                        Some(status),
                    ) if divisions < DIVISIONS => {
                        refused_in_bulk::divide(path, sent, errors).map(|d| (d, status))
                    }
                    _ => None,
                };
                let Some((d, status)) = divided else {
                    // Refused with nothing named: the message is refused whole (nothing
                    // of it went through), and what was left out goes with it.
                    if refused.is_some() {
                        left_out.parts.clear();
                    }
                    return answer;
                };
                left_out.parts.push((d.refused, d.count, status));
                body = d.kept;
                divisions += 1;
            }
        }
        Work::List {
            list_id,
            ids,
            imports,
        } => {
            let mut ids = ids.clone();
            for (at, body) in imports {
                let Some(f) = router::import_request(cfg, body.get(), None) else {
                    return refusal(400);
                };
                let answer = call(&f, &none).await;
                let Upstream::Answered {
                    status: 200..=299,
                    body,
                    ..
                } = &answer
                else {
                    if let Some(status) = refused_status(&answer) {
                        left_out.members.push((*at, status));
                        continue;
                    }
                    // Throttled or failed: what was imported is kept for the next attempt.
                    left_out.carried_on = delivery::list_carried_on(msg, &ids);
                    return answer;
                };
                match (router::imported_id(body, None), ids.get_mut(*at)) {
                    (Ok(id), Some(slot)) => *slot = Some(id),
                    // A 2xx without an id: as a server error, tried again later.
                    _ => return unreadable(),
                }
            }
            let found: Vec<String> = ids.iter().flatten().cloned().collect();
            if found.is_empty() {
                // Every member refused: the message is refused whole.
                let status = left_out.status();
                left_out.members.clear();
                return refusal(status);
            }
            let Some(f) = router::add_to_list_request(cfg, list_id, &found, None) else {
                return refusal(400);
            };
            let answer = call(&f, &none).await;
            // The add throttled (150 a minute) or failed: the imports made are kept too.
            if matches!(
                delivery::after_attempt(&answer, 1, 0, 0),
                Verdict::Retry { .. } | Verdict::Throttled { .. }
            ) {
                left_out.carried_on = delivery::list_carried_on(msg, &ids);
            }
            answer
        }
        Work::Forward { body } => {
            let (Some(url), Some(secret)) = (&cfg.webhook_forward_url, &cfg.signing_secret) else {
                return refusal(400);
            };
            let now_s = (js_sys::Date::now() / 1000.0) as i64;
            // Signed now: the receiver's window counts from this attempt.
            let signature = auth::sign_forward(body.get().as_bytes(), secret, now_s);
            let f = Forward {
                url: url.clone(),
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("x-klaviyo-edge-signature", signature),
                ],
                body: Payload::Text(body.get().into()),
                cors: None,
                timeout_ms: Some(cfg.upstream_timeout_ms),
            };
            call(&f, &none).await
        }
    }
}

/// The status with which Klaviyo refused a call for good (a 4xx other than 401, 403,
/// 408 and 429), if it did.
fn refused_status(answer: &Upstream) -> Option<u16> {
    match delivery::after_attempt(answer, 1, 0, 0) {
        Verdict::Refused { status } => Some(status),
        _ => None,
    }
}

/// A refusal with `status`: a message that cannot be carried out as it is (a path that
/// is not an API path; a setting it needs is gone, which `one` has made wait before), or
/// a list whose every member Klaviyo refused. Dead-lettered rather than retried.
fn refusal(status: u16) -> Upstream {
    Upstream::Answered {
        status,
        retry_after: None,
        content_type: None,
        body: String::new(),
    }
}

fn unreadable() -> Upstream {
    Upstream::Answered {
        status: 502,
        retry_after: None,
        content_type: None,
        body: String::new(),
    }
}

/// Sends `text` to `DELIVERY_QUEUE` (the queue this consumer reads), after `delay_s`.
/// False when it is not bound or refused the message: the one it replaces is retried.
async fn requeued(env: &JsValue, text: &str, delay_s: u32) -> bool {
    match binding(env, "DELIVERY_QUEUE", "send") {
        Some((queue, send)) => sent_as_text(&queue, &send, text, Some(delay_s)).await,
        None => false,
    }
}

/// `message.ack()`, or `message.retry({ delaySeconds })`.
fn settle(m: &JsValue, how: &str, delay_s: Option<u32>) -> Result<(), JsValue> {
    let f: Function = Reflect::get(m, &JsValue::from_str(how))?.dyn_into()?;
    match delay_s {
        None => f.call0(m)?,
        Some(d) => {
            let opts = Object::new();
            Reflect::set(&opts, &"delaySeconds".into(), &JsValue::from(d))?;
            f.call1(m, &opts)?
        }
    };
    Ok(())
}

/// How long a refused message waits when the dead-letter queue did not take it: the
/// attempt and the dead letter are then made again.
const DEAD_LETTER_RETRY_S: u32 = 60;

/// Acknowledges message `m` once its dead letters (text, status) are taken; else it is
/// retried, so the call it holds is never dropped with no trace but a log line. `what`
/// opens the log line; `partly`: the rest of the message went through. Without
/// `DELIVERY_DEAD_LETTERS` (the fetch path queues nothing then, so this message was
/// queued before the binding went) it is retried as well, or only its refused part is,
/// and after `max_retries` Queues moves it to the consumer's own dead-letter queue.
async fn dead_lettered(
    m: &JsValue,
    env: &JsValue,
    what: &str,
    partly: bool,
    letters: &[(String, u16)],
) -> Result<(), JsValue> {
    let Some((queue, send)) = binding(env, "DELIVERY_DEAD_LETTERS", "send") else {
        // Part of the message went through: what was refused goes back on the queue
        // alone (the rest is not sent again), to be refused and retried as a whole
        // message until Queues moves it to the consumer's dead-letter queue.
        if partly && requeued_alone(env, letters).await {
            log(&format!(
                "{what}: DELIVERY_DEAD_LETTERS is not bound: the refused part queued again alone"
            ));
            return settle(m, "ack", None);
        }
        log(&format!(
            "{what}: DELIVERY_DEAD_LETTERS is not bound: retried"
        ));
        return settle(m, "retry", Some(DEAD_LETTER_RETRY_S));
    };
    // Stopped at the first letter not taken: the retry sends as few of them twice as it can.
    let mut taken = true;
    for (text, status) in letters {
        taken = sent_as_text(&queue, &send, &letter(text, *status), None).await;
        if !taken {
            break;
        }
    }
    if taken {
        log(&format!("{what}: dead-lettered"));
        settle(m, "ack", None)
    } else {
        log(&format!(
            "{what}: the dead-letter queue did not take it: retried"
        ));
        settle(m, "retry", Some(DEAD_LETTER_RETRY_S))
    }
}

/// Each refused part sent to `DELIVERY_QUEUE` as a message of its own: whether the
/// queue took them all. It stops at the first it does not take (or that could not be
/// made), so that the retry of the whole message queues as few of them twice as it can.
async fn requeued_alone(env: &JsValue, letters: &[(String, u16)]) -> bool {
    for (text, _) in letters {
        if text.is_empty() || !requeued(env, text, DEAD_LETTER_RETRY_S).await {
            return false;
        }
    }
    true
}

/// A dead letter: the refused message as first queued, with the status that refused it.
fn letter(text: &str, status: u16) -> String {
    let first = delivery::as_first_queued(text);
    let text = first.as_deref().unwrap_or(text);
    let mut letter = String::with_capacity(text.len() + 40);
    letter.push_str("{\"status\":");
    letter.push_str(&status.to_string());
    letter.push_str(",\"message\":");
    // What could not be read is kept as a string.
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        letter.push_str(text);
    } else {
        letter.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "null".into()));
    }
    letter.push('}');
    letter
}

/// `console.log(line)`: what happened to a delivery, for the worker's logs.
fn log(line: &str) {
    let console = Reflect::get(&js_sys::global(), &"console".into());
    if let Ok(console) = console {
        if let Some(f) = Reflect::get(&console, &"log".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
        {
            let _ = f.call1(
                &console,
                &JsValue::from_str(&format!("klaviyo-edge: {line}")),
            );
        }
    }
}
