//! An OpenAI embeddings request as a Bedrock InvokeModel body (Amazon Titan, Cohere Embed).

use bytes::Bytes;
use serde_json::{Map, Value};

use super::unsupported;
use crate::EmbeddingRequest;
use crate::error::{Error, Result};
use crate::provider::convert::embedding_texts;
use crate::provider::{Ctx, ProviderKind};
use crate::spec::bedrock::{CohereEmbedRequest, TitanEmbedRequest};

/// The embedding model families reached through InvokeModel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbedFamily {
    /// Amazon Titan Text Embeddings: one text per call.
    Titan,
    /// Cohere Embed: up to 96 texts per call.
    Cohere,
}

/// The family of an embedding model id (cross-region prefixes included).
pub fn embed_family(model: &str) -> Option<EmbedFamily> {
    if model.contains("amazon.titan-embed") {
        Some(EmbedFamily::Titan)
    } else if model.contains("cohere.embed") {
        Some(EmbedFamily::Cohere)
    } else {
        None
    }
}

/// The InvokeModel body for an embeddings request.
pub fn embed_body(req: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<Bytes> {
    let texts = embedding_texts(&req.input, ProviderKind::Bedrock)?;
    if req.user.is_some() && !ctx.drop_params {
        return Err(unsupported("the `user` parameter for embeddings"));
    }
    let body = match embed_family(ctx.model) {
        Some(EmbedFamily::Titan) => {
            let [text] = texts else {
                return Err(unsupported(format!(
                    "{} texts in one call to a Titan embedding model (it embeds one text per call; \
                     send one, or use cohere.embed-* for batches)",
                    texts.len()
                )));
            };
            serde_json::to_vec(&TitanEmbedRequest {
                input_text: text.clone(),
                dimensions: req.dimensions,
                normalize: None,
                extra: Map::new(),
            })
        }
        Some(EmbedFamily::Cohere) => {
            if req.dimensions.is_some() && !ctx.drop_params {
                return Err(unsupported("`dimensions` for Cohere embeddings on Bedrock"));
            }
            let input_type = match req.extra.get("input_type") {
                None => "search_document".to_string(),
                Some(Value::String(t)) => t.clone(),
                Some(_) => return Err(Error::invalid("`input_type` must be a string", Some("input_type"))),
            };
            serde_json::to_vec(&CohereEmbedRequest {
                texts: texts.to_vec(),
                input_type,
                truncate: req.extra.get("truncate").and_then(Value::as_str).map(str::to_string),
                embedding_types: None,
                extra: Map::new(),
            })
        }
        None => {
            return Err(unsupported(format!(
                "embeddings with `{}` (Amazon Titan and Cohere embedding models only)",
                ctx.model
            )));
        }
    };
    body.map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_families_are_recognised_with_region_prefixes() {
        assert_eq!(embed_family("amazon.titan-embed-text-v2:0"), Some(EmbedFamily::Titan));
        assert_eq!(embed_family("us.cohere.embed-v4:0"), Some(EmbedFamily::Cohere));
        assert_eq!(embed_family("anthropic.claude-3-haiku-20240307-v1:0"), None);
    }
}
