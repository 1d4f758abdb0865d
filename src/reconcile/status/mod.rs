//! The status step, pure: from the old status and what this reconcile saw and did, the new status
//! (conditions along every path, Flux style) and the events for what changed. The time is the
//! outcome's, from the injected clock.

mod conditions;
mod events;

use jiff::Timestamp;

pub use events::{EventSpec, Severity};

use crate::api::conditions::{READY, find_condition};
use crate::api::{
    CredentialsStatus, LastRefresh, Reason, RecoveryStatus, RefreshIntent, RefreshIntentReason,
    XeroDatasetStatus, status_time,
};
use crate::reconcile::model::{
    Holdback, Intent, Memory, Outcome, RefreshRecord, RefreshState, RefreshType, TriggerReason,
};

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
        verified_for: status
            .credentials
            .as_ref()
            .and_then(|c| c.verified_for.clone()),
        intent: status.refresh_intent.as_ref().map(intent_from_status),
        slot_started: status.last_started_slot_time.as_ref().map(|t| t.0),
        schedule_updated: status.schedule_updated_time.as_ref().map(|t| t.0),
    }
}

fn intent_from_status(intent: &RefreshIntent) -> Intent {
    let value = intent.value.clone();
    Intent {
        trigger: match intent.reason {
            RefreshIntentReason::Requested => TriggerReason::Requested { value },
            RefreshIntentReason::RecoverFailure => {
                TriggerReason::RecoverFailure { request_id: value }
            }
        },
        at: intent.time.0,
        latest_known: intent.latest_known_request_id.clone(),
    }
}

/// The intent as the status keeps it; a slot's refresh is never recorded as one.
fn intent_status(intent: &Intent) -> Option<RefreshIntent> {
    let (reason, value) = match &intent.trigger {
        TriggerReason::Requested { value } => (RefreshIntentReason::Requested, value),
        TriggerReason::RecoverFailure { request_id } => {
            (RefreshIntentReason::RecoverFailure, request_id)
        }
        TriggerReason::Slot { .. } => return None,
    };
    Some(RefreshIntent {
        reason,
        value: value.clone(),
        time: status_time(intent.at),
        latest_known_request_id: intent.latest_known.clone(),
    })
}

/// The new status and the events for the changes from `old`.
pub fn build_status(
    old: Option<&XeroDatasetStatus>,
    outcome: &Outcome,
) -> (XeroDatasetStatus, Vec<EventSpec>) {
    let mut status = old.cloned().unwrap_or_default();
    let mut events = events::action_events(outcome);
    record_identity(&mut status, outcome);
    if let Some(history) = outcome.history.as_deref() {
        events.extend(record_history(&mut status, history, outcome));
    }
    events.extend(events::refused_request_event(outcome));
    record_plan(&mut status, outcome);
    record_credentials(&mut status, outcome);

    let old_ready_reason = old
        .and_then(|s| find_condition(&s.conditions, READY))
        .map(|c| c.reason.clone());
    conditions::set_conditions(&mut status, outcome);
    if let Some(ready) = find_condition(&status.conditions, READY)
        && old_ready_reason.as_deref() != Some(ready.reason.as_str())
        && let Some(reason) = Reason::parse(&ready.reason)
        && let Some(event) = events::ready_event(reason, &ready.message, outcome.failure.as_ref())
    {
        events.push(event);
    }
    (status, events)
}

/// The generation, the ids resolved and the annotations handled.
fn record_identity(status: &mut XeroDatasetStatus, outcome: &Outcome) {
    status.observed_generation = outcome.generation;
    if let Some(id) = &outcome.dataset_id {
        status.dataset_id = Some(id.clone());
    }
    if let Some(name) = &outcome.dataset_name {
        status.dataset_name = Some(name.clone());
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
}

/// The latest refresh (the one just started, else the newest in the history) and the last
/// success; the event when the latest refresh ended.
fn record_history(
    status: &mut XeroDatasetStatus,
    history: &[RefreshRecord],
    outcome: &Outcome,
) -> Option<EventSpec> {
    let latest = match &outcome.triggered_request_id {
        Some(id) => Some(triggered_record(id, outcome.now)),
        None => history.first().map(last_refresh),
    };
    let mut event = None;
    if let Some(latest) = latest {
        event = events::refresh_outcome_event(status.last_refresh.as_ref(), &latest);
        status.last_refresh = Some(latest);
    }
    if let Some(success) = history
        .iter()
        .find(|r| r.refresh.state == RefreshState::Completed)
        .and_then(|r| r.refresh.end_time.or(r.refresh.start_time))
    {
        status.last_successful_refresh_time = Some(status_time(success));
    }
    event
}

/// What the plan remembers: the next slot, the handled request, the recovery episode, when
/// credentials were applied.
fn record_plan(status: &mut XeroDatasetStatus, outcome: &Outcome) {
    let Some(plan) = &outcome.plan else {
        return;
    };
    status.next_refresh_time = plan.next_slot.map(status_time);
    if let Some(value) = &plan.handled_request {
        status.last_handled_refresh_at = Some(value.clone());
    }
    status.recovery = Some(recovery_status(
        &plan.memory,
        plan.holdback,
        outcome.history.as_deref(),
    ));
    let credentials = status
        .credentials
        .get_or_insert_with(CredentialsStatus::default);
    if let Some(applied) = plan.memory.credentials_applied {
        credentials.last_applied_time = Some(status_time(applied));
    }
    credentials.verified_for = plan.memory.verified_for.clone();
    status.refresh_intent = plan.memory.intent.as_ref().and_then(intent_status);
    if let Some(slot) = plan.memory.slot_started {
        status.last_started_slot_time = Some(status_time(slot));
    }
    if let Some(updated) = plan.memory.schedule_updated {
        status.schedule_updated_time = Some(status_time(updated));
    }
}

/// When the Xero access token expires and when the refresh token last rotated.
fn record_credentials(status: &mut XeroDatasetStatus, outcome: &Outcome) {
    if outcome.access_token_expires_at.is_none() && outcome.refresh_token_rotated_at.is_none() {
        return;
    }
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
            RefreshType::Scheduled => "Scheduled".into(),
            RefreshType::OnDemand => "OnDemand".into(),
            RefreshType::ViaApi => "ViaApi".into(),
            RefreshType::Other(other) => other.clone(),
        }),
        status: state_name(r.state).into(),
        start_time: r.start_time.map(status_time),
        end_time: r.end_time.map(status_time),
        error_code: record.error_code.clone(),
        error_message: record.error_message.clone(),
    }
}

pub(super) fn state_name(state: RefreshState) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions;
    use crate::reconcile::model::{Action, ApplyReason, Failure, Plan, Refresh, TriggerReason};
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
            now: ts("2026-11-25T09:00:00Z"),
            generation: Some(2),
            history: Some(history),
            plan: Some(plan),
            schedule_checked: true,
            ..Outcome::default()
        }
    }

    fn condition<'a>(status: &'a XeroDatasetStatus, type_: &str) -> (&'a str, Reason) {
        let c = conditions::find_condition(&status.conditions, type_).expect("condition");
        (
            c.status.as_str(),
            Reason::parse(&c.reason).expect("one of ours"),
        )
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
            ("True", Reason::Reconciled)
        );
        assert_eq!(
            condition(&status, conditions::STALLED),
            ("False", Reason::Reconciled)
        );
        assert_eq!(
            condition(&status, conditions::SCHEDULE_SYNCED),
            ("True", Reason::ScheduleInSync)
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
        later.now = ts("2026-11-25T08:05:00Z");
        let (_, events) = build_status(Some(&status), &later);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].reason, Reason::RefreshSucceeded);
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
            ("False", Reason::RefreshFailed)
        );
        assert_eq!(
            condition(&status, conditions::RECONCILING),
            ("True", Reason::RefreshFailed)
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
                .filter(|e| e.reason == Reason::RefreshFailed)
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
            ("True", Reason::RecoveryExhausted)
        );
        assert!(
            events
                .iter()
                .any(|e| e.reason == Reason::RecoveryExhausted && e.severity == Severity::Warning)
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
            ("False", Reason::RefreshInProgress)
        );
        assert_eq!(
            condition(&status, conditions::CREDENTIALS_VALID),
            ("True", Reason::CredentialsApplied)
        );
        let reasons: Vec<_> = events.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [Reason::CredentialsApplied, Reason::RefreshTriggered]
        );
    }

    #[test]
    fn a_rejected_refresh_token_needs_a_human() {
        let mut o = outcome(
            vec![record("f", RefreshState::Failed, "2026-11-25T06:01:00Z")],
            plan(None),
        );
        o.failure = Some(Failure {
            reason: Reason::XeroRefreshTokenRejected,
            message: "sign in again with xero-operator xero-login".into(),
            needs_human: true,
        });
        let (status, events) = build_status(None, &o);
        assert_eq!(
            condition(&status, conditions::CREDENTIALS_VALID),
            ("False", Reason::XeroRefreshTokenRejected)
        );
        assert_eq!(
            condition(&status, conditions::STALLED),
            ("True", Reason::XeroRefreshTokenRejected)
        );
        assert!(
            events
                .iter()
                .any(|e| e.reason == Reason::XeroRefreshTokenRejected)
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
            ("False", Reason::Suspended)
        );
        assert_eq!(
            condition(&status, conditions::STALLED),
            ("False", Reason::Suspended)
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
            verified_for: Some("3-00000000000000ff".into()),
            intent: Some(Intent {
                trigger: TriggerReason::Requested {
                    value: "2026-11-25T07:59:00Z".into(),
                },
                at: ts("2026-11-25T08:00:00Z"),
                latest_known: Some("r1".into()),
            }),
            slot_started: Some(ts("2026-11-25T06:00:00Z")),
            schedule_updated: Some(ts("2026-11-25T05:40:00Z")),
        };
        let mut p = plan(None);
        p.memory = memory.clone();
        let (status, _) = build_status(None, &outcome(vec![], p));
        assert_eq!(memory_from_status(Some(&status)), memory);
    }
}
