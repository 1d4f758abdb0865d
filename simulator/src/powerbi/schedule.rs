//! Get and Update Refresh Schedule In Group.

use axum::http::StatusCode;
use serde_json::json;

use crate::http::{SimRequest, SimResponse};
use crate::powerbi::access::{Caller, dataset, require_owner};
use crate::powerbi::response::{Served, clip, error, odata_context};
use crate::state::World;
use crate::state::powerbi::schedule_rules;

/// `GET /groups/{group}/datasets/{dataset}/refreshSchedule`.
pub fn get_schedule(world: &mut World, caller: &Caller, group: &str, id: &str) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let mut body = world.powerbi.workspaces[w].datasets[d].schedule.to_json();
    body["@odata.context"] = json!(odata_context(
        world,
        &world.powerbi.workspaces[w].id,
        "Microsoft.PowerBI.ServiceContracts.Api.V1.RefreshSchedule"
    ));
    Ok(SimResponse::json(StatusCode::OK, &body))
}

/// `PATCH /groups/{group}/datasets/{dataset}/refreshSchedule`, by the owner only.
pub fn patch_schedule(
    world: &mut World,
    req: &SimRequest,
    caller: &Caller,
    group: &str,
    id: &str,
) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    require_owner(world, caller, (w, d), "update the refresh schedule")?;
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, "InvalidRequest", message);
    let body = match req.json_body() {
        Ok(Some(body)) => body,
        Ok(None) => return Err(bad("The request body is required.")),
        Err(e) => {
            return Err(bad(&format!(
                "The request body is not valid JSON: {}",
                clip(&e)
            )));
        }
    };
    let rules = schedule_rules(&world.config, world.powerbi.workspaces[w].capacity);
    let dataset = &mut world.powerbi.workspaces[w].datasets[d];
    let next = dataset
        .schedule
        .patched(&body, &rules)
        .map_err(|m| bad(&m))?;
    if next.enabled && !dataset.schedule.enabled {
        dataset.consecutive_failures = 0;
    }
    dataset.schedule = next;
    Ok(SimResponse::empty(StatusCode::OK))
}
