//! ConverseStream's event frames as OpenAI chunks.
//!
//! `messageStart` gives the role (a first chunk with empty content); text deltas are
//! content; a `contentBlockStart` with a `toolUse` opens a tool call (id, name, empty
//! arguments) with its own `index`, counted from 0 in order of appearance, and its `toolUse`
//! input deltas are argument fragments; reasoning deltas are `reasoning_content`, and each
//! finished reasoning block is sent whole in `thinking_blocks` (with its signature);
//! `messageStop` gives the finish reason; `metadata` (the last event) gives the usage, sent
//! as a chunk with `choices: []` when the caller asked for it. Exception frames end the
//! stream with an error of the right kind.
//!
//! The block bookkeeping (tool indices, the JSON tool, reasoning blocks, the usage chunk) is
//! [`crate::provider::blocks`], shared by Anthropic and Bedrock; this file reads the framing.
//!
//! LiteLLM numbers stream tool calls by content-block position and raises a generic
//! MidStreamFallbackError for every exception frame; here indices count tool calls only,
//! and a throttling frame is `rate_limited`, a validation frame `invalid_request`.

use std::collections::VecDeque;

use serde::de::DeserializeOwned;

use super::error::classify;
use super::request::JSON_TOOL;
use super::response::{finish_reason, request_id, uses_json_tool};
use crate::ChatChunk;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::anthropic::response::openai_usage;
use crate::provider::blocks::{BlockStream, Reasoning};
use crate::provider::{Ctx, Flow, ProviderKind, StreamDecode};
use crate::spec::bedrock::{
    ContentBlockDeltaEvent, ContentBlockStartEvent, ContentBlockStopEvent, ErrorBody, MessageStopEvent, MetadataEvent,
};
use crate::transport::eventstream::{EventFrame, EventStreamFramer, FrameKind};

/// The decoder for one ConverseStream answer: its frames read into the shared block core.
#[derive(Debug)]
pub struct Decoder {
    core: BlockStream,
}

impl Decoder {
    /// A decoder for a stream of the call described by `ctx`.
    pub fn new(ctx: &Ctx<'_>) -> Self {
        let json_tool = uses_json_tool(ctx).then_some(JSON_TOOL);
        let id = format!("chatcmpl-{:016x}", fastrand::u64(..));
        Self { core: BlockStream::new(ctx, json_tool, id) }
    }

    fn on_start(&mut self, event: ContentBlockStartEvent, out: &mut VecDeque<ChatChunk>) {
        // Text and reasoning blocks open implicitly, with their first delta.
        if let Some(call) = event.start.tool_use {
            self.core.open_tool(event.content_block_index, call.tool_use_id, call.name, out);
        }
    }

    fn on_delta(&mut self, event: ContentBlockDeltaEvent, out: &mut VecDeque<ChatChunk>) {
        let (block, d) = (event.content_block_index, event.delta);
        if let Some(text) = d.text {
            self.core.text(text, out);
        }
        if let Some(fragment) = d.tool_use.map(|t| t.input) {
            self.core.tool_input(block, fragment, out);
        }
        if let Some(r) = d.reasoning_content {
            let piece = Reasoning { text: r.text, signature: r.signature, redacted: r.redacted_content };
            self.core.reasoning(block, piece, out);
        }
    }
}

/// An exception frame as an error of the right kind (Converse's and InvokeModel's alike).
pub(crate) fn exception(exception_type: &str, payload: &[u8]) -> Error {
    {
        let body = serde_json::from_slice::<ErrorBody>(payload).ok();
        let mut message = body
            .as_ref()
            .and_then(|b| b.message.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned());
        if let Some(original) = body.as_ref().and_then(|b| b.original_message.as_deref()) {
            message = format!("{message} (the model said: {original})");
        }
        // A model's own failure carries the status it answered with.
        let status = body
            .and_then(|b| b.original_status_code)
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| http::StatusCode::from_u16(s).ok());
        let kind = match (exception_type, status) {
            ("modelStreamErrorException", Some(status)) => crate::ErrorKind::from_status(status),
            _ => classify(exception_type, &message, None),
        };
        Error::Stream { provider: ProviderKind::Bedrock, kind, message: format!("{exception_type}: {message}") }
    }
}

/// An error frame (outside the model) as an error.
pub(crate) fn frame_error(code: &str, message: &str) -> Error {
    Error::Stream {
        provider: ProviderKind::Bedrock,
        kind: classify(code, message, None),
        message: format!("{code}: {message}"),
    }
}

fn parse<T: DeserializeOwned>(frame: &EventFrame) -> Result<T> {
    serde_json::from_slice(&frame.payload)
        .map_err(|e| Error::decode(ProviderKind::Bedrock, "stream event", e, frame.payload.clone()))
}

impl StreamDecode for Decoder {
    type Framer = EventStreamFramer;

    fn framer(&self) -> EventStreamFramer {
        EventStreamFramer::new(ProviderKind::Bedrock)
    }

    fn on_headers(&mut self, headers: &http::HeaderMap) {
        self.core.identify(request_id(headers), None);
    }

    fn on_frame(&mut self, frame: EventFrame, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        let event_type = match &frame.kind {
            FrameKind::Event(event_type) => event_type.as_str(),
            FrameKind::Exception(exception_type) => return Err(exception(exception_type, &frame.payload)),
            FrameKind::Error { code, message } => return Err(frame_error(code, message)),
        };
        match event_type {
            "messageStart" => self.core.open_message(out),
            "contentBlockStart" => self.on_start(parse(&frame)?, out),
            "contentBlockDelta" => self.on_delta(parse(&frame)?, out),
            "contentBlockStop" => {
                let stop: ContentBlockStopEvent = parse(&frame)?;
                self.core.close(stop.content_block_index, out);
            }
            "messageStop" => {
                let stop: MessageStopEvent = parse(&frame)?;
                let finish = finish_reason(&stop.stop_reason, self.core.answered_by_json_tool());
                self.core.finish(finish, out);
            }
            "metadata" => {
                let metadata: MetadataEvent = parse(&frame)?;
                let u = metadata.usage;
                let usage = openai_usage(
                    u.input_tokens,
                    u.output_tokens,
                    u.cache_read_input_tokens,
                    u.cache_write_input_tokens,
                );
                self.core.usage(usage, out);
                return Ok(Flow::Done);
            }
            other => tracing::debug!(event = other, "skipping a Bedrock event this version does not know"),
        }
        Ok(Flow::Continue)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<()> {
        if self.core.finished() {
            // The answer is complete; only the usage (the `metadata` event) is missing.
            return Ok(());
        }
        Err(Error::Stream {
            provider: ProviderKind::Bedrock,
            kind: ErrorKind::Server,
            message: "the stream ended before `messageStop`".into(),
        })
    }
}
