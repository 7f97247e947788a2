//! The semantic checks of a live run on the SDK's answers: `tool_calls`, `stream_chunks` and
//! `agreement` (a stream and its non-stream twin).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::super::report::Check;
use super::super::schema::Schemas;
use crate::{ChatChunk, ChatRequest, ChatResponse};

/// `tool_calls`: when the request declares tools, every call names one of them with
/// arguments that parse and match its schema, and one is made when `tool_choice` demands it.
pub(super) fn tool_checks(request: &ChatRequest, response: &ChatResponse) -> Option<Check> {
    let request_json = serde_json::to_value(request).ok()?;
    let tools = request_json.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty())?;
    let declared: BTreeMap<String, Value> = tools
        .iter()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some((f.get("name")?.as_str()?.to_string(), f.get("parameters").cloned().unwrap_or(json!({}))))
        })
        .collect();
    let mut problems = Vec::new();
    let calls: Vec<_> = response.choices.iter().flat_map(|c| c.message.tool_calls.iter().flatten()).collect();
    let forced = match request_json.get("tool_choice") {
        Some(Value::String(s)) => s == "required",
        Some(Value::Object(o)) => o.get("type").and_then(Value::as_str) == Some("function"),
        _ => false,
    };
    if forced && calls.is_empty() {
        problems.push("tool_choice demands a call, and none was made".to_string());
    }
    for call in &calls {
        let Some(function) = call.function.as_ref() else {
            problems.push(format!("call {} has no function", call.id));
            continue;
        };
        let Some(schema) = declared.get(&function.name) else {
            let names: Vec<&String> = declared.keys().collect();
            problems
                .push(format!("call {} names `{}`, which is not a declared tool ({names:?})", call.id, function.name));
            continue;
        };
        match serde_json::from_str::<Value>(&function.arguments) {
            Ok(arguments) => {
                let schemas = Schemas::new(schema);
                problems.extend(
                    schemas
                        .validate(schema, &arguments)
                        .into_iter()
                        .map(|p| format!("call {} ({}): {p}", call.id, function.name)),
                );
            }
            Err(e) => problems.push(format!(
                "call {} ({}): the arguments are not JSON ({e}): {:?}",
                call.id, function.name, function.arguments
            )),
        }
    }
    let ok = format!("{} call(s), each naming a declared tool with valid arguments", calls.len());
    Some(Check::from_problems("tool_calls", &ok, &problems))
}

/// `stream_chunks`: one finish reason per choice, usage when asked, fragments that assemble.
pub(super) fn stream_chunk_check(request: &ChatRequest, chunks: &[ChatChunk], assembled: &ChatResponse) -> Check {
    let mut problems = Vec::new();
    let mut finishes: BTreeMap<i64, usize> = BTreeMap::new();
    for chunk in chunks {
        for choice in &chunk.choices {
            if choice.finish_reason.is_some() {
                *finishes.entry(choice.index).or_default() += 1;
            }
        }
    }
    let indices: BTreeSet<i64> = chunks.iter().flat_map(|c| c.choices.iter().map(|c| c.index)).collect();
    for index in &indices {
        match finishes.get(index).copied().unwrap_or(0) {
            1 => {}
            n => problems.push(format!("choice {index} has {n} finish reasons, not one")),
        }
    }
    let asked = request.stream_options.as_ref().and_then(|o| o.include_usage) == Some(true);
    if asked && !chunks.iter().any(|c| c.usage.is_some()) {
        problems.push("stream_options.include_usage was asked, and no chunk carries usage".into());
    }
    for choice in &assembled.choices {
        for call in choice.message.tool_calls.iter().flatten() {
            if let Some(f) = &call.function
                && serde_json::from_str::<Value>(&f.arguments).is_err()
            {
                problems.push(format!(
                    "the fragments of call {} assemble into {:?}, which is not JSON",
                    call.id, f.arguments
                ));
            }
        }
    }
    Check::from_problems("stream_chunks", &format!("{} chunks, well-formed", chunks.len()), &problems)
}

/// `agreement`: the stream's assembled answer and the twin's whole answer have one shape.
pub(super) fn agreement(assembled: &ChatResponse, whole: &ChatResponse) -> Check {
    let shape = |r: &ChatResponse| -> Vec<Value> {
        let mut choices: Vec<Value> = r
            .choices
            .iter()
            .map(|c| {
                let mut names: Vec<String> = c
                    .message
                    .tool_calls
                    .iter()
                    .flatten()
                    .filter_map(|t| t.function.as_ref().map(|f| f.name.clone()))
                    .collect();
                names.sort();
                json!({
                    "index": c.index,
                    "text": c.message.content.as_deref().is_some_and(|t| !t.is_empty()),
                    "tools": names,
                    "finish_reason": c.finish_reason.as_ref().map(|f| f.as_str()),
                })
            })
            .collect();
        choices.sort_by_key(|c| c["index"].as_i64());
        choices
    };
    let (a, b) = (shape(assembled), shape(whole));
    if a == b {
        Check::pass("agreement", "the stream and the whole answer agree in shape")
    } else {
        Check::fail("agreement", format!("stream {} vs whole {}", Value::from(a), Value::from(b)))
    }
}
