//! The comparable shape of a schema: its types, fields, enum values and union tags, with
//! `$ref`s followed and `allOf` merged. Reads OpenAPI 3.0 (`nullable`) and 3.1 (type arrays,
//! `const`) alike.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// What the drift report compares.
#[derive(Debug, Default, Clone)]
pub struct Shape {
    /// JSON types, without `null`.
    pub types: BTreeSet<String>,
    /// Property name to its (unresolved) schema.
    pub properties: BTreeMap<String, Value>,
    /// String enum values (and `const`).
    pub enum_values: BTreeSet<String>,
    /// The tag values of a tagged union's variants (their one-value `type` or `role`).
    pub tags: BTreeSet<String>,
    /// The item schema of an array.
    pub items: Option<Value>,
}

/// How deep `$ref` chains are followed before giving up (guards against cycles).
const MAX_DEPTH: usize = 24;

/// The shape of `schema`, resolving references within `doc`.
pub fn shape(doc: &Value, schema: &Value) -> Shape {
    let mut out = Shape::default();
    collect(doc, schema, &mut out, 0);
    out
}

fn collect(doc: &Value, schema: &Value, out: &mut Shape, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let Some(obj) = schema.as_object() else {
        return;
    };
    if let Some(target) = obj.get("$ref").and_then(Value::as_str).and_then(|r| resolve_ref(doc, r)) {
        collect(doc, target, out, depth + 1);
    }
    match obj.get("type") {
        Some(Value::String(t)) => add_type(out, t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).for_each(|t| add_type(out, t)),
        _ => {}
    }
    for value in obj.get("enum").and_then(Value::as_array).into_iter().flatten().chain(obj.get("const")) {
        if !value.is_null() {
            out.enum_values.insert(value.as_str().map_or_else(|| value.to_string(), str::to_string));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            out.properties.entry(name.clone()).or_insert_with(|| prop.clone());
        }
    }
    if let Some(items) = obj.get("items") {
        out.items.get_or_insert_with(|| items.clone());
    }
    for part in obj.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        collect(doc, part, out, depth + 1);
    }
    for key in ["oneOf", "anyOf"] {
        let variants: Vec<&Value> = obj.get(key).and_then(Value::as_array).into_iter().flatten().collect();
        let non_null: Vec<&Value> = variants.iter().copied().filter(|v| !is_null_schema(v)).collect();
        if let [only] = non_null.as_slice() {
            // `anyOf: [X, {type: null}]` is just a nullable X.
            collect(doc, only, out, depth + 1);
            continue;
        }
        for variant in non_null {
            let mut inner = Shape::default();
            collect(doc, variant, &mut inner, depth + 1);
            if let Some(tag) = tag_of(doc, &inner, depth) {
                out.tags.insert(tag);
            }
            out.types.extend(inner.types);
            out.enum_values.extend(inner.enum_values);
            out.tags.extend(inner.tags);
            if out.items.is_none() {
                out.items = inner.items;
            }
        }
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

fn add_type(out: &mut Shape, t: &str) {
    if t != "null" {
        out.types.insert(t.to_string());
    }
}

/// The tag of a union variant: the single value of its `type` (or `role`) property.
fn tag_of(doc: &Value, variant: &Shape, depth: usize) -> Option<String> {
    for key in ["type", "role"] {
        if let Some(prop) = variant.properties.get(key) {
            let mut tag = Shape::default();
            collect(doc, prop, &mut tag, depth + 1);
            if tag.enum_values.len() == 1 {
                return tag.enum_values.into_iter().next();
            }
        }
    }
    None
}

/// `#/components/schemas/Name` (or any local JSON pointer).
pub fn resolve_ref<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// The schema at `path` in `doc`: `Name`, `Name.field`, `Name.field[]`, `Name.a.b`.
pub fn at_path<'a>(doc: &Value, path: &'a str) -> Option<Value> {
    let split = |segment: &'a str| match segment.find("[]") {
        Some(i) => (&segment[..i], segment[i..].matches("[]").count()),
        None => (segment, 0),
    };
    let mut segments = path.split('.');
    let (root, root_arrays) = split(segments.next()?);
    let mut current = doc.pointer(&format!("/components/schemas/{root}"))?.clone();
    for _ in 0..root_arrays {
        current = shape(doc, &current).items?;
    }
    for segment in segments {
        let (field, arrays) = split(segment);
        current = shape(doc, &current).properties.get(field)?.clone();
        for _ in 0..arrays {
            current = shape(doc, &current).items?;
        }
    }
    Some(current)
}

/// The types as one word for reports: `string`, `integer|null`, `object|string`.
pub fn describe(types: &BTreeSet<String>) -> String {
    if types.is_empty() { "any".into() } else { types.iter().cloned().collect::<Vec<_>>().join("|") }
}
