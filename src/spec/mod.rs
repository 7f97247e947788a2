//! Wire types. Each provider module is generated at build time from `openapi/<name>.yaml`
//! (see `build.rs`);
//! `ext` holds the hand-written pieces: constructors, helpers, and the few "hub" unions
//! (messages by role, message content, content parts) that get hand-written serde for good
//! error messages and tolerance of unknown part types.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod ext;
pub mod gemini;
pub mod openai;
