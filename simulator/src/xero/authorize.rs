//! `GET /connect/authorize`: the user consents at once, so the browser goes straight back to
//! the app with a code.

use std::collections::HashMap;

use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::json;

use crate::clock::secs;
use crate::http::{SimRequest, SimResponse};
use crate::seed::XeroAppSeed;
use crate::state::World;
use crate::state::xero::AuthCode;
use crate::tokens::opaque;

/// `GET /connect/authorize`: the user consents at once; the browser is sent back to the
/// redirect URI with a code and the state.
pub fn authorize(world: &mut World, req: &SimRequest) -> SimResponse {
    let params: HashMap<String, String> = req.query_pairs().into_iter().collect();
    let client_id = params.get("client_id").cloned().unwrap_or_default();
    let Some(app) = world.xero.app(&client_id).cloned() else {
        // Xero shows an error page here, never a redirect to an unverified URI.
        return SimResponse::json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unauthorized_client", "error_description": "Unknown client or client not enabled"}),
        );
    };
    let redirect_uri = params.get("redirect_uri").cloned().unwrap_or_default();
    if !app.redirect_uris.contains(&redirect_uri) {
        return SimResponse::json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "Invalid redirect_uri"}),
        )
        .with_principal(client_id);
    }
    let redirect = Redirect {
        uri: redirect_uri,
        state: params.get("state").cloned(),
        client_id,
    };
    match issue_code(world, &app, &params, &redirect.uri) {
        Ok((code, scope)) => redirect.to(&[("code", &code), ("scope", &scope)]),
        Err(error) => redirect.to(&[("error", error)]),
    }
}

/// Stores a code for a valid request and returns it with the granted scope; otherwise the
/// OAuth error the app is sent back with.
fn issue_code(
    world: &mut World,
    app: &XeroAppSeed,
    params: &HashMap<String, String>,
    redirect_uri: &str,
) -> Result<(String, String), &'static str> {
    if params.get("response_type").map(String::as_str) != Some("code") {
        return Err("unsupported_response_type");
    }
    let Some(scope) = params
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .cloned()
    else {
        return Err("invalid_scope");
    };
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method").map(String::as_str),
    ) {
        (None, None) => None,
        (Some(c), None | Some("plain")) => Some(("plain".to_owned(), c.clone())),
        (Some(c), Some("S256")) => Some(("S256".to_owned(), c.clone())),
        _ => return Err("invalid_request"),
    };
    let tenant_ids = app
        .consent_tenant_ids
        .clone()
        .unwrap_or_else(|| world.xero.connected_tenant_ids());
    let code = opaque();
    let expires_at = world
        .now()
        .checked_add(secs(world.config.xero_authorization_code_lifetime_seconds))
        .unwrap_or(Timestamp::MAX);
    world.xero.grants.add_code(
        code.clone(),
        AuthCode {
            client_id: app.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            challenge,
            scope: scope.clone(),
            tenant_ids,
            expires_at,
            used: false,
        },
    );
    Ok((code, scope))
}

/// The way back to the app, carrying the request's `state`.
struct Redirect {
    uri: String,
    state: Option<String>,
    client_id: String,
}

impl Redirect {
    /// A `302` to the redirect URI with these query parameters added.
    fn to(&self, pairs: &[(&str, &str)]) -> SimResponse {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(s) = &self.state {
            query.append_pair("state", s);
        }
        let separator = if self.uri.contains('?') { '&' } else { '?' };
        SimResponse::empty(StatusCode::FOUND)
            .with_header(
                "location",
                &format!("{}{separator}{}", self.uri, query.finish()),
            )
            .with_principal(self.client_id.clone())
    }
}
