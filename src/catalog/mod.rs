//! What this build knows of providers, as data: the [`ProviderKind`] of every native
//! provider and the table of OpenAI-compatible vendors ([`VENDORS`]). A leaf: it names
//! nothing else in the crate, so errors, the transport and everything above can name a
//! provider without depending on the providers' code.

use std::fmt;

mod native;
mod vendors;

pub use native::{
    ANTHROPIC_BASE_URL, ANTHROPIC_FORMAT, BEDROCK_FORMAT, COHERE_BASE_URL, COHERE_FORMAT, Descriptor, Drift, FORMATS,
    GEMINI_BASE_URL, GEMINI_FORMAT, MISTRAL_BASE_URL, NATIVE, OPENAI_BASE_URL, OPENAI_FORMAT, Schemas, SettingField,
    Statuses, WireFormat,
};
pub use vendors::VENDORS;

/// A kind of provider: `openai`, `azure`, `mock`, or one of the OpenAI-compatible vendors.
///
/// `Display` and `FromStr` use the id that prefixes model strings (`groq/llama-3.3-70b`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenAI (`openai/...`, or a bare `gpt-...`, `o3...`, `text-embedding-...`).
    OpenAi,
    /// Azure OpenAI (`azure/<deployment>`).
    Azure,
    /// Anthropic Messages (`anthropic/claude-...`, or a bare `claude-...`).
    Anthropic,
    /// Google Gemini through AI Studio (`gemini/gemini-2.5-flash`).
    Gemini,
    /// Gemini on Google Cloud Vertex AI (`vertex_ai/gemini-2.5-pro`).
    VertexAi,
    /// Amazon Bedrock through Converse (`bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0`).
    Bedrock,
    /// Cohere v2 (`cohere/command-a-03-2025`).
    Cohere,
    /// Mistral AI (`mistral/mistral-large-latest`), on OpenAI's wire format with its own
    /// spellings.
    Mistral,
    /// The built-in mock provider (`mock/echo`, ...), for trying things with no key.
    Mock,
    /// An OpenAI-compatible vendor from the table in [`VENDORS`].
    Compat(&'static CompatVendor),
}

impl ProviderKind {
    /// The id used as the model-string prefix and in configuration.
    pub fn id(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Azure => "azure",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::VertexAi => "vertex_ai",
            Self::Bedrock => "bedrock",
            Self::Cohere => "cohere",
            Self::Mistral => "mistral",
            Self::Mock => "mock",
            Self::Compat(vendor) => vendor.id,
        }
    }

    /// Every provider this build knows.
    pub fn all() -> impl Iterator<Item = ProviderKind> {
        NATIVE.iter().map(|d| d.kind).chain(VENDORS.iter().map(ProviderKind::Compat))
    }

    /// The provider with this id, if there is one.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::all().find(|kind| kind.id() == id)
    }

    /// A comma-separated list of every id, for error messages.
    pub fn known_ids() -> String {
        Self::all().map(ProviderKind::id).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl fmt::Debug for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// An OpenAI-compatible vendor.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CompatVendor {
    /// The model-string prefix (`groq`), as in LiteLLM.
    pub id: &'static str,
    /// The vendor's name for people.
    pub name: &'static str,
    /// The default API base, including the version segment; empty when the user must give one.
    pub base_url: &'static str,
    /// Environment variables holding the key, tried in order.
    pub key_env: &'static [&'static str],
    /// Whether calls fail without a key (local servers do not need one).
    pub key_required: bool,
    /// How this vendor departs from OpenAI's wire format.
    pub quirks: Quirks,
    /// The vendor's OpenAI-compatibility documentation.
    pub docs: &'static str,
}

impl CompatVendor {
    /// A vendor declared at run time (a gateway config's `providers:`), kept for the life of
    /// the process: its strings are leaked once at start-up, so it is as `'static` as the
    /// built-in table.
    pub fn declare(
        id: &str,
        base_url: &str,
        renames: Vec<(String, String)>,
        dropped: Vec<String>,
        max_tokens_only: bool,
    ) -> &'static CompatVendor {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let renames: Vec<(&'static str, &'static str)> = renames.into_iter().map(|(a, b)| (leak(a), leak(b))).collect();
        let dropped: Vec<&'static str> = dropped.into_iter().map(leak).collect();
        Box::leak(Box::new(CompatVendor {
            id: leak(id.to_string()),
            name: leak(id.to_string()),
            base_url: leak(base_url.to_string()),
            key_env: &[],
            key_required: false,
            quirks: Quirks {
                renames: Box::leak(renames.into_boxed_slice()),
                dropped: Box::leak(dropped.into_boxed_slice()),
                max_tokens_only,
                ..Quirks::NONE
            },
            docs: "",
        }))
    }

    /// The environment variable that overrides the base URL: `<ID>_API_BASE`.
    pub fn base_env(&self) -> String {
        format!("{}_API_BASE", self.id.to_ascii_uppercase())
    }
}

/// Where a vendor's wire format departs from OpenAI's. All parameters are top-level request
/// fields by their OpenAI name.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Quirks {
    /// Parameters the vendor does not accept: `Unsupported` unless `drop_params`.
    pub unsupported: &'static [&'static str],
    /// Parameters the vendor names differently: (OpenAI name, vendor name).
    pub renames: &'static [(&'static str, &'static str)],
    /// The vendor's spelling of `tool_choice: "required"`, if it differs.
    pub tool_choice_required: Option<&'static str>,
    /// The vendor takes `max_tokens` but not `max_completion_tokens`.
    pub max_tokens_only: bool,
    /// A path the API base must end with, appended to a user-given base that lacks it
    /// (Ollama's OpenAI API lives under `/v1`, but LiteLLM configs give the server root).
    pub base_suffix: &'static str,
    /// Parameters always removed before sending (a config-declared provider's `drop_params`:
    /// the operator chose to drop them).
    pub dropped: &'static [&'static str],
    /// The vendor reads Anthropic's `cache_control` markers (on content parts and tools) and
    /// thinking blocks (on assistant messages); everywhere else they are taken out, as
    /// OpenAI-format APIs reject them.
    pub keeps_cache_control: bool,
}

impl Quirks {
    /// No departures: OpenAI's wire format as is.
    pub const NONE: Quirks = Quirks {
        unsupported: &[],
        renames: &[],
        tool_choice_required: None,
        max_tokens_only: false,
        base_suffix: "",
        dropped: &[],
        keeps_cache_control: false,
    };
}
