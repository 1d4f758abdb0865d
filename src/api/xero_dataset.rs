//! The `XeroDataset` custom resource (`xero-operator.dev/v1alpha1`): one Power BI dataset built on
//! Xero data, the refresh schedule it should have, and how to recover failed refreshes.
//!
//! The API server checks every spec at apply time: the OpenAPI schema (enums, lengths, item
//! counts, sets, defaults) and CEL rules (`x-kubernetes-validations`) built by the functions at
//! the end of this file, each with a message that names what is wrong.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::{Message, Rule};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::duration;

/// The most refresh times a day Power BI allows on shared capacity.
pub const SHARED_MAX_TIMES_PER_DAY: usize = 8;
/// The most refresh times a day Power BI allows on Premium capacity.
pub const PREMIUM_MAX_TIMES_PER_DAY: usize = 48;
/// The longest `spec.schedule.credentialLeadTime`: Xero access tokens last 30 minutes, and the
/// token pushed before a slot must still work when Power BI starts the refresh, which can be up
/// to 15 minutes after the slot.
pub const MAX_CREDENTIAL_LEAD_TIME: &str = "15m";

/// A Power BI dataset (semantic model) built on Xero data, kept refreshing by xero-operator: the
/// operator keeps its refresh schedule as specified, applies fresh Xero credentials before each
/// scheduled refresh, and retries failed refreshes within the recovery limits.
// Clippy reads the repeated `type_ = "string"` of the printcolumn(...) entries as duplicated
// attributes; they are separate columns.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "xero-operator.dev",
    version = "v1alpha1",
    kind = "XeroDataset",
    namespaced,
    shortname = "xds",
    category = "xero",
    status = "XeroDatasetStatus",
    derive = "PartialEq",
    doc = "XeroDataset is a Power BI dataset built on Xero data that xero-operator keeps refreshing: it keeps the dataset's refresh schedule, applies fresh Xero credentials before each scheduled refresh, and retries failed refreshes.",
    printcolumn(
        name = "Dataset",
        type_ = "string",
        description = "The dataset's name as Power BI reports it (also when the spec names it by id).",
        json_path = ".status.datasetName"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Status of the Ready condition.",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        description = "Reason of the Ready condition.",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Last Refresh",
        type_ = "string",
        description = "Status of the latest refresh: Completed, Failed, Unknown (running), Cancelled or Disabled.",
        json_path = ".status.lastRefresh.status"
    ),
    printcolumn(
        name = "Last Success",
        type_ = "date",
        description = "When the latest successful refresh ended.",
        json_path = ".status.lastSuccessfulRefreshTime"
    ),
    printcolumn(
        name = "Next Refresh",
        type_ = "string",
        format = "date-time",
        description = "When the next scheduled refresh is due (RFC 3339). A string column: date columns print future times as <invalid>.",
        json_path = ".status.nextRefreshTime"
    ),
    printcolumn(
        name = "Started By",
        type_ = "string",
        description = "Who starts the scheduled refreshes: Operator or PowerBI (spec.schedule.startedBy).",
        json_path = ".spec.schedule.startedBy"
    ),
    printcolumn(
        name = "Suspended",
        type_ = "boolean",
        description = "Whether the operator is suspended for this dataset.",
        json_path = ".spec.suspend"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        description = "Message of the Ready condition.",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    selectable = ".spec.workspaceId",
    selectable = ".spec.suspend"
)]
#[x_kube(validation = times_fit_capacity_rule())]
#[serde(rename_all = "camelCase")]
pub struct XeroDatasetSpec {
    /// Id (uuid) of the Power BI workspace (group) that holds the dataset.
    #[x_kube(validation = uuid_rule())]
    #[schemars(length(max = 36))]
    pub workspace_id: String,

    /// The Power BI dataset (semantic model) to keep refreshing: exactly one of `id` or `name`.
    pub dataset: DatasetRef,

    /// The Xero organisation the dataset reports on, and the Xero app credentials.
    pub xero: XeroSpec,

    /// How the operator reaches Power BI. Defaults to the operator's own identity on the public
    /// cloud, without taking the dataset over.
    #[serde(rename = "powerBI", default)]
    pub power_bi: PowerBiSpec,

    /// The refresh schedule the dataset should have in Power BI. The operator sets it, re-enables
    /// it when Power BI switches it off after failures, and applies fresh Xero credentials
    /// shortly before each slot.
    pub schedule: ScheduleSpec,

    /// The capacity the workspace runs on, which bounds refreshes per day: `Shared` allows 8
    /// schedule times and 8 refreshes a day (scheduled and on-demand together), `Premium` 48
    /// schedule times. Default `Shared`.
    #[serde(default)]
    pub capacity: Capacity,

    /// How the operator retries failed refreshes. Default: at most 3 attempts a day, backing off
    /// from 5m to 2h.
    #[serde(default)]
    pub recovery: RecoverySpec,

    /// When true the operator leaves the dataset alone: no schedule changes, no credentials, no
    /// refreshes. It still reports status. Default false.
    #[serde(default)]
    pub suspend: bool,
}

/// Which Power BI dataset: exactly one of `id` or `name`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = dataset_not_both_rule(), validation = dataset_one_of_rule())]
#[serde(rename_all = "camelCase")]
pub struct DatasetRef {
    /// Id (uuid) of the dataset in the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = uuid_rule())]
    #[schemars(length(max = 36))]
    pub id: Option<String>,

    /// Name of the dataset in the workspace, as Power BI shows it (for example "Xero"). The
    /// operator resolves it to an id (status.datasetId); several datasets with this name are an
    /// error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name: Option<String>,

    /// Id (uuid) of the dataset's Xero datasource to apply credentials to. Needed only when the
    /// dataset has several Xero datasources; otherwise the operator finds the one it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = uuid_rule())]
    #[schemars(length(max = 36))]
    pub datasource_id: Option<String>,
}

/// How a [`DatasetRef`] names its dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetSelector<'a> {
    /// By dataset id.
    Id(&'a str),
    /// By dataset name, to be resolved to an id.
    Name(&'a str),
}

impl DatasetRef {
    /// How the dataset is named: by id when `id` is set, else by name. `None` only for a spec
    /// the API server would have refused (neither set).
    pub fn selector(&self) -> Option<DatasetSelector<'_>> {
        match (&self.id, &self.name) {
            (Some(id), _) => Some(DatasetSelector::Id(id)),
            (None, Some(name)) => Some(DatasetSelector::Name(name)),
            (None, None) => None,
        }
    }
}

/// The Xero side: which organisation, and the Secret with the Xero app's credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct XeroSpec {
    /// The Xero organisation (tenant) name exactly as Xero shows it, for example
    /// "Demo Company (UK)". It must match one of the Xero app's connections; the operator
    /// resolves it to a tenant id (status.xeroTenantId).
    #[schemars(length(min = 1, max = 256))]
    pub organisation: String,

    /// The Secret, in this namespace, with the Xero app's client id and secret and a refresh
    /// token (`xero-operator xero-login` writes it). The operator writes the rotated refresh
    /// token back to it.
    pub credentials_secret_ref: XeroCredentialsSecretRef,
}

/// A Secret in the XeroDataset's namespace holding Xero OAuth2 credentials. There is no
/// namespace field: Secrets are read from the XeroDataset's own namespace only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct XeroCredentialsSecretRef {
    /// Name of the Secret (a DNS-1123 subdomain) in the XeroDataset's namespace.
    #[x_kube(validation = secret_name_rule())]
    #[schemars(length(max = 253))]
    pub name: String,

    /// Key of the Xero app's client id in the Secret. Default `clientId`.
    #[serde(default = "default_client_id_key")]
    #[x_kube(validation = secret_key_rule())]
    #[schemars(length(max = 253))]
    pub client_id_key: String,

    /// Key of the Xero app's client secret in the Secret. Default `clientSecret`.
    #[serde(default = "default_client_secret_key")]
    #[x_kube(validation = secret_key_rule())]
    #[schemars(length(max = 253))]
    pub client_secret_key: String,

    /// Key of the Xero refresh token in the Secret. Default `refreshToken`. The operator
    /// replaces it with the rotated token after every exchange.
    #[serde(default = "default_refresh_token_key")]
    #[x_kube(validation = secret_key_rule())]
    #[schemars(length(max = 253))]
    pub refresh_token_key: String,
}

/// The Power BI side: identity, cloud, and whether to take the dataset over.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PowerBiSpec {
    /// The Secret, in this namespace, with a Microsoft Entra service principal's tenant id,
    /// client id and client secret. Omitted: the operator's own identity (for example Azure
    /// workload identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<PowerBiCredentialsSecretRef>,

    /// The Power BI cloud: Public, USGov, USGovHigh, USGovDoD or China. Default Public.
    #[serde(default)]
    pub cloud: PowerBiCloud,

    /// Take the dataset over (become its owner) when the operator's identity does not own it;
    /// Power BI lets only the owner change the schedule and the credentials. Default false: a
    /// dataset owned by someone else is reported, not taken.
    #[serde(default)]
    pub take_over: bool,
}

/// A Secret in the XeroDataset's namespace holding a Microsoft Entra service principal's
/// credentials. There is no namespace field: same-namespace only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PowerBiCredentialsSecretRef {
    /// Name of the Secret (a DNS-1123 subdomain) in the XeroDataset's namespace.
    #[x_kube(validation = secret_name_rule())]
    #[schemars(length(max = 253))]
    pub name: String,

    /// Key of the Entra tenant id in the Secret. Default `tenantId`.
    #[serde(default = "default_tenant_id_key")]
    #[x_kube(validation = secret_key_rule())]
    #[schemars(length(max = 253))]
    pub tenant_id_key: String,

    /// Key of the service principal's client (application) id in the Secret. Default
    /// `clientId`.
    #[serde(default = "default_client_id_key")]
    #[x_kube(validation = secret_key_rule())]
    #[schemars(length(max = 253))]
    pub client_id_key: String,

    /// Key of the service principal's client secret in the Secret. Default `clientSecret`.
    #[serde(default = "default_client_secret_key")]
    #[x_kube(validation = secret_key_rule())]
    #[schemars(length(max = 253))]
    pub client_secret_key: String,
}

/// A Power BI cloud. Each has its own API and Entra endpoints.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum PowerBiCloud {
    /// The public (commercial) cloud.
    #[default]
    Public,
    /// US Government Community Cloud (GCC).
    #[serde(rename = "USGov")]
    UsGov,
    /// US Government Community Cloud High.
    #[serde(rename = "USGovHigh")]
    UsGovHigh,
    /// US Department of Defense cloud.
    #[serde(rename = "USGovDoD")]
    UsGovDod,
    /// Power BI operated by 21Vianet in China.
    China,
}

/// The refresh schedule the dataset should have in Power BI.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = times_when_enabled_rule())]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Whether the dataset refreshes on schedule. Default true. When false the operator
    /// switches Power BI's schedule off, changes nothing else in it (Power BI's rule) and starts
    /// no scheduled refresh itself.
    #[serde(default = "default_true")]
    pub enabled: bool,

    /// Who starts the refresh at each slot. `PowerBI`: Power BI's own scheduler, which starts
    /// it on a best-effort basis (usually within 15 minutes, up to an hour late on a busy
    /// capacity); the operator keeps Power BI's schedule as specified and applies fresh Xero
    /// credentials shortly before each slot. `Operator`: the operator keeps Power BI's schedule
    /// switched off, so that nothing refreshes twice, and at each slot applies fresh credentials
    /// and starts the refresh itself, within a minute; a slot it missed (the operator was down)
    /// is started up to an hour late. Default `Operator`: over a simulated week with Power BI's
    /// late starts it refreshed every slot on the first try, where `PowerBI` managed two in
    /// three (the README has the figures).
    #[serde(default)]
    pub started_by: SlotStarter,

    /// Days of the week the refresh runs: Monday ... Sunday, each at most once, at least one.
    /// Default: all seven days.
    #[serde(default = "default_days")]
    #[schemars(length(min = 1, max = 7), extend("x-kubernetes-list-type" = "set"))]
    pub days: Vec<DayOfWeek>,

    /// Times of day the refresh runs, as "hh:mm" in `timeZone` with minutes 00 or 30 (Power BI
    /// schedules on the hour and half hour), for example ["06:00", "12:30"]. Each at most once;
    /// at least one when enabled; at most 8 on Shared capacity, 48 on Premium.
    #[serde(default)]
    #[x_kube(validation = times_format_rule())]
    #[schemars(
        length(max = 48),
        inner(length(max = 5)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub times: Vec<String>,

    /// Time zone of `times`, as a Windows time zone id as Power BI uses them, for example "UTC",
    /// "GMT Standard Time", "Pacific Standard Time", "AUS Eastern Standard Time". Default
    /// "UTC".
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 128))]
    pub time_zone: String,

    /// With `startedBy: PowerBI`, how long before each scheduled time the operator applies fresh
    /// Xero credentials to the dataset, so that Power BI's own scheduled refresh starts with a
    /// working Xero access token; with either, how long before a slot a failed refresh waits for
    /// the slot's refresh instead of spending a recovery attempt.
    /// A duration such as "10m" (units h, m, s, ms), at most 15m: Xero access tokens last 30
    /// minutes and Power BI may start a scheduled refresh 15 minutes late. Default: the operator's `--default-credential-lead-time` (10m unless the
    /// operator is configured otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = duration_rule(), validation = lead_time_max_rule())]
    #[schemars(length(max = 64))]
    pub credential_lead_time: Option<String>,
}

impl ScheduleSpec {
    /// `credentialLeadTime` as a duration, when the spec sets it.
    pub fn credential_lead_time(
        &self,
    ) -> Option<Result<std::time::Duration, duration::DurationError>> {
        self.credential_lead_time.as_deref().map(duration::parse)
    }
}

/// Who starts the refresh at each slot of the schedule.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum SlotStarter {
    /// The operator starts each slot's refresh itself; Power BI's schedule stays off.
    #[default]
    Operator,
    /// Power BI's scheduler starts them; the operator applies credentials before each slot.
    #[serde(rename = "PowerBI")]
    PowerBi,
}

impl SlotStarter {
    /// The value as the spec spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Operator => "Operator",
            Self::PowerBi => "PowerBI",
        }
    }
}

/// A day of the week, as Power BI names it. The one day type of the operator: it orders Monday
/// first, as Power BI lists days.
#[derive(
    schemars::JsonSchema,
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
pub enum DayOfWeek {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl DayOfWeek {
    /// The seven days, Monday first.
    pub const ALL: [DayOfWeek; 7] = [
        Self::Monday,
        Self::Tuesday,
        Self::Wednesday,
        Self::Thursday,
        Self::Friday,
        Self::Saturday,
        Self::Sunday,
    ];

    /// Power BI's name of the day.
    pub fn name(self) -> &'static str {
        match self {
            Self::Monday => "Monday",
            Self::Tuesday => "Tuesday",
            Self::Wednesday => "Wednesday",
            Self::Thursday => "Thursday",
            Self::Friday => "Friday",
            Self::Saturday => "Saturday",
            Self::Sunday => "Sunday",
        }
    }

    /// The day Power BI names `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|day| day.name() == name)
    }

    /// The day of a calendar weekday.
    pub fn of(weekday: jiff::civil::Weekday) -> Self {
        let offset = usize::try_from(weekday.to_monday_zero_offset()).unwrap_or(0);
        Self::ALL[offset % 7]
    }
}

/// The capacity a workspace runs on; it bounds schedule times and refreshes per day.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum Capacity {
    /// Shared capacity (Pro): 8 schedule times, 8 refreshes a day in total.
    #[default]
    Shared,
    /// Premium, Premium Per User or Embedded capacity: 48 schedule times a day.
    Premium,
}

impl Capacity {
    /// The most schedule times a day Power BI accepts on this capacity.
    pub fn max_times_per_day(self) -> usize {
        match self {
            Self::Shared => SHARED_MAX_TIMES_PER_DAY,
            Self::Premium => PREMIUM_MAX_TIMES_PER_DAY,
        }
    }

    /// The most refreshes a day the operator lets a dataset on this capacity use, scheduled and
    /// API ones together: Shared capacity allows 8; Premium sets no fixed limit, so the operator
    /// keeps to the schedule's own maximum of 48 slots.
    pub fn daily_refresh_limit(self) -> u32 {
        match self {
            Self::Shared => 8,
            Self::Premium => 48,
        }
    }
}

/// How the operator retries failed refreshes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoverySpec {
    /// The most refreshes the operator starts in a day (in the schedule's time zone) to recover
    /// from failures, 0 to 48; 0 turns recovery off. The capacity's daily limit applies on top.
    /// Default 3.
    #[serde(default = "default_max_attempts_per_day")]
    #[schemars(range(min = 0, max = 48))]
    pub max_attempts_per_day: i32,

    /// The wait between recovery attempts: the first attempt starts as soon as a failure is
    /// seen, each further one waits `initial`, doubling up to `max`.
    #[serde(default)]
    pub backoff: Backoff,
}

impl Default for RecoverySpec {
    fn default() -> Self {
        Self {
            max_attempts_per_day: default_max_attempts_per_day(),
            backoff: Backoff::default(),
        }
    }
}

/// Exponential backoff between recovery attempts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = backoff_order_rule())]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// The wait after the first failed recovery attempt, a duration such as "5m" (units h, m,
    /// s, ms), longer than 0s and not longer than `max`; it doubles after each further failed
    /// attempt. Default 5m.
    #[serde(default = "default_backoff_initial")]
    #[x_kube(validation = duration_rule(), validation = positive_duration_rule())]
    #[schemars(length(max = 64))]
    pub initial: String,

    /// The longest wait between attempts, a duration such as "2h". Default 2h.
    #[serde(default = "default_backoff_max")]
    #[x_kube(validation = duration_rule())]
    #[schemars(length(max = 64))]
    pub max: String,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: default_backoff_initial(),
            max: default_backoff_max(),
        }
    }
}

impl Backoff {
    /// `initial` as a duration.
    pub fn initial(&self) -> Result<std::time::Duration, duration::DurationError> {
        duration::parse(&self.initial)
    }

    /// `max` as a duration.
    pub fn max(&self) -> Result<std::time::Duration, duration::DurationError> {
        duration::parse(&self.max)
    }
}

/// What the operator observed and did, written by the operator only.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct XeroDatasetStatus {
    /// The metadata.generation the operator last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, ScheduleSynced, CredentialsValid, RefreshSucceeded, Reconciling and Stalled, each
    /// with the generation it was computed for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["type"]
    ))]
    pub conditions: Vec<Condition>,

    /// The dataset's id, resolved from spec.dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<String>,

    /// The dataset's name as Power BI reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,

    /// The Xero tenant id of spec.xero.organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_tenant_id: Option<String>,

    /// The dataset's latest refresh in Power BI's refresh history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<LastRefresh>,

    /// When the latest successful refresh ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_refresh_time: Option<Time>,

    /// When the next scheduled refresh is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_refresh_time: Option<Time>,

    /// The state of the Xero credentials. No secret values, only times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsStatus>,

    /// Recovery counters for failed refreshes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryStatus>,

    /// The value of the `xero-operator.dev/reconcile-requested-at` annotation the operator last
    /// handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The value of the `xero-operator.dev/refresh-requested-at` annotation the operator last
    /// handled (by starting a refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_refresh_at: Option<String>,

    /// The latest slot of spec.schedule whose refresh the operator started itself
    /// (`startedBy: Operator`), so that a slot is never started twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_started_slot_time: Option<Time>,

    /// With `startedBy: PowerBI`, when the operator last switched Power BI's schedule on: a slot
    /// that passed before it gets no scheduled refresh, so a failure is recovered at once instead
    /// of waiting for one. With `Operator`, when the operator last found or made the schedule
    /// off: a scheduled refresh started after it shows that someone switched it on again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_updated_time: Option<Time>,

    /// A refresh the operator decided to start, recorded before it asks Power BI; cleared once
    /// the refresh started. An operator that restarts in between finds it and adopts the refresh
    /// the history shows instead of starting a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_intent: Option<RefreshIntent>,
}

/// A refresh about to be started.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RefreshIntent {
    /// Why: a refresh-requested-at annotation, or the recovery of a failed refresh.
    pub reason: RefreshIntentReason,

    /// The annotation's value, or the request id of the failed refresh.
    pub value: String,

    /// When the operator decided.
    pub time: Time,

    /// The request id of the newest refresh in the history when it decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_known_request_id: Option<String>,
}

/// Why the operator starts a refresh.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshIntentReason {
    /// The refresh-requested-at annotation asked for it.
    Requested,
    /// To recover from a failed refresh.
    RecoverFailure,
}

/// A refresh from Power BI's refresh history.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastRefresh {
    /// Power BI's request id of the refresh.
    pub request_id: String,

    /// How the refresh started: Scheduled, OnDemand, ViaApi, ... (an open set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_type: Option<String>,

    /// Completed, Failed, Unknown (running), Cancelled or Disabled.
    pub status: String,

    /// When the refresh started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,

    /// When the refresh ended; absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,

    /// The error code of a failed refresh, from Power BI's serviceExceptionJson.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 300))]
    pub error_code: Option<String>,

    /// The error message of a failed refresh, from Power BI's serviceExceptionJson (at most
    /// 1024 characters, control characters blanked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1100))]
    pub error_message: Option<String>,
}

/// Times of the operator's credential work. Never a secret value.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    /// When Xero credentials were last applied to the dataset's datasource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_time: Option<Time>,

    /// When the Xero access token last applied expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expires_at: Option<Time>,

    /// When the Xero refresh token in the Secret was last rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_rotated_at: Option<Time>,

    /// The spec generation and operator configuration (`<generation>-<configuration hash>`)
    /// for which the whole chain last passed: the Power BI token, the dataset, the Xero token
    /// exchange, the organisation, the datasource and Power BI accepting the credentials.
    /// Empty after the chain failed; Ready is true only while it matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_for: Option<String>,
}

/// Recovery counters.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryStatus {
    /// Recovery refreshes started on the day of lastAttemptTime, in the schedule's time zone.
    #[serde(default)]
    pub attempts_today: i32,

    /// Refreshes that failed in a row, scheduled ones included.
    #[serde(default)]
    pub consecutive_failures: i32,

    /// When the operator last started a recovery refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,

    /// When the next recovery refresh may start (end of the backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_time: Option<Time>,

    /// Request id of the failed refresh the operator last responded to, so that one failure is
    /// handled once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_failure_request_id: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_days() -> Vec<DayOfWeek> {
    DayOfWeek::ALL.to_vec()
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

fn default_max_attempts_per_day() -> i32 {
    3
}

fn default_backoff_initial() -> String {
    "5m".to_owned()
}

fn default_backoff_max() -> String {
    "2h".to_owned()
}

fn default_client_id_key() -> String {
    "clientId".to_owned()
}

fn default_client_secret_key() -> String {
    "clientSecret".to_owned()
}

fn default_refresh_token_key() -> String {
    "refreshToken".to_owned()
}

fn default_tenant_id_key() -> String {
    "tenantId".to_owned()
}

// CEL rules. Rules that call duration() first check the string's shape, so that a malformed
// value gets the shape message instead of a CEL evaluation error.
// Patterns are written without backslashes ([.] rather than an escaped dot) because they are
// embedded in CEL string literals, where a backslash starts an escape sequence.

const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const DNS1123_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";
const TIME_OF_DAY_PATTERN: &str = "^([01][0-9]|2[0-3]):(00|30)$";

fn uuid_rule() -> Rule {
    Rule::new(format!("self.matches('{UUID_PATTERN}')"))
        .message("must be a uuid such as f089354e-8366-4e18-aea3-4cb4a3a50b48")
}

fn secret_name_rule() -> Rule {
    Rule::new(format!("self.matches('{DNS1123_SUBDOMAIN_PATTERN}')")).message(
        "must be a Secret name (DNS-1123 subdomain): lowercase letters, digits, '-' and '.', \
         starting and ending with a letter or digit",
    )
}

fn secret_key_rule() -> Rule {
    Rule::new(format!("self.matches('{SECRET_KEY_PATTERN}')"))
        .message("must be a Secret key: letters, digits, '-', '_' and '.'")
}

fn dataset_not_both_rule() -> Rule {
    Rule::new("!(has(self.id) && has(self.name))")
        .message("set only one of dataset.id and dataset.name")
}

fn dataset_one_of_rule() -> Rule {
    Rule::new("has(self.id) || has(self.name)")
        .message("one of dataset.id or dataset.name is required")
}

fn times_format_rule() -> Rule {
    Rule::new(format!("self.all(t, t.matches('{TIME_OF_DAY_PATTERN}'))")).message(
        "times must be hh:mm between 00:00 and 23:30 with minutes 00 or 30, such as \"06:00\" or \
         \"12:30\"",
    )
}

fn times_when_enabled_rule() -> Rule {
    Rule::new("!self.enabled || (has(self.times) && size(self.times) > 0)")
        .message("schedule.times needs at least one time when the schedule is enabled")
        .field_path(".times")
}

fn times_fit_capacity_rule() -> Rule {
    Rule::new(format!(
        "(has(self.capacity) && self.capacity == 'Premium') || !has(self.schedule.times) || \
         size(self.schedule.times) <= {SHARED_MAX_TIMES_PER_DAY}"
    ))
    .message(Message::Message(format!(
        "schedule.times allows at most {SHARED_MAX_TIMES_PER_DAY} times a day on Shared \
         capacity ({PREMIUM_MAX_TIMES_PER_DAY} on Premium)"
    )))
    .field_path(".schedule.times")
}

fn duration_rule() -> Rule {
    Rule::new(format!("self.matches('{}')", duration::PATTERN))
        .message("must be a duration such as 10m, 1h30m or 90s (units h, m, s, ms)")
}

fn lead_time_max_rule() -> Rule {
    Rule::new(format!(
        "!self.matches('{}') || duration(self) <= duration('{MAX_CREDENTIAL_LEAD_TIME}')",
        duration::PATTERN
    ))
    .message(Message::Message(format!(
        "must be at most {MAX_CREDENTIAL_LEAD_TIME}: Xero access tokens last 30 minutes and Power BI may start a scheduled refresh 15 minutes late"
    )))
}

fn positive_duration_rule() -> Rule {
    Rule::new(format!(
        "!self.matches('{}') || duration(self) > duration('0s')",
        duration::PATTERN
    ))
    .message("must be longer than 0s")
}

fn backoff_order_rule() -> Rule {
    Rule::new(format!(
        "!self.initial.matches('{p}') || !self.max.matches('{p}') || \
         duration(self.initial) <= duration(self.max)",
        p = duration::PATTERN
    ))
    .message("backoff.initial must not be longer than backoff.max")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_example_deserializes_with_defaults() {
        let spec: XeroDatasetSpec = serde_yaml::from_str(
            r#"
workspaceId: f089354e-8366-4e18-aea3-4cb4a3a50b48
dataset: {name: Xero}
xero:
  organisation: Demo Company (UK)
  credentialsSecretRef: {name: xero-app}
schedule:
  times: ["06:00", "12:30"]
"#,
        )
        .unwrap();
        assert_eq!(spec.dataset.selector(), Some(DatasetSelector::Name("Xero")));
        assert_eq!(spec.capacity, Capacity::Shared);
        assert_eq!(spec.power_bi, PowerBiSpec::default());
        assert_eq!(spec.power_bi.cloud, PowerBiCloud::Public);
        assert!(!spec.power_bi.take_over);
        assert!(!spec.suspend);
        assert!(spec.schedule.enabled);
        assert_eq!(spec.schedule.days, DayOfWeek::ALL.to_vec());
        assert_eq!(spec.schedule.time_zone, "UTC");
        assert_eq!(spec.schedule.credential_lead_time(), None);
        assert_eq!(spec.recovery.max_attempts_per_day, 3);
        assert_eq!(
            spec.recovery.backoff.initial(),
            Ok(std::time::Duration::from_secs(300))
        );
        assert_eq!(
            spec.recovery.backoff.max(),
            Ok(std::time::Duration::from_secs(7200))
        );
        let secret = &spec.xero.credentials_secret_ref;
        assert_eq!(
            (
                secret.client_id_key.as_str(),
                secret.client_secret_key.as_str(),
                secret.refresh_token_key.as_str()
            ),
            ("clientId", "clientSecret", "refreshToken")
        );
    }

    #[test]
    fn the_wire_names_are_the_documented_ones() {
        let spec: XeroDatasetSpec = serde_json::from_value(serde_json::json!({
            "workspaceId": "f089354e-8366-4e18-aea3-4cb4a3a50b48",
            "dataset": {"id": "cfafbeb1-8037-4d0c-896e-a46fb27ff229"},
            "xero": {"organisation": "Demo", "credentialsSecretRef": {"name": "xero-app"}},
            "powerBI": {
                "credentialsSecretRef": {"name": "powerbi-sp"},
                "cloud": "USGovDoD",
                "takeOver": true
            },
            "schedule": {"days": ["Monday"], "times": ["06:00"], "timeZone": "GMT Standard Time"},
            "capacity": "Premium"
        }))
        .unwrap();
        assert_eq!(
            spec.dataset.selector(),
            Some(DatasetSelector::Id("cfafbeb1-8037-4d0c-896e-a46fb27ff229"))
        );
        assert_eq!(spec.power_bi.cloud, PowerBiCloud::UsGovDod);
        let powerbi_secret = spec.power_bi.credentials_secret_ref.as_ref().unwrap();
        assert_eq!(powerbi_secret.tenant_id_key, "tenantId");
        assert_eq!(spec.capacity.max_times_per_day(), 48);
        let value = serde_json::to_value(&spec).unwrap();
        assert_eq!(value["powerBI"]["cloud"], "USGovDoD");
        assert!(value["schedule"].get("credentialLeadTime").is_none());
    }

    #[test]
    fn an_empty_status_serializes_to_an_empty_object() {
        let value = serde_json::to_value(XeroDatasetStatus::default()).unwrap();
        assert_eq!(value, serde_json::json!({}));
    }
}
