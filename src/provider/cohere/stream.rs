//! Cohere's v2 stream events as OpenAI chunks.
//!
//! `message-start` gives the id and role (a first chunk with empty content); `content-delta`
//! text is content and thinking is `reasoning_content`; `tool-plan-delta` is content too
//! (the plan precedes the calls, as in the whole answer); `tool-call-start` opens a tool call
//! (id, name, and any arguments already given) with its own `index`, counted from 0 in order
//! of appearance, and `tool-call-delta` carries argument fragments; `message-end` gives the
//! finish reason and then the usage chunk (`choices: []`) when the caller asked for one.
//! Citation and debug events are skipped; a `[DONE]` some proxies add ends the stream.
//!
//! This is where LiteLLM 1.106.2 fails: it expects bare JSON lines, so an SSE stream breaks
//! on its first line, and with NDJSON it drops tool-call deltas and reports `stop` for every
//! finish. Here tool calls and the finish reason survive streaming.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};

use super::response::{finish_reason, openai_usage};
use crate::ChatChunk;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::{Ctx, Flow, ProviderKind, StreamDecode};
use crate::spec::cohere::{StreamEvent, StreamEventType, ToolCall};
use crate::spec::openai::{
    ChatCompletionMessageToolCallChunk, ChatCompletionStreamResponseDelta, ChatRole, FinishReason, FunctionCallDelta,
    ToolType,
};
use crate::transport::sse::{SseEvent, SseFramer};

/// The decoder for one Cohere stream.
#[derive(Debug)]
pub struct Decoder {
    include_usage: bool,
    id: String,
    model: String,
    created: i64,
    /// Cohere's tool-call index -> ours.
    tools: HashMap<i64, i64>,
    next_tool: i64,
    finish: Option<FinishReason>,
}

impl Decoder {
    /// A decoder for a stream of the call described by `ctx`.
    pub fn new(ctx: &Ctx<'_>) -> Self {
        Self {
            include_usage: ctx.include_usage,
            id: String::new(),
            model: ctx.model.to_string(),
            created: crate::provider::unix_now(),
            tools: HashMap::new(),
            next_tool: 0,
            finish: None,
        }
    }

    fn chunk(&self, delta: ChatCompletionStreamResponseDelta, finish: Option<FinishReason>) -> ChatChunk {
        ChatChunk::for_choice(&self.id, self.created, &self.model, 0, delta, finish)
    }

    fn content(&self, text: String) -> ChatChunk {
        self.chunk(ChatCompletionStreamResponseDelta { content: text.into(), ..delta() }, None)
    }

    fn tool_chunk(&self, call: ChatCompletionMessageToolCallChunk) -> ChatChunk {
        self.chunk(ChatCompletionStreamResponseDelta { tool_calls: Some(vec![call]), ..delta() }, None)
    }

    fn on_content(&self, event: StreamEvent, out: &mut VecDeque<ChatChunk>) {
        let Some(item) = event.delta.and_then(|d| d.message).and_then(|m| m.content) else {
            return;
        };
        if let Some(thinking) = item.get("thinking").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            let d = ChatCompletionStreamResponseDelta { reasoning_content: thinking.to_string().into(), ..delta() };
            out.push_back(self.chunk(d, None));
        }
        if let Some(text) = item.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            out.push_back(self.content(text.to_string()));
        }
    }

    fn call_of(event: &StreamEvent) -> Option<ToolCall> {
        let calls = event.delta.as_ref()?.message.as_ref()?.tool_calls.clone()?;
        // One call per event; some versions wrap it in a list.
        let call = match calls {
            Value::Array(mut list) if !list.is_empty() => list.swap_remove(0),
            other => other,
        };
        serde_json::from_value(call).ok()
    }

    fn on_tool_start(&mut self, event: &StreamEvent, out: &mut VecDeque<ChatChunk>) -> Result<()> {
        let call = Self::call_of(event).ok_or_else(|| malformed("tool-call-start without a tool call"))?;
        let index = self.next_tool;
        self.next_tool += 1;
        self.tools.insert(event.index.unwrap_or(index), index);
        let function = call.function.unwrap_or_else(|| crate::spec::cohere::ToolCallFunction {
            name: None,
            arguments: None,
            extra: Map::new(),
        });
        out.push_back(self.tool_chunk(ChatCompletionMessageToolCallChunk {
            index: Some(index),
            id: Some(call.id.unwrap_or_else(|| format!("call_{index}"))),
            type_: Some(ToolType::Function),
            function: Some(FunctionCallDelta {
                name: function.name,
                arguments: Some(function.arguments.unwrap_or_default()),
                extra: Map::new(),
            }),
            extra: Map::new(),
        }));
        Ok(())
    }

    fn on_tool_delta(&mut self, event: &StreamEvent, out: &mut VecDeque<ChatChunk>) {
        let fragment = Self::call_of(event).and_then(|c| c.function).and_then(|f| f.arguments);
        let (Some(fragment), Some(index)) = (fragment, self.tools.get(&event.index.unwrap_or(0)).copied()) else {
            tracing::debug!(index = ?event.index, "skipping a tool-call-delta with no open call");
            return;
        };
        out.push_back(self.tool_chunk(ChatCompletionMessageToolCallChunk {
            index: Some(index),
            id: None,
            type_: None,
            function: Some(FunctionCallDelta { name: None, arguments: Some(fragment), extra: Map::new() }),
            extra: Map::new(),
        }));
    }

    fn on_end(&mut self, event: StreamEvent, out: &mut VecDeque<ChatChunk>) -> Result<()> {
        let delta_event = event.delta.unwrap_or_default();
        if let Some(error) = delta_event.error.filter(|e| !e.is_empty()) {
            return Err(Error::Stream { provider: ProviderKind::Cohere, kind: ErrorKind::Server, message: error });
        }
        let finish = delta_event.finish_reason.as_ref().map_or(FinishReason::Stop, finish_reason);
        self.finish = Some(finish.clone());
        out.push_back(self.chunk(delta(), Some(finish)));
        if let (true, Some(usage)) = (self.include_usage, delta_event.usage.as_ref()) {
            out.push_back(ChatChunk::usage_only(&self.id, self.created, &self.model, openai_usage(usage)));
        }
        Ok(())
    }
}

fn delta() -> ChatCompletionStreamResponseDelta {
    ChatCompletionStreamResponseDelta::empty()
}

fn malformed(what: &str) -> Error {
    Error::Stream { provider: ProviderKind::Cohere, kind: ErrorKind::Server, message: what.to_string() }
}

impl StreamDecode for Decoder {
    type Framer = SseFramer;

    fn framer(&self) -> SseFramer {
        SseFramer::new()
    }

    fn on_frame(&mut self, frame: SseEvent, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        if frame.is_done_marker() {
            return Ok(Flow::Done);
        }
        let event: StreamEvent = serde_json::from_slice(frame.data())
            .map_err(|e| Error::decode(ProviderKind::Cohere, "stream event", e, frame.data().to_vec().into()))?;
        match &event.type_ {
            StreamEventType::MessageStart => {
                if let Some(id) = &event.id {
                    self.id.clone_from(id);
                }
                let opening = ChatCompletionStreamResponseDelta {
                    role: Some(ChatRole::Assistant),
                    content: String::new().into(),
                    ..delta()
                };
                out.push_back(self.chunk(opening, None));
            }
            StreamEventType::ContentStart | StreamEventType::ContentDelta => self.on_content(event, out),
            StreamEventType::ToolPlanDelta => {
                let plan = event.delta.and_then(|d| d.message).and_then(|m| m.tool_plan).filter(|p| !p.is_empty());
                out.extend(plan.map(|p| self.content(p)));
            }
            StreamEventType::ToolCallStart => self.on_tool_start(&event, out)?,
            StreamEventType::ToolCallDelta => self.on_tool_delta(&event, out),
            StreamEventType::MessageEnd => {
                self.on_end(event, out)?;
                return Ok(Flow::Done);
            }
            StreamEventType::ContentEnd
            | StreamEventType::ToolCallEnd
            | StreamEventType::CitationStart
            | StreamEventType::CitationEnd
            | StreamEventType::Debug => {}
            StreamEventType::Other(other) => {
                tracing::debug!(event = %other, "skipping a Cohere event this version does not know")
            }
        }
        Ok(Flow::Continue)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<()> {
        if self.finish.is_some() {
            return Ok(());
        }
        Err(malformed("the stream ended before `message-end`"))
    }
}
