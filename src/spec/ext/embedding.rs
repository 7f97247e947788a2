//! Embeddings: the input union (hand-written for readable variants and errors) and helpers.

use base64::Engine as _;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::spec::openai::{CreateEmbeddingRequest, Embedding, EmbeddingVector};

/// What to embed.
#[derive(Clone, Debug, PartialEq)]
pub enum EmbeddingInput {
    /// One text.
    Text(String),
    /// Several texts, one embedding each.
    Texts(Vec<String>),
    /// One text as token ids.
    Tokens(Vec<i64>),
    /// Several texts as token ids.
    TokenBatches(Vec<Vec<i64>>),
}

impl EmbeddingInput {
    /// How many embeddings this input asks for.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(_) | Self::Tokens(_) => 1,
            Self::Texts(texts) => texts.len(),
            Self::TokenBatches(batches) => batches.len(),
        }
    }

    /// Whether it asks for none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for EmbeddingInput {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

impl From<String> for EmbeddingInput {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Vec<String>> for EmbeddingInput {
    fn from(texts: Vec<String>) -> Self {
        Self::Texts(texts)
    }
}

impl Serialize for EmbeddingInput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Texts(texts) => texts.serialize(serializer),
            Self::Tokens(tokens) => tokens.serialize(serializer),
            Self::TokenBatches(batches) => batches.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for EmbeddingInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str =
            "`input` must be a string, an array of strings, an array of token ids, or an array of token-id arrays";
        let value = Value::deserialize(deserializer)?;
        let invalid = || de::Error::custom(EXPECTED);
        match value {
            Value::String(text) => Ok(Self::Text(text)),
            Value::Array(items) => match items.first() {
                None | Some(Value::String(_)) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(invalid()),
                    })
                    .collect::<Result<_, _>>()
                    .map(Self::Texts),
                Some(Value::Number(_)) => {
                    items.iter().map(|v| v.as_i64().ok_or_else(invalid)).collect::<Result<_, _>>().map(Self::Tokens)
                }
                Some(Value::Array(_)) => items
                    .iter()
                    .map(|batch| {
                        batch
                            .as_array()
                            .ok_or_else(invalid)?
                            .iter()
                            .map(|v| v.as_i64().ok_or_else(invalid))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<_, _>>()
                    .map(Self::TokenBatches),
                Some(_) => Err(invalid()),
            },
            _ => Err(invalid()),
        }
    }
}

impl CreateEmbeddingRequest {
    /// A request embedding `input` with `model` (`provider/model`).
    pub fn new(model: impl Into<String>, input: impl Into<EmbeddingInput>) -> Self {
        Self {
            model: model.into(),
            input: input.into(),
            encoding_format: None,
            dimensions: None,
            user: None,
            extra: Default::default(),
        }
    }
}

impl Embedding {
    /// The vector as `f32`s, decoding the base64 form (little-endian f32s) when that was asked
    /// for. `None` for base64 that is not a whole number of f32s.
    pub fn vector(&self) -> Option<Vec<f32>> {
        match &self.embedding {
            #[expect(clippy::cast_possible_truncation, reason = "embeddings are f32 values sent as JSON numbers")]
            EmbeddingVector::Array(values) => Some(values.iter().map(|v| *v as f32).collect()),
            EmbeddingVector::String(text) => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
                if bytes.len() % 4 != 0 {
                    return None;
                }
                Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
        }
    }
}
