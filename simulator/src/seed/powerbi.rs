//! Power BI workspaces, datasets, data sources, schedules and refresh history.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// An on-premises data gateway (standard mode): data sources whose `gatewayId` names it take
/// credentials encrypted with its public key, from its admins only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySeed {
    /// The gateway id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// 1024 or 2048: which of the simulator's two key pairs it holds (Microsoft's SDKs encrypt
    /// differently for 1024-bit keys).
    #[serde(default = "default_key_bits")]
    pub key_bits: u32,
    /// Client ids of the principals that administer its data sources; every principal when
    /// absent.
    #[serde(default)]
    pub admins: Option<Vec<String>>,
}

fn default_key_bits() -> u32 {
    2048
}

/// Shared (Pro) or Premium capacity; decides quotas and schedule slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Capacity {
    /// Shared capacity: 8 refreshes a day, 8 schedule slots.
    #[default]
    Shared,
    /// Premium, PPU or Embedded capacity.
    Premium,
}

/// A Power BI workspace (group).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceSeed {
    /// Group id (a GUID).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Capacity the workspace is on.
    #[serde(default)]
    pub capacity: Capacity,
    /// Client ids of the service principals that are Member or Admin; every principal when
    /// absent.
    #[serde(default)]
    pub members: Option<Vec<String>>,
    /// Semantic models in the workspace.
    #[serde(default)]
    pub datasets: Vec<DatasetSeed>,
}

/// A dataset (semantic model).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetSeed {
    /// Dataset id (a GUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The owner. When absent, the first service principal owns it.
    #[serde(default)]
    pub configured_by: Option<String>,
    /// `isRefreshable` (false for DirectQuery models, which also refuse refreshes).
    #[serde(default = "yes")]
    pub refreshable: bool,
    /// Refresh run time for this dataset; the config's when absent.
    #[serde(default)]
    pub refresh_duration_seconds: Option<u64>,
    /// The dataset's data sources; every one is treated as a Xero source.
    #[serde(default)]
    pub datasources: Vec<DatasourceSeed>,
    /// The refresh schedule as the service holds it.
    #[serde(default)]
    pub schedule: ScheduleSeed,
    /// Refresh history, any order; entries with status `Unknown` are still running.
    #[serde(default)]
    pub refresh_history: Vec<RefreshSeed>,
}

fn yes() -> bool {
    true
}

/// A data source bound to a (personal cloud) gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasourceSeed {
    /// `datasourceType`; which value Power BI reports for Xero is UNCONFIRMED.
    #[serde(default = "default_datasource_type")]
    pub datasource_type: String,
    /// `connectionDetails`; `{"kind":"Xero","path":"Xero"}` when absent.
    #[serde(default)]
    pub connection_details: Option<serde_json::Map<String, serde_json::Value>>,
    /// Gateway id (a GUID).
    pub gateway_id: String,
    /// Datasource id (a GUID).
    pub datasource_id: String,
    /// The Xero organisation the source reads; a token for any connected tenant is accepted
    /// when absent.
    #[serde(default)]
    pub xero_tenant_id: Option<String>,
    /// Credentials already stored on the source.
    #[serde(default)]
    pub credentials: Option<CredentialSeed>,
}

fn default_datasource_type() -> String {
    "Extension".to_owned()
}

/// Stored data source credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialSeed {
    /// `Basic`, `OAuth2`, ...
    #[serde(default = "default_credential_type")]
    pub credential_type: String,
    /// The Xero access token held by an OAuth2 credential.
    #[serde(default)]
    pub access_token: Option<String>,
}

fn default_credential_type() -> String {
    "OAuth2".to_owned()
}

/// A refresh schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ScheduleSeed {
    /// Day names, `Monday` .. `Sunday`.
    pub days: Vec<String>,
    /// `hh:mm` slots on :00 or :30.
    pub times: Vec<String>,
    /// Whether scheduled refresh is on.
    pub enabled: bool,
    /// Windows time zone id.
    pub local_time_zone_id: String,
    /// `NoNotification` or `MailOnFailure`.
    pub notify_option: String,
}

impl Default for ScheduleSeed {
    fn default() -> Self {
        Self {
            days: Vec::new(),
            times: Vec::new(),
            enabled: false,
            local_time_zone_id: "UTC".to_owned(),
            notify_option: "NoNotification".to_owned(),
        }
    }
}

/// A refresh history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshSeed {
    /// A GUID; generated when absent.
    #[serde(default)]
    pub request_id: Option<String>,
    /// `Scheduled`, `ViaApi`, `OnDemand`, ...
    #[serde(default = "default_refresh_type")]
    pub refresh_type: String,
    /// Start time.
    pub start_time: Timestamp,
    /// End time; for a running (`Unknown`) entry, when it will end.
    #[serde(default)]
    pub end_time: Option<Timestamp>,
    /// `Completed`, `Failed`, `Unknown` (running), `Disabled`, `Cancelled`.
    pub status: String,
    /// The error JSON (a string) of a failed entry.
    #[serde(default)]
    pub service_exception_json: Option<String>,
}

fn default_refresh_type() -> String {
    "Scheduled".to_owned()
}
