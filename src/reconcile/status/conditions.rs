//! The conditions of one reconcile, pure: one function per condition, each from the outcome
//! alone. A condition a reconcile cannot judge (the schedule when it was not read) is left as
//! it was.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::events::error_text;
use super::state_name;
use crate::api::conditions::{
    self as types, ConditionStatus, find_condition, new_condition, set_condition,
};
use crate::api::{Reason, SlotStarter, XeroDatasetStatus, status_time};
use crate::reconcile::model::{Action, Failure, Holdback, Outcome, RefreshRecord, RefreshState};

use ConditionStatus::{False, True, Unknown};

/// A condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    pub status: ConditionStatus,
    pub reason: Reason,
    pub message: String,
}

fn verdict(status: ConditionStatus, reason: Reason, message: impl Into<String>) -> Verdict {
    Verdict {
        status,
        reason,
        message: message.into(),
    }
}

/// Ready with the two kstatus conditions that follow from it.
pub(super) struct Readiness {
    pub ready: Verdict,
    pub reconciling: bool,
    pub stalled: bool,
}

/// Sets every condition the outcome lets the operator judge.
pub(super) fn set_conditions(status: &mut XeroDatasetStatus, outcome: &Outcome) {
    let known_credentials = find_condition(&status.conditions, types::CREDENTIALS_VALID).is_some();
    let mut set = |type_: &str, v: Verdict| {
        set_condition(&mut status.conditions, condition(type_, v, outcome));
    };
    if outcome.suspended {
        set(
            types::READY,
            verdict(
                False,
                Reason::Suspended,
                "spec.suspend is true: the operator changes nothing",
            ),
        );
        set(
            types::RECONCILING,
            verdict(False, Reason::Suspended, "suspended"),
        );
        set(
            types::STALLED,
            verdict(False, Reason::Suspended, "suspended"),
        );
        return;
    }
    if let Some(v) = schedule_synced(outcome) {
        set(types::SCHEDULE_SYNCED, v);
    }
    if let Some(v) = credentials_valid(outcome, known_credentials) {
        set(types::CREDENTIALS_VALID, v);
    }
    if let Some(v) = refresh_succeeded(outcome) {
        set(types::REFRESH_SUCCEEDED, v);
    }
    let readiness = readiness(outcome);
    set(types::READY, readiness.ready.clone());
    set(
        types::RECONCILING,
        reconciling(&readiness, refreshing(outcome)),
    );
    set(types::STALLED, stalled(&readiness));
}

fn condition(type_: &str, v: Verdict, outcome: &Outcome) -> Condition {
    new_condition(
        type_,
        v.status,
        v.reason,
        v.message,
        outcome.generation,
        status_time(outcome.now),
    )
}

fn executed(outcome: &Outcome, pred: fn(&Action) -> bool) -> bool {
    outcome.executed.iter().any(pred)
}

/// Updated, failed to update, or found in sync; unknown when the schedule was not read.
pub(super) fn schedule_synced(outcome: &Outcome) -> Option<Verdict> {
    let update_planned = outcome
        .plan
        .as_ref()
        .is_some_and(|p| matches!(p.actions.first(), Some(Action::UpdateSchedule(_))));
    if executed(outcome, |a| matches!(a, Action::UpdateSchedule(_))) {
        Some(verdict(
            True,
            Reason::ScheduleUpdated,
            "the operator updated Power BI's refresh schedule",
        ))
    } else if let Some(f) = outcome.failure.as_ref().filter(|_| update_planned) {
        Some(verdict(False, f.reason, f.message.clone()))
    } else if outcome.schedule_checked {
        Some(verdict(
            True,
            Reason::ScheduleInSync,
            match outcome.started_by {
                SlotStarter::PowerBi => "Power BI's refresh schedule matches spec.schedule",
                SlotStarter::Operator => {
                    "Power BI's refresh schedule is off: the operator starts the refreshes of spec.schedule"
                }
            },
        ))
    } else {
        None
    }
}

/// False on a credentials failure, true once credentials were applied, unknown until then.
pub(super) fn credentials_valid(outcome: &Outcome, known: bool) -> Option<Verdict> {
    if let Some(f) = outcome
        .failure
        .as_ref()
        .filter(|f| f.reason.concerns_credentials())
    {
        Some(verdict(False, f.reason, f.message.clone()))
    } else if executed(outcome, |a| matches!(a, Action::ApplyCredentials(_))) {
        Some(verdict(
            True,
            Reason::CredentialsApplied,
            "fresh Xero credentials were applied to the dataset",
        ))
    } else if !known {
        Some(verdict(
            Unknown,
            Reason::Progressing,
            "credentials are applied before the next scheduled or triggered refresh",
        ))
    } else {
        None
    }
}

/// The latest finished refresh; unknown while there is none.
pub(super) fn refresh_succeeded(outcome: &Outcome) -> Option<Verdict> {
    let history = outcome.history.as_deref()?;
    Some(match latest_finished(outcome) {
        Some(r) if r.refresh.state == RefreshState::Failed => verdict(
            False,
            Reason::RefreshFailed,
            format!(
                "refresh {} failed: {}",
                r.refresh.request_id,
                error_text(r.error_code.as_deref(), r.error_message.as_deref())
            ),
        ),
        Some(r) => verdict(
            True,
            Reason::RefreshCompleted,
            format!(
                "refresh {} {}",
                r.refresh.request_id,
                state_name(r.refresh.state).to_lowercase()
            ),
        ),
        None if history.is_empty() && !refreshing(outcome) => verdict(
            Unknown,
            Reason::NoRefreshYet,
            "the dataset has no refresh history yet",
        ),
        None => verdict(
            Unknown,
            Reason::RefreshInProgress,
            "the first refresh is running",
        ),
    })
}

/// Ready: the failure if any, else a failed latest refresh and what recovery does about it,
/// else reconciled.
pub(super) fn readiness(outcome: &Outcome) -> Readiness {
    if let Some(f) = &outcome.failure {
        return failure_readiness(f);
    }
    let failed_latest =
        latest_finished(outcome).is_some_and(|r| r.refresh.state == RefreshState::Failed);
    if failed_latest && refreshing(outcome) {
        return progress(
            Reason::RefreshInProgress,
            "a refresh to recover from the failed one is running".into(),
        );
    }
    if failed_latest {
        return match outcome.plan.as_ref().and_then(|p| p.holdback) {
            Some(Holdback::AttemptsExhausted) => stall(
                Reason::RecoveryExhausted,
                "the latest refresh failed and recovery.maxAttemptsPerDay attempts are used up for today; the count resets at midnight in the schedule's time zone. Fix the cause, then annotate xero-operator.dev/refresh-requested-at to retry now",
            ),
            Some(Holdback::DailyLimitReached) => stall(
                Reason::DailyLimitReached,
                "the latest refresh failed and another refresh would exceed the capacity's daily refresh limit (scheduled refreshes count); recovery resumes tomorrow",
            ),
            Some(Holdback::Backoff(end)) => progress(
                Reason::RefreshFailed,
                format!("the latest refresh failed; next recovery attempt at {end}"),
            ),
            _ => progress(Reason::RefreshFailed, "the latest refresh failed".into()),
        };
    }
    if let Some(Holdback::SlotOverDailyLimit(slot)) = outcome.plan.as_ref().and_then(|p| p.holdback)
    {
        return stall(
            Reason::DailyLimitReached,
            &format!(
                "the refresh of the slot at {slot} was not started: the capacity's daily refresh limit is used up today (refreshes started through the API and recovery refreshes count); the slots resume tomorrow"
            ),
        );
    }
    let message = match outcome.plan.as_ref().and_then(|p| p.next_slot) {
        Some(next) => format!("refreshing as scheduled; next refresh at {next}"),
        None => "refreshing as specified; no scheduled refresh".into(),
    };
    Readiness {
        ready: verdict(True, Reason::Reconciled, message),
        reconciling: refreshing(outcome),
        stalled: false,
    }
}

fn failure_readiness(f: &Failure) -> Readiness {
    Readiness {
        ready: verdict(False, f.reason, f.message.clone()),
        reconciling: !f.needs_human,
        stalled: f.needs_human,
    }
}

fn progress(reason: Reason, message: String) -> Readiness {
    Readiness {
        ready: verdict(False, reason, message),
        reconciling: true,
        stalled: false,
    }
}

fn stall(reason: Reason, message: &str) -> Readiness {
    Readiness {
        ready: verdict(False, reason, message),
        reconciling: false,
        stalled: true,
    }
}

/// kstatus Reconciling: true while the operator works towards the desired state.
fn reconciling(readiness: &Readiness, refreshing: bool) -> Verdict {
    if !readiness.reconciling {
        return verdict(False, Reason::Reconciled, "nothing in progress");
    }
    let reason = if refreshing {
        Reason::RefreshInProgress
    } else {
        readiness.ready.reason
    };
    verdict(True, reason, readiness.ready.message.clone())
}

/// kstatus Stalled: true when only a person can make progress.
fn stalled(readiness: &Readiness) -> Verdict {
    if readiness.stalled {
        verdict(
            True,
            readiness.ready.reason,
            readiness.ready.message.clone(),
        )
    } else {
        verdict(False, Reason::Reconciled, "making progress")
    }
}

fn latest_finished(outcome: &Outcome) -> Option<&RefreshRecord> {
    outcome
        .history
        .as_deref()?
        .iter()
        .find(|r| r.refresh.state != RefreshState::Running)
}

/// Whether a refresh runs: one the operator just started, or the newest in the history.
fn refreshing(outcome: &Outcome) -> bool {
    outcome.triggered_request_id.is_some()
        || outcome
            .history
            .as_deref()
            .and_then(|h| h.first())
            .is_some_and(|r| r.refresh.state == RefreshState::Running)
}
