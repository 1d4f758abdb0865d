//! Turns a XeroDataset into checked, typed values for the planner, or an error naming what a
//! human must fix. The API server already enforces the schema and CEL rules; this step covers
//! what they cannot know (time zone names) and never trusts that they ran.

use std::time::Duration;

use jiff::SignedDuration;

use super::model::Desired;
use crate::api::{
    DatasetSelector, PowerBiCloud, PowerBiCredentialsSecretRef, RECONCILE_REQUESTED_AT,
    REFRESH_REQUESTED_AT, XeroCredentialsSecretRef, XeroDataset, duration,
};
use crate::schedule::{RefreshSchedule, time_zone};

/// How to name the dataset in Power BI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetName {
    Id(String),
    Name(String),
}

/// Everything one reconcile needs from the spec, checked.
#[derive(Debug, Clone)]
pub struct ValidatedSpec {
    pub workspace_id: String,
    pub dataset: DatasetName,
    pub datasource_id: Option<String>,
    pub organisation: String,
    pub xero_secret: XeroCredentialsSecretRef,
    pub powerbi_secret: Option<PowerBiCredentialsSecretRef>,
    pub cloud: PowerBiCloud,
    pub take_over: bool,
    pub desired: Desired,
    /// A reconcile-requested-at value not handled yet.
    pub reconcile_requested: Option<String>,
}

/// A spec the operator cannot act on; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSpec(pub String);

/// Checks the spec of `xds` and reads the request annotations not yet handled.
/// `configuration` identifies the operator's configuration (its endpoints) for the fingerprint.
pub fn validate(
    xds: &XeroDataset,
    default_lead_time: Duration,
    configuration: u64,
) -> Result<ValidatedSpec, InvalidSpec> {
    let spec = &xds.spec;
    let dataset = match spec.dataset.selector() {
        Some(DatasetSelector::Id(id)) => DatasetName::Id(id.to_owned()),
        Some(DatasetSelector::Name(name)) => DatasetName::Name(name.to_owned()),
        None => return Err(InvalidSpec("spec.dataset needs an id or a name".into())),
    };
    let schedule = RefreshSchedule::parse(
        spec.schedule.enabled,
        &spec
            .schedule
            .days
            .iter()
            .map(|d| d.name())
            .collect::<Vec<_>>(),
        &spec.schedule.times,
        &spec.schedule.time_zone,
    )
    .map_err(|e| InvalidSpec(format!("spec.schedule: {e}")))?;
    let zone = time_zone(&spec.schedule.time_zone)
        .map_err(|e| InvalidSpec(format!("spec.schedule.timeZone: {e}")))?;
    let lead = match &spec.schedule.credential_lead_time {
        Some(lead) => parse_duration("spec.schedule.credentialLeadTime", lead)?,
        None => default_lead_time,
    };
    let (backoff_initial, backoff_max) = backoff(spec)?;
    let status = xds.status.as_ref();
    let annotation = |key: &str| {
        xds.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let refresh_requested = annotation(REFRESH_REQUESTED_AT)
        .filter(|v| status.and_then(|s| s.last_handled_refresh_at.as_ref()) != Some(v));
    let reconcile_requested = annotation(RECONCILE_REQUESTED_AT)
        .filter(|v| status.and_then(|s| s.last_handled_reconcile_at.as_ref()) != Some(v));

    Ok(ValidatedSpec {
        workspace_id: spec.workspace_id.clone(),
        dataset,
        datasource_id: spec.dataset.datasource_id.clone(),
        organisation: spec.xero.organisation.clone(),
        xero_secret: spec.xero.credentials_secret_ref.clone(),
        powerbi_secret: spec.power_bi.credentials_secret_ref.clone(),
        cloud: spec.power_bi.cloud,
        take_over: spec.power_bi.take_over,
        desired: Desired {
            schedule,
            started_by: spec.schedule.started_by,
            zone,
            credential_lead_time: SignedDuration::try_from(lead).unwrap_or(SignedDuration::ZERO),
            daily_refresh_limit: spec.capacity.daily_refresh_limit(),
            max_attempts_per_day: u32::try_from(spec.recovery.max_attempts_per_day).unwrap_or(0),
            backoff_initial,
            backoff_max,
            suspend: spec.suspend,
            refresh_requested,
            fingerprint: format!(
                "{}-{configuration:016x}",
                xds.metadata.generation.unwrap_or(0)
            ),
        },
        reconcile_requested,
    })
}

/// The recovery backoff's initial and longest waits.
fn backoff(spec: &crate::api::XeroDatasetSpec) -> Result<(Duration, Duration), InvalidSpec> {
    let initial = parse_duration(
        "spec.recovery.backoff.initial",
        &spec.recovery.backoff.initial,
    )?;
    let max = parse_duration("spec.recovery.backoff.max", &spec.recovery.backoff.max)?;
    if initial > max {
        return Err(InvalidSpec(
            "spec.recovery.backoff.initial must not be longer than spec.recovery.backoff.max"
                .into(),
        ));
    }
    Ok((initial, max))
}

fn parse_duration(field: &str, value: &str) -> Result<Duration, InvalidSpec> {
    duration::parse(value).map_err(|e| InvalidSpec(format!("{field}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_default(xds: &XeroDataset) -> Result<ValidatedSpec, InvalidSpec> {
        validate(xds, Duration::from_secs(600), 0xfeed)
    }

    fn dataset(yaml: &str) -> XeroDataset {
        serde_yaml::from_str(yaml).expect("manifest")
    }

    const BASE: &str = r#"
apiVersion: xero-operator.dev/v1alpha1
kind: XeroDataset
metadata: {name: finance, namespace: finance}
spec:
  workspaceId: f089354e-8366-4e18-aea3-4cb4a3a50b48
  dataset: {name: Xero}
  xero:
    organisation: Demo Company (UK)
    credentialsSecretRef: {name: xero-app}
  schedule:
    days: [Monday, Friday]
    times: ["06:00", "12:30"]
    timeZone: GMT Standard Time
"#;

    #[test]
    fn a_minimal_spec_gets_the_documented_defaults() {
        let v = validate_default(&dataset(BASE)).expect("valid");
        assert_eq!(v.dataset, DatasetName::Name("Xero".into()));
        assert_eq!(v.desired.daily_refresh_limit, 8);
        assert_eq!(v.desired.max_attempts_per_day, 3);
        assert_eq!(
            v.desired.credential_lead_time,
            SignedDuration::from_mins(10)
        );
        assert_eq!(v.desired.backoff_initial, Duration::from_secs(300));
        assert_eq!(v.desired.schedule.day_names(), ["Monday", "Friday"]);
        assert_eq!(v.xero_secret.refresh_token_key, "refreshToken");
        assert_eq!(v.desired.refresh_requested, None);
    }

    #[test]
    fn an_unknown_time_zone_names_the_field() {
        let yaml = BASE.replace("GMT Standard Time", "Mars Standard Time");
        let err = validate_default(&dataset(&yaml)).expect_err("invalid");
        assert!(err.0.contains("spec.schedule.timeZone"), "{err}");
    }

    #[test]
    fn request_annotations_count_only_while_not_handled() {
        let mut xds = dataset(BASE);
        xds.metadata.annotations = Some(
            [
                (REFRESH_REQUESTED_AT.to_owned(), "t1".to_owned()),
                (RECONCILE_REQUESTED_AT.to_owned(), "r1".to_owned()),
            ]
            .into(),
        );
        let v = validate_default(&xds).expect("valid");
        assert_eq!(v.desired.refresh_requested.as_deref(), Some("t1"));
        assert_eq!(v.reconcile_requested.as_deref(), Some("r1"));
        xds.status = Some(crate::api::XeroDatasetStatus {
            last_handled_refresh_at: Some("t1".into()),
            last_handled_reconcile_at: Some("r1".into()),
            ..Default::default()
        });
        let v = validate_default(&xds).expect("valid");
        assert_eq!(v.desired.refresh_requested, None);
        assert_eq!(v.reconcile_requested, None);
    }

    #[test]
    fn premium_capacity_raises_the_daily_limit() {
        let yaml = format!("{BASE}  capacity: Premium\n");
        assert_eq!(
            validate_default(&dataset(&yaml))
                .expect("valid")
                .desired
                .daily_refresh_limit,
            48
        );
    }
}
