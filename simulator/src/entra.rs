//! Microsoft Entra ID: the v2 token endpoint, client credentials grant, with a client secret or
//! a client assertion (certificate or federated JWT).

use std::collections::HashMap;

use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock::secs;
use crate::http::{FormError, SimRequest, SimResponse};
use crate::seed::ServicePrincipalSeed;
use crate::state::World;
use crate::tokens::{jwt, jwt_claims};

/// The scope Power BI clients ask for.
pub const POWERBI_SCOPE: &str = "https://analysis.windows.net/powerbi/api/.default";
/// The audience of Power BI access tokens.
pub const POWERBI_AUDIENCE: &str = "https://analysis.windows.net/powerbi/api";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An Entra error body: `error`, an AADSTS description, `error_codes`, ids and a timestamp.
pub fn error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
    now: Timestamp,
) -> SimResponse {
    let trace = Uuid::new_v4().to_string();
    let correlation = Uuid::new_v4().to_string();
    let timestamp = format!("{now:.0}").replace('T', " ");
    SimResponse::json(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
    .with_header("cache-control", "no-store, no-cache")
    .with_header("pragma", "no-cache")
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub fn token(world: &mut World, req: &SimRequest, tenant: &str) -> SimResponse {
    let now = world.now();
    let (form, principal) = match identify(world, req, tenant, now) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let client_id = principal.client_id.clone();
    let response = check_scope(&form, now)
        .and_then(|()| check_credentials(&principal, &form, tenant, now))
        .map(|()| issue(world, &principal, tenant, now))
        .unwrap_or_else(|e| e);
    response.with_principal(client_id)
}

/// The request's form and the principal it names, checked in the order Entra checks them.
fn identify(
    world: &World,
    req: &SimRequest,
    tenant: &str,
    now: Timestamp,
) -> Result<(HashMap<String, String>, ServicePrincipalSeed), SimResponse> {
    let form = match req.form() {
        Ok(form) => form,
        Err(FormError::NotForm) => return Err(missing("grant_type", now)),
        Err(FormError::Repeated(name)) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90015,
                &format!(
                    "Requested query string is too long or contains duplicate parameter '{name}'."
                ),
                now,
            ));
        }
    };
    let Some(grant_type) = form.get("grant_type") else {
        return Err(missing("grant_type", now));
    };
    if grant_type != "client_credentials" {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
            now,
        ));
    }
    if !world.entra.knows_tenant(tenant) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
            now,
        ));
    }
    let Some(client_id) = form.get("client_id") else {
        return Err(missing("client_id", now));
    };
    let Some(principal) = world.entra.principal(tenant, client_id).cloned() else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
            now,
        )
        .with_principal(client_id.clone()));
    };
    Ok((form, principal))
}

/// The error for a missing form parameter.
fn missing(name: &str, now: Timestamp) -> SimResponse {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{name}'."),
        now,
    )
}

/// Only the Power BI scope may be asked for.
fn check_scope(form: &HashMap<String, String>, now: Timestamp) -> Result<(), SimResponse> {
    let Some(scope) = form.get("scope") else {
        return Err(missing("scope", now));
    };
    if scope.split_whitespace().collect::<Vec<_>>() != [POWERBI_SCOPE] {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
            now,
        ));
    }
    Ok(())
}

/// Exactly one client authentication method, and a valid one.
fn check_credentials(
    principal: &ServicePrincipalSeed,
    form: &HashMap<String, String>,
    tenant: &str,
    now: Timestamp,
) -> Result<(), SimResponse> {
    match (form.get("client_secret"), form.get("client_assertion")) {
        (Some(_), Some(_)) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "Only one client authentication method may be used: client_secret or client_assertion.",
            now,
        )),
        (None, None) => Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            now,
        )),
        (Some(secret), None) => check_secret(principal, secret, now),
        (None, Some(assertion)) => {
            if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
                Err(missing("client_assertion_type", now))
            } else {
                check_assertion(principal, assertion, tenant, now)
            }
        }
    }
}

/// Issues a Power BI access token to the principal.
fn issue(
    world: &mut World,
    principal: &ServicePrincipalSeed,
    tenant: &str,
    now: Timestamp,
) -> SimResponse {
    let lifetime = world.config.entra_token_lifetime_seconds;
    let expires_at = now.checked_add(secs(lifetime)).unwrap_or(Timestamp::MAX);
    let access = jwt(&json!({
        "aud": POWERBI_AUDIENCE,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now.as_second(),
        "nbf": now.as_second(),
        "exp": expires_at.as_second(),
        "appid": principal.client_id,
        "idtyp": "app",
        "oid": Uuid::new_v4().to_string(),
        "tid": principal.tenant_id,
        "ver": "1.0",
    }));
    world
        .entra
        .add_token(access.clone(), principal.client_id.clone(), expires_at);
    SimResponse::json(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access}),
    )
    .with_header("cache-control", "no-store, no-cache")
    .with_header("pragma", "no-cache")
}

fn check_secret(
    principal: &ServicePrincipalSeed,
    secret: &str,
    now: Timestamp,
) -> Result<(), SimResponse> {
    if principal.client_secret.as_deref() == Some(secret) {
        return Ok(());
    }
    Err(error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
        now,
    ))
}

/// Checks the shape of a client assertion: a JWT whose audience and issuer match a federated
/// credential of the app, or, for a certificate-style assertion, whose audience is this token
/// endpoint and whose issuer is the app itself. Signatures and expiry are not checked.
fn check_assertion(
    principal: &ServicePrincipalSeed,
    assertion: &str,
    tenant: &str,
    now: Timestamp,
) -> Result<(), SimResponse> {
    let malformed = || {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
            now,
        )
    };
    let claims = jwt_claims(assertion).ok_or_else(malformed)?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(malformed)?;
    let subject = claims.get("sub").and_then(Value::as_str);
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(malformed()),
    };
    match_assertion(principal, issuer, subject, &audiences, tenant).map_err(|(code, what)| {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            &format!("No matching federated identity record found for presented assertion {what}."),
            now,
        )
    })
}

/// Matches an assertion's claims to the app's credentials; on failure, the AADSTS code and
/// the claim that did not match.
fn match_assertion(
    principal: &ServicePrincipalSeed,
    issuer: &str,
    subject: Option<&str>,
    audiences: &[&str],
    tenant: &str,
) -> Result<(), (u32, &'static str)> {
    // Certificate credential: the app signs an assertion about itself for this endpoint.
    if issuer == principal.client_id {
        let endpoint_suffix = format!("/{tenant}/oauth2/v2.0/token").to_ascii_lowercase();
        return if audiences
            .iter()
            .any(|a| a.to_ascii_lowercase().ends_with(&endpoint_suffix))
        {
            Ok(())
        } else {
            Err((700212, "audience"))
        };
    }
    if principal.federated_credentials.is_empty() {
        let url = issuer.starts_with("https://") || issuer.starts_with("http://");
        if !url {
            return Err((700211, "issuer"));
        }
        return if audiences.contains(&"api://AzureADTokenExchange") {
            Ok(())
        } else {
            Err((700212, "audience"))
        };
    }
    let by_issuer: Vec<_> = principal
        .federated_credentials
        .iter()
        .filter(|f| f.issuer == issuer)
        .collect();
    if by_issuer.is_empty() {
        return Err((700211, "issuer"));
    }
    let by_subject: Vec<_> = by_issuer
        .into_iter()
        .filter(|f| f.subject.as_deref().is_none_or(|s| Some(s) == subject))
        .collect();
    if by_subject.is_empty() {
        return Err((700213, "subject"));
    }
    if by_subject
        .iter()
        .any(|f| audiences.contains(&f.audience.as_str()))
    {
        Ok(())
    } else {
        Err((700212, "audience"))
    }
}
