//! Golden samples: realistic bodies of every wire format (OpenAI's shapes and each native
//! provider's, the latter taken from the recorded cases) must decode into the generated
//! types and re-encode exactly, never gaining a field they did not have. This catches what
//! compiles but mis-decodes (a renamed field, a value folded into a default, a dropped `null`).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard::conformance::compare::json_diff;
use switchyard::spec::openai::{ErrorResponse, FinishReason, ReasoningEffort, ToolChoiceMode};
use switchyard::{
    ChatChunk, ChatMessage, ChatRequest, ChatResponse, ContentPart, EmbeddingRequest, EmbeddingResponse, ModelList,
};

fn samples(kind: &str) -> Vec<PathBuf> {
    let (provider, kind) = kind.split_once('/').unwrap_or(("openai", kind));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(provider).join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no samples in {}", dir.display());
    files
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes every sample of `kind` as `T`, re-encodes it, and requires the exact JSON back;
/// decoding the re-encoded JSON must give the same value.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(kind: &str) -> Vec<(String, T)> {
    samples(kind)
        .into_iter()
        .map(|path| {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let original = read(&path);
            let typed: T = serde_json::from_value(original.clone())
                .unwrap_or_else(|e| panic!("{kind}/{name} does not decode: {e}"));
            let encoded = serde_json::to_value(&typed).unwrap_or_else(|e| panic!("{kind}/{name} does not encode: {e}"));
            let diff = json_diff(&original, &encoded);
            assert!(diff.is_empty(), "{kind}/{name} changed on a round trip:\n  {}", diff.join("\n  "));
            let again: T = serde_json::from_value(encoded).unwrap_or_else(|e| panic!("{kind}/{name} re-decode: {e}"));
            assert_eq!(again, typed, "{kind}/{name}: decode(encode(x)) != x");
            (name, typed)
        })
        .collect()
}

fn find<'a, T>(samples: &'a [(String, T)], name: &str) -> &'a T {
    &samples.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no sample {name}")).1
}

#[test]
fn chat_requests_round_trip_exactly() {
    let requests = round_trip::<ChatRequest>("chat_request");
    let full = find(&requests, "every_field");
    assert_eq!(full.messages.len(), 7);
    assert!(
        matches!(&full.messages[2], ChatMessage::User(u) if matches!(&u.content, switchyard::MessageContent::Parts(p) if p.len() == 5))
    );
    assert_eq!(full.seed, Some(1_234_567_890_123));
    assert_eq!(full.reasoning_effort, Some(ReasoningEffort::Low));
}

#[test]
fn unknown_fields_and_values_are_kept_not_dropped() {
    let requests = round_trip::<ChatRequest>("chat_request");
    let req = find(&requests, "unknown_fields");
    assert_eq!(req.extra.get("top_k"), Some(&Value::from(40)));
    assert_eq!(req.reasoning_effort, Some(ReasoningEffort::Other("ultra".into())));
    assert!(
        matches!(&req.tool_choice, Some(switchyard::spec::openai::ChatCompletionToolChoiceOption::ToolChoiceMode(ToolChoiceMode::Other(m))) if m == "validated")
    );
    // An unknown content part type is kept whole; a known part keeps unknown fields.
    let ChatMessage::User(user) = &req.messages[1] else { panic!("expected a user message") };
    let switchyard::MessageContent::Parts(parts) = &user.content else { panic!("expected parts") };
    assert!(matches!(&parts[0], ContentPart::Other(map) if map.contains_key("input_video")));
    assert_eq!(user.extra.get("x_trace"), Some(&Value::from(1)));
    // Explicitly empty collections stay explicitly empty.
    assert_eq!(req.tools.as_deref().map(<[_]>::len), Some(0));
    assert!(req.metadata.as_ref().is_some_and(|m| m.is_empty()));
}

#[test]
fn chat_responses_round_trip_exactly() {
    let responses = round_trip::<ChatResponse>("chat_response");
    let tools = find(&responses, "tool_calls");
    assert_eq!(tools.tool_calls().len(), 3);
    assert!(tools.system_fingerprint.is_none() && !tools.system_fingerprint.is_absent(), "an explicit null stays null");
    let odd = find(&responses, "refusal_audio_unknown_values");
    assert_eq!(odd.finish_reason(), Some(&FinishReason::Other("guardrail_stop".into())));
    assert!(odd.choices[1].finish_reason.is_none());
}

#[test]
fn chat_chunks_round_trip_exactly() {
    let chunks = round_trip::<ChatChunk>("chat_chunk");
    let first = find(&chunks, "first_text");
    assert!(first.usage.is_absent(), "no usage field stays absent");
    assert!(
        find(&chunks, "text").usage.is_none() && !find(&chunks, "text").usage.is_absent(),
        "usage: null stays null"
    );
    assert_eq!(find(&chunks, "usage_only").usage.as_ref().map(|u| u.total_tokens), Some(1163));
    assert!(find(&chunks, "azure_prompt_filter").extra.contains_key("prompt_filter_results"));
}

#[test]
fn errors_round_trip_exactly() {
    let errors = round_trip::<ErrorResponse>("error");
    assert!(find(&errors, "azure_content_filter").error.extra.contains_key("innererror"));
}

#[test]
fn embeddings_and_models_round_trip_exactly() {
    round_trip::<EmbeddingRequest>("embedding_request");
    let responses = round_trip::<EmbeddingResponse>("embedding_response");
    let vector = find(&responses, "base64").data[0].vector();
    assert_eq!(vector, Some(vec![1.0, -0.5, 0.25, 0.0]));
    let models = round_trip::<ModelList>("models");
    assert_eq!(find(&models, "list").data.len(), 3);
}

#[test]
fn bad_bodies_fail_with_clear_messages() {
    let cases = [
        (r#"{"model":"m","messages":[{"role":"bot","content":"x"}]}"#, "unknown message role `bot`"),
        (r#"{"model":"m","messages":[{"content":"x"}]}"#, "message without `role`"),
        (r#"{"model":"m","messages":[{"role":"user"}]}"#, "invalid `user` message: missing field `content`"),
        (r#"{"model":"m","messages":[{"role":"user","content":7}]}"#, "a string or an array of content parts"),
        (r#"{"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]}"#, "content part without `type`"),
        (r#"{"model":"m","messages":["hi"]}"#, "a message must be an object"),
        (r#"{"model":"m","input":[{"a":1}]}"#, "`input` must be a string"),
    ];
    for (body, expected) in cases {
        let err = if body.contains("input") {
            serde_json::from_str::<EmbeddingRequest>(body).err().map(|e| e.to_string())
        } else {
            serde_json::from_str::<ChatRequest>(body).err().map(|e| e.to_string())
        };
        let err = err.unwrap_or_else(|| panic!("{body} decoded"));
        assert!(err.contains(expected), "{body}: {err}");
    }
}

#[test]
fn anthropic_requests_messages_and_every_stream_event_round_trip_exactly() {
    use switchyard::spec::anthropic as a;
    use switchyard::spec::ext::anthropic::ContentBlock;

    let requests = round_trip::<a::CreateMessageParams>("anthropic/request");
    let full = find(&requests, "every_field");
    let a::MessageContent::Array(blocks) = &full.messages[2].content else { panic!("expected blocks") };
    assert!(matches!(&blocks[1], ContentBlock::Other(map) if map.get("type") == Some(&Value::from("server_tool_use"))));
    assert_eq!(full.thinking, Some(a::ThinkingConfigParam::Enabled(2048)));
    assert!(full.extra.contains_key("container"));

    let messages = round_trip::<a::Message>("anthropic/message");
    let stop = find(&messages, "unknown_stop_reason").stop_reason.clone();
    assert_eq!(stop, Some(a::StopReason::Other("model_context_window_exceeded".into())));

    round_trip::<a::MessageStartEvent>("anthropic/message_start");
    let starts = round_trip::<a::ContentBlockStartEvent>("anthropic/content_block_start");
    assert!(matches!(find(&starts, "tool_use").content_block, ContentBlock::ToolUse(_)));
    assert!(matches!(find(&starts, "server_tool_use").content_block, ContentBlock::Other(_)));
    let deltas = round_trip::<a::ContentBlockDeltaEvent>("anthropic/content_block_delta");
    assert_eq!(find(&deltas, "signature_delta").delta.type_, "signature_delta");
    round_trip::<a::ContentBlockStopEvent>("anthropic/content_block_stop");
    round_trip::<a::MessageDeltaEvent>("anthropic/message_delta");
    round_trip::<a::MessageStopEvent>("anthropic/message_stop");
    round_trip::<a::Ping>("anthropic/ping");
    let errors = round_trip::<a::ErrorResponse>("anthropic/error");
    assert_eq!(find(&errors, "overloaded").error.type_, a::ErrorType::OverloadedError);
    round_trip::<a::ListModelsResponse>("anthropic/models");
}

#[test]
fn gemini_requests_responses_stream_chunks_and_errors_round_trip_exactly() {
    use switchyard::spec::gemini as g;

    let requests = round_trip::<g::GenerateContentRequest>("gemini/request");
    let full = find(&requests, "every_field");
    let tools = full.tools.as_deref().unwrap_or_default();
    assert!(tools[1].extra.contains_key("googleSearch"), "Google's own tools are kept");
    let parts = full.contents[0].parts.as_deref().unwrap_or_default();
    assert!(parts[3].extra.contains_key("videoMetadata"), "parts of kinds this version does not know are kept");

    let responses = round_trip::<g::GenerateContentResponse>("gemini/response");
    let odd = find(&responses, "blocked_and_unknown_finish");
    let candidates = odd.candidates.as_deref().unwrap_or_default();
    assert_eq!(candidates[0].finish_reason, Some(g::FinishReason::Other("ESCALATION".into())));
    let block = odd.prompt_feedback.as_ref().and_then(|p| p.block_reason.clone());
    assert_eq!(block, Some(g::BlockReason::Other("BRAND_NEW_REASON".into())));

    round_trip::<g::GenerateContentResponse>("gemini/stream_chunk");
    let errors = round_trip::<g::ErrorResponse>("gemini/error");
    assert_eq!(find(&errors, "resource_exhausted").error.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
    round_trip::<g::EmbedContentRequest>("gemini/embed_request");
    round_trip::<g::EmbedContentResponse>("gemini/embed_response");
    round_trip::<g::BatchEmbedContentsRequest>("gemini/batch_embed_request");
    round_trip::<g::BatchEmbedContentsResponse>("gemini/batch_embed_response");
    round_trip::<g::ListModelsResponse>("gemini/models");
}

#[test]
fn bedrock_requests_answers_stream_events_and_errors_round_trip_exactly() {
    use switchyard::spec::bedrock as b;

    let requests = round_trip::<b::ConverseRequest>("bedrock/request");
    assert!(find(&requests, "reasoning").additional_model_request_fields.is_some());
    round_trip::<b::ConverseResponse>("bedrock/response");
    round_trip::<b::MessageStartEvent>("bedrock/message_start");
    round_trip::<b::ContentBlockStartEvent>("bedrock/content_block_start");
    round_trip::<b::ContentBlockDeltaEvent>("bedrock/content_block_delta");
    round_trip::<b::ContentBlockStopEvent>("bedrock/content_block_stop");
    round_trip::<b::MessageStopEvent>("bedrock/message_stop");
    round_trip::<b::MetadataEvent>("bedrock/metadata");
    round_trip::<b::ErrorBody>("bedrock/error");
    round_trip::<b::CohereEmbedRequest>("bedrock/cohere_embed_request");
    round_trip::<b::CohereEmbedResponse>("bedrock/cohere_embed_response");
    round_trip::<b::TitanEmbedRequest>("bedrock/titan_embed_request");
    round_trip::<b::TitanEmbedResponse>("bedrock/titan_embed_response");
}

#[test]
fn cohere_requests_answers_stream_events_and_errors_round_trip_exactly() {
    use switchyard::spec::cohere as c;

    round_trip::<c::ChatRequest>("cohere/request");
    round_trip::<c::ChatResponse>("cohere/response");
    let events = round_trip::<c::StreamEvent>("cohere/stream_event");
    assert!(!events.is_empty());
    round_trip::<c::ErrorBody>("cohere/error");
    round_trip::<c::EmbedRequest>("cohere/embed_request");
    round_trip::<c::EmbedResponse>("cohere/embed_response");
    round_trip::<c::ListModelsResponse>("cohere/models");
}

/// Read from the format descriptors: a wire format added there without golden samples (in
/// `tests/golden/<format>/<kind>/`, each kind round-tripped by a test above) fails here.
#[test]
fn every_wire_format_has_golden_samples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let missing: Vec<&str> = switchyard::catalog::FORMATS
        .iter()
        .map(|f| f.id)
        .filter(|id| std::fs::read_dir(root.join(id)).map_or(true, |mut kinds| kinds.next().is_none()))
        .collect();
    assert!(missing.is_empty(), "no golden samples for {}", missing.join(", "));
}
