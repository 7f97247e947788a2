//! A streamed answer with a tool: prints text as it arrives, then the assembled tool call.
//!
//! ```sh
//! cargo run --example stream_tools                       # the mock calls the tool
//! GROQ_API_KEY=... cargo run --example stream_tools -- groq/llama-3.3-70b-versatile
//! ```

use futures_util::StreamExt;
use serde_json::json;
use switchyard::spec::openai::{ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionToolChoiceOption};
use switchyard::{ChatMessage, ChatRequest, ChunkAccumulator, Client};

#[tokio::main]
async fn main() -> Result<(), switchyard::Error> {
    let model = std::env::args().nth(1).unwrap_or_else(|| "mock/tools".into());
    let mut request = ChatRequest::new(model, vec![ChatMessage::user("What's the weather in Paris?")]);
    request.tools = Some(vec![ChatCompletionTool::function(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
    )]);
    request.tool_choice = Some(ChatCompletionToolChoiceOption::auto());
    request.stream_options = Some(ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
        extra: Default::default(),
    });

    let client = Client::from_env()?;
    let mut stream = client.chat_stream(&request).await?;
    let mut whole = ChunkAccumulator::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        for choice in &chunk.choices {
            print!("{}", choice.delta.content.as_deref().unwrap_or(""));
        }
        whole.push(&chunk);
    }
    println!();
    let answer = whole.finish();
    for call in answer.tool_calls() {
        if let Some(function) = &call.function {
            println!("tool call {}: {}({})", call.id, function.name, function.arguments);
        }
    }
    println!("finish reason: {:?}, usage: {:?}", answer.finish_reason(), answer.usage.as_ref().map(|u| u.total_tokens));
    Ok(())
}
