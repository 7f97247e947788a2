//! [`ChatStream`]: the chunks of a streamed chat completion, and [`ChunkAccumulator`], which
//! assembles chunks into the complete answer (tool-call arguments included).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use serde_json::Map;

use crate::error::{Error, Result};
use crate::provider::native::Tap;
use crate::provider::{Flow, Framer, ProviderKind, StreamDecode};
use crate::spec::ext::Nullable;
use crate::spec::openai::{
    ChatCompletionChoice, ChatCompletionChoiceLogprobs, ChatCompletionMessageToolCall, ChatCompletionResponseMessage,
    ChatCompletionTokenLogprob, ChatRole, CompletionUsage, FinishReason, FunctionCall, ServiceTier, ToolType,
};
use crate::transport::Body;
use crate::{ChatChunk, ChatResponse};

/// The largest single stream event (SSE event or AWS event-stream frame): 16 MiB, AWS's
/// own frame limit; an upstream's 1 GB `data:` line ends the stream with
/// [`Error::TooLarge`] instead of holding a gigabyte.
pub const MAX_EVENT: usize = 16 * 1024 * 1024;

/// A streamed chat completion: a `Stream` of [`ChatChunk`]s.
///
/// An error ends the stream; chunks decoded before it are yielded first.
/// [`ChatStream::collect_response`] assembles the whole answer.
pub struct ChatStream {
    provider: ProviderKind,
    inner: Pin<Box<dyn Stream<Item = Result<ChatChunk>> + Send>>,
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream").field("provider", &self.provider).finish_non_exhaustive()
    }
}

impl ChatStream {
    /// A stream of `body` decoded by `decoder`; with a `tap`, the body's pieces are kept in
    /// it as they arrive (for a native request's caller, who serves them as they are).
    pub(crate) fn new<D: StreamDecode>(
        provider: ProviderKind,
        body: Body,
        decoder: D,
        limits: (Duration, usize),
        tap: Option<Arc<Tap>>,
    ) -> Self {
        let (idle, max_stream) = limits;
        let state = Decoding {
            provider,
            tap,
            pump: Pump::new(provider, decoder, max_stream),
            body,
            idle,
            last_progress: (0, tokio::time::Instant::now()),
            started: false,
        };
        // Boxed: the state moves in and out of every step, and it is hundreds of bytes.
        Self { provider, inner: Box::pin(futures_util::stream::unfold(Box::new(state), Decoding::step)) }
    }

    /// The provider streaming.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// The next chunk; `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<ChatChunk>> {
        std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx)).await
    }

    /// Reads the whole stream and assembles it into one answer, as the non-stream call
    /// would have returned it.
    pub async fn collect_response(mut self) -> Result<ChatResponse> {
        let mut acc = ChunkAccumulator::new();
        while let Some(chunk) = self.next_chunk().await {
            acc.push(&chunk?);
        }
        Ok(acc.finish())
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The sans-IO half of a stream: bytes in as they arrive, chunks out, however the bytes
/// are split; with the event and stream size limits. [`ChatStream`] drives one over a body;
/// the fuzz targets and [`crate::Provider::decode_stream`] drive one over bytes at hand.
pub(crate) struct Pump<D: StreamDecode> {
    provider: ProviderKind,
    framer: D::Framer,
    decoder: D,
    /// Bytes read so far, and the most a whole stream may be.
    received: usize,
    max_stream: usize,
    /// Chunks decoded and not yet taken.
    pub pending: VecDeque<ChatChunk>,
    /// An error to yield once the chunks before it are out.
    pub deferred: Option<Error>,
    /// Nothing more will be decoded.
    pub done: bool,
}

impl<D: StreamDecode> Pump<D> {
    pub(crate) fn new(provider: ProviderKind, decoder: D, max_stream: usize) -> Self {
        Self {
            provider,
            framer: decoder.framer(),
            decoder,
            received: 0,
            max_stream,
            pending: VecDeque::new(),
            deferred: None,
            done: false,
        }
    }

    /// What a rendering decoder made of the bytes pushed last (see
    /// [`StreamDecode::renders_native`]); `None` when the wire's bytes are the caller's.
    fn native_bytes(&mut self) -> Option<Bytes> {
        self.decoder.renders_native().then(|| self.decoder.take_native())
    }

    /// How far the framer has come (see [`Framer::progress`]).
    fn progress(&self) -> u64 {
        self.framer.progress()
    }

    /// Ends the stream with `err` (after the chunks already decoded).
    fn fail(&mut self, err: Error) {
        self.done = true;
        self.deferred = Some(err);
    }

    /// Feeds bytes as they arrived.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.done {
            return;
        }
        self.received = self.received.saturating_add(bytes.len());
        if self.received > self.max_stream {
            let limit = self.max_stream;
            return self.fail(Error::TooLarge { provider: self.provider, what: "stream", limit });
        }
        self.framer.push(bytes);
        self.drain_frames();
        if !self.done && self.framer.buffered() > MAX_EVENT {
            // One event (a line that never ends, say) may not hold memory without bound.
            self.fail(Error::TooLarge { provider: self.provider, what: "stream event", limit: MAX_EVENT });
        }
    }

    /// The bytes ended: a last frame left without its terminator, and what the decoder owes.
    pub(crate) fn end(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let result = self
            .framer
            .finish()
            .and_then(|last| match last {
                Some(frame) => self.decoder.on_frame(frame, &mut self.pending).map(|_| ()),
                None => Ok(()),
            })
            .and_then(|()| self.decoder.on_eof(&mut self.pending));
        self.deferred = result.err();
    }

    fn drain_frames(&mut self) {
        loop {
            let frame = match self.framer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(err) => return self.fail(err),
            };
            match self.decoder.on_frame(frame, &mut self.pending) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Done) => {
                    self.done = true;
                    return;
                }
                Err(err) => return self.fail(err),
            }
        }
    }
}

struct Decoding<D: StreamDecode> {
    provider: ProviderKind,
    tap: Option<Arc<Tap>>,
    pump: Pump<D>,
    body: Body,
    idle: Duration,
    /// The framer's progress when it last moved, and when: the idle deadline runs from it.
    last_progress: (u64, tokio::time::Instant),
    /// Whether a chunk was yielded: the stream has started.
    started: bool,
}

impl<D: StreamDecode> Decoding<D> {
    async fn step(mut self: Box<Self>) -> Option<(Result<ChatChunk>, Box<Self>)> {
        loop {
            if let Some(chunk) = self.pump.pending.pop_front() {
                self.started = true;
                return Some((Ok(chunk), self));
            }
            if let Some(err) = self.pump.deferred.take() {
                self.pump.done = true;
                return Some((Err(err), self));
            }
            if self.pump.done {
                return None;
            }
            // The idle deadline runs from the last complete line or frame, not the last
            // byte: a drip of bytes that never ends a line is idle.
            let progress = self.pump.progress();
            if progress != self.last_progress.0 {
                self.last_progress = (progress, tokio::time::Instant::now());
            }
            let deadline = self.last_progress.1.checked_add(self.idle);
            match self.body.next_chunk_by(self.provider, deadline, self.idle).await {
                Ok(Some(bytes)) => {
                    self.pump.push(&bytes);
                    if let Some(tap) = &self.tap {
                        // The wire's bytes, or the caller's format rendered from them.
                        let fed = match self.pump.native_bytes() {
                            Some(rendered) => tap.push(&rendered),
                            None => tap.push(&bytes),
                        };
                        // A passed-through stream reaches its caller as it comes, pings and
                        // all: once it has started, bytes that decode to no chunk (an upstream
                        // that only pings while it thinks) wake the caller with an empty one,
                        // to take them. Before it starts, nothing is yielded, so an error in
                        // the first event is still one the router may retry.
                        let quiet = self.pump.pending.is_empty() && self.pump.deferred.is_none();
                        if fed && self.started && quiet && !self.pump.done {
                            return Some((Ok(ChatChunk::heartbeat()), self));
                        }
                    }
                }
                Ok(None) => {
                    self.pump.end();
                    if let Some((tap, rendered)) = self.tap.as_ref().zip(self.pump.native_bytes()) {
                        tap.push(&rendered);
                    }
                }
                Err(err) => self.pump.fail(err),
            }
        }
    }
}

/// Assembles stream chunks into a complete [`ChatResponse`].
///
/// Content, refusal and reasoning fragments are concatenated per choice; tool-call fragments
/// are joined by their `index` (or, from servers that omit it, by their `id`), with the id,
/// type and name from the first fragment; whole thinking blocks (`delta.thinking_blocks`)
/// are collected into `message.thinking_blocks`; usage is the last one seen.
#[derive(Debug, Default)]
pub struct ChunkAccumulator {
    id: String,
    created: i64,
    model: String,
    system_fingerprint: Option<String>,
    service_tier: Option<ServiceTier>,
    usage: Option<CompletionUsage>,
    choices: BTreeMap<i64, ChoiceParts>,
}

#[derive(Debug, Default)]
struct ChoiceParts {
    role: Option<ChatRole>,
    content: Option<String>,
    refusal: Option<String>,
    reasoning: Option<String>,
    tool_calls: Vec<ToolCallParts>,
    finish_reason: Option<FinishReason>,
    logprobs: Option<Vec<ChatCompletionTokenLogprob>>,
    /// Whole thinking blocks (Anthropic's, with signatures) sent in `delta.thinking_blocks`.
    thinking_blocks: Vec<serde_json::Value>,
}

#[derive(Debug)]
struct ToolCallParts {
    index: Option<i64>,
    id: String,
    type_: ToolType,
    name: String,
    arguments: String,
}

impl ChunkAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one chunk.
    pub fn push(&mut self, chunk: &ChatChunk) {
        if self.id.is_empty() && !chunk.id.is_empty() {
            self.id.clone_from(&chunk.id);
            self.created = chunk.created;
        }
        if self.model.is_empty() && !chunk.model.is_empty() {
            self.model.clone_from(&chunk.model);
        }
        if let Some(fp) = chunk.system_fingerprint.as_ref() {
            self.system_fingerprint.get_or_insert_with(|| fp.clone());
        }
        if let Some(tier) = chunk.service_tier.as_ref() {
            self.service_tier.get_or_insert_with(|| tier.clone());
        }
        if let Some(usage) = chunk.usage.as_ref() {
            self.usage = Some(usage.clone());
        }
        for choice in &chunk.choices {
            let parts = self.choices.entry(choice.index).or_default();
            let delta = &choice.delta;
            if let Some(role) = &delta.role {
                parts.role.get_or_insert_with(|| role.clone());
            }
            append(&mut parts.content, delta.content.as_deref());
            append(&mut parts.refusal, delta.refusal.as_deref());
            append(&mut parts.reasoning, delta.reasoning_content.as_deref());
            for call in delta.tool_calls.iter().flatten() {
                parts.add_tool_call(call);
            }
            if let Some(serde_json::Value::Array(blocks)) = delta.extra.get("thinking_blocks") {
                parts.thinking_blocks.extend(blocks.iter().cloned());
            }
            if let Some(reason) = &choice.finish_reason {
                parts.finish_reason = Some(reason.clone());
            }
            if let Some(content) = choice.logprobs.as_ref().and_then(|l| l.content.as_ref()) {
                parts.logprobs.get_or_insert_with(Vec::new).extend(content.iter().cloned());
            }
        }
    }

    /// The complete answer.
    pub fn finish(self) -> ChatResponse {
        let choices = self
            .choices
            .into_iter()
            .map(|(index, parts)| {
                let tool_calls = (!parts.tool_calls.is_empty()).then(|| {
                    parts
                        .tool_calls
                        .into_iter()
                        .map(|call| ChatCompletionMessageToolCall {
                            id: call.id,
                            type_: Some(call.type_),
                            function: Some(FunctionCall {
                                name: call.name,
                                arguments: call.arguments,
                                extra: Map::new(),
                            }),
                            custom: None,
                            extra: Map::new(),
                        })
                        .collect()
                });
                let mut extra = Map::new();
                if !parts.thinking_blocks.is_empty() {
                    extra.insert("thinking_blocks".into(), serde_json::Value::Array(parts.thinking_blocks));
                }
                ChatCompletionChoice {
                    index,
                    message: ChatCompletionResponseMessage {
                        role: parts.role.unwrap_or(ChatRole::Assistant),
                        content: parts.content,
                        refusal: parts.refusal,
                        tool_calls,
                        annotations: None,
                        audio: Nullable::Absent,
                        function_call: None,
                        reasoning_content: parts.reasoning.into(),
                        extra,
                    },
                    finish_reason: parts.finish_reason,
                    logprobs: parts.logprobs.map(|content| ChatCompletionChoiceLogprobs {
                        content: Nullable::Value(content),
                        refusal: Nullable::Null,
                        extra: Map::new(),
                    }),
                    extra: Map::new(),
                }
            })
            .collect();
        ChatResponse {
            id: self.id,
            object: "chat.completion".into(),
            created: self.created,
            model: self.model,
            choices,
            usage: self.usage,
            service_tier: self.service_tier.into(),
            system_fingerprint: self.system_fingerprint.into(),
            extra: Map::new(),
        }
    }
}

impl ChoiceParts {
    fn add_tool_call(&mut self, call: &crate::spec::openai::ChatCompletionMessageToolCallChunk) {
        let existing = match (call.index, call.id.as_deref()) {
            (Some(index), _) => self.tool_calls.iter().position(|c| c.index == Some(index)),
            // No index: a new id starts a new call, a fragment without one continues the last.
            (None, Some(id)) => self.tool_calls.iter().position(|c| c.id == id),
            (None, None) => self.tool_calls.len().checked_sub(1),
        };
        let slot = match existing {
            Some(i) => &mut self.tool_calls[i],
            None => {
                self.tool_calls.push(ToolCallParts {
                    index: call.index,
                    id: String::new(),
                    type_: ToolType::Function,
                    name: String::new(),
                    arguments: String::new(),
                });
                let last = self.tool_calls.len() - 1;
                &mut self.tool_calls[last]
            }
        };
        if let Some(id) = call.id.as_deref().filter(|id| !id.is_empty())
            && slot.id.is_empty()
        {
            slot.id = id.to_string();
        }
        if let Some(type_) = &call.type_ {
            slot.type_ = type_.clone();
        }
        if let Some(function) = &call.function {
            if let Some(name) = function.name.as_deref() {
                slot.name.push_str(name);
            }
            if let Some(arguments) = function.arguments.as_deref() {
                slot.arguments.push_str(arguments);
            }
        }
    }
}

fn append(target: &mut Option<String>, piece: Option<&str>) {
    if let Some(piece) = piece {
        target.get_or_insert_with(String::new).push_str(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Chunk;

    fn chunk(text: &str) -> Chunk {
        let event = serde_json::json!({
            "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
        });
        Chunk { delay: Duration::ZERO, bytes: format!("data: {event}\n\n").into() }
    }

    #[tokio::test]
    async fn a_stream_past_its_total_size_ends_with_a_typed_error_after_what_came_before() {
        let body = Body::Chunks((0..100).map(|_| chunk("0123456789")).collect());
        let decoder = crate::provider::openai::stream::Decoder::new(ProviderKind::OpenAi);
        let mut stream = ChatStream::new(ProviderKind::OpenAi, body, decoder, (Duration::from_secs(1), 1000), None);
        let mut chunks = 0;
        let mut last = None;
        while let Some(item) = stream.next_chunk().await {
            match item {
                Ok(_) => chunks += 1,
                Err(err) => last = Some(err),
            }
        }
        assert!(chunks > 0 && chunks < 100, "{chunks}");
        assert!(matches!(last, Some(Error::TooLarge { what: "stream", limit: 1000, .. })), "{last:?}");
    }
}
