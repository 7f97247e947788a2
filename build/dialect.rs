//! The dialect our descriptions are written in, checked and then prepared for typify.
//!
//! Each rule was learned from a silent mis-decode when typify met an upstream description;
//! `openapi/README.md` explains them to a spec author.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A named string enum, generated as an open enum (known values plus `Other(String)`).
pub struct OpenEnum {
    pub name: String,
    pub description: Option<String>,
    pub values: Vec<String>,
    /// Variant names given by `x-rust-variants` (value -> name), for values whose derived
    /// name would collide (`OTHER` with the catch-all `Other`).
    pub variant_names: BTreeMap<String, String>,
}

/// How a struct field must be adjusted after typify (see postprocess.rs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FieldFix {
    /// Required and nullable: always written (as `null` when `None`), but a missing field
    /// decodes as `None` rather than failing (typify makes it a hard error).
    RequiredNullable,
    /// Optional and nullable: three states (absent, `null`, value), so `null` round-trips.
    TriState,
    /// Optional array or map: `Option<..>`, so an explicit `[]` or `{}` round-trips.
    OptionalCollection,
}

pub struct Prepared {
    /// Schemas as typify should see them.
    pub schemas: BTreeMap<String, Value>,
    pub open_enums: Vec<OpenEnum>,
    /// Schema name -> hand-written Rust type in `crate::spec::ext`.
    pub hubs: Vec<(String, String)>,
    /// (struct name, JSON property name) -> fix.
    pub fields: BTreeMap<(String, String), FieldFix>,
}

/// Returns every violation of the dialect, each with its location.
pub fn check(schemas: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, schema) in schemas {
        if schema.get("nullable").is_some() {
            out.push(format!("{name}: `nullable` on a named schema; put it on the referencing property"));
        }
        walk(schema, name, Place::Component, &mut out);
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// The top of a named component.
    Component,
    /// An inline variant of a `oneOf`.
    Variant,
    /// Anywhere else (a property, array items, ...).
    Inline,
}

fn walk(value: &Value, at: &str, place: Place, out: &mut Vec<String>) {
    let Some(obj) = value.as_object() else { return };
    for banned in ["default", "title", "anyOf", "not"] {
        if obj.contains_key(banned) {
            out.push(format!("{at}: `{banned}` is not used in this dialect"));
        }
    }
    if obj.contains_key("$ref") && obj.keys().any(|k| k != "$ref" && k != "description") {
        out.push(format!("{at}: `$ref` with siblings; wrap it as `allOf: [$ref]`"));
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        if values.len() > 1 && place != Place::Component {
            out.push(format!(
                "{at}: inline enum with {} values; make it a named schema (it becomes an open enum)",
                values.len()
            ));
        }
        if values.iter().any(|v| !v.is_string()) {
            out.push(format!("{at}: enums hold strings only"));
        }
    }
    if obj.contains_key("properties") && place == Place::Inline {
        out.push(format!("{at}: inline object with properties; name it (or make it a oneOf variant)"));
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array)
        && (all.len() != 1 || obj.get("nullable") != Some(&Value::Bool(true)))
    {
        out.push(format!("{at}: `allOf` is only used as `allOf: [$ref]` with `nullable`"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (p, s) in props {
            walk(s, &format!("{at}.{p}"), Place::Inline, out);
        }
    }
    if let Some(items) = obj.get("items") {
        walk(items, &format!("{at}[]"), Place::Inline, out);
    }
    if let Some(add) = obj.get("additionalProperties") {
        walk(add, &format!("{at}{{}}"), Place::Inline, out);
    }
    for key in ["oneOf", "allOf"] {
        for (i, s) in obj.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            walk(s, &format!("{at}.{key}[{i}]"), Place::Variant, out);
        }
    }
}

/// Turns checked schemas into what typify should see, and records what to fix afterwards.
pub fn prepare(schemas: &Map<String, Value>) -> Prepared {
    let mut prepared =
        Prepared { schemas: BTreeMap::new(), open_enums: Vec::new(), hubs: Vec::new(), fields: BTreeMap::new() };
    for (name, schema) in schemas {
        let mut schema = schema.clone();
        if let Some(hub) = schema.get("x-rust-hub").and_then(Value::as_str) {
            prepared.hubs.push((name.clone(), hub.to_string()));
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            prepared.open_enums.push(OpenEnum {
                name: name.clone(),
                description: schema.get("description").and_then(Value::as_str).map(str::to_string),
                values: values.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                variant_names: schema
                    .get("x-rust-variants")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect(),
            });
        }
        if schema.get("properties").is_some() {
            record_fields(name, &schema, &mut prepared.fields);
            if let Some(obj) = schema.as_object_mut() {
                // Keep unknown fields: typify flattens an `extra` map for a non-boolean schema.
                obj.entry("additionalProperties").or_insert_with(|| json!({}));
            }
        }
        rewrite_nullable(&mut schema);
        prepared.schemas.insert(name.clone(), schema);
    }
    prepared
}

fn record_fields(struct_name: &str, schema: &Value, fields: &mut BTreeMap<(String, String), FieldFix>) {
    let required: BTreeSet<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (prop, s) in props {
        let nullable = s.get("nullable") == Some(&Value::Bool(true));
        let is_required = required.contains(prop.as_str());
        let ty = s.get("type").and_then(Value::as_str);
        let is_map = ty == Some("object") && s.get("properties").is_none();
        let fix = match (is_required, nullable) {
            (true, true) => Some(FieldFix::RequiredNullable),
            (false, true) => Some(FieldFix::TriState),
            (false, false) if ty == Some("array") || is_map => Some(FieldFix::OptionalCollection),
            _ => None,
        };
        if let Some(fix) = fix {
            fields.insert((struct_name.to_string(), prop.clone()), fix);
        }
    }
}

/// OpenAPI 3.0 `nullable` -> the JSON Schema form typify understands.
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if obj.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(ty) = obj.get("type").cloned() {
                    obj.insert("type".into(), json!([ty, "null"]));
                } else if let Some(Value::Array(mut all)) = obj.remove("allOf") {
                    all.push(json!({"type": "null"}));
                    obj.insert("oneOf".into(), Value::Array(all));
                }
            }
            obj.values_mut().for_each(rewrite_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}
