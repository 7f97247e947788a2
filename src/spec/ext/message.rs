//! The hub unions of a chat request: messages by role, message content, content parts.
//!
//! Hand-written rather than generated so that a bad message gets an error naming the role and
//! the problem (typify would make an untagged enum: "data did not match any variant"), and so
//! that content parts of a type this version does not know are kept and forwarded.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::tagged::{tagged, variant};

use crate::spec::openai::{
    ChatCompletionMessageToolCall, ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageRole,
    ChatCompletionRequestDeveloperMessage, ChatCompletionRequestDeveloperMessageRole,
    ChatCompletionRequestFunctionMessage, ChatCompletionRequestMessageContentPartAudio,
    ChatCompletionRequestMessageContentPartFile, ChatCompletionRequestMessageContentPartImage,
    ChatCompletionRequestMessageContentPartImageType, ChatCompletionRequestMessageContentPartRefusal,
    ChatCompletionRequestMessageContentPartText, ChatCompletionRequestMessageContentPartTextType,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestSystemMessageRole, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageRole, ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageRole,
    ImageUrl,
};

/// One message of a chat request, by role.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatMessage {
    /// `developer`: instructions that take precedence over user messages (newer OpenAI models).
    Developer(ChatCompletionRequestDeveloperMessage),
    /// `system`: instructions.
    System(ChatCompletionRequestSystemMessage),
    /// `user`: the user's turn; text, images, audio, files.
    User(ChatCompletionRequestUserMessage),
    /// `assistant`: an earlier answer, possibly with tool calls.
    Assistant(ChatCompletionRequestAssistantMessage),
    /// `tool`: the result of a tool call.
    Tool(ChatCompletionRequestToolMessage),
    /// `function`: deprecated predecessor of `tool`.
    Function(ChatCompletionRequestFunctionMessage),
}

const ROLES: &[&str] = &["developer", "system", "user", "assistant", "tool", "function"];

impl ChatMessage {
    /// A `system` message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::System(ChatCompletionRequestSystemMessage {
            role: ChatCompletionRequestSystemMessageRole::System,
            content: MessageContent::Text(text.into()),
            name: None,
            extra: Map::new(),
        })
    }

    /// A `developer` message.
    pub fn developer(text: impl Into<String>) -> Self {
        Self::Developer(ChatCompletionRequestDeveloperMessage {
            role: ChatCompletionRequestDeveloperMessageRole::Developer,
            content: MessageContent::Text(text.into()),
            name: None,
            extra: Map::new(),
        })
    }

    /// A `user` message with text or content parts.
    pub fn user(content: impl Into<MessageContent>) -> Self {
        Self::User(ChatCompletionRequestUserMessage {
            role: ChatCompletionRequestUserMessageRole::User,
            content: content.into(),
            name: None,
            extra: Map::new(),
        })
    }

    /// An `assistant` message with text.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::Assistant(ChatCompletionRequestAssistantMessage {
            role: ChatCompletionRequestAssistantMessageRole::Assistant,
            content: Some(MessageContent::Text(text.into())).into(),
            ..Self::empty_assistant()
        })
    }

    /// An `assistant` message that made tool calls (and said nothing).
    pub fn assistant_tool_calls(tool_calls: Vec<ChatCompletionMessageToolCall>) -> Self {
        Self::Assistant(ChatCompletionRequestAssistantMessage {
            tool_calls: Some(tool_calls),
            ..Self::empty_assistant()
        })
    }

    fn empty_assistant() -> ChatCompletionRequestAssistantMessage {
        ChatCompletionRequestAssistantMessage {
            role: ChatCompletionRequestAssistantMessageRole::Assistant,
            content: Default::default(),
            refusal: Default::default(),
            name: None,
            audio: None,
            tool_calls: None,
            function_call: None,
            reasoning_content: Default::default(),
            extra: Map::new(),
        }
    }

    /// A `tool` message carrying the result of the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<MessageContent>) -> Self {
        Self::Tool(ChatCompletionRequestToolMessage {
            role: ChatCompletionRequestToolMessageRole::Tool,
            content: content.into(),
            tool_call_id: tool_call_id.into(),
            extra: Map::new(),
        })
    }

    /// The role as it appears on the wire.
    pub fn role(&self) -> &'static str {
        match self {
            Self::Developer(_) => "developer",
            Self::System(_) => "system",
            Self::User(_) => "user",
            Self::Assistant(_) => "assistant",
            Self::Tool(_) => "tool",
            Self::Function(_) => "function",
        }
    }

    /// The message's content, where it has one.
    pub fn content(&self) -> Option<&MessageContent> {
        match self {
            Self::Developer(m) => Some(&m.content),
            Self::System(m) => Some(&m.content),
            Self::User(m) => Some(&m.content),
            Self::Assistant(m) => m.content.as_ref(),
            Self::Tool(m) => Some(&m.content),
            Self::Function(_) => None,
        }
    }

    /// The message's content, to change it in place (guardrails mask it).
    pub fn content_mut(&mut self) -> Option<&mut MessageContent> {
        match self {
            Self::Developer(m) => Some(&mut m.content),
            Self::System(m) => Some(&mut m.content),
            Self::User(m) => Some(&mut m.content),
            Self::Assistant(m) => m.content.as_mut(),
            Self::Tool(m) => Some(&mut m.content),
            Self::Function(_) => None,
        }
    }
}

impl MessageContent {
    /// Every text in the content, to read or change in place: the string, or each text part.
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        match self {
            Self::Text(text) => vec![text],
            Self::Parts(parts) => parts
                .iter_mut()
                .filter_map(|p| match p {
                    ContentPart::Text(t) => Some(&mut t.text),
                    _ => None,
                })
                .collect(),
        }
    }

    /// Every text in the content: the string, or each text part.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let (whole, parts): (Option<&str>, &[ContentPart]) = match self {
            Self::Text(text) => (Some(text.as_str()), &[]),
            Self::Parts(parts) => (None, parts.as_slice()),
        };
        whole.into_iter().chain(parts.iter().filter_map(|p| match p {
            ContentPart::Text(t) => Some(t.text.as_str()),
            _ => None,
        }))
    }
}

impl Serialize for ChatMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Developer(m) => m.serialize(serializer),
            Self::System(m) => m.serialize(serializer),
            Self::User(m) => m.serialize(serializer),
            Self::Assistant(m) => m.serialize(serializer),
            Self::Tool(m) => m.serialize(serializer),
            Self::Function(m) => m.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ChatMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let message = tagged(deserializer, "role", "message")?;
        Ok(match message.tag.as_str() {
            "developer" => Self::Developer(variant(message, "message")?),
            "system" => Self::System(variant(message, "message")?),
            "user" => Self::User(variant(message, "message")?),
            "assistant" => Self::Assistant(variant(message, "message")?),
            "tool" => Self::Tool(variant(message, "message")?),
            "function" => Self::Function(variant(message, "message")?),
            other => {
                return Err(de::Error::custom(format_args!(
                    "unknown message role `{other}`, expected one of: {}",
                    ROLES.join(", ")
                )));
            }
        })
    }
}

/// Message content: a plain string, or a list of parts.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageContent {
    /// A plain string.
    Text(String),
    /// Content parts (text, images, audio, files, ...).
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text: the string itself, or the text parts joined (other parts are skipped).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Text(text) => Cow::Borrowed(text),
            Self::Parts(parts) => {
                let mut texts = parts.iter().filter_map(ContentPart::as_text);
                match (texts.next(), texts.next()) {
                    (None, _) => Cow::Borrowed(""),
                    (Some(only), None) => Cow::Borrowed(only),
                    (Some(first), Some(second)) => {
                        let mut joined = format!("{first}{second}");
                        texts.for_each(|t| joined.push_str(t));
                        Cow::Owned(joined)
                    }
                }
            }
        }
    }
}

impl From<&str> for MessageContent {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

impl From<String> for MessageContent {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Vec<ContentPart>> for MessageContent {
    fn from(parts: Vec<ContentPart>) -> Self {
        Self::Parts(parts)
    }
}

impl Serialize for MessageContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Parts(parts) => parts.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = MessageContent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MessageContent, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(64));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(MessageContent::Parts(parts))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One part of a message's content, by `type`.
#[derive(Clone, Debug, PartialEq)]
pub enum ContentPart {
    /// `text`.
    Text(ChatCompletionRequestMessageContentPartText),
    /// `image_url`: an http(s) URL or a `data:` URL.
    ImageUrl(ChatCompletionRequestMessageContentPartImage),
    /// `input_audio`: base64 audio.
    InputAudio(ChatCompletionRequestMessageContentPartAudio),
    /// `file`: a file by id or inline data.
    File(ChatCompletionRequestMessageContentPartFile),
    /// `refusal` (assistant content only).
    Refusal(ChatCompletionRequestMessageContentPartRefusal),
    /// A part type this version does not know, kept as it came and forwarded unchanged.
    Other(Map<String, Value>),
}

impl ContentPart {
    /// The fields beyond the part's own (extensions such as Anthropic's `cache_control`).
    pub fn extra(&self) -> &Map<String, Value> {
        match self {
            Self::Text(p) => &p.extra,
            Self::ImageUrl(p) => &p.extra,
            Self::InputAudio(p) => &p.extra,
            Self::File(p) => &p.extra,
            Self::Refusal(p) => &p.extra,
            Self::Other(map) => map,
        }
    }

    /// The same, to change.
    pub fn extra_mut(&mut self) -> &mut Map<String, Value> {
        match self {
            Self::Text(p) => &mut p.extra,
            Self::ImageUrl(p) => &mut p.extra,
            Self::InputAudio(p) => &mut p.extra,
            Self::File(p) => &mut p.extra,
            Self::Refusal(p) => &mut p.extra,
            Self::Other(map) => map,
        }
    }

    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(ChatCompletionRequestMessageContentPartText {
            type_: ChatCompletionRequestMessageContentPartTextType::Text,
            text: text.into(),
            extra: Map::new(),
        })
    }

    /// An image part from an http(s) URL or a `data:image/...;base64,` URL.
    pub fn image_url(url: impl Into<String>) -> Self {
        Self::ImageUrl(ChatCompletionRequestMessageContentPartImage {
            type_: ChatCompletionRequestMessageContentPartImageType::ImageUrl,
            image_url: ImageUrl { url: url.into(), detail: None, extra: Map::new() },
            extra: Map::new(),
        })
    }

    /// The text of a text part.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(part) => Some(&part.text),
            _ => None,
        }
    }

    /// The `type` as it appears on the wire.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::ImageUrl(_) => "image_url",
            Self::InputAudio(_) => "input_audio",
            Self::File(_) => "file",
            Self::Refusal(_) => "refusal",
            Self::Other(map) => map.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(p) => p.serialize(serializer),
            Self::ImageUrl(p) => p.serialize(serializer),
            Self::InputAudio(p) => p.serialize(serializer),
            Self::File(p) => p.serialize(serializer),
            Self::Refusal(p) => p.serialize(serializer),
            Self::Other(map) => map.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let part = tagged(deserializer, "type", "content part")?;
        Ok(match part.tag.as_str() {
            "text" => Self::Text(variant(part, "content part")?),
            "image_url" => Self::ImageUrl(variant(part, "content part")?),
            "input_audio" => Self::InputAudio(variant(part, "content part")?),
            "file" => Self::File(variant(part, "content part")?),
            "refusal" => Self::Refusal(variant(part, "content part")?),
            _ => Self::Other(part.object),
        })
    }
}
