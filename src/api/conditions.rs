//! Status conditions of a `XeroDataset`: their types, their reasons, and the helpers that keep
//! `lastTransitionTime` honest.
//!
//! Conditions are `metav1.Condition`s. Every reason is a stable PascalCase word that also names
//! the event and the metric label for the same situation.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The dataset is refreshing as desired: schedule in sync, credentials valid, the latest refresh
/// succeeded or is being recovered. Abnormal-false: `False` means a human should look.
pub const READY: &str = "Ready";
/// Power BI's refresh schedule matches `spec.schedule`.
pub const SCHEDULE_SYNCED: &str = "ScheduleSynced";
/// The Xero and Power BI credentials work, and the Xero credentials were applied to the dataset.
pub const CREDENTIALS_VALID: &str = "CredentialsValid";
/// The latest refresh of the dataset completed.
pub const REFRESH_SUCCEEDED: &str = "RefreshSucceeded";
/// kstatus: the operator is working towards the desired state (for example a refresh runs).
pub const RECONCILING: &str = "Reconciling";
/// kstatus: the operator cannot make progress without a human: recovery is exhausted for
/// today, or the configuration is wrong.
pub const STALLED: &str = "Stalled";

/// Every condition type the operator writes, in the order it writes them.
pub const ALL_TYPES: [&str; 6] = [
    READY,
    SCHEDULE_SYNCED,
    CREDENTIALS_VALID,
    REFRESH_SUCCEEDED,
    RECONCILING,
    STALLED,
];

/// Condition reasons. Stable PascalCase words: they also name events and metric labels.
pub mod reason {
    /// Everything is as desired.
    pub const RECONCILED: &str = "Reconciled";
    /// The operator has not finished its first reconcile of this generation.
    pub const PROGRESSING: &str = "Progressing";
    /// `spec.suspend` is true: the operator changes nothing.
    pub const SUSPENDED: &str = "Suspended";
    /// Power BI's schedule already matched the spec.
    pub const SCHEDULE_IN_SYNC: &str = "ScheduleInSync";
    /// The operator updated Power BI's schedule to match the spec.
    pub const SCHEDULE_UPDATED: &str = "ScheduleUpdated";
    /// Fresh Xero credentials were applied to the dataset's datasource.
    pub const CREDENTIALS_APPLIED: &str = "CredentialsApplied";
    /// The latest refresh completed.
    pub const REFRESH_COMPLETED: &str = "RefreshCompleted";
    /// The latest refresh failed.
    pub const REFRESH_FAILED: &str = "RefreshFailed";
    /// A refresh is running (Power BI reports its status as `Unknown`).
    pub const REFRESH_IN_PROGRESS: &str = "RefreshInProgress";
    /// The operator started a refresh.
    pub const REFRESH_TRIGGERED: &str = "RefreshTriggered";
    /// The dataset has no refresh history yet.
    pub const NO_REFRESH_YET: &str = "NoRefreshYet";
    /// `recovery.maxAttemptsPerDay` or the capacity's daily refresh limit is used up for today.
    pub const RECOVERY_EXHAUSTED: &str = "RecoveryExhausted";
    /// A referenced Secret does not exist in the XeroDataset's namespace.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// A referenced Secret lacks one of the keys the operator needs.
    pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
    /// No dataset in the workspace has the configured id or name.
    pub const DATASET_NOT_FOUND: &str = "DatasetNotFound";
    /// Several datasets in the workspace have the configured name.
    pub const DATASET_AMBIGUOUS: &str = "DatasetAmbiguous";
    /// The dataset has no Xero datasource (or none with `spec.dataset.datasourceId`).
    pub const DATASOURCE_NOT_FOUND: &str = "DatasourceNotFound";
    /// The dataset has several Xero datasources and `spec.dataset.datasourceId` is not set.
    pub const DATASOURCE_AMBIGUOUS: &str = "DatasourceAmbiguous";
    /// No Xero connection has the configured organisation name.
    pub const ORGANISATION_NOT_FOUND: &str = "OrganisationNotFound";
    /// Several Xero connections have the configured organisation name.
    pub const ORGANISATION_AMBIGUOUS: &str = "OrganisationAmbiguous";
    /// Xero rejected the refresh token: someone must sign in again (`xero-operator xero-login`).
    pub const XERO_REFRESH_TOKEN_REJECTED: &str = "XeroRefreshTokenRejected";
    /// Entra ID or Power BI refused the operator's Power BI identity.
    pub const POWER_BI_UNAUTHORIZED: &str = "PowerBIUnauthorized";
    /// The operator's Power BI identity may not change the dataset (not its owner, and
    /// `spec.powerBI.takeOver` is false).
    pub const POWER_BI_FORBIDDEN: &str = "PowerBIForbidden";
    /// A Power BI or Xero call failed in a way that should pass (throttling, outage).
    pub const API_UNAVAILABLE: &str = "ApiUnavailable";
    /// A refresh the operator watched completed (event reason).
    pub const REFRESH_SUCCEEDED: &str = "RefreshSucceeded";
    /// Power BI answered 429: the operator waits as long as Retry-After says.
    pub const POWER_BI_THROTTLED: &str = "PowerBIThrottled";
    /// Power BI failed with a server error, a timeout or a malformed answer.
    pub const POWER_BI_UNAVAILABLE: &str = "PowerBIUnavailable";
    /// Xero's identity service was throttling or unavailable.
    pub const XERO_UNAVAILABLE: &str = "XeroUnavailable";
    /// Another refresh would exceed the capacity's daily refresh limit (scheduled ones count).
    pub const DAILY_LIMIT_REACHED: &str = "DailyLimitReached";
    /// The spec cannot be acted on (for example an unknown time zone); the message says why.
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// The status of a condition: `True`, `False` or `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The operator cannot tell yet.
    Unknown,
}

impl ConditionStatus {
    /// The wire value of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(holds: bool) -> Self {
        if holds { Self::True } else { Self::False }
    }
}

/// What [`set_condition`] did to the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionChange {
    /// The condition was not there before.
    Added,
    /// Its status changed (`lastTransitionTime` moved to now).
    Transitioned,
    /// Same status; reason, message or observedGeneration changed.
    Updated,
    /// Nothing changed.
    Unchanged,
}

impl ConditionChange {
    /// True for [`ConditionChange::Added`] and [`ConditionChange::Transitioned`], the changes an
    /// event reports.
    pub fn is_transition(self) -> bool {
        matches!(self, Self::Added | Self::Transitioned)
    }
}

/// Builds a condition of `type_` whose `lastTransitionTime` is `now`, in whole seconds as the API
/// server stores it (see [`super::status_time`]).
pub fn new_condition(
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation,
        last_transition_time: super::status_time(now.0),
    }
}

/// Sets `condition` in `conditions`, replacing the one of the same type.
///
/// `lastTransitionTime` is kept from the existing condition when the status is unchanged, and
/// taken from `condition` otherwise (build it with [`new_condition`] and the injected clock).
pub fn set_condition(conditions: &mut Vec<Condition>, condition: Condition) -> ConditionChange {
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == condition.type_) else {
        conditions.push(condition);
        return ConditionChange::Added;
    };
    if existing.status != condition.status {
        *existing = condition;
        return ConditionChange::Transitioned;
    }
    let unchanged = existing.reason == condition.reason
        && existing.message == condition.message
        && existing.observed_generation == condition.observed_generation;
    if unchanged {
        return ConditionChange::Unchanged;
    }
    let last_transition_time = existing.last_transition_time.clone();
    *existing = Condition {
        last_transition_time,
        ..condition
    };
    ConditionChange::Updated
}

/// The condition of `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition of `type_` is present with status `True`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True.as_str())
}

/// True when the condition of `type_` is `True` and was written for `generation`: what
/// `kubectl wait --for=condition=...` should mean for a controller that sets observedGeneration.
pub fn is_condition_true_for(conditions: &[Condition], type_: &str, generation: i64) -> bool {
    find_condition(conditions, type_).is_some_and(|c| {
        c.status == ConditionStatus::True.as_str() && c.observed_generation == Some(generation)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: ConditionStatus, reason: &str, generation: i64, now: i64) -> Condition {
        new_condition(READY, status, reason, "message", Some(generation), at(now))
    }

    #[test]
    fn adds_a_missing_condition() {
        let mut conditions = Vec::new();
        let change = set_condition(
            &mut conditions,
            ready(ConditionStatus::True, reason::RECONCILED, 1, 100),
        );
        assert_eq!(change, ConditionChange::Added);
        assert!(change.is_transition());
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].last_transition_time, at(100));
    }

    #[test]
    fn keeps_the_transition_time_when_the_status_is_unchanged() {
        let mut conditions = vec![ready(
            ConditionStatus::False,
            reason::REFRESH_FAILED,
            1,
            100,
        )];
        let change = set_condition(
            &mut conditions,
            ready(ConditionStatus::False, reason::RECOVERY_EXHAUSTED, 2, 200),
        );
        assert_eq!(change, ConditionChange::Updated);
        assert!(!change.is_transition());
        let ready = find_condition(&conditions, READY).unwrap();
        assert_eq!(ready.last_transition_time, at(100));
        assert_eq!(ready.reason, reason::RECOVERY_EXHAUSTED);
        assert_eq!(ready.observed_generation, Some(2));
    }

    #[test]
    fn moves_the_transition_time_when_the_status_changes() {
        let mut conditions = vec![ready(
            ConditionStatus::False,
            reason::REFRESH_FAILED,
            1,
            100,
        )];
        let change = set_condition(
            &mut conditions,
            ready(ConditionStatus::True, reason::RECONCILED, 1, 200),
        );
        assert_eq!(change, ConditionChange::Transitioned);
        assert_eq!(conditions[0].last_transition_time, at(200));
        assert_eq!(conditions[0].status, "True");
    }

    #[test]
    fn reports_unchanged_for_the_same_condition() {
        let mut conditions = vec![ready(ConditionStatus::True, reason::RECONCILED, 3, 100)];
        let change = set_condition(
            &mut conditions,
            ready(ConditionStatus::True, reason::RECONCILED, 3, 500),
        );
        assert_eq!(change, ConditionChange::Unchanged);
        assert_eq!(conditions[0].last_transition_time, at(100));
    }

    #[test]
    fn leaves_other_types_alone() {
        let mut conditions = vec![
            new_condition(
                STALLED,
                ConditionStatus::False,
                reason::RECONCILED,
                "",
                Some(1),
                at(50),
            ),
            ready(ConditionStatus::True, reason::RECONCILED, 1, 100),
        ];
        set_condition(
            &mut conditions,
            ready(ConditionStatus::False, reason::SECRET_NOT_FOUND, 1, 200),
        );
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0].type_, STALLED);
        assert_eq!(conditions[0].last_transition_time, at(50));
        assert!(!is_condition_true(&conditions, READY));
    }

    #[test]
    fn true_for_generation_needs_both() {
        let conditions = vec![ready(ConditionStatus::True, reason::RECONCILED, 2, 100)];
        assert!(is_condition_true(&conditions, READY));
        assert!(is_condition_true_for(&conditions, READY, 2));
        assert!(!is_condition_true_for(&conditions, READY, 3));
        assert!(!is_condition_true(&conditions, STALLED));
        assert_eq!(ConditionStatus::from(false), ConditionStatus::False);
    }
}
