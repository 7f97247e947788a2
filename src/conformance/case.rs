//! Conformance cases on disk: `conformance/<provider>/<case>/` (see `conformance/README.md`).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// What a case calls.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `Client::chat`.
    Chat,
    /// `Client::chat_stream`.
    ChatStream,
    /// `Client::embed`.
    Embed,
    /// `Client::models`.
    Models,
}

/// `case.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// What the case shows.
    pub description: String,
    /// What it calls.
    pub operation: Operation,
    /// The model string the caller uses (`groq/llama-3.3-70b-versatile`); for `models`, the
    /// provider id.
    pub model: String,
    /// The input request in `conformance/inputs/` (without `.json`); none for `models`.
    pub input: Option<String>,
    /// The capability the case shows (`capabilities.toml`); by default the input's name, or
    /// `models`.
    pub capability: Option<String>,
    /// Fields set on top of the input (a per-case tweak, e.g. a different `tool_choice`).
    #[serde(default)]
    pub input_overrides: Map<String, Value>,
    /// For stream cases: the non-stream case whose answer the stream must assemble to.
    pub twin: Option<String>,
    /// Where the upstream side comes from: `authored` (written from the provider's
    /// documentation) or `recorded <date>` (captured from the live API).
    pub source: String,
    /// Provider settings for the replay.
    #[serde(default)]
    pub settings: CaseSettings,
    /// What the call must produce; absent means success.
    pub expect: Option<Expectation>,
}

/// Provider settings of a case. The base URL is the mock server's plus `base_path`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSettings {
    /// The path under the mock server where the provider's API base is; by default the
    /// path of the provider's own default base (`/v1` for OpenAI, `/openai/v1` for Groq), so
    /// that the default is checked too.
    pub base_path: Option<String>,
    /// The API key (default `test-key`; `""` for none).
    pub api_key: Option<String>,
    /// Azure: an Entra ID token.
    pub auth_token: Option<String>,
    /// Azure: the API version.
    pub api_version: Option<String>,
    /// Vertex AI: the project.
    pub project: Option<String>,
    /// Vertex AI: the location. Bedrock: the region (default `us-east-1`).
    pub location: Option<String>,
    /// Bedrock: the access key id (default `AKIDEXAMPLE`, AWS's documentation key; `""` for
    /// none, to use `api_key` as a Bedrock API key).
    pub aws_access_key_id: Option<String>,
    /// Bedrock: the secret access key (default AWS's documentation secret).
    pub aws_secret_access_key: Option<String>,
    /// Bedrock: a session token.
    pub aws_session_token: Option<String>,
    /// Drop unsupported parameters.
    #[serde(default)]
    pub drop_params: bool,
}

/// An expected failure.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The [`crate::ErrorKind`], as its `Debug` name in snake case (`rate_limited`).
    pub error: String,
    /// The upstream status, for errors the upstream answered with.
    pub status: Option<u16>,
    /// The `retry_after` the error must carry, in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// For errors raised before sending: no request may reach the upstream.
    #[serde(default)]
    pub no_request: bool,
    /// The error must be `Error::Unsupported`: the provider cannot express what the input
    /// asks for (evidence for an `unsupported` entry in `capabilities.toml`).
    #[serde(default)]
    pub unsupported: bool,
}

/// The request the adapter must send (`request.json`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path, below the mock server's root.
    pub path: String,
    /// Query parameters; the request must have exactly these.
    #[serde(default)]
    pub query: Map<String, Value>,
    /// Headers that matter; each must be present with this value (others are ignored).
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// Headers that must not be sent (e.g. `authorization` to a server with no key).
    #[serde(default)]
    pub absent_headers: Vec<String>,
    /// The JSON body.
    pub body: Option<Value>,
}

/// The upstream's recorded answer: `response.meta.json` plus the body file.
#[derive(Clone, Debug)]
pub struct RecordedResponse {
    /// The status.
    pub status: u16,
    /// Headers to send back.
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    status: u16,
    #[serde(default)]
    headers: Map<String, Value>,
}

/// One case, loaded.
#[derive(Clone, Debug)]
pub struct Case {
    /// `conformance/<provider>/<case>`.
    pub dir: PathBuf,
    /// The provider folder's name.
    pub provider: String,
    /// The case folder's name.
    pub name: String,
    /// `case.toml`.
    pub spec: CaseSpec,
    /// The input request with the case's model, or `None` for `models`.
    pub input: Option<Value>,
    /// `request.json`, or `None` when nothing may be sent.
    pub request: Option<ExpectedRequest>,
    /// The recorded answer, or `None` when nothing is sent.
    pub response: Option<RecordedResponse>,
}

impl Case {
    /// The capability this case is evidence for.
    pub fn capability(&self) -> &str {
        self.spec.capability.as_deref().or(self.spec.input.as_deref()).unwrap_or("models")
    }

    /// Whether the case shows the capability working (a success), rather than an error.
    pub fn shows_support(&self) -> bool {
        self.spec.expect.is_none()
    }

    /// `provider/case`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.provider, self.name)
    }

    /// Loads the case in `dir`; `root` is the `conformance/` folder (for `inputs/`).
    pub fn load(root: &Path, dir: &Path) -> Result<Self> {
        let name_of = |p: &Path| p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let provider = dir.parent().map(name_of).unwrap_or_default();
        let name = name_of(dir);
        let id = format!("{provider}/{name}");
        let ctx = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("{id}: {what}: {e}"));
        let spec: CaseSpec = toml::from_str(&read(&dir.join("case.toml"))?).map_err(|e| ctx("case.toml", &e))?;
        let input = match &spec.input {
            Some(input) => {
                let path = root.join("inputs").join(format!("{input}.json"));
                let mut value: Value = serde_json::from_str(&read(&path)?).map_err(|e| ctx("input", &e))?;
                let Some(object) = value.as_object_mut() else {
                    return Err(ctx("input", &"not a JSON object"));
                };
                object.insert("model".into(), Value::String(spec.model.clone()));
                object.extend(spec.input_overrides.clone());
                Some(value)
            }
            None => None,
        };
        let request_path = dir.join("request.json");
        let request = if request_path.exists() {
            Some(serde_json::from_str(&read(&request_path)?).map_err(|e| ctx("request.json", &e))?)
        } else {
            None
        };
        let response = load_response(dir).map_err(|e| ctx("response", &e))?;
        let case = Self { dir: dir.to_path_buf(), provider, name, spec, input, request, response };
        case.check().map_err(|e| ctx("case", &e))?;
        Ok(case)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let no_request = self.spec.expect.as_ref().is_some_and(|e| e.no_request);
        match (no_request, self.request.is_some(), self.response.is_some()) {
            (true, false, false) | (false, true, true) => {}
            (true, _, _) => return Err("a no_request case has no request.json or response".into()),
            (false, _, _) => {
                return Err(
                    "needs request.json and a response (response.json, .sse, .txt, .eventstream or .frames.json)"
                        .into(),
                );
            }
        }
        if (self.spec.operation == Operation::Models) != self.input.is_none() {
            return Err("`input` is required except for `models`".into());
        }
        if self.spec.twin.is_some() && self.spec.operation != Operation::ChatStream {
            return Err("only stream cases have a twin".into());
        }
        Ok(())
    }
}

fn load_response(dir: &Path) -> std::result::Result<Option<RecordedResponse>, String> {
    let meta_path = dir.join("response.meta.json");
    let body_path = BODY_FILES.iter().map(|f| dir.join(f)).find(|p| p.exists());
    let (meta_path, body_path) = match (meta_path.exists(), body_path) {
        (true, Some(body)) => (meta_path, body),
        (false, None) => return Ok(None),
        (true, None) => return Err("response.meta.json without a response body file".into()),
        (false, Some(_)) => return Err("a response body without response.meta.json".into()),
    };
    let meta: Meta = serde_json::from_str(&read(&meta_path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let headers = meta
        .headers
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(format!("header {k} must be a string, found {other}")),
        })
        .collect::<std::result::Result<_, _>>()?;
    let body = fs::read(&body_path).map_err(|e| format!("{}: {e}", body_path.display()))?;
    let body = if body_path.ends_with("response.frames.json") { encode_frames(&body)? } else { body };
    Ok(Some(RecordedResponse { status: meta.status, headers, body }))
}

/// The files a recorded body may be in. `response.eventstream` is an AWS event stream as it
/// came over the wire; `response.frames.json` is one written by hand, readable, and encoded
/// to the wire format (lengths and CRCs) when the case loads.
const BODY_FILES: &[&str] =
    &["response.json", "response.sse", "response.txt", "response.eventstream", "response.frames.json"];

/// One frame of `response.frames.json`: `{"event": "messageStart", "payload": {...}}` or
/// `{"exception": "throttlingException", "payload": {...}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthoredFrame {
    event: Option<String>,
    exception: Option<String>,
    payload: Value,
}

fn encode_frames(json: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let frames: Vec<AuthoredFrame> = serde_json::from_slice(json).map_err(|e| format!("response.frames.json: {e}"))?;
    let mut out = Vec::new();
    for (i, frame) in frames.into_iter().enumerate() {
        let payload = serde_json::to_vec(&frame.payload).map_err(|e| e.to_string())?;
        out.extend(match (frame.event, frame.exception) {
            (Some(event), None) => crate::transport::eventstream::event_frame(&event, &payload),
            (None, Some(exception)) => crate::transport::eventstream::exception_frame(&exception, &payload),
            _ => return Err(format!("response.frames.json[{i}]: give exactly one of `event` and `exception`")),
        });
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Every case under `root` (`conformance/`), sorted by id.
pub fn discover(root: &Path) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    let entries = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        paths.sort();
        Ok(paths)
    };
    for provider_dir in entries(root)? {
        // Shared inputs, and the recorded ingress cases (clients' own requests to the
        // gateway, replayed by tests/ingress.rs), are not provider cases.
        if provider_dir.file_name().is_some_and(|n| n == "inputs" || n == "ingress") {
            continue;
        }
        for case_dir in entries(&provider_dir)? {
            if case_dir.join("case.toml").exists() {
                cases.push(Case::load(root, &case_dir)?);
            }
        }
    }
    Ok(cases)
}
