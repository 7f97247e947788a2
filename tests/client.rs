//! The client as a user meets it: the mock provider end to end, configuration errors,
//! secrets kept out of Debug, and the blocking facade.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use switchyard::error::TimeoutPhase;
use switchyard::spec::openai::{ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionToolChoiceOption};
use switchyard::transport::{RetryPolicy, Timeouts};
use switchyard::{
    ChatMessage, ChatRequest, Client, EmbeddingRequest, Error, ErrorKind, ProviderKind, ProviderSettings,
};

fn client() -> Client {
    Client::builder().read_env(false).retry(RetryPolicy::none()).build().unwrap_or_else(|e| panic!("{e}"))
}

fn chat(model: &str, text: &str) -> ChatRequest {
    ChatRequest::new(model, vec![ChatMessage::system("be brief"), ChatMessage::user(text)])
}

#[tokio::test]
async fn mock_echo_answers_with_the_last_user_message() -> switchyard::Result<()> {
    let answer = client().chat(&chat("mock/echo", "ping pong")).await?;
    assert_eq!(answer.text(), Some("ping pong"));
    assert_eq!(answer.model, "echo");
    let usage = answer.usage.unwrap_or_else(|| panic!("no usage"));
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens), (4, 2, 6));
    Ok(())
}

#[tokio::test]
async fn mock_stream_assembles_to_the_same_answer_with_usage() -> switchyard::Result<()> {
    let mut req = chat("mock/echo", "the quick brown fox");
    req.stream_options = Some(ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
        extra: Default::default(),
    });
    let stream = client().chat_stream(&req).await?;
    let chunks: Vec<_> = stream.collect().await;
    assert!(chunks.len() >= 5, "a chunk per word plus role and finish: {}", chunks.len());
    let mut acc = switchyard::ChunkAccumulator::new();
    for chunk in &chunks {
        acc.push(chunk.as_ref().map_err(|e| Error::Config(e.to_string()))?);
    }
    let whole = acc.finish();
    assert_eq!(whole.text(), Some("the quick brown fox"));
    assert_eq!(whole.usage.map(|u| u.completion_tokens), Some(4));
    Ok(())
}

#[tokio::test]
async fn mock_tools_streams_a_call_whose_arguments_assemble_into_json() -> switchyard::Result<()> {
    let mut req = chat("mock/tools", "weather in Paris");
    req.tools = Some(vec![ChatCompletionTool::function("get_weather", "Weather", json!({"type": "object"}))]);
    req.tool_choice = Some(ChatCompletionToolChoiceOption::auto());
    let whole = client().chat_stream(&req).await?.collect_response().await?;
    let call = &whole.tool_calls()[0];
    let function = call.function.as_ref().unwrap_or_else(|| panic!("no function"));
    assert_eq!(function.name, "get_weather");
    let args: serde_json::Value = serde_json::from_str(&function.arguments).unwrap_or_default();
    assert_eq!(args, json!({"input": "weather in Paris"}));
    // A tool with a schema gets arguments the schema accepts: its required properties.
    let mut shaped = req.clone();
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["city", "days", "unit"],
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"enum": ["c", "f"]}, "note": {"type": "string"}}});
    shaped.tools = Some(vec![ChatCompletionTool::function("get_weather", "Weather", schema)]);
    let call = client().chat(&shaped).await?;
    let args: serde_json::Value =
        serde_json::from_str(&call.tool_calls()[0].function.as_ref().map(|f| f.arguments.clone()).unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(args, json!({"city": "weather in Paris", "days": 1, "unit": "c"}));
    assert_eq!(whole.finish_reason().map(|f| f.as_str()), Some("tool_calls"));
    let direct = client().chat(&req).await?;
    assert_eq!(direct.tool_calls(), whole.tool_calls(), "stream and non-stream agree");
    Ok(())
}

#[tokio::test]
async fn mock_errors_map_to_kinds() {
    for (model, kind, status) in [
        ("mock/error-400", ErrorKind::InvalidRequest, Some(400)),
        ("mock/error-401", ErrorKind::Authentication, Some(401)),
        ("mock/error-404", ErrorKind::NotFound, Some(404)),
        ("mock/error-429", ErrorKind::RateLimited, Some(429)),
        ("mock/error-500", ErrorKind::Server, Some(500)),
        ("mock/error-503", ErrorKind::Overloaded, Some(503)),
        ("mock/context-length", ErrorKind::ContextLengthExceeded, Some(400)),
        ("mock/no-such-model", ErrorKind::NotFound, Some(404)),
    ] {
        let err = client().chat(&chat(model, "x")).await.err().unwrap_or_else(|| panic!("{model} succeeded"));
        assert_eq!((err.kind(), err.status()), (kind, status), "{model}: {err}");
    }
    let err = client().chat(&chat("mock/error-429", "x")).await.err();
    assert_eq!(err.and_then(|e| e.retry_after()), Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn a_truncated_stream_ends_with_an_error_after_its_chunks() -> switchyard::Result<()> {
    let mut stream = client().chat_stream(&chat("mock/truncated", "one two three four five six")).await?;
    let mut texts = 0;
    let mut last = None;
    while let Some(item) = stream.next_chunk().await {
        match item {
            Ok(_) => texts += 1,
            Err(e) => last = Some(e),
        }
    }
    assert!(texts > 0, "chunks before the cut are delivered");
    assert!(matches!(last, Some(Error::Stream { kind: ErrorKind::Server, .. })), "{last:?}");
    Ok(())
}

#[tokio::test]
async fn a_silent_stream_hits_the_idle_timeout() -> switchyard::Result<()> {
    let client = Client::builder()
        .read_env(false)
        .timeouts(Timeouts { idle: Duration::from_millis(50), ..Timeouts::default() })
        .build()?;
    let mut stream = client.chat_stream(&chat("mock/slow-2000", "hi")).await?;
    let first = stream.next_chunk().await;
    assert!(matches!(first, Some(Err(Error::Timeout { phase: TimeoutPhase::Idle, .. }))), "{first:?}");
    assert!(stream.next_chunk().await.is_none(), "the stream ends after its error");
    Ok(())
}

#[tokio::test]
async fn embeddings_come_back_the_same_as_floats_and_base64() -> switchyard::Result<()> {
    let mut req = EmbeddingRequest::new("mock/embed", vec!["alpha".to_string(), "beta".to_string()]);
    req.dimensions = Some(6);
    let floats = client().embed(&req).await?;
    req.encoding_format = Some("base64".into());
    let packed = client().embed(&req).await?;
    assert_eq!(floats.data.len(), 2);
    for (a, b) in floats.data.iter().zip(&packed.data) {
        let (a, b) = (a.vector().unwrap_or_default(), b.vector().unwrap_or_default());
        assert_eq!(a.len(), 6);
        assert_eq!(a, b);
    }
    Ok(())
}

#[tokio::test]
async fn models_of_the_mock() -> switchyard::Result<()> {
    let models = client().models(ProviderKind::Mock).await?;
    assert!(models.data.iter().any(|m| m.id == "echo"));
    Ok(())
}

#[tokio::test]
async fn configuration_errors_say_what_to_set() {
    let err = client().chat(&chat("groq/llama-3.3-70b-versatile", "x")).await.err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("GROQ_API_KEY")), "{err:?}");
    let err = client().chat(&chat("azure/prod", "x")).await.err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("AZURE_API_BASE")), "{err:?}");
    let err = client().chat(&chat("hosted_vllm/llama", "x")).await.err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("HOSTED_VLLM_API_BASE")), "{err:?}");
    let err = client().chat(&chat("nope/model", "x")).await.err();
    assert!(matches!(&err, Some(Error::InvalidRequest { param: Some(p), .. }) if p == "model"), "{err:?}");
}

#[test]
fn keys_never_appear_in_debug_output() -> switchyard::Result<()> {
    let secret = "sk-live-very-secret-123";
    let client = Client::builder()
        .read_env(false)
        .api_key(ProviderKind::OpenAi, secret)
        .provider(ProviderKind::Azure, ProviderSettings::with_api_key(secret).base_url("https://r.openai.azure.com"))
        .build()?;
    let provider = client.provider(ProviderKind::OpenAi)?;
    let azure = client.provider(ProviderKind::Azure)?;
    for text in [format!("{client:?}"), format!("{provider:?}"), format!("{azure:?}"), format!("{client:#?}")] {
        assert!(!text.contains(secret), "the key leaked: {text}");
    }
    Ok(())
}

#[test]
fn the_blocking_client_works_without_a_runtime_and_refuses_inside_one() -> switchyard::Result<()> {
    let blocking = switchyard::blocking::Client::new(client())?;
    assert_eq!(blocking.chat(&chat("mock/echo", "sync"))?.text(), Some("sync"));
    let text: String = blocking
        .chat_stream(&chat("mock/echo", "a b c"))?
        .filter_map(Result::ok)
        .flat_map(|c| c.choices)
        .filter_map(|c| c.delta.content.into_option())
        .collect();
    assert_eq!(text, "a b c");
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| Error::Config(e.to_string()))?;
    let inside = runtime.block_on(async { blocking.chat(&chat("mock/echo", "x")) });
    assert!(matches!(inside, Err(Error::Config(m)) if m.contains("async runtime")));
    Ok(())
}
