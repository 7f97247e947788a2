#![doc = include_str!("../README.md")]
// Library code returns errors; tests may panic (clippy.toml allows it in test modules).
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "admin-client")]
pub mod admin;
pub mod blocking;
#[doc(hidden)] // the bounds every outside duration passes; public for the fuzz targets
pub mod bounds;
pub mod cache;
pub mod catalog;
mod client;
#[cfg(feature = "test-util")]
pub mod conformance;
#[cfg(feature = "test-util")]
pub mod drift;
mod engine;
pub mod error;
#[cfg(feature = "gateway")]
pub mod gateway;
pub mod hooks;
mod model_ref;
pub mod pricing;
pub mod provider;
#[cfg(feature = "redis")]
mod redis_conn;
pub mod router;
pub mod spec;
pub mod tokens;
pub mod transport;

// What a user of the SDK needs is here at the root; the modules hold the rest (the wire
// types in `spec`, the provider configurations in `provider`, the gateway behind its
// feature). Provider internals (request, response, stream and error mappers, the HTTP
// helpers, the transport's client) are crate-private.

// One provider: the client, its settings, its streams.
pub use client::{Client, ClientBuilder, ProviderSettings};
pub use model_ref::ModelRef;
pub use provider::chat_stream::{ChatStream, ChunkAccumulator, MAX_EVENT as MAX_STREAM_EVENT};
pub use provider::{Provider, ProviderKind};
pub use transport::{RetryPolicy, Timeouts};
// Many deployments: routing, fallbacks, shared state.
pub use router::{Deployment, RoutedStream, Router, RouterBuilder, SharedState, Strategy};
// What a call costs, what it saw, what it may reuse.
pub use cache::ResponseCache;
pub use hooks::{CallEvent, EventKind, Hooks};
pub use pricing::{Receipt, Registry};
// Errors, and the request and answer types.
pub use error::{ApiError, Error, ErrorKind, Result};
pub use spec::ext::{ChatMessage, ContentPart, EmbeddingInput, MessageContent, Nullable};

/// A chat completion request (OpenAI's `CreateChatCompletionRequest`).
pub type ChatRequest = spec::openai::CreateChatCompletionRequest;
/// A chat completion (OpenAI's `CreateChatCompletionResponse`).
pub type ChatResponse = spec::openai::CreateChatCompletionResponse;
/// One chunk of a streamed chat completion (OpenAI's `CreateChatCompletionStreamResponse`).
pub type ChatChunk = spec::openai::CreateChatCompletionStreamResponse;
/// An embeddings request.
pub type EmbeddingRequest = spec::openai::CreateEmbeddingRequest;
/// An embeddings answer.
pub type EmbeddingResponse = spec::openai::CreateEmbeddingResponse;
/// A list of models.
pub type ModelList = spec::openai::ListModelsResponse;

/// The reference pages in `docs/`, compiled and run as doc tests like the README.
#[cfg(doctest)]
pub mod doc_pages {
    #[doc = include_str!("../docs/sdk.md")]
    pub struct Sdk;
    #[doc = include_str!("../docs/gateway.md")]
    pub struct Gateway;
    #[doc = include_str!("../docs/providers.md")]
    pub struct Providers;
    #[doc = include_str!("../docs/operations.md")]
    pub struct Operations;
    #[doc = include_str!("../docs/cli.md")]
    pub struct Cli;
    #[doc = include_str!("../docs/testing.md")]
    pub struct Testing;
}
