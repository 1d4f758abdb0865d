//! The `/_sim` admin API: not part of any real service. Seeds state, runs scheduled refreshes,
//! injects faults, lists served requests, revokes Xero tokens and moves the virtual clock.

use axum::http::{Method, StatusCode};
use jiff::SignedDuration;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{SimRequest, SimResponse};
use crate::powerbi::{error, refresh_rejection};
use crate::routes::AdminPath;
use crate::seed::Seed;
use crate::state::World;
use crate::state::powerbi::Outcome;
use crate::state::traffic::FaultSpec;

/// Body of `POST /_sim/datasets/{id}/scheduled-refresh`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduledRefreshRequest {
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(default)]
    duration_seconds: Option<u64>,
}

/// Body of `POST /_sim/datasets/{id}/failing-refreshes`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FailingRefreshesRequest {
    count: u32,
}

/// Body of `POST /_sim/xero/revoke`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RevokeRequest {
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    all: bool,
}

/// Body of `POST /_sim/clock/advance`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    seconds: f64,
}

/// Serves one admin request.
pub fn handle(world: &mut World, req: &SimRequest, path: &AdminPath) -> SimResponse {
    let method = &req.method;
    let result = match (path, method) {
        (AdminPath::State, &Method::GET) => {
            Ok(SimResponse::json(StatusCode::OK, &world.snapshot()))
        }
        (AdminPath::Seed, &Method::POST) => seed(world, req),
        (AdminPath::ScheduledRefresh(id), &Method::POST) => scheduled_refresh(world, req, id),
        (AdminPath::FailingRefreshes(id), &Method::POST) => failing_refreshes(world, req, id),
        (AdminPath::Faults, &Method::GET) => Ok(SimResponse::json(
            StatusCode::OK,
            &json!(world.traffic.faults()),
        )),
        (AdminPath::Faults, &Method::POST) => add_fault(world, req),
        (AdminPath::Faults, &Method::DELETE) => {
            world.traffic.clear_faults();
            Ok(SimResponse::empty(StatusCode::NO_CONTENT))
        }
        (AdminPath::Requests, &Method::GET) => Ok(requests(world, req)),
        (AdminPath::Requests, &Method::DELETE) => {
            world.traffic.clear_requests();
            Ok(SimResponse::empty(StatusCode::NO_CONTENT))
        }
        (AdminPath::XeroRevoke, &Method::POST) => revoke(world, req),
        (AdminPath::Clock, &Method::GET) => Ok(now(world)),
        (AdminPath::ClockAdvance, &Method::POST) => advance(world, req),
        _ => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("The requested resource does not support http method '{method}'."),
        )),
    };
    result.unwrap_or_else(|e| e)
}

fn bad(message: &str) -> SimResponse {
    error(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

/// Parses an optional JSON body into `T`; an empty body gives `T::default()`-like `None`.
fn body<T: for<'de> Deserialize<'de>>(req: &SimRequest) -> Result<Option<T>, SimResponse> {
    match req.json_body() {
        Ok(None) => Ok(None),
        Ok(Some(value)) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| bad(&e.to_string())),
        Err(e) => Err(bad(&format!("The request body is not valid JSON: {e}"))),
    }
}

fn seed(world: &mut World, req: &SimRequest) -> Result<SimResponse, SimResponse> {
    let text =
        std::str::from_utf8(&req.body).map_err(|_| bad("The seed must be UTF-8 YAML or JSON."))?;
    let seed = Seed::from_yaml(text)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "InvalidSeed", &e.to_string()))?;
    world
        .reseed(seed)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "InvalidSeed", &e.to_string()))?;
    Ok(SimResponse::empty(StatusCode::NO_CONTENT))
}

fn scheduled_refresh(
    world: &mut World,
    req: &SimRequest,
    id: &str,
) -> Result<SimResponse, SimResponse> {
    let request: ScheduledRefreshRequest = body(req)?.unwrap_or_default();
    let (w, d) = dataset_position(world, id)?;
    if !world.powerbi.workspaces[w].datasets[d].schedule.enabled {
        return Err(error(
            StatusCode::CONFLICT,
            "ScheduleDisabled",
            "The dataset's refresh schedule is disabled, so the service would not run a scheduled refresh.",
        ));
    }
    let refresh = world
        .start_refresh(
            (w, d),
            "Scheduled",
            request.outcome.unwrap_or(Outcome::Auto),
            request.duration_seconds,
        )
        .map_err(|rejection| refresh_rejection(world, rejection))?;
    // Report the entry as it stands now: a zero-length run has already ended.
    let entry = world.powerbi.workspaces[w].datasets[d]
        .refreshes
        .iter()
        .find(|r| r.request_id == refresh.request_id)
        .map(|r| r.to_json())
        .unwrap_or_else(|| refresh.to_json());
    Ok(SimResponse::json(StatusCode::ACCEPTED, &entry)
        .with_header("RequestId", &refresh.request_id))
}

/// Makes the dataset's next `count` refreshes, of any type, fail with a processing error.
fn failing_refreshes(
    world: &mut World,
    req: &SimRequest,
    id: &str,
) -> Result<SimResponse, SimResponse> {
    let request: FailingRefreshesRequest =
        body(req)?.ok_or_else(|| bad("The request needs a body: {\"count\": N}."))?;
    let (w, d) = dataset_position(world, id)?;
    world.powerbi.workspaces[w].datasets[d].failing_refreshes = request.count;
    Ok(SimResponse::empty(StatusCode::NO_CONTENT))
}

/// Where the dataset `id` is, or Power BI's 404.
fn dataset_position(world: &World, id: &str) -> Result<(usize, usize), SimResponse> {
    world.powerbi.find_dataset(id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "ItemNotFound",
            &format!("Dataset {id} is not found."),
        )
    })
}

fn add_fault(world: &mut World, req: &SimRequest) -> Result<SimResponse, SimResponse> {
    let spec: FaultSpec = body(req)?.ok_or_else(|| bad("A fault needs a body."))?;
    if spec.status.is_some_and(|s| !(200..=599).contains(&s)) {
        return Err(bad("'status' must be between 200 and 599."));
    }
    if spec.delay_ms.is_some_and(|d| d > 60_000) {
        return Err(bad("'delayMs' must be at most 60000."));
    }
    if spec.answer_delay_ms.is_some_and(|d| d > 60_000) {
        return Err(bad("'answerDelayMs' must be at most 60000."));
    }
    if spec.status.is_none()
        && spec.delay_ms.is_none()
        && spec.answer_delay_ms.is_none()
        && !spec.malformed_body
    {
        return Err(bad(
            "A fault needs at least one of 'status', 'delayMs', 'answerDelayMs' or 'malformedBody'.",
        ));
    }
    if spec
        .path_prefix
        .as_deref()
        .is_some_and(|p| p.starts_with("/_sim"))
    {
        return Err(bad("The admin API cannot be faulted."));
    }
    let fault = world.traffic.add_fault(spec);
    Ok(SimResponse::json(StatusCode::CREATED, &json!(fault)))
}

/// The request log, optionally filtered by `service`, `method`, `pathPrefix` or `principal`.
fn requests(world: &World, req: &SimRequest) -> SimResponse {
    let filters = req.query_pairs();
    let wanted = |name: &str| {
        filters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let list: Vec<Value> = world
        .traffic
        .requests()
        .filter(|r| wanted("service").is_none_or(|s| r.service == s))
        .filter(|r| wanted("method").is_none_or(|m| r.method.eq_ignore_ascii_case(m)))
        .filter(|r| wanted("pathPrefix").is_none_or(|p| r.path.starts_with(p)))
        .filter(|r| wanted("principal").is_none_or(|p| r.principal.as_deref() == Some(p)))
        .map(|r| json!(r))
        .collect();
    SimResponse::json(StatusCode::OK, &Value::Array(list))
}

fn revoke(world: &mut World, req: &SimRequest) -> Result<SimResponse, SimResponse> {
    let request: RevokeRequest = body(req)?.unwrap_or_default();
    let now = world.now();
    let revoked = match (request.refresh_token, request.all) {
        (Some(token), false) => world.xero.grants.revoke(Some(&token), now).ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "UnknownRefreshToken",
                "No such refresh token was issued.",
            )
        })?,
        (None, true) => world.xero.grants.revoke(None, now).unwrap_or(0),
        _ => {
            return Err(bad(
                "Send either {\"refreshToken\": \"...\"} or {\"all\": true}.",
            ));
        }
    };
    Ok(SimResponse::json(
        StatusCode::OK,
        &json!({"revokedGrants": revoked}),
    ))
}

fn now(world: &World) -> SimResponse {
    SimResponse::json(
        StatusCode::OK,
        &json!({"now": format!("{:.3}", world.now())}),
    )
}

fn advance(world: &mut World, req: &SimRequest) -> Result<SimResponse, SimResponse> {
    let request: AdvanceRequest = body(req)?.ok_or_else(|| bad("Send {\"seconds\": N}."))?;
    if !request.seconds.is_finite() || request.seconds < 0.0 || request.seconds > 1e10 {
        return Err(bad("'seconds' must be a non-negative number of seconds."));
    }
    world.advance_clock(SignedDuration::from_secs_f64(request.seconds));
    Ok(now(world))
}
