//! Validating JSON against a schema: a component of one of our OpenAPI descriptions (the
//! dialect of `openapi/README.md`: OpenAPI 3.0's `nullable`, local `$ref`s, `allOf`, `oneOf`)
//! or a tool's JSON Schema (`type` arrays, `const`, `$defs`). It checks what the live
//! conformance checks need: types, required fields, enums, nested objects and arrays,
//! numeric and length bounds, patterns and `additionalProperties: false`. Formats are not
//! checked. Every violation is reported with its JSON path.
//!
//! A JSON Schema validator crate would need OpenAPI 3.0's `nullable` translated first, and
//! `oneOf` over our hand-written hubs reported per variant; the subset here is small.

use serde_json::{Map, Value};

/// How deep references are followed (guards against cycles in a schema).
const MAX_DEPTH: usize = 64;

/// A document the schemas live in: an OpenAPI description or a JSON Schema.
#[derive(Debug)]
pub struct Schemas<'d> {
    doc: &'d Value,
}

impl<'d> Schemas<'d> {
    /// Schemas resolved within `doc`.
    pub fn new(doc: &'d Value) -> Self {
        Self { doc }
    }

    /// Violations of `value` against the component schema `name` (none: it is valid).
    pub fn validate_component(&self, name: &str, value: &Value) -> Vec<String> {
        match self.doc.pointer(&format!("/components/schemas/{name}")) {
            Some(schema) => self.validate(schema, value),
            None => vec![format!("the description has no schema `{name}`")],
        }
    }

    /// Violations of `value` against `schema` (none: it is valid).
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        self.check(schema, value, "$", &mut out, 0);
        out
    }

    fn resolve(&self, reference: &str) -> Option<&'d Value> {
        let pointer = reference.strip_prefix('#')?;
        self.doc.pointer(pointer)
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(s) = schema.as_object() else {
            // `true` / `{}`: anything; `false`: nothing.
            if schema == &Value::Bool(false) {
                out.push(format!("{at}: no value is allowed here"));
            }
            return;
        };
        if let Some(reference) = s.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) => self.check(target, value, at, out, depth + 1),
                None => out.push(format!("{at}: unresolvable reference {reference}")),
            }
        }
        if value.is_null() && s.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, at, out, depth + 1);
            }
        }
        for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(options) = s.get(keyword).and_then(Value::as_array) {
                self.check_union(options, value, at, exactly_one, out, depth);
            }
        }
        if let Some(t) = s.get("type") {
            let allowed: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| is_type(value, t)) {
                out.push(format!("{at}: expected {}, found {}", allowed.join(" or "), json_type(value)));
                return;
            }
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array)
            && !values.contains(value)
        {
            let listed: Vec<String> = values.iter().map(Value::to_string).collect();
            out.push(format!("{at}: {value} is not one of {}", listed.join(", ")));
        }
        if let Some(constant) = s.get("const")
            && constant != value
        {
            out.push(format!("{at}: expected {constant}, found {value}"));
        }
        match value {
            Value::Object(object) => self.check_object(s, object, at, out, depth),
            Value::Array(items) => self.check_array(s, items, at, out, depth),
            Value::String(text) => check_string(s, text, at, out),
            Value::Number(n) => check_number(s, n.as_f64().unwrap_or(0.0), at, out),
            _ => {}
        }
    }

    fn check_union(
        &self,
        options: &[Value],
        value: &Value,
        at: &str,
        exactly_one: bool,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        let results: Vec<Vec<String>> = options
            .iter()
            .map(|option| {
                let mut problems = Vec::new();
                self.check(option, value, at, &mut problems, depth + 1);
                problems
            })
            .collect();
        let matching = results.iter().filter(|r| r.is_empty()).count();
        if matching == 0 {
            // The variant that came closest says most about what is wrong.
            let closest = results.iter().min_by_key(|r| r.len()).cloned().unwrap_or_default();
            out.push(format!("{at}: matches none of the {} alternatives", options.len()));
            out.extend(closest.into_iter().map(|p| format!("  (closest) {p}")));
        } else if exactly_one && matching > 1 {
            out.push(format!("{at}: matches {matching} of the oneOf alternatives, not exactly one"));
        }
    }

    fn check_object(
        &self,
        s: &Map<String, Value>,
        object: &Map<String, Value>,
        at: &str,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        let properties = s.get("properties").and_then(Value::as_object);
        for name in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                out.push(format!("{at}: the required field `{name}` is missing"));
            }
        }
        for (name, field) in object {
            let path = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(schema) => self.check(schema, field, &path, out, depth + 1),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(format!("{at}: the field `{name}` is not allowed")),
                    Some(extra @ Value::Object(_)) => self.check(extra, field, &path, out, depth + 1),
                    _ => {}
                },
            }
        }
        if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
            && (object.len() as u64) < min
        {
            out.push(format!("{at}: has {} fields, fewer than {min}", object.len()));
        }
    }

    fn check_array(&self, s: &Map<String, Value>, items: &[Value], at: &str, out: &mut Vec<String>, depth: usize) {
        if let Some(item) = s.get("items") {
            for (i, value) in items.iter().enumerate() {
                self.check(item, value, &format!("{at}[{i}]"), out, depth + 1);
            }
        }
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            out.push(format!("{at}: has {} items, fewer than {min}", items.len()));
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > max
        {
            out.push(format!("{at}: has {} items, more than {max}", items.len()));
        }
    }
}

fn check_string(s: &Map<String, Value>, text: &str, at: &str, out: &mut Vec<String>) {
    let chars = text.chars().count() as u64;
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        out.push(format!("{at}: shorter than {min} characters"));
    }
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        out.push(format!("{at}: longer than {max} characters"));
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
        match regress::Regex::new(pattern) {
            Ok(re) if re.find(text).is_none() => out.push(format!("{at}: {text:?} does not match /{pattern}/")),
            Ok(_) => {}
            Err(e) => out.push(format!("{at}: the schema's pattern /{pattern}/ does not compile ({e})")),
        }
    }
}

fn check_number(s: &Map<String, Value>, n: f64, at: &str, out: &mut Vec<String>) {
    let bound = |k: &str| s.get(k).and_then(Value::as_f64);
    if let Some(min) = bound("minimum")
        && n < min
    {
        out.push(format!("{at}: {n} is below the minimum {min}"));
    }
    if let Some(max) = bound("maximum")
        && n > max
    {
        out.push(format!("{at}: {n} is above the maximum {max}"));
    }
    if let Some(min) = bound("exclusiveMinimum")
        && n <= min
    {
        out.push(format!("{at}: {n} is not above {min}"));
    }
    if let Some(max) = bound("exclusiveMaximum")
        && n >= max
    {
        out.push(format!("{at}: {n} is not below {max}"));
    }
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.as_i64().is_some() || value.as_u64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Response": {"type": "object", "required": ["id", "choices", "logprobs"], "properties": {
                "id": {"type": "string"},
                "logprobs": {"type": "object", "nullable": true},
                "choices": {"type": "array", "items": {"$ref": "#/components/schemas/Choice"}},
            }},
            "Choice": {"type": "object", "required": ["finish_reason"], "properties": {
                "finish_reason": {"$ref": "#/components/schemas/Finish"},
                "index": {"type": "integer", "minimum": 0},
            }},
            "Finish": {"type": "string", "enum": ["stop", "length"]},
            "Part": {"oneOf": [
                {"type": "object", "required": ["type"], "properties": {"type": {"type": "string", "enum": ["text"]}}},
                {"type": "object", "required": ["type"], "properties": {"type": {"type": "string", "enum": ["image"]}}},
            ]},
        }}})
    }

    #[test]
    fn a_valid_value_has_no_violations() {
        let doc = doc();
        let schemas = Schemas::new(&doc);
        let ok = json!({"id": "x", "logprobs": null, "choices": [{"finish_reason": "stop", "index": 0}], "extra": 1});
        assert_eq!(schemas.validate_component("Response", &ok), Vec::<String>::new());
        assert!(schemas.validate_component("Part", &json!({"type": "image"})).is_empty());
    }

    #[test]
    fn violations_name_their_path() {
        let doc = doc();
        let schemas = Schemas::new(&doc);
        let bad = json!({"id": 7, "choices": [{"finish_reason": "eos", "index": -1}]});
        let problems = schemas.validate_component("Response", &bad);
        assert!(problems.contains(&"$: the required field `logprobs` is missing".to_string()), "{problems:?}");
        assert!(problems.contains(&"$.id: expected string, found number".to_string()), "{problems:?}");
        assert!(
            problems.iter().any(|p| p.starts_with("$.choices[0].finish_reason: \"eos\" is not one of")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("$.choices[0].index: -1 is below the minimum 0")), "{problems:?}");
        let none = schemas.validate_component("Part", &json!({"type": "audio"}));
        assert!(none[0].contains("matches none of the 2 alternatives"), "{none:?}");
    }

    #[test]
    fn json_schema_for_tool_arguments() {
        let tool = json!({"type": "object", "required": ["city"], "additionalProperties": false, "properties": {
            "city": {"type": "string", "minLength": 1},
            "unit": {"type": ["string", "null"], "enum": ["c", "f", null]},
            "days": {"type": "integer", "maximum": 14},
            "code": {"type": "string", "pattern": "^[A-Z]{2}$"},
        }});
        let schemas = Schemas::new(&tool);
        assert!(schemas.validate(&tool, &json!({"city": "Paris", "unit": null, "days": 3, "code": "FR"})).is_empty());
        let problems = schemas.validate(&tool, &json!({"unit": "k", "days": 30, "code": "fr", "wind": true}));
        assert_eq!(problems.len(), 5, "{problems:?}");
    }
}
