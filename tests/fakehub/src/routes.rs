//! Wires the Hub's paths to their handlers and holds what the handlers share: reading a JSON
//! body and finding the caller behind a bearer JWT (and whether it may manage tokens). Any
//! other path answers 404, any other method on a known path 405, both with a Docker-shaped
//! body.

use std::sync::Arc;

use axum::{
    Router,
    http::{HeaderMap, Method, StatusCode, header::AUTHORIZATION},
    routing::{get, post},
};
use serde_json::{Map, Value};

use crate::{
    errors::{self, Rejection},
    hub::{AuthError, Hub, Login, Session},
    path_access_tokens, path_auth, path_org_access_tokens,
};

pub(crate) fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/v2/auth/token", post(path_auth::auth_token))
        // Scripts in the wild call the legacy login paths with a trailing slash.
        .route("/v2/users/login", post(path_auth::users_login))
        .route("/v2/users/login/", post(path_auth::users_login))
        .route("/v2/users/2fa-login", post(path_auth::second_factor_login))
        .route("/v2/users/2fa-login/", post(path_auth::second_factor_login))
        .route(
            "/v2/access-tokens",
            post(path_access_tokens::create).get(path_access_tokens::list),
        )
        .route(
            "/v2/access-tokens/{uuid}",
            get(path_access_tokens::read)
                .patch(path_access_tokens::update)
                .delete(path_access_tokens::delete),
        )
        .route(
            "/v2/orgs/{org}/access-tokens",
            post(path_org_access_tokens::create).get(path_org_access_tokens::list),
        )
        .route(
            "/v2/orgs/{org}/access-tokens/{id}",
            get(path_org_access_tokens::read)
                .patch(path_org_access_tokens::update)
                .delete(path_org_access_tokens::delete),
        )
        .fallback(|| async { errors::not_found() })
        .method_not_allowed_fallback(|method: Method| async move {
            errors::detail(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("Method \"{method}\" not allowed."),
            )
        })
        .with_state(hub)
}

/// A request body as a JSON object; an empty body counts as `{}`. On anything else, the 400
/// the Hub sends for input it cannot read.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, Rejection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(Rejection::from(errors::validation(
            vec![],
            &format!(
                "Invalid data. Expected a dictionary, but got {}.",
                type_name(&other)
            ),
        ))),
        Err(error) => Err(Rejection::from(errors::validation(
            vec![],
            &format!("JSON parse error - {error}"),
        ))),
    }
}

/// The Python type name the Hub's validation messages use for a JSON value.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The caller behind the request's bearer JWT, or the 401 to answer with.
pub(crate) fn session(hub: &Hub, headers: &HeaderMap) -> Result<Session, Rejection> {
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    hub.authenticate(authorization).map_err(|error| {
        let message = match error {
            AuthError::Missing => "Authentication credentials were not provided.",
            AuthError::Invalid => "Invalid authentication token.",
            AuthError::Expired => "Authentication token has expired.",
        };
        errors::detail(StatusCode::UNAUTHORIZED, message).into()
    })
}

/// The caller, when allowed to manage access tokens (personal or organization): logged in, and
/// not with an access token. The Hub's words for a PAT login are observed; those for an OAT
/// login are not published, and follow them.
pub(crate) fn token_manager(hub: &Hub, headers: &HeaderMap) -> Result<Session, Rejection> {
    let session = session(hub, headers)?;
    let refusal = match session.login {
        Login::Password => return Ok(session),
        Login::Pat => "token issued from personal access token is not allowed",
        Login::Oat => "token issued from organization access token is not allowed",
    };
    Err(errors::detail(StatusCode::FORBIDDEN, refusal).into())
}
