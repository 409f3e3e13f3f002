//! Runs, sweeps over seeds, and the minimising of a failing script.

use super::*;

// ------------------------------------------------------------------------ runs

/// One run: the script, the quiet period, the checks. Panics are caught: (f).
pub(super) fn run(
    k: Knobs,
    actions: &[Action],
    trace: bool,
) -> (Vec<String>, Stats, Option<String>) {
    let mut w = World::new(k, trace);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        w.open(Consent::Granted);
        for a in actions {
            w.step += 1;
            w.log(|| format!("{a:?}"));
            w.act(a);
        }
        w.log(|| "---- quiet period".into());
        w.quiet();
        // The next page, after a keepalive mark's wait: what a page leaves behind is
        // cleaned by the next one at the latest.
        w.now += crate::core::queue::KEEPALIVE_WAIT_MS + 1_000;
        w.log(|| "---- a next page".into());
        w.open(Consent::Granted);
        w.quiet();
        w.check_end();
    }));
    if let Err(p) = result {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        w.faults.push(format!("(f) panic: {msg}"));
    }
    (w.faults, w.stats, w.trace)
}

/// Shrinks a failing script to one that still shows `fault` (greedy: drop chunks, then
/// single actions, until no removal keeps it).
pub(super) fn minimise(k: Knobs, actions: &[Action], fault: &str) -> Vec<Action> {
    let shows = |a: &[Action]| {
        let _quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = run(k, a, false).0.iter().any(|f| f == fault);
        std::panic::set_hook(_quiet);
        r
    };
    let mut cur = actions.to_vec();
    let mut chunk = cur.len() / 2;
    while chunk >= 1 {
        let mut i = 0;
        let mut progress = false;
        while i < cur.len() {
            let mut cand = cur.clone();
            cand.drain(i..(i + chunk).min(cur.len()));
            if shows(&cand) {
                cur = cand;
                progress = true;
            } else {
                i += chunk;
            }
        }
        if !progress {
            chunk /= 2;
        }
    }
    cur
}

pub(super) fn knobs(steps: usize, locks: bool) -> Knobs {
    Knobs {
        steps,
        locks,
        consent: true,
        clear: true,
        crashes: true,
        fix_start: false,
        away: true,
        often: false,
        catch_up: true,
        late: false,
    }
}

/// Runs `seeds` seeds; returns each distinct fault with its first seed, and totals.
pub(super) fn sweep(
    seeds: std::ops::Range<u64>,
    k: impl Fn(u64) -> Knobs,
) -> (BTreeMap<String, (u64, usize)>, Stats, usize) {
    let mut faults: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    let mut total = Stats::default();
    let mut steps = 0;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for seed in seeds {
        let kn = k(seed);
        steps += kn.steps;
        let (f, s, _) = run(kn, &script(seed, kn), false);
        for x in f {
            faults.entry(x).or_insert((seed, 0)).1 += 1;
        }
        total.calls += s.calls;
        total.required += s.required;
        total.sends += s.sends;
        total.accepted += s.accepted;
        total.gave_up += s.gave_up;
        total.rejected += s.rejected;
        total.lost_in_window += s.lost_in_window;
        total.lost_to_clear += s.lost_to_clear;
        total.sent_in_window += s.sent_in_window;
        total.written_in_window += s.written_in_window;
        total.profile_sends += s.profile_sends;
        total.profiles_accepted += s.profiles_accepted;
        total.visitors_checked += s.visitors_checked;
        total.profiles_reverted += s.profiles_reverted;
        total.profiles_overwritten += s.profiles_overwritten;
        total.denied_again_on_return += s.denied_again_on_return;
        total.stays += s.stays;
        total.stays_missing_writes += s.stays_missing_writes;
        for (k, v) in s.resent {
            *total.resent.entry(k).or_default() += v;
        }
        for (k, v) in s.dup_accepted {
            *total.dup_accepted.entry(k).or_default() += v;
        }
    }
    std::panic::set_hook(hook);
    (faults, total, steps)
}

pub(super) fn print_sweep(
    name: &str,
    faults: &BTreeMap<String, (u64, usize)>,
    s: &Stats,
    steps: usize,
) {
    eprintln!("== {name}: {steps} steps; calls {} (required {}), sends {}, 202s {}, rejected {}, gave up {}, lost in a denial's window {}, lost to a clear() {}, sent (written) before a tab heard a denial {} ({})", s.calls, s.required, s.sends, s.accepted, s.rejected, s.gave_up, s.lost_in_window, s.lost_to_clear, s.sent_in_window, s.written_in_window);
    eprintln!("   profile requests sent {}, accepted {}; visitors whose latest identify Klaviyo had to get {}; attributes ending on a superseded identify {}, on a concurrent one {}", s.profile_sends, s.profiles_accepted, s.visitors_checked, s.profiles_reverted, s.profiles_overwritten);
    eprintln!("   stays in the back/forward cache {} ({} missing other tabs' writes); back, a denial heard before taken again {}", s.stays, s.stays_missing_writes, s.denied_again_on_return);
    eprintln!("   ids sent more than once, by reason: {:#?}", s.resent);
    eprintln!(
        "   ids accepted (202) more than once, by reason: {:#?}",
        s.dup_accepted
    );
    for (f, (seed, n)) in faults {
        eprintln!("   FAULT in {n} runs (first seed {seed}): {f}");
    }
}
