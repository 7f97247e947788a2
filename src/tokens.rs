//! Token counting before the call: for the router's context-window pre-check and for tpm
//! limits, when the upstream's own count is not known yet.
//!
//! - OpenAI and Azure models with a known tokenizer (`gpt-4o`, `o3-mini`, `gpt-4.1`, ...) are
//!   counted **exactly** for text messages, with OpenAI's published chat framing (3 tokens per
//!   message, 1 per name, 3 to prime the reply) over `tiktoken`'s encoding for that model.
//! - Everything else is an **estimate**: the `o200k_base` count of the same text. Claude's,
//!   Gemini's, Llama's and Cohere's tokenizers are not public in a form we can ship, and they
//!   usually count 0-20% more than `o200k_base` for English. Images count a flat
//!   [`IMAGE_TOKENS`]; tool definitions and tool calls count their JSON text. Any of these
//!   makes the count an estimate ([`TokenCount::exact`] is false).
//!
//! Built without the `exact-tokens` feature (no `tiktoken`), every count is an estimate of
//! four bytes a token, with the same framing.
//!
//! An estimate can be low, so the pre-check is a first filter: a provider's own
//! context-length error still triggers the context-window fallback.
//!
//! Counting is bounded, whoever sends the prompt. Text is counted in segments of at most
//! [`SEGMENT`] bytes, cut at a space where it has one (where BPE pieces begin, so ordinary
//! text counts exactly as a whole): byte-pair merging is quadratic in the length of one
//! piece, and a prompt of one repeated character is one piece (20 MB of it took 11 s).
//! Prompts of more than [`EXACT_LIMIT`] bytes of text are not counted but estimated at
//! four bytes a token. And [`count_chat_async`], which the router and the gateway use,
//! counts prompts larger than [`INLINE_LIMIT`] on Tokio's blocking threads, at most one per
//! core at once, so an event loop never stalls on a count.

#[cfg(feature = "exact-tokens")]
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use crate::ChatRequest;
use crate::provider::ProviderKind;
use crate::spec::ext::{ChatMessage, ContentPart, MessageContent};

/// Tokens counted for one image part, whatever its size: OpenAI's figure for a 512x512 tile
/// plus the base (85 + 170 x 4 = 765 for a 1024x1024 image at high detail).
pub const IMAGE_TOKENS: u64 = 765;

/// Framing tokens per message in OpenAI's chat format.
const PER_MESSAGE: u64 = 3;
/// Tokens that prime the assistant's reply.
const REPLY_PRIMING: u64 = 3;

/// A token count and whether it is exact for the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCount {
    /// The tokens.
    pub tokens: u64,
    /// True when counted with the model's own tokenizer over text only.
    pub exact: bool,
}

/// A tokenizer: `tiktoken`'s BPE with the `exact-tokens` feature, else four bytes a token.
#[cfg(feature = "exact-tokens")]
type Bpe = &'static tiktoken_rs::CoreBPE;
/// A tokenizer: `tiktoken`'s BPE with the `exact-tokens` feature, else four bytes a token.
#[cfg(not(feature = "exact-tokens"))]
#[derive(Clone, Copy)]
struct Bpe;

/// The tokens of one segment of text.
fn encoded_len(bpe: Bpe, text: &str) -> u64 {
    #[cfg(feature = "exact-tokens")]
    return bpe.encode_ordinary(text).len() as u64;
    #[cfg(not(feature = "exact-tokens"))]
    {
        let _ = bpe;
        (text.len() as u64).div_ceil(4)
    }
}

/// The tokenizer for a model, and whether it is the model's own.
#[cfg(feature = "exact-tokens")]
fn tokenizer(provider: ProviderKind, model: &str) -> (Bpe, bool) {
    let own = matches!(provider, ProviderKind::OpenAi | ProviderKind::Azure).then(|| get_tokenizer(model)).flatten();
    let chosen = own.unwrap_or(Tokenizer::O200kBase);
    // The singletons are built from data compiled into tiktoken-rs.
    (tiktoken_rs::bpe_for_tokenizer(chosen).unwrap_or_else(|_| tiktoken_rs::o200k_base_singleton()), own.is_some())
}

/// The tokenizer for a model, and whether it is the model's own: none in this build.
#[cfg(not(feature = "exact-tokens"))]
fn tokenizer(_provider: ProviderKind, _model: &str) -> (Bpe, bool) {
    (Bpe, false)
}

/// The longest run of text handed to the tokenizer at once.
pub const SEGMENT: usize = 4096;

/// Prompts with more text than this (bytes) are estimated, not counted: 4 MiB, about a
/// million tokens, more than any model but Gemini takes.
pub const EXACT_LIMIT: u64 = 4 << 20;

/// Prompts up to this many bytes are counted on the calling thread (well under a
/// millisecond); larger ones, by [`count_chat_async`], on a blocking thread.
pub const INLINE_LIMIT: u64 = 32 << 10;

/// Tokens in `text`, counted segment by segment; `false` when a segment had to be cut
/// where no space was (the count may then be a token or so high per cut).
fn count_segments(bpe: Bpe, text: &str) -> (u64, bool) {
    let mut tokens = 0u64;
    let mut exact = true;
    let mut rest = text;
    while rest.len() > SEGMENT {
        let window = &rest.as_bytes()[SEGMENT / 2..SEGMENT];
        // Cut before a space that follows a non-space: a BPE piece starts there.
        let at_space = window
            .iter()
            .enumerate()
            .rev()
            .find(|&(i, &b)| b == b' ' && !rest.as_bytes()[SEGMENT / 2 + i - 1].is_ascii_whitespace())
            .map(|(i, _)| SEGMENT / 2 + i);
        let cut = match at_space {
            Some(cut) => cut,
            None => {
                exact = false;
                (0..=SEGMENT).rev().find(|&i| rest.is_char_boundary(i)).unwrap_or(rest.len())
            }
        };
        let (head, tail) = rest.split_at(cut);
        tokens += encoded_len(bpe, head);
        rest = tail;
    }
    tokens += encoded_len(bpe, rest);
    (tokens, exact)
}

/// Tokens in a text for a model.
pub fn count_text(provider: ProviderKind, model: &str, text: &str) -> TokenCount {
    let (bpe, exact) = tokenizer(provider, model);
    if text.len() as u64 > EXACT_LIMIT {
        return TokenCount { tokens: (text.len() as u64).div_ceil(4), exact: false };
    }
    let (tokens, whole) = count_segments(bpe, text);
    TokenCount { tokens, exact: exact && whole }
}

/// Tokens in a chat request's prompt (messages and tool definitions) for a model. Past
/// [`EXACT_LIMIT`] bytes, an estimate of four bytes a token.
pub fn count_chat(provider: ProviderKind, model: &str, request: &ChatRequest) -> TokenCount {
    let bound = chat_upper_bound(request);
    if bound > EXACT_LIMIT {
        return TokenCount { tokens: bound.div_ceil(4), exact: false };
    }
    let (bpe, mut exact) = tokenizer(provider, model);
    let mut tokens = REPLY_PRIMING;
    let mut uncut = true;
    let mut text = |s: &str| {
        let (n, whole) = count_segments(bpe, s);
        uncut &= whole;
        n
    };
    for message in &request.messages {
        tokens += PER_MESSAGE + text(message.role());
        if let Some(name) = name(message) {
            tokens += 1 + text(name);
        }
        match message.content() {
            Some(MessageContent::Text(s)) => tokens += text(s),
            Some(MessageContent::Parts(parts)) => {
                for part in parts {
                    match part {
                        ContentPart::Text(t) => tokens += text(&t.text),
                        ContentPart::ImageUrl(_) => {
                            tokens += IMAGE_TOKENS;
                            exact = false;
                        }
                        other => {
                            tokens += text(&serde_json::to_string(other).unwrap_or_default());
                            exact = false;
                        }
                    }
                }
            }
            None => {}
        }
        if let ChatMessage::Assistant(m) = message
            && let Some(calls) = &m.tool_calls
        {
            tokens += text(&serde_json::to_string(calls).unwrap_or_default());
            exact = false;
        }
    }
    if let Some(tools) = &request.tools
        && !tools.is_empty()
    {
        tokens += text(&serde_json::to_string(tools).unwrap_or_default());
        exact = false;
    }
    TokenCount { tokens, exact: exact && uncut }
}

/// Counts at once on blocking threads: one per core.
fn counting_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
    })
}

/// [`count_chat`] without stalling the event loop: prompts up to [`INLINE_LIMIT`] bytes are
/// counted here, larger ones on a blocking thread (waiting, without blocking, for one of a
/// permit per core), and past [`EXACT_LIMIT`] estimated. `bound` is
/// [`chat_upper_bound`] of the request, which callers have at hand.
pub async fn count_chat_async(provider: ProviderKind, model: &str, request: &ChatRequest, bound: u64) -> TokenCount {
    if bound <= INLINE_LIMIT || bound > EXACT_LIMIT || tokio::runtime::Handle::try_current().is_err() {
        return count_chat(provider, model, request);
    }
    let Ok(_permit) = counting_permits().acquire().await else {
        return TokenCount { tokens: bound.div_ceil(4), exact: false };
    };
    let (model, request) = (model.to_string(), request.clone());
    tokio::task::spawn_blocking(move || count_chat(provider, &model, &request))
        .await
        .unwrap_or(TokenCount { tokens: bound.div_ceil(4), exact: false })
}

/// A cheap bound that [`count_chat`] never exceeds (every token is at least one byte): when
/// it fits a context window, counting is not needed.
pub fn chat_upper_bound(request: &ChatRequest) -> u64 {
    let mut bound = REPLY_PRIMING;
    for message in &request.messages {
        bound += PER_MESSAGE + message.role().len() as u64 + name(message).map_or(0, |n| 1 + n.len() as u64);
        match message.content() {
            Some(MessageContent::Text(s)) => bound += s.len() as u64,
            Some(MessageContent::Parts(parts)) => {
                for part in parts {
                    bound += match part {
                        ContentPart::Text(t) => t.text.len() as u64,
                        ContentPart::ImageUrl(_) => IMAGE_TOKENS,
                        other => serde_json::to_string(other).map_or(0, |s| s.len() as u64),
                    };
                }
            }
            None => {}
        }
        if let ChatMessage::Assistant(m) = message
            && let Some(calls) = &m.tool_calls
        {
            bound += serde_json::to_string(calls).map_or(0, |s| s.len() as u64);
        }
    }
    if let Some(tools) = &request.tools {
        bound += serde_json::to_string(tools).map_or(0, |s| s.len() as u64);
    }
    bound
}

/// The output tokens a request reserves (`max_completion_tokens`, else `max_tokens`).
pub fn reserved_output(request: &ChatRequest) -> u64 {
    request.max_completion_tokens.or(request.max_tokens).map_or(0, |n| n.max(0) as u64)
}

fn name(message: &ChatMessage) -> Option<&str> {
    match message {
        ChatMessage::Developer(m) => m.name.as_deref(),
        ChatMessage::System(m) => m.name.as_deref(),
        ChatMessage::User(m) => m.name.as_deref(),
        ChatMessage::Assistant(m) => m.name.as_deref(),
        ChatMessage::Tool(_) => None,
        ChatMessage::Function(m) => Some(&m.name),
    }
}

// The counts asserted are tiktoken's.
#[cfg(all(test, feature = "exact-tokens"))]
mod tests {
    use super::*;

    fn request(messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest::new("gpt-4o", messages)
    }

    /// OpenAI's cookbook example ("How to count tokens with tiktoken"): these messages are
    /// 129 prompt tokens for gpt-4o / gpt-4o-mini, as the API's `usage.prompt_tokens` reported.
    #[test]
    fn counts_match_the_api_for_the_cookbook_example() {
        let mut example_user = ChatMessage::system("New synergies will help drive top-line growth.");
        let mut example_assistant = ChatMessage::system("Things working well together will increase revenue.");
        if let ChatMessage::System(m) = &mut example_user {
            m.name = Some("example_user".into());
        }
        if let ChatMessage::System(m) = &mut example_assistant {
            m.name = Some("example_assistant".into());
        }
        let mut example_user2 = ChatMessage::system(
            "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
        );
        let mut example_assistant2 =
            ChatMessage::system("Let's talk later when we're less busy about how to do better.");
        if let ChatMessage::System(m) = &mut example_user2 {
            m.name = Some("example_user".into());
        }
        if let ChatMessage::System(m) = &mut example_assistant2 {
            m.name = Some("example_assistant".into());
        }
        let req = request(vec![
            ChatMessage::system(
                "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
            ),
            example_user,
            example_assistant,
            example_user2,
            example_assistant2,
            ChatMessage::user("This late pivot means we don't have time to boil the ocean for the client deliverable."),
        ]);
        let count = count_chat(ProviderKind::OpenAi, "gpt-4o", &req);
        assert_eq!(count, TokenCount { tokens: 124, exact: true });
        let count = count_chat(ProviderKind::OpenAi, "gpt-4-0613", &req);
        assert_eq!(count, TokenCount { tokens: 129, exact: true });
    }

    #[test]
    fn other_providers_are_estimates_and_images_make_a_count_inexact() {
        let req = request(vec![ChatMessage::user("Hello there")]);
        assert!(!count_chat(ProviderKind::Anthropic, "claude-sonnet-4-5", &req).exact);
        let exact = count_chat(ProviderKind::OpenAi, "gpt-4o", &req);
        assert!(exact.exact);
        let with_image = request(vec![ChatMessage::user(vec![
            ContentPart::text("Hello there"),
            ContentPart::image_url("https://example.com/a.png"),
        ])]);
        let count = count_chat(ProviderKind::OpenAi, "gpt-4o", &with_image);
        assert_eq!(count, TokenCount { tokens: exact.tokens + IMAGE_TOKENS, exact: false });
    }

    #[test]
    fn the_upper_bound_is_never_below_the_count() {
        let text = "naïve café ☕ — 数据 ".repeat(50);
        let req = request(vec![ChatMessage::system("Be brief."), ChatMessage::user(text)]);
        for provider in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
            assert!(count_chat(provider, "gpt-4o", &req).tokens <= chat_upper_bound(&req));
        }
    }

    #[test]
    fn a_long_run_of_one_character_is_counted_in_segments_and_huge_prompts_are_estimated() {
        // One piece of 1 MB: whole, BPE takes a third of a second (release build); in
        // segments, tens of milliseconds (benches/codec.rs measures it).
        let run = "a".repeat(1 << 20);
        let count = count_text(ProviderKind::OpenAi, "gpt-4o", &run);
        assert!(!count.exact && count.tokens > 0 && count.tokens <= run.len() as u64, "{count:?}");
        let huge = ChatRequest::new("gpt-4o", vec![ChatMessage::user("b".repeat((EXACT_LIMIT + 1) as usize))]);
        let estimate = count_chat(ProviderKind::OpenAi, "gpt-4o", &huge);
        assert_eq!(estimate, TokenCount { tokens: chat_upper_bound(&huge).div_ceil(4), exact: false });
    }

    #[test]
    fn ordinary_text_counts_the_same_in_segments_as_whole() {
        let text = "The quick brown fox jumps over the lazy dog, again and again. ".repeat(400);
        assert!(text.len() > 4 * SEGMENT);
        let (bpe, _) = tokenizer(ProviderKind::OpenAi, "gpt-4o");
        let whole = bpe.encode_ordinary(&text).len() as u64;
        assert_eq!(count_segments(bpe, &text), (whole, true));
        let cjk = "数据和模型的对话。".repeat(2000);
        let (n, _) = count_segments(bpe, &cjk);
        assert!(n > 0 && n <= cjk.len() as u64);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn large_prompts_are_counted_off_the_event_loop() {
        let text = "word ".repeat(20_000);
        let request = ChatRequest::new("gpt-4o", vec![ChatMessage::user(text)]);
        let bound = chat_upper_bound(&request);
        assert!(bound > INLINE_LIMIT);
        // A timer on this single-threaded loop keeps ticking while the count runs elsewhere.
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let ticking = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::task::yield_now().await;
                ticking.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let counted = count_chat_async(ProviderKind::OpenAi, "gpt-4o", &request, bound).await;
        ticker.abort();
        assert_eq!(counted, count_chat(ProviderKind::OpenAi, "gpt-4o", &request));
        assert!(ticks.load(std::sync::atomic::Ordering::Relaxed) > 0, "the loop ran other tasks during the count");
    }
}
