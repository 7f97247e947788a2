//! A field that may be absent, `null`, or a value, and is written back the way it came.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An optional, nullable field that remembers whether it was absent or `null`.
///
/// OpenAI's streams send `"refusal": null` or `"usage": null` on some chunks and omit them on
/// others; an `Option` cannot tell the two apart, so a decoded chunk would re-encode
/// differently. Read it like an `Option` with [`Nullable::as_ref`], [`Nullable::as_deref`] or
/// [`Nullable::into_option`]; build it from a value or an `Option` with `.into()`.
///
/// ```
/// use switchyard::spec::ext::Nullable;
/// let set: Nullable<String> = "hi".to_string().into();
/// assert_eq!(set.as_deref(), Some("hi"));
/// assert!(Nullable::<String>::Null.as_ref().is_none());
/// assert!(Nullable::<String>::default().is_absent());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nullable<T> {
    /// The field was not present.
    #[default]
    Absent,
    /// The field was present as `null`.
    Null,
    /// The field had a value.
    Value(T),
}

impl<T> Nullable<T> {
    /// True when the field was not present (it is then not written either).
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    /// True when the field holds a value.
    pub fn is_some(&self) -> bool {
        matches!(self, Self::Value(_))
    }

    /// True when there is no value (absent or `null`).
    pub fn is_none(&self) -> bool {
        !self.is_some()
    }

    /// The value, if any.
    pub fn as_ref(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The value, mutably, if any.
    pub fn as_mut(&mut self) -> Option<&mut T> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The value, dereferenced (`&str` for `Nullable<String>`).
    pub fn as_deref(&self) -> Option<&T::Target>
    where
        T: std::ops::Deref,
    {
        self.as_ref().map(|v| &**v)
    }

    /// The value as an `Option`, forgetting absent versus `null`.
    pub fn into_option(self) -> Option<T> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Takes the value out, leaving the field absent.
    pub fn take(&mut self) -> Option<T> {
        std::mem::take(self).into_option()
    }
}

impl<T> From<T> for Nullable<T> {
    fn from(value: T) -> Self {
        Self::Value(value)
    }
}

impl<T> From<Option<T>> for Nullable<T> {
    /// `None` becomes absent: a field the caller did not set is not sent.
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Absent, Self::Value)
    }
}

impl<T: Serialize> Serialize for Nullable<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => serializer.serialize_some(v),
            Self::Absent | Self::Null => serializer.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Self::Null, Self::Value))
    }
}
