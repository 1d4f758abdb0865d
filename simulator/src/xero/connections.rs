//! api.xero.com's `/connections`: the tenants an access token may reach, and disconnecting
//! one.

use axum::http::StatusCode;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::http::{SimRequest, SimResponse};
use crate::state::World;
use crate::state::xero::XeroLimit;
use crate::state::xero::xero_date;
use crate::xero::response::{problem, too_many_requests, with_calls_left};

/// Resolves the bearer token of an api.xero.com request to its grant, or the 401 Xero sends.
pub(super) fn bearer_grant(world: &World, req: &SimRequest) -> Result<usize, SimResponse> {
    let unauthorized = |detail: &str| {
        problem(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
            .with_header("www-authenticate", "Bearer")
    };
    let token = req
        .bearer_token()
        .ok_or_else(|| unauthorized("AuthenticationUnsuccessful"))?;
    let record = world
        .xero
        .grants
        .access_token(token)
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
    let client_id = world.xero.grants.get(grant).client_id.clone();
    let calls_left = match world.xero_call(&client_id, None) {
        Ok(left) => left,
        Err((limit, wait)) => return too_many_requests(limit, wait, client_id),
    };
    if let Some(retry) = world.rate_limited(&client_id) {
        return too_many_requests(XeroLimit::Minute, retry, client_id);
    }
    let filter = req.query_param("authEventId");
    let list: Vec<Value> = world
        .xero
        .grant_connections(world.xero.grants.get(grant))
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
    with_calls_left(
        SimResponse::json_with_type(StatusCode::OK, &Value::Array(list), "application/json"),
        calls_left,
    )
    .with_principal(client_id)
}

/// `DELETE /connections/{id}`: disconnects one tenant from the app.
pub fn delete_connection(world: &mut World, req: &SimRequest, id: &str) -> SimResponse {
    let grant = match bearer_grant(world, req) {
        Ok(g) => g,
        Err(response) => return response,
    };
    let client_id = world.xero.grants.get(grant).client_id.clone();
    if world.xero.disconnect(grant, id) {
        SimResponse::empty(StatusCode::NO_CONTENT).with_principal(client_id)
    } else {
        problem(StatusCode::NOT_FOUND, "Not Found", "Resource not found").with_principal(client_id)
    }
}
