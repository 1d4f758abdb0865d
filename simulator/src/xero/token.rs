//! `POST /connect/token` (refresh_token and authorization_code grants) and
//! `POST /connect/revocation`, with Xero's client authentication.

use std::collections::HashMap;

use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::json;
use uuid::Uuid;

use crate::clock::secs;
use crate::http::{FormError, SimRequest, SimResponse, form_decode};
use crate::seed::XeroAppSeed;
use crate::state::World;
use crate::state::xero::AuthCode;
use crate::tokens::{basic_credentials, jwt, pkce_s256};
use crate::xero::response::token_error;

/// `POST /connect/token`.
pub fn token(world: &mut World, req: &SimRequest) -> SimResponse {
    let form = match req.form() {
        Ok(form) => form,
        Err(FormError::NotForm | FormError::Repeated(_)) => {
            return token_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
    };
    let app = match authenticate_client(world, req, &form) {
        Ok(app) => app,
        Err(response) => return response,
    };
    let client_id = app.client_id.clone();
    let result = match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => refresh_grant(world, &app, &form),
        Some("authorization_code") => code_grant(world, &app, &form),
        _ => Err(token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        )),
    };
    result.unwrap_or_else(|e| e).with_principal(client_id)
}

/// `POST /connect/revocation`: revokes the refresh token's grant.
pub fn revocation(world: &mut World, req: &SimRequest) -> SimResponse {
    let Ok(form) = req.form() else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let app = match authenticate_client(world, req, &form) {
        Ok(app) => app,
        Err(response) => return response,
    };
    let now = world.now();
    let Some(token) = form.get("token") else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request")
            .with_principal(app.client_id);
    };
    let owned = world.xero.grants.refresh_token_client_id(token) == Some(app.client_id.as_str());
    if owned {
        world.xero.grants.revoke(Some(token), now);
    }
    // RFC 7009: an unknown token is not an error.
    SimResponse::empty(StatusCode::OK).with_principal(app.client_id)
}

/// Client authentication: HTTP Basic or form fields, not both with different values. Public
/// (PKCE) apps have no secret and send their client id alone.
fn authenticate_client(
    world: &World,
    req: &SimRequest,
    form: &HashMap<String, String>,
) -> Result<XeroAppSeed, SimResponse> {
    let invalid = || token_error(StatusCode::BAD_REQUEST, "invalid_client");
    let header = match req.header("authorization") {
        Some(h) => Some(basic_credentials(h).ok_or_else(invalid)?),
        None => None,
    };
    let header = header.map(|(id, secret)| (form_decode(&id), form_decode(&secret)));
    let body_id = form.get("client_id").cloned();
    let body_secret = form.get("client_secret").cloned();
    let (client_id, secret) = match header {
        Some((id, secret)) => {
            if body_id.as_ref().is_some_and(|b| *b != id)
                || body_secret.as_ref().is_some_and(|b| *b != secret)
            {
                return Err(invalid());
            }
            (id, Some(secret))
        }
        None => (body_id.ok_or_else(invalid)?, body_secret),
    };
    let app = world.xero.app(&client_id).ok_or_else(invalid)?;
    match (&app.client_secret, secret) {
        (Some(expected), Some(given)) if *expected == given => Ok(app.clone()),
        (None, None) => Ok(app.clone()),
        (None, Some(given)) if given.is_empty() => Ok(app.clone()),
        _ => Err(invalid()),
    }
}

fn refresh_grant(
    world: &mut World,
    app: &XeroAppSeed,
    form: &HashMap<String, String>,
) -> Result<SimResponse, SimResponse> {
    let presented = form
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| token_error(StatusCode::BAD_REQUEST, "invalid_request"))?;
    let now = world.now();
    let (grant, child) = world
        .xero
        .grants
        .rotate_refresh_token(presented, &app.client_id, now, &world.config)
        .ok_or_else(|| token_error(StatusCode::BAD_REQUEST, "invalid_grant"))?;
    Ok(issue_tokens(world, grant, Some(child)))
}

fn code_grant(
    world: &mut World,
    app: &XeroAppSeed,
    form: &HashMap<String, String>,
) -> Result<SimResponse, SimResponse> {
    let code = form
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| token_error(StatusCode::BAD_REQUEST, "invalid_request"))?;
    let now = world.now();
    let stored = world
        .xero
        .grants
        .code_mut(code)
        .ok_or_else(|| token_error(StatusCode::BAD_REQUEST, "invalid_grant"))?;
    if !redeemable(stored, app, form, now) {
        return Err(token_error(StatusCode::BAD_REQUEST, "invalid_grant"));
    }
    stored.used = true;
    let (tenants, scope) = (stored.tenant_ids.clone(), stored.scope.clone());
    let grant = world
        .xero
        .consent(&app.client_id, tenants, scope.clone(), now);
    let refresh = scope
        .split_whitespace()
        .any(|s| s == "offline_access")
        .then(|| world.xero.grants.add_refresh_token(grant, now));
    Ok(issue_tokens(world, grant, refresh))
}

/// Whether the app may exchange this code now: unused, unexpired, its own, for the same
/// redirect URI, with the PKCE verifier when there was a challenge.
fn redeemable(
    stored: &AuthCode,
    app: &XeroAppSeed,
    form: &HashMap<String, String>,
    now: Timestamp,
) -> bool {
    if stored.used || now >= stored.expires_at || stored.client_id != app.client_id {
        return false;
    }
    if form.get("redirect_uri") != Some(&stored.redirect_uri) {
        return false;
    }
    let Some((method, challenge)) = &stored.challenge else {
        // A public app can only prove itself with PKCE.
        return app.client_secret.is_some();
    };
    let Some(verifier) = form.get("code_verifier") else {
        return false;
    };
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let derived = if method == "S256" {
        pkce_s256(verifier)
    } else {
        verifier.clone()
    };
    well_formed && derived == *challenge
}

/// A token response for a grant: a new access token, and the given refresh token.
fn issue_tokens(world: &mut World, grant: usize, refresh_token: Option<String>) -> SimResponse {
    let now = world.now();
    let lifetime = world.config.xero_access_token_lifetime_seconds;
    let g = world.xero.grants.get(grant).clone();
    let expires_at = now.checked_add(secs(lifetime)).unwrap_or(Timestamp::MAX);
    let scopes: Vec<&str> = g.scope.split_whitespace().collect();
    let access = jwt(&json!({
        "nbf": now.as_second(),
        "exp": expires_at.as_second(),
        "iss": "https://identity.xero.com",
        "aud": "https://identity.xero.com/resources",
        "client_id": g.client_id,
        "sub": g.user_id,
        "auth_time": now.as_second(),
        "xero_userid": g.user_id,
        "global_session_id": Uuid::new_v4().simple().to_string(),
        "jti": Uuid::new_v4().simple().to_string(),
        "authentication_event_id": g.auth_event_id,
        "scope": scopes,
    }));
    world
        .xero
        .grants
        .add_access_token(access.clone(), grant, expires_at);
    let mut body = json!({
        "access_token": access,
        "expires_in": lifetime,
        "token_type": "Bearer",
        "scope": g.scope,
    });
    if let Some(refresh) = refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    if scopes.contains(&"openid") {
        body["id_token"] = json!(jwt(&json!({
            "iss": "https://identity.xero.com",
            "aud": g.client_id,
            "sub": g.user_id,
            "xero_userid": g.user_id,
            "exp": now.as_second() + 300,
            "iat": now.as_second(),
        })));
    }
    SimResponse::json_with_type(StatusCode::OK, &body, "application/json; charset=UTF-8")
        .with_header("cache-control", "max-age=0, no-cache, no-store")
        .with_header("pragma", "no-cache")
        .with_header("xero-origin-id", "IdentityServer.Web")
}
