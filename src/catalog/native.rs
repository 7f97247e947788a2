//! One descriptor per native provider ([`NATIVE`]) and per wire format ([`FORMATS`]): what
//! the settings, the CLI, replay, the live checks, drift and CI read, so that adding a
//! provider is its folder, one [`ProviderKind`] variant, one entry here, and its cases
//! (`docs/adding-a-provider.md`).

use super::ProviderKind;

/// A native provider, as data.
#[derive(Debug)]
pub struct Descriptor {
    /// Which provider.
    pub kind: ProviderKind,
    /// Its name for people.
    pub name: &'static str,
    /// The default API base; empty when it depends on the settings (a region, a resource).
    pub base_url: &'static str,
    /// The API base as shown to people (a template where `base_url` is empty).
    pub base_shown: &'static str,
    /// The environment variables read for each setting, tried in order.
    pub env: &'static [(SettingField, &'static [&'static str])],
    /// The credentials as shown to people.
    pub key_shown: &'static str,
    /// The provider's API documentation.
    pub docs: &'static str,
    /// The wire format its answers, streams and errors are in.
    pub format: &'static WireFormat,
    /// The upstream description our description is compared with (`spec drift`).
    pub drift: Option<Drift>,
}

/// An upstream description kept in a drift snapshot (`openapi/drift/<provider>.snap`).
#[derive(Clone, Copy, Debug)]
pub struct Drift {
    /// Our description, under the crate root.
    pub spec: &'static str,
    /// The upstream file's name in the folder of upstream descriptions (`../shared/specs`).
    pub upstream: &'static str,
    /// For a provider that speaks another's format (Mistral speaks OpenAI's): which of our
    /// schemas correspond to which upstream ones, under the crate root. Only those are
    /// compared.
    pub map: Option<&'static str>,
}

/// A wire format: our description of it, and what the live checks expect of a server that
/// speaks it.
#[derive(Debug, PartialEq, Eq)]
pub struct WireFormat {
    /// The format's id (`openai`, `anthropic`, ...).
    pub id: &'static str,
    /// Our description, under the crate root.
    pub spec: &'static str,
    /// Its schemas for each kind of answer.
    pub schemas: Schemas,
    /// The statuses it documents for the error scenarios.
    pub statuses: Statuses,
}

/// The schema names, in a format's description, of each kind of answer; `None` where the
/// format has no such answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Schemas {
    /// A whole chat answer.
    pub chat: &'static str,
    /// One stream event.
    pub event: &'static str,
    /// An embeddings answer.
    pub embed: Option<&'static str>,
    /// A models list.
    pub models: Option<&'static str>,
    /// An error body.
    pub error: &'static str,
}

/// The statuses a format documents for a bad key, an unknown model and a prompt over the
/// context window.
#[derive(Debug, PartialEq, Eq)]
pub struct Statuses {
    /// A key the server does not accept.
    pub bad_key: &'static [u16],
    /// A model it does not serve.
    pub unknown_model: &'static [u16],
    /// A prompt past the model's context window.
    pub oversize_prompt: &'static [u16],
}

/// A field of the provider settings that can come from the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingField {
    /// `api_key`.
    ApiKey,
    /// `base_url`.
    BaseUrl,
    /// `api_version`.
    ApiVersion,
    /// `auth_token`.
    AuthToken,
    /// `organization`.
    Organization,
    /// `project`.
    Project,
    /// `location`.
    Location,
    /// `credentials`.
    Credentials,
    /// `aws_access_key_id`.
    AwsAccessKeyId,
    /// `aws_secret_access_key`.
    AwsSecretAccessKey,
    /// `aws_session_token`.
    AwsSessionToken,
}

/// The default API bases of the native providers that have one, named once: their
/// descriptors and their adapters (`provider::<id>::DEFAULT_BASE_URL`) both read these.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
pub const COHERE_BASE_URL: &str = "https://api.cohere.com";
pub const MISTRAL_BASE_URL: &str = "https://api.mistral.ai/v1";

const DEFAULT_STATUSES: Statuses = Statuses { bad_key: &[401], unknown_model: &[404], oversize_prompt: &[400, 413] };

/// OpenAI's chat completions (and every OpenAI-compatible server's).
pub static OPENAI_FORMAT: WireFormat = WireFormat {
    id: "openai",
    spec: "openapi/openai.yaml",
    schemas: Schemas {
        chat: "CreateChatCompletionResponse",
        event: "CreateChatCompletionStreamResponse",
        embed: Some("CreateEmbeddingResponse"),
        models: Some("ListModelsResponse"),
        error: "ErrorResponse",
    },
    statuses: DEFAULT_STATUSES,
};

/// Anthropic's Messages API.
pub static ANTHROPIC_FORMAT: WireFormat = WireFormat {
    id: "anthropic",
    spec: "openapi/anthropic.yaml",
    schemas: Schemas {
        chat: "Message",
        event: "MessageStreamEvent",
        embed: None,
        models: Some("ListModelsResponse"),
        error: "ErrorResponse",
    },
    statuses: DEFAULT_STATUSES,
};

/// Gemini's `generateContent` (AI Studio and Vertex AI).
pub static GEMINI_FORMAT: WireFormat = WireFormat {
    id: "gemini",
    spec: "openapi/gemini.yaml",
    schemas: Schemas {
        chat: "GenerateContentResponse",
        event: "GenerateContentResponse",
        embed: None,
        models: Some("ListModelsResponse"),
        error: "ErrorResponse",
    },
    // Gemini answers an invalid key with 400 API_KEY_INVALID.
    statuses: Statuses { bad_key: &[400, 401, 403], ..DEFAULT_STATUSES },
};

/// Cohere's v2 chat.
pub static COHERE_FORMAT: WireFormat = WireFormat {
    id: "cohere",
    spec: "openapi/cohere.yaml",
    schemas: Schemas {
        chat: "ChatResponse",
        event: "StreamEvent",
        embed: Some("EmbedResponse"),
        models: Some("ListModelsResponse"),
        error: "ErrorBody",
    },
    statuses: Statuses { unknown_model: &[400, 404], ..DEFAULT_STATUSES },
};

/// Bedrock's Converse.
pub static BEDROCK_FORMAT: WireFormat = WireFormat {
    id: "bedrock",
    spec: "openapi/bedrock.yaml",
    schemas: Schemas {
        chat: "ConverseResponse",
        event: "ConverseStreamEvent",
        embed: None,
        models: None,
        error: "ErrorBody",
    },
    // Bedrock answers a bad signature or key with 403.
    statuses: Statuses { bad_key: &[403], unknown_model: &[400, 404], ..DEFAULT_STATUSES },
};

/// Every wire format.
pub static FORMATS: &[&WireFormat] =
    &[&OPENAI_FORMAT, &ANTHROPIC_FORMAT, &GEMINI_FORMAT, &COHERE_FORMAT, &BEDROCK_FORMAT];

use SettingField::{
    ApiKey, ApiVersion, AuthToken, AwsAccessKeyId, AwsSecretAccessKey, AwsSessionToken, BaseUrl, Credentials, Location,
    Organization, Project,
};

/// Every native provider, in the order they are listed to users.
pub static NATIVE: &[Descriptor] = &[
    Descriptor {
        kind: ProviderKind::OpenAi,
        name: "OpenAI",
        base_url: OPENAI_BASE_URL,
        base_shown: OPENAI_BASE_URL,
        env: &[
            (ApiKey, &["OPENAI_API_KEY"]),
            (BaseUrl, &["OPENAI_BASE_URL", "OPENAI_API_BASE"]),
            (Organization, &["OPENAI_ORG_ID", "OPENAI_ORGANIZATION"]),
            (Project, &["OPENAI_PROJECT_ID"]),
        ],
        key_shown: "OPENAI_API_KEY",
        docs: "https://platform.openai.com/docs/api-reference",
        format: &OPENAI_FORMAT,
        drift: Some(Drift { spec: "openapi/openai.yaml", upstream: "openai.yaml", map: None }),
    },
    Descriptor {
        kind: ProviderKind::Azure,
        name: "Azure OpenAI",
        base_url: "",
        base_shown: "AZURE_API_BASE (your resource)",
        env: &[
            (ApiKey, &["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"]),
            (BaseUrl, &["AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"]),
            (ApiVersion, &["AZURE_API_VERSION", "OPENAI_API_VERSION"]),
            (AuthToken, &["AZURE_AD_TOKEN"]),
        ],
        key_shown: "AZURE_API_KEY or AZURE_AD_TOKEN",
        docs: "https://learn.microsoft.com/azure/ai-foundry/openai/reference",
        format: &OPENAI_FORMAT,
        drift: None,
    },
    Descriptor {
        kind: ProviderKind::Anthropic,
        name: "Anthropic",
        base_url: ANTHROPIC_BASE_URL,
        base_shown: ANTHROPIC_BASE_URL,
        env: &[(ApiKey, &["ANTHROPIC_API_KEY"]), (BaseUrl, &["ANTHROPIC_BASE_URL", "ANTHROPIC_API_BASE"])],
        key_shown: "ANTHROPIC_API_KEY",
        docs: "https://docs.anthropic.com/en/api/messages",
        format: &ANTHROPIC_FORMAT,
        drift: Some(Drift { spec: "openapi/anthropic.yaml", upstream: "anthropic.json", map: None }),
    },
    Descriptor {
        kind: ProviderKind::Gemini,
        name: "Google Gemini (AI Studio)",
        base_url: GEMINI_BASE_URL,
        base_shown: GEMINI_BASE_URL,
        env: &[(ApiKey, &["GEMINI_API_KEY", "GOOGLE_API_KEY"]), (BaseUrl, &["GEMINI_API_BASE"])],
        key_shown: "GEMINI_API_KEY",
        docs: "https://ai.google.dev/api",
        format: &GEMINI_FORMAT,
        drift: Some(Drift { spec: "openapi/gemini.yaml", upstream: "gemini.json", map: None }),
    },
    Descriptor {
        kind: ProviderKind::VertexAi,
        name: "Google Vertex AI",
        base_url: "",
        base_shown: "https://{location}-aiplatform.googleapis.com",
        env: &[
            (Project, &["VERTEXAI_PROJECT", "GOOGLE_CLOUD_PROJECT"]),
            (Location, &["VERTEXAI_LOCATION", "GOOGLE_CLOUD_LOCATION"]),
            (Credentials, &["VERTEXAI_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"]),
            (AuthToken, &["VERTEXAI_ACCESS_TOKEN"]),
            (BaseUrl, &["VERTEXAI_API_BASE"]),
        ],
        key_shown: "VERTEXAI_PROJECT + service account or token",
        docs: "https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest",
        format: &GEMINI_FORMAT,
        drift: None,
    },
    Descriptor {
        kind: ProviderKind::Bedrock,
        name: "Amazon Bedrock",
        base_url: "",
        base_shown: "https://bedrock-runtime.{AWS_REGION}.amazonaws.com",
        env: &[
            (Location, &["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION_NAME"]),
            (AwsAccessKeyId, &["AWS_ACCESS_KEY_ID"]),
            (AwsSecretAccessKey, &["AWS_SECRET_ACCESS_KEY"]),
            (AwsSessionToken, &["AWS_SESSION_TOKEN"]),
            (ApiKey, &["AWS_BEARER_TOKEN_BEDROCK"]),
            (BaseUrl, &["AWS_BEDROCK_RUNTIME_ENDPOINT", "BEDROCK_API_BASE"]),
        ],
        key_shown: "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, or AWS_BEARER_TOKEN_BEDROCK",
        docs: "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html",
        format: &BEDROCK_FORMAT,
        drift: Some(Drift {
            spec: "openapi/bedrock.yaml",
            upstream: "bedrock-runtime.botocore-service-2.json",
            map: None,
        }),
    },
    Descriptor {
        kind: ProviderKind::Cohere,
        name: "Cohere",
        base_url: COHERE_BASE_URL,
        base_shown: COHERE_BASE_URL,
        env: &[(ApiKey, &["COHERE_API_KEY", "CO_API_KEY"]), (BaseUrl, &["COHERE_API_BASE"])],
        key_shown: "COHERE_API_KEY",
        docs: "https://docs.cohere.com/reference/chat",
        format: &COHERE_FORMAT,
        drift: Some(Drift { spec: "openapi/cohere.yaml", upstream: "cohere.yaml", map: None }),
    },
    Descriptor {
        kind: ProviderKind::Mistral,
        name: "Mistral AI",
        base_url: MISTRAL_BASE_URL,
        base_shown: MISTRAL_BASE_URL,
        env: &[(ApiKey, &["MISTRAL_API_KEY"]), (BaseUrl, &["MISTRAL_API_BASE"])],
        key_shown: "MISTRAL_API_KEY",
        docs: "https://docs.mistral.ai/api/",
        format: &OPENAI_FORMAT,
        drift: Some(Drift {
            spec: "openapi/openai.yaml",
            upstream: "mistral.yaml",
            map: Some("openapi/drift/mistral.map.yaml"),
        }),
    },
    Descriptor {
        kind: ProviderKind::Mock,
        name: "Switchyard's mock",
        base_url: "",
        base_shown: "built in",
        env: &[],
        key_shown: "none",
        docs: "docs/testing.md",
        format: &OPENAI_FORMAT,
        drift: None,
    },
];

impl ProviderKind {
    /// The native provider's descriptor; `None` for an OpenAI-compatible vendor (its row in
    /// [`super::VENDORS`] describes it).
    pub fn descriptor(self) -> Option<&'static Descriptor> {
        NATIVE.iter().find(|d| d.kind == self)
    }

    /// The wire format the provider answers in.
    pub fn format(self) -> &'static WireFormat {
        self.descriptor().map_or(&OPENAI_FORMAT, |d| d.format)
    }

    /// The path part of the provider's default API base (`https://api.groq.com/openai/v1`
    /// -> `/openai/v1`): where a recorded case's requests go under a mock server.
    pub fn default_base_path(self) -> &'static str {
        let base = match self {
            ProviderKind::Compat(vendor) => vendor.base_url,
            native => native.descriptor().map_or("", |d| d.base_url),
        };
        let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    }
}
