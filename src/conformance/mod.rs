//! The conformance harness as a library: loading recorded cases and replaying them through
//! wiremock. `tests/conformance.rs` runs every case; `conformance/README.md` describes the
//! format for people adding cases.

pub mod case;
pub mod compare;
pub mod replay;
mod sigv4_check;

pub use case::{Case, discover};
pub use replay::{Outcome, Replay, replay, semantic_answer};
