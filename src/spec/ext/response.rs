//! Helpers for reading chat answers.

use crate::spec::openai::{ChatCompletionMessageToolCall, CreateChatCompletionResponse, FinishReason};

impl CreateChatCompletionResponse {
    /// The first choice's text, if it has any.
    pub fn text(&self) -> Option<&str> {
        self.choices.first()?.message.content.as_deref()
    }

    /// The first choice's tool calls (empty when there are none).
    pub fn tool_calls(&self) -> &[ChatCompletionMessageToolCall] {
        self.choices.first().and_then(|c| c.message.tool_calls.as_deref()).unwrap_or_default()
    }

    /// The first choice's finish reason.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.choices.first()?.finish_reason.as_ref()
    }
}

impl crate::spec::openai::ChatCompletionStreamResponseDelta {
    /// A delta with nothing set.
    pub fn empty() -> Self {
        Self {
            role: None,
            content: crate::spec::ext::Nullable::Absent,
            refusal: crate::spec::ext::Nullable::Absent,
            tool_calls: None,
            function_call: None,
            reasoning_content: crate::spec::ext::Nullable::Absent,
            extra: serde_json::Map::new(),
        }
    }
}

impl crate::spec::openai::CreateChatCompletionStreamResponse {
    /// A chunk with one choice, for translated streams.
    pub fn for_choice(
        id: &str,
        created: i64,
        model: &str,
        index: i64,
        delta: crate::spec::openai::ChatCompletionStreamResponseDelta,
        finish_reason: Option<FinishReason>,
    ) -> Self {
        Self {
            id: id.to_string(),
            object: "chat.completion.chunk".into(),
            created,
            model: model.to_string(),
            choices: vec![crate::spec::openai::ChatCompletionStreamChoice {
                index,
                delta,
                finish_reason,
                logprobs: crate::spec::ext::Nullable::Absent,
                extra: serde_json::Map::new(),
            }],
            usage: crate::spec::ext::Nullable::Absent,
            service_tier: crate::spec::ext::Nullable::Absent,
            system_fingerprint: crate::spec::ext::Nullable::Absent,
            obfuscation: None,
            extra: serde_json::Map::new(),
        }
    }

    /// A chunk that says nothing (no choices, no usage): what a passed-through stream yields
    /// for bytes that decode to no chunk, so its caller takes them as they come.
    pub(crate) fn heartbeat() -> Self {
        let mut chunk =
            Self::for_choice("", 0, "", 0, crate::spec::openai::ChatCompletionStreamResponseDelta::empty(), None);
        chunk.choices.clear();
        chunk
    }

    /// A usage-only chunk (`choices: []`), as OpenAI ends a stream when usage is asked for.
    pub fn usage_only(id: &str, created: i64, model: &str, usage: crate::spec::openai::CompletionUsage) -> Self {
        let mut chunk = Self::for_choice(
            id,
            created,
            model,
            0,
            crate::spec::openai::ChatCompletionStreamResponseDelta::empty(),
            None,
        );
        chunk.choices.clear();
        chunk.usage = usage.into();
        chunk
    }
}
