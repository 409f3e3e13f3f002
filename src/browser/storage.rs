//! localStorage that never throws into the page (`js/host.js` catches every access).
//! Missing or disabled storage (sandboxed iframe, privacy mode) leaves the tracker
//! working from memory.

use super::host;
use crate::core::queue::StorageOp;

pub struct Store {
    shared: bool,
}

impl Store {
    pub fn open() -> Store {
        Store {
            shared: host::storage_shared(),
        }
    }

    /// Whether requests can be shared with other tabs through storage.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    pub fn get(&self, key: &str) -> Option<String> {
        host::storage_get(key)
    }

    /// Every `(key, value)` whose key starts with `prefix`.
    pub fn scan(&self, prefix: &str) -> Vec<(String, String)> {
        let mut flat = host::storage_scan(prefix).into_iter();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
            out.push((k, v));
        }
        out
    }

    /// Applies the core's writes in order; returns the keys whose write failed (quota,
    /// or storage gone), for the core to keep those requests in memory.
    pub fn apply(&self, ops: Vec<StorageOp>) -> Vec<String> {
        let mut failed = Vec::new();
        for op in ops {
            match op {
                StorageOp::Put { key, value } => {
                    if !host::storage_set(&key, &value) {
                        failed.push(key);
                    }
                }
                StorageOp::Remove { key } => host::storage_del(&key),
            }
        }
        failed
    }

    pub fn put(&self, key: &str, value: &str) {
        host::storage_set(key, value);
    }
}
