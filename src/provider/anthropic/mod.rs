//! Anthropic Messages (`anthropic/...`, `POST /v1/messages`).
//!
//! Upstream docs: <https://docs.anthropic.com/en/api/messages> (requests and responses),
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming> (events),
//! <https://docs.anthropic.com/en/api/errors>. The base URL is the host root, as in LiteLLM
//! (`https://api.anthropic.com` -> `POST https://api.anthropic.com/v1/messages`).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{ApiError, Error, Result};
use crate::provider::native::Native;
use crate::provider::requests::{get, join_url, post_json, secret_header};
use crate::provider::{Adapter, Ctx, ProviderKind};
use crate::{ChatRequest, ChatResponse, ModelList};

pub(crate) mod error;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

/// Anthropic's API host.
pub const DEFAULT_BASE_URL: &str = crate::catalog::ANTHROPIC_BASE_URL;
/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// The Anthropic adapter and its settings.
#[derive(Clone, Debug)]
pub struct Anthropic {
    base_url: String,
    headers: HeaderMap,
}

impl Anthropic {
    /// An adapter for `base_url` (Anthropic's unless given) with the API key. An
    /// `anthropic-beta` header in `extra_headers` is sent with every request, merged with any
    /// betas a request names (`anthropic_beta`).
    pub fn new(base_url: Option<&str>, api_key: &SecretString, extra_headers: HeaderMap) -> Result<Self> {
        let mut headers = extra_headers;
        headers.insert("x-api-key", secret_header(api_key.expose_secret())?);
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        Ok(Self { base_url: base_url.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/').to_string(), headers })
    }
}

impl Anthropic {
    fn native_post(&self, native: &Native, ctx: &Ctx<'_>, path: &str) -> Result<http::Request<Bytes>> {
        let body = native.body_for(ctx.model)?;
        let mut headers = self.headers.clone();
        if let Some(version) = native.version_header() {
            headers.insert("anthropic-version", version.clone());
        }
        let headers = match native.beta_header() {
            // The common case, a client's header and none configured, is sent as it came.
            Some(betas) if !headers.contains_key("anthropic-beta") => {
                headers.insert("anthropic-beta", betas.clone());
                headers
            }
            Some(betas) => {
                let text = betas.to_str().map_err(|_| Error::invalid("`anthropic-beta` is not text", None))?;
                with_betas(headers, text.split(','))?
            }
            None => headers,
        };
        // The base may end with `/v1/messages` (LiteLLM's `api_base` rule); the count's path
        // goes after the messages path.
        let mut url = join_url(&self.base_url, "/v1/messages");
        url.push_str(path.trim_start_matches("/v1/messages"));
        if native.beta_query_kept() {
            url.push_str("?beta=true");
        }
        post_json(&url, body, &headers)
    }
}

/// What the mapping needs to know about a Claude model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelFacts {
    /// The most output tokens it can produce (the `max_tokens` used when the caller sets none).
    pub max_output: i64,
    /// Whether it takes structured output (`output_config.format`); older models get a forced tool.
    pub structured_outputs: bool,
}

/// Claude models by id prefix, most specific first. From Anthropic's models overview; the
/// price registry will carry these facts for every provider.
const MODELS: &[(&str, ModelFacts)] = &[
    ("claude-opus-4-5", ModelFacts { max_output: 64_000, structured_outputs: true }),
    ("claude-opus-4-1", ModelFacts { max_output: 32_000, structured_outputs: true }),
    ("claude-opus-4", ModelFacts { max_output: 32_000, structured_outputs: false }),
    ("claude-sonnet-4-5", ModelFacts { max_output: 64_000, structured_outputs: true }),
    ("claude-sonnet-4", ModelFacts { max_output: 64_000, structured_outputs: false }),
    ("claude-haiku-4-5", ModelFacts { max_output: 64_000, structured_outputs: true }),
    ("claude-3-7-sonnet", ModelFacts { max_output: 64_000, structured_outputs: false }),
    ("claude-3-5-sonnet", ModelFacts { max_output: 8_192, structured_outputs: false }),
    ("claude-3-5-haiku", ModelFacts { max_output: 8_192, structured_outputs: false }),
    ("claude-3-opus", ModelFacts { max_output: 4_096, structured_outputs: false }),
    ("claude-3-haiku", ModelFacts { max_output: 4_096, structured_outputs: false }),
];

/// The facts for `model`, if it is a known Claude model (dated and `-latest` ids included).
pub fn model_facts(model: &str) -> Option<ModelFacts> {
    MODELS.iter().find(|(prefix, _)| model.starts_with(prefix)).map(|(_, facts)| *facts)
}

impl Adapter for Anthropic {
    type Stream = stream::Decoder;

    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn encode_chat(&self, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        let (body, headers) = request::chat_body(req, ctx, &self.headers)?;
        post_json(&join_url(&self.base_url, "/v1/messages"), body, &headers)
    }

    /// The client's Messages body as it came, with the deployment's model, our credentials,
    /// the client's `anthropic-version` (else ours) and its betas after the configured ones;
    /// `?beta=true` is kept.
    fn encode_native(&self, native: &Native, ctx: &Ctx<'_>) -> Option<Result<http::Request<Bytes>>> {
        Some(self.native_post(native, ctx, "/v1/messages"))
    }

    /// `POST /v1/messages/count_tokens` with the client's body, as [`Self::encode_native`].
    fn encode_native_count(&self, native: &Native, ctx: &Ctx<'_>) -> Option<Result<http::Request<Bytes>>> {
        Some(self.native_post(native, ctx, "/v1/messages/count_tokens"))
    }

    fn counts_native(&self, _model: &str) -> bool {
        true
    }

    fn decode_chat(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
        response::decode(response, ctx)
    }

    fn stream_decoder(&self, ctx: &Ctx<'_>) -> stream::Decoder {
        stream::Decoder::new(ctx)
    }

    fn decode_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
        error::decode_error(status, headers, body)
    }

    fn encode_models(&self) -> Result<http::Request<Bytes>> {
        get(&join_url(&self.base_url, "/v1/models"), &self.headers)
    }

    fn decode_models(&self, response: http::Response<Bytes>) -> Result<ModelList> {
        response::decode_models(response)
    }
}

/// `headers` with `betas` after the `anthropic-beta` it holds, each beta once.
pub(crate) fn with_betas<'b>(mut headers: HeaderMap, betas: impl IntoIterator<Item = &'b str>) -> Result<HeaderMap> {
    let configured = match headers.get("anthropic-beta") {
        Some(value) => value.to_str().map_err(|_| Error::invalid("`anthropic-beta` is not text", None))?.to_string(),
        None => String::new(),
    };
    let mut all: Vec<&str> = Vec::new();
    let theirs = betas.into_iter().map(|b: &'b str| -> &str { b });
    for beta in configured.split(',').chain(theirs).map(str::trim).filter(|b| !b.is_empty()) {
        if !all.contains(&beta) {
            all.push(beta);
        }
    }
    if all.is_empty() {
        return Ok(headers);
    }
    let value = HeaderValue::from_str(&all.join(","))
        .map_err(|_| Error::invalid("`anthropic-beta` holds characters not allowed in a header", None))?;
    headers.insert("anthropic-beta", value);
    Ok(headers)
}

/// The OpenAI chat parameters Anthropic has no equivalent for ([`crate::provider::params`]):
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
    "metadata",
    "store",
    "functions",
    "function_call",
];

/// The error for a request field Anthropic cannot express.
pub(crate) fn unsupported(feature: impl Into<String>) -> Error {
    Error::Unsupported { provider: ProviderKind::Anthropic, feature: feature.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_facts_match_dated_ids_and_the_most_specific_prefix() {
        assert_eq!(model_facts("claude-sonnet-4-5-20250929").map(|f| f.max_output), Some(64_000));
        assert_eq!(model_facts("claude-opus-4-1-20250805").map(|f| f.structured_outputs), Some(true));
        assert_eq!(model_facts("claude-opus-4-20250514").map(|f| f.structured_outputs), Some(false));
        assert_eq!(model_facts("claude-3-5-haiku-latest").map(|f| f.max_output), Some(8_192));
        assert_eq!(model_facts("claude-next"), None);
    }
}
