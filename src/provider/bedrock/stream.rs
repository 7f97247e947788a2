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
//! LiteLLM numbers stream tool calls by content-block position and raises a generic
//! MidStreamFallbackError for every exception frame; here indices count tool calls only,
//! and a throttling frame is `rate_limited`, a validation frame `invalid_request`.

use std::collections::{HashMap, VecDeque};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::classify;
use super::request::JSON_TOOL;
use super::response::{finish_reason, request_id, uses_json_tool};
use crate::ChatChunk;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::anthropic::response::openai_usage;
use crate::provider::{Ctx, Flow, ProviderKind, StreamDecode};
use crate::spec::bedrock::{
    ContentBlockDeltaEvent, ContentBlockStartEvent, ContentBlockStopEvent, ErrorBody, MessageStopEvent, MetadataEvent,
};
use crate::spec::openai::{
    ChatCompletionMessageToolCallChunk, ChatCompletionStreamResponseDelta, ChatRole, CompletionUsage, FinishReason,
    FunctionCallDelta, ToolType,
};
use crate::transport::eventstream::{EventFrame, EventStreamFramer, FrameKind};

/// What an open content block is.
#[derive(Debug)]
enum Block {
    Tool { index: i64 },
    JsonTool,
    Reasoning { text: String, signature: String, redacted: String },
}

/// The decoder for one ConverseStream answer.
#[derive(Debug)]
pub struct Decoder {
    include_usage: bool,
    json_tool: bool,
    id: String,
    model: String,
    created: i64,
    blocks: HashMap<i64, Block>,
    next_tool: i64,
    finish: Option<FinishReason>,
    answered_by_json_tool: bool,
    usage: Option<CompletionUsage>,
}

impl Decoder {
    /// A decoder for a stream of the call described by `ctx`.
    pub fn new(ctx: &Ctx<'_>) -> Self {
        Self {
            include_usage: ctx.include_usage,
            json_tool: uses_json_tool(ctx),
            id: format!("chatcmpl-{:016x}", fastrand::u64(..)),
            model: ctx.model.to_string(),
            created: crate::provider::unix_now(),
            blocks: HashMap::new(),
            next_tool: 0,
            finish: None,
            answered_by_json_tool: false,
            usage: None,
        }
    }

    fn chunk(&self, delta: ChatCompletionStreamResponseDelta, finish: Option<FinishReason>) -> ChatChunk {
        ChatChunk::for_choice(&self.id, self.created, &self.model, 0, delta, finish)
    }

    fn text(&self, text: String) -> ChatChunk {
        self.chunk(ChatCompletionStreamResponseDelta { content: text.into(), ..delta() }, None)
    }

    fn tool_chunk(&self, call: ChatCompletionMessageToolCallChunk) -> ChatChunk {
        self.chunk(ChatCompletionStreamResponseDelta { tool_calls: Some(vec![call]), ..delta() }, None)
    }

    fn on_start(&mut self, event: ContentBlockStartEvent, out: &mut VecDeque<ChatChunk>) {
        let Some(call) = event.start.tool_use else {
            return;
        };
        if self.json_tool && call.name == JSON_TOOL {
            self.answered_by_json_tool = true;
            self.blocks.insert(event.content_block_index, Block::JsonTool);
            return;
        }
        let index = self.next_tool;
        self.next_tool += 1;
        out.push_back(self.tool_chunk(ChatCompletionMessageToolCallChunk {
            index: Some(index),
            id: Some(call.tool_use_id),
            type_: Some(ToolType::Function),
            function: Some(FunctionCallDelta {
                name: Some(call.name),
                arguments: Some(String::new()),
                extra: Map::new(),
            }),
            extra: Map::new(),
        }));
        self.blocks.insert(event.content_block_index, Block::Tool { index });
    }

    fn on_delta(&mut self, event: ContentBlockDeltaEvent, out: &mut VecDeque<ChatChunk>) {
        let delta_event = event.delta;
        if let Some(text) = delta_event.text {
            out.push_back(self.text(text));
        }
        if let Some(fragment) = delta_event.tool_use.map(|t| t.input) {
            match self.blocks.get(&event.content_block_index) {
                Some(Block::Tool { index }) => {
                    let call = ChatCompletionMessageToolCallChunk {
                        index: Some(*index),
                        id: None,
                        type_: None,
                        function: Some(FunctionCallDelta { name: None, arguments: Some(fragment), extra: Map::new() }),
                        extra: Map::new(),
                    };
                    out.push_back(self.tool_chunk(call));
                }
                Some(Block::JsonTool) => out.push_back(self.text(fragment)),
                _ => {
                    tracing::debug!(index = event.content_block_index, "skipping tool input for a block never started")
                }
            }
        }
        if let Some(reasoning) = delta_event.reasoning_content {
            let block = self.blocks.entry(event.content_block_index).or_insert_with(|| Block::Reasoning {
                text: String::new(),
                signature: String::new(),
                redacted: String::new(),
            });
            let Block::Reasoning { text, signature, redacted } = block else {
                return;
            };
            if let Some(s) = reasoning.signature {
                signature.push_str(&s);
            }
            if let Some(r) = reasoning.redacted_content {
                redacted.push_str(&r);
            }
            if let Some(piece) = reasoning.text {
                text.push_str(&piece);
                let d = ChatCompletionStreamResponseDelta { reasoning_content: piece.into(), ..delta() };
                out.push_back(self.chunk(d, None));
            }
        }
    }

    fn on_stop(&mut self, event: ContentBlockStopEvent, out: &mut VecDeque<ChatChunk>) {
        let Some(Block::Reasoning { text, signature, redacted }) = self.blocks.remove(&event.content_block_index)
        else {
            return;
        };
        let mut blocks = Vec::new();
        if !text.is_empty() || !signature.is_empty() {
            blocks.push(json!({"type": "thinking", "thinking": text, "signature": signature}));
        }
        if !redacted.is_empty() {
            blocks.push(json!({"type": "redacted_thinking", "data": redacted}));
        }
        let mut d = delta();
        d.extra.insert("thinking_blocks".into(), Value::Array(blocks));
        out.push_back(self.chunk(d, None));
    }

    fn usage_chunk(&mut self, out: &mut VecDeque<ChatChunk>) {
        if let (true, Some(usage)) = (self.include_usage, self.usage.take()) {
            out.push_back(ChatChunk::usage_only(&self.id, self.created, &self.model, usage));
        }
    }

    fn exception(&self, exception_type: &str, payload: &[u8]) -> Error {
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

fn delta() -> ChatCompletionStreamResponseDelta {
    ChatCompletionStreamResponseDelta::empty()
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
        self.id = request_id(headers);
    }

    fn on_frame(&mut self, frame: EventFrame, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        let event_type = match &frame.kind {
            FrameKind::Event(event_type) => event_type.as_str(),
            FrameKind::Exception(exception_type) => return Err(self.exception(exception_type, &frame.payload)),
            FrameKind::Error { code, message } => {
                return Err(Error::Stream {
                    provider: ProviderKind::Bedrock,
                    kind: classify(code, message, None),
                    message: format!("{code}: {message}"),
                });
            }
        };
        match event_type {
            "messageStart" => {
                let opening = ChatCompletionStreamResponseDelta {
                    role: Some(ChatRole::Assistant),
                    content: String::new().into(),
                    ..delta()
                };
                out.push_back(self.chunk(opening, None));
            }
            "contentBlockStart" => self.on_start(parse(&frame)?, out),
            "contentBlockDelta" => self.on_delta(parse(&frame)?, out),
            "contentBlockStop" => self.on_stop(parse(&frame)?, out),
            "messageStop" => {
                let stop: MessageStopEvent = parse(&frame)?;
                let finish = finish_reason(&stop.stop_reason, self.answered_by_json_tool);
                self.finish = Some(finish.clone());
                out.push_back(self.chunk(delta(), Some(finish)));
            }
            "metadata" => {
                let metadata: MetadataEvent = parse(&frame)?;
                let u = metadata.usage;
                self.usage = Some(openai_usage(
                    u.input_tokens,
                    u.output_tokens,
                    u.cache_read_input_tokens,
                    u.cache_write_input_tokens,
                ));
                self.usage_chunk(out);
                return Ok(Flow::Done);
            }
            other => tracing::debug!(event = other, "skipping a Bedrock event this version does not know"),
        }
        Ok(Flow::Continue)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<()> {
        if self.finish.is_some() {
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
