//! Per-call encode and decode, and per-chunk stream decode, for each adapter; and, from
//! the recorded cases, every native provider in the catalog (`cases/<id>/...`).

use std::collections::VecDeque;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use serde_json::json;
use switchyard::provider::mistral::Mistral;
use switchyard::provider::openai::OpenAi;
use switchyard::provider::{Adapter, Ctx, StreamDecode};
use switchyard::spec::openai::{ChatCompletionTool, ChatCompletionToolChoiceOption};
use switchyard::transport::sse::SseEvent;
use switchyard::{ChatMessage, ChatRequest};

fn request() -> ChatRequest {
    let mut req = ChatRequest::new(
        "openai/gpt-4o-mini",
        vec![
            ChatMessage::system("You are a helpful assistant. Answer briefly and cite sources where you can."),
            ChatMessage::user(
                "What's the weather in Paris right now, and what should I wear for a walk along the Seine?",
            ),
            ChatMessage::assistant("Let me check the weather for you."),
            ChatMessage::user("Thanks. Also compare it with Tokyo."),
        ],
    );
    req.temperature = Some(0.7);
    req.max_tokens = Some(512);
    req.tools = Some(vec![ChatCompletionTool::function(
        "get_weather",
        "Get the current weather for a city.",
        json!({"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}),
    )]);
    req.tool_choice = Some(ChatCompletionToolChoiceOption::auto());
    req
}

fn response_body() -> Bytes {
    Bytes::from(json!({
        "id": "chatcmpl-CQ6yW1bLh2mVdXkq0rT8sKf3nJp2a", "object": "chat.completion", "created": 1763812345,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "It is 18 °C and cloudy in Paris: a light jacket and comfortable shoes will do. Tokyo is warmer at 22 °C with sun, so layers you can take off are best there. Enjoy the walk along the river.", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 112, "completion_tokens": 52, "total_tokens": 164, "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": "fp_560af6e559"
    }).to_string())
}

fn chunk_event() -> SseEvent {
    SseEvent::new(
        "",
        "{\"id\":\"chatcmpl-CQ6zC3bIf7gKqC7rO2lT6eAz0hWs4\",\"object\":\"chat.completion.chunk\",\"created\":1763812346,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" nice\"},\"logprobs\":null,\"finish_reason\":null}],\"obfuscation\":\"Zk3\"}",
    )
}

fn bench(c: &mut Criterion) {
    let key = Some("sk-bench".to_string().into());
    let adapter = OpenAi::new(None, key.as_ref(), None, None, HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let req = request();
    let ctx = Ctx::new("gpt-4o-mini");
    c.bench_function("openai/encode_chat_request", |b| b.iter(|| adapter.encode_chat(black_box(&req), &ctx)));

    // A provider with quirks (renames, respellings) goes through a JSON value.
    let quirky = Mistral::new(None, key.as_ref(), HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("mistral/encode_chat_request", |b| b.iter(|| quirky.encode_chat(black_box(&req), &ctx)));

    let body = response_body();
    c.bench_function("openai/decode_chat_response", |b| {
        b.iter(|| adapter.decode_chat(http::Response::new(black_box(body.clone())), &ctx))
    });

    let event = chunk_event();
    let mut decoder = adapter.stream_decoder(&ctx);
    let mut out = VecDeque::new();
    c.bench_function("openai/decode_stream_chunk", |b| {
        b.iter(|| {
            let flow = decoder.on_frame(black_box(event.clone()), &mut out);
            out.clear();
            flow
        })
    });
}

fn bench_anthropic(c: &mut Criterion) {
    use switchyard::provider::anthropic::Anthropic;
    let adapter =
        Anthropic::new(None, &"sk-bench".to_string().into(), HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let req = request();
    let ctx = Ctx::for_chat("claude-sonnet-4-5-20250929", &req, false, false);
    c.bench_function("anthropic/encode_chat_request", |b| b.iter(|| adapter.encode_chat(black_box(&req), &ctx)));

    let body = Bytes::from(json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "It is 18 °C and cloudy in Paris: a light jacket and comfortable shoes will do. Tokyo is warmer at 22 °C with sun, so layers you can take off are best there. Enjoy the walk along the river."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 112, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 52, "service_tier": "standard"}
    }).to_string());
    c.bench_function("anthropic/decode_chat_response", |b| {
        b.iter(|| adapter.decode_chat(http::Response::new(black_box(body.clone())), &ctx))
    });

    let event = SseEvent::new(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" nice"}}"#,
    );
    let mut decoder = adapter.stream_decoder(&ctx);
    let mut out = VecDeque::new();
    let start = SseEvent::new(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    );
    let _ = decoder.on_frame(start, &mut out);
    c.bench_function("anthropic/decode_stream_chunk", |b| {
        b.iter(|| {
            let flow = decoder.on_frame(black_box(event.clone()), &mut out);
            out.clear();
            flow
        })
    });
}

fn bench_gemini(c: &mut Criterion) {
    use switchyard::provider::gemini::Gemini;
    let adapter = Gemini::new(None, &"key".to_string().into(), HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let req = request();
    let ctx = Ctx::for_chat("gemini-2.5-flash", &req, false, false);
    c.bench_function("gemini/encode_chat_request", |b| b.iter(|| adapter.encode_chat(black_box(&req), &ctx)));

    let body = Bytes::from(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "It is 18 °C and cloudy in Paris: a light jacket and comfortable shoes will do. Tokyo is warmer at 22 °C with sun, so layers you can take off are best there. Enjoy the walk along the river."}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 112, "candidatesTokenCount": 52, "totalTokenCount": 164},
        "modelVersion": "gemini-2.5-flash", "responseId": "mH2Gab3rN8zXxN8PkqGC4Qs"
    }).to_string());
    c.bench_function("gemini/decode_chat_response", |b| {
        b.iter(|| adapter.decode_chat(http::Response::new(black_box(body.clone())), &ctx))
    });

    let event = SseEvent::new(
        "",
        r#"{"candidates":[{"content":{"parts":[{"text":" nice"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash","responseId":"Str34mT3xt"}"#,
    );
    let mut decoder = adapter.stream_decoder(&ctx);
    let mut out = VecDeque::new();
    c.bench_function("gemini/decode_stream_chunk", |b| {
        b.iter(|| {
            let flow = decoder.on_frame(black_box(event.clone()), &mut out);
            out.clear();
            flow
        })
    });
}

fn bench_bedrock(c: &mut Criterion) {
    use switchyard::provider::bedrock::{Bedrock, BedrockAuth};
    use switchyard::transport::eventstream::{EventFrame, FrameKind};
    let auth = BedrockAuth::SigV4 {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string().into(),
        session_token: None,
    };
    let adapter = Bedrock::new("us-east-1", None, auth, HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let req = request();
    let ctx = Ctx::for_chat("us.anthropic.claude-sonnet-4-20250514-v1:0", &req, false, false);
    // Encoding includes the SigV4 signature over the body.
    c.bench_function("bedrock/encode_chat_request", |b| b.iter(|| adapter.encode_chat(black_box(&req), &ctx)));

    let body = Bytes::from(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "It is 18 °C and cloudy in Paris: a light jacket and comfortable shoes will do. Tokyo is warmer at 22 °C with sun, so layers you can take off are best there. Enjoy the walk along the river."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 112, "outputTokens": 52, "totalTokens": 164},
        "metrics": {"latencyMs": 812}
    }).to_string());
    c.bench_function("bedrock/decode_chat_response", |b| {
        b.iter(|| {
            let mut response = http::Response::new(black_box(body.clone()));
            response
                .headers_mut()
                .insert("x-amzn-requestid", http::HeaderValue::from_static("5c1e3a4e-8a1d-4a3b-9f51-3e0e5b8f2b11"));
            adapter.decode_chat(response, &ctx)
        })
    });

    let frame = EventFrame {
        kind: FrameKind::Event("contentBlockDelta".into()),
        payload: Bytes::from_static(br#"{"contentBlockIndex":0,"delta":{"text":" nice"},"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"}"#),
    };
    let mut decoder = adapter.stream_decoder(&ctx);
    let mut out = VecDeque::new();
    let start = EventFrame {
        kind: FrameKind::Event("messageStart".into()),
        payload: Bytes::from_static(br#"{"role":"assistant","p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"}"#),
    };
    let _ = decoder.on_frame(start, &mut out);
    c.bench_function("bedrock/decode_stream_chunk", |b| {
        b.iter(|| {
            let flow = decoder.on_frame(black_box(frame.clone()), &mut out);
            out.clear();
            flow
        })
    });
}

fn bench_cohere(c: &mut Criterion) {
    use switchyard::provider::cohere::Cohere;
    let adapter = Cohere::new(None, &"co-bench".to_string().into(), HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let req = request();
    let ctx = Ctx::for_chat("command-a-03-2025", &req, false, false);
    c.bench_function("cohere/encode_chat_request", |b| b.iter(|| adapter.encode_chat(black_box(&req), &ctx)));

    let body = Bytes::from(json!({
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "It is 18 °C and cloudy in Paris: a light jacket and comfortable shoes will do. Tokyo is warmer at 22 °C with sun, so layers you can take off are best there. Enjoy the walk along the river."}]},
        "finish_reason": "COMPLETE",
        "usage": {"billed_units": {"input_tokens": 112, "output_tokens": 52}, "tokens": {"input_tokens": 580, "output_tokens": 52}}
    }).to_string());
    c.bench_function("cohere/decode_chat_response", |b| {
        b.iter(|| adapter.decode_chat(http::Response::new(black_box(body.clone())), &ctx))
    });

    let event = SseEvent::new(
        "content-delta",
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":" nice"}}}}"#,
    );
    let mut decoder = adapter.stream_decoder(&ctx);
    let mut out = VecDeque::new();
    let start = SseEvent::new(
        "message-start",
        r#"{"id":"29f14a5a-11de-4cae-9800-25e4747408ea","type":"message-start","delta":{"message":{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}"#,
    );
    let _ = decoder.on_frame(start, &mut out);
    c.bench_function("cohere/decode_stream_chunk", |b| {
        b.iter(|| {
            let flow = decoder.on_frame(black_box(event.clone()), &mut out);
            out.clear();
            flow
        })
    });
}

/// Every native provider in the catalog, from its own recorded cases (`plain_text` and
/// `stream_text`): a provider added to the descriptors is benchmarked here with no edit, and
/// one without those cases stops this bench with its name.
fn bench_every_native(c: &mut Criterion) {
    use switchyard::conformance::case::Case;
    use switchyard::conformance::replay::provider_settings;
    use switchyard::{ModelRef, Provider};

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    for descriptor in switchyard::catalog::NATIVE.iter().filter(|d| d.kind != switchyard::ProviderKind::Mock) {
        let id = descriptor.kind.id();
        let load = |name: &str| {
            Case::load(&root, &root.join(id).join(name)).unwrap_or_else(|e| panic!("{id} needs a `{name}` case: {e}"))
        };
        let (plain, stream) = (load("plain_text"), load("stream_text"));
        let settings = provider_settings(&plain, descriptor.kind, "http://127.0.0.1:9");
        let provider = Provider::configure(descriptor.kind, &settings).unwrap_or_else(|e| panic!("{id}: {e}"));
        let input = |case: &Case| -> ChatRequest {
            serde_json::from_value(case.input.clone().unwrap_or_default()).unwrap_or_else(|e| panic!("{id}: {e}"))
        };
        let (req, stream_req) = (input(&plain), input(&stream));
        let model = ModelRef::parse(&req.model).unwrap_or_else(|e| panic!("{id}: {e}")).model.to_string();
        let ctx = Ctx::for_chat(&model, &req, false, false);
        let stream_ctx = Ctx::for_chat(&model, &stream_req, true, false);
        let answer = plain.response.as_ref().map(|r| Bytes::from(r.body.clone())).unwrap_or_default();
        let events = stream.response.as_ref().map(|r| r.body.clone()).unwrap_or_default();

        // What is measured must be the success path, not an early error.
        provider.encode_chat(&req, &ctx).unwrap_or_else(|e| panic!("{id}: encode: {e}"));
        provider.decode_answer(http::Response::new(answer.clone()), &ctx).unwrap_or_else(|e| panic!("{id}: {e}"));
        let (chunks, failed) = provider.decode_stream(&HeaderMap::new(), &[&events], &stream_ctx);
        assert!(failed.is_none() && !chunks.is_empty(), "{id}: the stream decodes to {chunks:?}, {failed:?}");

        let mut group = c.benchmark_group(format!("cases/{id}"));
        group.bench_function("encode_chat_request", |b| b.iter(|| provider.encode_chat(black_box(&req), &ctx)));
        group.bench_function("decode_chat_response", |b| {
            b.iter(|| provider.decode_answer(http::Response::new(black_box(answer.clone())), &ctx))
        });
        group.bench_function("decode_stream", |b| {
            b.iter(|| provider.decode_stream(&HeaderMap::new(), &[black_box(&events)], &stream_ctx))
        });
        group.finish();
    }
}

criterion_group!(benches, bench, bench_anthropic, bench_gemini, bench_bedrock, bench_cohere, bench_every_native);
criterion_main!(benches);
