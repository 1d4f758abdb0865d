//! The pure heart of the controller: from what the user wants, what the operator remembers and
//! what Power BI reports, decide what to do now and when to look again. No I/O, no clock: `now`
//! is an input, so every situation is a table row in the tests.
//!
//! [`plan_actions`] reads as its steps: the day's count and the memory for today, the schedule's
//! slots (computed once), the recovery decision, the credential decision, the next wake-up.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

pub use super::model::{
    Action, ApplyReason, Desired, Holdback, Intent, Memory, Observed, Plan, Refresh, RefreshState,
    RefreshType, ScheduleUpdate, Timing, TriggerReason,
};
use crate::api::SlotStarter;
use crate::schedule::{RefreshSchedule, local_day_bounds};

/// Power BI starts a scheduled refresh on a best-effort basis: up to 5 minutes early.
const SLOT_EARLY_START: SignedDuration = SignedDuration::from_mins(5);
/// ... and usually within 15 minutes of the slot; credentials are still applied when the
/// operator comes late within this window.
const SLOT_LATE_START: SignedDuration = SignedDuration::from_mins(15);
/// How long after a slot the operator keeps looking for the scheduled refresh's outcome.
const SLOT_WATCH: SignedDuration = SignedDuration::from_hours(1);
/// How late the operator still starts a slot's refresh it has not started (`startedBy:
/// Operator`), when it was down or held back at the slot; a slot missed for longer waits for
/// the next one, as Power BI's scheduler would.
const SLOT_CATCH_UP: SignedDuration = SignedDuration::from_hours(1);
/// The early look at a refresh with a usual duration comes this many poll intervals after its
/// start (a minute by default): failures that end at once (credentials, say) are not left
/// unnoticed until the usual end.
const EARLY_LOOK_POLLS: u32 = 4;
/// How many of the latest completed refreshes tell a dataset's usual refresh duration.
const DURATION_SAMPLES: usize = 5;
/// The longest wait between two polls of a refresh that runs past its usual duration (until it
/// has run twice as long), so that its end is seen within a minute.
const MAX_OVERRUN_POLL: Duration = Duration::from_secs(60);
/// A refresh reported running for longer than this is stuck, not running: Power BI times
/// refreshes out after 2 hours on shared capacity and 5 hours on Premium.
const MAX_REFRESH_RUN: SignedDuration = SignedDuration::from_hours(6);
/// The chain is checked at least this often, even when nothing changed.
const CHAIN_CHECK_INTERVAL: SignedDuration = SignedDuration::from_hours(24);
/// How much earlier than the operator's decision Power BI's clock may date the refresh it
/// started (the two clocks are not the same).
const INTENT_CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(5);
/// The longest wait between two polls of a running refresh.
const MAX_POLL: Duration = Duration::from_secs(300);

/// Decides what to do for one dataset at `now`.
pub fn plan_actions(
    desired: &Desired,
    observed: &Observed,
    memory: &Memory,
    timing: Timing,
    now: Timestamp,
) -> Plan {
    let (today, tomorrow) = local_day_bounds(&desired.zone, now);
    let latest = observed.history.first();
    let refreshes_today = count_refreshes_since(&observed.history, today);
    if desired.suspend {
        return Plan {
            actions: Vec::new(),
            holdback: None,
            memory: memory.clone(),
            handled_request: None,
            refreshes_today,
            next_slot: None,
            requeue_after: timing.resync_interval,
        };
    }
    let mut memory = memory.clone();
    let adopted_request = adopt_intent(&mut memory, &observed.history);
    let mut memory = memory_for_today(&memory, latest, today);
    // A request the adopted refresh answered is not pending any more, whatever the status says.
    let requested = desired
        .refresh_requested
        .as_deref()
        .filter(|value| adopted_request.as_deref() != Some(*value));
    let schedule_action = schedule_action(desired, observed);
    if schedule_settled(desired, observed, schedule_action.is_some()) {
        memory.schedule_updated = Some(now);
    }
    let slots = Slots::at(desired, latest, &memory, now, (today, tomorrow));
    let running = running_since(latest, now);
    let room = Room {
        running: running.is_some(),
        within_daily_limit: refreshes_today + slots.left_today < desired.daily_refresh_limit,
        slot_within_limit: refreshes_today < desired.daily_refresh_limit,
    };
    let decided_from = memory.clone();
    let mut recovery = decide_recovery(desired, requested, latest, &mut memory, &slots, room, now);
    intend(&mut recovery, &mut memory, decided_from, latest, now);

    let mut actions: Vec<Action> = schedule_action.into_iter().collect();
    if let Some(why) = apply_reason(&recovery, &slots, desired, observed, &memory, now) {
        // Applying credentials exercises the whole chain, whatever the reason.
        actions.push(Action::ApplyCredentials(why));
        memory.credentials_applied = Some(now);
        memory.verified_for = Some(desired.fingerprint.clone());
    }
    if let Some(reason) = recovery.trigger.clone() {
        actions.push(Action::TriggerRefresh(reason));
    }

    let usual = usual_duration(&observed.history);
    // A slot's refresh starts right after Power BI accepted fresh credentials, so a failure
    // that ends at once is unlikely: it is read when it should be done, without an early look.
    let slot_refresh = matches!(recovery.trigger, Some(TriggerReason::Slot { .. }))
        || (running.is_some()
            && memory
                .slot_started
                .is_some_and(|slot| started_since(latest, slot)));
    let polls = Polls {
        running,
        usual,
        early_look: !slot_refresh,
        timing,
    };
    let requeue_after = next_wakeup(&slots, &polls, &recovery, now, tomorrow);
    Plan {
        actions,
        holdback: recovery.holdback,
        memory,
        handled_request: recovery.handled_request.or(adopted_request),
        refreshes_today,
        next_slot: slots.next,
        requeue_after,
    }
}

/// Whether this reconcile settles Power BI's schedule in a way that dates what its history
/// shows ([`Memory::schedule_updated`]): with `startedBy: PowerBI`, switching on a schedule that
/// was off (Power BI does not go back for the slots it missed); with `Operator`, reading it (and
/// switching it off if it was on), so that only a scheduled refresh started later is news.
fn schedule_settled(desired: &Desired, observed: &Observed, updating: bool) -> bool {
    observed
        .schedule
        .as_ref()
        .is_some_and(|actual| match desired.started_by {
            SlotStarter::PowerBi => updating && !actual.enabled,
            SlotStarter::Operator => true,
        })
}

/// The schedule change that makes Power BI's schedule the desired one, if it was read and
/// differs. When the operator starts the slots' refreshes, Power BI's schedule is kept off.
fn schedule_action(desired: &Desired, observed: &Observed) -> Option<Action> {
    let actual = observed.schedule.as_ref()?;
    let update = match desired.started_by {
        SlotStarter::PowerBi => schedule_update(&desired.schedule, actual)?,
        SlotStarter::Operator => actual.enabled.then_some(ScheduleUpdate::Disable)?,
    };
    Some(Action::UpdateSchedule(match update {
        ScheduleUpdate::Disable if observed.schedule_mails_on_failure => {
            ScheduleUpdate::StopMailThenDisable
        }
        other => other,
    }))
}

/// Why credentials are applied now, if they are: right before a refresh the operator starts,
/// before the upcoming slot, or to check the chain.
fn apply_reason(
    recovery: &Recovery,
    slots: &Slots,
    desired: &Desired,
    observed: &Observed,
    memory: &Memory,
    now: Timestamp,
) -> Option<ApplyReason> {
    if recovery.intent_recorded {
        // The next reconcile applies credentials right before the refresh, which also checks
        // the chain and serves the slot: one apply, not two.
        None
    } else if recovery.trigger.is_some() {
        Some(ApplyReason::BeforeRefresh)
    } else if let Some(slot) =
        credentials_due_before(slots, memory).filter(|_| desired.started_by == SlotStarter::PowerBi)
    {
        Some(ApplyReason::BeforeSlot(slot))
    } else {
        chain_check_due(desired, observed, memory, now).then_some(ApplyReason::CheckChain)
    }
}

/// Whether a refresh may start: none runs, and another stays within the daily limit (an
/// unscheduled one leaving room for the slots still ahead today, a slot's own one not).
#[derive(Debug, Clone, Copy)]
struct Room {
    running: bool,
    within_daily_limit: bool,
    slot_within_limit: bool,
}

/// The memory as it stands today: a success ends the recovery episode, and a new local day
/// starts a fresh count.
fn memory_for_today(memory: &Memory, latest: Option<&Refresh>, today: Timestamp) -> Memory {
    let mut memory = memory.clone();
    if latest.is_some_and(|r| r.state == RefreshState::Completed) {
        memory.attempts = 0;
    }
    if memory.last_attempt.is_some_and(|t| t < today) {
        memory.attempts = 0;
    }
    memory
}

/// The schedule's slots as seen at one moment, computed once per plan.
#[derive(Debug, Default)]
struct Slots {
    /// The next slot, when the schedule is on.
    next: Option<Timestamp>,
    /// The earliest slot Power BI may still start (up to [`SLOT_LATE_START`] after its time),
    /// with the start of its credential window.
    upcoming: Option<(Timestamp, Timestamp)>,
    /// Whether the upcoming slot's credential window is open.
    window_open: bool,
    /// The credential window of the slot after the upcoming one.
    following_window: Option<Timestamp>,
    /// The upcoming slot, when its window is open and its refresh has not started yet.
    awaited: Option<Timestamp>,
    /// The last slot, while Power BI's refresh of it has not shown up and the operator still
    /// watches for it (`startedBy: PowerBI`).
    unseen_previous: Option<Timestamp>,
    /// The last slot, when the operator starts its refresh itself and has not yet, within
    /// [`SLOT_CATCH_UP`] (`startedBy: Operator`).
    due: Option<Timestamp>,
    /// The operator starts each slot's refresh itself.
    operator_started: bool,
    /// The first slot after this very moment (when the operator starts them, the time to wake).
    strictly_next: Option<Timestamp>,
    /// Slots still ahead today, plus an overdue one that still gets its refresh.
    left_today: u32,
}

impl Slots {
    fn at(
        desired: &Desired,
        latest: Option<&Refresh>,
        memory: &Memory,
        now: Timestamp,
        (today, tomorrow): (Timestamp, Timestamp),
    ) -> Slots {
        let schedule = &desired.schedule;
        if !schedule.enabled {
            return Slots::default();
        }
        let zone = &desired.zone;
        let operator_started = desired.started_by == SlotStarter::Operator;
        let unserved = |slot: &Timestamp| {
            if operator_started {
                !served_by_operator(latest, memory.slot_started, *slot)
            } else {
                !started_since(latest, *slot) && power_bi_scheduled(memory, *slot, now)
            }
        };
        let upcoming = schedule.next_slot(zone, earlier(now, SLOT_LATE_START));
        let window = upcoming.map(|slot| earlier(slot, desired.credential_lead_time));
        let window_open = window.is_some_and(|w| now >= w);
        let awaited = upcoming.filter(|_| window_open).filter(unserved);
        let following_window = upcoming
            .and_then(|slot| schedule.next_slot(zone, later(slot, SignedDuration::from_secs(1))))
            .map(|next| earlier(next, desired.credential_lead_time));
        let previous = schedule
            .previous_slot(zone, later(now, SignedDuration::from_secs(1)))
            .filter(unserved);
        let (unseen_previous, due) = if operator_started {
            let due = previous.filter(|slot| now < later(*slot, SLOT_CATCH_UP));
            (None, due)
        } else {
            (previous.filter(|slot| now < later(*slot, SLOT_WATCH)), None)
        };
        let ahead = schedule.slots_between(zone, now, tomorrow).len() as u32;
        let overdue = awaited.is_some_and(|slot| slot <= now && slot >= today);
        Slots {
            next: schedule.next_slot(zone, now),
            upcoming: upcoming.zip(window),
            window_open,
            following_window,
            awaited,
            unseen_previous,
            due,
            operator_started,
            strictly_next: schedule.next_slot(zone, later(now, SignedDuration::from_secs(1))),
            left_today: ahead + u32::from(overdue),
        }
    }
}

/// Whether the slot at `slot` has had its refresh, when the operator starts them: it started
/// one for this slot or a later one, or the latest refresh started at the slot (a little early
/// included) or was running then. A slot is identified by its time and Power BI's history
/// shows every refresh started, so a slot needs no recorded intent: an operator that stopped
/// right after starting the refresh finds it in the history.
fn served_by_operator(
    latest: Option<&Refresh>,
    slot_started: Option<Timestamp>,
    slot: Timestamp,
) -> bool {
    let running_at_slot = latest.is_some_and(|r| {
        r.start_time.is_some_and(|t| t < slot) && r.end_time.is_none_or(|end| end >= slot)
    });
    slot_started.is_some_and(|started| started >= slot)
        || started_since(latest, slot)
        || running_at_slot
}

/// Whether Power BI's scheduler starts (or started) the refresh of `slot`, as far as the
/// operator knows: a slot still ahead, or one that passed after the operator last changed the
/// schedule. Power BI does not go back for a slot that passed while its schedule was off or
/// different; the operator then recovers a failure at once rather than wait for a refresh that
/// never comes.
fn power_bi_scheduled(memory: &Memory, slot: Timestamp, now: Timestamp) -> bool {
    slot > now || memory.schedule_updated.is_none_or(|updated| updated < slot)
}

/// Whether the latest refresh started at or after `slot` (Power BI may start it a little early).
fn started_since(latest: Option<&Refresh>, slot: Timestamp) -> bool {
    latest.is_some_and(|r| {
        r.start_time
            .is_some_and(|t| t >= earlier(slot, SLOT_EARLY_START))
    })
}

/// When the latest refresh started, if it is running (and not stuck).
fn running_since(latest: Option<&Refresh>, now: Timestamp) -> Option<Option<Timestamp>> {
    latest
        .filter(|r| r.state == RefreshState::Running)
        .filter(|r| {
            r.start_time
                .is_none_or(|started| now.duration_since(started) < MAX_REFRESH_RUN)
        })
        .map(|r| r.start_time)
}

/// What the plan does about a requested refresh and a failed one.
#[derive(Debug, Default)]
struct Recovery {
    trigger: Option<TriggerReason>,
    holdback: Option<Holdback>,
    handled_request: Option<String>,
    /// The trigger was recorded as an intent, to be carried out by the next reconcile.
    intent_recorded: bool,
}

/// Takes an intent recorded by an earlier reconcile that the history shows carried out: its
/// effects go into the memory as a successful start would have put them, and the request it
/// answered is returned as handled. An intent not (yet) seen in the history stays.
fn adopt_intent(memory: &mut Memory, history: &[Refresh]) -> Option<String> {
    if !memory
        .intent
        .as_ref()
        .is_some_and(|intent| carried_out(intent, history))
    {
        return None;
    }
    let intent = memory.intent.take()?;
    match intent.trigger {
        TriggerReason::RecoverFailure { request_id } => {
            memory.handled_failure = Some(request_id);
            memory.attempts += 1;
            memory.last_attempt = Some(intent.at);
            None
        }
        TriggerReason::Requested { value } => Some(value),
        // Never recorded as an intent (see [`served_by_operator`]); adopted all the same.
        TriggerReason::Slot { at } => {
            memory.slot_started = Some(at);
            None
        }
    }
}

/// Whether the history holds a refresh started through the API, newer than the newest one when
/// the intent was recorded and not older than the intent (give or take the clocks' skew).
fn carried_out(intent: &Intent, history: &[Refresh]) -> bool {
    let newer = intent
        .latest_known
        .as_ref()
        .and_then(|known| history.iter().position(|r| &r.request_id == known))
        .map_or(history, |position| &history[..position]);
    let since = earlier(intent.at, INTENT_CLOCK_SKEW);
    newer.iter().any(|r| {
        !matches!(
            r.refresh_type,
            RefreshType::Scheduled | RefreshType::OnDemand
        ) && r.start_time.is_none_or(|started| started >= since)
    })
}

/// Intent before action: a refresh is started only when its intent is already in the status.
/// A trigger without it records it instead, leaves the memory as it was before the decision
/// and asks for the next reconcile at once; with it, the refresh is started and the intent
/// cleared (the execute step restores it when the start fails). Without a trigger no intent is
/// kept. A slot's refresh starts at once: the slot's time identifies it in the history.
fn intend(
    recovery: &mut Recovery,
    memory: &mut Memory,
    decided_from: Memory,
    latest: Option<&Refresh>,
    now: Timestamp,
) {
    let Some(trigger) = recovery.trigger.take() else {
        memory.intent = None;
        return;
    };
    let recorded = decided_from
        .intent
        .as_ref()
        .is_some_and(|intent| intent.trigger == trigger);
    if recorded || matches!(trigger, TriggerReason::Slot { .. }) {
        recovery.trigger = Some(trigger);
        memory.intent = None;
        return;
    }
    *memory = Memory {
        intent: Some(Intent {
            trigger,
            at: now,
            latest_known: latest.map(|r| r.request_id.clone()),
        }),
        ..decided_from
    };
    recovery.handled_request = None;
    recovery.intent_recorded = true;
}

/// A requested refresh comes first (and also answers a pending failure); then a due slot's
/// refresh, when the operator starts them (it answers a pending failure too, without counting
/// as a recovery attempt); a failed refresh is recovered within the attempts, the daily limit,
/// the scheduled slot and the backoff; nothing starts while a refresh runs.
fn decide_recovery(
    desired: &Desired,
    requested: Option<&str>,
    latest: Option<&Refresh>,
    memory: &mut Memory,
    slots: &Slots,
    room: Room,
    now: Timestamp,
) -> Recovery {
    let Room {
        running,
        within_daily_limit,
        slot_within_limit,
    } = room;
    let pending_failure = latest
        .filter(|r| r.is_unhandled_failure(memory.handled_failure.as_deref()))
        .map(|r| r.request_id.clone());
    if running {
        let waiting = requested.is_some() || pending_failure.is_some();
        return Recovery {
            holdback: waiting.then_some(Holdback::RefreshRunning),
            ..Recovery::default()
        };
    }
    if let Some(value) = requested {
        // A request is handled once: by a refresh, or by saying why there is none.
        let handled_request = Some(value.to_owned());
        if !within_daily_limit {
            return Recovery {
                holdback: Some(Holdback::DailyLimitReached),
                handled_request,
                ..Recovery::default()
            };
        }
        if let Some(id) = pending_failure {
            memory.handled_failure = Some(id);
        }
        return Recovery {
            trigger: Some(TriggerReason::Requested {
                value: value.to_owned(),
            }),
            handled_request,
            ..Recovery::default()
        };
    }
    if let Some(slot) = slots.due {
        return start_slot(slot, slot_within_limit, pending_failure, memory);
    }
    let Some(request_id) = pending_failure else {
        return Recovery::default();
    };
    recover_failure(desired, request_id, memory, slots, within_daily_limit, now)
}

/// The due slot's refresh (`startedBy: Operator`), unless the day's refreshes are used up; it
/// answers a pending failure too, without counting as a recovery attempt.
fn start_slot(
    slot: Timestamp,
    within_limit: bool,
    pending_failure: Option<String>,
    memory: &mut Memory,
) -> Recovery {
    if !within_limit {
        return Recovery {
            holdback: Some(Holdback::SlotOverDailyLimit(slot)),
            ..Recovery::default()
        };
    }
    if let Some(id) = pending_failure {
        memory.handled_failure = Some(id);
    }
    memory.slot_started = Some(slot);
    Recovery {
        trigger: Some(TriggerReason::Slot { at: slot }),
        ..Recovery::default()
    }
}

/// A recovery refresh for the failed refresh `request_id`, or why not yet: recovery is off,
/// the attempts or the daily limit are used up, the slot's refresh is due, or the backoff runs.
fn recover_failure(
    desired: &Desired,
    request_id: String,
    memory: &mut Memory,
    slots: &Slots,
    within_daily_limit: bool,
    now: Timestamp,
) -> Recovery {
    let backoff_end = memory
        .last_attempt
        .filter(|_| memory.attempts > 0)
        .map(|last| later(last, backoff(desired, memory.attempts)));
    let holdback = if desired.max_attempts_per_day == 0 {
        Some(Holdback::RecoveryOff)
    } else if memory.attempts >= desired.max_attempts_per_day {
        Some(Holdback::AttemptsExhausted)
    } else if !within_daily_limit {
        Some(Holdback::DailyLimitReached)
    } else if let Some(slot) = slots.awaited {
        Some(Holdback::ScheduledRefreshDue(slot))
    } else {
        backoff_end.filter(|end| *end > now).map(Holdback::Backoff)
    };
    if holdback.is_some() {
        return Recovery {
            holdback,
            ..Recovery::default()
        };
    }
    memory.handled_failure = Some(request_id.clone());
    memory.attempts += 1;
    memory.last_attempt = Some(now);
    Recovery {
        trigger: Some(TriggerReason::RecoverFailure { request_id }),
        ..Recovery::default()
    }
}

/// Whether the whole chain must be checked now: a referenced Secret changed, the spec or the
/// operator's configuration changed since the last check passed (or it failed), or the last
/// check is a day old. What is wrong shows at once rather than at the next slot.
fn chain_check_due(
    desired: &Desired,
    observed: &Observed,
    memory: &Memory,
    now: Timestamp,
) -> bool {
    observed.secret_changed
        || memory.verified_for.as_deref() != Some(desired.fingerprint.as_str())
        || memory
            .credentials_applied
            .is_none_or(|applied| now.duration_since(applied) >= CHAIN_CHECK_INTERVAL)
}

/// The upcoming slot, when its credential window is open and no credentials were applied in it.
fn credentials_due_before(slots: &Slots, memory: &Memory) -> Option<Timestamp> {
    let (slot, window) = slots.upcoming.filter(|_| slots.window_open)?;
    memory
        .credentials_applied
        .is_none_or(|t| t < window)
        .then_some(slot)
}

/// What the next poll of a refresh depends on.
struct Polls {
    /// When the latest refresh started, if it runs.
    running: Option<Option<Timestamp>>,
    /// How long the dataset's refreshes usually take, when its history tells.
    usual: Option<SignedDuration>,
    /// Whether a refresh with a usual duration gets the early look (not a slot's refresh).
    early_look: bool,
    timing: Timing,
}

impl Polls {
    /// The wait until the next look at a refresh that has run for `age`: one early look (not
    /// for a slot's refresh), then
    /// when it should be done (its usual duration), then at most a minute apart while it runs
    /// late, until it has run twice as long; without a usual duration, as long as it has run so
    /// far.
    fn wait(&self, age: SignedDuration) -> Duration {
        let Some(usual) = self.usual else {
            return poll_interval(self.timing, age);
        };
        let early = SignedDuration::try_from(self.timing.poll_interval * EARLY_LOOK_POLLS)
            .unwrap_or(SignedDuration::MAX);
        // A wake-up a moment early counts as the early look, not as a reason for another.
        if self.early_look && early < usual && age < early - SignedDuration::from_secs(2) {
            return Duration::try_from(early - age).unwrap_or_default();
        }
        let overrun = age - usual;
        if overrun < SignedDuration::ZERO {
            return Duration::try_from(-overrun).unwrap_or_default();
        }
        let wait = poll_interval(self.timing, overrun);
        if overrun < usual {
            wait.min(MAX_OVERRUN_POLL.max(self.timing.poll_interval))
        } else {
            wait
        }
    }
}

/// A dataset's usual refresh duration: the longest of its latest completed refreshes, and ten
/// seconds for the history to show the end.
fn usual_duration(history: &[Refresh]) -> Option<SignedDuration> {
    history
        .iter()
        .filter(|r| r.state == RefreshState::Completed)
        .filter_map(|r| Some(r.end_time?.duration_since(r.start_time?)))
        .filter(|d| *d > SignedDuration::ZERO && *d < MAX_REFRESH_RUN)
        .take(DURATION_SAMPLES)
        .max()
        .map(|longest| longest + SignedDuration::from_secs(10))
}

/// When to look again: the earliest of the next credential window (`startedBy: PowerBI`), the
/// slot (to start or watch for its refresh), the next poll of a running or just started
/// refresh, and the end of a holdback; at the latest the resync (a day at least when the
/// operator starts the slots and one is ahead).
fn next_wakeup(
    slots: &Slots,
    polls: &Polls,
    recovery: &Recovery,
    now: Timestamp,
    tomorrow: Timestamp,
) -> Duration {
    if recovery.intent_recorded {
        // The next reconcile starts the refresh, once the status holds the intent.
        return Duration::ZERO;
    }
    let timing = polls.timing;
    // When the operator starts the slots, the next slot is the next look: no resync wake-up in
    // between (see [`Timing::operator_resync`]).
    let operator_slot = slots.strictly_next.filter(|_| slots.operator_started);
    let resync = match operator_slot {
        Some(_) => timing.operator_resync(),
        None => timing.resync_interval,
    };
    let mut wake = Wakeups::new(now, resync);
    if slots.operator_started {
        if let Some(next) = operator_slot {
            wake.at(next);
        }
    } else if let Some((slot, window)) = slots.upcoming {
        if slots.window_open {
            if slot > now {
                wake.at(slot);
            }
            if let Some(following) = slots.following_window {
                wake.at(following);
            }
        } else {
            wake.at(window);
        }
    }
    if let Some(previous) = slots.unseen_previous {
        wake.after(poll_interval(timing, now.duration_since(previous)));
    }
    match polls.running {
        Some(Some(started)) => wake.after(polls.wait(now.duration_since(started))),
        Some(None) => wake.after(timing.poll_interval),
        None => {}
    }
    match recovery.holdback {
        Some(
            Holdback::AttemptsExhausted
            | Holdback::DailyLimitReached
            | Holdback::SlotOverDailyLimit(_),
        ) => wake.at(tomorrow),
        Some(Holdback::ScheduledRefreshDue(slot)) => wake.at(later(slot, SLOT_LATE_START)),
        Some(Holdback::Backoff(end)) => wake.at(end),
        Some(Holdback::RefreshRunning | Holdback::RecoveryOff) | None => {}
    }
    if recovery.trigger.is_some() {
        wake.after(polls.wait(SignedDuration::ZERO));
    }
    wake.earliest()
}

fn earlier(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_sub(by).unwrap_or(at)
}

fn later(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_add(by).unwrap_or(at)
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
