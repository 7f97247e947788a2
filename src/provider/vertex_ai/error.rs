//! Vertex AI errors use Google's `google.rpc.Status` envelope, read by
//! `crate::provider::gemini::error`. Failing to get an access token is an `authentication`
//! error, or a transport error when the token endpoint cannot be reached (see `mod.rs`).
