//! What the fuzz targets share: the providers under test, and cutting input into pieces.

use switchyard::ProviderSettings;
use switchyard::{Provider, ProviderKind};

/// Every provider this build knows, configured with placeholder credentials (nothing is
/// sent anywhere: the targets only decode).
pub fn providers() -> Vec<Provider> {
    ProviderKind::all()
        .filter_map(|kind| {
            let mut settings = ProviderSettings::with_api_key("sk-fuzz-placeholder-key");
            settings.project = Some("fuzz-project".into());
            settings.location = Some("us-east-1".into());
            settings.api_version = Some("2024-10-21".into());
            settings.aws_access_key_id = Some("AKIAFUZZ".into());
            settings.aws_secret_access_key = Some("fuzz-secret".to_string().into());
            if kind == ProviderKind::Azure {
                settings.base_url = Some("https://fuzz.openai.azure.com".into());
            }
            if kind == ProviderKind::VertexAi {
                settings.auth_token = Some("ya29.fuzz".to_string().into());
            }
            Provider::configure(kind, &settings).ok()
        })
        .collect()
}

/// Cuts `data` at the places `cuts` names (each byte a piece's length, 1 to 64), so the
/// same bytes can be fed whole and in pieces.
pub fn pieces<'a>(data: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    for &cut in cuts.iter().cycle().take(data.len()) {
        if rest.is_empty() {
            break;
        }
        let at = usize::from(cut % 64 + 1).min(rest.len());
        let (head, tail) = rest.split_at(at);
        out.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Splits the input into a header (its first `n` bytes, `n` from the first byte) and the rest.
pub fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&n, rest)) = data.split_first() else { return (&[], &[]) };
    rest.split_at(usize::from(n % 32).min(rest.len()))
}
