//! The events of one reconcile, pure: what the operator did, refreshes that ended, and changes
//! of the Ready reason. Events fire on transitions only. Each event names what it is about (a
//! refresh, a slot), so that events about different refreshes never merge into one series.

use crate::api::{LastRefresh, Reason};
use crate::reconcile::model::{
    Action, ApplyReason, Failure, Holdback, Outcome, ScheduleUpdate, TriggerReason,
};

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
    pub reason: Reason,
    pub message: String,
    /// What the event is about (a refresh's request id, a slot). Repeats of one reason about
    /// the same thing (or about nothing in particular) aggregate into one series; about
    /// different things they stay apart.
    pub about: Option<String>,
}

impl EventSpec {
    fn normal(reason: Reason, message: String, about: Option<String>) -> Self {
        EventSpec {
            severity: Severity::Normal,
            reason,
            message,
            about,
        }
    }

    fn warning(reason: Reason, message: String, about: Option<String>) -> Self {
        EventSpec {
            severity: Severity::Warning,
            reason,
            message,
            about,
        }
    }

    /// The key events aggregate on besides their reason: the reason, then what it is about.
    pub fn series_action(&self) -> String {
        let action = match &self.about {
            Some(about) => format!("{}/{about}", self.reason),
            None => self.reason.as_str().to_owned(),
        };
        // The API server allows 128 characters.
        action.chars().take(128).collect()
    }
}

/// One event per action that was carried out, except a passing chain check: it changes
/// nothing a person would look for (the status shows it in `credentials.verifiedFor`), and
/// thousands of datasets starting up would each post one. A failing check is an event through
/// its Ready reason.
pub(super) fn action_events(outcome: &Outcome) -> Vec<EventSpec> {
    let triggered = outcome.triggered_request_id.as_deref();
    outcome
        .executed
        .iter()
        .filter_map(|action| action_event(action, triggered))
        .collect()
}

/// The event of one action carried out; `triggered` is the refresh the operator started.
fn action_event(action: &Action, triggered: Option<&str>) -> Option<EventSpec> {
    let about_refresh = triggered.map(str::to_owned);
    let event = match action {
        Action::UpdateSchedule(update) => {
            EventSpec::normal(Reason::ScheduleUpdated, schedule_text(update), None)
        }
        Action::ApplyCredentials(ApplyReason::CheckChain) => return None,
        Action::ApplyCredentials(ApplyReason::BeforeSlot(slot)) => EventSpec::normal(
            Reason::CredentialsApplied,
            format!("applied fresh Xero credentials before the scheduled refresh at {slot}"),
            Some(slot.to_string()),
        ),
        Action::ApplyCredentials(ApplyReason::BeforeRefresh) => EventSpec::normal(
            Reason::CredentialsApplied,
            match triggered {
                Some(id) => format!("applied fresh Xero credentials before refresh {id}"),
                None => "applied fresh Xero credentials before a refresh".into(),
            },
            about_refresh,
        ),
        Action::TriggerRefresh(why) => {
            let id = triggered.unwrap_or("unknown");
            let message = match why {
                TriggerReason::RecoverFailure { request_id } => {
                    format!("started refresh {id} to recover from failed refresh {request_id}")
                }
                TriggerReason::Requested { value } => {
                    format!("started refresh {id} as requested at {value}")
                }
                TriggerReason::Slot { at } => {
                    format!("started refresh {id} for the scheduled slot at {at}")
                }
            };
            EventSpec::normal(Reason::RefreshTriggered, message, about_refresh)
        }
    };
    Some(event)
}

fn schedule_text(update: &ScheduleUpdate) -> String {
    match update {
        ScheduleUpdate::Disable => "switched the refresh schedule off".into(),
        ScheduleUpdate::StopMailThenDisable => "switched the refresh schedule off (first its failure mails: a service principal may only store notifyOption NoNotification)".into(),
        ScheduleUpdate::Set(s) => format!(
            "set the refresh schedule to {} at {} ({}), enabled",
            s.day_names().join(", "),
            s.time_strings().join(", "),
            s.time_zone_id
        ),
    }
}

/// A refresh that ended since the last look. A completed refresh found by the first reconcile
/// is history, not news (and thousands of datasets starting up would each post one).
pub(super) fn refresh_outcome_event(
    old: Option<&LastRefresh>,
    new: &LastRefresh,
) -> Option<EventSpec> {
    let same = old.is_some_and(|o| o.request_id == new.request_id && o.status == new.status);
    if same || (old.is_none() && new.status == "Completed") {
        return None;
    }
    let about = Some(new.request_id.clone());
    match new.status.as_str() {
        "Completed" => Some(EventSpec::normal(
            Reason::RefreshSucceeded,
            format!("refresh {} completed", new.request_id),
            about,
        )),
        "Failed" => Some(EventSpec::warning(
            Reason::RefreshFailed,
            format!(
                "refresh {} failed: {}",
                new.request_id,
                error_text(new.error_code.as_deref(), new.error_message.as_deref())
            ),
            about,
        )),
        _ => None,
    }
}

/// A requested refresh that was not started because of the daily limit.
pub(super) fn refused_request_event(outcome: &Outcome) -> Option<EventSpec> {
    let plan = outcome.plan.as_ref()?;
    let started = outcome
        .executed
        .iter()
        .any(|a| matches!(a, Action::TriggerRefresh(TriggerReason::Requested { .. })));
    let value = plan.handled_request.as_ref().filter(|_| !started)?;
    (plan.holdback == Some(Holdback::DailyLimitReached)).then(|| {
        EventSpec::warning(
            Reason::DailyLimitReached,
            format!(
                "the refresh requested at {value} was not started: another refresh today would exceed the capacity's daily limit (scheduled refreshes count)"
            ),
            Some(value.clone()),
        )
    })
}

/// The event for a new Ready reason: the failure, or a state a person should know about.
pub(super) fn ready_event(
    ready: Reason,
    message: &str,
    failure: Option<&Failure>,
) -> Option<EventSpec> {
    if let Some(failure) = failure {
        return Some(EventSpec::warning(
            failure.reason,
            failure.message.clone(),
            None,
        ));
    }
    match ready {
        Reason::Suspended => Some(EventSpec::normal(ready, message.to_owned(), None)),
        Reason::RecoveryExhausted | Reason::DailyLimitReached => {
            Some(EventSpec::warning(ready, message.to_owned(), None))
        }
        _ => None,
    }
}

/// Power BI's error code and message of a failed refresh, as one line.
pub(super) fn error_text(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        (None, Some(message)) => message.to_owned(),
        (None, None) => "no error details".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().expect("timestamp")
    }

    fn outcome(executed: Vec<Action>, triggered: &str) -> Outcome {
        Outcome {
            executed,
            triggered_request_id: Some(triggered.into()),
            ..Outcome::default()
        }
    }

    #[test]
    fn events_about_different_refreshes_have_different_series() {
        let recovery = action_events(&outcome(
            vec![
                Action::ApplyCredentials(ApplyReason::BeforeRefresh),
                Action::TriggerRefresh(TriggerReason::RecoverFailure {
                    request_id: "failed-1".into(),
                }),
            ],
            "refresh-2",
        ));
        let requested = action_events(&outcome(
            vec![
                Action::ApplyCredentials(ApplyReason::BeforeRefresh),
                Action::TriggerRefresh(TriggerReason::Requested {
                    value: "2026-11-25T10:00:00Z".into(),
                }),
            ],
            "refresh-3",
        ));
        for (first, second) in recovery.iter().zip(&requested) {
            assert_eq!(first.reason, second.reason);
            assert_ne!(first.series_action(), second.series_action());
        }
        assert_eq!(recovery[1].series_action(), "RefreshTriggered/refresh-2");

        let slot = action_events(&outcome(
            vec![Action::ApplyCredentials(ApplyReason::BeforeSlot(at(
                "2026-11-25T12:30:00Z",
            )))],
            "unused",
        ));
        assert_eq!(slot[0].about.as_deref(), Some("2026-11-25T12:30:00Z"));

        let ended = |id: &str| LastRefresh {
            request_id: id.into(),
            status: "Completed".into(),
            ..LastRefresh::default()
        };
        let running = LastRefresh {
            status: "Unknown".into(),
            ..ended("a")
        };
        let a = refresh_outcome_event(Some(&running), &ended("a")).expect("event");
        let b = refresh_outcome_event(Some(&running), &ended("b")).expect("event");
        assert_ne!(a.series_action(), b.series_action());
    }

    #[test]
    fn a_passing_chain_check_posts_no_event() {
        let check = outcome(
            vec![Action::ApplyCredentials(ApplyReason::CheckChain)],
            "unused",
        );
        assert!(action_events(&check).is_empty());
    }

    #[test]
    fn a_series_action_fits_the_api_servers_limit() {
        let event = EventSpec::normal(
            Reason::RefreshTriggered,
            String::new(),
            Some("x".repeat(500)),
        );
        assert_eq!(event.series_action().chars().count(), 128);
        let plain = EventSpec::normal(Reason::ScheduleUpdated, String::new(), None);
        assert_eq!(plain.series_action(), "ScheduleUpdated");
    }
}
