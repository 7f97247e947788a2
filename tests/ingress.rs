//! The recorded ingress cases (`conformance/ingress/messages/*/request.json`): requests real
//! clients sent to the gateway's `/v1/messages`, captured by scripts/e2e (Claude Code's, with
//! its system-role messages, adaptive thinking, effort, context management, cache markers
//! and betas), replayed without the client:
//! - to an Anthropic upstream, the body must arrive byte for byte but the model, with the
//!   client's version and betas and `?beta=true`;
//! - to an OpenAI-format upstream, the translated request must match its snapshot
//!   (`openai.snap` in the case, long texts shown by length and digest).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use sha2::Digest as _;
use switchyard::gateway::{Config, Gateway, app};
use tower::ServiceExt as _;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const MASTER: &str = "sk-master-for-ingress";
const UPSTREAM_MODEL: &str = "claude-sonnet-4-5-20250929";

#[derive(Deserialize)]
struct Recorded {
    client: String,
    path: String,
    query: String,
    headers: std::collections::BTreeMap<String, String>,
    body: String,
}

fn cases() -> Vec<(PathBuf, Recorded)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/ingress/messages");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("request.json").exists())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let text = std::fs::read_to_string(dir.join("request.json")).unwrap_or_else(|e| panic!("{e}"));
            let recorded = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            (dir, recorded)
        })
        .collect()
}

const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}\n\n",
    "data: [DONE]\n\n",
);

/// A gateway sending every `claude-*` name to `litellm_params` at a wiremock answering
/// with `answer` (an SSE body).
async fn gateway(params: &str, answer: &'static str) -> (axum::Router, MockServer) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(answer, "text/event-stream"))
        .mount(&server)
        .await;
    let yaml = format!(
        "model_list:\n  - model_name: 'claude-*'\n    litellm_params: {{{}}}\n",
        params.replace("BASE", &server.uri())
    );
    let config = Config::parse(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::temp_dir().join(format!("switchyard-ingress-{:016x}.db", fastrand::u64(..)));
    let database = format!("sqlite://{}", path.display());
    let env = move |name: &str| match name {
        "SWITCHYARD_MASTER_KEY" => Some(MASTER.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(database.clone()),
        _ => None,
    };
    (app(Arc::new(Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}")))), server)
}

/// Replays a recorded request; the answer's status and body.
async fn replay(app: &axum::Router, recorded: &Recorded) -> (StatusCode, String) {
    let uri =
        if recorded.query.is_empty() { recorded.path.clone() } else { format!("{}?{}", recorded.path, recorded.query) };
    let mut request = Request::post(uri).header("authorization", format!("Bearer {MASTER}"));
    for (name, value) in &recorded.headers {
        request = request.header(name, value);
    }
    let request = request.body(Body::from(recorded.body.clone())).unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}"));
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn recorded_client_requests_pass_through_to_anthropic_byte_for_byte_but_the_model() {
    let cases = cases();
    assert!(cases.len() >= 3, "the recorded Claude Code cases are here: {}", cases.len());
    for (dir, recorded) in &cases {
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (app, server) =
            gateway(&format!("model: anthropic/{UPSTREAM_MODEL}, api_base: 'BASE', api_key: sk-ant"), ANTHROPIC_STREAM)
                .await;
        let (status, answer) = replay(&app, recorded).await;
        assert_eq!(status, StatusCode::OK, "{id} ({}): {answer:.500}", recorded.client);
        assert_eq!(answer, ANTHROPIC_STREAM, "{id}: the stream came back as the upstream sent it");
        let sent = server.received_requests().await.unwrap_or_default();
        assert_eq!(sent.len(), 1, "{id}");
        let model: Value = serde_json::from_str::<Value>(&recorded.body).unwrap_or_default()["model"].clone();
        let expected =
            recorded.body.replacen(&format!("\"model\":{model}"), &format!("\"model\":\"{UPSTREAM_MODEL}\""), 1);
        assert!(String::from_utf8_lossy(&sent[0].body) == expected, "{id}: the body changed beyond its model");
        assert_eq!(sent[0].url.query(), Some(recorded.query.as_str()).filter(|q| !q.is_empty()), "{id}");
        for name in ["anthropic-beta", "anthropic-version"] {
            let got = sent[0].headers.get(name).and_then(|v| v.to_str().ok());
            assert_eq!(got, recorded.headers.get(name).map(String::as_str), "{id}: {name}");
        }
    }
}

/// Long texts (system prompts, tool descriptions) as their length and digest, so a snapshot
/// shows the request's shape and catches any change without holding the texts twice.
fn abbreviated(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > 160 => {
            let digest = sha2::Sha256::digest(s.as_bytes());
            let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
            let head: String = s.chars().take(48).collect();
            Value::String(format!("[{} bytes, sha256 {hex}…] {head}…", s.len()))
        }
        Value::Array(items) => Value::Array(items.iter().map(abbreviated).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), abbreviated(v))).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn recorded_client_requests_translate_for_an_openai_upstream_as_their_snapshots_say() {
    for (dir, recorded) in &cases() {
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (app, server) = gateway("model: openai/o3-mini, api_base: 'BASE/v1', api_key: sk-oa", OPENAI_STREAM).await;
        let (status, answer) = replay(&app, recorded).await;
        assert_eq!(status, StatusCode::OK, "{id}: {answer:.500}");
        assert!(answer.contains("event: message_stop"), "{id}: {answer:.500}");
        let sent = server.received_requests().await.unwrap_or_default();
        assert_eq!(sent.len(), 1, "{id}");
        let upstream: Value = serde_json::from_slice(&sent[0].body).unwrap_or_else(|e| panic!("{id}: {e}"));
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(format!("{}'s request, as sent to an OpenAI-format upstream", recorded.client));
        settings.bind(|| insta::assert_json_snapshot!("openai", abbreviated(&upstream)));
    }
}

const GEMINI_STREAM: &str = concat!(
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],",
    "\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":1,\"totalTokenCount\":11},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n",
);

#[tokio::test]
async fn recorded_client_requests_are_served_by_a_provider_that_refuses_openais_hints() {
    // Gemini refuses what it cannot express (`user`, say): the translation must not put in
    // what the client's request only hinted at.
    for (dir, recorded) in &cases() {
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (app, server) =
            gateway("model: gemini/gemini-2.5-flash, api_base: 'BASE', api_key: g-key", GEMINI_STREAM).await;
        let (status, answer) = replay(&app, recorded).await;
        assert_eq!(status, StatusCode::OK, "{id}: {answer:.800}");
        assert!(answer.contains("event: message_stop") && answer.contains("\"ok\""), "{id}: {answer:.800}");
        let sent = server.received_requests().await.unwrap_or_default();
        assert!(sent[0].url.path().ends_with(":streamGenerateContent"), "{id}: {}", sent[0].url);
    }
}
