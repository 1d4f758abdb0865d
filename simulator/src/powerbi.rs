//! The Power BI REST subset the operator uses (`/v1.0/myorg/...`), with the service's auth
//! checks, error envelope, `@odata.context` and `RequestId` header.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::http::{SimRequest, SimResponse};
use crate::routes::PowerBiPath;
use crate::world::{Credential, Outcome, RefreshRejection, World, owner_name};
use crate::xero::TokenProblem;

/// The service's error envelope: `{"error":{"code":..,"message":..}}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// The body of a 429, which live traffic shows outside the error envelope.
pub fn throttled(retry_after: u64) -> SimResponse {
    SimResponse::json(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"message": format!("You have exceeded the amount of requests allowed in the current time frame and further requests will fail. Retry in {retry_after} seconds.")}),
    )
    .with_header("retry-after", &retry_after.to_string())
}

/// The caller behind a valid bearer token.
struct Caller {
    client_id: String,
    owner_name: String,
}

type Served = Result<SimResponse, SimResponse>;

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
        | PowerBiPath::Datasources { .. } => &[Method::GET],
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
        (
            PowerBiPath::GatewayDatasource {
                gateway,
                datasource,
            },
            _,
        ) => update_datasource(world, req, caller, gateway, datasource),
    }
}

/// Missing or unknown tokens get 401; an expired one gets the documented 403 TokenExpired.
fn authenticate(world: &World, req: &SimRequest) -> Result<Caller, SimResponse> {
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
        .entra_tokens
        .get(token)
        .ok_or_else(|| unauthorized("The access token is not valid."))?;
    if world.now() >= issued.expires_at {
        return Err(error(
            StatusCode::FORBIDDEN,
            "TokenExpired",
            "Access token has expired, resubmit with a new access token",
        ));
    }
    let principal = world
        .principals
        .iter()
        .find(|p| p.client_id == issued.client_id)
        .ok_or_else(|| unauthorized("The access token is not valid."))?;
    Ok(Caller {
        client_id: principal.client_id.clone(),
        owner_name: owner_name(principal),
    })
}

fn workspace(world: &World, caller: &Caller, group: &str) -> Result<usize, SimResponse> {
    let index = world
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
    let member = world.workspaces[index].members.as_ref().is_none_or(|m| {
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

fn dataset(
    world: &World,
    caller: &Caller,
    group: &str,
    dataset: &str,
) -> Result<(usize, usize), SimResponse> {
    let w = workspace(world, caller, group)?;
    let d = world.workspaces[w]
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

fn odata_context(world: &World, group: &str, fragment: &str) -> String {
    format!(
        "{}/v1.0/myorg/groups/{group}/$metadata#{fragment}",
        world.config.odata_context_host
    )
}

fn dataset_json(world: &World, w: usize, d: usize) -> Value {
    let ws = &world.workspaces[w];
    let ds = &ws.datasets[d];
    json!({
        "id": ds.id,
        "name": ds.name,
        "webUrl": format!("https://app.powerbi.com/groups/{}/datasets/{}", ws.id, ds.id),
        "addRowsAPIEnabled": false,
        "configuredBy": ds.configured_by,
        "isRefreshable": ds.refreshable,
        "isEffectiveIdentityRequired": false,
        "isEffectiveIdentityRolesRequired": false,
        "isOnPremGatewayRequired": false,
        "targetStorageMode": "Abf",
        "createdDate": format!("{:.3}", ds.created),
        "createReportEmbedURL": format!("https://app.powerbi.com/reportEmbed?config={}", ds.id),
        "qnaEmbedURL": format!("https://app.powerbi.com/qnaEmbed?config={}", ds.id),
        "upstreamDataflows": [],
        "users": [],
        "queryScaleOutSettings": {"autoSyncReadOnlyReplicas": true, "maxReadOnlyReplicas": 0},
    })
}

fn get_datasets(world: &mut World, caller: &Caller, group: &str) -> Served {
    let w = workspace(world, caller, group)?;
    let value: Vec<Value> = (0..world.workspaces[w].datasets.len())
        .map(|d| dataset_json(world, w, d))
        .collect();
    let group = world.workspaces[w].id.clone();
    Ok(SimResponse::json(
        StatusCode::OK,
        &json!({"@odata.context": odata_context(world, &group, "datasets"), "value": value}),
    ))
}

fn get_dataset(world: &mut World, caller: &Caller, group: &str, id: &str) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let mut body = json!({"@odata.context": odata_context(world, &world.workspaces[w].id, "datasets/$entity")});
    if let (Some(target), Value::Object(fields)) = (body.as_object_mut(), dataset_json(world, w, d))
    {
        target.extend(fields);
    }
    Ok(SimResponse::json(StatusCode::OK, &body))
}

fn get_refreshes(
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
    let value: Vec<Value> = world.workspaces[w].datasets[d]
        .refreshes
        .iter()
        .rev()
        .take(top)
        .map(|r| r.to_json())
        .collect();
    let context = odata_context(world, &world.workspaces[w].id, "refreshes");
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

fn post_refresh(
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
            check_refresh_body(fields, world.workspaces[w].capacity).map_err(|m| bad(&m))?
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
        let ws = &world.workspaces[w];
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
fn check_refresh_body(
    fields: &Map<String, Value>,
    capacity: crate::seed::Capacity,
) -> Result<bool, String> {
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
    if capacity == crate::seed::Capacity::Shared {
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

fn get_schedule(world: &mut World, caller: &Caller, group: &str, id: &str) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let mut body = world.workspaces[w].datasets[d].schedule.to_json();
    body["@odata.context"] = json!(odata_context(
        world,
        &world.workspaces[w].id,
        "Microsoft.PowerBI.ServiceContracts.Api.V1.RefreshSchedule"
    ));
    Ok(SimResponse::json(StatusCode::OK, &body))
}

fn require_owner(
    world: &World,
    caller: &Caller,
    (w, d): (usize, usize),
    action: &str,
) -> Result<(), SimResponse> {
    if world.workspaces[w].datasets[d].configured_by == caller.owner_name {
        return Ok(());
    }
    Err(error(
        StatusCode::FORBIDDEN,
        "PowerBINotAuthorizedException",
        &format!("Only the dataset owner can {action}. Take over the dataset first."),
    ))
}

fn patch_schedule(
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
    let rules = world.schedule_rules(world.workspaces[w].capacity);
    let dataset = &mut world.workspaces[w].datasets[d];
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

fn get_datasources(world: &mut World, caller: &Caller, group: &str, id: &str) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let value: Vec<Value> = world.workspaces[w].datasets[d]
        .datasources
        .iter()
        .map(|s| {
            json!({
                "datasourceType": s.datasource_type,
                "connectionDetails": s.connection_details,
                "datasourceId": s.datasource_id,
                "gatewayId": s.gateway_id,
            })
        })
        .collect();
    let context = odata_context(world, &world.workspaces[w].id, "datasources");
    Ok(SimResponse::json(
        StatusCode::OK,
        &json!({"@odata.context": context, "value": value}),
    ))
}

fn take_over(world: &mut World, caller: &Caller, group: &str, id: &str) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let clear = world.config.take_over_clears_credentials;
    let dataset = &mut world.workspaces[w].datasets[d];
    if dataset.configured_by != caller.owner_name {
        dataset.configured_by = caller.owner_name.clone();
        if clear {
            for source in &mut dataset.datasources {
                source.credential = None;
            }
        }
    }
    Ok(SimResponse::empty(StatusCode::OK))
}

fn update_datasource(
    world: &mut World,
    req: &SimRequest,
    caller: &Caller,
    gateway: &str,
    datasource: &str,
) -> Served {
    let matches: Vec<(usize, usize, usize)> = world
        .workspaces
        .iter()
        .enumerate()
        .flat_map(|(w, ws)| {
            ws.datasets.iter().enumerate().flat_map(move |(d, ds)| {
                ds.datasources
                    .iter()
                    .enumerate()
                    .filter_map(move |(s, src)| {
                        (src.gateway_id.eq_ignore_ascii_case(gateway)
                            && src.datasource_id.eq_ignore_ascii_case(datasource))
                        .then_some((w, d, s))
                    })
            })
        })
        .collect();
    let Some(&(w, d, s)) = matches.first() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "DMTS_DatasourceNotFoundError",
            "The data source was not found on the gateway.",
        ));
    };
    // Cloud source credentials may be set only by the data source owner.
    if !matches
        .iter()
        .any(|&(w, d, _)| world.workspaces[w].datasets[d].configured_by == caller.owner_name)
    {
        require_owner(world, caller, (w, d), "update the data source credentials")?;
    }
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, "InvalidRequest", message);
    let body = match req.json_body() {
        Ok(Some(Value::Object(body))) => body,
        Ok(_) => {
            return Err(bad(
                "The request body must be an UpdateDatasourceRequest object.",
            ));
        }
        Err(e) => {
            return Err(bad(&format!(
                "The request body is not valid JSON: {}",
                clip(&e)
            )));
        }
    };
    let credential = parse_credential_details(&body).map_err(|m| bad(&m))?;
    if world.config.validate_credentials_on_update {
        let tenant = world.workspaces[w].datasets[d].datasources[s]
            .xero_tenant_id
            .clone();
        let problem = match &credential.access_token {
            Some(token) => world
                .xero
                .access_token_problem(token, tenant.as_deref(), world.now()),
            None => Some(TokenProblem::Unknown),
        };
        if problem.is_some() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "DM_GWPipeline_Gateway_InvalidConnectionCredentials",
                "The credentials provided for the Xero source are invalid.",
            ));
        }
    }
    for (w, d, s) in matches {
        world.workspaces[w].datasets[d].datasources[s].credential = Some(credential.clone());
    }
    Ok(SimResponse::empty(StatusCode::OK))
}

fn parse_credential_details(body: &Map<String, Value>) -> Result<Credential, String> {
    let get = |o: &Map<String, Value>, name: &str| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let details = match get(body, "credentialDetails") {
        Some(Value::Object(d)) => d,
        _ => return Err("'credentialDetails' is required.".into()),
    };
    let enum_field = |name: &str, allowed: &[&str]| -> Result<String, String> {
        match get(&details, name) {
            Some(Value::String(s)) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(&s))
                .map(|a| (*a).to_owned())
                .ok_or_else(|| format!("'{name}' must be one of {}.", allowed.join(", "))),
            _ => Err(format!("'{name}' is required.")),
        }
    };
    let credential_type = enum_field(
        "credentialType",
        &["Basic", "Windows", "Anonymous", "OAuth2", "Key", "SAS"],
    )?;
    enum_field("encryptedConnection", &["Encrypted", "NotEncrypted"])?;
    enum_field("encryptionAlgorithm", &["None", "RSA-OAEP"])?;
    enum_field(
        "privacyLevel",
        &["None", "Public", "Organizational", "Private"],
    )?;
    // The swagger's own example sends "False" as a string, so strings are accepted too.
    for flag in ["useCallerAADIdentity", "useEndUserOAuth2Credentials"] {
        match get(&details, flag) {
            None | Some(Value::Bool(_)) => {}
            Some(Value::String(s))
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {}
            Some(_) => return Err(format!("'{flag}' must be a boolean.")),
        }
    }
    let Some(Value::String(credentials)) = get(&details, "credentials") else {
        return Err("'credentials' is required and must be a string holding JSON.".into());
    };
    let parsed: Value = serde_json::from_str(&credentials)
        .map_err(|_| "'credentials' must be a string holding JSON.".to_owned())?;
    let data = parsed.get("credentialData");
    let access_token = match credential_type.as_str() {
        "Anonymous" => None,
        "OAuth2" => {
            let token = data
                .and_then(Value::as_array)
                .and_then(|items| {
                    items.iter().find(|i| {
                        i.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case("accessToken"))
                    })
                })
                .and_then(|i| i.get("value"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or("OAuth2 credentials need credentialData with a non-empty 'accessToken'.")?;
            Some(token.to_owned())
        }
        _ => {
            if !data.is_some_and(Value::is_array) {
                return Err("'credentials' must hold a 'credentialData' list.".into());
            }
            None
        }
    };
    Ok(Credential {
        credential_type,
        access_token,
    })
}

/// Caps user input echoed in error messages.
fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}
