//! Answers for `/v1/messages`: an OpenAI-shaped answer as Anthropic's message, and a
//! stream of OpenAI chunks as Anthropic's events.

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::gateway::admission::Metered;
use crate::{ChatChunk, ChatResponse};

fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage from OpenAI's (where cached and cache-write tokens sit inside the prompt).
fn usage(usage: Option<&crate::spec::openai::CompletionUsage>) -> Value {
    let Some(u) = usage else { return json!({"input_tokens": 0, "output_tokens": 0}) };
    let details = u.prompt_tokens_details.as_ref();
    let cached = details.and_then(|d| d.cached_tokens).unwrap_or(0);
    let written = details.and_then(|d| d.cache_write_tokens).unwrap_or(0);
    json!({
        "input_tokens": (u.prompt_tokens - cached - written).max(0),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
    })
}

fn message_id(id: &str) -> String {
    if id.starts_with("msg_") { id.to_string() } else { format!("msg_{id}") }
}

/// An OpenAI-shaped answer as Anthropic's `Message`.
pub fn from_openai(response: &ChatResponse, model: &str) -> Value {
    let mut content = Vec::new();
    let choice = response.choices.first();
    let message = choice.map(|c| serde_json::to_value(&c.message).unwrap_or(Value::Null)).unwrap_or(Value::Null);
    if let Some(blocks) = message.get("thinking_blocks").and_then(Value::as_array) {
        content.extend(blocks.iter().cloned());
    } else if let Some(reasoning) = message.get("reasoning_content").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
        content.push(json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input}));
    }
    let finish =
        choice.and_then(|c| serde_json::to_value(&c.finish_reason).ok()).and_then(|v| v.as_str().map(str::to_string));
    json!({
        "id": message_id(&response.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(finish.as_deref().unwrap_or("stop")),
        "stop_sequence": null,
        "usage": usage(response.usage.as_ref()),
    })
}

/// The kind of content block open in a translated stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
    Tool(i64),
}

/// Translates OpenAI chunks into Anthropic stream events.
#[derive(Debug)]
pub struct StreamTranslator {
    model: String,
    started: bool,
    open: Option<(usize, Open)>,
    next_index: usize,
    stop: Option<&'static str>,
    usage: Option<crate::spec::openai::CompletionUsage>,
}

impl StreamTranslator {
    /// A translator for a stream of `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self { model: model.into(), started: false, open: None, next_index: 0, stop: None, usage: None }
    }

    /// Writes one event into `out`, the data serialized in place.
    pub(super) fn event(out: &mut Vec<u8>, name: &str, data: &impl serde::Serialize) {
        let start = out.len();
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        if let Err(err) = serde_json::to_writer(&mut *out, data) {
            // Not reachable with these types (no map has non-string keys); the event is
            // left out rather than sent half-written.
            tracing::warn!(event = name, error = %err, "cannot encode an Anthropic stream event");
            out.truncate(start);
            return;
        }
        out.extend_from_slice(b"\n\n");
    }

    /// A `content_block_delta` event (the one nearly every chunk becomes), written with no
    /// intermediate JSON value.
    fn delta(out: &mut Vec<u8>, index: usize, kind: &'static str, field: &'static str, value: &str) {
        #[derive(serde::Serialize)]
        struct Delta<'a> {
            r#type: &'static str,
            index: usize,
            delta: Inner<'a>,
        }
        struct Inner<'a> {
            kind: &'static str,
            field: &'static str,
            value: &'a str,
        }
        impl serde::Serialize for Inner<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("type", self.kind)?;
                map.serialize_entry(self.field, self.value)?;
                map.end()
            }
        }
        let data = Delta { r#type: "content_block_delta", index, delta: Inner { kind, field, value } };
        Self::event(out, "content_block_delta", &data);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            Self::event(out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}));
        }
    }

    fn ensure(&mut self, kind: Open, start: Value, out: &mut Vec<u8>) -> usize {
        if let Some((index, open)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        Self::event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        index
    }

    /// The events for one chunk.
    pub fn chunk(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let start = json!({"type": "message_start", "message": {
                "id": message_id(&chunk.id), "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }});
            Self::event(out, "message_start", &start);
        }
        if let Some(u) = chunk.usage.as_ref() {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else { return };
        let delta = &choice.delta;
        if let Some(thinking) = delta.reasoning_content.as_ref().filter(|t| !t.is_empty()) {
            let index = self.ensure(Open::Thinking, json!({"type": "thinking", "thinking": "", "signature": ""}), out);
            Self::delta(out, index, "thinking_delta", "thinking", thinking);
        }
        if let Some(blocks) = delta.extra.get("thinking_blocks").and_then(Value::as_array)
            && let Some((index, Open::Thinking)) = self.open
        {
            for signature in
                blocks.iter().filter_map(|b| b.get("signature").and_then(Value::as_str)).filter(|s| !s.is_empty())
            {
                Self::delta(out, index, "signature_delta", "signature", signature);
            }
        }
        if let Some(text) = delta.content.as_ref().filter(|t| !t.is_empty()) {
            let index = self.ensure(Open::Text, json!({"type": "text", "text": ""}), out);
            Self::delta(out, index, "text_delta", "text", text);
        }
        for call in delta.tool_calls.iter().flatten() {
            let function = call.function.as_ref();
            let starts_new =
                call.id.is_some() || self.open.is_none_or(|(_, open)| open != Open::Tool(call.index.unwrap_or(0)));
            let index = if starts_new {
                self.close(out);
                let start = json!({
                    "type": "tool_use", "id": call.id.clone().unwrap_or_default(),
                    "name": function.and_then(|f| f.name.clone()).unwrap_or_default(), "input": {},
                });
                self.ensure(Open::Tool(call.index.unwrap_or(0)), start, out)
            } else {
                self.open.map_or(0, |(index, _)| index)
            };
            if let Some(arguments) = function.and_then(|f| f.arguments.as_deref()).filter(|a| !a.is_empty()) {
                Self::delta(out, index, "input_json_delta", "partial_json", arguments);
            }
        }
        if let Some(finish) = choice.finish_reason.as_ref().and_then(|f| serde_json::to_value(f).ok()) {
            self.stop = Some(stop_reason(finish.as_str().unwrap_or("stop")));
        }
    }

    /// The closing events.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.close(out);
        let data = json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop.unwrap_or("end_turn"), "stop_sequence": null},
            "usage": usage(self.usage.as_ref())});
        Self::event(out, "message_delta", &data);
        Self::event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

pub(super) fn events(
    stream: Box<Metered>,
    model: String,
) -> impl futures_core::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let translator = StreamTranslator::new(model);
    futures_util::stream::unfold(Some((stream, translator)), |state| async move {
        let (mut stream, mut translator) = state?;
        let mut out = Vec::new();
        match stream.next_chunk().await {
            Some(Ok(chunk)) => {
                translator.chunk(&chunk, &mut out);
                Some((Ok(Bytes::from(out)), Some((stream, translator))))
            }
            Some(Err(failure)) => {
                let kind = if failure.kind == "guardrail_violation" { failure.kind } else { "api_error" };
                let body = json!({"type": "error", "error": {"type": kind, "message": failure.message}});
                StreamTranslator::event(&mut out, "error", &body);
                Some((Ok(Bytes::from(out)), None))
            }
            None => {
                translator.finish(&mut out);
                Some((Ok(Bytes::from(out)), None))
            }
        }
    })
}
