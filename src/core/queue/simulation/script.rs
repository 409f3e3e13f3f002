//! The script of a run: a seeded PRNG and the actions it makes.

/// A small seeded PRNG (splitmix64): the whole run follows from the seed.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(super) fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// What Klaviyo (and the network) does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    Ok,
    /// 429 with `Retry-After` seconds.
    Throttle(u8),
    /// 500 or 503.
    ServerError(u16),
    /// The request never reached Klaviyo (connection refused, reset).
    DropBefore,
    /// Klaviyo processed it (202) but the answer was lost: the page sees a network error.
    DropAfter,
}

#[derive(Clone, Debug)]
pub(super) enum Action {
    /// `n` calls of kind `kind` in one task of tab `tab` (`kind % 16` picks the call,
    /// `kind / 16` an `identify`'s shape or a `reset()`: `World::call`).
    Call {
        tab: u8,
        kind: u8,
        n: u8,
    },
    /// The next task of a tab: `storage` its next storage event, else its next other
    /// task (lock callback, start timeouts, online/offline).
    RunTask {
        tab: u8,
        storage: bool,
    },
    /// A due timer of a tab (wake, lease beat, a request's 30 s abort).
    FireTimer {
        tab: u8,
    },
    /// Klaviyo and the network deal with an outstanding request.
    Answer {
        req: u8,
        fate: Fate,
    },
    Advance {
        ms: u32,
    },
    /// The tab dies between two steps: no pagehide, nothing more.
    Crash {
        tab: u8,
    },
    /// The tab closes: pagehide (keepalive sends, marks), then it is gone.
    Close {
        tab: u8,
    },
    /// A new tab (a reload is a Crash or Close then an Open), with this consent at load.
    Open {
        consent: u8,
    },
    /// `setConsent`: 0 pending, 1 granted, 2 denied.
    Consent {
        tab: u8,
        state: u8,
    },
    /// `navigator.onLine` changes (every tab hears it).
    Online(bool),
    /// `visibilitychange` to hidden; the tab lives on.
    Hide {
        tab: u8,
    },
    /// Another script of tab `tab` calls `localStorage.clear()`.
    Clear {
        tab: u8,
    },
    /// The tab goes into the back/forward cache (pagehide, persisted; or frozen).
    Away {
        tab: u8,
    },
    /// A tab in the cache is shown again (pageshow, resume): `tab` picks among those.
    /// `seen`: with late events (`Knobs::late`), how much of what other tabs wrote
    /// meanwhile the page already sees at its return (a race in Chromium:
    /// `World::come_back`).
    Back {
        tab: u8,
        seen: u8,
    },
}

/// What a script is made with.
#[derive(Clone, Copy, Debug)]
pub(super) struct Knobs {
    pub(super) steps: usize,
    /// Web Locks (true) or the storage lease.
    pub(super) locks: bool,
    /// Whether scripts change consent.
    pub(super) consent: bool,
    /// Whether scripts `localStorage.clear()`.
    pub(super) clear: bool,
    /// Whether scripts crash or close tabs.
    pub(super) crashes: bool,
    /// Not js/runtime.js: the core is told at start that it does not send (yet), as a
    /// tab is after a handover or a grant (a setup some scripts need).
    pub(super) fix_start: bool,
    /// Whether scripts put tabs in the back/forward cache and show them again (one
    /// action in a hundred), and one in ten (`often`).
    pub(super) away: bool,
    pub(super) often: bool,
    /// A tab back from the cache catches up (js/runtime.js's `away_(0)`); false: it
    /// only stands for the sender again, as before.
    pub(super) catch_up: bool,
    /// Chromium: a tab in the back/forward cache, or frozen, hears the `storage` events
    /// of its stay once back, in order, each with storage as it was right after its
    /// write (`Tab::view`); false: WebKit, it hears none.
    pub(super) late: bool,
}

pub(super) fn script(seed: u64, k: Knobs) -> Vec<Action> {
    let mut r = Rng(seed);
    let mut out = Vec::with_capacity(k.steps);
    for _ in 0..k.steps {
        let roll = r.below(1000);
        let tab = r.byte();
        let a = match roll {
            // (In place of the action the roll makes: a sweep's own scripts.)
            _ if k.often && roll % 10 == 9 => match roll % 20 {
                9 => Action::Away { tab },
                _ => back(tab, k, &mut r),
            },
            0..=149 => Action::Call {
                tab,
                kind: r.byte(),
                n: 1 + r.below(3) as u8,
            },
            150..=379 => Action::RunTask {
                tab,
                storage: r.below(3) != 0,
            },
            380..=489 => Action::FireTimer { tab },
            490..=639 => Action::Answer {
                req: r.byte(),
                fate: match r.below(20) {
                    0..=9 => Fate::Ok,
                    10..=11 => Fate::Throttle(1 + r.below(20) as u8),
                    12..=13 => Fate::ServerError(if r.below(2) == 0 { 500 } else { 503 }),
                    14..=16 => Fate::DropBefore,
                    _ => Fate::DropAfter,
                },
            },
            640..=759 => Action::Advance {
                ms: [5, 20, 200, 1_000, 3_500, 12_000, 40_000][r.below(7) as usize],
            },
            760..=789 if k.crashes => Action::Crash { tab },
            790..=809 if k.crashes => Action::Close { tab },
            810..=849 => Action::Open {
                consent: if k.consent {
                    [1, 1, 1, 0, 2][r.below(5) as usize]
                } else {
                    1
                },
            },
            850..=899 if k.consent => Action::Consent {
                tab,
                state: [0, 1, 1, 2][r.below(4) as usize],
            },
            900..=939 => Action::Online(r.below(3) != 0),
            940..=979 => Action::Hide { tab },
            980..=989 if k.clear => Action::Clear { tab },
            // (In the last slot, drawing nothing more: every other action of a seed
            // stays as it was.)
            990..=994 if k.away => Action::Away { tab },
            995..=999 if k.away => back(tab, k, &mut r),
            _ => Action::Advance { ms: 100 },
        };
        out.push(a);
    }
    out
}

/// A return from the cache; what the page sees then is drawn only with late events
/// (the scripts of the other sweeps stay as they were).
fn back(tab: u8, k: Knobs, r: &mut Rng) -> Action {
    let seen = if k.late { r.byte() } else { 0 };
    Action::Back { tab, seen }
}
