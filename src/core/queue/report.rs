//! What the shop hears through `onError`: each report's kind, its name and message, and
//! the queue's reports, taken by the adapter after each step. They are kept as the text
//! the adapter reads (`control`'s REPORTS answer), written as they happen: no list of
//! reports to build and drop.
//!
//! Each report: `SEP name SUB status SUB count SUB message SUB detail`.

use super::ops::{SEP, SUB};
use super::*;

/// Something the shop should hear about through `onError`, as the tests read the
/// reports back (the adapter's reading of them).
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    pub status: u16,
    /// The server's JSON:API error body, as received.
    pub detail: String,
    pub count: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// Klaviyo refused the request (4xx): it has been removed.
    Rejected,
    /// A retryable failure; the request stays queued.
    WillRetry,
    /// The stored queue was full: the oldest calls left storage. This page still
    /// sends them; they are lost only if it closes first.
    Evicted,
    /// The page's memory bound was reached: the oldest calls were dropped.
    Dropped,
    /// Too many attempts or too old: dropped.
    GaveUp,
    /// Storage refused a write (quota): calls are kept in memory only.
    Storage,
    /// Calls made before a closed page's tracker was ready, adopted by this page, were
    /// refused by the rules (`detail` says why).
    Invalid,
    /// Consent is denied: calls are dropped (reported once per denial).
    Consent,
}

impl ReportKind {
    /// Every kind, in declaration order (the tests read answers back with it).
    #[cfg(test)]
    pub(crate) const ALL: [ReportKind; 8] = [
        ReportKind::Rejected,
        ReportKind::WillRetry,
        ReportKind::Evicted,
        ReportKind::Dropped,
        ReportKind::GaveUp,
        ReportKind::Storage,
        ReportKind::Invalid,
        ReportKind::Consent,
    ];

    /// The name `onError` sees (`error.kind`).
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Rejected => "rejected",
            ReportKind::WillRetry => "retry",
            ReportKind::Evicted => "evicted",
            ReportKind::Dropped => "dropped",
            ReportKind::GaveUp => "gave_up",
            ReportKind::Storage => "storage",
            ReportKind::Invalid => "invalid",
            ReportKind::Consent => "consent",
        }
    }

    /// The message of the `Error` `onError` gets.
    pub fn message(self) -> &'static str {
        match self {
            ReportKind::Rejected => {
                "klaviyo: Klaviyo rejected a request; it was removed from the queue"
            }
            ReportKind::WillRetry => {
                "klaviyo: sending failed; the request stays queued and will be retried"
            }
            ReportKind::Evicted => {
                "klaviyo: the stored queue is full; the oldest requests left storage and are kept in memory until sent"
            }
            ReportKind::Dropped => {
                "klaviyo: the page's queue is full; the oldest requests were dropped"
            }
            ReportKind::GaveUp => "klaviyo: requests were dropped after too many failed attempts",
            ReportKind::Storage => {
                "klaviyo: localStorage refused a write; requests are kept in memory for this page"
            }
            ReportKind::Invalid => "klaviyo: calls made before the tracker was ready were refused",
            ReportKind::Consent => {
                "klaviyo: consent is denied; calls are dropped, nothing is stored or sent"
            }
        }
    }
}

impl Queue {
    /// `detail` is copied only here, into the reports' text.
    pub fn report(&mut self, kind: ReportKind, status: u16, detail: &str, count: usize) {
        let out = &mut self.reports;
        out.push(SEP);
        out.push_str(kind.name());
        out.push(SUB);
        text::push_u64(out, u64::from(status));
        out.push(SUB);
        text::push_u64(out, count as u64);
        out.push(SUB);
        out.push_str(kind.message());
        out.push(SUB);
        out.push_str(detail);
    }

    /// Moves the reports to the end of `out`.
    pub fn move_reports(&mut self, out: &mut String) {
        out.push_str(&self.reports);
        self.reports.clear();
    }

    /// The reports, read back.
    #[cfg(test)]
    pub fn take_reports(&mut self) -> Vec<Report> {
        let mut text = String::new();
        self.move_reports(&mut text);
        Report::read_all(&text)
    }
}

#[cfg(test)]
impl Report {
    /// The reports of a REPORTS answer, in order.
    pub fn read_all(text: &str) -> Vec<Report> {
        let mut reports = text.split(SEP);
        assert_eq!(reports.next(), Some(""), "each report starts with SEP");
        reports
            .map(|r| {
                let f: Vec<&str> = r.splitn(5, SUB).collect();
                let kind = ReportKind::ALL
                    .into_iter()
                    .find(|k| k.name() == f[0])
                    .expect("a report's name");
                assert_eq!(f[3], kind.message());
                Report {
                    kind,
                    status: f[1].parse().expect("a status"),
                    count: f[2].parse().expect("a count"),
                    detail: f[4].to_string(),
                }
            })
            .collect()
    }
}
