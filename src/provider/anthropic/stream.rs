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
//! LiteLLM numbers tool calls differently in streams and non-streams and loses the thinking
//! signature in streams; here the indices are the stream's own, and signatures survive.

use std::collections::{HashMap, VecDeque};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::classify;
use super::request::JSON_TOOL;
use super::response::{finish_reason, openai_usage, uses_json_tool};
use crate::ChatChunk;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::{Ctx, Flow, ProviderKind, StreamDecode};
use crate::spec::anthropic::{
    ContentBlockDeltaEvent, ContentBlockStartEvent, ContentBlockStopEvent, ErrorResponse, MessageDeltaEvent,
    MessageStartEvent,
};
use crate::spec::ext::anthropic::ContentBlock;
use crate::spec::openai::{
    ChatCompletionMessageToolCallChunk, ChatCompletionStreamResponseDelta, ChatRole, FinishReason, FunctionCallDelta,
    ToolType,
};
use crate::transport::sse::{SseEvent, SseFramer};

/// What an open content block is.
#[derive(Debug)]
enum Block {
    Text,
    Tool { index: i64 },
    JsonTool,
    Thinking { text: String, signature: String },
    Redacted { data: String },
    Other,
}

/// The decoder for one Anthropic stream.
#[derive(Debug)]
pub struct Decoder {
    include_usage: bool,
    json_tool: bool,
    id: String,
    model: String,
    created: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read: Option<i64>,
    cache_write: Option<i64>,
    blocks: HashMap<i64, Block>,
    next_tool: i64,
    finish: Option<FinishReason>,
    answered_by_json_tool: bool,
    usage_sent: bool,
}

impl Decoder {
    /// A decoder for a stream of the call described by `ctx`.
    pub fn new(ctx: &Ctx<'_>) -> Self {
        Self {
            include_usage: ctx.include_usage,
            json_tool: uses_json_tool(ctx),
            id: String::new(),
            model: ctx.model.to_string(),
            created: crate::provider::unix_now(),
            input_tokens: 0,
            output_tokens: 0,
            cache_read: None,
            cache_write: None,
            blocks: HashMap::new(),
            next_tool: 0,
            finish: None,
            answered_by_json_tool: false,
            usage_sent: false,
        }
    }

    fn chunk(&self, delta: ChatCompletionStreamResponseDelta, finish: Option<FinishReason>) -> ChatChunk {
        ChatChunk::for_choice(&self.id, self.created, &self.model, 0, delta, finish)
    }

    fn usage_chunk(&mut self, out: &mut VecDeque<ChatChunk>) {
        if !self.include_usage || self.usage_sent {
            return;
        }
        self.usage_sent = true;
        let usage = openai_usage(self.input_tokens, self.output_tokens, self.cache_read, self.cache_write);
        out.push_back(ChatChunk::usage_only(&self.id, self.created, &self.model, usage));
    }

    fn text(&self, text: String) -> ChatChunk {
        self.chunk(ChatCompletionStreamResponseDelta { content: text.into(), ..delta() }, None)
    }

    fn tool_fragment(&self, index: i64, fragment: String) -> ChatChunk {
        let call = ChatCompletionMessageToolCallChunk {
            index: Some(index),
            id: None,
            type_: None,
            function: Some(FunctionCallDelta { name: None, arguments: Some(fragment), extra: Map::new() }),
            extra: Map::new(),
        };
        self.chunk(ChatCompletionStreamResponseDelta { tool_calls: Some(vec![call]), ..delta() }, None)
    }

    fn on_start(&mut self, event: ContentBlockStartEvent, out: &mut VecDeque<ChatChunk>) {
        let block = match event.content_block {
            ContentBlock::Text(t) => {
                if !t.text.is_empty() {
                    out.push_back(self.text(t.text));
                }
                Block::Text
            }
            ContentBlock::ToolUse(call) if self.json_tool && call.name == JSON_TOOL => {
                self.answered_by_json_tool = true;
                Block::JsonTool
            }
            ContentBlock::ToolUse(call) => {
                let index = self.next_tool;
                self.next_tool += 1;
                let opening = ChatCompletionMessageToolCallChunk {
                    index: Some(index),
                    id: Some(call.id),
                    type_: Some(ToolType::Function),
                    function: Some(FunctionCallDelta {
                        name: Some(call.name),
                        arguments: Some(String::new()),
                        extra: Map::new(),
                    }),
                    extra: Map::new(),
                };
                out.push_back(
                    self.chunk(ChatCompletionStreamResponseDelta { tool_calls: Some(vec![opening]), ..delta() }, None),
                );
                Block::Tool { index }
            }
            ContentBlock::Thinking(t) => {
                if !t.thinking.is_empty() {
                    let piece =
                        ChatCompletionStreamResponseDelta { reasoning_content: t.thinking.clone().into(), ..delta() };
                    out.push_back(self.chunk(piece, None));
                }
                Block::Thinking { text: t.thinking, signature: t.signature }
            }
            ContentBlock::RedactedThinking(r) => Block::Redacted { data: r.data },
            _ => Block::Other,
        };
        self.blocks.insert(event.index, block);
    }

    fn on_delta(&mut self, event: ContentBlockDeltaEvent, out: &mut VecDeque<ChatChunk>) {
        let delta_event = event.delta;
        let chunk = match (self.blocks.get_mut(&event.index), delta_event.type_.as_str()) {
            (_, "text_delta") => delta_event.text.map(|t| self.text(t)),
            (Some(Block::Tool { index }), "input_json_delta") => {
                let index = *index;
                delta_event.partial_json.map(|p| self.tool_fragment(index, p))
            }
            (Some(Block::JsonTool), "input_json_delta") => delta_event.partial_json.map(|p| self.text(p)),
            (Some(Block::Thinking { text, .. }), "thinking_delta") => delta_event
                .thinking
                .map(|piece| {
                    text.push_str(&piece);
                    ChatCompletionStreamResponseDelta { reasoning_content: piece.into(), ..delta() }
                })
                .map(|d| self.chunk(d, None)),
            (Some(Block::Thinking { signature, .. }), "signature_delta") => {
                if let Some(s) = delta_event.signature {
                    signature.push_str(&s);
                }
                None
            }
            (_, other) => {
                tracing::debug!(delta = other, "skipping a content delta");
                None
            }
        };
        out.extend(chunk);
    }

    fn on_stop(&mut self, event: ContentBlockStopEvent, out: &mut VecDeque<ChatChunk>) {
        let block = match self.blocks.remove(&event.index) {
            Some(Block::Thinking { text, signature }) => {
                json!({"type": "thinking", "thinking": text, "signature": signature})
            }
            Some(Block::Redacted { data }) => json!({"type": "redacted_thinking", "data": data}),
            _ => return,
        };
        let mut d = delta();
        d.extra.insert("thinking_blocks".into(), Value::Array(vec![block]));
        out.push_back(self.chunk(d, None));
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
            let finish = finish_reason(reason, self.answered_by_json_tool);
            self.finish = Some(finish.clone());
            out.push_back(self.chunk(delta(), Some(finish)));
        }
    }
}

fn delta() -> ChatCompletionStreamResponseDelta {
    ChatCompletionStreamResponseDelta::empty()
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
            "message_start" => {
                let start: MessageStartEvent = parse(&event)?;
                let usage = start.message.usage;
                self.id = start.message.id;
                self.model = start.message.model;
                self.input_tokens = usage.input_tokens;
                self.output_tokens = usage.output_tokens;
                self.cache_read = usage.cache_read_input_tokens.into_option();
                self.cache_write = usage.cache_creation_input_tokens.into_option();
                let opening = ChatCompletionStreamResponseDelta {
                    role: Some(ChatRole::Assistant),
                    content: String::new().into(),
                    ..delta()
                };
                out.push_back(self.chunk(opening, None));
            }
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
        if self.finish.is_some() {
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
