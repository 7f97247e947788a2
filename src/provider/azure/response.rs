//! Azure answers are OpenAI's plus `prompt_filter_results` and per-choice
//! `content_filter_results`. Both are kept in the generated types' `extra` maps, so a caller
//! (or the gateway) sees the filter verdicts exactly as Azure sent them; decoding is
//! OpenAI's (`openai::response`). `tests/conformance.rs` pins this with the Azure cases.
