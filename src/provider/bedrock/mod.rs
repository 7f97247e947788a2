//! Amazon Bedrock through the Converse API (`bedrock/...`): `POST /model/{id}/converse`
//! and `/converse-stream`, and embeddings through `InvokeModel`; a `/v1/messages` request
//! to Claude goes to `InvokeModel` in Anthropic's format, passed through (see `invoke`).
//!
//! Upstream docs: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>,
//! `ConverseStream` (same request; an AWS event stream answer), and the model parameters
//! pages for Titan and Cohere embeddings. Requests are signed with SigV4 (service
//! `bedrock`) by `aws-sigv4`, or carry a Bedrock API key as a bearer token.
//!
//! Model strings are `bedrock/<model id>`: a foundation model (`anthropic.claude-3-5-sonnet-
//! 20240620-v1:0`), a cross-region inference profile (`us.anthropic.claude-...`) or an ARN.
//! LiteLLM's `bedrock/converse/<id>` and `bedrock/invoke/<id>` spellings are accepted too
//! (`converse/` keeps `/v1/messages` requests on Converse, translated). The id is one path segment,
//! percent-encoded (`:` as `%3A`, `/` in ARNs as `%2F`); the signature is computed over the
//! encoded path, encoded once more, as SigV4 requires for every service but S3.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

use std::collections::VecDeque;

use crate::error::{ApiError, Error, Result};
use crate::provider::native::Native;
use crate::provider::requests::{bearer, join_url, post_json};
use crate::provider::{Adapter, Ctx, Flow, ProviderKind, StreamDecode, anthropic};
use crate::transport::eventstream::{EventFrame, EventStreamFramer};
use crate::{ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};

mod embed;
pub(crate) mod error;
pub mod invoke;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

/// The service name requests are signed for.
pub const SIGNING_NAME: &str = "bedrock";

/// Characters kept as they are in a path segment (RFC 3986 unreserved); all else is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// How requests are authenticated.
#[derive(Clone)]
pub enum BedrockAuth {
    /// SigV4 with IAM credentials.
    SigV4 {
        /// `AWS_ACCESS_KEY_ID`.
        access_key_id: String,
        /// `AWS_SECRET_ACCESS_KEY`.
        secret_access_key: SecretString,
        /// `AWS_SESSION_TOKEN`, for temporary credentials.
        session_token: Option<SecretString>,
    },
    /// A Bedrock API key (`AWS_BEARER_TOKEN_BEDROCK`), sent as a bearer token.
    ApiKey(SecretString),
}

impl std::fmt::Debug for BedrockAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SigV4 { access_key_id, session_token, .. } => f
                .debug_struct("SigV4")
                .field("access_key_id", access_key_id)
                .field("session_token", &session_token.as_ref().map(|_| "[redacted]"))
                .finish_non_exhaustive(),
            Self::ApiKey(_) => f.write_str("ApiKey([redacted])"),
        }
    }
}

/// The Bedrock adapter and its settings.
#[derive(Clone, Debug)]
pub struct Bedrock {
    base_url: String,
    region: String,
    auth: BedrockAuth,
    headers: HeaderMap,
}

impl Bedrock {
    /// An adapter for `region`, at `base_url` (by default
    /// `https://bedrock-runtime.<region>.amazonaws.com`; a VPC endpoint or proxy otherwise).
    pub fn new(region: &str, base_url: Option<&str>, auth: BedrockAuth, extra_headers: HeaderMap) -> Result<Self> {
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::Config(format!("`{region}` is not an AWS region (like us-east-1)")));
        }
        let base_url = base_url
            .map(|b| b.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
        Ok(Self { base_url, region: region.to_string(), auth, headers: extra_headers })
    }

    /// The URL of an operation (`converse`, `converse-stream`, `invoke`) on a model.
    fn url(&self, model: &str, operation: &str) -> String {
        let id = model.strip_prefix("converse/").or_else(|| model.strip_prefix("invoke/")).unwrap_or(model);
        join_url(&self.base_url, &format!("/model/{}/{operation}", utf8_percent_encode(id, SEGMENT)))
    }

    /// A POST of `body`, authenticated.
    fn post(&self, url: &str, body: Bytes, accept: &'static str) -> Result<http::Request<Bytes>> {
        let mut headers = self.headers.clone();
        headers.insert(http::header::ACCEPT, HeaderValue::from_static(accept));
        if let BedrockAuth::ApiKey(key) = &self.auth {
            bearer(&mut headers, Some(key))?;
        }
        let mut request = post_json(url, body, &headers)?;
        if let BedrockAuth::SigV4 { .. } = &self.auth {
            sign_request(&mut request, &self.auth, &self.region, SIGNING_NAME, SystemTime::now())?;
        }
        Ok(request)
    }
}

/// Signs `request` with SigV4 for `service` in `region` at `time`: adds `x-amz-date`,
/// `x-amz-security-token` (with temporary credentials) and `authorization`. Every header the
/// request has is signed, with `host` taken from the URL.
pub fn sign_request(
    request: &mut http::Request<Bytes>,
    auth: &BedrockAuth,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<()> {
    let BedrockAuth::SigV4 { access_key_id, secret_access_key, session_token } = auth else {
        return Ok(());
    };
    let identity = aws_credential_types::Credentials::new(
        access_key_id,
        secret_access_key.expose_secret(),
        session_token.as_ref().map(|t| t.expose_secret().to_string()),
        None,
        "switchyard",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| Error::Config(format!("cannot sign the Bedrock request: {e}")))?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            value
                .to_str()
                .map(|v| (name.as_str(), v))
                .map_err(|_| Error::Config(format!("header `{name}` is not text and cannot be signed")))
        })
        .collect::<Result<_>>()?;
    let uri = request.uri().to_string();
    let signable =
        SignableRequest::new(request.method().as_str(), &uri, headers.into_iter(), SignableBody::Bytes(request.body()))
            .map_err(|e| Error::Config(format!("cannot sign the Bedrock request: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| Error::Config(format!("cannot sign the Bedrock request: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

impl Adapter for Bedrock {
    type Stream = Decoder;

    fn kind(&self) -> ProviderKind {
        ProviderKind::Bedrock
    }

    fn encode_chat(&self, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        let body = request::chat_body(req, ctx)?;
        if ctx.stream {
            self.post(&self.url(ctx.model, "converse-stream"), body, "application/vnd.amazon.eventstream")
        } else {
            self.post(&self.url(ctx.model, "converse"), body, "application/json")
        }
    }

    /// Claude's input tokens, counted by CountTokens with the InvokeModel body (see `invoke`).
    fn encode_native_count(&self, native: &Native, ctx: &Ctx<'_>) -> Option<Result<http::Request<Bytes>>> {
        invoke::takes_messages(ctx.model).then(|| {
            invoke::count_body(native)
                .and_then(|body| self.post(&self.url(ctx.model, "count-tokens"), body, "application/json"))
        })
    }

    fn counts_native(&self, model: &str) -> bool {
        invoke::takes_messages(model)
    }

    /// Claude's Messages body as the client sent it, to InvokeModel (see `invoke`).
    fn encode_native(&self, native: &Native, ctx: &Ctx<'_>) -> Option<Result<http::Request<Bytes>>> {
        if !invoke::takes_messages(ctx.model) {
            return None;
        }
        Some(invoke::body(native).and_then(|body| {
            if ctx.stream {
                self.post(
                    &self.url(ctx.model, "invoke-with-response-stream"),
                    body,
                    "application/vnd.amazon.eventstream",
                )
            } else {
                self.post(&self.url(ctx.model, "invoke"), body, "application/json")
            }
        }))
    }

    fn decode_chat(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
        if ctx.native {
            anthropic::response::decode(response, ctx).map_err(|e| e.answered_by(ProviderKind::Bedrock))
        } else {
            response::decode(response, ctx)
        }
    }

    fn stream_decoder(&self, ctx: &Ctx<'_>) -> Decoder {
        if ctx.native {
            Decoder::Invoke(invoke::Decoder::new(ctx))
        } else {
            Decoder::Converse(stream::Decoder::new(ctx))
        }
    }

    fn decode_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
        error::decode_error(status, headers, body)
    }

    fn encode_embed(&self, req: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        let body = embed::embed_body(req, ctx)?;
        self.post(&self.url(ctx.model, "invoke"), body, "application/json")
    }

    fn decode_embed(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<EmbeddingResponse> {
        response::decode_embeddings(response, ctx)
    }
}

/// A Bedrock stream: Converse's events, or InvokeModel's chunks of Anthropic's events.
#[derive(Debug)]
pub enum Decoder {
    /// ConverseStream.
    Converse(stream::Decoder),
    /// InvokeModelWithResponseStream, for a native Messages request.
    Invoke(invoke::Decoder),
}

impl StreamDecode for Decoder {
    type Framer = EventStreamFramer;

    fn framer(&self) -> EventStreamFramer {
        EventStreamFramer::new(ProviderKind::Bedrock)
    }

    fn on_headers(&mut self, headers: &HeaderMap) {
        match self {
            Self::Converse(d) => d.on_headers(headers),
            Self::Invoke(d) => d.on_headers(headers),
        }
    }

    fn on_frame(&mut self, frame: EventFrame, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        match self {
            Self::Converse(d) => d.on_frame(frame, out),
            Self::Invoke(d) => d.on_frame(frame, out),
        }
    }

    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<()> {
        match self {
            Self::Converse(d) => d.on_eof(out),
            Self::Invoke(d) => d.on_eof(out),
        }
    }

    fn renders_native(&self) -> bool {
        matches!(self, Self::Invoke(_))
    }

    fn take_native(&mut self) -> Bytes {
        match self {
            Self::Converse(d) => d.take_native(),
            Self::Invoke(d) => d.take_native(),
        }
    }
}

/// The OpenAI chat parameters Converse has no equivalent for ([`crate::provider::params`]):
/// refused with `Unsupported`, or dropped with `drop_params`.
pub const UNSUPPORTED_PARAMS: &[&str] = &[
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "audio",
    "prediction",
    "prompt_cache_key",
    "verbosity",
    "web_search_options",
    "service_tier",
    "store",
    "parallel_tool_calls",
    "functions",
    "function_call",
];

/// The error for a request field Bedrock cannot express.
pub(crate) fn unsupported(feature: impl Into<String>) -> Error {
    Error::Unsupported { provider: ProviderKind::Bedrock, feature: feature.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn auth(token: Option<&str>) -> BedrockAuth {
        BedrockAuth::SigV4 {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.to_string().into(),
            session_token: token.map(|t| t.to_string().into()),
        }
    }

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)
    }

    fn authorization(request: &http::Request<Bytes>) -> &str {
        request.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// AWS's published SigV4 test-suite vectors (`get-vanilla`, `post-vanilla`): the signing
    /// itself is right, not merely present.
    #[test]
    fn signatures_match_aws_test_suite_vectors() {
        for (method, expected) in [
            ("GET", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            ("POST", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ] {
            let mut request = http::Request::builder()
                .method(method)
                .uri("https://example.amazonaws.com/")
                .body(Bytes::new())
                .unwrap_or_default();
            sign_request(&mut request, &auth(None), "us-east-1", "service", suite_time()).unwrap();
            assert_eq!(
                authorization(&request),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature={expected}"
                ),
                "{method}"
            );
            assert_eq!(request.headers()["x-amz-date"], "20150830T123600Z");
        }
    }

    /// A Converse call for a model id with `:`: the URL carries `%3A`, the signature is over
    /// the path encoded twice. Expected values computed independently (a short Python SigV4
    /// written from AWS's specification, with hashlib and hmac).
    #[test]
    fn a_converse_request_is_signed_over_its_encoded_path_and_body() {
        let model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
        let bedrock = Bedrock::new("us-east-1", None, auth(None), HeaderMap::new()).unwrap();
        let url = bedrock.url(model, "converse");
        assert_eq!(
            url,
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        let body = Bytes::from_static(br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#);
        for (token, signed, expected) in [
            (None, "content-type;host;x-amz-date", "44a10e4bdeff9fd3029689bd5cfaa6209b6133070777e52584da415f8283559e"),
            (
                Some("AQoDYXdzEXAMPLETOKEN"),
                "content-type;host;x-amz-date;x-amz-security-token",
                "b56276920ff138bbc46dff8ea9e5d434a0eb8b6b90c57914a8ca36265baeee3b",
            ),
        ] {
            let mut request = post_json(&url, body.clone(), &HeaderMap::new()).unwrap();
            sign_request(&mut request, &auth(token), "us-east-1", SIGNING_NAME, suite_time()).unwrap();
            assert_eq!(
                authorization(&request),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, \
                     SignedHeaders={signed}, Signature={expected}"
                )
            );
            if let Some(token) = token {
                assert_eq!(request.headers()["x-amz-security-token"], token);
            }
        }
    }

    #[test]
    fn profiles_and_arns_are_one_encoded_segment() {
        let bedrock = Bedrock::new("eu-west-1", Some("http://proxy/"), auth(None), HeaderMap::new()).unwrap();
        assert_eq!(
            bedrock.url("us.anthropic.claude-sonnet-4-20250514-v1:0", "converse-stream"),
            "http://proxy/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream"
        );
        assert_eq!(
            bedrock.url("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-3-70b", "converse"),
            "http://proxy/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-3-70b/converse"
        );
        assert_eq!(
            bedrock.url("converse/amazon.nova-pro-v1:0", "converse"),
            "http://proxy/model/amazon.nova-pro-v1%3A0/converse"
        );
    }

    #[test]
    fn a_bad_region_is_a_configuration_error() {
        assert!(Bedrock::new("us-east-1/../x", None, auth(None), HeaderMap::new()).is_err());
        assert!(Bedrock::new("", None, auth(None), HeaderMap::new()).is_err());
    }
}
