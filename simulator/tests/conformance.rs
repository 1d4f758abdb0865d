//! Conformance: every Power BI operation the simulator serves answers with the status and a
//! body that validates against that operation's response schema in Microsoft's swagger, and
//! `/connections` against Xero's identity description (both extracted to tests/schemas by
//! scripts/extract-schemas.py).

mod common;

use common::schema::Schemas;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn assert_conforms(schemas: &Schemas, operation: &str, reply: &Reply) {
    let (status, schema) = schemas.success(operation);
    assert_eq!(reply.status.as_u16(), status, "{operation}: {}", reply.text);
    match schema {
        Some(schema) => {
            let errors = schemas.validate(&schema, &reply.json());
            assert!(
                errors.is_empty(),
                "{operation} does not conform:\n{}\n{}",
                errors.join("\n"),
                reply.text
            );
        }
        None => assert!(
            reply.text.is_empty(),
            "{operation} should have no body: {}",
            reply.text
        ),
    }
    // Every live Power BI response carries a RequestId header.
    assert!(
        reply.header("requestid").is_some(),
        "{operation}: no RequestId header"
    );
}

#[tokio::test]
async fn power_bi_operations_conform_to_the_swagger() {
    let schemas = Schemas::powerbi();
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let (xero_access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;

    let reply = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets"),
            &token,
            None,
        )
        .await;
    assert_conforms(&schemas, "Datasets_GetDatasetsInGroup", &reply);
    let body = reply.json();
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#datasets")
    );
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    // camelCase, as the live service sends it (the swagger spells IsRefreshable).
    assert_eq!(body["value"][0]["isRefreshable"], true);
    assert!(body["value"][0].get("IsRefreshable").is_none());

    let reply = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{DATASET}"),
            &token,
            None,
        )
        .await;
    assert_conforms(&schemas, "Datasets_GetDatasetInGroup", &reply);
    assert_eq!(reply.json()["name"], "Xero");
    assert_eq!(reply.json()["configuredBy"], "xero-operator");

    let reply = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{DATASET}/datasources"),
            &token,
            None,
        )
        .await;
    assert_conforms(&schemas, "Datasets_GetDatasourcesInGroup", &reply);
    let source = &reply.json()["value"][0];
    assert_eq!(source["gatewayId"], GATEWAY);
    assert_eq!(source["datasourceId"], DATASOURCE);
    assert_eq!(source["connectionDetails"]["kind"], "Xero");

    let body = credentials_body(&xero_access);
    assert!(
        schemas
            .validate(&schemas.request("Gateways_UpdateDatasource"), &body)
            .is_empty()
    );
    let reply = h
        .pbi(
            Method::PATCH,
            &format!("/gateways/{GATEWAY}/datasources/{DATASOURCE}"),
            &token,
            Some(&body),
        )
        .await;
    assert_conforms(&schemas, "Gateways_UpdateDatasource", &reply);

    let reply = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{DATASET}/refreshSchedule"),
            &token,
            None,
        )
        .await;
    assert_conforms(&schemas, "Datasets_GetRefreshScheduleInGroup", &reply);
    assert_eq!(reply.json()["notifyOption"], "NoNotification");

    let patch = json!({"value": {"days": ["Monday", "Friday"], "times": ["07:00", "11:30"], "localTimeZoneId": "UTC"}});
    assert!(
        schemas
            .validate(
                &schemas.request("Datasets_UpdateRefreshScheduleInGroup"),
                &patch
            )
            .is_empty()
    );
    let reply = h.patch_schedule(&token, DATASET, &patch).await;
    assert_conforms(&schemas, "Datasets_UpdateRefreshScheduleInGroup", &reply);

    let reply = h
        .pbi(
            Method::POST,
            &format!("/groups/{GROUP}/datasets/{DATASET}/refreshes"),
            &token,
            Some(&json!({"notifyOption": "NoNotification"})),
        )
        .await;
    assert_conforms(&schemas, "Datasets_RefreshDatasetInGroup", &reply);
    let request_id = reply.header("requestid").unwrap();

    let reply = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{DATASET}/refreshes"),
            &token,
            None,
        )
        .await;
    assert_conforms(&schemas, "Datasets_GetRefreshHistoryInGroup", &reply);
    let running = &reply.json()["value"][0];
    assert_eq!(running["requestId"], request_id.as_str());
    assert_eq!(running["status"], "Unknown");
    assert!(running.get("endTime").is_none());

    h.finish_refresh(&token, DATASET).await;
    let reply = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{DATASET}/refreshes?$top=2"),
            &token,
            None,
        )
        .await;
    assert_conforms(&schemas, "Datasets_GetRefreshHistoryInGroup", &reply);
    let entries = reply.json()["value"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["status"], "Completed");
    assert_eq!(
        entries[1]["status"], "Failed",
        "the seeded failure, older, comes second"
    );

    let reply = h
        .pbi(
            Method::POST,
            &format!("/groups/{GROUP}/datasets/{PERSONS_DATASET}/Default.TakeOver"),
            &token,
            None,
        )
        .await;
    assert_conforms(&schemas, "Datasets_TakeOverInGroup", &reply);
}

#[tokio::test]
async fn failed_refresh_entries_conform_too() {
    let schemas = Schemas::powerbi();
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    h.finish_refresh(&token, DATASET).await;
    let reply = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{DATASET}/refreshes"),
            &token,
            None,
        )
        .await;
    assert_conforms(&schemas, "Datasets_GetRefreshHistoryInGroup", &reply);
    let failed = &reply.json()["value"][0];
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["refreshAttempts"][0]["type"], "Data");
}

#[tokio::test]
async fn connections_conform_to_xeros_identity_description() {
    let schemas = Schemas::xero();
    let h = Harness::start().await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let reply = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await;
    let (status, schema) = schemas.success("getConnections");
    assert_eq!(reply.status.as_u16(), status);
    let body = reply.json();
    let errors = schemas.validate(&schema.unwrap(), &body);
    assert!(errors.is_empty(), "{}\n{body}", errors.join("\n"));
    let list = body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let uk = list.iter().find(|c| c["tenantId"] == XERO_UK).unwrap();
    assert_eq!(uk["tenantName"], "Demo Company (UK)");
    assert_eq!(uk["tenantType"], "ORGANISATION");
    assert_eq!(uk["id"], "7cb59f93-2964-421d-bb5e-a0f7a4572a44");
    // Dates without a time zone and with 7 fractional digits, as Xero sends them.
    assert_eq!(uk["createdDateUtc"], "2019-12-07T18:46:19.5165400");
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );

    let token_schema = json!({"$ref": "#/components/schemas/AccessToken"});
    let exchange = h
        .xero_refresh(&h.xero_tokens(INITIAL_REFRESH_TOKEN).await.1)
        .await
        .json();
    let mut declared_only = exchange.clone();
    // `scope` is sent by Xero but missing from the description's AccessToken schema.
    declared_only.as_object_mut().unwrap().remove("scope");
    let errors = schemas.validate(&token_schema, &declared_only);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_checker_rejects_what_breaks_the_schemas() {
    let schemas = Schemas::powerbi();
    let refreshes = json!({"$ref": "#/definitions/Refreshes"});
    let good = json!({"@odata.context": "x", "value": [{"requestId": "a", "refreshType": "ViaApi", "startTime": "2025-01-06T08:00:00.000Z", "status": "Unknown"}]});
    assert!(schemas.validate(&refreshes, &good).is_empty());
    let bad_cases: Vec<Value> = vec![
        json!({"value": {}}),
        json!({"value": [{"refreshType": "Sometimes"}]}),
        json!({"value": [{"startTime": "yesterday"}]}),
        json!({"value": [{"status": 3}]}),
        json!({"value": [{"requestID2": "a"}]}),
        json!({"value": [{"refreshAttempts": [{"attemptId": "one"}]}]}),
    ];
    for bad in bad_cases {
        assert!(
            !schemas.validate(&refreshes, &bad).is_empty(),
            "{bad} should not validate"
        );
    }
    let dataset = json!({"$ref": "#/definitions/Dataset"});
    assert!(
        !schemas
            .validate(&dataset, &json!({"name": "no id"}))
            .is_empty()
    );
    assert!(
        schemas
            .validate(&dataset, &json!({"id": "x", "isRefreshable": true}))
            .is_empty()
    );
    let xero = Schemas::xero();
    let connection = json!({"$ref": "#/components/schemas/Connection"});
    assert!(
        !xero
            .validate(&connection, &json!({"tenantId": "not-a-uuid"}))
            .is_empty()
    );
}
