//! Ids Switchyard makes up where an upstream gives none (Gemini's function calls without an
//! `id`, the mock's completions).

/// The last `digits` hex digits of `value` (lower case, zero-padded), after `out`: what
/// `format!("{:0N$x}")` writes, without the formatting machinery (ids are made per request).
pub(crate) fn push_hex(out: &mut String, value: u64, digits: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits.min(16)).rev() {
        out.push(char::from(DIGITS[((value >> (shift * 4)) & 0xf) as usize]));
    }
}

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

#[cfg(test)]
mod hex_tests {
    #[test]
    fn hex_digits_are_formats() {
        for value in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef, fastrand::u64(..)] {
            for digits in [1, 12, 16] {
                let mut ours = String::from("x");
                super::push_hex(&mut ours, value, digits);
                let width = digits as usize;
                let full = format!("{value:016x}");
                assert_eq!(ours, format!("x{}", &full[16 - width..]), "{value:x} {digits}");
            }
        }
    }
}
