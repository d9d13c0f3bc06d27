//! The login endpoints: `POST /v2/auth/token` (current), `POST /v2/users/login` (deprecated but
//! still used) and its second step `POST /v2/users/2fa-login`. All three issue the JWTs the
//! other endpoints take as `Authorization: Bearer`, and each answers errors in its own shape.
//!
//! A personal access token is accepted wherever a password is; the JWT it yields is marked so
//! that the access-token endpoints refuse it, as the Hub does. An organization access token
//! logs in only at `/v2/auth/token`, whose spec alone names it, and only with the
//! organization's name as the identifier; its JWT is refused on those endpoints as well.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::{
    errors::{self, Rejection},
    hub::{Credential, Hub, SecondFactorError},
    routes,
};

const INCORRECT: &str = "Incorrect authentication credentials";
const TWO_FACTOR_ON: &str = "Two-factor authentication is enabled on this account: use a personal access token or the 2FA login flow";
const SECOND_FACTOR_REQUIRED: &str = "Require secondary authentication on MFA enabled account";

/// `POST /v2/auth/token` `{"identifier", "secret"}` → 200 `{"access_token"}`; 401 in the
/// `errinfo` shape. The identifier is a username (with a password or PAT) or an organization's
/// name (with a live OAT of that organization).
pub async fn auth_token(State(hub): State<Arc<Hub>>, body: Bytes) -> Response {
    let (identifier, secret) = match credentials(&body, "identifier", "secret") {
        Ok(pair) => pair,
        Err(message) => return errors::errinfo(StatusCode::BAD_REQUEST, &message),
    };
    let (account, pat) = match hub.check_secret(&identifier, &secret) {
        Credential::Password {
            account,
            two_factor: false,
        } => (account, None),
        Credential::Pat { account, uuid } => (account, Some(uuid)),
        Credential::Oat { org, id } => {
            let jwt = hub.issue_org_jwt(&org, &id);
            return Json(json!({"access_token": jwt})).into_response();
        }
        Credential::Password {
            two_factor: true, ..
        } => return errors::errinfo(StatusCode::UNAUTHORIZED, TWO_FACTOR_ON),
        Credential::Invalid => return errors::errinfo(StatusCode::UNAUTHORIZED, INCORRECT),
    };
    let jwt = hub.issue_jwt(&account, pat.as_deref());
    Json(json!({"access_token": jwt})).into_response()
}

/// `POST /v2/users/login` `{"username", "password"}` → 200 `{"token"}`; with 2FA on, 401 with a
/// `login_2fa_token` for the second step.
pub async fn users_login(State(hub): State<Arc<Hub>>, body: Bytes) -> Response {
    let (username, password) = match credentials(&body, "username", "password") {
        Ok(pair) => pair,
        Err(message) => return errors::detail_only(StatusCode::BAD_REQUEST, &message),
    };
    let (account, pat) = match hub.check_secret(&username, &password) {
        Credential::Password {
            account,
            two_factor: false,
        } => (account, None),
        Credential::Pat { account, uuid } => (account, Some(uuid)),
        Credential::Password {
            account,
            two_factor: true,
        } => {
            let login_token = hub.start_second_factor(&account);
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"detail": SECOND_FACTOR_REQUIRED, "login_2fa_token": login_token})),
            )
                .into_response();
        }
        Credential::Oat { .. } | Credential::Invalid => {
            return errors::detail_only(StatusCode::UNAUTHORIZED, INCORRECT);
        }
    };
    let jwt = hub.issue_jwt(&account, pat.as_deref());
    Json(json!({"token": jwt})).into_response()
}

/// `POST /v2/users/2fa-login` `{"login_2fa_token", "code"}` → 200 `{"token"}`; 401 `{"detail"}`.
pub async fn second_factor_login(
    State(hub): State<Arc<Hub>>,
    body: Bytes,
) -> Result<Response, Rejection> {
    let fields = routes::json_object(&body)?;
    let login_token = fields.get("login_2fa_token").and_then(Value::as_str);
    // The spec's example shows the code as a bare number; authenticator codes keep leading zeros.
    let code = match fields.get("code") {
        Some(Value::String(code)) => Some(code.trim().to_owned()),
        Some(Value::Number(code)) => code.as_u64().map(|c| format!("{c:06}")),
        _ => None,
    };
    let (Some(login_token), Some(code)) = (login_token, code) else {
        return Err(errors::detail_only(
            StatusCode::BAD_REQUEST,
            "login_2fa_token and code are required",
        )
        .into());
    };
    let jwt = hub
        .finish_second_factor(login_token, &code)
        .map_err(|error| {
            let message = match error {
                SecondFactorError::UnknownLogin => "Invalid or expired login_2fa_token",
                SecondFactorError::WrongCode => "Invalid two-factor authentication code",
            };
            errors::detail_only(StatusCode::UNAUTHORIZED, message)
        })?;
    Ok(Json(json!({"token": jwt})).into_response())
}

/// The two string fields a login body must carry, or a message naming what is missing.
fn credentials(
    body: &[u8],
    user_field: &str,
    secret_field: &str,
) -> Result<(String, String), String> {
    let fields: Map<String, Value> =
        serde_json::from_slice(body).map_err(|error| format!("JSON parse error - {error}"))?;
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    match (text(user_field), text(secret_field)) {
        (Some(user), Some(secret)) => Ok((user, secret)),
        _ => Err(format!("{user_field} and {secret_field} are required")),
    }
}
