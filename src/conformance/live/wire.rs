//! The wire checks of a live run: `wire_schema` (the answer's body, each stream event's,
//! against our description of the provider's format), `wire_stream` (the stream's order and
//! framing in that format) and `openai_schema` (what the SDK made of it, against OpenAI's).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::super::capture::Exchange;
use super::super::case::Operation;
use super::super::replay::{Outcome as Answer, to_json};
use super::super::report::Check;
use super::super::schema::Schemas;
use super::Target;
use crate::catalog::{ANTHROPIC_FORMAT, BEDROCK_FORMAT, OPENAI_FORMAT, WireFormat};
use crate::transport::sse::SseFramer;

/// Our description of a wire format (the provider descriptor's `format.spec`), parsed once.
pub(super) fn description(format: &WireFormat) -> &'static Value {
    static DOCS: OnceLock<BTreeMap<&'static str, Value>> = OnceLock::new();
    let docs = DOCS.get_or_init(|| {
        let parse = |text: &str| crate::drift::parse(text, false).unwrap_or(Value::Null);
        // Every format's description, embedded (`every_format_has_its_description` checks
        // that none is missing).
        BTreeMap::from([
            ("openapi/openai.yaml", parse(include_str!("../../../openapi/openai.yaml"))),
            ("openapi/anthropic.yaml", parse(include_str!("../../../openapi/anthropic.yaml"))),
            ("openapi/gemini.yaml", parse(include_str!("../../../openapi/gemini.yaml"))),
            ("openapi/cohere.yaml", parse(include_str!("../../../openapi/cohere.yaml"))),
            ("openapi/bedrock.yaml", parse(include_str!("../../../openapi/bedrock.yaml"))),
        ])
    });
    docs.get(format.spec).unwrap_or(&Value::Null)
}

/// The schema of a whole answer, a stream event, an embeddings answer, a models list and an
/// error, in our description of the format.
pub(super) fn schema(format: &WireFormat, what: Wire) -> Option<&'static str> {
    let schemas = &format.schemas;
    match what {
        Wire::Chat => Some(schemas.chat),
        Wire::Event => Some(schemas.event),
        Wire::Embed => schemas.embed,
        Wire::Models => schemas.models,
        Wire::Error => Some(schemas.error),
    }
}

#[derive(Clone, Copy)]
pub(super) enum Wire {
    Chat,
    Event,
    Embed,
    Models,
    Error,
}

/// `wire_schema` and, for streams, `wire_stream`, on the exchange that answered.
pub(super) fn wire_checks(target: &Target, operation: Operation, exchanges: &[Exchange]) -> Vec<Check> {
    let Some(exchange) = exchanges.last() else {
        let why = "not checked: the request went straight to the endpoint (SigV4 signs the host; \
                   use a Bedrock API key to check the wire)";
        return vec![Check::pass("wire_schema", why)];
    };
    let doc = description(target.format);
    let schemas = Schemas::new(doc);
    let wire = match operation {
        Operation::Chat => Wire::Chat,
        Operation::ChatStream => Wire::Event,
        Operation::Embed => Wire::Embed,
        Operation::Models => Wire::Models,
    };
    let Some(schema) = schema(target.format, wire) else {
        return vec![Check::pass("wire_schema", "not checked: our description has no schema for this answer")];
    };
    if operation != Operation::ChatStream {
        let problems = match serde_json::from_slice::<Value>(&exchange.response_body) {
            Ok(body) => schemas.validate_component(schema, &body),
            Err(e) => vec![format!("the body is not JSON: {e}")],
        };
        return vec![Check::from_problems("wire_schema", &format!("the body is a valid {schema}"), &problems)];
    }
    if *target.format == BEDROCK_FORMAT {
        return vec![Check::pass("wire_schema", "not checked: Bedrock streams are binary event streams")];
    }
    let events = sse_events(&exchange.response_body);
    let mut problems = Vec::new();
    for (i, (event, data)) in events.iter().enumerate() {
        if data == "[DONE]" {
            continue;
        }
        match serde_json::from_str::<Value>(data) {
            Ok(value) => {
                // Anthropic's events are told apart by their type, not by their shape.
                let schema = if *target.format == ANTHROPIC_FORMAT {
                    match anthropic_event_schema(&value) {
                        Some(schema) => schema,
                        None => continue, // an event type this version does not know: skipped, as Anthropic asks
                    }
                } else {
                    schema
                };
                problems.extend(
                    schemas.validate_component(schema, &value).into_iter().map(|p| format!("event {i} ({event}): {p}")),
                );
            }
            Err(e) => problems.push(format!("event {i} ({event}) is not JSON: {e}")),
        }
    }
    vec![
        Check::from_problems("wire_schema", &format!("{} events, each a valid {schema}", events.len()), &problems),
        Check::from_problems("wire_stream", "the stream is well-formed", &stream_shape(target.format, &events)),
    ]
}

/// The schema of an Anthropic stream event, by its `type`.
pub(super) fn anthropic_event_schema(event: &Value) -> Option<&'static str> {
    Some(match event.get("type").and_then(Value::as_str)? {
        "message_start" => "MessageStartEvent",
        "content_block_start" => "ContentBlockStartEvent",
        "content_block_delta" => "ContentBlockDeltaEvent",
        "content_block_stop" => "ContentBlockStopEvent",
        "message_delta" => "MessageDeltaEvent",
        "message_stop" => "MessageStopEvent",
        "ping" => "Ping",
        "error" => "ErrorResponse",
        _ => return None,
    })
}

/// The SSE events of a body: (event name, data).
pub(super) fn sse_events(body: &[u8]) -> Vec<(String, String)> {
    let mut framer = SseFramer::new();
    framer.push(body);
    let mut out = Vec::new();
    while let Some(event) = framer.next_event() {
        out.push((event.event().to_string(), event.data_str().into_owned()));
    }
    if let Some(event) = framer.finish() {
        out.push((event.event().to_string(), event.data_str().into_owned()));
    }
    out
}

/// What is wrong with the order and framing of a stream's events, in its format.
pub(super) fn stream_shape(format: &WireFormat, events: &[(String, String)]) -> Vec<String> {
    let json = |data: &str| serde_json::from_str::<Value>(data).ok();
    let mut problems = Vec::new();
    if events.is_empty() {
        return vec!["the stream has no events".into()];
    }
    match format.id {
        "openai" => {
            let done = events.iter().position(|(_, d)| d == "[DONE]");
            match done {
                None => problems.push("no `data: [DONE]` at the end".into()),
                Some(i) if i + 1 != events.len() => {
                    problems.push(format!("events after [DONE] (at {i} of {})", events.len()))
                }
                Some(_) => {}
            }
            one_finish_each(events, "choices", "choice", "finish_reason", &mut problems);
        }
        "anthropic" => anthropic_stream_shape(events, &mut problems),
        "gemini" => {
            one_finish_each(events, "candidates", "candidate", "finishReason", &mut problems);
        }
        "cohere" => {
            let types: Vec<String> =
                events.iter().filter_map(|(_, d)| json(d)?.get("type")?.as_str().map(str::to_string)).collect();
            if types.first().map(String::as_str) != Some("message-start") {
                problems.push(format!("the first event is {:?}, not message-start", types.first()));
            }
            if types.last().map(String::as_str) != Some("message-end") {
                problems.push(format!("the last event is {:?}, not message-end", types.last()));
            }
            for (start, end) in [("content-start", "content-end"), ("tool-call-start", "tool-call-end")] {
                let (s, e) = (types.iter().filter(|t| *t == start).count(), types.iter().filter(|t| *t == end).count());
                if s != e {
                    problems.push(format!("{s} {start} events but {e} {end}"));
                }
            }
        }
        // Bedrock streams are binary event streams, checked as they are decoded; a new
        // format has no order checks until they are written here.
        _ => {}
    }
    problems
}

/// Anthropic's stream: event names match their data's types, it opens with message_start
/// and closes with message_stop, blocks open and stop one at a time, and one message_delta
/// carries the stop reason.
fn anthropic_stream_shape(events: &[(String, String)], problems: &mut Vec<String>) {
    let json = |data: &str| serde_json::from_str::<Value>(data).ok();
    let types: Vec<String> = events
        .iter()
        .map(|(e, d)| {
            json(d).and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string)).unwrap_or_else(|| e.clone())
        })
        .collect();
    for (i, ((event, _), t)) in events.iter().zip(&types).enumerate() {
        if !event.is_empty() && event != t {
            problems.push(format!("event {i} is named `{event}` but its data says `{t}`"));
        }
    }
    let meaningful: Vec<&String> = types.iter().filter(|t| t.as_str() != "ping").collect();
    if meaningful.first().map(|t| t.as_str()) != Some("message_start") {
        problems.push(format!("the first event is {:?}, not message_start", meaningful.first()));
    }
    if meaningful.last().map(|t| t.as_str()) != Some("message_stop") {
        problems.push(format!("the last event is {:?}, not message_stop", meaningful.last()));
    }
    let mut open: Option<i64> = None;
    let mut stop_reasons = 0;
    for (i, (_, data)) in events.iter().enumerate() {
        let Some(value) = json(data) else { continue };
        let index = value.get("index").and_then(Value::as_i64);
        match value.get("type").and_then(Value::as_str) {
            Some("content_block_start") => {
                if let Some(o) = open {
                    problems.push(format!("event {i}: block {index:?} starts while block {o} is open"));
                }
                open = index;
            }
            Some("content_block_delta") if open != index => {
                problems.push(format!("event {i}: a delta for block {index:?}, but the open block is {open:?}"));
            }
            Some("content_block_stop") => {
                if open != index {
                    problems.push(format!("event {i}: block {index:?} stops, but the open block is {open:?}"));
                }
                open = None;
            }
            Some("message_delta") if value.pointer("/delta/stop_reason").is_some_and(|r| !r.is_null()) => {
                stop_reasons += 1;
            }
            _ => {}
        }
    }
    if let Some(o) = open {
        problems.push(format!("block {o} is never stopped"));
    }
    if stop_reasons != 1 {
        problems.push(format!("{stop_reasons} message_delta events carry a stop_reason, not one"));
    }
}

/// Each choice (`list` items, by their `index`) of a stream's JSON events has exactly one
/// `reason` field that is set, and some choice has one.
pub(super) fn one_finish_each(
    events: &[(String, String)],
    list: &str,
    item: &str,
    reason: &str,
    problems: &mut Vec<String>,
) {
    let mut finishes: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, data) in events {
        let Ok(event) = serde_json::from_str::<Value>(data) else { continue };
        for entry in event.get(list).and_then(Value::as_array).into_iter().flatten() {
            if entry.get(reason).is_some_and(|f| !f.is_null()) {
                *finishes.entry(entry.get("index").and_then(Value::as_i64).unwrap_or(0)).or_default() += 1;
            }
        }
    }
    if finishes.is_empty() {
        problems.push(format!("no {item} ever has a {reason}"));
    }
    for (index, n) in finishes.iter().filter(|(_, n)| **n > 1) {
        problems.push(format!("{item} {index} has {n} finish reasons, not one"));
    }
}

/// The SDK's OpenAI-shaped output against our description of OpenAI's format.
pub(super) fn openai_schema(answer: &Answer) -> Check {
    let doc = description(&OPENAI_FORMAT);
    let schemas = Schemas::new(doc);
    let (schema, problems) = match answer {
        Answer::Chat(r) => {
            ("CreateChatCompletionResponse", schemas.validate_component("CreateChatCompletionResponse", &to_json(r)))
        }
        Answer::Stream { chunks, .. } => (
            "CreateChatCompletionStreamResponse",
            chunks
                .iter()
                .enumerate()
                .flat_map(|(i, c)| {
                    schemas
                        .validate_component("CreateChatCompletionStreamResponse", &to_json(c))
                        .into_iter()
                        .map(move |p| format!("chunk {i}: {p}"))
                })
                .collect(),
        ),
        Answer::Embed(r) => {
            ("CreateEmbeddingResponse", schemas.validate_component("CreateEmbeddingResponse", &to_json(r)))
        }
        Answer::Models(r) => ("ListModelsResponse", schemas.validate_component("ListModelsResponse", &to_json(r))),
        Answer::Failed(err) => ("answer", vec![format!("the call failed: {err}")]),
    };
    Check::from_problems("openai_schema", &format!("the SDK's output is a valid OpenAI {schema}"), &problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_has_its_description() {
        for format in crate::catalog::FORMATS {
            assert!(description(format).is_object(), "{} ({}) is not embedded", format.id, format.spec);
        }
    }

    fn events(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(e, d)| (e.to_string(), d.to_string())).collect()
    }

    #[test]
    fn openai_streams_need_done_last_and_one_finish_reason() {
        let good = events(&[
            ("", r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#),
            ("", r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
            ("", "[DONE]"),
        ]);
        assert!(stream_shape(&OPENAI_FORMAT, &good).is_empty());
        let bad = events(&[
            ("", r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
            ("", r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
        ]);
        let problems = stream_shape(&OPENAI_FORMAT, &bad);
        assert!(problems.iter().any(|p| p.contains("[DONE]")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("2 finish reasons")), "{problems:?}");
    }

    #[test]
    fn anthropic_streams_open_and_close_blocks_in_order() {
        let good = events(&[
            ("message_start", r#"{"type":"message_start","message":{}}"#),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#,
            ),
            ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ]);
        assert_eq!(stream_shape(&ANTHROPIC_FORMAT, &good), Vec::<String>::new());
        let mut bad = good.clone();
        bad.remove(3);
        bad.pop();
        let problems = stream_shape(&ANTHROPIC_FORMAT, &bad);
        assert!(problems.iter().any(|p| p.contains("not message_stop")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("never stopped")), "{problems:?}");
    }
}
