//! Every provider's whole-answer and error decoders: no input panics. The first byte picks
//! the provider and whether the answer is a success or an error status.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchyard::Provider;
use switchyard::provider::Ctx;

static PROVIDERS: OnceLock<Vec<Provider>> = OnceLock::new();

const STATUSES: [u16; 8] = [200, 400, 401, 404, 413, 429, 500, 529];

fuzz_target!(|data: &[u8]| {
    let providers = PROVIDERS.get_or_init(switchyard_fuzz::providers);
    let Some((&pick, body)) = data.split_first() else { return };
    let provider = &providers[usize::from(pick) % providers.len()];
    let status = STATUSES[usize::from(pick / 32) % STATUSES.len()];
    let mut response = http::Response::new(bytes::Bytes::copy_from_slice(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
    // The first line, as a `Retry-After` value.
    let line = body.split(|&b| b == b'\n').next().unwrap_or_default();
    if let Ok(value) = http::HeaderValue::from_bytes(&line[..line.len().min(40)]) {
        response.headers_mut().insert("retry-after", value);
    }
    let _ = provider.decode_answer(response, &Ctx::new("fuzz-model"));
});
