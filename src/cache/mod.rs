//! The response cache: whole chat answers keyed by the normalised request, in memory (moka,
//! bounded by size, with per-entry TTL) or in Redis (shared by every instance).
//!
//! The key is the SHA-256 of the request's JSON with the fields that do not change the answer
//! removed (`user`, `metadata`, `stream`, `stream_options`, `store`, `safety_identifier`,
//! `prompt_cache_key`, `service_tier`). serde_json writes object keys sorted, so the same
//! request always gives the same key, on every instance. A streamed answer is stored whole
//! once it ended cleanly, and a hit is replayed as a stream when one is asked for: streamed
//! and whole requests share entries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "redis")]
use redis::AsyncCommands as _;
#[cfg(feature = "redis")]
use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::{ChatChunk, ChatRequest, ChatResponse};

/// Fields of a request that do not change its answer, left out of the key.
const NOT_IN_KEY: &[&str] =
    &["user", "metadata", "stream", "stream_options", "store", "safety_identifier", "prompt_cache_key", "service_tier"];

/// Per-request cache control (LiteLLM's `cache: {"no-cache": ..., "no-store": ..., "ttl": ...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// Do not answer from the cache (the answer may still be stored).
    pub no_cache: bool,
    /// Do not store this answer.
    pub no_store: bool,
    /// Keep this answer for this long instead of the cache's default.
    pub ttl: Option<Duration>,
}

/// A response cache. Cheap to clone.
#[derive(Clone)]
pub struct ResponseCache {
    backend: Backend,
    default_ttl: Duration,
}

#[derive(Clone)]
enum Backend {
    Memory(moka::future::Cache<String, Entry>),
    #[cfg(feature = "redis")]
    Redis {
        connection: ConnectionManager,
        prefix: String,
    },
}

#[derive(Clone)]
struct Entry {
    response: Arc<ChatResponse>,
    bytes: u32,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _created_at: std::time::Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.backend {
            Backend::Memory(cache) => format!("memory ({} entries)", cache.entry_count()),
            #[cfg(feature = "redis")]
            Backend::Redis { prefix, .. } => format!("redis (prefix {prefix:?})"),
        };
        f.debug_struct("ResponseCache").field("backend", &backend).field("default_ttl", &self.default_ttl).finish()
    }
}

impl ResponseCache {
    /// An in-process cache holding at most `max_bytes` of answers (as JSON), each for
    /// `default_ttl` unless the request says otherwise.
    pub fn memory(max_bytes: u64, default_ttl: Duration) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &Entry| entry.bytes.saturating_add(key.len() as u32))
            .expire_after(PerEntryTtl)
            .build();
        Self { backend: Backend::Memory(cache), default_ttl }
    }

    /// A cache in Redis at `url`, keys under `prefix`. Connects now, so a wrong URL or a Redis
    /// that is down is reported at start-up.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str, prefix: &str, default_ttl: Duration) -> Result<Self> {
        let connection = crate::redis_conn::connect(url).await?;
        Ok(Self { backend: Backend::Redis { connection, prefix: prefix.to_string() }, default_ttl })
    }

    /// The key of a request: hex SHA-256 of its normalised JSON.
    pub fn key(request: &ChatRequest) -> Result<String> {
        let mut value =
            serde_json::to_value(request).map_err(|e| Error::invalid(format!("unserialisable request: {e}"), None))?;
        if let Value::Object(map) = &mut value {
            for field in NOT_IN_KEY {
                map.remove(*field);
            }
        }
        let digest = Sha256::digest(value.to_string().as_bytes());
        let mut key = String::with_capacity(digest.len() * 2);
        for byte in digest {
            key.push_str(&format!("{byte:02x}"));
        }
        Ok(key)
    }

    /// The answer stored under `key`, if any. A Redis entry that no longer decodes (written by
    /// another version) is a miss.
    pub async fn get(&self, key: &str) -> Result<Option<ChatResponse>> {
        match &self.backend {
            Backend::Memory(cache) => Ok(cache.get(key).await.map(|entry| (*entry.response).clone())),
            #[cfg(feature = "redis")]
            Backend::Redis { connection, prefix } => {
                let mut connection = connection.clone();
                let text: Option<String> = connection.get(format!("{prefix}{key}")).await.map_err(Error::redis)?;
                Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
            }
        }
    }

    /// Stores an answer under `key` for `ttl` (else the default).
    pub async fn put(&self, key: &str, response: &ChatResponse, ttl: Option<Duration>) -> Result<()> {
        let ttl = ttl.unwrap_or(self.default_ttl).min(crate::bounds::MAX_TTL);
        if ttl.is_zero() {
            return Ok(());
        }
        let text = serde_json::to_string(response).map_err(|e| Error::Internal(format!("cache: {e}")))?;
        match &self.backend {
            Backend::Memory(cache) => {
                let bytes = u32::try_from(text.len()).unwrap_or(u32::MAX);
                cache.insert(key.to_string(), Entry { response: Arc::new(response.clone()), bytes, ttl }).await;
            }
            #[cfg(feature = "redis")]
            Backend::Redis { connection, prefix } => {
                let mut connection = connection.clone();
                let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let _: () = redis::cmd("SET")
                    .arg(format!("{prefix}{key}"))
                    .arg(text)
                    .arg("PX")
                    .arg(millis)
                    .query_async(&mut connection)
                    .await
                    .map_err(Error::redis)?;
            }
        }
        Ok(())
    }
}

/// A whole answer as the chunks of a stream: one content chunk per choice (tool calls with
/// their indexes), one finish chunk per choice, then the usage chunk when asked for.
pub fn replay_chunks(response: &ChatResponse, include_usage: bool) -> Result<Vec<ChatChunk>> {
    let value = serde_json::to_value(response).map_err(|e| Error::Internal(format!("cache replay: {e}")))?;
    let head = |choices: Value| {
        json!({
            "id": value["id"], "object": "chat.completion.chunk", "created": value["created"],
            "model": value["model"], "system_fingerprint": value.get("system_fingerprint"),
            "choices": choices,
        })
    };
    let mut chunks = Vec::new();
    let choices = value["choices"].as_array().map(Vec::as_slice).unwrap_or_default();
    for choice in choices {
        let mut delta = choice["message"].as_object().cloned().unwrap_or_default();
        if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
            for (i, call) in calls.iter_mut().enumerate() {
                if let Value::Object(call) = call {
                    call.insert("index".into(), json!(i));
                }
            }
        }
        let mut content = json!({"index": choice["index"], "delta": delta});
        if let Some(logprobs) = choice.get("logprobs").filter(|l| !l.is_null()) {
            content["logprobs"] = logprobs.clone();
        }
        chunks.push(head(json!([content])));
    }
    for choice in choices {
        chunks.push(head(json!([{"index": choice["index"], "delta": {}, "finish_reason": choice["finish_reason"]}])));
    }
    if include_usage && let Some(usage) = value.get("usage").filter(|u| !u.is_null()) {
        let mut last = head(json!([]));
        last["usage"] = usage.clone();
        chunks.push(last);
    }
    chunks
        .into_iter()
        .map(|chunk| serde_json::from_value(chunk).map_err(|e| Error::Internal(format!("cache replay: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatMessage, ChunkAccumulator};

    fn answer() -> ChatResponse {
        serde_json::from_value(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {
                "role": "assistant", "content": "Checking.", "refusal": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
            }}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keys_ignore_user_metadata_and_stream_but_not_parameters() {
        let base = ChatRequest::new("gpt-4o", vec![ChatMessage::user("Hi")]);
        let key = ResponseCache::key(&base).unwrap_or_else(|e| panic!("{e}"));
        let mut other = base.clone();
        other.user = Some("alice".into());
        other.stream = Some(true);
        assert_eq!(ResponseCache::key(&other).ok(), Some(key.clone()));
        other.temperature = Some(0.5);
        assert_ne!(ResponseCache::key(&other).ok(), Some(key.clone()));
        let mut other_model = base;
        other_model.model = "gpt-4o-mini".into();
        assert_ne!(ResponseCache::key(&other_model).ok(), Some(key.clone()));
        assert_eq!(key.len(), 64);
    }

    #[test]
    fn a_replayed_answer_assembles_to_the_same_answer() {
        let answer = answer();
        let chunks = replay_chunks(&answer, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chunks.len(), 3);
        let mut acc = ChunkAccumulator::new();
        chunks.iter().for_each(|c| acc.push(c));
        let assembled = acc.finish();
        assert_eq!(serde_json::to_value(&assembled.choices).ok(), serde_json::to_value(&answer.choices).ok());
        assert_eq!(assembled.usage, answer.usage);
        assert_eq!(replay_chunks(&answer, false).map(|c| c.len()).ok(), Some(2));
    }
}
