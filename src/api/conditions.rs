//! Status conditions of a `XeroDataset`: their types, their reasons, and the helpers that keep
//! `lastTransitionTime` honest.
//!
//! Conditions are `metav1.Condition`s. Their reasons are [`super::Reason`]s, the words that also
//! name the event and the metric label for the same situation.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::Reason;

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

/// Builds a condition of `type_` whose `lastTransitionTime` is `now`, in whole seconds as the API
/// server stores it (see [`super::status_time`]).
pub fn new_condition(
    type_: &str,
    status: ConditionStatus,
    reason: Reason,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.as_str().to_owned(),
        message: super::printable(&message.into(), super::MAX_MESSAGE_CHARS),
        observed_generation,
        last_transition_time: super::status_time(now.0),
    }
}

/// Sets `condition` in `conditions`, replacing the one of the same type.
///
/// `lastTransitionTime` is kept from the existing condition when the status is unchanged, and
/// taken from `condition` otherwise (build it with [`new_condition`] and the injected clock).
pub fn set_condition(conditions: &mut Vec<Condition>, condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        None => conditions.push(condition),
        Some(existing) if existing.status != condition.status => *existing = condition,
        Some(existing) => {
            let last_transition_time = existing.last_transition_time.clone();
            *existing = Condition {
                last_transition_time,
                ..condition
            };
        }
    }
}

/// The condition of `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: ConditionStatus, reason: Reason, generation: i64, now: i64) -> Condition {
        new_condition(READY, status, reason, "message", Some(generation), at(now))
    }

    #[test]
    fn adds_a_missing_condition() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            ready(ConditionStatus::True, Reason::Reconciled, 1, 100),
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].reason, "Reconciled");
        assert_eq!(conditions[0].last_transition_time, at(100));
    }

    #[test]
    fn keeps_the_transition_time_when_the_status_is_unchanged() {
        let mut conditions = vec![ready(ConditionStatus::False, Reason::RefreshFailed, 1, 100)];
        set_condition(
            &mut conditions,
            ready(ConditionStatus::False, Reason::RecoveryExhausted, 2, 200),
        );
        let ready = find_condition(&conditions, READY).unwrap();
        assert_eq!(ready.last_transition_time, at(100));
        assert_eq!(ready.reason, "RecoveryExhausted");
        assert_eq!(ready.observed_generation, Some(2));
    }

    #[test]
    fn moves_the_transition_time_when_the_status_changes() {
        let mut conditions = vec![ready(ConditionStatus::False, Reason::RefreshFailed, 1, 100)];
        set_condition(
            &mut conditions,
            ready(ConditionStatus::True, Reason::Reconciled, 1, 200),
        );
        assert_eq!(conditions[0].last_transition_time, at(200));
        assert_eq!(conditions[0].status, "True");
    }

    #[test]
    fn leaves_other_types_alone() {
        let mut conditions = vec![
            new_condition(
                STALLED,
                ConditionStatus::False,
                Reason::Reconciled,
                "",
                Some(1),
                at(50),
            ),
            ready(ConditionStatus::True, Reason::Reconciled, 1, 100),
        ];
        set_condition(
            &mut conditions,
            ready(ConditionStatus::False, Reason::SecretNotFound, 1, 200),
        );
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0].type_, STALLED);
        assert_eq!(conditions[0].last_transition_time, at(50));
        assert_eq!(conditions[1].status, "False");
        assert_eq!(ConditionStatus::from(false), ConditionStatus::False);
    }
}
