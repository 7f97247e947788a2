//! Vertex AI URLs; the request body is Gemini's (`crate::provider::gemini::request`).

use crate::provider::gemini::{Method, resource_name};

/// The regional host for a location (`global` has none).
pub fn default_host(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_string()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

/// The URL of a method on one of Google's publisher models.
pub fn url(base: &str, project: &str, location: &str, model: &str, method: Method) -> String {
    format!(
        "{base}/v1/projects/{project}/locations/{location}/publishers/google/{}{}",
        resource_name(model),
        method.suffix()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_and_global_urls() {
        assert_eq!(
            url(&default_host("europe-west4"), "p1", "europe-west4", "gemini-2.5-pro", Method::Stream),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            url(&default_host("global"), "p1", "global", "gemini-2.5-flash", Method::Generate),
            "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/google/models/gemini-2.5-flash:generateContent"
        );
    }
}
