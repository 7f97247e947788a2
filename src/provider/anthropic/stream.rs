//! Anthropic's stream events as OpenAI chunks.
//!
//! `message_start` gives the role (a first chunk with empty content) and the prompt's usage;
//! `text_delta`s are content; a `tool_use` block opens a tool call (id, name, empty
//! arguments) with its own `index`, counted from 0 in order of appearance, and its
//! `input_json_delta`s are argument fragments; `thinking_delta`s are `reasoning_content`, and
//! each finished thinking block is sent whole in `thinking_blocks` (with its signature);
//! `message_delta` gives the finish reason; `message_stop` ends the stream, after a usage
//! chunk (`choices: []`) when the caller asked for one. `ping` and event types this version
//! does not know are skipped; an `error` event ends the stream with the error's kind.
//!
//! The block bookkeeping (tool indices, the JSON tool, reasoning blocks, the usage chunk) is
//! [`crate::provider::blocks`], shared by Anthropic and Bedrock; this file reads the framing.
//!
//! LiteLLM numbers tool calls differently in streams and non-streams and loses the thinking
//! signature in streams; here the indices are the stream's own, and signatures survive.

use std::collections::VecDeque;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::classify;
use super::request::JSON_TOOL;
use super::response::{finish_reason, openai_usage, uses_json_tool};
use crate::ChatChunk;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::blocks::{BlockStream, Reasoning};
use crate::provider::{Ctx, Flow, ProviderKind, StreamDecode};
use crate::spec::anthropic::{
    ContentBlockDeltaEvent, ContentBlockStartEvent, ContentBlockStopEvent, ErrorResponse, MessageDeltaEvent,
    MessageStartEvent,
};
use crate::spec::ext::anthropic::ContentBlock;
use crate::transport::sse::{SseEvent, SseFramer};

/// The decoder for one Anthropic stream: its events read into the shared block core, and
/// the usage, which Anthropic splits between `message_start` and `message_delta`.
#[derive(Debug)]
pub struct Decoder {
    core: BlockStream,
    input_tokens: i64,
    output_tokens: i64,
    cache_read: Option<i64>,
    cache_write: Option<i64>,
}

impl Decoder {
    /// A decoder for a stream of the call described by `ctx`.
    pub fn new(ctx: &Ctx<'_>) -> Self {
        let json_tool = uses_json_tool(ctx).then_some(JSON_TOOL);
        Self {
            core: BlockStream::new(ctx, json_tool, String::new()),
            input_tokens: 0,
            output_tokens: 0,
            cache_read: None,
            cache_write: None,
        }
    }

    fn usage_chunk(&mut self, out: &mut VecDeque<ChatChunk>) {
        let usage = openai_usage(self.input_tokens, self.output_tokens, self.cache_read, self.cache_write);
        self.core.usage(usage, out);
    }

    fn on_message_start(&mut self, start: MessageStartEvent, out: &mut VecDeque<ChatChunk>) {
        let usage = start.message.usage;
        self.core.identify(start.message.id, Some(start.message.model));
        self.input_tokens = usage.input_tokens;
        self.output_tokens = usage.output_tokens;
        self.cache_read = usage.cache_read_input_tokens.into_option();
        self.cache_write = usage.cache_creation_input_tokens.into_option();
        self.core.open_message(out);
    }

    fn on_start(&mut self, event: ContentBlockStartEvent, out: &mut VecDeque<ChatChunk>) {
        let block = event.index;
        match event.content_block {
            ContentBlock::Text(t) => self.core.open_text(block, t.text, out),
            ContentBlock::ToolUse(call) => self.core.open_tool(block, call.id, call.name, out),
            ContentBlock::Thinking(t) => self.core.open_reasoning(
                block,
                Reasoning { text: Some(t.thinking), signature: Some(t.signature), redacted: None },
                out,
            ),
            ContentBlock::RedactedThinking(r) => {
                self.core.open_reasoning(block, Reasoning { redacted: Some(r.data), ..Reasoning::default() }, out);
            }
            _ => self.core.open_other(block),
        }
    }

    fn on_delta(&mut self, event: ContentBlockDeltaEvent, out: &mut VecDeque<ChatChunk>) {
        let (block, d) = (event.index, event.delta);
        match d.type_.as_str() {
            "text_delta" => d.text.into_iter().for_each(|t| self.core.text(t, out)),
            "input_json_delta" => d.partial_json.into_iter().for_each(|p| self.core.tool_input(block, p, out)),
            "thinking_delta" => self.core.reasoning(block, Reasoning { text: d.thinking, ..Reasoning::default() }, out),
            "signature_delta" => {
                self.core.reasoning(block, Reasoning { signature: d.signature, ..Reasoning::default() }, out);
            }
            other => tracing::debug!(delta = other, "skipping a content delta"),
        }
    }

    fn on_stop(&mut self, event: ContentBlockStopEvent, out: &mut VecDeque<ChatChunk>) {
        self.core.close(event.index, out);
    }

    fn on_message_delta(&mut self, event: MessageDeltaEvent, out: &mut VecDeque<ChatChunk>) {
        let usage = event.usage;
        self.output_tokens = usage.output_tokens;
        if let Some(input) = usage.input_tokens.as_ref() {
            self.input_tokens = *input;
        }
        if let Some(read) = usage.cache_read_input_tokens.as_ref() {
            self.cache_read = Some(*read);
        }
        if let Some(write) = usage.cache_creation_input_tokens.as_ref() {
            self.cache_write = Some(*write);
        }
        if let Some(reason) = event.delta.stop_reason.as_ref() {
            let finish = finish_reason(reason, self.core.answered_by_json_tool());
            self.core.finish(finish, out);
        }
    }
}

fn parse<T: DeserializeOwned>(event: &SseEvent) -> Result<T> {
    serde_json::from_slice(event.data())
        .map_err(|e| Error::decode(ProviderKind::Anthropic, "stream event", e, event.data().to_vec().into()))
}

/// The event type: the SSE event name, or the data's `type` when a proxy dropped the name.
fn event_type(event: &SseEvent) -> String {
    if !event.event().is_empty() {
        return event.event().to_string();
    }
    serde_json::from_slice::<Value>(event.data())
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

impl StreamDecode for Decoder {
    type Framer = SseFramer;

    fn framer(&self) -> SseFramer {
        SseFramer::new()
    }

    fn on_frame(&mut self, event: SseEvent, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        match event_type(&event).as_str() {
            "message_start" => self.on_message_start(parse(&event)?, out),
            "content_block_start" => self.on_start(parse(&event)?, out),
            "content_block_delta" => self.on_delta(parse(&event)?, out),
            "content_block_stop" => self.on_stop(parse(&event)?, out),
            "message_delta" => self.on_message_delta(parse(&event)?, out),
            "message_stop" => {
                self.usage_chunk(out);
                return Ok(Flow::Done);
            }
            "ping" => {}
            "error" => {
                let failure: ErrorResponse = parse(&event)?;
                return Err(Error::Stream {
                    provider: ProviderKind::Anthropic,
                    kind: classify(&failure.error.type_, &failure.error.message, None),
                    message: failure.error.message,
                });
            }
            other => tracing::debug!(event = other, "skipping an Anthropic event this version does not know"),
        }
        Ok(Flow::Continue)
    }

    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<()> {
        if self.core.finished() {
            self.usage_chunk(out);
            return Ok(());
        }
        Err(Error::Stream {
            provider: ProviderKind::Anthropic,
            kind: ErrorKind::Server,
            message: "the stream ended before `message_stop` and before a stop reason".into(),
        })
    }
}
