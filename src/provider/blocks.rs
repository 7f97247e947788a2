//! The content-block stream core shared by the providers whose streams open, fill and close
//! numbered content blocks (Anthropic's Messages events, Bedrock's ConverseStream frames).
//!
//! A provider's decoder reads its own framing and event names and tells the core what
//! happened: a block opened (text, a tool call, reasoning), a fragment arrived for a block,
//! a block closed, the message finished, the usage is known. The core owns what both streams
//! share, so they cannot drift apart:
//!
//! - tool calls get their own `index`, counted from 0 in order of appearance (LiteLLM numbers
//!   them by content-block position in some streams and not in others);
//! - the forced JSON tool (how a JSON answer is asked of a provider without a native JSON
//!   mode) comes back as content, and the finish reason says `stop`, not `tool_calls`;
//! - reasoning text is `reasoning_content` as it arrives, and each finished reasoning block
//!   is sent whole in `thinking_blocks`, its signature (and any redacted data) kept, so a
//!   caller can hand it back on the next turn;
//! - the usage chunk (`choices: []`) is sent once, only when the caller asked for it.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value, json};

use crate::ChatChunk;
use crate::provider::Ctx;
use crate::spec::openai::{
    ChatCompletionMessageToolCallChunk, ChatCompletionStreamResponseDelta, ChatRole, CompletionUsage, FinishReason,
    FunctionCallDelta, ToolType,
};

/// What an open content block is.
#[derive(Debug)]
enum Block {
    Text,
    Tool { index: i64 },
    JsonTool,
    Reasoning { text: String, signature: String, redacted: String },
    Other,
}

/// One stream's shared state: the answer's identity, the open blocks, the finish.
#[derive(Debug)]
pub(crate) struct BlockStream {
    include_usage: bool,
    /// The forced JSON tool's name, when the request was encoded with it.
    json_tool: Option<&'static str>,
    id: String,
    model: String,
    created: i64,
    blocks: HashMap<i64, Block>,
    next_tool: i64,
    finish: Option<FinishReason>,
    answered_by_json_tool: bool,
    usage_sent: bool,
}

impl BlockStream {
    /// The core of one stream of the call described by `ctx`; `json_tool` names the forced
    /// JSON tool when the request was encoded with one.
    pub(crate) fn new(ctx: &Ctx<'_>, json_tool: Option<&'static str>, id: String) -> Self {
        Self {
            include_usage: ctx.include_usage,
            json_tool,
            id,
            model: ctx.model.to_string(),
            created: crate::provider::unix_now(),
            blocks: HashMap::new(),
            next_tool: 0,
            finish: None,
            answered_by_json_tool: false,
            usage_sent: false,
        }
    }

    /// The answer's id and model, when the stream names them.
    pub(crate) fn identify(&mut self, id: String, model: Option<String>) {
        self.id = id;
        if let Some(model) = model {
            self.model = model;
        }
    }

    /// Whether the answer is the forced JSON tool's input (its finish is then `stop`).
    pub(crate) fn answered_by_json_tool(&self) -> bool {
        self.answered_by_json_tool
    }

    /// Whether a finish reason has been sent.
    pub(crate) fn finished(&self) -> bool {
        self.finish.is_some()
    }

    fn chunk(&self, delta: ChatCompletionStreamResponseDelta, finish: Option<FinishReason>) -> ChatChunk {
        ChatChunk::for_choice(&self.id, self.created, &self.model, 0, delta, finish)
    }

    fn tool_chunk(&self, call: ChatCompletionMessageToolCallChunk) -> ChatChunk {
        self.chunk(ChatCompletionStreamResponseDelta { tool_calls: Some(vec![call]), ..delta() }, None)
    }

    /// The message began: the assistant's role, with empty content.
    pub(crate) fn open_message(&self, out: &mut VecDeque<ChatChunk>) {
        let opening = ChatCompletionStreamResponseDelta {
            role: Some(ChatRole::Assistant),
            content: String::new().into(),
            ..delta()
        };
        out.push_back(self.chunk(opening, None));
    }

    /// Answer text.
    pub(crate) fn text(&self, text: String, out: &mut VecDeque<ChatChunk>) {
        out.push_back(self.chunk(ChatCompletionStreamResponseDelta { content: text.into(), ..delta() }, None));
    }

    /// A text block opened, with what text it already holds.
    pub(crate) fn open_text(&mut self, block: i64, text: String, out: &mut VecDeque<ChatChunk>) {
        if !text.is_empty() {
            self.text(text, out);
        }
        self.blocks.insert(block, Block::Text);
    }

    /// A tool-call block opened: a tool call with its id, its name and empty arguments (or,
    /// for the forced JSON tool, nothing yet: its input is the answer's text).
    pub(crate) fn open_tool(&mut self, block: i64, id: String, name: String, out: &mut VecDeque<ChatChunk>) {
        if self.json_tool == Some(name.as_str()) {
            self.answered_by_json_tool = true;
            self.blocks.insert(block, Block::JsonTool);
            return;
        }
        let index = self.next_tool;
        self.next_tool += 1;
        out.push_back(self.tool_chunk(ChatCompletionMessageToolCallChunk {
            index: Some(index),
            id: Some(id),
            type_: Some(ToolType::Function),
            function: Some(FunctionCallDelta { name: Some(name), arguments: Some(String::new()), extra: Map::new() }),
            extra: Map::new(),
        }));
        self.blocks.insert(block, Block::Tool { index });
    }

    /// A block of a type this version does not know opened; its deltas are skipped.
    pub(crate) fn open_other(&mut self, block: i64) {
        self.blocks.insert(block, Block::Other);
    }

    /// A fragment of a tool call's arguments (of the answer's text, for the JSON tool).
    pub(crate) fn tool_input(&self, block: i64, fragment: String, out: &mut VecDeque<ChatChunk>) {
        match self.blocks.get(&block) {
            Some(Block::Tool { index }) => out.push_back(self.tool_chunk(ChatCompletionMessageToolCallChunk {
                index: Some(*index),
                id: None,
                type_: None,
                function: Some(FunctionCallDelta { name: None, arguments: Some(fragment), extra: Map::new() }),
                extra: Map::new(),
            })),
            Some(Block::JsonTool) => self.text(fragment, out),
            _ => tracing::debug!(block, "skipping tool input for a block that is not a tool call"),
        }
    }

    /// A reasoning block opened, with what it already holds.
    pub(crate) fn open_reasoning(&mut self, block: i64, piece: Reasoning, out: &mut VecDeque<ChatChunk>) {
        self.blocks
            .insert(block, Block::Reasoning { text: String::new(), signature: String::new(), redacted: String::new() });
        self.reasoning(block, piece, out);
    }

    /// Reasoning for `block`: text (sent as `reasoning_content`), a piece of its signature,
    /// or redacted data. Reasoning for a block never opened opens a reasoning block (Bedrock
    /// opens them implicitly); reasoning for a block of another type is skipped.
    pub(crate) fn reasoning(&mut self, block: i64, piece: Reasoning, out: &mut VecDeque<ChatChunk>) {
        let entry = self.blocks.entry(block).or_insert_with(|| Block::Reasoning {
            text: String::new(),
            signature: String::new(),
            redacted: String::new(),
        });
        let Block::Reasoning { text, signature, redacted } = entry else {
            tracing::debug!(block, "skipping reasoning for a block that is not a reasoning block");
            return;
        };
        if let Some(s) = piece.signature {
            signature.push_str(&s);
        }
        if let Some(r) = piece.redacted {
            redacted.push_str(&r);
        }
        if let Some(t) = piece.text.filter(|t| !t.is_empty()) {
            text.push_str(&t);
            let d = ChatCompletionStreamResponseDelta { reasoning_content: t.into(), ..delta() };
            out.push_back(self.chunk(d, None));
        }
    }

    /// A block closed; a reasoning block is sent whole in `thinking_blocks`.
    pub(crate) fn close(&mut self, block: i64, out: &mut VecDeque<ChatChunk>) {
        let Some(Block::Reasoning { text, signature, redacted }) = self.blocks.remove(&block) else {
            return;
        };
        let mut blocks = Vec::new();
        if !text.is_empty() || !signature.is_empty() {
            blocks.push(json!({"type": "thinking", "thinking": text, "signature": signature}));
        }
        if !redacted.is_empty() {
            blocks.push(json!({"type": "redacted_thinking", "data": redacted}));
        }
        if blocks.is_empty() {
            return;
        }
        let mut d = delta();
        d.extra.insert("thinking_blocks".into(), Value::Array(blocks));
        out.push_back(self.chunk(d, None));
    }

    /// The message finished, for `reason`.
    pub(crate) fn finish(&mut self, reason: FinishReason, out: &mut VecDeque<ChatChunk>) {
        self.finish = Some(reason.clone());
        out.push_back(self.chunk(delta(), Some(reason)));
    }

    /// The usage chunk, once, when the caller asked for one.
    pub(crate) fn usage(&mut self, usage: CompletionUsage, out: &mut VecDeque<ChatChunk>) {
        if !self.include_usage || self.usage_sent {
            return;
        }
        self.usage_sent = true;
        out.push_back(ChatChunk::usage_only(&self.id, self.created, &self.model, usage));
    }
}

/// One piece of a reasoning block; any part may be absent.
#[derive(Debug, Default)]
pub(crate) struct Reasoning {
    pub(crate) text: Option<String>,
    pub(crate) signature: Option<String>,
    pub(crate) redacted: Option<String>,
}

fn delta() -> ChatCompletionStreamResponseDelta {
    ChatCompletionStreamResponseDelta::empty()
}
