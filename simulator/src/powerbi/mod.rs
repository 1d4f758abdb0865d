//! The Power BI REST subset the operator uses (`/v1.0/myorg/...`), with the service's auth
//! checks, error envelope, `@odata.context` and `RequestId` header.

use axum::http::{Method, StatusCode};
use uuid::Uuid;

use crate::http::{SimRequest, SimResponse};
use crate::routes::PowerBiPath;
use crate::state::World;

mod access;
mod credentials;
mod datasets;
mod refreshes;
mod response;
mod schedule;

use access::{Caller, authenticate};
use credentials::{get_gateway, update_datasource};
use datasets::{get_dataset, get_datasets, get_datasources, take_over};
pub use refreshes::refresh_rejection;
use refreshes::{get_refreshes, post_refresh};
use response::Served;
pub use response::{error, throttled};
use schedule::{get_schedule, patch_schedule};

/// Serves one Power BI request.
pub fn handle(world: &mut World, req: &SimRequest, path: &PowerBiPath) -> SimResponse {
    let mut response = serve(world, req, path).unwrap_or_else(|e| e);
    if !response
        .headers
        .iter()
        .any(|(k, _)| k.as_str().eq_ignore_ascii_case("requestid"))
    {
        response = response.with_header("RequestId", &Uuid::new_v4().to_string());
    }
    response
}

fn serve(world: &mut World, req: &SimRequest, path: &PowerBiPath) -> Served {
    let allowed: &[Method] = match path {
        PowerBiPath::Datasets { .. }
        | PowerBiPath::Dataset { .. }
        | PowerBiPath::Datasources { .. }
        | PowerBiPath::Gateway { .. } => &[Method::GET],
        PowerBiPath::Refreshes { .. } => &[Method::GET, Method::POST],
        PowerBiPath::Schedule { .. } => &[Method::GET, Method::PATCH],
        PowerBiPath::TakeOver { .. } => &[Method::POST],
        PowerBiPath::GatewayDatasource { .. } => &[Method::PATCH],
    };
    if !allowed.contains(&req.method) {
        return Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "The requested resource does not support http method '{}'.",
                req.method
            ),
        ));
    }
    let caller = authenticate(world, req)?;
    let principal = caller.client_id.clone();
    let result = if let Some(retry) = world.rate_limited(&caller.client_id) {
        Err(throttled(retry))
    } else {
        route(world, req, path, &caller)
    };
    match result {
        Ok(r) => Ok(r.with_principal(principal)),
        Err(r) => Err(r.with_principal(principal)),
    }
}

fn route(world: &mut World, req: &SimRequest, path: &PowerBiPath, caller: &Caller) -> Served {
    match (path, &req.method) {
        (PowerBiPath::Datasets { group }, _) => get_datasets(world, caller, group),
        (PowerBiPath::Dataset { group, dataset }, _) => get_dataset(world, caller, group, dataset),
        (PowerBiPath::Refreshes { group, dataset }, &Method::GET) => {
            get_refreshes(world, req, caller, group, dataset)
        }
        (PowerBiPath::Refreshes { group, dataset }, _) => {
            post_refresh(world, req, caller, group, dataset)
        }
        (PowerBiPath::Schedule { group, dataset }, &Method::GET) => {
            get_schedule(world, caller, group, dataset)
        }
        (PowerBiPath::Schedule { group, dataset }, _) => {
            patch_schedule(world, req, caller, group, dataset)
        }
        (PowerBiPath::Datasources { group, dataset }, _) => {
            get_datasources(world, caller, group, dataset)
        }
        (PowerBiPath::TakeOver { group, dataset }, _) => take_over(world, caller, group, dataset),
        (PowerBiPath::Gateway { gateway }, _) => get_gateway(world, gateway),
        (
            PowerBiPath::GatewayDatasource {
                gateway,
                datasource,
            },
            _,
        ) => update_datasource(world, req, caller, gateway, datasource),
    }
}
