//! Azure request URLs; the body is OpenAI's (see `openai::request`).

/// The URL of an operation: under the deployment for data-plane versions, or under
/// `/openai/v1` when the version is `v1` (Azure's version-less API, model in the body).
pub fn url(endpoint: &str, api_version: &str, deployment: Option<&str>, operation: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if api_version == "v1" {
        return format!("{endpoint}/openai/v1{operation}");
    }
    let version = utf8_percent_encode(api_version);
    match deployment {
        Some(deployment) => format!(
            "{endpoint}/openai/deployments/{}{operation}?api-version={version}",
            utf8_percent_encode(deployment)
        ),
        None => format!("{endpoint}/openai{operation}?api-version={version}"),
    }
}

/// Percent-encodes everything but unreserved characters (deployment names are user-chosen).
fn utf8_percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn deployment_urls_carry_the_api_version() {
        assert_eq!(
            url("https://r.openai.azure.com/", "2024-10-21", Some("gpt-4o prod"), "/chat/completions"),
            "https://r.openai.azure.com/openai/deployments/gpt-4o%20prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(url("https://r", "2024-10-21", None, "/models"), "https://r/openai/models?api-version=2024-10-21");
    }

    #[test]
    fn v1_api_has_no_deployment_in_the_path() {
        assert_eq!(url("https://r", "v1", Some("d"), "/chat/completions"), "https://r/openai/v1/chat/completions");
    }
}
