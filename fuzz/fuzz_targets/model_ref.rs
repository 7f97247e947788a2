//! Model strings (`provider/model`): a provider and a model, or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::ModelRef;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ModelRef::parse(text);
    let _ = ModelRef::parse_with_default(text, Some(switchyard::ProviderKind::Mock));
});
