//! An OpenAI embeddings request as Gemini's `embedContent` or `batchEmbedContents` body.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::request::{text_part, unsupported};
use crate::EmbeddingRequest;
use crate::error::{Error, Result};
use crate::provider::ProviderKind;
use crate::provider::convert::embedding_texts;
use crate::spec::gemini::{BatchEmbedContentsRequest, Content, EmbedContentRequest};

/// The embeddings request: one `embedContent` for a single text, `batchEmbedContents` for
/// several. `model_name` is the resource name (`models/text-embedding-004`).
pub fn embed_body(kind: ProviderKind, req: &EmbeddingRequest, model_name: &str) -> Result<(bool, Bytes)> {
    let texts = embedding_texts(&req.input, kind)?;
    if req.user.is_some() {
        return Err(unsupported(kind, "the `user` parameter"));
    }
    let task_type = req.extra.get("task_type").and_then(Value::as_str).map(str::to_string);
    let one = |text: &str| EmbedContentRequest {
        model: Some(model_name.to_string()),
        content: Content { role: None, parts: Some(vec![text_part(text.to_string())]), extra: Map::new() },
        task_type: task_type.clone(),
        title: None,
        output_dimensionality: req.dimensions,
        extra: Map::new(),
    };
    let body = if let [single] = texts {
        serde_json::to_vec(&one(single))
    } else {
        serde_json::to_vec(&BatchEmbedContentsRequest {
            requests: texts.iter().map(|t| one(t)).collect(),
            extra: Map::new(),
        })
    }
    .map_err(|e| Error::invalid(e.to_string(), None))?;
    Ok((texts.len() == 1, Bytes::from(body)))
}
