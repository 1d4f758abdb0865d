//! Xero identity: `/connect/token` (refresh_token and authorization_code grants, rotation with
//! a grace period), `/connect/authorize` (auto-consent), `/connect/revocation`, and the
//! `/connections` endpoints of api.xero.com.

use std::collections::HashMap;

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::{FormError, SimRequest, SimResponse, form_decode};
use crate::seed::{GraceReuse, SimConfig, XeroAppSeed, XeroSeed};
use crate::tokens::{basic_credentials, fingerprint, jwt, opaque, pkce_s256};
use crate::world::World;

const DEFAULT_SCOPE: &str = "openid profile email offline_access accounting.settings.read accounting.transactions.read accounting.reports.read accounting.contacts.read";

/// Xero's side of the world.
#[derive(Debug, Default)]
pub struct XeroState {
    pub(crate) apps: Vec<XeroAppSeed>,
    pub(crate) connections: Vec<Connection>,
    grants: Vec<Grant>,
    refresh_tokens: HashMap<String, RefreshTokenRecord>,
    access_tokens: HashMap<String, AccessTokenRecord>,
    codes: HashMap<String, AuthCode>,
}

/// An organisation connected to an app.
#[derive(Debug, Clone)]
pub struct Connection {
    id: String,
    client_id: String,
    tenant_id: String,
    tenant_name: String,
    tenant_type: String,
    created: Timestamp,
    updated: Timestamp,
    auth_event_id: String,
}

/// One consent: the family of tokens issued from it.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    auth_event_id: String,
    user_id: String,
    tenant_ids: Vec<String>,
    scope: String,
    revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
struct RefreshTokenRecord {
    grant: usize,
    issued_at: Timestamp,
    rotated_at: Option<Timestamp>,
    child: Option<String>,
}

#[derive(Debug, Clone)]
struct AccessTokenRecord {
    grant: usize,
    expires_at: Timestamp,
}

#[derive(Debug, Clone)]
struct AuthCode {
    client_id: String,
    redirect_uri: String,
    challenge: Option<(String, String)>,
    scope: String,
    tenant_ids: Vec<String>,
    expires_at: Timestamp,
    used: bool,
}

/// Why a Xero access token does not give access to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Never issued here.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Its grant was revoked.
    Revoked,
    /// The tenant is not among the token's connected tenants.
    WrongTenant,
}

impl XeroState {
    /// Builds Xero's state from the seed.
    pub fn from_seed(seed: &XeroSeed, config: &SimConfig, now: Timestamp) -> Result<Self, String> {
        let mut state = Self {
            apps: seed.apps.clone(),
            ..Self::default()
        };
        for c in &seed.connections {
            let apps: Vec<String> = match &c.client_id {
                Some(id) => vec![id.clone()],
                None => seed.apps.iter().map(|a| a.client_id.clone()).collect(),
            };
            for (i, client_id) in apps.into_iter().enumerate() {
                let created = c.created_date_utc.unwrap_or(now);
                state.connections.push(Connection {
                    id: match (&c.id, i) {
                        (Some(id), 0) => id.clone(),
                        _ => Uuid::new_v4().to_string(),
                    },
                    client_id,
                    tenant_id: c.tenant_id.clone(),
                    tenant_name: c.tenant_name.clone(),
                    tenant_type: c.tenant_type.clone(),
                    created,
                    updated: c.updated_date_utc.unwrap_or(created),
                    auth_event_id: Uuid::new_v4().to_string(),
                });
            }
        }
        for t in &seed.refresh_tokens {
            let client = state.seed_client(t.client_id.as_deref())?;
            let tenants = state.seed_tenants(&client, t.tenant_ids.as_ref());
            let grant = state.new_grant(
                &client,
                tenants,
                t.scope.clone().unwrap_or_else(|| DEFAULT_SCOPE.to_owned()),
            );
            state.refresh_tokens.insert(
                t.token.clone(),
                RefreshTokenRecord {
                    grant,
                    issued_at: now,
                    rotated_at: None,
                    child: None,
                },
            );
        }
        for t in &seed.access_tokens {
            let client = state.seed_client(t.client_id.as_deref())?;
            let tenants = state.seed_tenants(&client, t.tenant_ids.as_ref());
            let grant = state.new_grant(&client, tenants, DEFAULT_SCOPE.to_owned());
            let lifetime = t.expires_in_seconds.unwrap_or_else(|| {
                i64::try_from(config.xero_access_token_lifetime_seconds).unwrap_or(i64::MAX)
            });
            state.access_tokens.insert(
                t.token.clone(),
                AccessTokenRecord {
                    grant,
                    expires_at: now
                        .checked_add(SignedDuration::from_secs(lifetime))
                        .unwrap_or(now),
                },
            );
        }
        Ok(state)
    }

    fn seed_client(&self, client_id: Option<&str>) -> Result<String, String> {
        match client_id {
            Some(id) if self.apps.iter().any(|a| a.client_id == id) => Ok(id.to_owned()),
            Some(id) => Err(format!("Xero token for unknown app {id}")),
            None => self
                .apps
                .first()
                .map(|a| a.client_id.clone())
                .ok_or_else(|| "a Xero token needs an app to belong to".to_owned()),
        }
    }

    fn seed_tenants(&self, client_id: &str, tenants: Option<&Vec<String>>) -> Vec<String> {
        tenants.cloned().unwrap_or_else(|| {
            self.connections
                .iter()
                .filter(|c| c.client_id == client_id)
                .map(|c| c.tenant_id.clone())
                .collect()
        })
    }

    fn new_grant(&mut self, client_id: &str, tenant_ids: Vec<String>, scope: String) -> usize {
        self.grants.push(Grant {
            client_id: client_id.to_owned(),
            auth_event_id: Uuid::new_v4().to_string(),
            user_id: Uuid::new_v4().to_string(),
            tenant_ids,
            scope,
            revoked_at: None,
        });
        self.grants.len() - 1
    }

    /// Whether an access token gives access to a tenant (any connected tenant when `None`)
    /// at a given time.
    pub fn access_token_problem(
        &self,
        token: &str,
        tenant: Option<&str>,
        at: Timestamp,
    ) -> Option<TokenProblem> {
        let Some(record) = self.access_tokens.get(token) else {
            return Some(TokenProblem::Unknown);
        };
        let grant = &self.grants[record.grant];
        if grant.revoked_at.is_some_and(|r| r <= at) {
            return Some(TokenProblem::Revoked);
        }
        if at >= record.expires_at {
            return Some(TokenProblem::Expired);
        }
        let connected = self.grant_connections(grant);
        let ok = match tenant {
            Some(t) => connected
                .iter()
                .any(|c| c.tenant_id.eq_ignore_ascii_case(t)),
            None => !connected.is_empty(),
        };
        (!ok).then_some(TokenProblem::WrongTenant)
    }

    fn grant_connections(&self, grant: &Grant) -> Vec<&Connection> {
        if grant.revoked_at.is_some() {
            return Vec::new();
        }
        self.connections
            .iter()
            .filter(|c| {
                c.client_id == grant.client_id
                    && grant
                        .tenant_ids
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(&c.tenant_id))
            })
            .collect()
    }

    /// Revokes the grant a refresh token belongs to (as `/connect/revocation` does), or every
    /// grant. Returns how many grants were revoked; `None` for an unknown token.
    pub fn revoke(&mut self, refresh_token: Option<&str>, now: Timestamp) -> Option<usize> {
        let targets: Vec<usize> = match refresh_token {
            Some(token) => vec![self.refresh_tokens.get(token)?.grant],
            None => (0..self.grants.len()).collect(),
        };
        let mut count = 0;
        for i in targets {
            if self.grants[i].revoked_at.is_none() {
                self.grants[i].revoked_at = Some(now);
                count += 1;
            }
        }
        Some(count)
    }

    /// Xero's state for `GET /_sim/state`, tokens as fingerprints.
    pub fn snapshot(&self, now: Timestamp) -> Value {
        let grace_state =
            |r: &RefreshTokenRecord| match (self.grants[r.grant].revoked_at, r.rotated_at) {
                (Some(_), _) => "Revoked",
                (None, None) => "Active",
                (None, Some(_)) => "Rotated",
            };
        let grants: Vec<Value> = self
            .grants
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let mut refresh: Vec<(&String, &RefreshTokenRecord)> =
                    self.refresh_tokens.iter().filter(|(_, r)| r.grant == i).collect();
                refresh.sort_by_key(|(_, r)| r.issued_at);
                json!({
                    "clientId": g.client_id,
                    "authEventId": g.auth_event_id,
                    "tenantIds": g.tenant_ids,
                    "scope": g.scope,
                    "revokedAt": g.revoked_at.map(|t| format!("{t:.3}")),
                    "refreshTokens": refresh.iter().map(|(t, r)| json!({
                        "fingerprint": fingerprint(t),
                        "state": grace_state(r),
                        "issuedAt": format!("{:.3}", r.issued_at),
                        "rotatedAt": r.rotated_at.map(|t| format!("{t:.3}")),
                    })).collect::<Vec<_>>(),
                    "accessTokens": self.access_tokens.iter().filter(|(_, a)| a.grant == i).map(|(t, a)| json!({
                        "fingerprint": fingerprint(t),
                        "expiresAt": format!("{:.3}", a.expires_at),
                        "expired": now >= a.expires_at,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "apps": self.apps.iter().map(|a| json!({
                "clientId": a.client_id,
                "hasClientSecret": a.client_secret.is_some(),
                "redirectUris": a.redirect_uris,
            })).collect::<Vec<_>>(),
            "connections": self.connections.iter().map(|c| json!({
                "id": c.id, "clientId": c.client_id, "tenantId": c.tenant_id, "tenantName": c.tenant_name,
                "tenantType": c.tenant_type, "authEventId": c.auth_event_id,
                "createdDateUtc": xero_date(c.created), "updatedDateUtc": xero_date(c.updated),
            })).collect::<Vec<_>>(),
            "grants": grants,
        })
    }
}

/// Xero's timestamp format: UTC, no offset, 7 fractional digits.
pub fn xero_date(t: Timestamp) -> String {
    let dt = t.to_zoned(TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 100
    )
}

/// A token endpoint error: `400 {"error":"..."}` exactly, as Xero sends it.
pub fn token_error(status: StatusCode, error: &str) -> SimResponse {
    SimResponse::json_with_type(
        status,
        &json!({"error": error}),
        "application/json; charset=utf-8",
    )
    .with_header("cache-control", "no-cache, no-store")
    .with_header("pragma", "no-cache")
}

/// An api.xero.com error in its problem-details shape.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> SimResponse {
    SimResponse::json_with_type(
        status,
        &json!({
            "Type": null,
            "Title": title,
            "Status": status.as_u16(),
            "Detail": detail,
            "Instance": Uuid::new_v4().to_string(),
            "Extensions": {},
        }),
        "application/json",
    )
}

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
    let app = world
        .xero
        .apps
        .iter()
        .find(|a| a.client_id == client_id)
        .ok_or_else(invalid)?;
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
    let invalid_grant = || token_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let presented = form
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| token_error(StatusCode::BAD_REQUEST, "invalid_request"))?;
    let now = world.now();
    let grace = secs(world.config.xero_refresh_token_grace_seconds);
    let unused = secs(world.config.xero_refresh_token_unused_lifetime_seconds);
    let reuse = world.config.xero_grace_reuse;
    let xero = &mut world.xero;
    let record = xero
        .refresh_tokens
        .get(presented)
        .cloned()
        .ok_or_else(invalid_grant)?;
    let grant = &xero.grants[record.grant];
    if grant.client_id != app.client_id || grant.revoked_at.is_some() {
        return Err(invalid_grant());
    }
    match record.rotated_at {
        None if now
            >= record
                .issued_at
                .checked_add(unused)
                .unwrap_or(Timestamp::MAX) =>
        {
            return Err(invalid_grant());
        }
        Some(rotated) if now >= rotated.checked_add(grace).unwrap_or(Timestamp::MAX) => {
            return Err(invalid_grant());
        }
        _ => {}
    }
    let child = match (&record.child, reuse) {
        (Some(child), GraceReuse::SameChild) => child.clone(),
        _ => {
            let child = opaque();
            xero.refresh_tokens.insert(
                child.clone(),
                RefreshTokenRecord {
                    grant: record.grant,
                    issued_at: now,
                    rotated_at: None,
                    child: None,
                },
            );
            child
        }
    };
    if let Some(r) = xero.refresh_tokens.get_mut(presented) {
        r.rotated_at.get_or_insert(now);
        r.child = Some(child.clone());
    }
    Ok(issue_tokens(world, record.grant, Some(child)))
}

fn code_grant(
    world: &mut World,
    app: &XeroAppSeed,
    form: &HashMap<String, String>,
) -> Result<SimResponse, SimResponse> {
    let invalid_grant = || token_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let code = form
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| token_error(StatusCode::BAD_REQUEST, "invalid_request"))?;
    let now = world.now();
    let stored = world.xero.codes.get_mut(code).ok_or_else(invalid_grant)?;
    if stored.used || now >= stored.expires_at || stored.client_id != app.client_id {
        return Err(invalid_grant());
    }
    if form.get("redirect_uri") != Some(&stored.redirect_uri) {
        return Err(invalid_grant());
    }
    if let Some((method, challenge)) = &stored.challenge {
        let verifier = form.get("code_verifier").ok_or_else(invalid_grant)?;
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        let derived = if method == "S256" {
            pkce_s256(verifier)
        } else {
            verifier.clone()
        };
        if !well_formed || derived != *challenge {
            return Err(invalid_grant());
        }
    } else if app.client_secret.is_none() {
        // A public app can only prove itself with PKCE.
        return Err(invalid_grant());
    }
    stored.used = true;
    let (tenants, scope) = (stored.tenant_ids.clone(), stored.scope.clone());
    let xero = &mut world.xero;
    let grant = xero.new_grant(&app.client_id, tenants.clone(), scope.clone());
    let auth_event_id = xero.grants[grant].auth_event_id.clone();
    for tenant in &tenants {
        let template = xero
            .connections
            .iter()
            .find(|c| c.tenant_id == *tenant)
            .cloned();
        match xero
            .connections
            .iter_mut()
            .find(|c| c.client_id == app.client_id && c.tenant_id == *tenant)
        {
            Some(c) => {
                c.updated = now;
                c.auth_event_id = auth_event_id.clone();
            }
            None => {
                if let Some(t) = template {
                    xero.connections.push(Connection {
                        id: Uuid::new_v4().to_string(),
                        client_id: app.client_id.clone(),
                        created: now,
                        updated: now,
                        auth_event_id: auth_event_id.clone(),
                        ..t
                    });
                }
            }
        }
    }
    let refresh = scope
        .split_whitespace()
        .any(|s| s == "offline_access")
        .then(|| {
            let token = opaque();
            world.xero.refresh_tokens.insert(
                token.clone(),
                RefreshTokenRecord {
                    grant,
                    issued_at: now,
                    rotated_at: None,
                    child: None,
                },
            );
            token
        });
    Ok(issue_tokens(world, grant, refresh))
}

/// A token response for a grant: a new access token, and the given refresh token.
fn issue_tokens(world: &mut World, grant: usize, refresh_token: Option<String>) -> SimResponse {
    let now = world.now();
    let lifetime = world.config.xero_access_token_lifetime_seconds;
    let g = world.xero.grants[grant].clone();
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
        .access_tokens
        .insert(access.clone(), AccessTokenRecord { grant, expires_at });
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

/// `GET /connect/authorize`: the user consents at once; the browser is sent back to the
/// redirect URI with a code and the state.
pub fn authorize(world: &mut World, req: &SimRequest) -> SimResponse {
    let params: HashMap<String, String> = req.query_pairs().into_iter().collect();
    let client_id = params.get("client_id").cloned().unwrap_or_default();
    let Some(app) = world
        .xero
        .apps
        .iter()
        .find(|a| a.client_id == client_id)
        .cloned()
    else {
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
    let state = params.get("state").cloned();
    let redirect = |pairs: &[(&str, &str)]| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(s) = &state {
            query.append_pair("state", s);
        }
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        SimResponse::empty(StatusCode::FOUND)
            .with_header(
                "location",
                &format!("{redirect_uri}{separator}{}", query.finish()),
            )
            .with_principal(client_id.clone())
    };
    if params.get("response_type").map(String::as_str) != Some("code") {
        return redirect(&[("error", "unsupported_response_type")]);
    }
    let Some(scope) = params
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .cloned()
    else {
        return redirect(&[("error", "invalid_scope")]);
    };
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method").map(String::as_str),
    ) {
        (None, None) => None,
        (Some(c), None | Some("plain")) => Some(("plain".to_owned(), c.clone())),
        (Some(c), Some("S256")) => Some(("S256".to_owned(), c.clone())),
        _ => return redirect(&[("error", "invalid_request")]),
    };
    let tenant_ids = app.consent_tenant_ids.clone().unwrap_or_else(|| {
        let mut ids: Vec<String> = Vec::new();
        for c in &world.xero.connections {
            if !ids.contains(&c.tenant_id) {
                ids.push(c.tenant_id.clone());
            }
        }
        ids
    });
    let code = opaque();
    let expires_at = world
        .now()
        .checked_add(secs(world.config.xero_authorization_code_lifetime_seconds))
        .unwrap_or(Timestamp::MAX);
    world.xero.codes.insert(
        code.clone(),
        AuthCode {
            client_id: client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            challenge,
            scope: scope.clone(),
            tenant_ids,
            expires_at,
            used: false,
        },
    );
    redirect(&[("code", &code), ("scope", &scope)])
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
    let owned = world
        .xero
        .refresh_tokens
        .get(token)
        .is_some_and(|r| world.xero.grants[r.grant].client_id == app.client_id);
    if owned {
        world.xero.revoke(Some(token), now);
    }
    // RFC 7009: an unknown token is not an error.
    SimResponse::empty(StatusCode::OK).with_principal(app.client_id)
}

/// Resolves the bearer token of an api.xero.com request to its grant, or the 401 Xero sends.
fn bearer_grant(world: &World, req: &SimRequest) -> Result<usize, SimResponse> {
    let unauthorized = |detail: &str| {
        problem(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
            .with_header("www-authenticate", "Bearer")
    };
    let token = req
        .bearer_token()
        .ok_or_else(|| unauthorized("AuthenticationUnsuccessful"))?;
    let record = world
        .xero
        .access_tokens
        .get(token)
        .ok_or_else(|| unauthorized("AuthenticationUnsuccessful"))?;
    if world.now() >= record.expires_at {
        let at = record.expires_at.to_zoned(TimeZone::UTC).datetime();
        return Err(unauthorized(&format!(
            "TokenExpired: token expired at {:02}/{:02}/{:04} {:02}:{:02}:{:02}",
            at.month(),
            at.day(),
            at.year(),
            at.hour(),
            at.minute(),
            at.second()
        )));
    }
    Ok(record.grant)
}

/// `GET /connections`: the tenants the token's grant may access.
pub fn connections(world: &mut World, req: &SimRequest) -> SimResponse {
    let grant = match bearer_grant(world, req) {
        Ok(g) => g,
        Err(response) => return response,
    };
    let client_id = world.xero.grants[grant].client_id.clone();
    if let Some(retry) = world.rate_limited(&client_id) {
        return problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "Rate limit exceeded",
        )
        .with_header("retry-after", &retry.to_string())
        .with_header("x-rate-limit-problem", "minute")
        .with_principal(client_id);
    }
    let filter = req.query_param("authEventId");
    let list: Vec<Value> = world
        .xero
        .grant_connections(&world.xero.grants[grant])
        .into_iter()
        .filter(|c| {
            filter
                .as_deref()
                .is_none_or(|f| f.eq_ignore_ascii_case(&c.auth_event_id))
        })
        .map(|c| {
            json!({
                "id": c.id,
                "authEventId": c.auth_event_id,
                "tenantId": c.tenant_id,
                "tenantType": c.tenant_type,
                "tenantName": c.tenant_name,
                "createdDateUtc": xero_date(c.created),
                "updatedDateUtc": xero_date(c.updated),
            })
        })
        .collect();
    SimResponse::json_with_type(StatusCode::OK, &Value::Array(list), "application/json")
        .with_principal(client_id)
}

/// `DELETE /connections/{id}`: disconnects one tenant from the app.
pub fn delete_connection(world: &mut World, req: &SimRequest, id: &str) -> SimResponse {
    let grant = match bearer_grant(world, req) {
        Ok(g) => g,
        Err(response) => return response,
    };
    let g = world.xero.grants[grant].clone();
    let position = world.xero.connections.iter().position(|c| {
        c.id.eq_ignore_ascii_case(id) && c.client_id == g.client_id && g.revoked_at.is_none()
    });
    match position {
        Some(i) => {
            world.xero.connections.remove(i);
            SimResponse::empty(StatusCode::NO_CONTENT).with_principal(g.client_id)
        }
        None => problem(StatusCode::NOT_FOUND, "Not Found", "Resource not found")
            .with_principal(g.client_id),
    }
}

fn secs(seconds: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xero_dates_have_no_offset_and_seven_digits() {
        let t: Timestamp = "2020-03-18T21:20:07.717925Z".parse().unwrap();
        assert_eq!(xero_date(t), "2020-03-18T21:20:07.7179250");
    }
}
