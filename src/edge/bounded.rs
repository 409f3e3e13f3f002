//! Body members read without building them, so that what a request costs in memory is
//! bounded by its size, whatever its shape.
//!
//! A `serde_json::Value` tree costs tens of bytes per element: a 5 MB array of zeros
//! becomes about 200 MB. So nothing the worker reads from a request is a tree:
//!
//! - [`Properties`]: free-form event properties, checked as they stream past (at most
//!   400 keys, no string over 100 KB at any depth) and then forgotten;
//! - [`AnyObject`]: a member that must be an object and is otherwise Klaviyo's to judge;
//! - [`Capped`]: an array of which only the first `N` elements are kept (the rest are
//!   counted and skipped), for lists whose rules refuse more than `N` anyway;
//! - [`Checked`]: a member that no rule reads, read as its type for the error a wrong
//!   one gets, and dropped: a kept list element holds only what its rules read.
//!
//! Errors are raised as serde errors inside the value, so `serde_path_to_error` gives
//! them the JSON pointer of the member (`/data/attributes/properties/a/0`), and their
//! messages are the rule's own words (see `bodies::typed_error`).

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

use crate::core::validate;

/// Event properties, checked and dropped: an object of at most 400 keys, with no
/// string over 100 KB anywhere inside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Properties;

impl<'de> de::Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PropertiesVisitor)
    }
}

struct PropertiesVisitor;

impl<'de> Visitor<'de> for PropertiesVisitor {
    type Value = Properties;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
        let mut keys = 0usize;
        while map.next_key::<IgnoredAny>()?.is_some() {
            keys += 1;
            if let Err(e) = validate::property_count("properties", keys) {
                return Err(de::Error::custom(e.reason));
            }
            map.next_value::<ShortStrings>()?;
        }
        Ok(Properties)
    }
}

/// Any JSON value, read for one rule only: no string in it is over 100 KB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShortStrings;

impl<'de> de::Deserialize<'de> for ShortStrings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShortStringsVisitor)
    }
}

struct ShortStringsVisitor;

impl<'de> Visitor<'de> for ShortStringsVisitor {
    type Value = ShortStrings;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<ShortStrings, E> {
        Ok(ShortStrings)
    }

    fn visit_i64<E>(self, _: i64) -> Result<ShortStrings, E> {
        Ok(ShortStrings)
    }

    fn visit_u64<E>(self, _: u64) -> Result<ShortStrings, E> {
        Ok(ShortStrings)
    }

    fn visit_f64<E>(self, _: f64) -> Result<ShortStrings, E> {
        Ok(ShortStrings)
    }

    fn visit_unit<E>(self) -> Result<ShortStrings, E> {
        Ok(ShortStrings)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<ShortStrings, E> {
        validate::property_string("", s)
            .map(|()| ShortStrings)
            .map_err(|e| E::custom(e.reason))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ShortStrings, A::Error> {
        while seq.next_element::<ShortStrings>()?.is_some() {}
        Ok(ShortStrings)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ShortStrings, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<ShortStrings>()?;
        }
        Ok(ShortStrings)
    }
}

/// A member that must be an object; its contents are skipped, not kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnyObject;

impl<'de> de::Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyObject;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(V)
    }
}

/// A member read as a `T`, so a wrong type is refused with `T`'s own message and the
/// member's pointer, and then dropped. Kept list elements are held until their rules
/// run, and a list's storage doubles as it grows: an element that kept every member it
/// was read for would cost several times its text, so members no rule reads are these.
pub struct Checked<T>(PhantomData<T>);

impl<T> fmt::Debug for Checked<T> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Checked")
    }
}

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|_| Checked(PhantomData))
    }
}

/// An array of which the first `N` elements are read and kept; later ones are skipped
/// unread and only counted ([`Capped::total`]). For lists whose rules refuse more than
/// `N` elements: memory stays at `N` elements whatever the body holds.
#[derive(Debug)]
pub struct Capped<T, const N: usize> {
    items: Vec<T>,
    total: usize,
}

impl<T, const N: usize> Capped<T, N> {
    /// The elements kept: the first `N` at most.
    pub fn kept(&self) -> &[T] {
        &self.items
    }

    /// How many elements the array held, kept or not.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl<'de, T: de::Deserialize<'de>, const N: usize> de::Deserialize<'de> for Capped<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Capped<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capped<T, N>, A::Error> {
                let mut items = Vec::new();
                while items.len() < N {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => {
                            let total = items.len();
                            return Ok(Capped { items, total });
                        }
                    }
                }
                let mut total = items.len();
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(Capped { items, total })
            }
        }
        d.deserialize_seq(V::<T, N>(PhantomData))
    }
}

#[cfg(test)]
#[path = "bounded_tests.rs"]
mod tests;
