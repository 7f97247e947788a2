//! Vertex AI streams are Gemini's (`streamGenerateContent?alt=sse`), decoded by
//! `crate::provider::gemini::stream::Decoder`.
