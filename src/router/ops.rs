//! The operations the router routes: the engine's, with what the router needs to know of
//! them, and a stream attempted until its first chunk.

use std::time::Instant;

use crate::engine::{self, Operation};
use crate::error::Result;
use crate::provider::Provider;
use crate::provider::chat_stream::ChatStream;
use crate::provider::native::Native;
use crate::transport::Transport;
use crate::{ChatChunk, ChatRequest};

/// An operation the router can route: the engine's, with what the router needs to know of it.
pub(crate) trait Routable: Operation {
    /// The chat request, for token counts (none for embeddings).
    fn chat_request(&self) -> Option<&ChatRequest>;

    /// When the answer was in hand, for the deployment's latency: a stream's first chunk;
    /// `None` for when the attempt returned.
    fn answered_at(_: &Self::Output) -> Option<Instant> {
        None
    }
}

impl Routable for engine::Chat<'_> {
    fn chat_request(&self) -> Option<&ChatRequest> {
        Some(self.request)
    }
}

impl Routable for engine::Embed<'_> {
    fn chat_request(&self) -> Option<&ChatRequest> {
        None
    }
}

/// A stream, attempted until its first chunk: a failure before it is retried and falls back
/// like any other.
pub(super) struct FirstChunk<'r>(pub(super) &'r ChatRequest, pub(super) Option<&'r Native>);

/// A stream that has started.
pub(super) struct Opened {
    pub(super) stream: ChatStream,
    /// Its first chunk (none for an empty stream).
    pub(super) first: Option<ChatChunk>,
    /// When that chunk came.
    pub(super) at: Instant,
}

impl Operation for FirstChunk<'_> {
    type Output = Opened;
    const STREAM: bool = true;

    async fn attempt(&self, provider: &Provider, transport: &Transport, model: &str, drop: bool) -> Result<Opened> {
        let mut stream = engine::Stream(self.0, self.1).attempt(provider, transport, model, drop).await?;
        let first = stream.next_chunk().await.transpose()?;
        Ok(Opened { stream, first, at: Instant::now() })
    }
}

impl Routable for FirstChunk<'_> {
    fn chat_request(&self) -> Option<&ChatRequest> {
        Some(self.0)
    }

    fn answered_at(opened: &Opened) -> Option<Instant> {
        Some(opened.at)
    }
}
