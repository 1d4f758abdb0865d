//! The Power BI REST API's bodies, as far as the operator reads or writes them.
//!
//! Power BI spells some properties in camelCase and others in PascalCase, depending on the
//! endpoint and the documentation version; bodies are read with [`from_service_json`], which
//! accepts both, into the camelCase types here.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use crate::http::from_service_json;
use crate::http::{camel_case_keys, service_time};

/// The OData list wrapper: `{"@odata.context": "...", "value": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ODataList<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
}

/// A Power BI dataset (semantic model).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    /// The dataset id (a GUID).
    pub id: String,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// The owner, for example a UPN or a service principal's app id.
    pub configured_by: Option<String>,
    /// Whether the dataset can be refreshed (Import mode).
    pub is_refreshable: Option<bool>,
    /// Whether refreshing needs an on-premises gateway.
    pub is_on_prem_gateway_required: Option<bool>,
    /// Storage mode, for example `Abf`.
    pub target_storage_mode: Option<String>,
    /// The dataset's page in the Power BI portal.
    pub web_url: Option<String>,
    /// When the dataset was created.
    #[serde(default, deserialize_with = "service_time::deserialize")]
    pub created_date: Option<Timestamp>,
}

/// How a refresh was started.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum RefreshType {
    /// Power BI's own schedule.
    Scheduled,
    /// The portal's "Refresh now".
    OnDemand,
    /// The REST API (what the operator starts).
    ViaApi,
    /// An XMLA endpoint.
    ViaXmlaEndpoint,
    /// The enhanced refresh API.
    ViaEnhancedApi,
    /// On-demand training.
    OnDemandTraining,
    /// A value this version does not know.
    Other(String),
}

impl From<String> for RefreshType {
    fn from(value: String) -> Self {
        match value.as_str() {
            "Scheduled" => Self::Scheduled,
            "OnDemand" => Self::OnDemand,
            "ViaApi" => Self::ViaApi,
            "ViaXmlaEndpoint" => Self::ViaXmlaEndpoint,
            "ViaEnhancedApi" => Self::ViaEnhancedApi,
            "OnDemandTraining" => Self::OnDemandTraining,
            _ => Self::Other(value),
        }
    }
}

/// The state of a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum RefreshStatus {
    /// Power BI's `Unknown`: the refresh is still running (or its state is unknown).
    Unknown,
    /// It succeeded.
    Completed,
    /// It failed; [`Refresh::service_exception`] says why.
    Failed,
    /// Disabled by selective refresh.
    Disabled,
    /// Cancelled.
    Cancelled,
    /// A value this version does not know.
    Other(String),
}

impl From<String> for RefreshStatus {
    fn from(value: String) -> Self {
        match value.as_str() {
            "Unknown" | "" => Self::Unknown,
            "Completed" => Self::Completed,
            "Failed" => Self::Failed,
            "Disabled" => Self::Disabled,
            "Cancelled" => Self::Cancelled,
            _ => Self::Other(value),
        }
    }
}

/// One entry of a dataset's refresh history.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refresh {
    /// The refresh's request id; the `RequestId` header of the call that started it.
    pub request_id: Option<String>,
    /// A numeric id that live responses carry and the swagger does not.
    pub id: Option<i64>,
    /// How the refresh was started.
    pub refresh_type: Option<RefreshType>,
    /// When it started.
    #[serde(default, deserialize_with = "service_time::deserialize")]
    pub start_time: Option<Timestamp>,
    /// When it ended; missing while it runs.
    #[serde(default, deserialize_with = "service_time::deserialize")]
    pub end_time: Option<Timestamp>,
    /// Its state.
    #[serde(default = "unknown_status")]
    pub status: RefreshStatus,
    /// A finer state some responses carry (`NotStarted`, `InProgress`, ...).
    pub extended_status: Option<String>,
    /// The failure, as a string holding JSON.
    pub service_exception_json: Option<String>,
    /// Power BI's own tries of this refresh.
    #[serde(default)]
    pub refresh_attempts: Vec<RefreshAttempt>,
}

fn unknown_status() -> RefreshStatus {
    RefreshStatus::Unknown
}

impl Refresh {
    /// Whether the refresh is still running (`Unknown` without an end time).
    pub fn is_running(&self) -> bool {
        self.status == RefreshStatus::Unknown && self.end_time.is_none()
    }

    /// The failure's error code and description, read tolerantly from `serviceExceptionJson`
    /// (which comes as `{"errorCode":…}` or as `{"error":{"code":…,"pbi.error":…}}`).
    pub fn service_exception(&self) -> Option<ServiceException> {
        ServiceException::parse(self.service_exception_json.as_deref()?)
    }
}

/// One try of a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshAttempt {
    /// The try's number.
    pub attempt_id: Option<i64>,
    /// When it started.
    #[serde(default, deserialize_with = "service_time::deserialize")]
    pub start_time: Option<Timestamp>,
    /// When it ended.
    #[serde(default, deserialize_with = "service_time::deserialize")]
    pub end_time: Option<Timestamp>,
    /// Its failure, as a string holding JSON.
    pub service_exception_json: Option<String>,
    /// `Data` (loading data) or `Query` (refreshing caches).
    #[serde(rename = "type")]
    pub attempt_type: Option<String>,
}

/// What Power BI says about a failed refresh.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceException {
    /// The error code, such as `ModelRefreshFailed_CredentialsNotSpecified`.
    pub code: Option<String>,
    /// A description, when there is one.
    pub description: Option<String>,
}

impl ServiceException {
    /// Parses a `serviceExceptionJson` string; `None` when it is empty.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            // Not JSON: keep the text as the description rather than losing it.
            return Some(Self {
                code: None,
                description: Some(text.to_owned()),
            });
        };
        let value = camel_case_keys(value);
        let string =
            |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let error = value.get("error").unwrap_or(&Value::Null);
        let code = string(&value, "errorCode")
            .or_else(|| string(error, "code"))
            .or_else(|| {
                error
                    .get("pbi.error")
                    .and_then(|inner| string(inner, "code"))
            });
        let description = string(&value, "errorDescription")
            .or_else(|| string(error, "message"))
            .or_else(|| string(&value, "message"));
        Some(Self { code, description })
    }
}

/// A dataset's refresh schedule, as Power BI reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshSchedule {
    /// Days, `Monday` … `Sunday`. A disabled schedule still lists them.
    #[serde(default)]
    pub days: Vec<String>,
    /// Times of day, `hh:mm` with minutes `00` or `30`.
    #[serde(default)]
    pub times: Vec<String>,
    /// Whether the schedule runs.
    #[serde(default)]
    pub enabled: bool,
    /// A Windows time zone id, such as `UTC`.
    pub local_time_zone_id: Option<String>,
    /// `NoNotification` or `MailOnFailure`.
    pub notify_option: Option<String>,
}

/// A change to a refresh schedule; fields left `None` stay as they are. A change that disables
/// the schedule may change nothing else ([`RefreshScheduleUpdate::disable`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshScheduleUpdate {
    /// New days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<String>>,
    /// New times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<String>>,
    /// Enable or disable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// New time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_time_zone_id: Option<String>,
    /// New notification option; service principals may only use `NoNotification`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_option: Option<String>,
}

/// The notify option a service principal may store.
pub const NOTIFY_NOBODY: &str = "NoNotification";
/// The notify option the portal stores for schedules people configure.
pub const NOTIFY_MAIL_ON_FAILURE: &str = "MailOnFailure";

impl RefreshScheduleUpdate {
    /// The one change allowed when disabling: `{"enabled": false}`.
    pub fn disable() -> Self {
        Self {
            enabled: Some(false),
            ..Self::default()
        }
    }

    /// `{"notifyOption": "NoNotification"}` alone: what must precede the disable of a schedule
    /// that stores `MailOnFailure`.
    pub fn notify_nobody() -> Self {
        Self {
            notify_option: Some(NOTIFY_NOBODY.to_owned()),
            ..Self::default()
        }
    }

    /// Whether this change disables the schedule together with another change, which Power BI
    /// rejects.
    pub(crate) fn disables_with_other_changes(&self) -> bool {
        self.enabled == Some(false)
            && (self.days.is_some()
                || self.times.is_some()
                || self.local_time_zone_id.is_some()
                || self.notify_option.is_some())
    }
}

/// A data source of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Datasource {
    /// `Extension`, `OData`, `Web`, `Sql`, ...
    pub datasource_type: Option<String>,
    /// Where the source points.
    #[serde(default, deserialize_with = "connection_details")]
    pub connection_details: ConnectionDetails,
    /// The data source id on its gateway (empty when unbound).
    pub datasource_id: Option<String>,
    /// The gateway id (for a cloud source, the owner's personal cloud gateway).
    pub gateway_id: Option<String>,
    /// Deprecated; DirectQuery only.
    pub name: Option<String>,
    /// Deprecated; DirectQuery only.
    pub connection_string: Option<String>,
}

impl Datasource {
    /// The `(gateway id, datasource id)` that Update Datasource takes, when the source is bound.
    pub fn gateway_binding(&self) -> Option<(&str, &str)> {
        let gateway = self.gateway_id.as_deref().filter(|id| !id.is_empty())?;
        let datasource = self.datasource_id.as_deref().filter(|id| !id.is_empty())?;
        Some((gateway, datasource))
    }
}

/// A gateway, as Get Gateway answers: an on-premises gateway's public key encrypts the
/// credentials sent to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// The gateway id.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// `Resource` for an on-premises (standard mode) gateway.
    #[serde(rename = "type")]
    pub gateway_type: Option<String>,
    /// Its public key.
    pub public_key: Option<GatewayPublicKey>,
}

/// A gateway's RSA public key, base64 big-endian integers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayPublicKey {
    /// The public exponent (usually `AQAB`).
    pub exponent: String,
    /// The modulus.
    pub modulus: String,
}

/// How credentials travel to a data source's gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialEncryption {
    /// A cloud source: the credentials JSON as it is (`encryptionAlgorithm: None`).
    None,
    /// An on-premises gateway: encrypted with its public key (`RSA-OAEP`).
    Gateway {
        /// The gateway's name, for messages.
        name: String,
        /// Its public key.
        key: GatewayPublicKey,
    },
}

/// A data source's connection details; which fields are set depends on its type.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDetails {
    /// Server.
    pub server: Option<String>,
    /// Database.
    pub database: Option<String>,
    /// URL.
    pub url: Option<String>,
    /// Path (connectors: their argument).
    pub path: Option<String>,
    /// Connector name for `Extension` sources, such as `Xero`.
    pub kind: Option<String>,
    /// Account.
    pub account: Option<String>,
    /// Domain.
    pub domain: Option<String>,
    /// Email address.
    pub email_address: Option<String>,
    /// Login server.
    pub login_server: Option<String>,
    /// Class info.
    pub class_info: Option<String>,
}

/// The Gateways API returns connection details as a string holding JSON; the Datasets API as an
/// object. Both are accepted.
fn connection_details<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<ConnectionDetails, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(ConnectionDetails::default()),
        Value::String(text) if text.trim().is_empty() => Ok(ConnectionDetails::default()),
        Value::String(text) => {
            let value: Value = serde_json::from_str(&text).map_err(serde::de::Error::custom)?;
            serde_json::from_value(camel_case_keys(value)).map_err(serde::de::Error::custom)
        }
        other => serde_json::from_value(other).map_err(serde::de::Error::custom),
    }
}

/// The privacy level set with data source credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum PrivacyLevel {
    /// No privacy level.
    None,
    /// Public.
    Public,
    /// Organizational: the usual level for a company's accounting data.
    #[default]
    Organizational,
    /// Private.
    Private,
}

/// The error envelope: `{"error":{"code":…,"message":…}}`, or the bare `{"message":…}` seen on
/// throttling.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub error: Option<ErrorDetail>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "pbi.error")]
    pub pbi_error: Option<Box<ErrorDetail>>,
}

impl ErrorBody {
    /// The error code, from the envelope or its `pbi.error` variant.
    pub fn code(&self) -> Option<&str> {
        let error = self.error.as_ref()?;
        error
            .code
            .as_deref()
            .or_else(|| error.pbi_error.as_ref()?.code.as_deref())
    }

    /// The human-readable message.
    pub fn message(&self) -> Option<&str> {
        self.error
            .as_ref()
            .and_then(|error| error.message.as_deref())
            .or(self.message.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_parse_in_both_casings() {
        let camel = br#"{"@odata.context":"x","value":[{"id":"d1","name":"Xero","isRefreshable":true,"configuredBy":"sp","createdDate":"2024-01-02T03:04:05.123Z"}]}"#;
        let pascal = br#"{"odata.context":"x","Value":[{"Id":"d1","Name":"Xero","IsRefreshable":true,"ConfiguredBy":"sp","CreatedDate":"2024-01-02T03:04:05.123"}]}"#;
        let a: ODataList<Dataset> = from_service_json(camel).unwrap();
        let b: ODataList<Dataset> = from_service_json(pascal).unwrap();
        assert_eq!(a.value, b.value);
        assert_eq!(a.value[0].is_refreshable, Some(true));
        assert_eq!(
            a.value[0].created_date.unwrap().to_string(),
            "2024-01-02T03:04:05.123Z"
        );
    }

    #[test]
    fn refresh_history_entries_parse() {
        let body = br#"{"value":[
            {"refreshType":"ViaApi","startTime":"2017-06-13T09:25:43.153Z","status":"Unknown","requestId":"9399"},
            {"refreshType":"Scheduled","startTime":"2017-06-13T09:25:43.153Z","endTime":"2017-06-13T09:31:43.153Z",
             "serviceExceptionJson":"{\"errorCode\":\"ModelRefreshFailed_CredentialsNotSpecified\"}",
             "status":"Failed","requestId":"11bf","id":1277491253,"extendedStatus":"Completed",
             "refreshAttempts":[{"attemptId":1,"startTime":"2017-06-13T09:25:43.153Z","type":"Data"}]},
            {"RefreshType":"ReliableProcessing","StartTime":"2017-06-13T09:25:43.153Z","EndTime":"","Status":"Cancelled"}
        ]}"#;
        let list: ODataList<Refresh> = from_service_json(body).unwrap();
        let [running, failed, other] = list.value.as_slice() else {
            panic!("three entries expected");
        };
        assert!(running.is_running());
        assert_eq!(running.refresh_type, Some(RefreshType::ViaApi));
        assert_eq!(failed.status, RefreshStatus::Failed);
        assert!(!failed.is_running());
        assert_eq!(
            failed.service_exception().unwrap().code.as_deref(),
            Some("ModelRefreshFailed_CredentialsNotSpecified")
        );
        assert_eq!(
            failed.refresh_attempts[0].attempt_type.as_deref(),
            Some("Data")
        );
        assert_eq!(
            other.refresh_type,
            Some(RefreshType::Other("ReliableProcessing".into()))
        );
        assert_eq!(other.status, RefreshStatus::Cancelled);
        assert_eq!(other.end_time, None);
    }

    #[test]
    fn service_exceptions_parse_tolerantly() {
        let pbi = r#"{"error":{"code":"DM_GWPipeline_Gateway_InvalidConnectionCredentials","pbi.error":{"code":"DM_GWPipeline_Gateway_InvalidConnectionCredentials","parameters":{}}}}"#;
        assert_eq!(
            ServiceException::parse(pbi).unwrap().code.as_deref(),
            Some("DM_GWPipeline_Gateway_InvalidConnectionCredentials")
        );
        let only_pbi = r#"{"error":{"pbi.error":{"code":"DMTS_OAuthTokenRefreshFailedError"}}}"#;
        assert_eq!(
            ServiceException::parse(only_pbi).unwrap().code.as_deref(),
            Some("DMTS_OAuthTokenRefreshFailedError")
        );
        let described = r#"{"ErrorCode":"ModelRefresh_ShortMessage_ProcessingError","ErrorDescription":"boom"}"#;
        let parsed = ServiceException::parse(described).unwrap();
        assert_eq!(
            parsed.code.as_deref(),
            Some("ModelRefresh_ShortMessage_ProcessingError")
        );
        assert_eq!(parsed.description.as_deref(), Some("boom"));
        assert_eq!(ServiceException::parse("  "), None);
        assert_eq!(
            ServiceException::parse("not json")
                .unwrap()
                .description
                .as_deref(),
            Some("not json")
        );
    }

    #[test]
    fn schedules_parse_in_both_casings_and_updates_serialize_sparsely() {
        let body = br#"{"days":["Sunday"],"times":["05:00"],"enabled":true,"localTimeZoneId":"UTC","NotifyOption":"MailOnFailure"}"#;
        let schedule: RefreshSchedule = from_service_json(body).unwrap();
        assert_eq!(schedule.notify_option.as_deref(), Some("MailOnFailure"));
        let update = RefreshScheduleUpdate {
            times: Some(vec!["08:00".into()]),
            ..RefreshScheduleUpdate::default()
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"times":["08:00"]}"#
        );
        assert_eq!(
            serde_json::to_string(&RefreshScheduleUpdate::disable()).unwrap(),
            r#"{"enabled":false}"#
        );
        assert!(!RefreshScheduleUpdate::disable().disables_with_other_changes());
        let bad = RefreshScheduleUpdate {
            days: Some(vec!["Monday".into()]),
            ..RefreshScheduleUpdate::disable()
        };
        assert!(bad.disables_with_other_changes());
    }

    #[test]
    fn datasources_accept_object_and_string_connection_details() {
        let body = br#"{"value":[
            {"datasourceType":"Extension","connectionDetails":{"kind":"Xero","path":"Xero"},"datasourceId":"ds","gatewayId":"gw"},
            {"DatasourceType":"Web","ConnectionDetails":"{\"Url\":\"https://api.xero.com\"}","datasourceId":"","gatewayId":""}
        ]}"#;
        let list: ODataList<Datasource> = from_service_json(body).unwrap();
        assert_eq!(
            list.value[0].connection_details.kind.as_deref(),
            Some("Xero")
        );
        assert_eq!(list.value[0].gateway_binding(), Some(("gw", "ds")));
        assert_eq!(
            list.value[1].connection_details.url.as_deref(),
            Some("https://api.xero.com")
        );
        assert_eq!(list.value[1].gateway_binding(), None);
    }

    #[test]
    fn error_bodies_give_code_and_message() {
        let body: ErrorBody = from_service_json(
            br#"{"error":{"code":"TokenExpired","message":"Access token has expired"}}"#,
        )
        .unwrap();
        assert_eq!(body.code(), Some("TokenExpired"));
        assert_eq!(body.message(), Some("Access token has expired"));
        let throttled: ErrorBody =
            from_service_json(br#"{"message":"Retry in 3392 seconds."}"#).unwrap();
        assert_eq!(throttled.code(), None);
        assert_eq!(throttled.message(), Some("Retry in 3392 seconds."));
    }
}
