//! Get Refresh History and Refresh Dataset, with the refresh body's rules and the errors of
//! a refused refresh.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::http::{SimRequest, SimResponse};
use crate::powerbi::access::{Caller, dataset};
use crate::powerbi::response::{Served, clip, error, odata_context};
use crate::seed::Capacity;
use crate::state::World;
use crate::state::powerbi::{Outcome, RefreshRejection};

/// `GET /groups/{group}/datasets/{dataset}/refreshes`, newest first, `$top` of them.
pub fn get_refreshes(
    world: &mut World,
    req: &SimRequest,
    caller: &Caller,
    group: &str,
    id: &str,
) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let top = match req.query_param("$top") {
        None => 60,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "The query parameter '$top' must be an integer of at least 1.",
                ));
            }
        },
    };
    let value: Vec<Value> = world.powerbi.workspaces[w].datasets[d]
        .refreshes
        .iter()
        .rev()
        .take(top)
        .map(|r| r.to_json())
        .collect();
    let context = odata_context(world, &world.powerbi.workspaces[w].id, "refreshes");
    Ok(SimResponse::json(
        StatusCode::OK,
        &json!({"@odata.context": context, "value": value}),
    ))
}

/// Fields that make a refresh request an enhanced refresh.
const ENHANCED_FIELDS: [&str; 8] = [
    "type",
    "commitMode",
    "maxParallelism",
    "retryCount",
    "objects",
    "applyRefreshPolicy",
    "effectiveDate",
    "timeout",
];

/// `POST /groups/{group}/datasets/{dataset}/refreshes`: a plain or an enhanced refresh.
pub fn post_refresh(
    world: &mut World,
    req: &SimRequest,
    caller: &Caller,
    group: &str,
    id: &str,
) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, "InvalidRequest", message);
    let body = req
        .json_body()
        .map_err(|e| bad(&format!("The request body is not valid JSON: {}", clip(&e))))?;
    let enhanced = match &body {
        None => false,
        Some(Value::Object(fields)) => {
            check_refresh_body(fields, world.powerbi.workspaces[w].capacity).map_err(|m| bad(&m))?
        }
        Some(_) => {
            return Err(bad(
                "The request body must be a DatasetRefreshRequest object.",
            ));
        }
    };
    let refresh_type = if enhanced { "ViaEnhancedApi" } else { "ViaApi" };
    let refresh = world
        .start_refresh((w, d), refresh_type, Outcome::Auto, None)
        .map_err(|rejection| refresh_rejection(world, rejection))?;
    let mut response =
        SimResponse::empty(StatusCode::ACCEPTED).with_header("RequestId", &refresh.request_id);
    if enhanced {
        let host = req.header("host").unwrap_or("127.0.0.1");
        let ws = &world.powerbi.workspaces[w];
        let location = format!(
            "http://{host}/v1.0/myorg/groups/{}/datasets/{}/refreshes/{}",
            ws.id, ws.datasets[d].id, refresh.request_id
        );
        response = response
            .with_header("x-ms-request-id", &refresh.request_id)
            .with_header("location", &location);
    }
    Ok(response)
}

/// Checks a refresh body; `Ok(true)` for an enhanced refresh.
fn check_refresh_body(fields: &Map<String, Value>, capacity: Capacity) -> Result<bool, String> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let notify = get("notifyOption");
    let enhanced = ENHANCED_FIELDS.iter().any(|f| get(f).is_some());
    if !enhanced {
        return match notify.and_then(Value::as_str) {
            Some(n) if n.eq_ignore_ascii_case("NoNotification") => Ok(false),
            // Mail options do not apply to service principals (the error is UNCONFIRMED).
            Some(n) if n.eq_ignore_ascii_case("MailOnFailure") || n.eq_ignore_ascii_case("MailOnCompletion") => {
                Err("Notify options other than NoNotification are not supported for service principals.".into())
            }
            Some(_) => Err("'notifyOption' must be NoNotification, MailOnFailure or MailOnCompletion.".into()),
            None => Err("'notifyOption' is required when a refresh request has a body.".into()),
        };
    }
    if capacity == Capacity::Shared {
        return Err(
            "Enhanced refresh is not supported on shared capacity: send only 'notifyOption'."
                .into(),
        );
    }
    if notify.is_some() {
        return Err("'notifyOption' cannot be used with an enhanced refresh.".into());
    }
    let one_of = |name: &str, allowed: &[&str]| match get(name) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.iter().any(|a| a.eq_ignore_ascii_case(s)) => Ok(()),
        Some(_) => Err(format!("'{name}' must be one of {}.", allowed.join(", "))),
    };
    one_of(
        "type",
        &[
            "Full",
            "ClearValues",
            "Calculate",
            "DataOnly",
            "Automatic",
            "Defragment",
        ],
    )?;
    one_of("commitMode", &["Transactional", "PartialBatch"])?;
    for name in ["maxParallelism", "retryCount"] {
        if get(name).is_some_and(|v| !v.is_i64()) {
            return Err(format!("'{name}' must be an integer."));
        }
    }
    if get("applyRefreshPolicy").is_some_and(|v| !v.is_boolean()) {
        return Err("'applyRefreshPolicy' must be a boolean.".into());
    }
    if get("objects").is_some_and(|v| {
        !v.as_array().is_some_and(|a| {
            a.iter()
                .all(|o| o.get("table").is_some_and(Value::is_string))
        })
    }) {
        return Err("'objects' must be a list of {table, partition}.".into());
    }
    let partial = get("commitMode")
        .and_then(Value::as_str)
        .is_some_and(|m| m.eq_ignore_ascii_case("PartialBatch"));
    if partial && get("applyRefreshPolicy") != Some(&Value::Bool(false)) {
        return Err("'applyRefreshPolicy' must be false when 'commitMode' is PartialBatch.".into());
    }
    Ok(true)
}

/// The error a rejected refresh request gets.
pub fn refresh_rejection(world: &World, rejection: RefreshRejection) -> SimResponse {
    let status = |code: u16, fallback| StatusCode::from_u16(code).unwrap_or(fallback);
    match rejection {
        RefreshRejection::InProgress => error(
            status(
                world.config.concurrent_refresh_status,
                StatusCode::BAD_REQUEST,
            ),
            "InvalidRequest",
            "Invalid dataset refresh request. Another refresh request is already executing.",
        ),
        RefreshRejection::DailyLimit => error(
            status(world.config.daily_limit_status, StatusCode::BAD_REQUEST),
            "InvalidRequest",
            "Invalid dataset refresh request. Number of refresh requests in last 24 hours exceeded limit",
        ),
        RefreshRejection::NotRefreshable => error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Invalid dataset refresh request. The dataset cannot be refreshed.",
        ),
    }
}
