//! Get Gateway, and Update Datasource: storing credentials on a gateway data source, encrypted
//! with the gateway's public key when it is an on-premises one.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::http::{SimRequest, SimResponse};
use crate::powerbi::access::{Caller, require_owner};
use crate::powerbi::response::{Served, clip, error};
use crate::state::World;
use crate::state::powerbi::{Credential, Gateway};
use crate::state::xero::TokenProblem;

/// `GET /gateways/{gateway}`: an on-premises gateway with its public key. Any other id (a
/// personal cloud gateway, which Get Gateways does not list either) is not found (the status
/// for a cloud source's gateway is UNCONFIRMED).
pub fn get_gateway(world: &mut World, gateway: &str) -> Served {
    let found = world
        .powerbi
        .gateways
        .iter()
        .find(|g| g.id.eq_ignore_ascii_case(gateway))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "PowerBIEntityNotFound",
                "The gateway was not found.",
            )
        })?;
    let mut body = found.to_json();
    body["@odata.context"] = json!(format!(
        "{}/v1.0/myorg/$metadata#gateways/$entity",
        world.config.odata_context_host
    ));
    Ok(SimResponse::json(StatusCode::OK, &body))
}

/// `PATCH /gateways/{gateway}/datasources/{datasource}`: sets the credentials of every
/// data source with these ids: on a cloud source by its owner only, on an on-premises gateway
/// by an admin of it, encrypted with its public key.
pub fn update_datasource(
    world: &mut World,
    req: &SimRequest,
    caller: &Caller,
    gateway: &str,
    datasource: &str,
) -> Served {
    let matches = bound_datasources(world, gateway, datasource);
    let Some(&(w, d, s)) = matches.first() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "DMTS_DatasourceNotFoundError",
            "The data source was not found on the gateway.",
        ));
    };
    let on_premises = world
        .powerbi
        .gateways
        .iter()
        .find(|g| g.id.eq_ignore_ascii_case(gateway))
        .cloned();
    may_set_credentials(world, caller, &matches, on_premises.as_ref())?;
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
    let body = match &on_premises {
        Some(g) => decrypted(body, g)?,
        None => body,
    };
    let credential = parse_credential_details(&body).map_err(|m| bad(&m))?;
    if world.config.validate_credentials_on_update {
        let tenant = world.powerbi.workspaces[w].datasets[d].datasources[s]
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
        world.powerbi.workspaces[w].datasets[d].datasources[s].credential =
            Some(credential.clone());
    }
    Ok(SimResponse::empty(StatusCode::OK))
}

/// The (workspace, dataset, data source) indexes of every data source bound to these ids.
fn bound_datasources(world: &World, gateway: &str, datasource: &str) -> Vec<(usize, usize, usize)> {
    world
        .powerbi
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
        .collect()
}

/// On an on-premises gateway only its admins may set credentials (the live error for anyone
/// else is UNCONFIRMED); on a cloud source only the data source owner.
fn may_set_credentials(
    world: &World,
    caller: &Caller,
    matches: &[(usize, usize, usize)],
    on_premises: Option<&Gateway>,
) -> Result<(), SimResponse> {
    match on_premises {
        Some(g) if !g.is_admin(&caller.client_id) => Err(error(
            StatusCode::UNAUTHORIZED,
            "PowerBINotAuthorizedException",
            "The caller is not an admin of the gateway data source.",
        )),
        Some(_) => Ok(()),
        None => {
            let owned = matches.iter().any(|&(w, d, _)| {
                world.powerbi.workspaces[w].datasets[d].configured_by == caller.owner_name
            });
            match matches.first() {
                Some(&(w, d, _)) if !owned => {
                    require_owner(world, caller, (w, d), "update the data source credentials")
                }
                _ => Ok(()),
            }
        }
    }
}

/// The request with the credentials an on-premises gateway decrypted from it. What the gateway
/// cannot read (plain text, not base64, a wrong key, a tampered byte) is refused as the live
/// service refuses a badly encoded credential: 400 `DM_GWPipeline_UnknownError`.
fn decrypted(
    mut body: Map<String, Value>,
    gateway: &Gateway,
) -> Result<Map<String, Value>, SimResponse> {
    let refuse = |why: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "DM_GWPipeline_UnknownError",
            &format!("The gateway could not read the credentials: {why}."),
        )
    };
    let details = body
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("credentialDetails"))
        .and_then(|(_, v)| v.as_object_mut())
        .ok_or_else(|| refuse("'credentialDetails' is required"))?;
    let field = |details: &Map<String, Value>, name: &str| {
        details
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
    };
    if !field(details, "encryptionAlgorithm").is_some_and(|a| a.eq_ignore_ascii_case("RSA-OAEP")) {
        return Err(refuse(
            "credentials for an on-premises gateway must be encrypted (RSA-OAEP) with its public key",
        ));
    }
    let sealed =
        field(details, "credentials").ok_or_else(|| refuse("'credentials' is required"))?;
    let plain = gateway.decrypt(&sealed).map_err(refuse)?;
    details.retain(|k, _| {
        !k.eq_ignore_ascii_case("credentials") && !k.eq_ignore_ascii_case("encryptionAlgorithm")
    });
    details.insert("credentials".into(), Value::String(plain));
    details.insert("encryptionAlgorithm".into(), Value::String("None".into()));
    Ok(body)
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
