//! From settings (given, or from the environment) to a configured [`Provider`].

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::provider::anthropic::Anthropic;
use crate::provider::azure::{Azure, AzureAuth};
use crate::provider::bedrock::{Bedrock, BedrockAuth};
use crate::provider::cohere::Cohere;
use crate::provider::gemini::Gemini;
use crate::provider::mistral::Mistral;
use crate::provider::openai::{DEFAULT_BASE_URL, OpenAi};
use crate::provider::openai_compat::OpenAiCompat;
use crate::provider::requests::header_map;
use crate::provider::vertex_ai::{VertexAi, VertexCredentials};
use crate::provider::{Provider, ProviderKind, mock::Mock};

/// How to reach one provider. Unset fields fall back to the environment (see
/// [`ProviderSettings::env_vars`]) when the client reads it.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ProviderSettings {
    /// The API key.
    pub api_key: Option<SecretString>,
    /// The API base (`https://api.groq.com/openai/v1`; for Azure the resource endpoint).
    pub base_url: Option<String>,
    /// Azure: the API version (`2024-10-21`, or `v1`).
    pub api_version: Option<String>,
    /// Azure: a Microsoft Entra ID token, used instead of a key.
    pub auth_token: Option<SecretString>,
    /// OpenAI: the organization id.
    pub organization: Option<String>,
    /// OpenAI: the project id. Vertex AI: the Google Cloud project.
    pub project: Option<String>,
    /// Vertex AI: the location (`us-central1`, `global`, ...). Bedrock: the AWS region.
    pub location: Option<String>,
    /// Vertex AI: a service account's JSON key, or a path to it.
    pub credentials: Option<SecretString>,
    /// Bedrock: the AWS access key id (with `aws_secret_access_key`, for SigV4).
    pub aws_access_key_id: Option<String>,
    /// Bedrock: the AWS secret access key.
    pub aws_secret_access_key: Option<SecretString>,
    /// Bedrock: the session token of temporary credentials.
    pub aws_session_token: Option<SecretString>,
    /// Extra headers sent with every request.
    pub headers: Vec<(String, String)>,
}

impl ProviderSettings {
    /// Every secret these settings send upstream (keys, tokens, and extra header values,
    /// which carry keys for servers that take them in a header of their own).
    pub fn secrets(&self) -> Vec<SecretString> {
        let mut secrets: Vec<SecretString> =
            [&self.api_key, &self.auth_token, &self.aws_secret_access_key, &self.aws_session_token]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
        secrets.extend(self.headers.iter().map(|(_, value)| SecretString::from(value.clone())));
        secrets
    }

    /// Settings with an API key.
    pub fn with_api_key(key: impl Into<String>) -> Self {
        Self { api_key: Some(SecretString::from(key.into())), ..Self::default() }
    }

    /// Sets the API base.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sets the API version (Azure).
    #[must_use]
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    /// The environment variables read for `kind`: for each field, the variables tried in
    /// order.
    pub fn env_vars(kind: ProviderKind) -> Vec<(SettingField, Vec<String>)> {
        let names = |names: &[&str]| names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>();
        match kind {
            ProviderKind::Compat(vendor) => {
                vec![(SettingField::ApiKey, names(vendor.key_env)), (SettingField::BaseUrl, vec![vendor.base_env()])]
            }
            native => native
                .descriptor()
                .map_or_else(Vec::new, |d| d.env.iter().map(|(field, vars)| (*field, names(vars))).collect()),
        }
    }

    /// These settings, with unset fields filled from `env`; settings given explicitly win.
    pub fn with_env(&self, kind: ProviderKind, env: &HashMap<String, String>) -> Self {
        let mut out = self.clone();
        for (field, vars) in Self::env_vars(kind) {
            let Some(value) = vars.iter().find_map(|v| env.get(v)).filter(|v| !v.is_empty()).cloned() else {
                continue;
            };
            let secret = |slot: &mut Option<SecretString>| {
                if slot.is_none() {
                    *slot = Some(SecretString::from(value.clone()));
                }
            };
            match field {
                SettingField::ApiKey => secret(&mut out.api_key),
                SettingField::AuthToken => secret(&mut out.auth_token),
                SettingField::BaseUrl => out.base_url = out.base_url.or(Some(value)),
                SettingField::ApiVersion => out.api_version = out.api_version.or(Some(value)),
                SettingField::Organization => out.organization = out.organization.or(Some(value)),
                SettingField::Project => out.project = out.project.or(Some(value)),
                SettingField::Location => out.location = out.location.or(Some(value)),
                SettingField::Credentials => secret(&mut out.credentials),
                SettingField::AwsAccessKeyId => out.aws_access_key_id = out.aws_access_key_id.or(Some(value)),
                SettingField::AwsSecretAccessKey => secret(&mut out.aws_secret_access_key),
                SettingField::AwsSessionToken => secret(&mut out.aws_session_token),
            }
        }
        out
    }
}

pub use crate::catalog::SettingField;

impl Provider {
    /// Configures `kind` from complete settings (environment already applied).
    pub fn configure(kind: ProviderKind, settings: &ProviderSettings) -> Result<Self> {
        let headers = header_map(&settings.headers)?;
        let base_url = settings.base_url.as_deref().filter(|b| !b.is_empty());
        Ok(match kind {
            ProviderKind::OpenAi => {
                if settings.api_key.is_none() && base_url.is_none_or(|b| b.trim_end_matches('/') == DEFAULT_BASE_URL) {
                    return Err(Error::Config(
                        "no API key for openai: set OPENAI_API_KEY or give one to the client".into(),
                    ));
                }
                Provider::OpenAi(OpenAi::new(
                    base_url,
                    settings.api_key.as_ref(),
                    settings.organization.as_deref(),
                    settings.project.as_deref(),
                    headers,
                )?)
            }
            ProviderKind::Azure => {
                let endpoint = base_url.ok_or_else(|| {
                    Error::Config("azure needs the resource endpoint: set AZURE_API_BASE or give a base_url".into())
                })?;
                let auth = azure_auth(settings)?;
                Provider::Azure(Azure::new(endpoint, settings.api_version.as_deref(), &auth, headers)?)
            }
            ProviderKind::Anthropic => {
                let key = settings.api_key.as_ref().ok_or_else(|| {
                    Error::Config("no API key for anthropic: set ANTHROPIC_API_KEY or give one to the client".into())
                })?;
                Provider::Anthropic(Anthropic::new(base_url, key, headers)?)
            }
            ProviderKind::Gemini => {
                let key = settings.api_key.as_ref().ok_or_else(|| {
                    Error::Config("no API key for gemini: set GEMINI_API_KEY or give one to the client".into())
                })?;
                Provider::Gemini(Gemini::new(base_url, key, headers)?)
            }
            ProviderKind::VertexAi => {
                let project = settings.project.as_deref().ok_or_else(|| {
                    Error::Config("vertex_ai needs a project: set VERTEXAI_PROJECT or give one to the client".into())
                })?;
                let credentials = vertex_credentials(settings)?;
                Provider::VertexAi(VertexAi::new(
                    project,
                    settings.location.as_deref(),
                    base_url,
                    credentials,
                    headers,
                )?)
            }
            ProviderKind::Bedrock => {
                let region = settings.location.as_deref().ok_or_else(|| {
                    Error::Config("bedrock needs a region: set AWS_REGION or give a location to the client".into())
                })?;
                let auth = bedrock_auth(settings)?;
                Provider::Bedrock(Bedrock::new(region, base_url, auth, headers)?)
            }
            ProviderKind::Cohere => {
                let key = settings.api_key.as_ref().ok_or_else(|| {
                    Error::Config("no API key for cohere: set COHERE_API_KEY or give one to the client".into())
                })?;
                Provider::Cohere(Cohere::new(base_url, key, headers)?)
            }
            ProviderKind::Mistral => Provider::Mistral(Mistral::new(base_url, settings.api_key.as_ref(), headers)?),
            ProviderKind::Mock => Provider::Mock(Mock),
            ProviderKind::Compat(vendor) => {
                Provider::OpenAiCompat(OpenAiCompat::new(vendor, base_url, settings.api_key.as_ref(), headers)?)
            }
        })
    }
}

/// Azure's credentials: an Entra token wins over an API key.
fn azure_auth(settings: &ProviderSettings) -> Result<AzureAuth> {
    Ok(match (&settings.api_key, &settings.auth_token) {
        (_, Some(token)) => AzureAuth::EntraToken(token.clone()),
        (Some(key), None) => AzureAuth::ApiKey(key.clone()),
        (None, None) => {
            return Err(Error::Config(
                "no credentials for azure: set AZURE_API_KEY (or AZURE_AD_TOKEN) or give them to the client".into(),
            ));
        }
    })
}

/// Vertex AI's credentials: a token, a service-account key, or the default credentials.
fn vertex_credentials(settings: &ProviderSettings) -> Result<VertexCredentials> {
    Ok(match (&settings.auth_token, &settings.credentials) {
        (Some(token), _) => VertexCredentials::Token(token.clone()),
        (None, Some(key)) => VertexCredentials::service_account(key.expose_secret())?,
        (None, None) => VertexCredentials::default_credentials()?,
    })
}

/// Bedrock's credentials. Explicit IAM credentials win over an API key, as the AWS SDKs
/// order them.
fn bedrock_auth(settings: &ProviderSettings) -> Result<BedrockAuth> {
    Ok(match (&settings.aws_access_key_id, &settings.aws_secret_access_key, &settings.api_key) {
        (Some(id), Some(secret), _) => BedrockAuth::SigV4 {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: settings.aws_session_token.clone(),
        },
        (None, None, Some(key)) => BedrockAuth::ApiKey(key.clone()),
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err(Error::Config(
                "bedrock needs both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (only one is set)".into(),
            ));
        }
        (None, None, None) => {
            return Err(Error::Config(
                "no credentials for bedrock: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                 AWS_BEARER_TOKEN_BEDROCK"
                    .into(),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn environment_fills_unset_fields_in_order_of_preference() {
        let groq = ProviderKind::from_id("groq").unwrap_or(ProviderKind::Mock);
        let filled = ProviderSettings::default()
            .with_env(groq, &env(&[("GROQ_API_KEY", "gk"), ("GROQ_API_BASE", "http://proxy/openai/v1")]));
        assert_eq!(filled.api_key.as_ref().map(ExposeSecret::expose_secret), Some("gk"));
        assert_eq!(filled.base_url.as_deref(), Some("http://proxy/openai/v1"));

        let azure = ProviderSettings::default().with_env(
            ProviderKind::Azure,
            &env(&[("AZURE_OPENAI_API_KEY", "second"), ("AZURE_API_KEY", "first"), ("OPENAI_API_VERSION", "v1")]),
        );
        assert_eq!(azure.api_key.as_ref().map(ExposeSecret::expose_secret), Some("first"));
        assert_eq!(azure.api_version.as_deref(), Some("v1"));
    }

    #[test]
    fn given_settings_win_over_the_environment_and_empty_variables_are_ignored() {
        let given = ProviderSettings::with_api_key("given").base_url("http://given/v1");
        let filled = given.with_env(
            ProviderKind::OpenAi,
            &env(&[("OPENAI_API_KEY", "env"), ("OPENAI_BASE_URL", "http://env/v1"), ("OPENAI_ORG_ID", "")]),
        );
        assert_eq!(filled.api_key.as_ref().map(ExposeSecret::expose_secret), Some("given"));
        assert_eq!(filled.base_url.as_deref(), Some("http://given/v1"));
        assert_eq!(filled.organization, None);
    }

    fn bedrock(pairs: &[(&str, &str)]) -> Result<Provider> {
        Provider::configure(
            ProviderKind::Bedrock,
            &ProviderSettings::default().with_env(ProviderKind::Bedrock, &env(pairs)),
        )
    }

    #[test]
    fn bedrock_reads_aws_variables_and_prefers_iam_credentials() {
        let filled = ProviderSettings::default().with_env(
            ProviderKind::Bedrock,
            &env(&[
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_REGION", "eu-central-1"),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_SESSION_TOKEN", "token"),
                ("AWS_BEARER_TOKEN_BEDROCK", "bedrock-key"),
            ]),
        );
        assert_eq!(filled.location.as_deref(), Some("eu-central-1"));
        assert_eq!(filled.aws_access_key_id.as_deref(), Some("AKID"));
        assert_eq!(filled.aws_session_token.as_ref().map(ExposeSecret::expose_secret), Some("token"));
        let both = bedrock(&[
            ("AWS_REGION", "eu-central-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_BEARER_TOKEN_BEDROCK", "bedrock-key"),
        ]);
        assert!(
            matches!(&both, Ok(Provider::Bedrock(b)) if format!("{b:?}").contains("SigV4")),
            "IAM credentials win: {both:?}"
        );
        let key = bedrock(&[("AWS_REGION", "us-west-2"), ("AWS_BEARER_TOKEN_BEDROCK", "bedrock-key")]);
        assert!(matches!(&key, Ok(Provider::Bedrock(b)) if format!("{b:?}").contains("ApiKey")), "{key:?}");
        assert!(!format!("{both:?}{key:?}").contains("secret") && !format!("{key:?}").contains("bedrock-key"));
    }

    #[test]
    fn bedrock_configuration_errors_say_what_is_missing() {
        let message = |r: Result<Provider>| match r {
            Err(Error::Config(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        };
        assert!(message(bedrock(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")])).contains("region"));
        assert!(message(bedrock(&[("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "AKID")])).contains("only one"));
        assert!(message(bedrock(&[("AWS_REGION", "us-east-1")])).contains("AWS_BEARER_TOKEN_BEDROCK"));
        assert!(message(bedrock(&[("AWS_REGION", "us east"), ("AWS_BEARER_TOKEN_BEDROCK", "k")])).contains("region"));
    }
}
