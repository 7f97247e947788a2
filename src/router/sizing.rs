//! Token counts and cost estimates: what the context-window pre-check, the tpm limits and the
//! gateway's budget reservation need to know of a request before it is sent.

use std::collections::HashMap;

use super::Router;
use super::deployment::Live;
use crate::ChatRequest;
use crate::provider::ProviderKind;
use crate::tokens::{TokenCount, chat_upper_bound, count_chat_async, reserved_output};

/// Token counts for the context-window pre-check and tpm limits, counted only when needed.
pub(super) struct Sizing<'r> {
    request: Option<&'r ChatRequest>,
    bound: u64,
    pub(super) reserved: u64,
    counts: HashMap<(ProviderKind, String), TokenCount>,
}

impl<'r> Sizing<'r> {
    pub(super) fn new(request: Option<&'r ChatRequest>) -> Self {
        Self {
            request,
            bound: request.map_or(0, chat_upper_bound),
            reserved: request.map_or(0, reserved_output),
            counts: HashMap::new(),
        }
    }

    /// The prompt's tokens for the deployment's tokenizer, counted once per tokenizer (off
    /// the event loop when the prompt is large: [`count_chat_async`]).
    pub(super) async fn count(&mut self, live: &Live) -> u64 {
        let Some(request) = self.request else { return 0 };
        let key = (live.kind, live.model.clone());
        if let Some(count) = self.counts.get(&key) {
            return count.tokens;
        }
        let count = count_chat_async(live.kind, &live.model, request, self.bound).await;
        self.counts.insert(key, count);
        count.tokens
    }

    /// The prompt's tokens as far as known without counting: a count made for any
    /// deployment, else four bytes a token.
    pub(super) fn estimate(&self) -> u64 {
        self.counts.values().map(|c| c.tokens).max().unwrap_or_else(|| self.bound.div_ceil(4))
    }

    /// Whether the prompt and the reserved output fit the deployment's window.
    pub(super) async fn fits(&mut self, live: &Live) -> bool {
        let Some(window) = live.context_window else { return true };
        self.request.is_none()
            || self.bound + self.reserved <= window
            || self.count(live).await + self.reserved <= window
    }

    /// Tokens to count against the deployment's tpm before the call.
    pub(super) async fn for_limits(&mut self, live: &Live) -> u64 {
        if live.tpm.is_some() { self.count(live).await } else { 0 }
    }
}

/// Output tokens reserved for a call that sets no `max_tokens` on a model whose most the
/// price registry does not know.
pub const DEFAULT_RESERVED_OUTPUT: u64 = 4096;

/// What a call may use, worked out before it is made: what the gateway reserves against a
/// key's budget and tokens per minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// The prompt's tokens (the largest count over the group's tokenizers).
    pub prompt_tokens: u64,
    /// The output reserved: `max_completion_tokens` / `max_tokens`, else the model's most
    /// (from the price registry), else [`DEFAULT_RESERVED_OUTPUT`]; the largest over the group.
    pub output_tokens: u64,
    /// The prompt alone at the priciest deployment: what the call costs at least.
    pub prompt_cost: Option<crate::pricing::Usd>,
    /// The prompt and the reserved output at the priciest deployment: what it costs at most
    /// (when the provider keeps to the reserved output).
    pub full_cost: Option<crate::pricing::Usd>,
}

impl Router {
    /// What this request can be expected to use on its group ([`Estimate`]); `None` when
    /// the group is unknown. Large prompts are counted off the event loop.
    pub async fn estimate(&self, request: &ChatRequest) -> Option<Estimate> {
        let deployments = self.inner.groups.get(self.inner.resolve(&request.model)?)?;
        let mut sizing = Sizing::new(Some(request));
        let mut estimate = Estimate::default();
        // Each of `n` choices has its own output.
        let choices = request.n.unwrap_or(1).clamp(1, crate::spec::ext::MAX_CHOICES).unsigned_abs();
        for live in deployments {
            let prompt = sizing.count(live).await;
            let output = match sizing.reserved {
                0 => live.max_output.unwrap_or(DEFAULT_RESERVED_OUTPUT),
                reserved => reserved,
            }
            .saturating_mul(choices);
            estimate.prompt_tokens = estimate.prompt_tokens.max(prompt);
            estimate.output_tokens = estimate.output_tokens.max(output);
            estimate.prompt_cost = estimate.prompt_cost.max(live.expected_cost(prompt, 0));
            estimate.full_cost = estimate.full_cost.max(live.expected_cost(prompt, output));
        }
        Some(estimate)
    }
}
