//! Hand-written additions to the generated wire types: the hub unions, `Nullable`, and
//! constructors and helpers callers reach for first.

pub mod anthropic;
mod checks;
mod embedding;
mod message;
mod nullable;
mod request;
mod response;
mod tagged;

pub use checks::{MAX_CHOICES, OutOfRange};
pub use embedding::EmbeddingInput;
pub use message::{ChatMessage, ContentPart, MessageContent};
pub use nullable::Nullable;
