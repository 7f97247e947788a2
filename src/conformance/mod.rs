//! The conformance harness as a library: loading recorded cases and replaying them through
//! wiremock ([`suite`], as `tests/conformance.rs` and `switchyard conformance replay` run
//! them), running the same scenarios live against any endpoint ([`live`]), recording new cases
//! from one ([`record`]), and reporting ([`report`]: table, JSON, JUnit, capabilities).
//! `conformance/README.md` describes the format for people adding cases.

#[cfg(feature = "gateway")]
pub mod capture;
pub mod case;
pub mod compare;
#[cfg(feature = "gateway")]
pub mod live;
#[cfg(feature = "gateway")]
pub mod record;
pub mod replay;
pub mod report;
pub mod schema;
mod sigv4_check;
pub mod suite;

pub use case::{Case, discover};
pub use replay::{Outcome, Replay, replay, semantic_answer};
