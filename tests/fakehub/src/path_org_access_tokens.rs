//! Organization access tokens (OATs): `/v2/orgs/{org}/access-tokens` (create, list) and
//! `/v2/orgs/{org}/access-tokens/{id}` (read, update, delete), for an owner of the
//! organization logged in with a password.
//!
//! Fields, as the spec's `createOrgAccessTokenRequest` and `updateOrgAccessTokenRequest` give
//! them, with the bounds of Docker's docs:
//! - `label`: required on create, 1–100 characters (the PAT label's bounds; the spec gives none).
//! - `description`: optional string.
//! - `expires_at`: optional RFC 3339 time in the future, at most a year away (the docs' "expiry
//!   up to one year"); absent or null means never. Cannot change.
//! - `resources`: required on create, 1–50 (the docs' "up to 50 repositories") of
//!   `{"type": "TYPE_REPO", "path", "scopes"}`. `path` is `<org>/<repo>` for a repository of
//!   this organization, `<org>/*` for all of them, or `*/*/public` for every public repository
//!   (pull only, as the UI's "Read public repositories"). `scopes` is a non-empty list of
//!   `scope-image-pull`, `scope-image-push`. The spec's other type, `TYPE_ORG` (organization
//!   management), documents neither its paths nor its scopes: the fake refuses it.
//! - `is_active`: update only.
//!
//! Validation errors are 400 `{"fields", "text"}` as on the PAT endpoints; a message about one
//! resource starts with where it is, e.g. `resources[2].path: `. Other refusals are
//! `{"detail", "message"}` (the spec's `Error` for these paths): 401 without a valid JWT, 403
//! for a JWT from an access-token login, 404 for an unknown organization, 403 for a caller who
//! does not own it, 403 when its plan has no OATs or no room for one more.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::{
    clock,
    errors::{self, Rejection},
    fields::{self, REQUIRED, label},
    hub::{
        Hub, NewOrgToken, OrgAccessError, OrgTokenRefusal, OrgTokenResource, OrgTokenUpdate,
        OrgView,
    },
    routes::{self, token_manager},
};

const SCOPES: [&str; 2] = ["scope-image-pull", "scope-image-push"];
const PUBLIC_REPOSITORIES: &str = "*/*/public";
const MAX_RESOURCES: usize = 50;
/// "Up to one year": 366 days, so that a year from a day before a 29 February fits.
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// `POST /v2/orgs/{org}/access-tokens` → 201 `createOrgAccessTokenResponse`, with the secret.
pub async fn create(
    State(hub): State<Arc<Hub>>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let (account, org) = owner(&hub, &headers, &org)?;
    let fields = routes::json_object(&body)?;
    let mut problems = Vec::new();
    let label = match fields.get("label") {
        None => Err(REQUIRED.to_owned()),
        Some(value) => label(value),
    }
    .map_err(|message| problems.push(("label", message)))
    .ok();
    let description = description(fields.get("description"))
        .map_err(|message| problems.push(("description", message)))
        .ok();
    let expires = expires_at(fields.get("expires_at"))
        .map_err(|message| problems.push(("expires_at", message)))
        .ok();
    let resources = resources(fields.get("resources"), &org)
        .map_err(|messages| problems.extend(messages.into_iter().map(|m| ("resources", m))))
        .ok();
    let (Some(label), Some(description), Some(expires), Some(resources)) =
        (label, description, expires, resources)
    else {
        return Err(errors::validation(problems, "Invalid input.").into());
    };
    let new = NewOrgToken {
        label,
        description: description.unwrap_or_default(),
        expires,
        resources,
    };
    match hub.create_org_token(&org.key, &account, new) {
        Ok(token) => Ok((StatusCode::CREATED, Json(token)).into_response()),
        Err(refusal) => Err(refused(refusal).into()),
    }
}

/// `GET /v2/orgs/{org}/access-tokens?page=1&page_size=10` → `getOrgAccessTokensResponse`:
/// `total` (not `count`), `next`/`previous` (absolute URLs or null) and the tokens, newest
/// first, as the spec's `orgAccessToken` (no `resources`, no secret).
pub async fn list(
    State(hub): State<Arc<Hub>>,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    let (_, org) = owner(&hub, &headers, &org)?;
    let url = format!("{}/v2/orgs/{}/access-tokens", hub.base_url(), org.name);
    let page = fields::paginate(query.as_deref(), hub.list_org_tokens(&org.key), &url)?;
    Ok(Json(json!({
        "total": page.total,
        "next": page.next,
        "previous": page.previous,
        "results": page.results,
    }))
    .into_response())
}

/// `GET /v2/orgs/{org}/access-tokens/{id}` → `getOrgAccessTokenResponse`: the token with its
/// resources, without its secret; 404 when this organization has no such token.
pub async fn read(
    State(hub): State<Arc<Hub>>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    let (_, org) = owner(&hub, &headers, &org)?;
    match hub.get_org_token(&org.key, &id) {
        Some(token) => Ok(Json(token).into_response()),
        None => Err(errors::not_found().into()),
    }
}

/// `PATCH /v2/orgs/{org}/access-tokens/{id}` `{"label"?, "description"?, "resources"?,
/// "is_active"?}` → the updated token with its resources. `expires_at` is read-only and
/// ignored, as on PATs.
pub async fn update(
    State(hub): State<Arc<Hub>>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let (_, org) = owner(&hub, &headers, &org)?;
    // 404 wins over 400, as on the PAT endpoints.
    if hub.get_org_token(&org.key, &id).is_none() {
        return Err(errors::not_found().into());
    }
    let fields = routes::json_object(&body)?;
    let mut problems = Vec::new();
    let new_label = fields
        .get("label")
        .map(label)
        .transpose()
        .map_err(|message| problems.push(("label", message)))
        .ok();
    let description = description(fields.get("description"))
        .map_err(|message| problems.push(("description", message)))
        .ok();
    let resources = fields
        .get("resources")
        .map(|value| resources(Some(value), &org))
        .transpose()
        .map_err(|messages| problems.extend(messages.into_iter().map(|m| ("resources", m))))
        .ok();
    let is_active = fields::optional_bool(fields.get("is_active"))
        .map_err(|message| problems.push(("is_active", message)))
        .ok();
    let (Some(label), Some(description), Some(resources), Some(is_active)) =
        (new_label, description, resources, is_active)
    else {
        return Err(errors::validation(problems, "Invalid input.").into());
    };
    let update = OrgTokenUpdate {
        label,
        description,
        resources,
        is_active,
    };
    match hub.update_org_token(&org.key, &id, update) {
        Some(token) => Ok(Json(token).into_response()),
        None => Err(errors::not_found().into()),
    }
}

/// `DELETE /v2/orgs/{org}/access-tokens/{id}` → 204; 404 when this organization has no such
/// token. Deleting is what frees a place under the plan's limit.
pub async fn delete(
    State(hub): State<Arc<Hub>>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    let (_, org) = owner(&hub, &headers, &org)?;
    if hub.delete_org_token(&org.key, &id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(errors::not_found().into())
    }
}

/// The caller's account key and the organization, when the caller may manage its tokens:
/// logged in with a password, and an owner of an organization that exists.
fn owner(hub: &Hub, headers: &HeaderMap, org: &str) -> Result<(String, OrgView), Rejection> {
    let session = token_manager(hub, headers)?;
    match hub.org_for_owner(org, &session.account) {
        Ok(org) => Ok((session.account, org)),
        Err(OrgAccessError::NotFound) => Err(errors::not_found().into()),
        Err(OrgAccessError::NotOwner) => Err(errors::detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
        .into()),
    }
}

/// The 403 for an organization that cannot have one more token. Docker publishes neither the
/// status nor the words the Hub answers at the limit: the fake picks the spec's 403 with a
/// message naming the plan and its limit, and clients must not depend on the words.
fn refused(refusal: OrgTokenRefusal) -> Response {
    let message = match refusal {
        OrgTokenRefusal::NotOnPlan(plan) => format!(
            "Organization access tokens require a Team or Business subscription; this organization is on {}.",
            plan.name()
        ),
        OrgTokenRefusal::Limit(plan, limit) => format!(
            "Organization access token limit reached: the {} plan allows {limit} per organization, \
             expired and deactivated ones included. Delete a token to create another.",
            plan.name()
        ),
    };
    errors::detail(StatusCode::FORBIDDEN, &message)
}

/// `Ok(None)` when absent; null counts as empty.
fn description(value: Option<&Value>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(text)) => Ok(Some(text.trim().to_owned())),
        Some(_) => Err("Not a valid string.".to_owned()),
    }
}

fn expires_at(value: Option<&Value>) -> Result<Option<OffsetDateTime>, String> {
    let at = fields::expires_at(value)?;
    if at.is_some_and(|at| at > clock::now() + MAX_LIFETIME) {
        return Err("Expiration date must be within one year.".to_owned());
    }
    Ok(at)
}

/// The `resources` list, or every message about it.
fn resources(value: Option<&Value>, org: &OrgView) -> Result<Vec<OrgTokenResource>, Vec<String>> {
    let items = match value {
        None => return Err(vec![REQUIRED.to_owned()]),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(vec![format!(
                "Expected a list of items but got type \"{}\".",
                routes::type_name(other)
            )]);
        }
    };
    if items.is_empty() {
        return Err(vec!["This list may not be empty.".to_owned()]);
    }
    if items.len() > MAX_RESOURCES {
        return Err(vec![format!(
            "Ensure this field has no more than {MAX_RESOURCES} elements."
        )]);
    }
    let mut problems = Vec::new();
    let mut resources = Vec::new();
    for (n, item) in items.iter().enumerate() {
        match resource(item, org) {
            Ok(resource) => resources.push(resource),
            Err(messages) => problems.extend(
                messages
                    .into_iter()
                    .map(|(field, message)| format!("resources[{n}]{field}: {message}")),
            ),
        }
    }
    if problems.is_empty() {
        Ok(resources)
    } else {
        Err(problems)
    }
}

/// One resource, or its messages, each with the field it is about (`.path`, or empty for the
/// item itself).
fn resource(item: &Value, org: &OrgView) -> Result<OrgTokenResource, Vec<(&'static str, String)>> {
    let Value::Object(fields) = item else {
        return Err(vec![(
            "",
            format!(
                "Invalid data. Expected a dictionary, but got {}.",
                routes::type_name(item)
            ),
        )]);
    };
    // Path and scopes mean something only for a known type.
    let kind = text(fields, "type")
        .and_then(|kind| match kind {
            "TYPE_REPO" => Ok(kind.to_owned()),
            other => Err(format!("\"{other}\" is not a valid choice.")),
        })
        .map_err(|message| vec![(".type", message)])?;
    let mut problems = Vec::new();
    let path = text(fields, "path")
        .and_then(|path| repository_path(path, org).map(|()| path.to_owned()))
        .map_err(|message| problems.push((".path", message)))
        .ok();
    let scopes = fields::choices(fields.get("scopes"), &SCOPES)
        .and_then(|scopes| {
            let pushes_public = path.as_deref() == Some(PUBLIC_REPOSITORIES)
                && scopes.iter().any(|s| s != "scope-image-pull");
            if pushes_public {
                Err(format!(
                    "\"{PUBLIC_REPOSITORIES}\" takes only \"scope-image-pull\"."
                ))
            } else {
                Ok(scopes)
            }
        })
        .map_err(|message| problems.push((".scopes", message)))
        .ok();
    match (path, scopes) {
        (Some(path), Some(scopes)) => Ok(OrgTokenResource { kind, path, scopes }),
        _ => Err(problems),
    }
}

/// A required string field of a resource.
fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match fields.get(name) {
        None => Err(REQUIRED.to_owned()),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err("Not a valid string.".to_owned()),
    }
}

/// Whether `path` names repositories this organization's token may reach.
fn repository_path(path: &str, org: &OrgView) -> Result<(), String> {
    if path == PUBLIC_REPOSITORIES {
        return Ok(());
    }
    let name = &org.name;
    let Some((namespace, repo)) = path.split_once('/') else {
        return Err(format!(
            "\"{path}\" is not a repository path: use \"{name}/<repository>\", \"{name}/*\" or \"{PUBLIC_REPOSITORIES}\"."
        ));
    };
    if !namespace.eq_ignore_ascii_case(name) {
        return Err(format!(
            "\"{path}\" is not a repository of organization \"{name}\"."
        ));
    }
    if repo == "*"
        || org
            .repositories
            .iter()
            .any(|r| r.eq_ignore_ascii_case(repo))
    {
        Ok(())
    } else {
        Err(format!("Repository \"{path}\" does not exist."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> OrgView {
        OrgView {
            key: "acme".into(),
            name: "acme".into(),
            repositories: vec!["app".into()],
        }
    }

    #[test]
    fn paths_name_this_organizations_repositories_or_public_ones() {
        for ok in ["acme/app", "ACME/App", "acme/*", "*/*/public"] {
            assert_eq!(repository_path(ok, &acme()), Ok(()), "{ok}");
        }
        for bad in [
            "acme/web",
            "other/app",
            "other/*",
            "app",
            "*/*",
            "acme/app/x",
        ] {
            assert!(repository_path(bad, &acme()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_resource_needs_a_repo_type_a_path_and_known_scopes() {
        let ok = json!({"type": "TYPE_REPO", "path": "acme/app", "scopes": ["scope-image-push"]});
        assert_eq!(
            resource(&ok, &acme()).unwrap(),
            OrgTokenResource::repo("acme/app", &["scope-image-push"])
        );
        let fields_of = |item: Value| -> Vec<&'static str> {
            resource(&item, &acme())
                .unwrap_err()
                .into_iter()
                .map(|(field, _)| field)
                .collect()
        };
        assert_eq!(fields_of(json!({})), [".type"]);
        assert_eq!(
            fields_of(json!({"type": "TYPE_REPO"})),
            [".path", ".scopes"]
        );
        assert_eq!(
            fields_of(
                json!({"type": "TYPE_ORG", "path": "acme/app", "scopes": ["scope-image-pull"]})
            ),
            [".type"]
        );
        assert_eq!(
            fields_of(json!({"type": "TYPE_REPO", "path": "acme/app", "scopes": ["repo:read"]})),
            [".scopes"]
        );
        assert_eq!(
            fields_of(
                json!({"type": "TYPE_REPO", "path": "*/*/public", "scopes": ["scope-image-push"]})
            ),
            [".scopes"]
        );
        assert_eq!(fields_of(json!("acme/app")), [""]);
    }

    #[test]
    fn expiry_is_at_most_a_year_away() {
        let in_days = |days: u64| {
            let at = clock::now() + Duration::from_secs(days * 24 * 3600);
            json!(clock::format(at))
        };
        assert!(expires_at(Some(&in_days(365))).unwrap().is_some());
        assert!(expires_at(Some(&in_days(367))).is_err());
        assert_eq!(expires_at(None).unwrap(), None);
    }
}
