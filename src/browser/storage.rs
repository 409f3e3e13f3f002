//! localStorage that never throws into the page. Missing or disabled storage
//! (sandboxed iframe, privacy mode) leaves the tracker working from memory.

use web_sys::Storage;

use crate::core::queue::StorageOp;

pub struct Store {
    local: Option<Storage>,
}

impl Store {
    pub fn open() -> Store {
        let local = web_sys::window().and_then(|w| w.local_storage().ok().flatten());
        Store { local }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.local.as_ref()?.get_item(key).ok().flatten()
    }

    /// Every `(key, value)` whose key starts with `prefix`.
    pub fn scan(&self, prefix: &str) -> Vec<(String, String)> {
        let Some(s) = &self.local else {
            return Vec::new();
        };
        let n = s.length().unwrap_or(0);
        let keys: Vec<String> = (0..n)
            .filter_map(|i| s.key(i).ok().flatten())
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.into_iter()
            .filter_map(|k| s.get_item(&k).ok().flatten().map(|v| (k, v)))
            .collect()
    }

    /// Applies the core's writes in order. Returns false if a write failed (quota).
    pub fn apply(&self, ops: Vec<StorageOp>) -> bool {
        let Some(s) = &self.local else {
            return ops.is_empty();
        };
        let mut ok = true;
        for op in ops {
            let r = match &op {
                StorageOp::Put { key, value } => s.set_item(key, value),
                StorageOp::Remove { key } => s.remove_item(key),
            };
            ok &= r.is_ok();
        }
        ok
    }
}
