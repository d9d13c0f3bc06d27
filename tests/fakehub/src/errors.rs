//! The Hub's error bodies. The Hub answers errors in several shapes depending on the endpoint
//! (see `docs/dockerhub-api.md`); each function here is one shape, so a handler's choice of
//! shape is visible at the call site.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

/// `{"detail", "message"}`: the access-token endpoints, 404s and most other errors.
pub fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"detail": message, "message": message}))).into_response()
}

/// `{"errinfo": {}, "detail", "message"}`: `/v2/auth/token`.
pub fn errinfo(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"errinfo": {}, "detail": message, "message": message})),
    )
        .into_response()
}

/// `{"detail"}` alone: the legacy `/v2/users/*` login endpoints.
pub fn detail_only(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"detail": message}))).into_response()
}

/// 400 `{"fields": {"<field>": ["<msg>", ...]}, "text"}`: input validation. `text` is the
/// first message, or `fallback` when the problem is not with one field.
pub fn validation(fields: Vec<(&str, String)>, fallback: &str) -> Response {
    let text = fields
        .first()
        .map_or_else(|| fallback.to_owned(), |(_, msg)| msg.clone());
    let mut by_field = Map::new();
    for (field, message) in fields {
        let entry = by_field
            .entry(field)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(messages) = entry {
            messages.push(Value::String(message));
        }
    }
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"fields": by_field, "text": text})),
    )
        .into_response()
}

pub fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not found")
}

/// Any status, for injected faults: the reason phrase as the message.
/// A made-up answer: this status and body, `Content-Type: application/json` when the body
/// parses as JSON and `text/html` otherwise.
pub fn raw(code: u16, body: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if serde_json::from_str::<Value>(body).is_ok() {
        "application/json"
    } else {
        "text/html"
    };
    (
        status,
        [(axum::http::header::CONTENT_TYPE, content_type)],
        body.to_owned(),
    )
        .into_response()
}

pub fn status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    detail(status, status.canonical_reason().unwrap_or("Error"))
}

/// An error answer on its way out of a handler, through `?`. Boxed because a `Response` is
/// too large to pass around in every `Result`.
#[derive(Debug)]
pub struct Rejection(Box<Response>);

impl From<Response> for Rejection {
    fn from(response: Response) -> Self {
        Rejection(Box::new(response))
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        *self.0
    }
}

pub fn rate_limited() -> Response {
    detail(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
}
