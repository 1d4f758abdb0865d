//! Who is calling and what they may reach: the bearer token, workspace membership and
//! dataset ownership.

use axum::http::StatusCode;

use crate::http::{SimRequest, SimResponse};
use crate::powerbi::response::{clip, error};
use crate::state::World;
use crate::state::entra::owner_name;

/// The caller behind a valid bearer token.
pub struct Caller {
    pub(crate) client_id: String,
    pub(crate) owner_name: String,
}

/// Missing or unknown tokens get 401; an expired one gets the documented 403 TokenExpired.
pub fn authenticate(world: &World, req: &SimRequest) -> Result<Caller, SimResponse> {
    let unauthorized = |message: &str| {
        error(StatusCode::UNAUTHORIZED, "PowerBINotAuthorizedException", message).with_header(
            "www-authenticate",
            "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize, error=\"invalid_token\"",
        )
    };
    let token = req
        .bearer_token()
        .ok_or_else(|| unauthorized("The request has no access token."))?;
    let issued = world
        .entra
        .token(token)
        .ok_or_else(|| unauthorized("The access token is not valid."))?;
    if world.now() >= issued.expires_at {
        return Err(error(
            StatusCode::FORBIDDEN,
            "TokenExpired",
            "Access token has expired, resubmit with a new access token",
        ));
    }
    let principal = world
        .entra
        .principal_by_client_id(&issued.client_id)
        .ok_or_else(|| unauthorized("The access token is not valid."))?;
    Ok(Caller {
        client_id: principal.client_id.clone(),
        owner_name: owner_name(principal),
    })
}

/// The workspace's index, when it exists and the caller is a member.
pub fn workspace(world: &World, caller: &Caller, group: &str) -> Result<usize, SimResponse> {
    let index = world
        .powerbi
        .workspaces
        .iter()
        .position(|w| w.id.eq_ignore_ascii_case(group))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "PowerBIEntityNotFound",
                "PowerBIEntityNotFound",
            )
        })?;
    let member = world.powerbi.workspaces[index]
        .members
        .as_ref()
        .is_none_or(|m| {
            m.iter()
                .any(|id| id.eq_ignore_ascii_case(&caller.client_id))
        });
    if !member {
        return Err(error(
            StatusCode::FORBIDDEN,
            "PowerBINotAuthorizedException",
            "The caller is not a member or admin of the workspace.",
        ));
    }
    Ok(index)
}

/// The workspace and dataset indexes, when the caller may see the dataset.
pub fn dataset(
    world: &World,
    caller: &Caller,
    group: &str,
    dataset: &str,
) -> Result<(usize, usize), SimResponse> {
    let w = workspace(world, caller, group)?;
    let d = world.powerbi.workspaces[w]
        .datasets
        .iter()
        .position(|d| d.id.eq_ignore_ascii_case(dataset))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "ItemNotFound",
                &format!("Dataset {} is not found! please verify datasetId is correct and user have sufficient permissions.", clip(dataset)),
            )
        })?;
    Ok((w, d))
}

/// Only the dataset's owner may change its schedule or credentials.
pub fn require_owner(
    world: &World,
    caller: &Caller,
    (w, d): (usize, usize),
    action: &str,
) -> Result<(), SimResponse> {
    if world.powerbi.workspaces[w].datasets[d].configured_by == caller.owner_name {
        return Ok(());
    }
    let status =
        StatusCode::from_u16(world.config.owner_error_status).unwrap_or(StatusCode::BAD_REQUEST);
    Err(error(
        status,
        "PowerBINotAuthorizedException",
        &format!("This operation is only supported for the dataset owner ({action})"),
    ))
}
