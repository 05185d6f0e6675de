//! Optional values: the `Optional*` wrapper messages that let a field tell
//! "unset" from a zero value, and conversions between them and Rust's
//! `Option`.
//!
//! On the wire a wrapper is a message with one `value` field; an absent
//! message means unset. In the generated code such a field is a
//! `protobuf::MessageField<OptionalX>`. This module gives every wrapper
//! `From<T>` and `get()`, and every such field [`OptionalExt::value`] and
//! [`OptionalExt::set_value`]; [`optional`] builds a set field in one call.
//!
//! | wrapper | value type |
//! |---|---|
//! | `OptionalString` | `String` |
//! | `OptionalInt` | `i64` |
//! | `OptionalInt32` | `i32` |
//! | `OptionalUInt32` | `u32` |
//! | `OptionalInt64` | `i64` |
//! | `OptionalUInt64` | `u64` |
//! | `OptionalBool` | `bool` |
//! | `OptionalFileMode` | `u32` (Unix mode bits) |
//! | `OptionalRepeatedString` | `Vec<String>` |

use protobuf::MessageField;

use super::{
    OptionalBool, OptionalFileMode, OptionalInt, OptionalInt32, OptionalInt64,
    OptionalRepeatedString, OptionalString, OptionalUInt32, OptionalUInt64,
};

/// An `Optional*` wrapper message: a single value whose presence carries
/// meaning. Implemented by every wrapper in [`crate::api`].
///
/// ```
/// use nri::api::{OptionalMessage, OptionalUInt64};
/// let wrapped = OptionalUInt64::from_value(42);
/// assert_eq!(wrapped.to_value(), 42);
/// ```
pub trait OptionalMessage: protobuf::Message {
    /// The Rust type of the wrapped value.
    type Value;

    /// Wraps a value.
    fn from_value(value: Self::Value) -> Self;

    /// A copy of the wrapped value.
    fn to_value(&self) -> Self::Value;
}

/// `Option`-style access to a `MessageField` holding an `Optional*` wrapper.
///
/// ```
/// use nri::api::{LinuxMemory, OptionalExt};
/// let mut memory = LinuxMemory::new();
/// assert_eq!(memory.limit.value(), None);
/// memory.limit.set_value(Some(1 << 30));
/// assert_eq!(memory.limit.value(), Some(1 << 30));
/// memory.limit.set_value(None);
/// assert!(memory.limit.is_none());
/// ```
pub trait OptionalExt {
    /// The Rust type of the wrapped value.
    type Value;

    /// The value, or `None` when the field is unset.
    fn value(&self) -> Option<Self::Value>;

    /// Sets the field to `Some` value, or unsets it with `None`.
    fn set_value(&mut self, value: Option<Self::Value>);
}

impl<O: OptionalMessage> OptionalExt for MessageField<O> {
    type Value = O::Value;

    fn value(&self) -> Option<O::Value> {
        self.as_ref().map(O::to_value)
    }

    fn set_value(&mut self, value: Option<O::Value>) {
        *self = MessageField::from_option(value.map(O::from_value));
    }
}

/// A set `MessageField` holding `value`; the wrapper type comes from the
/// field being assigned (the Rust counterpart of upstream's `api.Int64(v)`,
/// `api.String(v)` and friends).
///
/// ```
/// use nri::api::{optional, LinuxCPU, OptionalExt};
/// let mut cpu = LinuxCPU::new();
/// cpu.quota = optional(50_000);
/// cpu.period = optional(100_000);
/// assert_eq!(cpu.quota.value(), Some(50_000));
/// assert_eq!(cpu.period.value(), Some(100_000));
/// ```
pub fn optional<O: OptionalMessage>(value: O::Value) -> MessageField<O> {
    MessageField::some(O::from_value(value))
}

macro_rules! optional_wrapper {
    ($wrapper:ident, $value:ty, $sample:expr) => {
        impl OptionalMessage for $wrapper {
            type Value = $value;

            fn from_value(value: $value) -> Self {
                $wrapper {
                    value,
                    ..Default::default()
                }
            }

            fn to_value(&self) -> $value {
                self.value.clone()
            }
        }

        impl From<$value> for $wrapper {
            fn from(value: $value) -> Self {
                <$wrapper as OptionalMessage>::from_value(value)
            }
        }

        impl $wrapper {
            #[doc = concat!("A copy of the wrapped `", stringify!($value), "`.")]
            ///
            /// ```
            #[doc = concat!("use nri::api::", stringify!($wrapper), ";")]
            #[doc = concat!("let sample: ", stringify!($value), " = ", stringify!($sample), ";")]
            #[doc = concat!("let wrapped = ", stringify!($wrapper), "::from(sample.clone());")]
            /// assert_eq!(wrapped.get(), sample);
            /// ```
            pub fn get(&self) -> $value {
                self.value.clone()
            }
        }
    };
}

optional_wrapper!(OptionalString, String, String::from("guaranteed"));
optional_wrapper!(OptionalInt, i64, -1000);
optional_wrapper!(OptionalInt32, i32, -7);
optional_wrapper!(OptionalUInt32, u32, 65534);
optional_wrapper!(OptionalInt64, i64, -1);
optional_wrapper!(OptionalUInt64, u64, u64::MAX);
optional_wrapper!(OptionalBool, bool, false);
optional_wrapper!(OptionalFileMode, u32, 0o644);
optional_wrapper!(
    OptionalRepeatedString,
    Vec<String>,
    vec![String::from("L3:0=ff")]
);

impl From<&str> for OptionalString {
    fn from(value: &str) -> Self {
        OptionalString::from_value(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LinuxDevice, LinuxMemory, LinuxResources};
    use protobuf::Message;

    #[test]
    fn unset_field_reads_as_none_even_for_zero_values() {
        let mut memory = LinuxMemory::new();
        assert_eq!(memory.disable_oom_killer.value(), None);
        memory.disable_oom_killer = optional(false);
        assert_eq!(memory.disable_oom_killer.value(), Some(false));
        memory.swappiness = optional(0);
        assert_eq!(memory.swappiness.value(), Some(0));
    }

    #[test]
    fn set_value_none_unsets_the_field() {
        let mut resources = LinuxResources::new();
        resources.rdt_class.set_value(Some("gold".to_string()));
        assert_eq!(resources.rdt_class.value().as_deref(), Some("gold"));
        resources.rdt_class.set_value(None);
        assert!(resources.rdt_class.is_none());
    }

    #[test]
    fn every_wrapper_round_trips_its_value() {
        assert_eq!(OptionalString::from("x").get(), "x");
        assert_eq!(OptionalInt::from(i64::MIN).get(), i64::MIN);
        assert_eq!(OptionalInt32::from(i32::MAX).get(), i32::MAX);
        assert_eq!(OptionalUInt32::from(u32::MAX).get(), u32::MAX);
        assert_eq!(OptionalInt64::from(-5).get(), -5);
        assert_eq!(OptionalUInt64::from(7).get(), 7);
        assert!(OptionalBool::from(true).get());
        assert_eq!(OptionalFileMode::from(0o2755).get(), 0o2755);
        assert_eq!(
            OptionalRepeatedString::from(vec!["a".to_string()]).get(),
            ["a"]
        );
        // An empty list that is set is not the same as an unset one.
        let mut rdt = crate::api::LinuxRdt::new();
        assert_eq!(rdt.schemata.value(), None);
        rdt.schemata = optional(Vec::new());
        assert_eq!(rdt.schemata.value(), Some(Vec::new()));
    }

    #[test]
    fn set_zero_value_survives_the_wire() {
        let mut device = LinuxDevice::new();
        device.uid = optional(0);
        let bytes = device.write_to_bytes().unwrap();
        let decoded = LinuxDevice::parse_from_bytes(&bytes).unwrap();
        assert_eq!(decoded.uid.value(), Some(0));
        assert_eq!(decoded.gid.value(), None);
    }
}
