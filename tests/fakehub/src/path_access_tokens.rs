//! Personal access tokens: `/v2/access-tokens` (create, list) and `/v2/access-tokens/{uuid}`
//! (read, update, delete), for the account behind the bearer JWT.
//!
//! Fields, as the spec's `createAccessTokenRequest` and `patchAccessTokenRequest` give them:
//! - `token_label`: required on create, 1–100 characters.
//! - `scopes`: required on create, a non-empty list of `repo:admin`, `repo:write`, `repo:read`,
//!   `repo:public_read`. Cannot change.
//! - `expires_at`: optional RFC 3339 time in the future; absent or null means never. Cannot
//!   change.
//! - `is_active`: update only.
//!
//! Validation messages are the Django REST framework ones the Hub sends, in
//! `{"fields": {...}, "text"}`. A JWT obtained with a personal access token is refused with 403.
//! Lookups are per account, so another account's token is 404 like a missing one.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header::USER_AGENT},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{
    clock,
    errors::{self, Rejection},
    hub::{Hub, NewToken, Session, is_valid_scope},
    routes,
};

const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 100;
const MAX_LABEL_CHARS: usize = 100;

const REQUIRED: &str = "This field is required.";

/// `POST /v2/access-tokens` → 201 token object with the secret.
pub async fn create(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let session = manager(&hub, &headers)?;
    let fields = routes::json_object(&body)?;
    let mut problems = Vec::new();
    let label = match fields.get("token_label") {
        None => Err(REQUIRED.to_owned()),
        Some(value) => label(value),
    }
    .map_err(|message| problems.push(("token_label", message)))
    .ok();
    let scopes = scopes(fields.get("scopes"))
        .map_err(|message| problems.push(("scopes", message)))
        .ok();
    let expires = expires_at(fields.get("expires_at"))
        .map_err(|message| problems.push(("expires_at", message)))
        .ok();
    let (Some(label), Some(scopes), Some(expires)) = (label, scopes, expires) else {
        return Err(errors::validation(problems, "Invalid input.").into());
    };
    let creator_ua = headers
        .get(USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let token = hub.create_token(
        &session.account,
        NewToken {
            label,
            scopes,
            expires,
            creator_ip: peer.ip().to_string(),
            creator_ua,
        },
    );
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

/// `GET /v2/access-tokens?page=1&page_size=10` → the account's tokens, newest first, without
/// secrets. `next`/`previous` are absolute URLs on this fake, or null.
pub async fn list(
    State(hub): State<Arc<Hub>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    let session = manager(&hub, &headers)?;
    let (page, page_size) = paging(query.as_deref())?;
    let all = hub.list_tokens(&session.account);
    let count = all.results.len();
    let start = (page - 1).saturating_mul(page_size);
    // Like Django's paginator: page 1 always exists, later pages only when they hold results.
    if page > 1 && start >= count {
        return Err(errors::detail(StatusCode::NOT_FOUND, "Invalid page.").into());
    }
    let page_url = |n: usize| {
        format!(
            "{}/v2/access-tokens?page={n}&page_size={page_size}",
            hub.base_url()
        )
    };
    let next = (start + page_size < count).then(|| page_url(page + 1));
    let previous = (page > 1).then(|| page_url(page - 1));
    let results: Vec<Value> = all
        .results
        .into_iter()
        .skip(start)
        .take(page_size)
        .collect();
    Ok(Json(json!({
        "count": count,
        "next": next,
        "previous": previous,
        "active_count": all.active_count,
        "results": results,
    }))
    .into_response())
}

/// `GET /v2/access-tokens/{uuid}` → the token object without its secret.
pub async fn read(
    State(hub): State<Arc<Hub>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    let session = manager(&hub, &headers)?;
    match hub.get_token(&session.account, &uuid) {
        Some(token) => Ok(Json(token).into_response()),
        None => Err(errors::not_found().into()),
    }
}

/// `PATCH /v2/access-tokens/{uuid}` `{"token_label"?, "is_active"?}` → the updated token
/// object. Other fields (scopes, expiry) are read-only and ignored, as a Django serializer does.
pub async fn update(
    State(hub): State<Arc<Hub>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let session = manager(&hub, &headers)?;
    // The Hub looks the token up before it reads the body: 404 wins over 400.
    if !hub.has_token(&session.account, &uuid) {
        return Err(errors::not_found().into());
    }
    let fields = routes::json_object(&body)?;
    let mut problems = Vec::new();
    let new_label = fields
        .get("token_label")
        .map(label)
        .transpose()
        .map_err(|message| problems.push(("token_label", message)))
        .ok();
    let is_active = match fields.get("is_active") {
        None => Ok(None),
        Some(Value::Bool(active)) => Ok(Some(*active)),
        Some(Value::Null) => Err("This field may not be null.".to_owned()),
        Some(_) => Err("Must be a valid boolean.".to_owned()),
    }
    .map_err(|message| problems.push(("is_active", message)))
    .ok();
    let (Some(new_label), Some(is_active)) = (new_label, is_active) else {
        return Err(errors::validation(problems, "Invalid input.").into());
    };
    match hub.update_token(&session.account, &uuid, new_label, is_active) {
        Some(token) => Ok(Json(token).into_response()),
        None => Err(errors::not_found().into()),
    }
}

/// `DELETE /v2/access-tokens/{uuid}` → 204; 404 when the account has no such token.
pub async fn delete(
    State(hub): State<Arc<Hub>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    let session = manager(&hub, &headers)?;
    if hub.delete_token(&session.account, &uuid) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(errors::not_found().into())
    }
}

/// The caller, when allowed to manage tokens: logged in, and not with a personal access token.
fn manager(hub: &Hub, headers: &HeaderMap) -> Result<Session, Rejection> {
    let session = routes::session(hub, headers)?;
    if session.from_pat {
        return Err(errors::detail(
            StatusCode::FORBIDDEN,
            "token issued from personal access token is not allowed",
        )
        .into());
    }
    Ok(session)
}

fn label(value: &Value) -> Result<String, String> {
    let text = match value {
        Value::String(text) => text.trim(),
        Value::Null => return Err("This field may not be null.".to_owned()),
        _ => return Err("Not a valid string.".to_owned()),
    };
    match text.chars().count() {
        0 => Err("This field may not be blank.".to_owned()),
        n if n > MAX_LABEL_CHARS => Err(format!(
            "Ensure this field has no more than {MAX_LABEL_CHARS} characters."
        )),
        _ => Ok(text.to_owned()),
    }
}

fn scopes(value: Option<&Value>) -> Result<Vec<String>, String> {
    let items = match value {
        None => return Err(REQUIRED.to_owned()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(format!(
                "Expected a list of items but got type \"{}\".",
                routes::type_name(other)
            ));
        }
    };
    if items.is_empty() {
        return Err("This list may not be empty.".to_owned());
    }
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(scope) if is_valid_scope(scope) => Ok(scope.to_owned()),
            _ => Err(format!("\"{}\" is not a valid choice.", display(item))),
        })
        .collect()
}

/// `Ok(None)` when absent or null (never expires).
fn expires_at(value: Option<&Value>) -> Result<Option<time::OffsetDateTime>, String> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text,
        Some(_) => return Err(wrong_datetime()),
    };
    let at = clock::parse(text.trim()).ok_or_else(wrong_datetime)?;
    if at <= clock::now() {
        return Err("Expiration date must be in the future.".to_owned());
    }
    Ok(Some(at))
}

fn wrong_datetime() -> String {
    "Datetime has wrong format. Use one of these formats instead: \
     YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
        .to_owned()
}

/// A JSON value as it appears inside a validation message.
fn display(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `page` (default 1) and `page_size` (default 10, at most 100) from the query string.
fn paging(query: Option<&str>) -> Result<(usize, usize), Rejection> {
    let param = |name: &str| {
        query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    };
    let page = match param("page") {
        None => 1,
        Some(text) => match text.parse::<usize>() {
            Ok(page) if page >= 1 => page,
            _ => {
                return Err(errors::validation(
                    vec![("page", "A valid integer is required.".to_owned())],
                    "Invalid page.",
                )
                .into());
            }
        },
    };
    // Django's paginator falls back to the default for a page size it cannot use.
    let page_size = param("page_size")
        .and_then(|text| text.parse::<usize>().ok())
        .filter(|size| *size >= 1)
        .map_or(DEFAULT_PAGE_SIZE, |size| size.min(MAX_PAGE_SIZE));
    Ok((page, page_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: Response) -> Value {
        use http_body_util::BodyExt;
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(label(&json!("  ci  ")).unwrap(), "ci");
        assert!(label(&json!("   ")).is_err());
        assert!(label(&json!("x".repeat(100))).is_ok());
        assert!(label(&json!("x".repeat(101))).is_err());
        assert!(label(&json!(5)).is_err());
    }

    #[test]
    fn scopes_must_be_a_non_empty_list_of_known_scopes() {
        assert_eq!(
            scopes(Some(&json!(["repo:read", "repo:admin"]))).unwrap(),
            vec!["repo:read", "repo:admin"]
        );
        assert_eq!(scopes(None).unwrap_err(), REQUIRED);
        assert_eq!(
            scopes(Some(&json!("repo:read"))).unwrap_err(),
            "Expected a list of items but got type \"str\"."
        );
        assert!(scopes(Some(&json!([]))).is_err());
        assert_eq!(
            scopes(Some(&json!(["repo:delete"]))).unwrap_err(),
            "\"repo:delete\" is not a valid choice."
        );
    }

    #[test]
    fn expiry_is_optional_but_must_be_future_rfc3339() {
        assert_eq!(expires_at(None).unwrap(), None);
        assert_eq!(expires_at(Some(&Value::Null)).unwrap(), None);
        assert!(
            expires_at(Some(&json!("2999-01-01T00:00:00Z")))
                .unwrap()
                .is_some()
        );
        assert!(expires_at(Some(&json!("2000-01-01T00:00:00Z"))).is_err());
        assert!(expires_at(Some(&json!("next week"))).is_err());
    }

    #[test]
    fn paging_defaults_and_caps() {
        assert_eq!(paging(None).unwrap(), (1, 10));
        assert_eq!(paging(Some("page=3&page_size=500")).unwrap(), (3, 100));
        assert_eq!(paging(Some("page_size=abc")).unwrap(), (1, 10));
        let bad = paging(Some("page=0")).unwrap_err().into_response();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body_json(bad)["fields"]["page"][0],
            "A valid integer is required."
        );
    }
}
