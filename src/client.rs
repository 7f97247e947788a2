//! The SDK's entry point: [`Client`] and [`ClientBuilder`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::model_ref::ModelRef;
use crate::provider::chat_stream::ChatStream;
use crate::provider::{Provider, ProviderKind};
use crate::transport::{RetryPolicy, Timeouts};
use crate::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

pub use crate::provider::settings::ProviderSettings;

/// A client for every provider. Cheap to clone; share one per process.
///
/// The provider comes from the model string (`groq/llama-3.3-70b-versatile`); its settings
/// come from the builder, else from the environment (`GROQ_API_KEY`, ...).
///
/// ```
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use switchyard::{ChatMessage, ChatRequest, Client};
/// let client = Client::from_env()?;
/// let req = ChatRequest::new("mock/echo", vec![ChatMessage::user("Hello!")]);
/// let answer = client.chat(&req).await?;
/// assert_eq!(answer.text(), Some("Hello!"));
/// # Ok::<(), switchyard::Error>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    settings: HashMap<ProviderKind, ProviderSettings>,
    env: HashMap<String, String>,
    default_provider: Option<ProviderKind>,
    providers: RwLock<HashMap<ProviderKind, Arc<Provider>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("engine", &self.inner.engine)
            .field("settings", &self.inner.settings)
            .field("env_vars", &self.inner.env.keys().collect::<Vec<_>>())
            .field("default_provider", &self.inner.default_provider)
            .finish()
    }
}

impl Client {
    /// A client configured from the environment alone.
    pub fn from_env() -> Result<Self> {
        Self::builder().build()
    }

    /// A builder; it reads the environment for unset settings unless told not to.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A chat completion.
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let (provider, model) = self.resolve(&request.model)?;
        self.inner.engine.call(&engine::Chat { request, native: None, usage_only: false }, &provider, model).await
    }

    /// A streamed chat completion. Errors before the first chunk (including retries) are
    /// returned here; later ones end the stream.
    pub async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        let (provider, model) = self.resolve(&request.model)?;
        self.inner.engine.call(&engine::Stream(request, None), &provider, model).await
    }

    /// Embeddings.
    pub async fn embed(&self, request: &EmbeddingRequest) -> Result<EmbeddingResponse> {
        let (provider, model) = self.resolve(&request.model)?;
        self.inner.engine.call(&engine::Embed(request), &provider, model).await
    }

    /// The models a provider offers.
    pub async fn models(&self, provider: ProviderKind) -> Result<ModelList> {
        let provider = self.provider(provider)?;
        self.inner.engine.call(&engine::Models, &provider, "").await
    }

    /// The configured provider of `kind`.
    pub fn provider(&self, kind: ProviderKind) -> Result<Arc<Provider>> {
        if let Some(provider) = self.inner.providers.read().ok().and_then(|map| map.get(&kind).cloned()) {
            return Ok(provider);
        }
        let settings = self.inner.settings.get(&kind).cloned().unwrap_or_default().with_env(kind, &self.inner.env);
        let provider = Arc::new(Provider::configure(kind, &settings)?);
        if let Ok(mut map) = self.inner.providers.write() {
            map.insert(kind, provider.clone());
        }
        Ok(provider)
    }

    /// Splits a model string and configures its provider.
    fn resolve<'m>(&self, model: &'m str) -> Result<(Arc<Provider>, &'m str)> {
        let model_ref = ModelRef::parse_with_default(model, self.inner.default_provider)?;
        Ok((self.provider(model_ref.provider)?, model_ref.model))
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    settings: HashMap<ProviderKind, ProviderSettings>,
    read_env: bool,
    retry: RetryPolicy,
    timeouts: Timeouts,
    default_provider: Option<ProviderKind>,
    drop_params: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            settings: HashMap::new(),
            read_env: true,
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            default_provider: None,
            drop_params: false,
        }
    }
}

impl ClientBuilder {
    /// Settings for one provider (replacing earlier ones for it).
    #[must_use]
    pub fn provider(mut self, kind: ProviderKind, settings: ProviderSettings) -> Self {
        self.settings.insert(kind, settings);
        self
    }

    /// The API key for one provider.
    #[must_use]
    pub fn api_key(mut self, kind: ProviderKind, key: impl Into<String>) -> Self {
        self.settings.entry(kind).or_default().api_key = Some(key.into().into());
        self
    }

    /// The API base for one provider (any OpenAI-compatible server with `openai`).
    #[must_use]
    pub fn base_url(mut self, kind: ProviderKind, url: impl Into<String>) -> Self {
        self.settings.entry(kind).or_default().base_url = Some(url.into());
        self
    }

    /// Whether to fill unset settings from the environment (default: yes).
    #[must_use]
    pub fn read_env(mut self, read: bool) -> Self {
        self.read_env = read;
        self
    }

    /// The retry policy (default: 2 retries with backoff, honouring `Retry-After`).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The timeouts.
    #[must_use]
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The provider for bare model names that are not OpenAI's (`llama3` with `ollama`).
    #[must_use]
    pub fn default_provider(mut self, kind: ProviderKind) -> Self {
        self.default_provider = Some(kind);
        self
    }

    /// Drop parameters a provider cannot express instead of failing with
    /// [`Error::Unsupported`] (default: fail).
    #[must_use]
    pub fn drop_params(mut self, drop: bool) -> Self {
        self.drop_params = drop;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let env = if self.read_env { env_snapshot() } else { HashMap::new() };
        if self.settings.get(&ProviderKind::Mock).is_some_and(|s| s.api_key.is_some()) {
            return Err(Error::Config("the mock provider takes no API key".into()));
        }
        Ok(Client {
            inner: Arc::new(Inner {
                engine: Engine::new(self.retry, self.timeouts, self.drop_params)?,
                settings: self.settings,
                env,
                default_provider: self.default_provider,
                providers: RwLock::new(HashMap::new()),
            }),
        })
    }
}

/// The environment variables any provider reads, as they are now.
pub(crate) fn env_snapshot() -> HashMap<String, String> {
    ProviderKind::all()
        .flat_map(ProviderSettings::env_vars)
        .flat_map(|(_, vars)| vars)
        .filter_map(|name| std::env::var(&name).ok().map(|value| (name, value)))
        .collect()
}
