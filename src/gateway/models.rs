//! `GET /v1/models`: the model groups a key may use, in OpenAI's list shape, or in
//! Anthropic's (`data[].type`, `display_name`, `created_at`, and its paging: `limit`,
//! `after_id`, `before_id`, `has_more`, `first_id`, `last_id`) when the client speaks
//! Anthropic, which it says with an `anthropic-version` header.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Principal;
use super::envelope::anthropic_error;
use super::{ApiFailure, Gateway};

/// Anthropic's default page size, and its largest.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

/// No group has a creation date; Anthropic's shape requires one, so it is the epoch.
const UNKNOWN_DATE: &str = "1970-01-01T00:00:00Z";

pub(super) async fn models(
    State(gateway): State<Arc<Gateway>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let allowed =
        |group: &&str| principal.key().is_none_or(|k| k.models.is_empty() || k.models.iter().any(|m| m == group));
    let groups: Vec<&str> = gateway.router.groups().into_iter().filter(allowed).collect();
    if headers.contains_key("anthropic-version") {
        return match anthropic_page(&groups, &query) {
            Ok(page) => axum::Json(page).into_response(),
            Err(failure) => anthropic_error(&failure),
        };
    }
    let data: Vec<_> =
        groups.iter().map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "switchyard"})).collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// One page of `groups` (sorted by name) in Anthropic's shape.
fn anthropic_page(groups: &[&str], query: &HashMap<String, String>) -> Result<serde_json::Value, ApiFailure> {
    let limit =
        match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiFailure::bad_request(format!("`limit` must be a whole number from 1 to {MAX_LIMIT}"))
            })?,
        };
    // A cursor past or before a name that is not listed starts from where that name would be.
    let start = query.get("after_id").map_or(0, |after| groups.partition_point(|g| *g <= after.as_str()));
    let end = query.get("before_id").map_or(groups.len(), |before| groups.partition_point(|g| *g < before.as_str()));
    let window = groups.get(start..end.max(start)).unwrap_or_default();
    // With `before_id` alone the page is the one just before it, as Anthropic pages back.
    let page = if query.contains_key("before_id") && !query.contains_key("after_id") {
        &window[window.len().saturating_sub(limit)..]
    } else {
        &window[..window.len().min(limit)]
    };
    let data: Vec<_> = page
        .iter()
        .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": UNKNOWN_DATE}))
        .collect();
    Ok(json!({
        "data": data,
        "has_more": page.len() < window.len(),
        "first_id": page.first(),
        "last_id": page.last(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(groups: &[&str], query: &[(&str, &str)]) -> serde_json::Value {
        let query = query.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        anthropic_page(groups, &query).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn pages_walk_forward_and_back_by_cursor() {
        let groups = ["a", "b", "c", "d", "e"];
        let first = page(&groups, &[("limit", "2")]);
        assert_eq!(
            first["data"][0],
            json!({"type": "model", "id": "a", "display_name": "a", "created_at": UNKNOWN_DATE})
        );
        assert_eq!(
            (first["first_id"].clone(), first["last_id"].clone(), first["has_more"].clone()),
            (json!("a"), json!("b"), json!(true))
        );
        let next = page(&groups, &[("limit", "2"), ("after_id", "b")]);
        assert_eq!((next["first_id"].clone(), next["last_id"].clone()), (json!("c"), json!("d")));
        let last = page(&groups, &[("limit", "2"), ("after_id", "d")]);
        assert_eq!((last["first_id"].clone(), last["has_more"].clone()), (json!("e"), json!(false)));
        let back = page(&groups, &[("limit", "2"), ("before_id", "e")]);
        assert_eq!(
            (back["first_id"].clone(), back["last_id"].clone(), back["has_more"].clone()),
            (json!("c"), json!("d"), json!(true))
        );
        let empty = page(&groups, &[("after_id", "e")]);
        assert_eq!(
            (empty["data"].clone(), empty["first_id"].clone(), empty["has_more"].clone()),
            (json!([]), json!(null), json!(false))
        );
    }

    #[test]
    fn a_limit_out_of_range_is_refused() {
        for bad in ["0", "1001", "-1", "many"] {
            let query = HashMap::from([("limit".to_string(), bad.to_string())]);
            assert!(anthropic_page(&["a"], &query).is_err(), "{bad}");
        }
    }
}
