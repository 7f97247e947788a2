//! Authentication: who is calling. Every `/v1` route needs the master key or a live virtual
//! key ([`authenticate`]); the admin routes need the master key or a key with the admin role
//! ([`authenticate_admin`]). A key's secret is compared by its SHA-256 (the store keeps no
//! secret), and what a lookup found is cached for 10 s per instance.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::store::{KeyRecord, KeyRole, now_ms};
use super::{ApiFailure, Gateway};
use crate::error::ErrorKind;

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The master key: every model, no limits, the admin API.
    Master,
    /// A virtual key.
    Key(Arc<KeyRecord>),
}

impl Principal {
    /// The key, for a virtual key.
    pub fn key(&self) -> Option<&Arc<KeyRecord>> {
        match self {
            Self::Master => None,
            Self::Key(key) => Some(key),
        }
    }
}

/// SHA-256 of a secret, hex.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The key presented (`Authorization: Bearer`, `x-api-key` or `api-key`).
pub(super) fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

impl Gateway {
    /// Who a presented key belongs to: the master key, a live virtual key, or nobody.
    async fn principal(&self, presented: &str) -> Result<Principal, ApiFailure> {
        if self.is_master_key(presented) {
            return Ok(Principal::Master);
        }
        let hash = hash_secret(presented);
        let store = self.store.clone();
        let found = self
            .keys
            .try_get_with(hash.clone(), async move { store.key_by_hash(&hash).await.map(|k| k.map(Arc::new)) })
            .await
            .map_err(|e| ApiFailure::new(ErrorKind::Server, format!("cannot check the key: {e}")))?;
        let Some(key) = found else {
            return Err(ApiFailure::new(ErrorKind::Authentication, "the API key is not valid").code("invalid_api_key"));
        };
        if key.expires_at.is_some_and(|at| at <= now_ms()) {
            return Err(ApiFailure::new(ErrorKind::Authentication, format!("the API key {} has expired", key.id))
                .code("expired_api_key"));
        }
        Ok(Principal::Key(key))
    }
}

/// Deny by default: the `/v1` routes need the master key or a live virtual key.
/// Anthropic-format routes answer failures in Anthropic's envelope.
pub(super) async fn authenticate(State(gateway): State<Arc<Gateway>>, mut request: Request, next: Next) -> Response {
    let anthropic = request.uri().path().ends_with("/messages");
    let answer = |failure: ApiFailure| {
        if anthropic { super::envelope::anthropic_error(&failure) } else { failure.into_response() }
    };
    let Some(presented) = presented_key(request.headers()) else {
        return answer(
            ApiFailure::new(
                ErrorKind::Authentication,
                "no API key: send `Authorization: Bearer <key>` (or `x-api-key`)",
            )
            .code("missing_api_key"),
        );
    };
    match gateway.principal(presented).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            match super::intake::gather(&gateway, request).await {
                Ok(request) => next.run(request).await,
                Err(refused) => refused,
            }
        }
        Err(failure) => answer(failure),
    }
}

/// The admin routes need the master key or a live virtual key with the admin role: no key
/// or an unknown or expired one is 401, a key without the role 403.
pub(super) async fn authenticate_admin(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let Some(presented) = presented_key(request.headers()) else {
        return ApiFailure::new(
            ErrorKind::Authentication,
            "no API key: the admin API needs the master key or an admin key as `Authorization: Bearer <key>`",
        )
        .code("missing_api_key")
        .into_response();
    };
    let admitted = |request| async {
        match super::intake::gather(&gateway, request).await {
            Ok(request) => next.run(request).await,
            Err(refused) => refused,
        }
    };
    match gateway.principal(presented).await {
        Ok(Principal::Master) => admitted(request).await,
        Ok(Principal::Key(key)) if key.role == KeyRole::Admin => admitted(request).await,
        Ok(Principal::Key(key)) => ApiFailure::new(
            ErrorKind::PermissionDenied,
            format!(
                "the key {} may not use the admin API (it needs the master key or a key with role `admin`)",
                key.id
            ),
        )
        .code("admin_only")
        .into_response(),
        Err(failure) => failure.into_response(),
    }
}
