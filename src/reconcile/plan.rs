//! The pure heart of the controller: from what the user wants, what the operator remembers and
//! what Power BI reports, decide what to do now and when to look again. No I/O, no clock: `now`
//! is an input, so every situation is a table row in the tests.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::schedule::{RefreshSchedule, local_day_bounds};

/// Power BI starts a scheduled refresh on a best-effort basis: up to 5 minutes early.
const SLOT_EARLY_START: SignedDuration = SignedDuration::from_mins(5);
/// ... and usually within 15 minutes of the slot; credentials are still applied when the
/// operator comes late within this window.
const SLOT_LATE_START: SignedDuration = SignedDuration::from_mins(15);
/// How long after a slot the operator keeps looking for the scheduled refresh's outcome.
const SLOT_WATCH: SignedDuration = SignedDuration::from_hours(1);
/// A refresh reported running for longer than this is stuck, not running: Power BI times
/// refreshes out after 2 hours on shared capacity and 5 hours on Premium.
const MAX_REFRESH_RUN: SignedDuration = SignedDuration::from_hours(6);
/// The longest wait between two polls of a running refresh.
const MAX_POLL: Duration = Duration::from_secs(300);

/// What the user asked for, validated.
#[derive(Debug, Clone)]
pub struct Desired {
    pub schedule: RefreshSchedule,
    pub zone: TimeZone,
    pub credential_lead_time: SignedDuration,
    /// Refreshes a day the capacity allows, scheduled ones included.
    pub daily_refresh_limit: u32,
    pub max_attempts_per_day: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub suspend: bool,
    /// A new value of the refresh-requested-at annotation not handled yet.
    pub refresh_requested: Option<String>,
}

/// How a refresh started, as Power BI reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshType {
    Scheduled,
    /// The portal's "Refresh now": it does not count against the daily limit.
    OnDemand,
    ViaApi,
    Other(String),
}

/// The state of a refresh in Power BI's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    /// Power BI's `Unknown`: still running.
    Running,
    Completed,
    Failed,
    Cancelled,
    Disabled,
}

/// One entry of the refresh history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub request_id: String,
    pub refresh_type: RefreshType,
    pub state: RefreshState,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
}

/// What Power BI reported in this reconcile.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The schedule in Power BI; `None` when it was not read this time (drift is then not
    /// checked).
    pub schedule: Option<RefreshSchedule>,
    /// The refresh history, newest first.
    pub history: Vec<Refresh>,
}

/// What the operator remembers between reconciles (kept in the status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// The failed refresh the operator last responded to.
    pub handled_failure: Option<String>,
    /// Recovery refreshes started on the local day of `last_attempt`, since the last success.
    pub attempts: u32,
    pub last_attempt: Option<Timestamp>,
    /// When credentials were last applied to the datasource.
    pub credentials_applied: Option<Timestamp>,
}

/// Why credentials are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyReason {
    /// Shortly before the scheduled slot at this instant.
    BeforeSlot(Timestamp),
    /// Right before a refresh the operator triggers.
    BeforeRefresh,
}

/// Why the operator triggers a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerReason {
    /// To recover from the failed refresh with this request id.
    RecoverFailure { request_id: String },
    /// The refresh-requested-at annotation asked for it.
    Requested { value: String },
}

/// One step of the plan, carried out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make Power BI's schedule the desired one.
    UpdateSchedule(ScheduleUpdate),
    ApplyCredentials(ApplyReason),
    TriggerRefresh(TriggerReason),
}

/// A schedule change, shaped by Power BI's rule that a disabling PATCH changes nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleUpdate {
    Disable,
    Set(RefreshSchedule),
}

/// Why no recovery refresh is started for a pending failure (or a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holdback {
    /// A refresh is running; only one runs at a time.
    RefreshRunning,
    /// Waiting for the backoff to end at this instant.
    Backoff(Timestamp),
    /// `recovery.maxAttemptsPerDay` attempts were made today.
    AttemptsExhausted,
    /// `recovery.maxAttemptsPerDay` is 0: the operator does not recover failed refreshes.
    RecoveryOff,
    /// The scheduled refresh of this slot is due (or a little late), with fresh credentials:
    /// a recovery refresh now would collide with it.
    ScheduledRefreshDue(Timestamp),
    /// Another refresh would exceed the capacity's daily limit, counting the scheduled slots
    /// still ahead today.
    DailyLimitReached,
}

/// The decision of one reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Why a pending failure or request is not acted on now.
    pub holdback: Option<Holdback>,
    /// The memory to keep, assuming the actions succeed.
    pub memory: Memory,
    /// The refresh-requested-at value handled by this plan (echoed in the status).
    pub handled_request: Option<String>,
    /// Refreshes counted against today's limit, before this plan's actions.
    pub refreshes_today: u32,
    /// The next scheduled slot, when the schedule is on.
    pub next_slot: Option<Timestamp>,
    /// When to reconcile again, at the latest.
    pub requeue_after: Duration,
}

impl Plan {
    /// Whether the plan triggers a refresh.
    pub fn triggers_refresh(&self) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a, Action::TriggerRefresh(_)))
    }
}

/// Timing knobs of the operator (flags), not of one dataset.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The longest time between two reconciles (the drift check).
    pub resync_interval: Duration,
    /// The first poll of a running refresh; later polls grow with its age.
    pub poll_interval: Duration,
    /// The credential lead time of datasets whose spec does not set one.
    pub default_credential_lead_time: Duration,
}

/// Decides what to do for one dataset at `now`.
pub fn plan_actions(
    desired: &Desired,
    observed: &Observed,
    memory: &Memory,
    timing: Timing,
    now: Timestamp,
) -> Plan {
    let zone = &desired.zone;
    let (today, tomorrow) = local_day_bounds(zone, now);
    let mut memory = memory.clone();
    let mut wake = Wakeups::new(now, timing.resync_interval);
    let refreshes_today = count_refreshes_since(&observed.history, today);
    let latest = observed.history.first();

    if desired.suspend {
        return Plan {
            actions: Vec::new(),
            holdback: None,
            memory,
            handled_request: None,
            refreshes_today,
            next_slot: None,
            requeue_after: wake.earliest(),
        };
    }

    // A success ends the recovery episode; a new local day starts a fresh count.
    if latest.is_some_and(|r| r.state == RefreshState::Completed) {
        memory.attempts = 0;
    }
    if memory.last_attempt.is_some_and(|t| t < today) {
        memory.attempts = 0;
    }

    let mut actions = Vec::new();
    if let Some(update) = observed
        .schedule
        .as_ref()
        .and_then(|actual| schedule_update(&desired.schedule, actual))
    {
        actions.push(Action::UpdateSchedule(update));
    }

    let schedule_on = desired.schedule.enabled;
    let next_slot = schedule_on
        .then(|| desired.schedule.next_slot(zone, now))
        .flatten();
    // The slot whose credential window is open, or whose refresh Power BI may still start.
    let current_slot = schedule_on
        .then(|| {
            let from = now.checked_sub(SLOT_LATE_START).unwrap_or(now);
            desired.schedule.next_slot(zone, from)
        })
        .flatten()
        .filter(|slot| {
            now >= slot
                .checked_sub(desired.credential_lead_time)
                .unwrap_or(*slot)
        });
    let slot_seen = |slot: Timestamp| {
        latest.is_some_and(|r| {
            r.start_time
                .is_some_and(|t| t >= slot.checked_sub(SLOT_EARLY_START).unwrap_or(slot))
        })
    };
    let awaited_slot = current_slot.filter(|slot| !slot_seen(*slot));
    let slots_left_today = if schedule_on {
        let ahead = desired.schedule.slots_between(zone, now, tomorrow).len() as u32;
        // A slot that has just passed without its refresh still gets one.
        let overdue = awaited_slot.is_some_and(|slot| slot <= now && slot >= today);
        ahead + u32::from(overdue)
    } else {
        0
    };
    let within_daily_limit = refreshes_today + slots_left_today < desired.daily_refresh_limit;

    // Credentials shortly before each slot: the current slot is the earliest one that Power BI
    // may still start (up to SLOT_LATE_START after its time).
    let mut apply_before_slot = None;
    if schedule_on {
        let from = now.checked_sub(SLOT_LATE_START).unwrap_or(now);
        if let Some(slot) = desired.schedule.next_slot(zone, from) {
            let window = slot
                .checked_sub(desired.credential_lead_time)
                .unwrap_or(slot);
            if now >= window {
                if memory.credentials_applied.is_none_or(|t| t < window) {
                    apply_before_slot = Some(slot);
                }
                // Look again at the slot, to watch for its refresh's outcome (below), and after
                // it for the next window.
                if slot > now {
                    wake.at(slot);
                }
                if let Some(next) = desired.schedule.next_slot(
                    zone,
                    slot.checked_add(SignedDuration::from_secs(1))
                        .unwrap_or(slot),
                ) {
                    wake.at(next
                        .checked_sub(desired.credential_lead_time)
                        .unwrap_or(next));
                }
            } else {
                wake.at(window);
            }
        }
        // Watch for the outcome of the last slot's refresh until it shows up and ends.
        if let Some(previous) = desired.schedule.previous_slot(
            zone,
            now.checked_add(SignedDuration::from_secs(1)).unwrap_or(now),
        ) {
            let seen = latest.is_some_and(|r| {
                r.start_time.is_some_and(|t| {
                    t >= previous.checked_sub(SLOT_EARLY_START).unwrap_or(previous)
                })
            });
            let watch_end = previous.checked_add(SLOT_WATCH).unwrap_or(previous);
            if !seen && now < watch_end {
                wake.after(poll_interval(timing, now.duration_since(previous)));
            }
        }
    }

    let running = latest.is_some_and(|r| {
        r.state == RefreshState::Running
            && r.start_time
                .is_none_or(|started| now.duration_since(started) < MAX_REFRESH_RUN)
    });
    let pending_failure = latest
        .filter(|r| r.state == RefreshState::Failed)
        .filter(|r| memory.handled_failure.as_deref() != Some(r.request_id.as_str()))
        .map(|r| r.request_id.clone());

    let mut holdback = None;
    let mut handled_request = None;
    let mut trigger = None;
    if running {
        if let Some(started) = latest.and_then(|r| r.start_time) {
            wake.after(poll_interval(timing, now.duration_since(started)));
        } else {
            wake.after(timing.poll_interval);
        }
        if desired.refresh_requested.is_some() || pending_failure.is_some() {
            holdback = Some(Holdback::RefreshRunning);
        }
    } else if let Some(value) = &desired.refresh_requested {
        // A request is handled once: by a refresh, or by saying why there is none.
        handled_request = Some(value.clone());
        if within_daily_limit {
            trigger = Some(TriggerReason::Requested {
                value: value.clone(),
            });
            // The requested refresh also answers a pending failure.
            if let Some(id) = &pending_failure {
                memory.handled_failure = Some(id.clone());
            }
        } else {
            holdback = Some(Holdback::DailyLimitReached);
            wake.at(tomorrow);
        }
    } else if let Some(request_id) = pending_failure {
        let backoff_end = memory
            .last_attempt
            .filter(|_| memory.attempts > 0)
            .map(|last| {
                last.checked_add(backoff(desired, memory.attempts))
                    .unwrap_or(last)
            });
        if desired.max_attempts_per_day == 0 {
            holdback = Some(Holdback::RecoveryOff);
        } else if memory.attempts >= desired.max_attempts_per_day {
            holdback = Some(Holdback::AttemptsExhausted);
            wake.at(tomorrow);
        } else if !within_daily_limit {
            holdback = Some(Holdback::DailyLimitReached);
            wake.at(tomorrow);
        } else if let Some(slot) = awaited_slot {
            holdback = Some(Holdback::ScheduledRefreshDue(slot));
            wake.at(slot.checked_add(SLOT_LATE_START).unwrap_or(slot));
        } else if let Some(end) = backoff_end.filter(|end| *end > now) {
            holdback = Some(Holdback::Backoff(end));
            wake.at(end);
        } else {
            trigger = Some(TriggerReason::RecoverFailure {
                request_id: request_id.clone(),
            });
            memory.handled_failure = Some(request_id);
            memory.attempts += 1;
            memory.last_attempt = Some(now);
        }
    }

    if let Some(reason) = trigger {
        actions.push(Action::ApplyCredentials(ApplyReason::BeforeRefresh));
        actions.push(Action::TriggerRefresh(reason));
        memory.credentials_applied = Some(now);
        wake.after(timing.poll_interval);
    } else if let Some(slot) = apply_before_slot {
        actions.push(Action::ApplyCredentials(ApplyReason::BeforeSlot(slot)));
        memory.credentials_applied = Some(now);
    }

    Plan {
        actions,
        holdback,
        memory,
        handled_request,
        refreshes_today,
        next_slot,
        requeue_after: wake.earliest(),
    }
}

/// The change that makes `actual` the `desired` schedule, if any.
pub fn schedule_update(
    desired: &RefreshSchedule,
    actual: &RefreshSchedule,
) -> Option<ScheduleUpdate> {
    if !desired.enabled {
        return actual.enabled.then_some(ScheduleUpdate::Disable);
    }
    let same = actual.enabled
        && actual.days == desired.days
        && actual.times == desired.times
        && actual
            .time_zone_id
            .eq_ignore_ascii_case(&desired.time_zone_id);
    (!same).then(|| ScheduleUpdate::Set(desired.clone()))
}

/// Refreshes since `since` that count against the daily limit (the portal's "Refresh now" does
/// not).
fn count_refreshes_since(history: &[Refresh], since: Timestamp) -> u32 {
    history
        .iter()
        .filter(|r| r.refresh_type != RefreshType::OnDemand)
        .filter(|r| r.start_time.is_some_and(|t| t >= since))
        .count() as u32
}

/// The wait after `attempts` recovery attempts: initial, doubling, at most max.
fn backoff(desired: &Desired, attempts: u32) -> SignedDuration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    let wait = desired
        .backoff_initial
        .checked_mul(factor)
        .unwrap_or(desired.backoff_max)
        .min(desired.backoff_max);
    SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX)
}

/// Polls of something that started `age` ago wait as long as it has run so far: the gaps
/// double (15 s, 15 s, 30 s, 1 min, ...) up to five minutes, so a refresh of a few minutes costs
/// a handful of calls while a short one is still seen quickly.
fn poll_interval(timing: Timing, age: SignedDuration) -> Duration {
    let age = Duration::try_from(age).unwrap_or_default();
    age.clamp(timing.poll_interval, MAX_POLL.max(timing.poll_interval))
}

/// The earliest of the moments something is due.
struct Wakeups {
    now: Timestamp,
    earliest: Duration,
}

impl Wakeups {
    fn new(now: Timestamp, resync: Duration) -> Self {
        Wakeups {
            now,
            earliest: resync,
        }
    }

    fn after(&mut self, wait: Duration) {
        self.earliest = self.earliest.min(wait.max(Duration::from_secs(1)));
    }

    fn at(&mut self, instant: Timestamp) {
        let wait = Duration::try_from(instant.duration_since(self.now)).unwrap_or_default();
        self.after(wait);
    }

    fn earliest(&self) -> Duration {
        self.earliest
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
