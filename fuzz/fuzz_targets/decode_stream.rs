//! Every provider's stream decoder: no input panics, and the chunks (and the error that
//! ends the stream) are the same however the bytes are split.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchyard::Provider;
use switchyard::provider::Ctx;

static PROVIDERS: OnceLock<Vec<Provider>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let providers = PROVIDERS.get_or_init(switchyard_fuzz::providers);
    let Some((&pick, rest)) = data.split_first() else { return };
    let provider = &providers[usize::from(pick) % providers.len()];
    let (cuts, bytes) = switchyard_fuzz::split_head(rest);
    let headers = http::HeaderMap::new();
    let ctx = Ctx { stream: true, include_usage: pick & 1 == 1, ..Ctx::new("fuzz-model") };
    let (whole, whole_err) = provider.decode_stream(&headers, &[bytes], &ctx);
    let (split, split_err) = provider.decode_stream(&headers, &switchyard_fuzz::pieces(bytes, cuts), &ctx);
    // Ids made up for providers that send none, and the time, differ between two decodings.
    let json = |chunks: &[switchyard::ChatChunk]| {
        let mut value = serde_json::to_value(chunks).unwrap_or_default();
        for chunk in value.as_array_mut().into_iter().flatten() {
            if let Some(object) = chunk.as_object_mut() {
                object.remove("id");
                object.remove("created");
            }
        }
        value.to_string()
    };
    assert_eq!(json(&whole), json(&split), "the split changed the chunks");
    assert_eq!(whole_err.map(|e| e.to_string()), split_err.map(|e| e.to_string()), "the split changed the error");
});
