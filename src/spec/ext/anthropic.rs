//! Anthropic's content-block union, hand-written: one type for request and response blocks,
//! with readable errors, and blocks of types this version does not know (server tool
//! results, new block kinds) kept and passed on unchanged.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::tagged::{tagged, variant};
use crate::spec::anthropic::{
    DocumentBlock, ImageBlock, RedactedThinkingBlock, TextBlock, TextBlockType, ThinkingBlock, ToolResultBlock,
    ToolUseBlock,
};

/// One Anthropic content block, by `type`.
#[derive(Clone, Debug, PartialEq)]
pub enum ContentBlock {
    /// `text`.
    Text(TextBlock),
    /// `image`.
    Image(ImageBlock),
    /// `document`.
    Document(DocumentBlock),
    /// `tool_use`: a call the model made.
    ToolUse(ToolUseBlock),
    /// `tool_result`: the result sent back.
    ToolResult(ToolResultBlock),
    /// `thinking`: reasoning, with the signature that lets it be sent back.
    Thinking(ThinkingBlock),
    /// `redacted_thinking`: encrypted reasoning.
    RedactedThinking(RedactedThinkingBlock),
    /// A block type this version does not know, kept as it came.
    Other(Map<String, Value>),
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(TextBlock {
            type_: TextBlockType::Text,
            text: text.into(),
            cache_control: None,
            citations: Default::default(),
            extra: Map::new(),
        })
    }

    /// The `type` as it appears on the wire.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Document(_) => "document",
            Self::ToolUse(_) => "tool_use",
            Self::ToolResult(_) => "tool_result",
            Self::Thinking(_) => "thinking",
            Self::RedactedThinking(_) => "redacted_thinking",
            Self::Other(map) => map.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

impl Serialize for ContentBlock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(b) => b.serialize(serializer),
            Self::Image(b) => b.serialize(serializer),
            Self::Document(b) => b.serialize(serializer),
            Self::ToolUse(b) => b.serialize(serializer),
            Self::ToolResult(b) => b.serialize(serializer),
            Self::Thinking(b) => b.serialize(serializer),
            Self::RedactedThinking(b) => b.serialize(serializer),
            Self::Other(map) => map.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ContentBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let block = tagged(deserializer, "type", "content block")?;
        Ok(match block.tag.as_str() {
            "text" => Self::Text(variant(block, "content block")?),
            "image" => Self::Image(variant(block, "content block")?),
            "document" => Self::Document(variant(block, "content block")?),
            "tool_use" => Self::ToolUse(variant(block, "content block")?),
            "tool_result" => Self::ToolResult(variant(block, "content block")?),
            "thinking" => Self::Thinking(variant(block, "content block")?),
            "redacted_thinking" => Self::RedactedThinking(variant(block, "content block")?),
            _ => Self::Other(block.object),
        })
    }
}
