//! Azure OpenAI (`azure/<deployment>`): OpenAI's wire format behind deployment URLs.
//!
//! Upstream docs: <https://learn.microsoft.com/azure/ai-foundry/openai/reference>. The model
//! string names the *deployment*; the endpoint is the resource URL
//! (`https://<resource>.openai.azure.com`). Authentication is an `api-key` header, or a
//! Microsoft Entra ID token sent as a bearer token. Requests go to
//! `{endpoint}/openai/deployments/{deployment}/{operation}?api-version={version}`, or with
//! `api_version = "v1"` to the version-less `{endpoint}/openai/v1/{operation}`.
//!
//! Azure answers are OpenAI's plus `prompt_filter_results` and per-choice
//! `content_filter_results`. Both are kept in the generated types' `extra` maps, so a caller
//! (or the gateway) sees the filter verdicts exactly as Azure sent them; decoding is
//! OpenAI's (`openai::response`). `tests/conformance.rs` pins this with the Azure cases.
//!
//! Azure streams are OpenAI's (decoded by `openai::stream::Decoder`). The first event often
//! has `choices: []` and only `prompt_filter_results`; it is passed on as a chunk, as Azure
//! sent it, and `ChunkAccumulator` skips it when assembling.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use secrecy::SecretString;

use crate::error::{ApiError, Error, Result};
use crate::provider::ProviderKind;
use crate::provider::openai::{OpenAiFormat, Operation};
use crate::provider::requests::{bearer, secret_header};

pub(crate) mod error;
pub(crate) mod request;

/// The API version used when none is configured (the latest GA version of the data plane).
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// How requests authenticate.
#[derive(Clone, Debug)]
pub enum AzureAuth {
    /// The resource key, as an `api-key` header.
    ApiKey(SecretString),
    /// A Microsoft Entra ID access token, as `Authorization: Bearer`.
    EntraToken(SecretString),
}

/// The Azure OpenAI adapter and its settings.
#[derive(Clone, Debug)]
pub struct Azure {
    endpoint: String,
    api_version: String,
    headers: HeaderMap,
}

impl Azure {
    /// An adapter for the resource at `endpoint`.
    pub fn new(endpoint: &str, api_version: Option<&str>, auth: &AzureAuth, extra_headers: HeaderMap) -> Result<Self> {
        if endpoint.is_empty() {
            return Err(Error::Config("azure needs an endpoint (AZURE_API_BASE or base_url)".into()));
        }
        let mut headers = extra_headers;
        match auth {
            AzureAuth::ApiKey(key) => {
                headers.insert("api-key", secret_header(secrecy::ExposeSecret::expose_secret(key))?);
            }
            AzureAuth::EntraToken(token) => bearer(&mut headers, Some(token))?,
        }
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            api_version: api_version.unwrap_or(DEFAULT_API_VERSION).to_string(),
            headers,
        })
    }
}

impl OpenAiFormat for Azure {
    fn provider(&self) -> ProviderKind {
        ProviderKind::Azure
    }

    fn url(&self, operation: Operation, deployment: &str) -> String {
        let deployment = (operation != Operation::Models).then_some(deployment);
        request::url(&self.endpoint, &self.api_version, deployment, operation.path())
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn map_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
        error::decode_error(status, headers, body)
    }
}
