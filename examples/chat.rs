//! One chat request; the model comes from the first argument (default: the mock).
//!
//! ```sh
//! cargo run --example chat
//! OPENAI_API_KEY=... cargo run --example chat -- openai/gpt-4o-mini "Why is the sky blue?"
//! ```

use switchyard::{ChatMessage, ChatRequest, Client};

#[tokio::main]
async fn main() -> Result<(), switchyard::Error> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "mock/echo".into());
    let prompt = args.next().unwrap_or_else(|| "Hello from the chat example!".into());

    let client = Client::from_env()?;
    let request =
        ChatRequest::new(model, vec![ChatMessage::system("Answer in one sentence."), ChatMessage::user(prompt)]);
    match client.chat(&request).await {
        Ok(answer) => {
            println!("{}", answer.text().unwrap_or_default());
            if let Some(usage) = answer.usage {
                eprintln!("{} prompt + {} completion tokens", usage.prompt_tokens, usage.completion_tokens);
            }
            Ok(())
        }
        Err(err) => {
            // One taxonomy for every provider.
            eprintln!("{} (kind {}, retryable: {})", err, err.kind().name(), err.is_retryable());
            Err(err)
        }
    }
}
