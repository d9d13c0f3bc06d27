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
//! `{"fields": {...}, "text"}`. A JWT obtained with an access token (personal or organization)
//! is refused with 403. Lookups are per account, so another account's token is 404 like a
//! missing one.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header::USER_AGENT},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    errors::{self, Rejection},
    fields::{self, REQUIRED, expires_at, label},
    hub::{Hub, NewToken},
    routes::{self, token_manager as manager},
};

const SCOPES: [&str; 4] = ["repo:admin", "repo:write", "repo:read", "repo:public_read"];

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
    let scopes = fields::choices(fields.get("scopes"), &SCOPES)
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
    let all = hub.list_tokens(&session.account);
    let url = format!("{}/v2/access-tokens", hub.base_url());
    let page = fields::paginate(query.as_deref(), all.results, &url)?;
    Ok(Json(json!({
        "count": page.total,
        "next": page.next,
        "previous": page.previous,
        "active_count": all.active_count,
        "results": page.results,
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
    let is_active = fields::optional_bool(fields.get("is_active"))
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
