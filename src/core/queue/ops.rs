//! The storage writes to make, in order, kept as the text the browser adapter reads
//! (`control`'s SYNC answer): written there as they are decided, so no list of owned
//! keys and values is built, copied and dropped.
//!
//! Each write starts with [`SEP`]: `key SUB value` puts, `key` alone removes, and an
//! empty key then `SUB prefix` removes every key under `prefix`. JSON escapes control
//! characters and our keys have none, so neither separator appears in what they
//! separate.

/// Starts each write; in the adapter's other answers it separates their parts.
pub const SEP: char = '\u{1}';
/// Separates a key from its value.
pub const SUB: char = '\u{2}';

use super::text;

/// What storage holds under our prefix, as the adapter hands it over:
/// `key SUB value SEP key SUB value ...`, read pair by pair where it is used (no list
/// of pairs built first).
#[derive(Clone, Copy)]
pub struct Stored<'a>(pub &'a str);

impl<'a> Stored<'a> {
    pub fn pairs(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        text::parts(self.0, SEP as u8).filter_map(|p| text::cut(p, SUB as u8))
    }

    /// The text of `pairs` (for the tests, which hold what storage has as pairs).
    #[cfg(test)]
    pub fn pack(pairs: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for (k, v) in pairs {
            out.push(SEP);
            out.push_str(k);
            out.push(SUB);
            out.push_str(v);
        }
        out
    }
}

/// Storage writes, in order, as text.
#[derive(Default)]
pub struct StorageOps(String);

impl StorageOps {
    /// Puts under `prefix` + `id`; the value is then written into the returned text.
    pub fn put(&mut self, prefix: &str, id: &str) -> &mut String {
        self.remove(prefix, id);
        self.0.push(SUB);
        &mut self.0
    }

    /// Removes `prefix` + `id`.
    pub fn remove(&mut self, prefix: &str, id: &str) {
        self.0.push(SEP);
        self.0.push_str(prefix);
        self.0.push_str(id);
    }

    /// Removes every key that starts with `prefix` (consent was denied).
    pub fn erase(&mut self, prefix: &str) {
        self.0.push(SEP);
        self.0.push(SUB);
        self.0.push_str(prefix);
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Moves the writes to the end of `out`.
    pub fn move_to(&mut self, out: &mut String) {
        out.push_str(&self.0);
        self.0.clear();
    }
}

/// One write, as the tests read [`StorageOps`] back (the adapter's reading of it).
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    Put { key: String, value: String },
    Remove { key: String },
    Erase { prefix: String },
}

#[cfg(test)]
impl StorageOp {
    /// The writes of a SYNC answer, in order.
    pub fn read_all(text: &str) -> Vec<StorageOp> {
        let mut parts = text.split(SEP);
        assert_eq!(parts.next(), Some(""), "each write starts with SEP");
        parts
            .map(|w| match w.split_once(SUB) {
                Some(("", prefix)) => StorageOp::Erase {
                    prefix: prefix.into(),
                },
                Some((key, value)) => StorageOp::Put {
                    key: key.into(),
                    value: value.into(),
                },
                None => StorageOp::Remove { key: w.into() },
            })
            .collect()
    }
}
