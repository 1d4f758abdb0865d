//! The tenants the scenarios run on: Power BI datasets in the simulator, and the Secrets and
//! XeroDatasets in the cluster that point at them.

use jiff::Timestamp;
use serde_json::{Value, json};

pub const TENANT: &str = "7d0b1a8e-0c57-4d8e-9b3a-5f2c9d1e4a60";
pub const SP_CLIENT: &str = "3f1c2b4a-9d8e-4f7a-b6c5-1e2d3c4b5a69";
pub const SP_SECRET: &str = "sp-secret";
pub const XERO_CLIENT: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
pub const XERO_SECRET: &str = "xero-secret";
pub const XERO_TENANT: &str = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58";
pub const ORGANISATION: &str = "Demo Company (UK)";
pub const POWERBI_SECRET_NAME: &str = "powerbi-sp";
/// Datasets per Power BI workspace.
const WORKSPACE_SIZE: usize = 100;

/// The label the shards scenario splits the XeroDatasets on.
pub const SHARD_LABEL: &str = "xero-operator.dev/shard";

/// The working days the tenants' refreshes are scheduled on.
pub const WEEKDAYS: [&str; 5] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];

/// One Power BI dataset and the XeroDataset that keeps it refreshing.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub workspace_id: String,
    pub id: String,
    pub gateway_id: String,
    pub datasource_id: String,
    /// Index of the shared Xero Secret it uses.
    pub xero_secret: usize,
    /// Its schedule's times of day.
    pub times: Vec<String>,
    /// How long the refresh in its seeded history ran, in virtual seconds.
    pub last_refresh_seconds: u64,
}

impl Dataset {
    /// `a` for even-numbered datasets, `b` for odd ones.
    pub fn shard(&self) -> &'static str {
        let index: usize = self
            .name
            .trim_start_matches("xds-")
            .parse()
            .unwrap_or_default();
        if index.is_multiple_of(2) { "a" } else { "b" }
    }
}

/// What the datasets' schedules and the simulator's clock look like.
#[derive(Debug, Clone)]
pub struct TenantOptions {
    pub datasets: usize,
    pub xero_secrets: usize,
    pub days: Vec<&'static str>,
    pub times: Vec<&'static str>,
    /// The simulator's virtual start time.
    pub start_time: Timestamp,
    pub time_scale: f64,
    /// The last refresh before the start, `Completed`.
    pub last_refresh: Timestamp,
    /// Virtual seconds a refresh runs.
    pub refresh_duration_seconds: u64,
}

/// The tenant: datasets, and `xero_secrets` Xero Secrets shared among them round-robin.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub options: TenantOptions,
    pub datasets: Vec<Dataset>,
    /// `spec.schedule.startedBy` of the XeroDatasets.
    pub started_by: &'static str,
    /// More of the simulator's `config` (its scheduler, say), merged over the defaults.
    pub sim_config: Value,
}

impl Tenant {
    pub fn new(options: TenantOptions) -> Tenant {
        let workspaces: Vec<String> = (0..options.datasets.div_ceil(WORKSPACE_SIZE))
            .map(|_| uuid())
            .collect();
        let datasets = (0..options.datasets)
            .map(|i| Dataset {
                name: format!("xds-{i:05}"),
                workspace_id: workspaces[i / WORKSPACE_SIZE].clone(),
                id: uuid(),
                gateway_id: uuid(),
                datasource_id: uuid(),
                xero_secret: i % options.xero_secrets.max(1),
                times: options.times.iter().map(|t| (*t).to_owned()).collect(),
                last_refresh_seconds: options.refresh_duration_seconds,
            })
            .collect();
        Tenant {
            options,
            datasets,
            started_by: "PowerBI",
            sim_config: json!({}),
        }
    }

    pub fn xero_secret_name(index: usize) -> String {
        format!("xero-app-{index}")
    }

    pub fn refresh_token(index: usize) -> String {
        format!("initial-refresh-token-{index}")
    }

    /// The simulator's seed (JSON, which the YAML seed parser reads).
    pub fn seed(&self) -> String {
        let o = &self.options;
        let scale = o.time_scale.max(1.0);
        let mut workspaces: Vec<Value> = Vec::new();
        for dataset in &self.datasets {
            if workspaces
                .last()
                .is_none_or(|w| w["id"] != dataset.workspace_id.as_str())
            {
                workspaces.push(json!({
                    "id": dataset.workspace_id,
                    "name": format!("Finance {}", workspaces.len()),
                    "capacity": "Shared",
                    "datasets": [],
                }));
            }
            let entry = json!({
                "id": dataset.id,
                "name": dataset.name,
                "configuredBy": "xero-operator",
                "datasources": [{
                    "datasourceType": "Extension",
                    "connectionDetails": {"kind": "Xero", "path": "Xero"},
                    "gatewayId": dataset.gateway_id,
                    "datasourceId": dataset.datasource_id,
                    "xeroTenantId": XERO_TENANT,
                }],
                "schedule": {
                    "enabled": true,
                    "days": o.days,
                    "times": dataset.times,
                    "localTimeZoneId": "UTC",
                    "notifyOption": "NoNotification",
                },
                "refreshHistory": [{
                    "refreshType": "Scheduled",
                    "startTime": o.last_refresh.to_string(),
                    "endTime": (o.last_refresh
                        + std::time::Duration::from_secs(dataset.last_refresh_seconds))
                    .to_string(),
                    "status": "Completed",
                }],
            });
            if let Some(list) = workspaces
                .last_mut()
                .and_then(|w| w["datasets"].as_array_mut())
            {
                list.push(entry);
            }
        }
        let refresh_tokens: Vec<Value> = (0..o.xero_secrets)
            .map(|i| json!({"token": Tenant::refresh_token(i)}))
            .collect();
        // Token lifetimes are the services' own: the operator's token caches run on its clock,
        // as fast as the simulator's.
        let mut config = json!({
            "startTime": o.start_time.to_string(),
            "timeScale": scale,
            "refreshDurationSeconds": o.refresh_duration_seconds,
            "historyRetention": 60,
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), self.sim_config.as_object()) {
            config.extend(extra.clone());
        }
        json!({
            "config": config,
            "servicePrincipals": [{
                "tenantId": TENANT, "clientId": SP_CLIENT, "clientSecret": SP_SECRET,
                "displayName": "xero-operator",
            }],
            "workspaces": workspaces,
            "xero": {
                "apps": [{"clientId": XERO_CLIENT, "clientSecret": XERO_SECRET,
                          "redirectUris": ["http://localhost:8912/callback"]}],
                "connections": [{"tenantId": XERO_TENANT, "tenantName": ORGANISATION,
                                 "tenantType": "ORGANISATION"}],
                "refreshTokens": refresh_tokens,
            },
        })
        .to_string()
    }

    /// The XeroDataset manifest of `dataset`.
    pub fn manifest(&self, dataset: &Dataset) -> Value {
        json!({
            "apiVersion": "xero-operator.dev/v1alpha1",
            "kind": "XeroDataset",
            "metadata": {
                "name": dataset.name,
                // Alternate objects carry shard a or b (the shards scenario splits on it).
                "labels": {SHARD_LABEL: dataset.shard()},
            },
            "spec": {
                "workspaceId": dataset.workspace_id,
                "dataset": {"id": dataset.id},
                "xero": {
                    "organisation": ORGANISATION,
                    "credentialsSecretRef": {"name": Tenant::xero_secret_name(dataset.xero_secret)},
                },
                "powerBI": {"credentialsSecretRef": {"name": POWERBI_SECRET_NAME}},
                "schedule": {
                    "enabled": true,
                    "days": self.options.days,
                    "times": dataset.times,
                    "timeZone": "UTC",
                    "startedBy": self.started_by,
                },
            },
        })
    }

    /// The Secrets: `(name, [(key, value)])`.
    pub fn secrets(&self) -> Vec<(String, Vec<(&'static str, String)>)> {
        let mut secrets = vec![(
            POWERBI_SECRET_NAME.to_owned(),
            vec![
                ("tenantId", TENANT.to_owned()),
                ("clientId", SP_CLIENT.to_owned()),
                ("clientSecret", SP_SECRET.to_owned()),
            ],
        )];
        for i in 0..self.options.xero_secrets {
            secrets.push((
                Tenant::xero_secret_name(i),
                vec![
                    ("clientId", XERO_CLIENT.to_owned()),
                    ("clientSecret", XERO_SECRET.to_owned()),
                    ("refreshToken", Tenant::refresh_token(i)),
                ],
            ));
        }
        secrets
    }
}

/// `datasets` healthy datasets sharing `xero_secrets` Xero Secrets, refreshed on weekdays at
/// 06:00 and 12:30, on a real-time clock that starts on Monday at 08:00. That is between the
/// slots and outside their credential windows, the common case of an operator (re)start: every
/// dataset is read and found healthy.
pub fn healthy_tenant(datasets: usize, xero_secrets: usize) -> Tenant {
    Tenant::new(TenantOptions {
        datasets,
        xero_secrets,
        days: WEEKDAYS.to_vec(),
        times: vec!["06:00", "12:30"],
        start_time: monday("08:00"),
        time_scale: 1.0,
        last_refresh: monday("06:00"),
        refresh_duration_seconds: 2,
    })
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Monday 2025-01-06 at `hh:mm` UTC.
pub fn monday(hh_mm: &str) -> Timestamp {
    format!("2025-01-06T{hh_mm}:00Z")
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(datasets: usize) -> TenantOptions {
        TenantOptions {
            datasets,
            xero_secrets: 3,
            days: vec!["Monday"],
            times: vec!["06:00"],
            start_time: monday("08:00"),
            time_scale: 1.0,
            last_refresh: monday("06:00"),
            refresh_duration_seconds: 2,
        }
    }

    #[test]
    fn the_seed_is_one_the_simulator_accepts() {
        let tenant = Tenant::new(options(250));
        let seed = powerbi_sim::Seed::from_yaml(&tenant.seed()).expect("seed");
        assert_eq!(seed.workspaces.len(), 3);
        let per_workspace: Vec<usize> = seed.workspaces.iter().map(|w| w.datasets.len()).collect();
        assert_eq!(per_workspace, [100, 100, 50]);
        assert_eq!(seed.xero.refresh_tokens.len(), 3);
    }

    #[test]
    fn secrets_are_shared_round_robin() {
        let tenant = Tenant::new(options(7));
        let used: Vec<usize> = tenant.datasets.iter().map(|d| d.xero_secret).collect();
        assert_eq!(used, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(tenant.secrets().len(), 4);
        let manifest = tenant.manifest(&tenant.datasets[4]);
        assert_eq!(
            manifest["spec"]["xero"]["credentialsSecretRef"]["name"],
            "xero-app-1"
        );
    }
}
