//! A blocking facade over [`crate::Client`], for programs without an async runtime.
//!
//! ```
//! use switchyard::{ChatMessage, ChatRequest};
//! let client = switchyard::blocking::Client::from_env()?;
//! let req = ChatRequest::new("mock/echo", vec![ChatMessage::user("one two three")]);
//! let mut text = String::new();
//! for chunk in client.chat_stream(&req)? {
//!     for choice in chunk?.choices {
//!         text.push_str(choice.delta.content.as_deref().unwrap_or(""));
//!     }
//! }
//! assert_eq!(text, "one two three");
//! # Ok::<(), switchyard::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::error::{Error, Result};
use crate::provider::ProviderKind;
use crate::{ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

/// The blocking client. It owns a small runtime; do not use it from async code (it says so
/// with an error rather than deadlocking).
#[derive(Clone)]
pub struct Client {
    inner: crate::Client,
    runtime: Arc<Runtime>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Client").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl Client {
    /// A blocking client configured from the environment.
    pub fn from_env() -> Result<Self> {
        Self::new(crate::Client::from_env()?)
    }

    /// Wraps an async client.
    pub fn new(inner: crate::Client) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the runtime: {e}")))?;
        Ok(Self { inner, runtime: Arc::new(runtime) })
    }

    /// A chat completion.
    pub fn chat(&self, request: &ChatRequest) -> Result<ChatResponse> {
        self.block_on(self.inner.chat(request))
    }

    /// A streamed chat completion, as an iterator of chunks.
    pub fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        let stream = self.block_on(self.inner.chat_stream(request))?;
        Ok(ChatStream { stream, runtime: self.runtime.clone() })
    }

    /// Embeddings.
    pub fn embed(&self, request: &EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.block_on(self.inner.embed(request))
    }

    /// The models a provider offers.
    pub fn models(&self, provider: ProviderKind) -> Result<ModelList> {
        self.block_on(self.inner.models(provider))
    }

    fn block_on<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Config(
                "switchyard::blocking::Client was called inside an async runtime; use switchyard::Client there".into(),
            ));
        }
        self.runtime.block_on(future)
    }
}

/// A streamed chat completion, read by blocking.
pub struct ChatStream {
    stream: crate::ChatStream,
    runtime: Arc<Runtime>,
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::ChatStream").field("stream", &self.stream).finish_non_exhaustive()
    }
}

impl ChatStream {
    /// Reads the rest of the stream and assembles the whole answer.
    pub fn collect_response(self) -> Result<ChatResponse> {
        self.runtime.block_on(self.stream.collect_response())
    }
}

impl Iterator for ChatStream {
    type Item = Result<ChatChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.runtime.block_on(self.stream.next_chunk())
    }
}
