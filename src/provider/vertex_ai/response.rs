//! Vertex AI answers are Gemini's (`crate::provider::gemini::response`), decoded by the same
//! code; `tests/conformance.rs` pins this with the `vertex_ai` cases.
