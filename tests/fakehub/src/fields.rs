//! What the token endpoints of both families (personal, `path_access_tokens`, and
//! organization, `path_org_access_tokens`) read and answer alike: labels, expiry times, the
//! `page`/`page_size` query and the page it selects. Messages are the Django REST framework
//! ones the Hub sends in its `{"fields", "text"}` validation errors.

use serde_json::Value;

use crate::{
    clock,
    errors::{self, Rejection},
    routes,
};

const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 100;
const MAX_LABEL_CHARS: usize = 100;

pub const REQUIRED: &str = "This field is required.";

/// A label: a string of 1–100 characters once trimmed.
pub fn label(value: &Value) -> Result<String, String> {
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

/// An RFC 3339 time in the future; `Ok(None)` when absent or null (never expires).
pub fn expires_at(value: Option<&Value>) -> Result<Option<time::OffsetDateTime>, String> {
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

/// A non-empty list of strings, each one of `valid`.
pub fn choices(value: Option<&Value>, valid: &[&str]) -> Result<Vec<String>, String> {
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
            Some(choice) if valid.contains(&choice) => Ok(choice.to_owned()),
            _ => Err(format!("\"{}\" is not a valid choice.", display(item))),
        })
        .collect()
}

/// An optional boolean, such as `is_active` in an update.
pub fn optional_bool(value: Option<&Value>) -> Result<Option<bool>, String> {
    match value {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::Null) => Err("This field may not be null.".to_owned()),
        Some(_) => Err("Must be a valid boolean.".to_owned()),
    }
}

/// A JSON value as it appears inside a validation message.
pub fn display(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One page of a listing, as the Hub's Django paginator cuts it.
#[derive(Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// Items on all pages.
    pub total: usize,
    /// Absolute URLs of the neighbouring pages, or `None`.
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// The page of `all` that the query's `page` and `page_size` select; `url` is the listing's
/// absolute URL without a query, for the `next` and `previous` links. Page 1 always exists,
/// later pages only when they hold results (404 `Invalid page.` otherwise).
pub fn paginate<T>(query: Option<&str>, all: Vec<T>, url: &str) -> Result<Page<T>, Rejection> {
    let (page, page_size) = paging(query)?;
    let total = all.len();
    let start = (page - 1).saturating_mul(page_size);
    if page > 1 && start >= total {
        return Err(errors::detail(axum::http::StatusCode::NOT_FOUND, "Invalid page.").into());
    }
    let page_url = |n: usize| format!("{url}?page={n}&page_size={page_size}");
    Ok(Page {
        total,
        next: (start + page_size < total).then(|| page_url(page + 1)),
        previous: (page > 1).then(|| page_url(page - 1)),
        results: all.into_iter().skip(start).take(page_size).collect(),
    })
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
    use axum::{
        http::StatusCode,
        response::{IntoResponse, Response},
    };
    use serde_json::json;

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
    fn choices_must_be_a_non_empty_list_of_known_values() {
        let valid = ["repo:read", "repo:admin"];
        assert_eq!(
            choices(Some(&json!(["repo:read", "repo:admin"])), &valid).unwrap(),
            vec!["repo:read", "repo:admin"]
        );
        assert_eq!(choices(None, &valid).unwrap_err(), REQUIRED);
        assert_eq!(
            choices(Some(&json!("repo:read")), &valid).unwrap_err(),
            "Expected a list of items but got type \"str\"."
        );
        assert!(choices(Some(&json!([])), &valid).is_err());
        assert_eq!(
            choices(Some(&json!(["repo:delete"])), &valid).unwrap_err(),
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

    #[test]
    fn pages_link_their_neighbours() {
        let url = "http://hub/v2/x";
        let page = paginate(Some("page=2&page_size=2"), vec![1, 2, 3, 4, 5], url).unwrap();
        assert_eq!(
            page,
            Page {
                total: 5,
                next: Some(format!("{url}?page=3&page_size=2")),
                previous: Some(format!("{url}?page=1&page_size=2")),
                results: vec![3, 4],
            }
        );
        let empty = paginate::<u8>(None, vec![], url).unwrap();
        assert_eq!((empty.total, empty.next, empty.previous), (0, None, None));
        let beyond = paginate(Some("page=2"), vec![1], url).unwrap_err();
        assert_eq!(beyond.into_response().status(), StatusCode::NOT_FOUND);
    }
}
