//! Decoding unions tagged by a string field (`role`, `type`), with errors that name the
//! union, the tag and the problem, shared by every hand-written hub.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde_json::{Map, Value};

/// A JSON object and the value of its tag field.
pub(crate) struct Tagged {
    pub tag: String,
    pub object: Map<String, Value>,
}

/// Reads an object tagged by `field`; `what` names the union in errors ("message").
pub(crate) fn tagged<'de, D: Deserializer<'de>>(deserializer: D, field: &str, what: &str) -> Result<Tagged, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Object(object) => match object.get(field) {
            Some(Value::String(tag)) => Ok(Tagged { tag: tag.clone(), object }),
            Some(other) => Err(de::Error::custom(format_args!("{what} `{field}` must be a string, found {other}"))),
            None => Err(de::Error::custom(format_args!("{what} without `{field}`"))),
        },
        other => Err(de::Error::custom(format_args!("a {what} must be an object, found {}", json_kind(&other)))),
    }
}

/// Decodes the object as the variant its tag names, prefixing errors with the tag.
pub(crate) fn variant<T: DeserializeOwned, E: de::Error>(tagged: Tagged, what: &str) -> Result<T, E> {
    T::deserialize(Value::Object(tagged.object))
        .map_err(|e| E::custom(format_args!("invalid `{}` {what}: {e}", tagged.tag)))
}

/// "a string", "an array", ... for error messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
