//! The `/v1/messages` translation: an Anthropic Messages request to OpenAI's shape, and an
//! OpenAI answer back to Anthropic's. No input panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::gateway::messages::{from_openai, to_openai};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(request) = to_openai(&value) {
        let _ = serde_json::to_vec(&request);
    }
    if let Ok(answer) = serde_json::from_value::<switchyard::ChatResponse>(value) {
        let _ = from_openai(&answer, "fuzz-model");
    }
});
