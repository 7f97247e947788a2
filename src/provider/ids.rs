//! Ids Switchyard makes up where an upstream gives none (Gemini's function calls without an
//! `id`, the mock's completions).

/// FNV-1a, 64 bits: a stable hash, the same on every run and machine.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// A tool-call id derived from what the call is and where it stands in the answer, so that
/// the stream and the whole answer of one reply give the same ids.
pub(crate) fn tool_call_id(choice: i64, position: usize, name: &str, arguments: &str) -> String {
    let key = format!("{choice}\0{position}\0{name}\0{arguments}");
    format!("call_{:016x}", fnv1a(key.as_bytes()))
}
