//! api.xero.com's `GET /api.xro/2.0/Organisation`: the one Accounting API call of the
//! simulator, there for what every call naming a tenant carries, Xero's per-organisation
//! limits and their headers.

use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::http::{SimRequest, SimResponse};
use crate::state::World;
use crate::state::xero::XeroLimit;
use crate::xero::connections::bearer_grant;
use crate::xero::response::{problem, too_many_requests, with_calls_left};

/// `GET /api.xro/2.0/Organisation` with `xero-tenant-id`: the organisation, when the token's
/// grant reaches that tenant and the app has calls left in it. A missing or unreachable tenant
/// is answered 403 `AuthenticationUnsuccessful` (the status for a missing header is
/// UNCONFIRMED); the call is counted only once the tenant is known.
pub fn organisation(world: &mut World, req: &SimRequest) -> SimResponse {
    let grant = match bearer_grant(world, req) {
        Ok(g) => g,
        Err(response) => return response,
    };
    let client_id = world.xero.grants.get(grant).client_id.clone();
    let wanted = req.header("xero-tenant-id").map(str::trim).unwrap_or("");
    let connection = world
        .xero
        .grant_connections(world.xero.grants.get(grant))
        .into_iter()
        .find(|c| !wanted.is_empty() && c.tenant_id.eq_ignore_ascii_case(wanted))
        .map(|c| {
            (
                c.tenant_id.clone(),
                c.tenant_name.clone(),
                c.tenant_type.clone(),
            )
        });
    let Some((tenant_id, name, kind)) = connection else {
        return problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "AuthenticationUnsuccessful",
        )
        .with_principal(client_id);
    };
    let left = match world.xero_call(&client_id, Some(&tenant_id)) {
        Ok(left) => left,
        Err((limit, wait)) => return too_many_requests(limit, wait, client_id),
    };
    if let Some(retry) = world.rate_limited(&client_id) {
        return too_many_requests(XeroLimit::Minute, retry, client_id);
    }
    let body = json!({
        "Id": Uuid::new_v4().to_string(),
        "Status": "OK",
        "ProviderName": "xero-operator simulator",
        "Organisations": [{
            "OrganisationID": tenant_id,
            "Name": name,
            "LegalName": name,
            "OrganisationType": if kind == "ORGANISATION" { "COMPANY" } else { "PRACTICE" },
            "OrganisationStatus": "ACTIVE",
            "Version": "GLOBAL",
        }],
    });
    with_calls_left(
        SimResponse::json_with_type(StatusCode::OK, &body, "application/json; charset=utf-8"),
        left,
    )
    .with_principal(client_id)
}
