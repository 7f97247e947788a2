//! AWS botocore service models (`service-2.json`) read as OpenAPI: Bedrock publishes no
//! OpenAPI description, and its botocore model is the closest published contract.
//!
//! Each shape becomes a schema under `components.schemas` of the same name: a `structure` an
//! object with its members as properties (a `union` structure too: AWS unions are objects with
//! exactly one member set, which is how `openapi/bedrock.yaml` writes them), a `list` an array,
//! a `map` an object with `additionalProperties`, `string` a string (with its `enum`), the
//! number kinds `integer` or `number`, `blob` and `timestamp` strings, and `document` any
//! JSON. Members refer to their shapes with `$ref`, so the drift comparison follows them as
//! it follows OpenAPI references.

use serde_json::{Map, Value, json};

/// Whether `doc` is a botocore service model.
pub fn is_botocore(doc: &Value) -> bool {
    doc.get("shapes").is_some_and(Value::is_object) && doc.get("metadata").is_some_and(Value::is_object)
}

/// The model as an OpenAPI-shaped document: `openapi` names the protocol, `info.version` the
/// API version, and `components.schemas` holds one schema per shape.
pub fn to_openapi(doc: &Value) -> Value {
    let metadata = &doc["metadata"];
    let protocol = metadata.get("protocol").and_then(Value::as_str).unwrap_or("?");
    let version = metadata.get("apiVersion").and_then(Value::as_str).unwrap_or("?");
    let mut schemas = Map::new();
    for (name, shape) in doc["shapes"].as_object().into_iter().flatten() {
        schemas.insert(name.clone(), schema(shape));
    }
    json!({
        "openapi": format!("botocore {protocol}"),
        "info": {"version": version},
        "components": {"schemas": schemas},
    })
}

fn reference(member: &Value) -> Value {
    match member.get("shape").and_then(Value::as_str) {
        Some(shape) => json!({"$ref": format!("#/components/schemas/{shape}")}),
        None => json!({}),
    }
}

fn schema(shape: &Value) -> Value {
    match shape.get("type").and_then(Value::as_str).unwrap_or("") {
        "structure" => {
            let properties: Map<String, Value> = shape
                .get("members")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, member)| (name.clone(), reference(member)))
                .collect();
            let mut out = json!({"type": "object", "properties": properties});
            if let Some(required) = shape.get("required").filter(|r| r.is_array()) {
                out["required"] = required.clone();
            }
            out
        }
        "list" => json!({"type": "array", "items": reference(&shape["member"])}),
        "map" => json!({"type": "object", "additionalProperties": reference(&shape["value"])}),
        "string" => match shape.get("enum") {
            Some(values) => json!({"type": "string", "enum": values}),
            None => json!({"type": "string"}),
        },
        "integer" | "long" | "short" | "byte" => json!({"type": "integer"}),
        "float" | "double" | "bigdecimal" => json!({"type": "number"}),
        "boolean" => json!({"type": "boolean"}),
        "blob" | "timestamp" => json!({"type": "string"}),
        // `document`: any JSON value.
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_become_schemas() {
        let model = json!({
            "metadata": {"protocol": "rest-json", "apiVersion": "2023-09-30"},
            "shapes": {
                "Message": {"type": "structure", "required": ["role"], "members": {
                    "role": {"shape": "Role"}, "content": {"shape": "Blocks"}}},
                "Blocks": {"type": "list", "member": {"shape": "Block"}},
                "Block": {"type": "structure", "union": true, "members": {"text": {"shape": "String"}}},
                "Role": {"type": "string", "enum": ["user", "assistant"]},
                "String": {"type": "string"},
                "Fields": {"type": "map", "key": {"shape": "String"}, "value": {"shape": "Doc"}},
                "Doc": {"type": "structure", "members": {}, "document": true},
                "Count": {"type": "integer"},
            }
        });
        assert!(is_botocore(&model));
        let doc = to_openapi(&model);
        assert_eq!(doc["openapi"], "botocore rest-json");
        assert_eq!(doc["info"]["version"], "2023-09-30");
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Message"]["required"], json!(["role"]));
        assert_eq!(schemas["Message"]["properties"]["content"]["$ref"], "#/components/schemas/Blocks");
        assert_eq!(schemas["Blocks"]["items"]["$ref"], "#/components/schemas/Block");
        assert_eq!(schemas["Role"]["enum"], json!(["user", "assistant"]));
        assert_eq!(schemas["Fields"]["additionalProperties"]["$ref"], "#/components/schemas/Doc");
        assert_eq!(schemas["Count"]["type"], "integer");
        assert!(!is_botocore(&json!({"openapi": "3.0.3"})));
    }
}
