//! The seed: everything the simulated clouds hold when the simulator starts (or is re-seeded
//! through `POST /_sim/seed`), plus the knobs for behaviour the public documentation leaves open.
//!
//! The YAML/JSON field names are camelCase; `simulator/README.md` has a full example.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The whole initial state of the simulated tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Seed {
    /// Behaviour switches and lifetimes.
    pub config: SimConfig,
    /// Microsoft Entra ID applications that may obtain Power BI tokens.
    pub service_principals: Vec<ServicePrincipalSeed>,
    /// Power BI workspaces (groups) with their datasets.
    pub workspaces: Vec<WorkspaceSeed>,
    /// Xero apps, connections and already-issued tokens.
    pub xero: XeroSeed,
}

impl Seed {
    /// Parses a seed from YAML (JSON is accepted too, being a subset of YAML).
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        serde_yaml::from_str(text).map_err(|e| Error::Seed(e.to_string()))
    }

    /// Reads and parses a seed file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSeed {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }
}

/// Lifetimes, limits and the behaviours the specs mark UNCONFIRMED, each switchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SimConfig {
    /// Virtual time at start-up; the real current time when absent. Fixing it keeps tests away
    /// from midnight, where the daily refresh quota resets.
    pub start_time: Option<Timestamp>,
    /// How many times faster than real time the virtual clock runs (1). Benchmarks run a day in
    /// minutes with the operator's `--time-scale` set to the same factor.
    pub time_scale: f64,
    /// `expires_in` of Entra access tokens (the service says 3599).
    pub entra_token_lifetime_seconds: u64,
    /// Xero access token lifetime (documented: 1800).
    pub xero_access_token_lifetime_seconds: u64,
    /// How long a rotated Xero refresh token keeps working (documented: 30 minutes).
    pub xero_refresh_token_grace_seconds: u64,
    /// A Xero refresh token nobody uses expires after this long (documented: 60 days).
    pub xero_refresh_token_unused_lifetime_seconds: u64,
    /// What a refresh token presented again inside its grace period returns (UNCONFIRMED).
    pub xero_grace_reuse: GraceReuse,
    /// Lifetime of an authorization code. Xero's is undocumented (a third party says about
    /// 30 s); 5 minutes here so a slow test does not trip over it.
    pub xero_authorization_code_lifetime_seconds: u64,
    /// How long a refresh runs (in virtual seconds) unless the dataset or the request says
    /// otherwise. Short so that tests that do not move the clock still see refreshes end.
    pub refresh_duration_seconds: u64,
    /// Status of a refresh request while another runs: 400 per the 2025 docs, 409 per 2021.
    pub concurrent_refresh_status: u16,
    /// Status of a refresh request past the daily quota (UNCONFIRMED: 400 or 429).
    pub daily_limit_status: u16,
    /// Refreshes per dataset per day on shared capacity, scheduled ones included.
    pub shared_daily_refresh_limit: u32,
    /// Refreshes per dataset per day on Premium; unlimited when absent.
    pub premium_daily_refresh_limit: Option<u32>,
    /// How the daily quota is counted: the docs say a day (reset at 12:01 a.m.), the live error
    /// message says "last 24 hours".
    pub daily_limit_window: DailyLimitWindow,
    /// Consecutive failed refreshes after which the schedule is switched off (documented: 4).
    pub failures_before_schedule_disabled: u32,
    /// Whether failed API refreshes count toward that threshold (UNCONFIRMED; by default only
    /// scheduled refreshes do).
    pub count_api_refresh_failures: bool,
    /// Schedule slots per day on shared capacity (documented: 8).
    pub shared_schedule_slots: usize,
    /// Schedule slots per day on Premium (documented: 48).
    pub premium_schedule_slots: usize,
    /// The time the service picks when an enabled schedule has no times (UNCONFIRMED which).
    pub default_schedule_time: String,
    /// Whether a disabling schedule PATCH is rejected when any other field is present (`true`),
    /// or only when another field differs from the stored value (`false`).
    pub strict_disable_request: bool,
    /// Cloud credentials belong to the owner, so a Take Over by someone else drops them
    /// (plausible, UNCONFIRMED).
    pub take_over_clears_credentials: bool,
    /// Whether Update Datasource tests the Xero token and rejects a bad one (UNCONFIRMED).
    pub validate_credentials_on_update: bool,
    /// Refresh history entries kept per dataset (documented: up to 60).
    pub history_retention: usize,
    /// Per-principal request limit for the Power BI and Xero APIs; off when absent.
    pub rate_limit: Option<RateLimit>,
    /// Host used in `@odata.context` values, as the live service sends them.
    pub odata_context_host: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            start_time: None,
            time_scale: 1.0,
            entra_token_lifetime_seconds: 3599,
            xero_access_token_lifetime_seconds: 1800,
            xero_refresh_token_grace_seconds: 1800,
            xero_refresh_token_unused_lifetime_seconds: 60 * 24 * 3600,
            xero_grace_reuse: GraceReuse::NewChild,
            xero_authorization_code_lifetime_seconds: 300,
            refresh_duration_seconds: 2,
            concurrent_refresh_status: 400,
            daily_limit_status: 400,
            shared_daily_refresh_limit: 8,
            premium_daily_refresh_limit: None,
            daily_limit_window: DailyLimitWindow::UtcDay,
            failures_before_schedule_disabled: 4,
            count_api_refresh_failures: false,
            shared_schedule_slots: 8,
            premium_schedule_slots: 48,
            default_schedule_time: "00:00".to_owned(),
            strict_disable_request: true,
            take_over_clears_credentials: true,
            validate_credentials_on_update: false,
            history_retention: 60,
            rate_limit: None,
            odata_context_host: "https://wabi-north-europe-redirect.analysis.windows.net"
                .to_owned(),
        }
    }
}

/// Behaviour of a Xero refresh token presented again inside its grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GraceReuse {
    /// A new child refresh token is minted each time; earlier children stay valid.
    NewChild,
    /// The child issued at the first exchange is returned again.
    SameChild,
}

/// The window the daily refresh quota is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DailyLimitWindow {
    /// The calendar day in UTC of the virtual clock.
    UtcDay,
    /// The 24 hours before the request.
    Rolling24Hours,
}

/// A request limit per principal, counted in fixed windows of virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub window_seconds: u64,
}

/// An Entra ID application registration usable as a Power BI service principal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalSeed {
    /// Directory (tenant) id, or a domain name; matched case-insensitively.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret; absent when the app only uses federated credentials.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// What `configuredBy` shows when this principal owns a dataset; the client id when absent
    /// (what Power BI shows for a service principal owner is UNCONFIRMED).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Workload identity federation trusts. When empty, any assertion whose audience is
    /// `api://AzureADTokenExchange` and whose issuer is an http(s) URL is accepted.
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredentialSeed>,
}

/// A federated identity credential on an app registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredentialSeed {
    /// Expected `iss` of the assertion (the cluster's OIDC issuer).
    pub issuer: String,
    /// Expected `sub`; any subject when absent.
    #[serde(default)]
    pub subject: Option<String>,
    /// Expected `aud`.
    #[serde(default = "default_federated_audience")]
    pub audience: String,
}

fn default_federated_audience() -> String {
    "api://AzureADTokenExchange".to_owned()
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

/// Xero's side: apps, the organisations connected to them, and tokens already issued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct XeroSeed {
    /// OAuth2 apps registered at developer.xero.com.
    pub apps: Vec<XeroAppSeed>,
    /// Organisations connected to the apps; also the organisations a user consents to.
    pub connections: Vec<XeroConnectionSeed>,
    /// Refresh tokens already issued (e.g. the one an operator's Secret starts with).
    pub refresh_tokens: Vec<XeroTokenSeed>,
    /// Access tokens already issued (e.g. the one a datasource's credentials hold).
    pub access_tokens: Vec<XeroAccessTokenSeed>,
}

/// A Xero OAuth2 app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XeroAppSeed {
    /// 32 uppercase hex characters in real life; anything here.
    pub client_id: String,
    /// Absent for a PKCE (public) app, which authenticates with its client id alone.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Redirect URIs accepted by the authorize and token endpoints (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Tenants a user consents to at `/connect/authorize`; all seeded connections when absent.
    #[serde(default)]
    pub consent_tenant_ids: Option<Vec<String>>,
}

/// A Xero connection (an organisation connected to an app).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XeroConnectionSeed {
    /// Connection id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The app it belongs to; every app when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Organisation id.
    pub tenant_id: String,
    /// Organisation display name.
    pub tenant_name: String,
    /// `ORGANISATION`, `PRACTICE`, ...
    #[serde(default = "default_tenant_type")]
    pub tenant_type: String,
    /// When first connected; start time when absent.
    #[serde(default)]
    pub created_date_utc: Option<Timestamp>,
    /// When last (re)connected; the creation time when absent.
    #[serde(default)]
    pub updated_date_utc: Option<Timestamp>,
}

fn default_tenant_type() -> String {
    "ORGANISATION".to_owned()
}

/// A Xero refresh token issued before start-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XeroTokenSeed {
    /// The token value.
    pub token: String,
    /// The app it was issued to; the first app when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Tenants it grants; all the app's connections when absent.
    #[serde(default)]
    pub tenant_ids: Option<Vec<String>>,
    /// Granted scope; a typical read-only set with `offline_access` when absent.
    #[serde(default)]
    pub scope: Option<String>,
}

/// A Xero access token issued before start-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XeroAccessTokenSeed {
    /// The token value.
    pub token: String,
    /// The app it was issued to; the first app when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Tenants it grants; all the app's connections when absent.
    #[serde(default)]
    pub tenant_ids: Option<Vec<String>>,
    /// Seconds of validity left at start-up (negative: already expired); the configured access
    /// token lifetime when absent.
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}
