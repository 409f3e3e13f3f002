//! What the shop hears through `onError`: each report's kind, its name and message, and
//! the queue's list of them, taken by the adapter after each step.

use super::*;

/// Something the shop should hear about through `onError`.
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
    /// `detail` is copied only here, for the report that keeps it.
    pub fn report(&mut self, kind: ReportKind, status: u16, detail: &str, count: usize) {
        self.reports.push(Report {
            kind,
            status,
            detail: detail.to_string(),
            count,
        });
    }

    pub fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.reports)
    }
}
