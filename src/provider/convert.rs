//! Mapping helpers shared by the native adapters (Anthropic, Gemini, Bedrock, Cohere).

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::spec::openai::{Embedding, EmbeddingEncodingFormat, EmbeddingVector};

/// A data URL's media type and base64 payload (`data:image/png;base64,AAAA`).
pub(crate) fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, payload))
}

/// Tool-call arguments as the JSON object native APIs want; empty text means no arguments.
/// The error completes "`...arguments` ...".
pub(crate) fn parse_arguments(arguments: &str) -> Result<Map<String, Value>, String> {
    if arguments.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("must be a JSON object, not {other}")),
        Err(e) => Err(format!("is not valid JSON ({e})")),
    }
}

/// `{"type": "object"}`: the schema of "any JSON object".
pub(crate) fn any_object() -> Map<String, Value> {
    let mut schema = Map::new();
    schema.insert("type".into(), Value::String("object".into()));
    schema
}

/// OpenAI embeddings from vectors, as base64 little-endian f32s when that was asked for.
pub(crate) fn embeddings(vectors: Vec<Vec<f64>>, format: Option<&EmbeddingEncodingFormat>) -> Vec<Embedding> {
    let base64 = format.is_some_and(|f| *f == EmbeddingEncodingFormat::Base64);
    vectors
        .into_iter()
        .enumerate()
        .map(|(index, values)| Embedding {
            index: i64::try_from(index).unwrap_or(i64::MAX),
            object: "embedding".into(),
            embedding: if base64 {
                #[expect(clippy::cast_possible_truncation, reason = "OpenAI's base64 embeddings are f32s")]
                let bytes: Vec<u8> = values.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
                EmbeddingVector::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingVector::Array(values)
            },
            extra: Map::new(),
        })
        .collect()
}
