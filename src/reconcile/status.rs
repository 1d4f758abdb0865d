//! The status step, pure: from the old status and what this reconcile saw and did, the new status
//! (conditions along every path, Flux style) and the events for what changed.

use jiff::Timestamp;

use super::plan::{
    Action, ApplyReason, Holdback, Memory, Plan, Refresh, RefreshState, TriggerReason,
};
use crate::api::conditions::{self, ConditionStatus, new_condition, reason, set_condition};
use crate::api::{CredentialsStatus, LastRefresh, RecoveryStatus, XeroDatasetStatus, status_time};

/// Why a reconcile could not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A stable PascalCase reason (condition reason, event reason, metric label).
    pub reason: &'static str,
    /// What happened and, when a human must act, what to do. Never a secret.
    pub message: String,
    /// True when retrying cannot help until someone changes something (Stalled).
    pub needs_human: bool,
}

/// One refresh history entry with its error, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub refresh: Refresh,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// What one reconcile saw and did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub now: Option<Timestamp>,
    pub generation: Option<i64>,
    pub suspended: bool,
    pub dataset_id: Option<String>,
    pub xero_tenant_id: Option<String>,
    /// The refresh history read this time (newest first); `None` when it was not read.
    pub history: Option<Vec<RefreshRecord>>,
    /// The plan, with its memory and handled request corrected for actions that failed.
    pub plan: Option<Plan>,
    /// The actions that succeeded, in order.
    pub executed: Vec<Action>,
    /// The request id of the refresh the operator started.
    pub triggered_request_id: Option<String>,
    /// Whether Power BI's schedule was read (and so is known to be in sync unless updated).
    pub schedule_checked: bool,
    pub access_token_expires_at: Option<Timestamp>,
    pub refresh_token_rotated_at: Option<Timestamp>,
    /// A reconcile-requested-at value handled by this reconcile.
    pub handled_reconcile: Option<String>,
    /// A refresh-requested-at value answered without a refresh because of `failure`.
    pub refused_request: Option<String>,
    pub failure: Option<Failure>,
}

/// The severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// An event to publish on the XeroDataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub severity: Severity,
    pub reason: &'static str,
    pub message: String,
}

/// What the operator remembers from an earlier reconcile, read from the status.
pub fn memory_from_status(status: Option<&XeroDatasetStatus>) -> Memory {
    let Some(status) = status else {
        return Memory::default();
    };
    let recovery = status.recovery.clone().unwrap_or_default();
    Memory {
        handled_failure: recovery.last_handled_failure_request_id,
        attempts: u32::try_from(recovery.attempts_today).unwrap_or(0),
        last_attempt: recovery.last_attempt_time.map(|t| t.0),
        credentials_applied: status
            .credentials
            .as_ref()
            .and_then(|c| c.last_applied_time.as_ref())
            .map(|t| t.0),
    }
}

/// The new status and the events for the changes from `old`.
pub fn build_status(
    old: Option<&XeroDatasetStatus>,
    outcome: &Outcome,
) -> (XeroDatasetStatus, Vec<EventSpec>) {
    let now = outcome.now.unwrap_or_else(Timestamp::now);
    let mut status = old.cloned().unwrap_or_default();
    let mut events = Vec::new();
    status.observed_generation = outcome.generation;
    if let Some(id) = &outcome.dataset_id {
        status.dataset_id = Some(id.clone());
    }
    if let Some(id) = &outcome.xero_tenant_id {
        status.xero_tenant_id = Some(id.clone());
    }
    if let Some(value) = &outcome.handled_reconcile {
        status.last_handled_reconcile_at = Some(value.clone());
    }
    if let Some(value) = &outcome.refused_request {
        status.last_handled_refresh_at = Some(value.clone());
    }

    events.extend(action_events(outcome));
    let history = outcome.history.as_deref();
    if let Some(history) = history {
        let latest = match &outcome.triggered_request_id {
            Some(id) => Some(triggered_record(id, now)),
            None => history.first().map(last_refresh),
        };
        if let Some(latest) = latest {
            events.extend(refresh_outcome_event(status.last_refresh.as_ref(), &latest));
            status.last_refresh = Some(latest);
        }
        if let Some(success) = history
            .iter()
            .find(|r| r.refresh.state == RefreshState::Completed)
            .and_then(|r| r.refresh.end_time.or(r.refresh.start_time))
        {
            status.last_successful_refresh_time = Some(status_time(success));
        }
    }

    if let Some(plan) = &outcome.plan {
        let requested_refresh_started = outcome
            .executed
            .iter()
            .any(|a| matches!(a, Action::TriggerRefresh(TriggerReason::Requested { .. })));
        if let Some(value) = plan
            .handled_request
            .as_ref()
            .filter(|_| !requested_refresh_started)
            && plan.holdback == Some(Holdback::DailyLimitReached)
        {
            events.push(EventSpec {
                severity: Severity::Warning,
                reason: reason::DAILY_LIMIT_REACHED,
                message: format!(
                    "the refresh requested at {value} was not started: another refresh today would exceed the capacity's daily limit (scheduled refreshes count)"
                ),
            });
        }
        status.next_refresh_time = plan.next_slot.map(status_time);
        if let Some(value) = &plan.handled_request {
            status.last_handled_refresh_at = Some(value.clone());
        }
        status.recovery = Some(recovery_status(&plan.memory, plan.holdback, history));
        let credentials = status
            .credentials
            .get_or_insert_with(CredentialsStatus::default);
        if let Some(applied) = plan.memory.credentials_applied {
            credentials.last_applied_time = Some(status_time(applied));
        }
    }
    if outcome.access_token_expires_at.is_some() || outcome.refresh_token_rotated_at.is_some() {
        let credentials = status
            .credentials
            .get_or_insert_with(CredentialsStatus::default);
        if let Some(at) = outcome.access_token_expires_at {
            credentials.access_token_expires_at = Some(status_time(at));
        }
        if let Some(at) = outcome.refresh_token_rotated_at {
            credentials.refresh_token_rotated_at = Some(status_time(at));
        }
    }

    let old_ready_reason = old
        .and_then(|s| conditions::find_condition(&s.conditions, conditions::READY))
        .map(|c| c.reason.clone());
    set_conditions(&mut status, outcome, now);
    let ready = conditions::find_condition(&status.conditions, conditions::READY);
    if let Some(ready) = ready
        && old_ready_reason.as_deref() != Some(ready.reason.as_str())
        && let Some(event) = ready_event(ready.reason.as_str(), &ready.message, outcome)
    {
        events.push(event);
    }
    (status, events)
}

fn triggered_record(request_id: &str, now: Timestamp) -> LastRefresh {
    LastRefresh {
        request_id: request_id.to_owned(),
        refresh_type: Some("ViaApi".into()),
        status: "Unknown".into(),
        start_time: Some(status_time(now)),
        ..LastRefresh::default()
    }
}

fn last_refresh(record: &RefreshRecord) -> LastRefresh {
    let r = &record.refresh;
    LastRefresh {
        request_id: r.request_id.clone(),
        refresh_type: Some(match &r.refresh_type {
            super::plan::RefreshType::Scheduled => "Scheduled".into(),
            super::plan::RefreshType::OnDemand => "OnDemand".into(),
            super::plan::RefreshType::ViaApi => "ViaApi".into(),
            super::plan::RefreshType::Other(other) => other.clone(),
        }),
        status: state_name(r.state).into(),
        start_time: r.start_time.map(status_time),
        end_time: r.end_time.map(status_time),
        error_code: record.error_code.clone(),
        error_message: record.error_message.clone(),
    }
}

fn state_name(state: RefreshState) -> &'static str {
    match state {
        RefreshState::Running => "Unknown",
        RefreshState::Completed => "Completed",
        RefreshState::Failed => "Failed",
        RefreshState::Cancelled => "Cancelled",
        RefreshState::Disabled => "Disabled",
    }
}

fn recovery_status(
    memory: &Memory,
    holdback: Option<Holdback>,
    history: Option<&[RefreshRecord]>,
) -> RecoveryStatus {
    let consecutive_failures = history
        .map(|h| {
            h.iter()
                .skip_while(|r| r.refresh.state == RefreshState::Running)
                .take_while(|r| r.refresh.state == RefreshState::Failed)
                .count()
        })
        .unwrap_or(0);
    RecoveryStatus {
        attempts_today: i32::try_from(memory.attempts).unwrap_or(i32::MAX),
        consecutive_failures: i32::try_from(consecutive_failures).unwrap_or(i32::MAX),
        last_attempt_time: memory.last_attempt.map(status_time),
        next_attempt_time: match holdback {
            Some(Holdback::Backoff(end)) => Some(status_time(end)),
            _ => None,
        },
        last_handled_failure_request_id: memory.handled_failure.clone(),
    }
}

fn action_events(outcome: &Outcome) -> Vec<EventSpec> {
    outcome
        .executed
        .iter()
        .map(|action| match action {
            Action::UpdateSchedule(update) => EventSpec {
                severity: Severity::Normal,
                reason: reason::SCHEDULE_UPDATED,
                message: match update {
                    super::plan::ScheduleUpdate::Disable => {
                        "switched the refresh schedule off".into()
                    }
                    super::plan::ScheduleUpdate::Set(s) => format!(
                        "set the refresh schedule to {} at {} ({}), enabled",
                        s.day_names().join(", "),
                        s.time_strings().join(", "),
                        s.time_zone_id
                    ),
                },
            },
            Action::ApplyCredentials(why) => EventSpec {
                severity: Severity::Normal,
                reason: reason::CREDENTIALS_APPLIED,
                message: match why {
                    ApplyReason::BeforeSlot(slot) => {
                        format!(
                            "applied fresh Xero credentials before the scheduled refresh at {slot}"
                        )
                    }
                    ApplyReason::BeforeRefresh => {
                        "applied fresh Xero credentials before a refresh".into()
                    }
                },
            },
            Action::TriggerRefresh(why) => EventSpec {
                severity: Severity::Normal,
                reason: reason::REFRESH_TRIGGERED,
                message: {
                    let id = outcome.triggered_request_id.as_deref().unwrap_or("unknown");
                    match why {
                        TriggerReason::RecoverFailure { request_id } => {
                            format!(
                                "started refresh {id} to recover from failed refresh {request_id}"
                            )
                        }
                        TriggerReason::Requested { value } => {
                            format!("started refresh {id} as requested at {value}")
                        }
                    }
                },
            },
        })
        .collect()
}

fn refresh_outcome_event(old: Option<&LastRefresh>, new: &LastRefresh) -> Option<EventSpec> {
    let same = old.is_some_and(|o| o.request_id == new.request_id && o.status == new.status);
    // A completed refresh found by the first reconcile is history, not news (and thousands of
    // datasets starting up would each post one).
    if same || (old.is_none() && new.status == "Completed") {
        return None;
    }
    match new.status.as_str() {
        "Completed" => Some(EventSpec {
            severity: Severity::Normal,
            reason: reason::REFRESH_SUCCEEDED,
            message: format!("refresh {} completed", new.request_id),
        }),
        "Failed" => Some(EventSpec {
            severity: Severity::Warning,
            reason: reason::REFRESH_FAILED,
            message: format!(
                "refresh {} failed: {}",
                new.request_id,
                error_text(new.error_code.as_deref(), new.error_message.as_deref())
            ),
        }),
        _ => None,
    }
}

fn error_text(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        (None, Some(message)) => message.to_owned(),
        (None, None) => "no error details".to_owned(),
    }
}

fn ready_event(ready_reason: &str, message: &str, outcome: &Outcome) -> Option<EventSpec> {
    if let Some(failure) = &outcome.failure {
        return Some(EventSpec {
            severity: Severity::Warning,
            reason: failure.reason,
            message: failure.message.clone(),
        });
    }
    let (severity, reason) = match ready_reason {
        reason::SUSPENDED => (Severity::Normal, reason::SUSPENDED),
        reason::RECOVERY_EXHAUSTED => (Severity::Warning, reason::RECOVERY_EXHAUSTED),
        reason::DAILY_LIMIT_REACHED => (Severity::Warning, reason::DAILY_LIMIT_REACHED),
        _ => return None,
    };
    Some(EventSpec {
        severity,
        reason,
        message: message.to_owned(),
    })
}

/// Failure reasons that concern the credentials.
fn is_credentials_reason(reason: &str) -> bool {
    [
        reason::XERO_REFRESH_TOKEN_REJECTED,
        reason::SECRET_NOT_FOUND,
        reason::SECRET_KEY_MISSING,
        reason::POWER_BI_UNAUTHORIZED,
    ]
    .contains(&reason)
}

fn set_conditions(status: &mut XeroDatasetStatus, outcome: &Outcome, now: Timestamp) {
    let generation = outcome.generation;
    let has_credentials_condition =
        conditions::find_condition(&status.conditions, conditions::CREDENTIALS_VALID).is_some();
    let mut set = |type_: &str, state: ConditionStatus, why: &str, message: String| {
        set_condition(
            &mut status.conditions,
            new_condition(type_, state, why, message, generation, status_time(now)),
        );
    };
    use ConditionStatus::{False, True, Unknown};

    if outcome.suspended {
        set(
            conditions::READY,
            False,
            reason::SUSPENDED,
            "spec.suspend is true: the operator changes nothing".into(),
        );
        set(
            conditions::RECONCILING,
            False,
            reason::SUSPENDED,
            "suspended".into(),
        );
        set(
            conditions::STALLED,
            False,
            reason::SUSPENDED,
            "suspended".into(),
        );
        return;
    }

    let failure = outcome.failure.as_ref();
    let executed = |pred: fn(&Action) -> bool| outcome.executed.iter().any(pred);

    // ScheduleSynced
    if executed(|a| matches!(a, Action::UpdateSchedule(_))) {
        set(
            conditions::SCHEDULE_SYNCED,
            True,
            reason::SCHEDULE_UPDATED,
            "the operator updated Power BI's refresh schedule".into(),
        );
    } else if let Some(f) = failure.filter(|_| {
        outcome
            .plan
            .as_ref()
            .is_some_and(|p| matches!(p.actions.first(), Some(Action::UpdateSchedule(_))))
    }) {
        set(
            conditions::SCHEDULE_SYNCED,
            False,
            f.reason,
            f.message.clone(),
        );
    } else if outcome.schedule_checked {
        set(
            conditions::SCHEDULE_SYNCED,
            True,
            reason::SCHEDULE_IN_SYNC,
            "Power BI's refresh schedule matches spec.schedule".into(),
        );
    }

    // CredentialsValid
    if let Some(f) = failure.filter(|f| is_credentials_reason(f.reason)) {
        set(
            conditions::CREDENTIALS_VALID,
            False,
            f.reason,
            f.message.clone(),
        );
    } else if executed(|a| matches!(a, Action::ApplyCredentials(_))) {
        set(
            conditions::CREDENTIALS_VALID,
            True,
            reason::CREDENTIALS_APPLIED,
            "fresh Xero credentials were applied to the dataset".into(),
        );
    } else if !has_credentials_condition {
        set(
            conditions::CREDENTIALS_VALID,
            Unknown,
            reason::PROGRESSING,
            "credentials are applied before the next scheduled or triggered refresh".into(),
        );
    }

    // RefreshSucceeded: the latest finished refresh.
    let history = outcome.history.as_deref();
    let latest_finished =
        history.and_then(|h| h.iter().find(|r| r.refresh.state != RefreshState::Running));
    let refreshing = outcome.triggered_request_id.is_some()
        || history
            .and_then(|h| h.first())
            .is_some_and(|r| r.refresh.state == RefreshState::Running);
    if let Some(history) = history {
        match latest_finished {
            Some(r) if r.refresh.state == RefreshState::Failed => set(
                conditions::REFRESH_SUCCEEDED,
                False,
                reason::REFRESH_FAILED,
                format!(
                    "refresh {} failed: {}",
                    r.refresh.request_id,
                    error_text(r.error_code.as_deref(), r.error_message.as_deref())
                ),
            ),
            Some(r) => set(
                conditions::REFRESH_SUCCEEDED,
                True,
                reason::REFRESH_COMPLETED,
                format!(
                    "refresh {} {}",
                    r.refresh.request_id,
                    state_name(r.refresh.state).to_lowercase()
                ),
            ),
            None if history.is_empty() && !refreshing => set(
                conditions::REFRESH_SUCCEEDED,
                Unknown,
                reason::NO_REFRESH_YET,
                "the dataset has no refresh history yet".into(),
            ),
            None => set(
                conditions::REFRESH_SUCCEEDED,
                Unknown,
                reason::REFRESH_IN_PROGRESS,
                "the first refresh is running".into(),
            ),
        }
    }

    // Ready, Reconciling, Stalled.
    let failed_latest = latest_finished.is_some_and(|r| r.refresh.state == RefreshState::Failed);
    let holdback = outcome.plan.as_ref().and_then(|p| p.holdback);
    let (ready, ready_reason, ready_message, reconciling, stalled) = if let Some(f) = failure {
        (
            False,
            f.reason,
            f.message.clone(),
            !f.needs_human,
            f.needs_human,
        )
    } else if failed_latest && refreshing {
        (
            False,
            reason::REFRESH_IN_PROGRESS,
            "a refresh to recover from the failed one is running".into(),
            true,
            false,
        )
    } else if failed_latest {
        match holdback {
            Some(Holdback::AttemptsExhausted) => (
                False,
                reason::RECOVERY_EXHAUSTED,
                "the latest refresh failed and recovery.maxAttemptsPerDay attempts are used up for today; the count resets at midnight in the schedule's time zone. Fix the cause, then annotate xero-operator.dev/refresh-requested-at to retry now".into(),
                false,
                true,
            ),
            Some(Holdback::DailyLimitReached) => (
                False,
                reason::DAILY_LIMIT_REACHED,
                "the latest refresh failed and another refresh would exceed the capacity's daily refresh limit (scheduled refreshes count); recovery resumes tomorrow".into(),
                false,
                true,
            ),
            Some(Holdback::Backoff(end)) => (
                False,
                reason::REFRESH_FAILED,
                format!("the latest refresh failed; next recovery attempt at {end}"),
                true,
                false,
            ),
            _ => (False, reason::REFRESH_FAILED, "the latest refresh failed".into(), true, false),
        }
    } else {
        let message = match outcome.plan.as_ref().and_then(|p| p.next_slot) {
            Some(next) => format!("refreshing as scheduled; next refresh at {next}"),
            None => "refreshing as specified; no scheduled refresh".into(),
        };
        (True, reason::RECONCILED, message, refreshing, false)
    };
    set(
        conditions::READY,
        ready,
        ready_reason,
        ready_message.clone(),
    );
    if reconciling {
        let why = if refreshing {
            reason::REFRESH_IN_PROGRESS
        } else {
            ready_reason
        };
        set(conditions::RECONCILING, True, why, ready_message.clone());
    } else {
        set(
            conditions::RECONCILING,
            False,
            reason::RECONCILED,
            "nothing in progress".into(),
        );
    }
    if stalled {
        set(conditions::STALLED, True, ready_reason, ready_message);
    } else {
        set(
            conditions::STALLED,
            False,
            reason::RECONCILED,
            "making progress".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan::RefreshType;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn record(id: &str, state: RefreshState, start: &str) -> RefreshRecord {
        RefreshRecord {
            refresh: Refresh {
                request_id: id.into(),
                refresh_type: RefreshType::Scheduled,
                state,
                start_time: Some(ts(start)),
                end_time: (state != RefreshState::Running).then(|| ts(start)),
            },
            error_code: (state == RefreshState::Failed)
                .then(|| "DMTS_OAuthTokenRefreshFailedError".into()),
            error_message: None,
        }
    }

    fn plan(holdback: Option<Holdback>) -> Plan {
        Plan {
            actions: vec![],
            holdback,
            memory: Memory::default(),
            handled_request: None,
            refreshes_today: 1,
            next_slot: Some(ts("2026-11-25T12:30:00Z")),
            requeue_after: std::time::Duration::from_secs(60),
        }
    }

    fn outcome(history: Vec<RefreshRecord>, plan: Plan) -> Outcome {
        Outcome {
            now: Some(ts("2026-11-25T09:00:00Z")),
            generation: Some(2),
            history: Some(history),
            plan: Some(plan),
            schedule_checked: true,
            ..Outcome::default()
        }
    }

    fn condition<'a>(status: &'a XeroDatasetStatus, type_: &str) -> (&'a str, &'a str) {
        let c = conditions::find_condition(&status.conditions, type_).expect("condition");
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn healthy_dataset_is_ready_for_its_generation() {
        let (status, events) = build_status(
            None,
            &outcome(
                vec![record("a", RefreshState::Completed, "2026-11-25T06:01:00Z")],
                plan(None),
            ),
        );
        assert_eq!(
            condition(&status, conditions::READY),
            ("True", reason::RECONCILED)
        );
        assert_eq!(
            condition(&status, conditions::STALLED),
            ("False", reason::RECONCILED)
        );
        assert_eq!(
            condition(&status, conditions::SCHEDULE_SYNCED),
            ("True", reason::SCHEDULE_IN_SYNC)
        );
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(2))
        );
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            status.last_successful_refresh_time,
            Some(Time(ts("2026-11-25T06:01:00Z")))
        );
        // A completed refresh found at the first look is history: no event.
        assert!(events.is_empty(), "{events:?}");
        // A refresh that completes later is news.
        let mut later = outcome(
            vec![record("b", RefreshState::Completed, "2026-11-25T08:00:00Z")],
            plan(None),
        );
        later.now = Some(ts("2026-11-25T08:05:00Z"));
        let (_, events) = build_status(Some(&status), &later);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].reason, reason::REFRESH_SUCCEEDED);
    }

    #[test]
    fn an_unchanged_situation_gives_no_events_and_the_same_status() {
        let o = outcome(
            vec![record("a", RefreshState::Completed, "2026-11-25T06:01:00Z")],
            plan(None),
        );
        let (first, _) = build_status(None, &o);
        let (second, events) = build_status(Some(&first), &o);
        assert_eq!(first, second);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn a_failed_refresh_is_reported_once() {
        let o = outcome(
            vec![record("f", RefreshState::Failed, "2026-11-25T06:01:00Z")],
            plan(Some(Holdback::Backoff(ts("2026-11-25T09:05:00Z")))),
        );
        let (status, events) = build_status(None, &o);
        assert_eq!(
            condition(&status, conditions::READY),
            ("False", reason::REFRESH_FAILED)
        );
        assert_eq!(
            condition(&status, conditions::RECONCILING),
            ("True", reason::REFRESH_FAILED)
        );
        assert_eq!(
            status
                .recovery
                .as_ref()
                .and_then(|r| r.next_attempt_time.clone()),
            Some(Time(ts("2026-11-25T09:05:00Z")))
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| e.reason == reason::REFRESH_FAILED)
                .count(),
            1
        );
        let (_, again) = build_status(Some(&status), &o);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn exhausted_recovery_stalls_with_advice() {
        let o = outcome(
            vec![record("f", RefreshState::Failed, "2026-11-25T06:01:00Z")],
            plan(Some(Holdback::AttemptsExhausted)),
        );
        let (status, events) = build_status(None, &o);
        assert_eq!(
            condition(&status, conditions::STALLED),
            ("True", reason::RECOVERY_EXHAUSTED)
        );
        assert!(
            events
                .iter()
                .any(|e| e.reason == reason::RECOVERY_EXHAUSTED && e.severity == Severity::Warning)
        );
    }

    #[test]
    fn a_triggered_refresh_shows_as_running_with_its_request_id() {
        let mut o = outcome(
            vec![record("f", RefreshState::Failed, "2026-11-25T06:01:00Z")],
            plan(None),
        );
        o.executed = vec![
            Action::ApplyCredentials(ApplyReason::BeforeRefresh),
            Action::TriggerRefresh(TriggerReason::RecoverFailure {
                request_id: "f".into(),
            }),
        ];
        o.triggered_request_id = Some("r2".into());
        let (status, events) = build_status(None, &o);
        let last = status.last_refresh.clone().expect("last refresh");
        assert_eq!(
            (last.request_id.as_str(), last.status.as_str()),
            ("r2", "Unknown")
        );
        assert_eq!(
            condition(&status, conditions::READY),
            ("False", reason::REFRESH_IN_PROGRESS)
        );
        assert_eq!(
            condition(&status, conditions::CREDENTIALS_VALID),
            ("True", reason::CREDENTIALS_APPLIED)
        );
        let reasons: Vec<_> = events.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [reason::CREDENTIALS_APPLIED, reason::REFRESH_TRIGGERED]
        );
    }

    #[test]
    fn a_rejected_refresh_token_needs_a_human() {
        let mut o = outcome(
            vec![record("f", RefreshState::Failed, "2026-11-25T06:01:00Z")],
            plan(None),
        );
        o.failure = Some(Failure {
            reason: reason::XERO_REFRESH_TOKEN_REJECTED,
            message: "sign in again with xero-operator xero-login".into(),
            needs_human: true,
        });
        let (status, events) = build_status(None, &o);
        assert_eq!(
            condition(&status, conditions::CREDENTIALS_VALID),
            ("False", reason::XERO_REFRESH_TOKEN_REJECTED)
        );
        assert_eq!(
            condition(&status, conditions::STALLED),
            ("True", reason::XERO_REFRESH_TOKEN_REJECTED)
        );
        assert!(
            events
                .iter()
                .any(|e| e.reason == reason::XERO_REFRESH_TOKEN_REJECTED)
        );
    }

    #[test]
    fn suspended_is_not_ready_and_not_stalled() {
        let o = Outcome {
            suspended: true,
            generation: Some(3),
            ..Outcome::default()
        };
        let (status, events) = build_status(None, &o);
        assert_eq!(
            condition(&status, conditions::READY),
            ("False", reason::SUSPENDED)
        );
        assert_eq!(
            condition(&status, conditions::STALLED),
            ("False", reason::SUSPENDED)
        );
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn memory_round_trips_through_the_status() {
        let memory = Memory {
            handled_failure: Some("f".into()),
            attempts: 2,
            last_attempt: Some(ts("2026-11-25T08:00:00Z")),
            credentials_applied: Some(ts("2026-11-25T08:00:00Z")),
        };
        let mut p = plan(None);
        p.memory = memory.clone();
        let (status, _) = build_status(None, &outcome(vec![], p));
        assert_eq!(memory_from_status(Some(&status)), memory);
    }
}
