//! Constructors for chat requests and their parts.

use serde_json::{Map, Value};

use crate::spec::ext::ChatMessage;
use crate::spec::openai::{
    ChatCompletionMessageToolCall, ChatCompletionNamedToolChoice, ChatCompletionTool, ChatCompletionToolChoiceOption,
    CreateChatCompletionRequest, FunctionCall, FunctionObject, JsonSchemaFormat, ResponseFormat, ToolChoiceMode,
    ToolChoiceName, ToolType,
};

impl CreateChatCompletionRequest {
    /// A request to `model` (`provider/model`, or a bare OpenAI model) with these messages;
    /// every other field unset.
    ///
    /// ```
    /// use switchyard::{ChatRequest, ChatMessage};
    /// let mut req = ChatRequest::new("groq/llama-3.3-70b-versatile", vec![ChatMessage::user("Hi")]);
    /// req.temperature = Some(0.2);
    /// assert_eq!(serde_json::to_value(&req)?["messages"][0]["content"], "Hi");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            audio: None,
            frequency_penalty: None,
            function_call: None,
            functions: None,
            logit_bias: None,
            logprobs: None,
            max_completion_tokens: None,
            max_tokens: None,
            metadata: None,
            modalities: None,
            n: None,
            parallel_tool_calls: None,
            prediction: None,
            presence_penalty: None,
            prompt_cache_key: None,
            reasoning_effort: None,
            response_format: None,
            safety_identifier: None,
            seed: None,
            service_tier: None,
            stop: None,
            store: None,
            stream: None,
            stream_options: None,
            temperature: None,
            tool_choice: None,
            tools: None,
            top_logprobs: None,
            top_p: None,
            user: None,
            verbosity: None,
            web_search_options: None,
            extra: Map::new(),
        }
    }
}

impl ChatCompletionTool {
    /// A function tool; `parameters` is its JSON Schema.
    pub fn function(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        let parameters = match parameters {
            Value::Object(map) => Some(map),
            _ => None,
        };
        Self {
            type_: ToolType::Function,
            function: Some(FunctionObject {
                name: name.into(),
                description: Some(description.into()),
                parameters,
                strict: Default::default(),
                extra: Map::new(),
            }),
            custom: None,
            extra: Map::new(),
        }
    }
}

impl ChatCompletionToolChoiceOption {
    /// `"auto"`: the model decides.
    pub fn auto() -> Self {
        Self::ToolChoiceMode(ToolChoiceMode::Auto)
    }

    /// `"none"`: no tool calls.
    pub fn none() -> Self {
        Self::ToolChoiceMode(ToolChoiceMode::None)
    }

    /// `"required"`: at least one tool call.
    pub fn required() -> Self {
        Self::ToolChoiceMode(ToolChoiceMode::Required)
    }

    /// Forces the function `name`.
    pub fn function(name: impl Into<String>) -> Self {
        Self::ChatCompletionNamedToolChoice(ChatCompletionNamedToolChoice::Function {
            function: ToolChoiceName { name: name.into(), extra: Map::new() },
        })
    }
}

impl ResponseFormat {
    /// Structured Outputs: the answer must follow `schema`.
    pub fn json_schema(name: impl Into<String>, schema: Value, strict: bool) -> Self {
        let schema = match schema {
            Value::Object(map) => Some(map),
            _ => None,
        };
        Self::JsonSchema(JsonSchemaFormat {
            name: name.into(),
            description: None,
            schema,
            strict: Some(strict).into(),
            extra: Map::new(),
        })
    }
}

impl ChatCompletionMessageToolCall {
    /// A function call, as the model made it (for an assistant message in the history).
    pub fn function(id: impl Into<String>, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            type_: Some(ToolType::Function),
            function: Some(FunctionCall { name: name.into(), arguments: arguments.into(), extra: Map::new() }),
            custom: None,
            extra: Map::new(),
        }
    }
}
