//! Get Datasets, Get Dataset, Get Datasources and Take Over.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::http::SimResponse;
use crate::powerbi::access::{Caller, dataset, workspace};
use crate::powerbi::response::{Served, odata_context};
use crate::state::World;

fn dataset_json(world: &World, w: usize, d: usize) -> Value {
    let ws = &world.powerbi.workspaces[w];
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

/// `GET /groups/{group}/datasets`.
pub fn get_datasets(world: &mut World, caller: &Caller, group: &str) -> Served {
    let w = workspace(world, caller, group)?;
    let value: Vec<Value> = (0..world.powerbi.workspaces[w].datasets.len())
        .map(|d| dataset_json(world, w, d))
        .collect();
    let group = world.powerbi.workspaces[w].id.clone();
    Ok(SimResponse::json(
        StatusCode::OK,
        &json!({"@odata.context": odata_context(world, &group, "datasets"), "value": value}),
    ))
}

/// `GET /groups/{group}/datasets/{dataset}`.
pub fn get_dataset(world: &mut World, caller: &Caller, group: &str, id: &str) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let mut body = json!({"@odata.context": odata_context(world, &world.powerbi.workspaces[w].id, "datasets/$entity")});
    if let (Some(target), Value::Object(fields)) = (body.as_object_mut(), dataset_json(world, w, d))
    {
        target.extend(fields);
    }
    Ok(SimResponse::json(StatusCode::OK, &body))
}

/// `GET /groups/{group}/datasets/{dataset}/datasources`.
pub fn get_datasources(world: &mut World, caller: &Caller, group: &str, id: &str) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let value: Vec<Value> = world.powerbi.workspaces[w].datasets[d]
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
    let context = odata_context(world, &world.powerbi.workspaces[w].id, "datasources");
    Ok(SimResponse::json(
        StatusCode::OK,
        &json!({"@odata.context": context, "value": value}),
    ))
}

/// `POST /groups/{group}/datasets/{dataset}/Default.TakeOver`: the caller becomes the owner.
pub fn take_over(world: &mut World, caller: &Caller, group: &str, id: &str) -> Served {
    let (w, d) = dataset(world, caller, group, id)?;
    let clear = world.config.take_over_clears_credentials;
    let rebind = world.config.take_over_rebinds_datasources;
    let dataset = &mut world.powerbi.workspaces[w].datasets[d];
    if dataset.configured_by != caller.owner_name {
        dataset.configured_by = caller.owner_name.clone();
        for source in &mut dataset.datasources {
            if clear {
                source.credential = None;
            }
            // Cloud connections belong to their owner: the new owner's binding has new ids.
            if rebind {
                source.datasource_id = uuid::Uuid::new_v4().to_string();
            }
        }
    }
    Ok(SimResponse::empty(StatusCode::OK))
}
