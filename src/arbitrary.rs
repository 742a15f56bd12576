//! Random values for property tests (the `proptest` feature): every generated struct gets
//! a [`VersionedStrategy`] whose values are valid for the version asked for.

use bytes::Bytes;
use bytestring::ByteString;
use proptest::prelude::*;
use uuid::Uuid;

use crate::codec::RawTaggedField;

/// A strategy for values that can be encoded at a given version.
pub trait VersionedStrategy: Sized + std::fmt::Debug {
    /// Values valid at `version`: fields the version lacks hold their defaults, nulls only
    /// where the version allows them.
    fn strategy(version: i16) -> BoxedStrategy<Self>;
}

/// What the generated strategies use.
#[doc(hidden)]
pub mod prelude {
    pub use super::VersionedStrategy;
    pub use super::{array, bytes, float64, nullable, some, string, unknown_tags, uuid};
    pub use proptest::prelude::{BoxedStrategy, Just, Strategy, any};
}

/// Short strings, including multi-byte characters.
pub fn string() -> BoxedStrategy<ByteString> {
    "\\PC{0,6}".prop_map(ByteString::from).boxed()
}

/// Short byte arrays.
pub fn bytes() -> BoxedStrategy<Bytes> {
    proptest::collection::vec(any::<u8>(), 0..12)
        .prop_map(Bytes::from)
        .boxed()
}

/// Any UUID.
pub fn uuid() -> BoxedStrategy<Uuid> {
    any::<[u8; 16]>().prop_map(Uuid::from_bytes).boxed()
}

/// Floats that compare equal to themselves (no NaN).
pub fn float64() -> BoxedStrategy<f64> {
    prop_oneof![
        proptest::num::f64::NORMAL,
        proptest::num::f64::ZERO,
        proptest::num::f64::INFINITE,
        proptest::num::f64::SUBNORMAL
    ]
    .boxed()
}

/// Arrays of up to three elements.
pub fn array<T: std::fmt::Debug + 'static>(element: BoxedStrategy<T>) -> BoxedStrategy<Vec<T>> {
    proptest::collection::vec(element, 0..3).boxed()
}

/// A value that is sometimes null.
pub fn nullable<T: std::fmt::Debug + 'static>(value: BoxedStrategy<T>) -> BoxedStrategy<Option<T>> {
    proptest::option::weighted(0.8, value).boxed()
}

/// A value that is never null, in an `Option` field.
pub fn some<T: std::fmt::Debug + 'static>(value: BoxedStrategy<T>) -> BoxedStrategy<Option<T>> {
    value.prop_map(Some).boxed()
}

/// Unknown tagged fields with tags from `first_free` up, in tag order.
pub fn unknown_tags(first_free: u32) -> BoxedStrategy<Vec<RawTaggedField>> {
    proptest::collection::btree_map(first_free..first_free + 200, bytes(), 0..2)
        .prop_map(|fields| {
            fields
                .into_iter()
                .map(|(tag, data)| RawTaggedField { tag, data })
                .collect()
        })
        .boxed()
}
