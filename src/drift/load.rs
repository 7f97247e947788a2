//! Loading API descriptions: JSON, or YAML with YAML 1.2 semantics (`OFF` and `yes` are
//! strings, not booleans). Integers beyond 64 bits, which upstream descriptions use as
//! bounds, become floats instead of failing the whole file.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// Reads a description as JSON (by extension `.json`, or content starting with `{`) or YAML.
/// A botocore service model is read as OpenAPI (see `botocore.rs`).
pub fn load(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let doc = parse(&text, path.extension().is_some_and(|e| e == "json"))
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(if super::botocore::is_botocore(&doc) { super::botocore::to_openapi(&doc) } else { doc })
}

/// Parses a description's text.
pub fn parse(text: &str, json: bool) -> std::result::Result<Value, String> {
    if json || text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    serde_norway::from_str::<Lenient>(text).map(|l| l.0).map_err(|e| e.to_string())
}

/// A JSON value read from any serde format, accepting 128-bit integers.
struct Lenient(Value);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor).map(Lenient)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    #[expect(clippy::cast_precision_loss, reason = "bounds beyond 64 bits are only compared, never used as integers")]
    fn visit_i128<E: de::Error>(self, v: i128) -> std::result::Result<Value, E> {
        Ok(i64::try_from(v).map(Value::from).unwrap_or_else(|_| float(v as f64)))
    }
    #[expect(clippy::cast_precision_loss, reason = "bounds beyond 64 bits are only compared, never used as integers")]
    fn visit_u128<E: de::Error>(self, v: u128) -> std::result::Result<Value, E> {
        Ok(u64::try_from(v).map(Value::from).unwrap_or_else(|_| float(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Lenient(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some((Lenient(key), Lenient(value))) = map.next_entry()? {
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_2_scalars_and_huge_integers() {
        let v = parse("a: OFF\nb: yes\nc: 1e-08\nd: -9223372036854776000\ne: true\n200: x\n", false);
        let v = v.unwrap_or_default();
        assert_eq!(v["a"], "OFF");
        assert_eq!(v["b"], "yes");
        assert_eq!(v["c"].as_f64(), Some(1e-8));
        assert_eq!(v["d"].as_f64(), Some(-9.223_372_036_854_776e18));
        assert_eq!(v["e"], true);
        assert_eq!(v["200"], "x");
    }
}
