//! Recording a new case from a live endpoint (`switchyard conformance record`): an input is
//! sent through the provider's adapter and the recording proxy, and the exchange is written
//! as a case folder that replays offline.
//!
//! Nothing secret is kept: request and response headers are kept by an allow-list (so keys,
//! organisation and project ids, cookies and request ids are dropped), and the API key is
//! replaced wherever it appears in a body. An existing case is never overwritten without
//! `force`. The recorded case is replayed at once, its `output.snap` written from that
//! replay, and replayed again to prove it green.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::capture::{Capture, Exchange};
use super::case::Operation;
use super::live::{LiveOptions, Target};
use super::report::CaseReport;
use super::suite::{check_case, redact, snapshot_text};
use super::{Case, replay};
use crate::error::{Error, Result};

/// Request headers kept in `request.json` (others, credentials among them, are dropped).
pub const KEPT_REQUEST_HEADERS: &[&str] = &["content-type", "accept", "anthropic-version", "anthropic-beta"];

/// Response headers kept in `response.meta.json`.
pub const KEPT_RESPONSE_HEADERS: &[&str] = &["content-type", "retry-after", "retry-after-ms"];

/// What to record.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// The endpoint, as for a live run (its key, its model, its timeout).
    pub live: LiveOptions,
    /// The `conformance/` folder.
    pub root: PathBuf,
    /// The new case's name (its folder under the provider's).
    pub case: String,
    /// The input in `inputs/` to send (by default the input of the case's name).
    pub input: Option<String>,
    /// chat, chat_stream, embed or models (by default from the input: `stream: true` is a
    /// stream, an `input` field embeddings).
    pub operation: Option<Operation>,
    /// What the case shows (by default, where the input came from).
    pub description: Option<String>,
    /// Replace an existing case.
    pub force: bool,
}

/// A recorded case.
#[derive(Debug)]
pub struct Recorded {
    /// Its folder.
    pub dir: PathBuf,
    /// The files written.
    pub files: Vec<String>,
    /// Its replay, with every check.
    pub replay: CaseReport,
}

/// Records the case; see the module's documentation.
pub async fn record(options: &RecordOptions) -> Result<Recorded> {
    let target = Target::resolve(&options.live)?;
    let plan = Plan::new(options, &target)?;

    let capture = Capture::start(&target.origin, options.live.timeout).await?;
    let client = target.client(capture.origin(), options.live.api_key.as_deref())?;
    let result = super::replay::perform(&client, target.kind, plan.operation, plan.input.clone()).await.map(drop);
    let exchanges = capture.exchanges();
    let [exchange] = exchanges.as_slice() else {
        return Err(Error::Config(format!("expected one exchange with the endpoint, saw {}", exchanges.len())));
    };
    if let Some(transport) = &exchange.error {
        return Err(Error::Config(format!("the endpoint could not be reached: {transport}")));
    }
    // A failure the endpoint answered is a case too (with its expectation); one raised
    // locally is not something to record.
    let expect = match &result {
        Ok(()) => None,
        Err(err) if err.status().is_some() => Some(err),
        Err(err) => return Err(Error::Config(format!("the call failed before an answer could be recorded: {err}"))),
    };

    let mut folder = Folder::create(&plan.dir, options.live.api_key.as_deref())?;
    folder.write("case.toml", case_toml(options, &target, &plan, expect).as_bytes())?;
    folder.write("request.json", &pretty(&request_json(exchange, &|b| folder.scrub(b))?))?;
    write_response(&mut folder, exchange)?;

    // The snapshot is what the replay of these files gives; then the case must replay green.
    let case = Case::load(&options.root, &plan.dir)?;
    let first = replay(&case).await?;
    if !first.problems.is_empty() {
        return Err(Error::Config(format!(
            "the recorded case does not replay: {} (its files are in {})",
            first.problems.join("; "),
            plan.dir.display()
        )));
    }
    folder.write("output.snap", snapshot_text(&case.spec.description, &redact(first.output())).as_bytes())?;
    let report = check_case(&case, &HashMap::new()).await;
    let files = folder.files;
    Ok(Recorded { dir: plan.dir, files, replay: report })
}

/// What a recording sends and where it goes, checked before anything is sent.
struct Plan {
    dir: PathBuf,
    input_name: String,
    input: Value,
    operation: Operation,
    model: String,
    /// Fields the recording added to the input (kept in the case so its replay sends them).
    overrides: Map<String, Value>,
}

impl Plan {
    fn new(options: &RecordOptions, target: &Target) -> Result<Self> {
        if target.direct() {
            return Err(Error::Config(
                "Bedrock requests signed with SigV4 cannot pass through the recording proxy (the signature covers the host); \
                 record with a Bedrock API key (--api-key-env AWS_BEARER_TOKEN_BEDROCK)"
                    .into(),
            ));
        }
        if options.case.is_empty() || !options.case.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(Error::Config(format!("case name `{}`: use letters, digits, `_` and `-`", options.case)));
        }
        let dir = options.root.join(target.kind.id()).join(&options.case);
        if dir.exists() && !options.force {
            return Err(Error::Config(format!("{} exists; pass --force to replace it", dir.display())));
        }
        let input_name = options.input.clone().unwrap_or_else(|| options.case.clone());
        let input_path = options.root.join("inputs").join(format!("{input_name}.json"));
        let input_text = std::fs::read_to_string(&input_path)
            .map_err(|e| Error::Config(format!("{}: {e} (choose an input with --input)", input_path.display())))?;
        let mut input: Value =
            serde_json::from_str(&input_text).map_err(|e| Error::Config(format!("{}: {e}", input_path.display())))?;
        let operation = options.operation.unwrap_or(if input.get("stream") == Some(&Value::Bool(true)) {
            Operation::ChatStream
        } else if input.get("input").is_some() {
            Operation::Embed
        } else {
            Operation::Chat
        });
        let model = target.model(options.live.model.as_deref().unwrap_or("model"), operation == Operation::Embed);
        if options.live.model.is_none() && (operation != Operation::Embed || options.live.embedding_model.is_none()) {
            return Err(Error::Config("--model is needed to record".into()));
        }
        let mut overrides = Map::new();
        if let Some(object) = input.as_object_mut() {
            object.insert("model".into(), Value::String(model.clone()));
            let before = object.get("max_tokens").cloned();
            target.bound_output(object);
            if let Some(added) = object.get("max_tokens").filter(|_| before.is_none()) {
                overrides.insert("max_tokens".into(), added.clone());
            }
        }
        Ok(Self { dir, input_name, input, operation, model, overrides })
    }
}

/// The case's folder, made empty, and the files written to it so far.
struct Folder<'a> {
    dir: &'a std::path::Path,
    secret: Option<&'a str>,
    files: Vec<String>,
}

impl<'a> Folder<'a> {
    fn create(dir: &'a std::path::Path, secret: Option<&'a str>) -> Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
        Ok(Self { dir, secret: secret.filter(|k| !k.is_empty()), files: Vec::new() })
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        self.files.push(name.to_string());
        Ok(())
    }

    /// The bytes with the API key replaced wherever it appears.
    fn scrub(&self, bytes: &[u8]) -> Vec<u8> {
        match (self.secret, std::str::from_utf8(bytes)) {
            (Some(key), Ok(text)) if text.contains(key) => text.replace(key, "[scrubbed]").into_bytes(),
            _ => bytes.to_vec(),
        }
    }
}

/// `case.toml`: what the case shows, how to replay it, and the failure it expects.
fn case_toml(options: &RecordOptions, target: &Target, plan: &Plan, expect: Option<&Error>) -> String {
    let description = options
        .description
        .clone()
        .unwrap_or_else(|| format!("Input `{}` recorded from {} on {}.", plan.input_name, target.origin, today()));
    let mut toml = format!(
        "description = {}\noperation = \"{}\"\nmodel = {}\n",
        toml_string(&description),
        operation_name(plan.operation),
        toml_string(&plan.model)
    );
    if plan.operation != Operation::Models {
        let _ = writeln!(toml, "input = {}", toml_string(&plan.input_name));
    }
    let _ = writeln!(toml, "source = \"recorded {}\"", today());
    if !plan.overrides.is_empty() {
        toml.push_str("\n[input_overrides]\n");
        for (name, value) in &plan.overrides {
            let _ = writeln!(toml, "{name} = {value}");
        }
    }
    let default_base = target.kind.default_base_path();
    if target.base_path != default_base {
        let _ = write!(toml, "\n[settings]\nbase_path = {}\n", toml_string(&target.base_path));
    }
    if let Some(err) = expect {
        let _ = write!(toml, "\n[expect]\nerror = \"{}\"\n", err.kind().name());
        if let Some(status) = err.status() {
            let _ = writeln!(toml, "status = {status}");
        }
        if let Some(wait) = err.retry_after() {
            let _ = writeln!(toml, "retry_after_ms = {}", wait.as_millis());
        }
    }
    toml
}

/// The response body (in a file named for its format) and `response.meta.json`.
fn write_response(folder: &mut Folder<'_>, exchange: &Exchange) -> Result<()> {
    let content_type = exchange.response_header("content-type").unwrap_or("").to_ascii_lowercase();
    let body_file = if content_type.contains("event-stream") {
        "response.sse"
    } else if content_type.contains("amazon.eventstream") {
        "response.eventstream"
    } else if serde_json::from_slice::<Value>(&exchange.response_body).is_ok() {
        "response.json"
    } else {
        "response.txt"
    };
    folder.write(body_file, &folder.scrub(&exchange.response_body))?;
    let headers: Map<String, Value> = exchange
        .response_headers
        .iter()
        .filter(|(name, _)| KEPT_RESPONSE_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| (name.to_ascii_lowercase(), Value::String(value.clone())))
        .collect();
    folder.write("response.meta.json", &pretty(&json!({"status": exchange.status, "headers": headers})))
}

fn request_json(exchange: &Exchange, scrub: &dyn Fn(&[u8]) -> Vec<u8>) -> Result<Value> {
    let headers: Map<String, Value> = exchange
        .request_headers
        .iter()
        .filter(|(name, _)| KEPT_REQUEST_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| (name.to_ascii_lowercase(), Value::String(value.clone())))
        .collect();
    let query: Map<String, Value> = exchange
        .query
        .as_deref()
        .map(|q| url_pairs(q).into_iter().filter(|(k, _)| k != "key").map(|(k, v)| (k, Value::String(v))).collect())
        .unwrap_or_default();
    let mut out = json!({"method": exchange.method, "path": exchange.path, "headers": headers});
    if !query.is_empty() {
        out["query"] = Value::Object(query);
    }
    if !exchange.request_body.is_empty() {
        let body = scrub(&exchange.request_body);
        out["body"] =
            serde_json::from_slice(&body).map_err(|e| Error::Config(format!("the request body is not JSON: {e}")))?;
    }
    Ok(out)
}

/// `a=1&b=x%20y` as pairs, decoded as the replay reads a request's query (`url`'s
/// `query_pairs`, which is this crate).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Chat => "chat",
        Operation::ChatStream => "chat_stream",
        Operation::Embed => "embed",
        Operation::Models => "models",
    }
}

/// Today's date, UTC, as `YYYY-MM-DD`.
fn today() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_queries() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(
            url_pairs("api-version=2024-10-21&alt=sse&x=a%20b"),
            vec![("api-version".into(), "2024-10-21".into()), ("alt".into(), "sse".into()), ("x".into(), "a b".into())]
        );
    }
}
