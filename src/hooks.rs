//! Hooks: one standard event per routed call, for logging, spend tracking and metrics.
//!
//! Every call ends in exactly one event: [`EventKind::Success`] (a whole answer, cache hits
//! included), [`EventKind::StreamEnd`] (a stream that ran to its end),
//! [`EventKind::Failure`] (an error before an answer, or one that cut a stream) or
//! [`EventKind::Cancelled`] (the caller dropped the call, or its stream, before the end:
//! a client that went away, a timeout around the call, a panic). The event is sent by a drop
//! guard, so no path ends a call without one. Sync hooks
//! run inline, in registration order; async hooks are spawned and never delay the call. A
//! hook that errs or panics is logged (target `switchyard::hooks`) and never fails the call.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::ErrorKind;
use crate::pricing::Receipt;
use crate::provider::ProviderKind;
use crate::spec::openai::CompletionUsage;

/// The caller's side of one call, handed to the router in
/// [`CallOptions::context`](crate::router::CallOptions::context): told how the call ended
/// before the hooks run, and carried in their [`CallEvent::context`]. The gateway's owner is
/// its admission (the key, its budget and tpm holds), which settles itself this way; an SDK
/// user can carry anything, and get its own type back in a hook by upcasting to `dyn Any`:
///
/// ```
/// use std::sync::Arc;
/// use switchyard::hooks::{CallContext, CallOwner};
///
/// struct Tenant(&'static str);
/// impl CallOwner for Tenant {}
///
/// let context: CallContext = Arc::new(Tenant("acme"));
/// let any: &dyn std::any::Any = context.as_ref();
/// assert_eq!(any.downcast_ref::<Tenant>().map(|t| t.0), Some("acme"));
/// ```
pub trait CallOwner: std::any::Any + Send + Sync {
    /// The call's one end event, before the router's hooks see it. Keep it quick: the
    /// caller waits for it. A panic here is caught and logged like a hook's.
    fn ended(&self, event: &CallEvent) {
        let _ = event;
    }
}

impl fmt::Debug for dyn CallOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallOwner")
    }
}

/// A caller's context for one call: its owner, opaque to the router.
pub type CallContext = Arc<dyn CallOwner>;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A whole answer (from a provider or the cache).
    Success,
    /// A stream that ran to its end.
    StreamEnd,
    /// No answer, or a stream cut by an error.
    Failure,
    /// The caller dropped the call (or its stream) before the end. What is known is
    /// reported: the deployment of the attempt in flight, and usage (reported by the
    /// provider, or estimated from the prompt and what was streamed, with
    /// [`CallEvent::usage_estimated`] set) priced as usual.
    Cancelled,
}

/// The standard payload of every hook event.
#[derive(Clone, Debug)]
pub struct CallEvent {
    /// How the call ended.
    pub kind: EventKind,
    /// The call's id (also in the tracing spans).
    pub call_id: String,
    /// The model name the caller asked for (the router's group).
    pub group: String,
    /// The deployment that answered (or last failed); none when no attempt was made.
    pub deployment: Option<String>,
    /// Its provider.
    pub provider: Option<ProviderKind>,
    /// The model id the provider was asked for.
    pub model: Option<String>,
    /// Whether the caller asked for a stream.
    pub stream: bool,
    /// When the call started.
    pub started_at: SystemTime,
    /// From the start to the answer (or the stream's end, or the failure).
    pub latency: Duration,
    /// From the start to the first streamed chunk.
    pub time_to_first_token: Option<Duration>,
    /// The tokens the provider reported (or, for a cancelled call, estimated).
    pub usage: Option<CompletionUsage>,
    /// Whether `usage` (and so the receipt) is an estimate: a call cancelled before the
    /// provider reported its usage is counted as its prompt (bytes / 4, or the exact count
    /// when one was made) plus what was streamed of the answer (bytes / 4).
    pub usage_estimated: bool,
    /// The cost receipt, where the model is priced.
    pub receipt: Option<Receipt>,
    /// Whether the answer came from the response cache.
    pub cache_hit: bool,
    /// Attempts made (0 for a cache hit).
    pub attempts: usize,
    /// The groups fallen back to, in order.
    pub fallbacks: Vec<String>,
    /// The kind of error, for failures.
    pub error_kind: Option<ErrorKind>,
    /// The error's message, for failures.
    pub error: Option<String>,
    /// The caller's context from [`crate::router::CallOptions::context`].
    pub context: Option<CallContext>,
}

/// What a hook returns on failure.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type SyncHook = Arc<dyn Fn(&CallEvent) -> Result<(), HookError> + Send + Sync>;
type AsyncHook =
    Arc<dyn Fn(Arc<CallEvent>) -> Pin<Box<dyn Future<Output = Result<(), HookError>> + Send>> + Send + Sync>;

/// The hooks of a router. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hooks {
    sync: Vec<SyncHook>,
    async_: Vec<AsyncHook>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks").field("sync", &self.sync.len()).field("async", &self.async_.len()).finish()
    }
}

impl Hooks {
    /// No hooks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a hook run inline when a call ends. Keep it quick: the caller waits for it.
    #[must_use]
    pub fn on_event(mut self, hook: impl Fn(&CallEvent) -> Result<(), HookError> + Send + Sync + 'static) -> Self {
        self.sync.push(Arc::new(hook));
        self
    }

    /// Adds a hook spawned on the Tokio runtime when a call ends; the call does not wait.
    #[must_use]
    pub fn on_event_async<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Arc<CallEvent>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.async_.push(Arc::new(move |event| Box::pin(hook(event))));
        self
    }

    /// Whether any hook is registered.
    pub fn is_empty(&self) -> bool {
        self.sync.is_empty() && self.async_.is_empty()
    }

    /// Runs every hook on `event`; nothing a hook does reaches the caller.
    pub(crate) fn emit(&self, event: CallEvent) {
        if let Some(owner) = &event.context
            && std::panic::catch_unwind(AssertUnwindSafe(|| owner.ended(&event))).is_err()
        {
            tracing::warn!(target: "switchyard::hooks", call_id = %event.call_id, "call owner panicked");
        }
        for hook in &self.sync {
            match std::panic::catch_unwind(AssertUnwindSafe(|| hook(&event))) {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(target: "switchyard::hooks", call_id = %event.call_id, error = %err, "hook failed")
                }
                Err(_) => tracing::warn!(target: "switchyard::hooks", call_id = %event.call_id, "hook panicked"),
            }
        }
        if self.async_.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(target: "switchyard::hooks", call_id = %event.call_id, "no Tokio runtime: async hooks skipped");
            return;
        };
        let event = Arc::new(event);
        for hook in &self.async_ {
            let (hook, event) = (hook.clone(), event.clone());
            runtime.spawn(async move {
                let call_id = event.call_id.clone();
                // A panicking async hook ends its own task only; the runtime logs nothing, so we do.
                match futures_util::FutureExt::catch_unwind(AssertUnwindSafe(hook(event))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(target: "switchyard::hooks", %call_id, error = %err, "async hook failed")
                    }
                    Err(_) => tracing::warn!(target: "switchyard::hooks", %call_id, "async hook panicked"),
                }
            });
        }
    }
}
