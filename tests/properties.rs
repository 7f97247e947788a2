//! Properties over generated inputs: SSE and AWS event-stream framing are independent of how
//! bytes are split (and a corrupted event-stream byte is always caught); the
//! generated wire types round-trip; for OpenAI-format adapters encode-then-decode is the
//! identity; encoding never panics; tool-call fragments always reassemble.

use bytes::Bytes;
use http::HeaderMap;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchyard::conformance::compare::json_diff;
use switchyard::provider::azure::{Azure, AzureAuth};
use switchyard::provider::mock::Mock;
use switchyard::provider::openai::OpenAi;
use switchyard::provider::openai_compat::{OpenAiCompat, VENDORS};
use switchyard::provider::{Adapter, Ctx, Framer, StreamDecode};
use switchyard::transport::eventstream::{EventFrame, EventStreamFramer, FrameKind, event_frame, exception_frame};
use switchyard::transport::sse::{SseEvent, SseFramer};
use switchyard::{ChatChunk, ChatRequest, ChatResponse, ChunkAccumulator, Error};

// ---------------------------------------------------------------- SSE framing

#[derive(Debug, Clone)]
struct Source {
    event: &'static str,
    data: Vec<String>,
    comment: bool,
}

fn source_event() -> impl Strategy<Value = Source> {
    (
        prop::sample::select(vec!["", "message", "content_block_delta", "ping"]),
        prop::collection::vec("[^\r\n]{0,12}", 0..4),
        any::<bool>(),
    )
        .prop_map(|(event, data, comment)| Source { event, data, comment })
}

fn render(events: &[Source], endings: &[&str]) -> Vec<u8> {
    let mut out = String::new();
    let mut i = 0;
    let mut line = |out: &mut String, text: &str| {
        let mut ending = endings[i % endings.len()];
        // A CR ending then an empty line ending in LF would read as one CRLF; that input
        // means something else, so write the empty line's ending in full.
        if text.is_empty() && ending == "\n" && out.ends_with('\r') {
            ending = "\r\n";
        }
        out.push_str(text);
        out.push_str(ending);
        i += 1;
    };
    for e in events {
        if e.comment {
            line(&mut out, ": keep-alive");
        }
        if !e.event.is_empty() {
            line(&mut out, &format!("event: {}", e.event));
        }
        for d in &e.data {
            line(&mut out, &format!("data: {d}"));
        }
        line(&mut out, "");
    }
    out.into_bytes()
}

fn expected(events: &[Source]) -> Vec<SseEvent> {
    events.iter().filter(|e| !e.data.is_empty()).map(|e| SseEvent::new(e.event, e.data.join("\n"))).collect()
}

fn frame(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
    let mut framer = SseFramer::new();
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut start = 0;
    for end in points.into_iter().chain([bytes.len()]) {
        framer.push(&bytes[start..end]);
        start = end;
        out.extend(std::iter::from_fn(|| framer.next_event()));
    }
    out.extend(framer.finish());
    out
}

proptest! {
    #[test]
    fn sse_events_do_not_depend_on_how_bytes_are_split(
        events in prop::collection::vec(source_event(), 0..8),
        endings in prop::sample::subsequence(vec!["\n", "\r\n", "\r"], 1..=3),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let bytes = render(&events, &endings);
        let whole = frame(&bytes, &[]);
        prop_assert_eq!(&whole, &expected(&events));
        prop_assert_eq!(frame(&bytes, &cuts), whole);
    }

    #[test]
    fn sse_byte_by_byte_keeps_multi_byte_characters(text in "\\PC{1,24}") {
        let bytes = format!("data: {text}\n\n").into_bytes();
        let cuts: Vec<usize> = (0..bytes.len()).collect();
        prop_assert_eq!(frame(&bytes, &cuts), vec![SseEvent::new("", text)]);
    }

    #[test]
    fn sse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let _ = frame(&bytes, &cuts);
    }
}

// ---------------------------------------------------------------- AWS event stream framing

/// Pushes `bytes` in pieces cut at `cuts`, collecting frames; the first error ends it.
fn event_frames(bytes: &[u8], cuts: &[usize]) -> Result<Vec<EventFrame>, Error> {
    let mut framer = EventStreamFramer::new(switchyard::ProviderKind::Bedrock);
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut start = 0;
    for end in points.into_iter().chain([bytes.len()]) {
        framer.push(&bytes[start..end]);
        start = end;
        while let Some(frame) = framer.next_frame()? {
            out.push(frame);
        }
    }
    out.extend(framer.finish()?);
    Ok(out)
}

proptest! {
    #[test]
    fn event_stream_frames_do_not_depend_on_how_bytes_are_split(
        events in prop::collection::vec(("[a-zA-Z]{1,20}", "\\PC{0,40}", any::<bool>()), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (name, payload, exception) in &events {
            if *exception {
                bytes.extend(exception_frame(name, payload.as_bytes()));
                expected.push(EventFrame { kind: FrameKind::Exception(name.clone()), payload: Bytes::from(payload.clone()) });
            } else {
                bytes.extend(event_frame(name, payload.as_bytes()));
                expected.push(EventFrame { kind: FrameKind::Event(name.clone()), payload: Bytes::from(payload.clone()) });
            }
        }
        prop_assert_eq!(event_frames(&bytes, &[]).ok(), Some(expected.clone()));
        prop_assert_eq!(event_frames(&bytes, &cuts).ok(), Some(expected));
    }

    #[test]
    fn event_stream_never_panics_and_never_invents_frames(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        // Random bytes almost never carry two valid CRCs: whatever happens, no panic.
        let _ = event_frames(&bytes, &cuts);
    }

    #[test]
    fn a_corrupted_byte_is_always_caught(payload in "\\PC{1,40}", at in any::<usize>(), flip in 1u8..=255) {
        let mut bytes = event_frame("contentBlockDelta", payload.as_bytes());
        let i = at % bytes.len();
        bytes[i] ^= flip;
        // Either a checksum or a length check fails; a changed frame is never accepted.
        prop_assert!(event_frames(&bytes, &[]).is_err());
    }
}

// ---------------------------------------------------------------- generated JSON values

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,16}"
}

/// A finite float that JSON carries exactly.
fn float() -> impl Strategy<Value = Value> {
    (-2000i32..2000).prop_map(|n| json!(f64::from(n) / 1000.0))
}

fn opt(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.into(), v);
    }
}

fn content() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        prop::collection::vec(
            prop_oneof![
                text().prop_map(|t| json!({"type": "text", "text": t})),
                (text(), prop::option::of(prop::sample::select(vec!["auto", "low", "high", "ultra"]))).prop_map(
                    |(u, d)| {
                        let mut img = json!({"url": format!("https://example.com/{u}")});
                        if let Some(d) = d {
                            img["detail"] = json!(d);
                        }
                        json!({"type": "image_url", "image_url": img})
                    }
                ),
                text().prop_map(|t| json!({"type": "input_video", "video": t})),
            ],
            1..3
        )
        .prop_map(Value::Array),
    ]
}

fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        (prop::sample::select(vec!["system", "developer", "user"]), content(), prop::option::of(text())).prop_map(|(role, c, name)| {
            let mut m = json!({"role": role, "content": c});
            if let Some(n) = name { m["name"] = json!(n); }
            m
        }),
        (prop::option::of(text()), prop::collection::vec((text(), text()), 0..3)).prop_map(|(c, calls)| {
            let mut m = json!({"role": "assistant", "content": c});
            if !calls.is_empty() {
                m["tool_calls"] = Value::Array(calls.into_iter().enumerate().map(|(i, (name, args))| {
                    json!({"id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": args}})
                }).collect());
            }
            m
        }),
        (text(), content()).prop_map(|(id, c)| json!({"role": "tool", "tool_call_id": id, "content": c})),
    ]
}

fn tool() -> impl Strategy<Value = Value> {
    (text(), prop::option::of(text()), any::<bool>()).prop_map(|(name, description, strict)| {
        let mut f = json!({"name": name, "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}});
        if let Some(d) = description {
            f["description"] = json!(d);
        }
        if strict {
            f["strict"] = json!(true);
        }
        json!({"type": "function", "function": f})
    })
}

fn chat_request_value() -> impl Strategy<Value = Value> {
    (
        (text(), prop::collection::vec(message(), 1..5), prop::option::of(float()), prop::option::of(float()), prop::option::of(0i64..100_000)),
        (
            prop::option::of(prop_oneof![text().prop_map(Value::String), prop::collection::vec(text(), 0..3).prop_map(|v| json!(v))]),
            prop::option::of(prop::collection::vec(tool(), 0..3)),
            prop::option::of(prop_oneof![
                prop::sample::select(vec!["auto", "none", "required"]).prop_map(|m| json!(m)),
                text().prop_map(|n| json!({"type": "function", "function": {"name": n}})),
            ]),
            prop::option::of(prop_oneof![
                Just(json!({"type": "text"})),
                Just(json!({"type": "json_object"})),
                text().prop_map(|n| json!({"type": "json_schema", "json_schema": {"name": n, "schema": {"type": "object"}, "strict": true}})),
            ]),
        ),
        (
            prop::option::of(any::<i64>()),
            prop::option::of(any::<bool>()),
            prop::option::of(prop::collection::btree_map("[0-9]{1,5}", -100i64..100, 0..3)),
            prop::option::of(prop::collection::btree_map("[a-z]{1,6}", text(), 0..3)),
            prop::option::of(prop::sample::select(vec!["low", "medium", "high", "minimal", "turbo"])),
            prop::option::of((text(), prop_oneof![any::<i64>().prop_map(|n| json!(n)), text().prop_map(Value::String), Just(json!({"nested": [1, 2]}))])),
        ),
    )
        .prop_map(|((model, messages, temperature, top_p, max_tokens), (stop, tools, tool_choice, format), (seed, stream, bias, metadata, effort, extra))| {
            let mut m = Map::new();
            m.insert("model".into(), json!(model));
            m.insert("messages".into(), Value::Array(messages));
            opt(&mut m, "temperature", temperature);
            opt(&mut m, "top_p", top_p);
            opt(&mut m, "max_tokens", max_tokens.map(|n| json!(n)));
            opt(&mut m, "stop", stop);
            opt(&mut m, "tools", tools.map(Value::Array));
            opt(&mut m, "tool_choice", tool_choice);
            opt(&mut m, "response_format", format);
            opt(&mut m, "seed", seed.map(|n| json!(n)));
            opt(&mut m, "stream", stream.map(|b| json!(b)));
            opt(&mut m, "logit_bias", bias.map(|b| json!(b)));
            opt(&mut m, "metadata", metadata.map(|b| json!(b)));
            opt(&mut m, "reasoning_effort", effort.map(|e| json!(e)));
            if let Some((key, value)) = extra {
                // An unknown top-level field, kept and forwarded.
                m.entry(format!("x_{key}")).or_insert(value);
            }
            Value::Object(m)
        })
}

fn usage() -> impl Strategy<Value = Value> {
    (0i64..1_000_000, 0i64..1_000_000, prop::option::of(0i64..1000), prop::option::of(0i64..1000)).prop_map(
        |(p, c, cached, reasoning)| {
            let mut u = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
            if let Some(x) = cached {
                u["prompt_tokens_details"] = json!({"cached_tokens": x});
            }
            if let Some(x) = reasoning {
                u["completion_tokens_details"] = json!({"reasoning_tokens": x});
            }
            u
        },
    )
}

fn finish_reason() -> impl Strategy<Value = Value> {
    prop::sample::select(vec!["stop", "length", "tool_calls", "content_filter", "end_turn"]).prop_map(|f| json!(f))
}

fn chat_response_value() -> impl Strategy<Value = Value> {
    (
        text(),
        any::<u32>(),
        prop::collection::vec((prop::option::of(text()), prop::option::of(text()), prop::collection::vec((text(), text()), 0..3), prop::option::of(finish_reason())), 0..3),
        prop::option::of(usage()),
        prop::option::of(prop::option::of(text())),
    )
        .prop_map(|(id, created, choices, usage, fingerprint)| {
            let choices: Vec<Value> = choices
                .into_iter()
                .enumerate()
                .map(|(index, (content, refusal, calls, finish))| {
                    let mut message = json!({"role": "assistant", "content": content, "refusal": refusal});
                    if !calls.is_empty() {
                        message["tool_calls"] = Value::Array(calls.into_iter().map(|(n, a)| json!({"id": format!("c{n}"), "type": "function", "function": {"name": n, "arguments": a}})).collect());
                    }
                    json!({"index": index, "message": message, "logprobs": null, "finish_reason": finish})
                })
                .collect();
            let mut r = json!({"id": id, "object": "chat.completion", "created": created, "model": "m", "choices": choices});
            if let Some(u) = usage { r["usage"] = u; }
            if let Some(fp) = fingerprint { r["system_fingerprint"] = json!(fp); }
            r
        })
}

fn chunk_value() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::option::of(text())),
        prop::option::of(prop::sample::select(vec!["assistant", "tool", "critic"])),
        prop::option::of((0i64..4, prop::option::of(text()), prop::option::of(text()))),
        prop::option::of(finish_reason()),
        prop::option::of(prop::option::of(usage())),
    )
        .prop_map(|(content, role, call, finish, usage)| {
            let mut delta = Map::new();
            if let Some(c) = content {
                delta.insert("content".into(), json!(c));
            }
            if let Some(r) = role {
                delta.insert("role".into(), json!(r));
            }
            if let Some((index, name, args)) = call {
                let mut f = Map::new();
                opt(&mut f, "name", name.map(Value::String));
                opt(&mut f, "arguments", args.map(Value::String));
                delta.insert("tool_calls".into(), json!([{"index": index, "function": f}]));
            }
            let mut c = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
            if let Some(u) = usage {
                c["usage"] = json!(u);
            }
            c
        })
}

fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug>(
    value: &Value,
) -> Result<T, TestCaseError> {
    let typed: T =
        serde_json::from_value(value.clone()).map_err(|e| TestCaseError::fail(format!("decode: {e}\n{value}")))?;
    let encoded = serde_json::to_value(&typed).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let diff = json_diff(value, &encoded);
    prop_assert!(diff.is_empty(), "changed on a round trip: {diff:?}");
    let again: T = serde_json::from_value(encoded).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&again, &typed);
    Ok(typed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chat_requests_round_trip(value in chat_request_value()) {
        round_trips::<ChatRequest>(&value)?;
    }

    #[test]
    fn chat_responses_round_trip(value in chat_response_value()) {
        round_trips::<ChatResponse>(&value)?;
    }

    #[test]
    fn chat_chunks_round_trip(value in chunk_value()) {
        round_trips::<ChatChunk>(&value)?;
    }
}

// ---------------------------------------------------------------- adapters

type Encode = Box<dyn Fn(&ChatRequest, &Ctx<'_>) -> switchyard::Result<http::Request<Bytes>>>;

fn openai_format_adapters() -> Vec<(&'static str, Encode)> {
    let key = Some("k".to_string().into());
    let openai = OpenAi::new(None, key.as_ref(), None, None, HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let azure =
        Azure::new("https://r.openai.azure.com", None, &AzureAuth::ApiKey("k".to_string().into()), HeaderMap::new())
            .unwrap_or_else(|e| panic!("{e}"));
    let vendor = |id: &str| VENDORS.iter().find(|v| v.id == id).unwrap_or_else(|| panic!("no vendor row `{id}`"));
    let together = OpenAiCompat::new(vendor("together_ai"), None, key.as_ref(), HeaderMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let openrouter =
        OpenAiCompat::new(vendor("openrouter"), None, key.as_ref(), HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
    vec![
        ("openai", Box::new(move |r, c| openai.encode_chat(r, c))),
        ("azure", Box::new(move |r, c| azure.encode_chat(r, c))),
        ("together_ai", Box::new(move |r, c| together.encode_chat(r, c))),
        ("openrouter", Box::new(move |r, c| openrouter.encode_chat(r, c))),
        ("mock", Box::new(move |r, c| Mock.encode_chat(r, c))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// What an OpenAI-format adapter sends decodes to the request it was given: the model
    /// becomes the provider's id, and the stream flag follows the call, nothing else changes.
    #[test]
    fn openai_format_encode_then_decode_is_the_identity(value in chat_request_value(), stream in any::<bool>()) {
        let request: ChatRequest = serde_json::from_value(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut expected = request.clone();
        expected.model = "upstream-model".into();
        if stream {
            expected.stream = Some(true);
        } else {
            expected.stream = None;
            expected.stream_options = None;
        }
        let ctx = Ctx { stream, ..Ctx::new("upstream-model") };
        for (name, encode) in openai_format_adapters() {
            let sent = encode(&request, &ctx).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
            let decoded: ChatRequest = serde_json::from_slice(sent.body()).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
            prop_assert_eq!(&decoded, &expected, "{}", name);
        }
    }

    /// What an OpenAI-format upstream answers decodes to exactly that answer.
    #[test]
    fn openai_format_decode_is_the_identity(value in chat_response_value()) {
        let expected: ChatResponse = serde_json::from_value(value.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ctx = Ctx::new("m");
        let body = Bytes::from(value.to_string());
        let decoded = Mock.decode_chat(http::Response::new(body), &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded, expected);
    }

    /// Encoding never panics: it gives a request, or `Unsupported` for a parameter the vendor
    /// cannot take (and with `drop_params` always a request).
    #[test]
    fn encoding_never_panics(value in chat_request_value(), bias in prop::option::of(-100i64..100), drop in any::<bool>()) {
        let mut request: ChatRequest = serde_json::from_value(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Some(b) = bias {
            request.logit_bias = Some([("42".to_string(), b)].into());
        }
        let ctx = Ctx { drop_params: drop, ..Ctx::new("m") };
        for vendor in VENDORS {
            let adapter = OpenAiCompat::new(vendor, Some("http://127.0.0.1:1/v1"), Some(&"k".to_string().into()), HeaderMap::new())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            match adapter.encode_chat(&request, &ctx) {
                Ok(_) => {}
                Err(Error::Unsupported { .. }) if !drop => {}
                Err(e) => return Err(TestCaseError::fail(format!("{}: {e}", vendor.id))),
            }
        }
    }

    /// However a tool call's arguments are cut into fragments, they reassemble exactly.
    #[test]
    fn tool_call_fragments_reassemble(args in "\\PC{0,64}", cuts in prop::collection::vec(any::<usize>(), 0..8), with_index in any::<bool>()) {
        let chars: Vec<char> = args.chars().collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (chars.len() + 1)).collect();
        points.sort_unstable();
        points.push(chars.len());
        let mut acc = ChunkAccumulator::new();
        let mut start = 0;
        for (i, end) in points.into_iter().enumerate() {
            let piece: String = chars[start..end].iter().collect();
            start = end;
            let mut call = json!({"function": {"arguments": piece}});
            if with_index { call["index"] = json!(0); }
            if i == 0 {
                call["id"] = json!("call_1");
                call["type"] = json!("function");
                call["function"]["name"] = json!("f");
            }
            let chunk: ChatChunk = serde_json::from_value(json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]}))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            acc.push(&chunk);
        }
        let whole = acc.finish();
        prop_assert_eq!(whole.tool_calls().len(), 1);
        let function = whole.tool_calls()[0].function.clone().unwrap_or_else(|| panic!("no function"));
        prop_assert_eq!(function.arguments, args);
        prop_assert_eq!(function.name, "f");
    }
}

// ---------------------------------------------------------------- hostile upstreams

proptest! {
    /// Whatever an upstream sends, decoding gives a value or a typed error, never a panic.
    #[test]
    fn decoders_never_panic_on_arbitrary_upstream_bytes(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            chat_response_value().prop_map(|v| {
                let mut text = v.to_string().into_bytes();
                let cut = text.len() / 2;
                text.truncate(cut);
                text
            }),
            "\\PC{0,64}".prop_map(String::into_bytes),
        ],
        status in 100u16..600,
    ) {
        let body = Bytes::from(body);
        let ctx = Ctx::new("m");
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let _ = Mock.decode_chat(http::Response::new(body.clone()), &ctx);
        let err = Mock.decode_error(status, &HeaderMap::new(), &body);
        prop_assert_eq!(err.status, status.as_u16());
        let mut decoder = Mock.stream_decoder(&ctx);
        let mut framer = decoder.framer();
        let mut out = std::collections::VecDeque::new();
        framer.push(&body);
        while let Ok(Some(frame)) = framer.next_frame() {
            if decoder.on_frame(frame, &mut out).is_err() {
                break;
            }
        }
        let _ = decoder.on_eof(&mut out);
    }
}

// ---------------------------------------------------------------- Anthropic

proptest! {
    /// Any OpenAI request encodes for Anthropic, or fails with a typed error (a parameter
    /// Anthropic cannot express, arguments that are not JSON, a model with no known limit):
    /// never a panic. With `drop_params` no parameter fails; only content and bad input can.
    #[test]
    fn anthropic_encoding_never_panics(value in chat_request_value(), drop in any::<bool>(), known_model in any::<bool>()) {
        let request: ChatRequest = serde_json::from_value(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let model = if known_model { "claude-sonnet-4-5" } else { "claude-unknown" };
        let ctx = Ctx { drop_params: drop, ..Ctx::for_chat(model, &request, false, drop) };
        let adapter = switchyard::provider::anthropic::Anthropic::new(None, &"k".to_string().into(), HeaderMap::new())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        match adapter.encode_chat(&request, &ctx) {
            Ok(sent) => {
                let body: Value = serde_json::from_slice(sent.body()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(body["max_tokens"].as_i64().is_some_and(|n| n > 0));
                prop_assert_eq!(&body["model"], &json!(model));
            }
            // drop_params drops parameters; content Anthropic cannot take stays an error.
            Err(Error::Unsupported { feature, .. }) => prop_assert!(
                !drop || feature.contains("content parts") || feature.contains("audio") || feature.contains("tools"),
                "drop_params must drop the parameter `{feature}`, not fail"
            ),
            Err(Error::InvalidRequest { .. }) => {}
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error: {e}"))),
        }
    }

    /// Hostile bytes from an Anthropic upstream give a value or a typed error.
    #[test]
    fn anthropic_decoders_never_panic(body in prop::collection::vec(any::<u8>(), 0..400), event in prop::sample::select(vec![
        "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "error", "ping", "",
    ])) {
        let adapter = switchyard::provider::anthropic::Anthropic::new(None, &"k".to_string().into(), HeaderMap::new())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ctx = Ctx::new("claude-sonnet-4-5");
        let body = Bytes::from(body);
        let _ = adapter.decode_chat(http::Response::new(body.clone()), &ctx);
        let _ = adapter.decode_error(http::StatusCode::BAD_REQUEST, &HeaderMap::new(), &body);
        let mut decoder = adapter.stream_decoder(&ctx);
        let mut out = std::collections::VecDeque::new();
        let _ = decoder.on_frame(SseEvent::new(event, body), &mut out);
        let _ = decoder.on_eof(&mut out);
    }
}

// ---------------------------------------------------------------- Gemini

fn gemini() -> switchyard::provider::gemini::Gemini {
    switchyard::provider::gemini::Gemini::new(None, &"k".to_string().into(), HeaderMap::new())
        .unwrap_or_else(|e| panic!("{e}"))
}

proptest! {
    /// Any OpenAI request encodes for Gemini or fails with a typed error, never a panic; with
    /// `drop_params` no parameter fails. What is sent always has camelCase fields and no
    /// JSON Schema keyword Gemini rejects.
    #[test]
    fn gemini_encoding_never_panics(value in chat_request_value(), drop in any::<bool>()) {
        let request: ChatRequest = serde_json::from_value(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ctx = Ctx::for_chat("gemini-2.5-flash", &request, false, drop);
        match gemini().encode_chat(&request, &ctx) {
            Ok(sent) => {
                let text = String::from_utf8_lossy(sent.body()).into_owned();
                prop_assert!(!text.contains("\"additionalProperties\"") && !text.contains("\"$schema\""), "{}", text);
                prop_assert!(!text.contains("\"generation_config\"") && !text.contains("\"max_output_tokens\""), "{}", text);
            }
            Err(Error::Unsupported { feature, .. }) => prop_assert!(
                !drop || feature.contains("content parts") || feature.contains("tools"),
                "drop_params must drop the parameter `{feature}`, not fail"
            ),
            Err(Error::InvalidRequest { .. }) => {}
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error: {e}"))),
        }
    }

    /// Hostile bytes from a Gemini upstream give a value or a typed error.
    #[test]
    fn gemini_decoders_never_panic(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        Just(br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f"}}]},"finishReason":"STOP"}]}"#.to_vec()),
        Just(br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#.to_vec()),
        Just(br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"-5s"}]}}"#.to_vec()),
    ]) {
        let adapter = gemini();
        let ctx = Ctx::new("gemini-2.5-flash");
        let body = Bytes::from(body);
        let _ = adapter.decode_chat(http::Response::new(body.clone()), &ctx);
        let _ = adapter.decode_error(http::StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), &body);
        let _ = adapter.decode_embed(http::Response::new(body.clone()), &ctx);
        let mut decoder = adapter.stream_decoder(&ctx);
        let mut out = std::collections::VecDeque::new();
        let _ = decoder.on_frame(SseEvent::new("", body), &mut out);
        let _ = decoder.on_eof(&mut out);
    }
}

// ---------------------------------------------------------------- every native provider

/// Settings that configure any native provider, with nothing real in them.
fn dummy_settings() -> switchyard::ProviderSettings {
    let mut settings = switchyard::ProviderSettings::with_api_key("k").base_url("http://127.0.0.1:9");
    settings.api_version = Some("2024-10-21".into());
    settings.project = Some("p".into());
    settings.location = Some("us-east-1".into());
    settings.auth_token = Some("t".to_string().into());
    settings.aws_access_key_id = Some("AKIDEXAMPLE".into());
    settings.aws_secret_access_key = Some("secret".to_string().into());
    settings
}

/// Every native provider of the descriptor table, configured (the mock included).
fn every_native() -> Vec<switchyard::Provider> {
    switchyard::catalog::NATIVE
        .iter()
        .map(|d| {
            switchyard::Provider::configure(d.kind, &dummy_settings()).unwrap_or_else(|e| panic!("{}: {e}", d.kind))
        })
        .collect()
}

proptest! {
    /// Hostile bytes as any native provider's answer, error or stream, in any pieces, give a
    /// value or a typed error, never a panic. The providers come from the descriptor table,
    /// so a new one is covered without a line here.
    #[test]
    fn every_native_providers_decoders_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..400),
        status in prop::sample::select(vec![200u16, 400, 401, 404, 429, 500, 529]),
        cut in 0usize..400,
    ) {
        for provider in every_native() {
            let ctx = Ctx::new("m");
            let mut response = http::Response::new(Bytes::from(body.clone()));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
            let _ = provider.decode_answer(response, &ctx);
            let (a, b) = body.split_at(cut.min(body.len()));
            let _ = provider.decode_stream(&HeaderMap::new(), &[a, b], &ctx);
        }
    }
}
