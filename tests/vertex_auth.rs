//! Vertex AI's OAuth flow end to end on loopback: a service account's key is exchanged for a
//! token at its `token_uri` (wiremock here), the token is cached, and requests carry it.

use base64::Engine as _;
use serde_json::{Value, json};
use switchyard::transport::RetryPolicy;
use switchyard::{ChatMessage, ChatRequest, Client, ErrorKind, ProviderKind, ProviderSettings};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MODEL_PATH: &str =
    "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent";

fn key_json(token_uri: &str) -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vertex/service_account.json"))
            .unwrap_or_else(|e| panic!("{e}"));
    text.replace("{TOKEN_URI}", token_uri)
}

fn client(server: &MockServer, credentials: String) -> Client {
    let mut settings = ProviderSettings::default().base_url(server.uri());
    settings.project = Some("test-project".into());
    settings.location = Some("us-central1".into());
    settings.credentials = Some(credentials.into());
    Client::builder()
        .read_env(false)
        .retry(RetryPolicy::none())
        .provider(ProviderKind::VertexAi, settings)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn answer() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello!"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
        "modelVersion": "gemini-2.5-flash", "responseId": "r1"
    })
}

fn request() -> ChatRequest {
    ChatRequest::new("vertex_ai/gemini-2.5-flash", vec![ChatMessage::user("hi")])
}

fn base64url(segment: &str) -> Value {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_service_account_key_is_exchanged_for_a_cached_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.from-service-account", "expires_in": 3599, "token_type": "Bearer"
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MODEL_PATH))
        .and(header("authorization", "Bearer ya29.from-service-account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer()))
        .mount(&server)
        .await;
    let token_uri = format!("{}/token", server.uri());
    let client = client(&server, key_json(&token_uri));
    for _ in 0..2 {
        let reply = client.chat(&request()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.text(), Some("Hello!"));
    }
    let sent = server.received_requests().await.unwrap_or_default();
    let token_calls: Vec<_> = sent.iter().filter(|r| r.url.path() == "/token").collect();
    assert_eq!(token_calls.len(), 1, "the token is cached between calls");
    assert_eq!(sent.iter().filter(|r| r.url.path() == MODEL_PATH).count(), 2);

    // The exchange is the JWT-bearer grant, signed for this service account and scope.
    let form = String::from_utf8_lossy(&token_calls[0].body).into_owned();
    let fields: std::collections::HashMap<String, String> =
        form.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(
        fields.get("grant_type").map(String::as_str),
        Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
    );
    let jwt = fields.get("assertion").cloned().unwrap_or_default();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a signed JWT: {jwt}");
    assert_eq!(base64url(parts[0])["alg"], "RS256");
    let claims = base64url(parts[1]);
    assert_eq!(claims["iss"], "switchyard-test@test-project.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], token_uri);
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/cloud-platform");
    assert!(!parts[2].is_empty());
}

#[tokio::test]
async fn a_refused_key_is_an_authentication_error_and_no_request_is_made() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant", "error_description": "Invalid JWT Signature."
        })))
        .mount(&server)
        .await;
    let client = client(&server, key_json(&format!("{}/token", server.uri())));
    let err = client.chat(&request()).await.err().unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    let sent = server.received_requests().await.unwrap_or_default();
    assert!(sent.iter().all(|r| r.url.path() == "/token"), "no model request without a token");
}

#[tokio::test]
async fn the_key_can_be_a_file_path() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "ya29.file", "expires_in": 3599, "token_type": "Bearer"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MODEL_PATH))
        .and(header("authorization", "Bearer ya29.file"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer()))
        .mount(&server)
        .await;
    let file = std::env::temp_dir().join(format!("switchyard-sa-{}.json", std::process::id()));
    std::fs::write(&file, key_json(&format!("{}/token", server.uri()))).unwrap_or_else(|e| panic!("{e}"));
    let client = client(&server, file.display().to_string());
    let reply = client.chat(&request()).await;
    std::fs::remove_file(&file).ok();
    assert_eq!(reply.map(|r| r.text().map(str::to_string)).ok().flatten().as_deref(), Some("Hello!"));
}

#[test]
fn a_key_that_is_not_a_key_is_a_configuration_error() {
    let mut settings = ProviderSettings::default();
    settings.project = Some("p".into());
    settings.credentials = Some("{\"type\": \"service_account\"}".to_string().into());
    let client = Client::builder().read_env(false).provider(ProviderKind::VertexAi, settings).build();
    let err = client.and_then(|c| c.provider(ProviderKind::VertexAi).map(|_| ())).err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("service account key")), "{err:?}");
}
