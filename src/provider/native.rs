//! A request in a provider's own wire format, passed through to deployments of that format.
//!
//! The gateway's `/v1/messages` route builds a [`Native`] from the client's body next to the
//! OpenAI-shaped request the router speaks. On each attempt, a provider whose format the
//! body is in (Anthropic's Messages) sends it as the client wrote it, with only the model
//! and the credentials replaced, and the answer's bytes are kept (a tap) as they pass
//! through the decoder, which still reads usage for receipts, budgets and spend. Any other
//! provider gets the translated request, and the answer is translated back.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// A client's own request body, sent as it came to providers of its format.
#[derive(Debug)]
pub struct Native {
    body: Bytes,
    /// Where the model's value (a JSON string, quotes included) is in `body`.
    model: Range<usize>,
    /// Where the whole `"model": "..."` member is, when its key is spelled plainly (no
    /// escapes): what a format that takes the model in its URL cuts out.
    member: Option<Range<usize>>,
    /// Where the `"stream": ...` member is, with the comma that separates it from its
    /// neighbour: what a format that streams by URL cuts out. `None` when there is none.
    stream_member: Option<Range<usize>>,
    /// Whether the body has a `stream` member whose key is not spelled plainly.
    odd_stream: bool,
    /// Whether the body names an `anthropic_version` of its own (a client written for
    /// Vertex AI or Bedrock).
    has_version_field: bool,
    version: Option<HeaderValue>,
    betas: Option<HeaderValue>,
    beta_query: bool,
    untranslatable: Option<String>,
    /// The body checked against our description of its format, once, when an attempt
    /// first translates it: the error that check found, if any.
    checked: std::sync::OnceLock<Option<String>>,
    pub(crate) tap: Arc<Tap>,
}

#[derive(Deserialize)]
struct ModelOnly<'a> {
    #[serde(borrow)]
    model: &'a RawValue,
    #[serde(borrow, default)]
    anthropic_version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream: Option<&'a RawValue>,
}

impl Native {
    /// A Messages request body: a JSON object with a string `model` at its top level.
    pub fn messages(body: Bytes) -> Result<Self> {
        let found: ModelOnly<'_> =
            serde_json::from_slice(&body).map_err(|e| Error::invalid(format!("invalid request: {e}"), None))?;
        let raw = found.model.get();
        if !raw.starts_with('"') {
            return Err(Error::invalid("`model` must be a string", Some("model")));
        }
        // The raw value borrows from `body`: its offset is where the model stands.
        let start = (raw.as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
        let model = start..start + raw.len();
        if body.get(model.clone()) != Some(raw.as_bytes()) {
            return Err(Error::invalid("cannot locate `model` in the request body", Some("model")));
        }
        let member = member_start(&body, model.start).map(|start| start..model.end);
        let has_version_field = found.anthropic_version.is_some();
        let stream_member = found.stream.and_then(|raw| removable(&body, raw, b"\"stream\""));
        let odd_stream = found.stream.is_some() && stream_member.is_none();
        Ok(Self {
            model,
            member,
            stream_member,
            odd_stream,
            has_version_field,
            body,
            version: None,
            betas: None,
            beta_query: false,
            untranslatable: None,
            checked: std::sync::OnceLock::new(),
            tap: Arc::default(),
        })
    }

    /// The client's `anthropic-version` header, sent in place of the configured one.
    #[must_use]
    pub fn version(mut self, version: Option<HeaderValue>) -> Self {
        self.version = version;
        self
    }

    /// The client's `anthropic-beta` header, sent with the configured betas.
    #[must_use]
    pub fn betas(mut self, betas: Option<HeaderValue>) -> Self {
        self.betas = betas;
        self
    }

    /// Whether the client called with `?beta=true` (kept on the upstream URL).
    #[must_use]
    pub fn beta_query(mut self, beta: bool) -> Self {
        self.beta_query = beta;
        self
    }

    /// Why the translated request cannot stand for this one (a server tool, an MCP server:
    /// something that only the native format carries, and whose loss would change the
    /// answer). A provider of another format then refuses the call with this reason.
    #[must_use]
    pub fn untranslatable(mut self, why: Option<String>) -> Self {
        self.untranslatable = why;
        self
    }

    /// Whether the body is a request our description of its format accepts: what an attempt
    /// checks before it translates the body for a provider of another format. A body sent
    /// as it came is the upstream's to judge (its own error comes back), so a field newer
    /// than our description never stops it; translating one that is not a request, though,
    /// could change what it asks for.
    pub(crate) fn check_translatable(&self) -> Result<()> {
        let found = self.checked.get_or_init(|| {
            serde_json::from_slice::<crate::spec::anthropic::CreateMessageParams>(&self.body)
                .err()
                .map(|e| e.to_string())
        });
        match found {
            Some(message) => Err(Error::invalid(message.clone(), None)),
            None => Ok(()),
        }
    }

    pub(crate) fn untranslatable_reason(&self) -> Option<&str> {
        self.untranslatable.as_deref()
    }

    pub(crate) fn version_header(&self) -> Option<&HeaderValue> {
        self.version.as_ref()
    }

    pub(crate) fn beta_header(&self) -> Option<&HeaderValue> {
        self.betas.as_ref()
    }

    pub(crate) fn beta_query_kept(&self) -> bool {
        self.beta_query
    }

    /// The body with `model` in place of the client's model.
    pub(crate) fn body_for(&self, model: &str) -> Result<Bytes> {
        let quoted = serde_json::to_string(model).map_err(|e| Error::invalid(e.to_string(), Some("model")))?;
        let (head, tail) = (&self.body[..self.model.start], &self.body[self.model.end..]);
        let mut out = BytesMut::with_capacity(head.len() + quoted.len() + tail.len());
        out.extend_from_slice(head);
        out.extend_from_slice(quoted.as_bytes());
        out.extend_from_slice(tail);
        Ok(out.freeze())
    }

    /// The body with `fields` in place of its `model` member, for formats that take the
    /// model in the URL and the version in the body (Claude on Vertex AI: `anthropic_version`).
    /// Everything else is byte for byte the client's, unless the client named
    /// `anthropic_version` itself or spelled `model` with escapes: the body is then re-written
    /// from its parsed form (members sorted, values alike, the client's fields kept over ours).
    pub(crate) fn body_without_model(&self, fields: &[(&str, serde_json::Value)]) -> Result<Bytes> {
        self.spliced(fields, false)
    }

    /// As [`Native::body_without_model`], and without the `stream` member either (Bedrock,
    /// which streams by URL and refuses members it does not know).
    pub(crate) fn body_without_model_or_stream(&self, fields: &[(&str, serde_json::Value)]) -> Result<Bytes> {
        self.spliced(fields, true)
    }

    fn spliced(&self, fields: &[(&str, serde_json::Value)], drop_stream: bool) -> Result<Bytes> {
        let invalid = |e: serde_json::Error| Error::invalid(e.to_string(), None);
        let rewrite = self.has_version_field || fields.is_empty() || (drop_stream && self.odd_stream);
        if let (Some(model), false) = (&self.member, rewrite) {
            let members = members(fields)?;
            let mut edits = vec![(model.clone(), members.as_bytes())];
            if let Some(stream) = self.stream_member.as_ref().filter(|_| drop_stream) {
                edits.push((stream.clone(), b"".as_slice()));
            }
            edits.sort_by_key(|(span, _)| span.start);
            let mut out = BytesMut::with_capacity(self.body.len() + members.len());
            let mut at = 0;
            for (span, with) in edits {
                out.extend_from_slice(&self.body[at..span.start]);
                out.extend_from_slice(with);
                at = span.end;
            }
            out.extend_from_slice(&self.body[at..]);
            return Ok(out.freeze());
        }
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&self.body).map_err(invalid)?;
        object.remove("model");
        if drop_stream {
            object.remove("stream");
        }
        for (key, value) in fields {
            object.entry(*key).or_insert_with(|| value.clone());
        }
        serde_json::to_vec(&object).map(Bytes::from).map_err(invalid)
    }

    /// The body with `model` in place of the client's model and `fields` first among its
    /// members (none of them where the client named `anthropic_version` itself).
    pub(crate) fn body_with_fields(&self, model: &str, fields: &[(&str, serde_json::Value)]) -> Result<Bytes> {
        let body = self.body_for(model)?;
        if self.has_version_field || fields.is_empty() {
            return Ok(body);
        }
        let members = members(fields)?;
        // `Native::messages` checked that the body is an object: it opens with `{`.
        let open = body.iter().position(|b| *b == b'{').map_or(0, |at| at + 1);
        let mut out = BytesMut::with_capacity(body.len() + members.len() + 1);
        out.extend_from_slice(&body[..open]);
        out.extend_from_slice(members.as_bytes());
        out.extend_from_slice(b",");
        out.extend_from_slice(&body[open..]);
        Ok(out.freeze())
    }

    /// Whether the last attempt went out in the native format: the answer's bytes are then
    /// the provider's, unchanged, and [`Native::take`] hands them over.
    pub fn answered(&self) -> bool {
        self.tap.state().native
    }

    /// The upstream's headers that describe the answer passed through: its `request-id`
    /// (what Anthropic's SDKs show as the request's id, and its support asks for) and its
    /// `anthropic-ratelimit-*` headers (the limits the upstream reports, which Claude Code
    /// reads), at most [`KEPT_HEADERS`] of them.
    pub fn upstream_headers(&self) -> Vec<(http::HeaderName, HeaderValue)> {
        std::mem::take(&mut self.tap.state().headers)
    }

    /// The answer's bytes that arrived since the last take (a stream's, as they come).
    pub fn take(&self) -> Bytes {
        let mut state = self.tap.state();
        match state.pieces.len() {
            0 => Bytes::new(),
            1 => state.pieces.pop_front().unwrap_or_default(),
            _ => {
                let mut out = BytesMut::with_capacity(state.pieces.iter().map(Bytes::len).sum());
                for piece in state.pieces.drain(..) {
                    out.extend_from_slice(&piece);
                }
                out.freeze()
            }
        }
    }

    /// Serves the translated answer instead (a guardrail changed it).
    pub fn abandon(&self) {
        let mut state = self.tap.state();
        state.native = false;
        state.pieces.clear();
    }
}

/// The span of the member whose value is `raw` and whose key is `key` (quoted), with one
/// comma: the one after it, or for the last member the one before it, so that cutting the
/// span out leaves a valid object. `None` when the key is not spelled plainly.
fn removable(body: &[u8], raw: &RawValue, key: &[u8]) -> Option<Range<usize>> {
    let value = (raw.get().as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = value + raw.get().len();
    let start = key_start(body, value, key)?;
    let after = end + body.get(end..)?.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[after] == b',' {
        return Some(start..after + 1);
    }
    // The last member: the comma before it goes (the model is always another member).
    let comma = body[..start].iter().rposition(|b| !b.is_ascii_whitespace())?;
    (body[comma] == b',').then_some(comma..end)
}

/// `"a":1,"b":2`: members to splice into an object.
fn members(fields: &[(&str, serde_json::Value)]) -> Result<String> {
    let mut out = String::new();
    for (key, value) in fields {
        if !out.is_empty() {
            out.push(',');
        }
        let pair = serde_json::to_string(&serde_json::json!({ *key: value }))
            .map_err(|e| Error::invalid(e.to_string(), None))?;
        out.push_str(&pair[1..pair.len() - 1]);
    }
    Ok(out)
}

/// Where the `"model"` key whose value starts at `value` begins; `None` when the key is not
/// spelled plainly. Replacing the span from there to the value's end with another member
/// keeps the object valid: the commas around it stay where they are.
fn member_start(body: &[u8], value: usize) -> Option<usize> {
    key_start(body, value, b"\"model\"")
}

/// Where the key `key` (quoted) of the member whose value starts at `value` begins.
fn key_start(body: &[u8], value: usize, key: &[u8]) -> Option<usize> {
    let before = body.get(..value)?;
    let colon = before.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if before[colon] != b':' {
        return None;
    }
    let key_end = before[..colon].iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    let start = key_end.checked_sub(key.len())?;
    let prev = before[..start].iter().rposition(|b| !b.is_ascii_whitespace())?;
    (&before[start..key_end] == key && matches!(before[prev], b',' | b'{')).then_some(start)
}

/// The answer's bytes as they pass, for the caller of a native request.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    state: Mutex<TapState>,
}

#[derive(Debug, Default)]
struct TapState {
    native: bool,
    pieces: VecDeque<Bytes>,
    headers: Vec<(http::HeaderName, HeaderValue)>,
}

/// The most upstream headers a passed-through answer keeps (Anthropic sends about a dozen
/// rate-limit headers; an upstream that sends thousands does not fill the answer with them).
pub const KEPT_HEADERS: usize = 32;

/// Whether an upstream's header describes the answer for its caller.
fn kept(name: &http::HeaderName) -> bool {
    name == "request-id" || name.as_str().starts_with("anthropic-ratelimit-")
}

impl Tap {
    fn state(&self) -> std::sync::MutexGuard<'_, TapState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new attempt: what an earlier one kept is dropped.
    pub(crate) fn begin(&self, native: bool) {
        let mut state = self.state();
        state.native = native;
        state.pieces.clear();
        state.headers.clear();
    }

    /// Keeps what the caller is given of the answer's headers ([`Native::upstream_headers`]).
    pub(crate) fn headers(&self, headers: &http::HeaderMap) {
        let mut state = self.state();
        if state.native {
            let kept = headers.iter().filter(|(name, _)| kept(name)).take(KEPT_HEADERS);
            state.headers = kept.map(|(name, value)| (name.clone(), value.clone())).collect();
        }
    }

    /// Keeps a piece of the answer (a clone of a reference-counted buffer); whether it was
    /// kept (the attempt went out natively and the piece is not empty).
    pub(crate) fn push(&self, piece: &Bytes) -> bool {
        let mut state = self.state();
        let kept = state.native && !piece.is_empty();
        if kept {
            state.pieces.push_back(piece.clone());
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_model_changes_and_everything_else_is_byte_for_byte() {
        let body = r#"{ "max_tokens":5,"model" : "claude-x" ,"messages":[{"role":"user","content":"model"}],"z":{"model":"inner"}}"#;
        let native = Native::messages(Bytes::from(body)).unwrap();
        let out = native.body_for("claude-sonnet-4-5-20250929").unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            body.replacen("\"claude-x\"", "\"claude-sonnet-4-5-20250929\"", 1)
        );
        // A model name that needs escaping is escaped.
        let out = native.body_for("a\"b").unwrap();
        assert!(std::str::from_utf8(&out).unwrap().contains(r#""model" : "a\"b" ,"#));
    }

    #[test]
    fn the_model_member_gives_way_to_the_version_and_the_rest_stays_byte_for_byte() {
        let version = [("anthropic_version", serde_json::json!("vertex-2023-10-16"))];
        for (body, want) in [
            (r#"{"model":"m", "max_tokens":5}"#, r#"{"anthropic_version":"vertex-2023-10-16", "max_tokens":5}"#),
            (
                r#"{ "max_tokens":5 ,  "model" :  "m"}"#,
                r#"{ "max_tokens":5 ,  "anthropic_version":"vertex-2023-10-16"}"#,
            ),
            (
                r#"{"a":{"model":"inner"},"model":"m","b":1}"#,
                r#"{"a":{"model":"inner"},"anthropic_version":"vertex-2023-10-16","b":1}"#,
            ),
        ] {
            let native = Native::messages(Bytes::from(body)).unwrap();
            assert_eq!(std::str::from_utf8(&native.body_without_model(&version).unwrap()).unwrap(), want);
        }
        // A key with escapes, or a version of the client's own: re-written, the client's kept.
        for body in
            [r#"{"mod\u0065l":"m","max_tokens":5}"#, r#"{"model":"m","anthropic_version":"mine","max_tokens":5}"#]
        {
            let native = Native::messages(Bytes::from(body)).unwrap();
            let out: serde_json::Value = serde_json::from_slice(&native.body_without_model(&version).unwrap()).unwrap();
            assert_eq!(out.get("model"), None, "{body}");
            assert_eq!(out["max_tokens"], 5);
            let want = if body.contains("mine") { "mine" } else { "vertex-2023-10-16" };
            assert_eq!(out["anthropic_version"], want);
        }
        // Bedrock: no `stream` either, wherever it stands, with its comma.
        let bedrock = [
            ("anthropic_version", serde_json::json!("bedrock-2023-05-31")),
            ("anthropic_beta", serde_json::json!(["b1"])),
        ];
        for (body, want) in [
            (r#"{"model":"m","stream":true}"#, r#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["b1"]}"#),
            (
                r#"{ "stream" : false , "model":"m", "x":1}"#,
                r#"{  "anthropic_version":"bedrock-2023-05-31","anthropic_beta":["b1"], "x":1}"#,
            ),
            (
                r#"{"x":1,"stream":true,"model":"m"}"#,
                r#"{"x":1,"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["b1"]}"#,
            ),
            (
                r#"{"model":"m","x":{"stream":1}}"#,
                r#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["b1"],"x":{"stream":1}}"#,
            ),
        ] {
            let native = Native::messages(Bytes::from(body)).unwrap();
            let out = native.body_without_model_or_stream(&bedrock).unwrap();
            assert_eq!(std::str::from_utf8(&out).unwrap(), want);
            assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
        }
        let native = Native::messages(Bytes::from_static(br#"{"model":"m","str\u0065am":true,"x":1}"#)).unwrap();
        let out: serde_json::Value =
            serde_json::from_slice(&native.body_without_model_or_stream(&bedrock).unwrap()).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"x": 1, "anthropic_version": "bedrock-2023-05-31", "anthropic_beta": ["b1"]})
        );

        // Counting keeps the model and puts the version first.
        let native = Native::messages(Bytes::from_static(br#" {"model":"m","max_tokens":5}"#)).unwrap();
        let out = native.body_with_fields("claude-x", &version).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#" {"anthropic_version":"vertex-2023-10-16","model":"claude-x","max_tokens":5}"#
        );
    }

    #[test]
    fn a_missing_or_non_string_model_is_refused() {
        assert!(Native::messages(Bytes::from_static(b"{\"messages\":[]}")).is_err());
        assert!(Native::messages(Bytes::from_static(b"{\"model\":5}")).is_err());
        assert!(Native::messages(Bytes::from_static(b"[1]")).is_err());
    }

    #[test]
    fn the_tap_keeps_only_native_attempts_and_each_attempt_starts_clean() {
        let native = Native::messages(Bytes::from_static(b"{\"model\":\"m\"}")).unwrap();
        native.tap.push(&Bytes::from_static(b"ignored"));
        assert!(!native.answered());
        assert!(native.take().is_empty());
        native.tap.begin(true);
        native.tap.push(&Bytes::from_static(b"first "));
        native.tap.begin(true);
        native.tap.push(&Bytes::from_static(b"a"));
        native.tap.push(&Bytes::from_static(b"b"));
        assert!(native.answered());
        assert_eq!(&native.take()[..], b"ab");
        assert!(native.take().is_empty());
        native.abandon();
        assert!(!native.answered());
    }
}
