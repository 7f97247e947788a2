//! The built-in mock provider (`mock/...`): deterministic answers with no network and no key,
//! so the CLI, the gateway and tests work out of the box.
//!
//! It speaks OpenAI's wire format through the same encode/decode path as real providers, so
//! a round trip through it exercises the whole client. What it does is chosen by the model:
//!
//! | model | behaviour |
//! | --- | --- |
//! | `mock/echo` | answers with the last user message |
//! | `mock/tools` | calls the first declared tool (or the one `tool_choice` names) with arguments its schema accepts (each required property, or the first, with a value of its type; strings are the last user text; `{"input": <text>}` for a tool with no properties); echoes when no tools are given |
//! | `mock/slow-<ms>` | echoes after `<ms>` milliseconds (for streams, before the first chunk) |
//! | `mock/error-<status>` | fails with that HTTP status and OpenAI's error envelope; 429 and 503 carry `retry-after: 1` |
//! | `mock/context-length` | fails like an over-long prompt (400, `context_length_exceeded`) |
//! | `mock/truncated` | streams half an answer, then the connection ends without `[DONE]` |
//! | any `mock/...` | embeddings: a deterministic unit vector per input (8 dimensions, or `dimensions`) |
//!
//! Usage counts words, not tokens.

use bytes::Bytes;
use http::HeaderMap;

use crate::provider::openai::{OpenAiFormat, Operation};
use crate::provider::{InProcess, ProviderKind};
use crate::transport::RawResponse;

mod upstream;

pub use upstream::{MODELS, serve};

const BASE_URL: &str = "http://mock.switchyard.invalid/v1";

/// The mock provider. It has no settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mock;

impl InProcess for Mock {
    fn call(&self, request: http::Request<Bytes>) -> futures_core::future::BoxFuture<'static, RawResponse> {
        Box::pin(serve(request))
    }
}

impl OpenAiFormat for Mock {
    fn provider(&self) -> ProviderKind {
        ProviderKind::Mock
    }

    fn url(&self, operation: Operation, _model: &str) -> String {
        format!("{BASE_URL}{}", operation.path())
    }

    fn headers(&self) -> &HeaderMap {
        static NONE: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(HeaderMap::new);
        &NONE
    }

    fn in_process(&self) -> Option<&dyn InProcess> {
        Some(self)
    }
}
