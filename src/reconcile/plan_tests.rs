//! Situations of one dataset, each a row: builders for the inputs, the plan they must give.

use super::*;
use crate::schedule::time_zone;

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

const TIMING: Timing = Timing {
    resync_interval: Duration::from_secs(3600),
    poll_interval: Duration::from_secs(15),
    default_credential_lead_time: Duration::from_secs(600),
};

/// Weekdays at 06:00 and 12:30 UTC, Shared capacity, 3 attempts a day, backoff 5m..2h.
fn desired() -> Desired {
    desired_in(&["06:00", "12:30"], "UTC")
}

fn desired_in(times: &[&str], zone: &str) -> Desired {
    Desired {
        schedule: RefreshSchedule::parse(
            true,
            &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
            times,
            zone,
        )
        .expect("schedule"),
        started_by: SlotStarter::PowerBi,
        zone: time_zone(zone).expect("zone"),
        credential_lead_time: SignedDuration::from_mins(10),
        daily_refresh_limit: 8,
        max_attempts_per_day: 3,
        backoff_initial: Duration::from_secs(300),
        backoff_max: Duration::from_secs(7200),
        suspend: false,
        refresh_requested: None,
        fingerprint: FINGERPRINT.into(),
    }
}

/// The desired state's generation and configuration.
const FINGERPRINT: &str = "1-00000000000000aa";

fn refresh(id: &str, kind: RefreshType, state: RefreshState, start: &str) -> Refresh {
    Refresh {
        request_id: id.into(),
        refresh_type: kind,
        state,
        start_time: Some(ts(start)),
        end_time: (state != RefreshState::Running).then(|| ts(start)),
    }
}

fn completed(id: &str, start: &str) -> Refresh {
    refresh(id, RefreshType::Scheduled, RefreshState::Completed, start)
}

fn failed(id: &str, start: &str) -> Refresh {
    refresh(id, RefreshType::Scheduled, RefreshState::Failed, start)
}

fn running(id: &str, start: &str) -> Refresh {
    refresh(id, RefreshType::ViaApi, RefreshState::Running, start)
}

/// Power BI holds the desired schedule; the history is `history`.
fn observed(desired: &Desired, history: Vec<Refresh>) -> Observed {
    Observed {
        schedule: Some(desired.schedule.clone()),
        history,
        secret_changed: false,
        schedule_mails_on_failure: false,
    }
}

/// Plans with the chain verified for the desired fingerprint (an hour ago, unless the memory
/// says when credentials were applied), so that each situation shows its own decision only;
/// the chain check has tests of its own.
fn plan(desired: &Desired, observed: &Observed, memory: &Memory, now: &str) -> Plan {
    let memory = Memory {
        verified_for: (memory.verified_for.clone()).or_else(|| Some(desired.fingerprint.clone())),
        credentials_applied: memory
            .credentials_applied
            .or_else(|| ts(now).checked_sub(SignedDuration::from_hours(1)).ok()),
        ..memory.clone()
    };
    let first = plan_actions(desired, observed, &memory, TIMING, ts(now));
    match recorded_intent(&first) {
        // The controller writes the intent into the status and reconciles again at once.
        Some(_) => plan_actions(desired, observed, &first.memory, TIMING, ts(now)),
        None => first,
    }
}

/// The intent a plan records instead of starting its refresh.
fn recorded_intent(plan: &Plan) -> Option<&Intent> {
    plan.memory
        .intent
        .as_ref()
        .filter(|_| plan.requeue_after == Duration::ZERO && triggered(plan).is_none())
}

fn triggered(plan: &Plan) -> Option<&TriggerReason> {
    plan.actions.iter().find_map(|a| match a {
        Action::TriggerRefresh(reason) => Some(reason),
        _ => None,
    })
}

fn recover(id: &str) -> Vec<Action> {
    vec![
        Action::ApplyCredentials(ApplyReason::BeforeRefresh),
        Action::TriggerRefresh(TriggerReason::RecoverFailure {
            request_id: id.into(),
        }),
    ]
}

// Wednesday 2026-11-25, between the 06:00 and 12:30 slots.
const MIDDAY: &str = "2026-11-25T09:00:00Z";

#[test]
fn healthy_dataset_does_nothing_and_wakes_before_the_next_slot() {
    let d = desired();
    let p = plan(
        &d,
        &observed(&d, vec![completed("a", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.holdback, None);
    assert_eq!(p.next_slot, Some(ts("2026-11-25T12:30:00Z")));
    // The resync (1h) comes before the credential window at 12:20.
    assert_eq!(p.requeue_after, Duration::from_secs(3600));
}

#[test]
fn healthy_dataset_wakes_at_the_credential_window_when_it_comes_first() {
    let d = desired();
    let p = plan(
        &d,
        &observed(&d, vec![completed("a", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        "2026-11-25T12:00:00Z",
    );
    assert!(p.actions.is_empty());
    assert_eq!(p.requeue_after, Duration::from_secs(20 * 60));
}

#[test]
fn failed_refresh_is_recovered_with_fresh_credentials() {
    let d = desired();
    let p = plan(
        &d,
        &observed(&d, vec![failed("f1", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(p.actions, recover("f1"));
    assert_eq!(p.memory.handled_failure.as_deref(), Some("f1"));
    assert_eq!(p.memory.attempts, 1);
    assert_eq!(p.memory.last_attempt, Some(ts(MIDDAY)));
    assert_eq!(p.memory.credentials_applied, Some(ts(MIDDAY)));
    assert_eq!(p.requeue_after, TIMING.poll_interval);
}

#[test]
fn failure_already_handled_is_not_retried() {
    let d = desired();
    let memory = Memory {
        handled_failure: Some("f1".into()),
        attempts: 1,
        last_attempt: Some(ts("2026-11-25T08:59:00Z")),
        credentials_applied: Some(ts("2026-11-25T08:59:00Z")),
        verified_for: Some(FINGERPRINT.into()),
        intent: None,
        slot_started: None,
        schedule_updated: None,
    };
    let p = plan(
        &d,
        &observed(&d, vec![failed("f1", "2026-11-25T06:01:00Z")]),
        &memory,
        MIDDAY,
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.memory, memory);
}

#[test]
fn running_refresh_is_polled_and_never_doubled() {
    let d = desired();
    let history = vec![
        running("r1", "2026-11-25T08:59:30Z"),
        failed("f1", "2026-11-25T06:01:00Z"),
    ];
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert_eq!(triggered(&p), None);
    // Running for 30 s: look again in 30 s.
    assert_eq!(p.requeue_after, Duration::from_secs(30));
    let just_started = vec![running("r1", "2026-11-25T08:59:55Z")];
    let p = plan(&d, &observed(&d, just_started), &Memory::default(), MIDDAY);
    assert_eq!(p.requeue_after, TIMING.poll_interval);
}

#[test]
fn polls_of_a_long_running_refresh_grow_but_stay_bounded() {
    let d = desired();
    let history = vec![running("r1", "2026-11-25T08:00:00Z")];
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert_eq!(p.requeue_after, Duration::from_secs(300));
    let history = vec![running("r1", "2026-11-25T08:58:00Z")];
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert_eq!(p.requeue_after, Duration::from_secs(120));
}

#[test]
fn requested_refresh_waits_for_a_running_one() {
    let mut d = desired();
    d.refresh_requested = Some("2026-11-25T08:59:00Z".into());
    let p = plan(
        &d,
        &observed(&d, vec![running("r1", "2026-11-25T08:59:30Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(triggered(&p), None);
    assert_eq!(p.holdback, Some(Holdback::RefreshRunning));
    assert_eq!(p.handled_request, None, "the request stays pending");
}

#[test]
fn attempts_exhausted_for_the_day_stop_recovery_until_midnight() {
    let d = desired();
    let memory = Memory {
        handled_failure: Some("f3".into()),
        attempts: 3,
        last_attempt: Some(ts("2026-11-25T08:00:00Z")),
        credentials_applied: None,
        verified_for: None,
        intent: None,
        slot_started: None,
        schedule_updated: None,
    };
    let p = plan(
        &d,
        &observed(&d, vec![failed("f4", "2026-11-25T08:01:00Z")]),
        &memory,
        MIDDAY,
    );
    assert_eq!(triggered(&p), None);
    assert_eq!(p.holdback, Some(Holdback::AttemptsExhausted));
    // Midnight UTC is 15h away, but the credential window at 12:20 and the resync come first.
    assert_eq!(p.requeue_after, Duration::from_secs(3600));
}

#[test]
fn zero_attempts_a_day_turns_recovery_off() {
    let mut d = desired();
    d.max_attempts_per_day = 0;
    let p = plan(
        &d,
        &observed(&d, vec![failed("f1", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(triggered(&p), None);
    assert_eq!(p.holdback, Some(Holdback::RecoveryOff));
}

#[test]
fn daily_limit_reached_by_scheduled_refreshes_blocks_recovery() {
    let mut d = desired_in(
        &[
            "00:00", "01:00", "02:00", "03:00", "04:00", "05:00", "06:00", "07:00",
        ],
        "UTC",
    );
    d.max_attempts_per_day = 5;
    let history: Vec<Refresh> = (0..7)
        .map(|h| completed(&format!("s{h}"), &format!("2026-11-25T0{h}:01:00Z")))
        .chain([failed("f7", "2026-11-25T07:01:00Z")])
        .rev()
        .collect();
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert_eq!(p.refreshes_today, 8);
    assert_eq!(triggered(&p), None);
    assert_eq!(p.holdback, Some(Holdback::DailyLimitReached));
}

#[test]
fn daily_limit_reserves_the_slots_still_ahead_today() {
    // 7 slots left today (09:30 ... 12:30) plus one refresh so far: no room for a recovery.
    let d = desired_in(
        &[
            "06:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00", "12:30",
        ],
        "UTC",
    );
    let p = plan(
        &d,
        &observed(&d, vec![failed("f1", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(p.holdback, Some(Holdback::DailyLimitReached));
    // Premium has room.
    let mut premium = d.clone();
    premium.daily_refresh_limit = 48;
    let p = plan(
        &premium,
        &observed(&premium, vec![failed("f1", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(p.actions, recover("f1"));
}

#[test]
fn on_demand_refreshes_do_not_count_against_the_daily_limit() {
    let d = desired();
    let history: Vec<Refresh> = (0..8)
        .map(|i| {
            refresh(
                &format!("o{i}"),
                RefreshType::OnDemand,
                RefreshState::Completed,
                &format!("2026-11-25T0{i}:10:00Z"),
            )
        })
        .rev()
        .collect();
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert_eq!(p.refreshes_today, 0);
}

#[test]
fn refreshes_of_yesterday_do_not_count() {
    let d = desired();
    let history = vec![
        failed("f1", "2026-11-25T06:01:00Z"),
        completed("y", "2026-11-24T23:00:00Z"),
    ];
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert_eq!(p.refreshes_today, 1);
}

#[test]
fn backoff_not_over_waits_until_it_ends() {
    let d = desired();
    let memory = Memory {
        handled_failure: Some("f1".into()),
        attempts: 2,
        last_attempt: Some(ts("2026-11-25T08:55:00Z")),
        credentials_applied: Some(ts("2026-11-25T08:55:00Z")),
        verified_for: None,
        intent: None,
        slot_started: None,
        schedule_updated: None,
    };
    // After 2 attempts the wait is 10 minutes: until 09:05.
    let p = plan(
        &d,
        &observed(&d, vec![failed("f2", "2026-11-25T08:56:00Z")]),
        &memory,
        MIDDAY,
    );
    assert_eq!(triggered(&p), None);
    assert_eq!(
        p.holdback,
        Some(Holdback::Backoff(ts("2026-11-25T09:05:00Z")))
    );
    assert_eq!(p.requeue_after, Duration::from_secs(300));
}

#[test]
fn backoff_over_retries() {
    let d = desired();
    let memory = Memory {
        handled_failure: Some("f1".into()),
        attempts: 1,
        last_attempt: Some(ts("2026-11-25T08:50:00Z")),
        credentials_applied: Some(ts("2026-11-25T08:50:00Z")),
        verified_for: None,
        intent: None,
        slot_started: None,
        schedule_updated: None,
    };
    let p = plan(
        &d,
        &observed(&d, vec![failed("f2", "2026-11-25T08:51:00Z")]),
        &memory,
        MIDDAY,
    );
    assert_eq!(p.actions, recover("f2"));
    assert_eq!(p.memory.attempts, 2);
}

#[test]
fn backoff_is_capped_at_max() {
    let mut d = desired();
    d.max_attempts_per_day = 20;
    let memory = Memory {
        handled_failure: Some("f9".into()),
        attempts: 10,
        last_attempt: Some(ts("2026-11-25T07:30:00Z")),
        credentials_applied: None,
        verified_for: None,
        intent: None,
        slot_started: None,
        schedule_updated: None,
    };
    let p = plan(
        &d,
        &observed(&d, vec![failed("f10", "2026-11-25T07:31:00Z")]),
        &memory,
        MIDDAY,
    );
    assert_eq!(
        p.holdback,
        Some(Holdback::Backoff(ts("2026-11-25T09:30:00Z")))
    );
}

#[test]
fn success_resets_attempts() {
    let d = desired();
    let memory = Memory {
        handled_failure: Some("f1".into()),
        attempts: 2,
        last_attempt: Some(ts("2026-11-25T08:00:00Z")),
        credentials_applied: None,
        verified_for: None,
        intent: None,
        slot_started: None,
        schedule_updated: None,
    };
    let p = plan(
        &d,
        &observed(&d, vec![completed("c", "2026-11-25T08:01:00Z")]),
        &memory,
        MIDDAY,
    );
    assert_eq!(p.memory.attempts, 0);
    // A later failure is retried at once, with no leftover backoff.
    let p = plan(
        &d,
        &observed(&d, vec![failed("f2", "2026-11-25T08:30:00Z")]),
        &p.memory,
        MIDDAY,
    );
    assert_eq!(p.actions, recover("f2"));
}

#[test]
fn a_new_day_starts_a_fresh_attempt_count() {
    let d = desired();
    let memory = Memory {
        handled_failure: Some("f3".into()),
        attempts: 3,
        last_attempt: Some(ts("2026-11-24T22:00:00Z")),
        credentials_applied: None,
        verified_for: None,
        intent: None,
        slot_started: None,
        schedule_updated: None,
    };
    let p = plan(
        &d,
        &observed(&d, vec![failed("f4", "2026-11-24T22:01:00Z")]),
        &memory,
        MIDDAY,
    );
    assert_eq!(p.actions, recover("f4"));
    assert_eq!(p.memory.attempts, 1);
}

#[test]
fn the_local_day_of_the_schedule_zone_decides_the_attempt_count() {
    // 23:00Z on the 24th and 07:00Z on the 25th are different days in UTC but the same day
    // (15:00 and 23:00 on the 24th) in Los Angeles: the attempts still count.
    let d = desired_in(&["06:00"], "Pacific Standard Time");
    let memory = Memory {
        handled_failure: Some("f3".into()),
        attempts: 3,
        last_attempt: Some(ts("2026-11-24T23:00:00Z")),
        credentials_applied: None,
        verified_for: None,
        intent: None,
        slot_started: None,
        schedule_updated: None,
    };
    let history = vec![failed("f4", "2026-11-24T23:01:00Z")];
    let p = plan(
        &d,
        &observed(&d, history.clone()),
        &memory,
        "2026-11-25T07:00:00Z",
    );
    assert_eq!(p.holdback, Some(Holdback::AttemptsExhausted));
    // An hour later it is a new day in Los Angeles.
    let p = plan(&d, &observed(&d, history), &memory, "2026-11-25T08:00:00Z");
    assert_eq!(p.actions, recover("f4"));
}

#[test]
fn drift_in_days_is_fixed() {
    let d = desired();
    let mut actual = d.schedule.clone();
    actual.days.remove(&crate::api::DayOfWeek::Friday);
    let o = Observed {
        secret_changed: false,
        schedule_mails_on_failure: false,
        schedule: Some(actual),
        history: vec![completed("a", "2026-11-25T06:01:00Z")],
    };
    let p = plan(&d, &o, &Memory::default(), MIDDAY);
    assert_eq!(
        p.actions,
        vec![Action::UpdateSchedule(ScheduleUpdate::Set(
            d.schedule.clone()
        ))]
    );
}

#[test]
fn drift_in_times_is_fixed() {
    let d = desired();
    let actual =
        RefreshSchedule::parse(true, &d.schedule.day_names(), &["06:00"], "UTC").expect("schedule");
    assert_eq!(
        schedule_update(&d.schedule, &actual),
        Some(ScheduleUpdate::Set(d.schedule.clone()))
    );
}

#[test]
fn drift_in_time_zone_is_fixed_but_case_is_not_drift() {
    let d = desired();
    let mut actual = d.schedule.clone();
    actual.time_zone_id = "GMT Standard Time".into();
    assert!(schedule_update(&d.schedule, &actual).is_some());
    actual.time_zone_id = "utc".into();
    assert_eq!(schedule_update(&d.schedule, &actual), None);
}

#[test]
fn schedule_switched_off_by_power_bi_is_switched_back_on() {
    let d = desired();
    let mut actual = d.schedule.clone();
    actual.enabled = false;
    let history = (1..=4)
        .map(|i| failed(&format!("f{i}"), &format!("2026-11-2{i}T06:01:00Z")))
        .rev()
        .collect();
    let memory = Memory {
        handled_failure: Some("f4".into()),
        ..Memory::default()
    };
    let p = plan(
        &d,
        &Observed {
            secret_changed: false,
            schedule_mails_on_failure: false,
            schedule: Some(actual),
            history,
        },
        &memory,
        MIDDAY,
    );
    assert_eq!(
        p.actions,
        vec![Action::UpdateSchedule(ScheduleUpdate::Set(
            d.schedule.clone()
        ))]
    );
}

#[test]
fn a_schedule_that_mails_on_failure_is_quietened_before_it_is_disabled() {
    let mut d = desired();
    d.schedule.enabled = false;
    let actual = RefreshSchedule::parse(true, &["Sunday"], &["03:00"], "UTC").expect("schedule");
    let mut o = observed(&d, vec![completed("c", "2026-11-25T06:01:00Z")]);
    o.schedule = Some(actual);
    o.schedule_mails_on_failure = true;
    let p = plan(&d, &o, &Memory::default(), MIDDAY);
    assert_eq!(
        p.actions,
        [Action::UpdateSchedule(ScheduleUpdate::StopMailThenDisable)]
    );
    o.schedule_mails_on_failure = false;
    let p = plan(&d, &o, &Memory::default(), MIDDAY);
    assert_eq!(p.actions, [Action::UpdateSchedule(ScheduleUpdate::Disable)]);
}

#[test]
fn a_disabled_desired_schedule_sends_only_the_disable() {
    let mut d = desired();
    d.schedule.enabled = false;
    let actual = RefreshSchedule::parse(true, &["Sunday"], &["03:00"], "UTC").expect("schedule");
    assert_eq!(
        schedule_update(&d.schedule, &actual),
        Some(ScheduleUpdate::Disable)
    );
    let mut off = actual.clone();
    off.enabled = false;
    assert_eq!(
        schedule_update(&d.schedule, &off),
        None,
        "days and times of an off schedule do not matter"
    );
    let p = plan(
        &d,
        &Observed {
            secret_changed: false,
            schedule_mails_on_failure: false,
            schedule: Some(off),
            history: vec![],
        },
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(p.next_slot, None);
    assert!(p.actions.is_empty());
}

#[test]
fn schedule_not_read_this_time_is_not_drift() {
    let d = desired();
    let o = Observed {
        secret_changed: false,
        schedule_mails_on_failure: false,
        schedule: None,
        history: vec![completed("a", "2026-11-25T06:01:00Z")],
    };
    assert!(plan(&d, &o, &Memory::default(), MIDDAY).actions.is_empty());
}

#[test]
fn slot_in_the_lead_window_gets_fresh_credentials_once() {
    let d = desired();
    let o = observed(&d, vec![completed("a", "2026-11-25T06:01:00Z")]);
    let p = plan(&d, &o, &Memory::default(), "2026-11-25T12:22:00Z");
    assert_eq!(
        p.actions,
        vec![Action::ApplyCredentials(ApplyReason::BeforeSlot(ts(
            "2026-11-25T12:30:00Z"
        )))]
    );
    // Applied: the next reconcile in the window does nothing more.
    let again = plan(&d, &o, &p.memory, "2026-11-25T12:25:00Z");
    assert!(again.actions.is_empty(), "{:?}", again.actions);
}

#[test]
fn credentials_applied_in_the_window_wake_at_the_slot_to_watch_its_outcome() {
    let d = desired();
    let o = observed(&d, vec![completed("a", "2026-11-25T06:01:00Z")]);
    let p = plan(&d, &o, &Memory::default(), "2026-11-25T12:22:00Z");
    assert!(matches!(p.actions[..], [Action::ApplyCredentials(_)]));
    assert_eq!(p.requeue_after, Duration::from_secs(8 * 60));
    // At the slot nothing has shown up yet: poll for it.
    let at_slot = plan(&d, &o, &p.memory, "2026-11-25T12:30:00Z");
    assert!(at_slot.actions.is_empty(), "{:?}", at_slot.actions);
    assert_eq!(at_slot.requeue_after, TIMING.poll_interval);
}

#[test]
fn slot_just_passed_without_credentials_still_gets_them() {
    let d = desired();
    let o = observed(&d, vec![completed("a", "2026-11-25T06:01:00Z")]);
    let p = plan(&d, &o, &Memory::default(), "2026-11-25T12:35:00Z");
    assert_eq!(
        p.actions,
        vec![Action::ApplyCredentials(ApplyReason::BeforeSlot(ts(
            "2026-11-25T12:30:00Z"
        )))]
    );
}

#[test]
fn slot_long_passed_waits_for_the_next_window() {
    let d = desired();
    let o = observed(&d, vec![completed("b", "2026-11-25T12:31:00Z")]);
    let p = plan(&d, &o, &Memory::default(), "2026-11-25T13:00:00Z");
    assert!(p.actions.is_empty());
    // Next slot: Thursday 06:00, window 05:50; the resync comes first.
    assert_eq!(p.next_slot, Some(ts("2026-11-26T06:00:00Z")));
    assert_eq!(p.requeue_after, TIMING.resync_interval);
}

#[test]
fn after_a_slot_the_outcome_is_watched_until_the_refresh_shows_up() {
    let d = desired();
    let o = observed(&d, vec![completed("a", "2026-11-25T06:01:00Z")]);
    let memory = Memory {
        credentials_applied: Some(ts("2026-11-25T12:20:00Z")),
        verified_for: None,
        ..Memory::default()
    };
    let p = plan(&d, &o, &memory, "2026-11-25T12:30:05Z");
    assert!(p.actions.is_empty());
    assert_eq!(p.requeue_after, TIMING.poll_interval);
    // A minute late: look again in a minute.
    let p = plan(&d, &o, &memory, "2026-11-25T12:31:00Z");
    assert_eq!(p.requeue_after, Duration::from_secs(60));
}

#[test]
fn a_weekend_has_no_slots_and_friday_evening_waits_for_monday() {
    let d = desired();
    let o = observed(&d, vec![completed("a", "2026-11-27T12:31:00Z")]);
    let p = plan(&d, &o, &Memory::default(), "2026-11-27T20:00:00Z");
    assert_eq!(p.next_slot, Some(ts("2026-11-30T06:00:00Z")));
}

#[test]
fn midnight_rollover_in_the_schedule_zone() {
    // 00:00 slots in Sydney: Monday 00:00 AEDT is Sunday 13:00Z.
    let d = desired_in(&["00:00"], "AUS Eastern Standard Time");
    let o = observed(&d, vec![]);
    let p = plan(&d, &o, &Memory::default(), "2026-11-29T12:55:00Z");
    assert_eq!(
        p.actions,
        vec![Action::ApplyCredentials(ApplyReason::BeforeSlot(ts(
            "2026-11-29T13:00:00Z"
        )))]
    );
}

#[test]
fn dst_change_moves_the_credential_window_with_the_slot() {
    // New York leaves daylight time on 2026-11-01: 06:00 local is 11:00Z from Monday 2nd on.
    let d = desired_in(&["06:00"], "Eastern Standard Time");
    let o = observed(&d, vec![]);
    let p = plan(&d, &o, &Memory::default(), "2026-11-02T10:52:00Z");
    assert_eq!(
        p.actions,
        vec![Action::ApplyCredentials(ApplyReason::BeforeSlot(ts(
            "2026-11-02T11:00:00Z"
        )))]
    );
    let before = plan(&d, &o, &Memory::default(), "2026-11-02T09:52:00Z");
    assert!(
        before.actions.is_empty(),
        "09:52Z was the window before the change only"
    );
}

#[test]
fn new_refresh_request_triggers_exactly_one_refresh() {
    let mut d = desired();
    d.refresh_requested = Some("2026-11-25T08:59:00Z".into());
    let p = plan(
        &d,
        &observed(&d, vec![completed("a", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(
        p.actions,
        vec![
            Action::ApplyCredentials(ApplyReason::BeforeRefresh),
            Action::TriggerRefresh(TriggerReason::Requested {
                value: "2026-11-25T08:59:00Z".into()
            }),
        ]
    );
    assert_eq!(p.handled_request.as_deref(), Some("2026-11-25T08:59:00Z"));
    assert_eq!(
        p.memory.attempts, 0,
        "a requested refresh is not a recovery attempt"
    );
}

#[test]
fn refresh_request_also_answers_a_pending_failure() {
    let mut d = desired();
    d.refresh_requested = Some("now".into());
    let p = plan(
        &d,
        &observed(&d, vec![failed("f1", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(p.actions.len(), 2);
    assert_eq!(p.memory.handled_failure.as_deref(), Some("f1"));
}

#[test]
fn refresh_request_beyond_the_daily_limit_is_handled_without_a_refresh() {
    let mut d = desired();
    d.daily_refresh_limit = 2;
    d.refresh_requested = Some("now".into());
    let history = vec![
        completed("b", "2026-11-25T08:00:00Z"),
        completed("a", "2026-11-25T06:01:00Z"),
    ];
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert_eq!(triggered(&p), None);
    assert_eq!(p.holdback, Some(Holdback::DailyLimitReached));
    assert_eq!(p.handled_request.as_deref(), Some("now"));
}

#[test]
fn suspended_dataset_plans_nothing_even_with_a_failure_or_request() {
    let mut d = desired();
    d.suspend = true;
    d.refresh_requested = Some("now".into());
    let mut actual = d.schedule.clone();
    actual.enabled = false;
    let o = Observed {
        secret_changed: false,
        schedule_mails_on_failure: false,
        schedule: Some(actual),
        history: vec![failed("f1", "2026-11-25T06:01:00Z")],
    };
    let p = plan(&d, &o, &Memory::default(), "2026-11-25T12:25:00Z");
    assert!(p.actions.is_empty());
    assert_eq!(
        p.handled_request, None,
        "the request waits until the dataset is resumed"
    );
    assert_eq!(p.requeue_after, TIMING.resync_interval);
}

#[test]
fn request_made_while_suspended_is_served_after_resume() {
    let mut d = desired();
    d.refresh_requested = Some("during-suspend".into());
    let p = plan(
        &d,
        &observed(&d, vec![completed("a", "2026-11-25T06:01:00Z")]),
        &Memory::default(),
        MIDDAY,
    );
    assert!(triggered(&p).is_some());
}

#[test]
fn empty_history_is_healthy() {
    let d = desired();
    let p = plan(&d, &observed(&d, vec![]), &Memory::default(), MIDDAY);
    assert!(p.actions.is_empty());
    assert_eq!(p.refreshes_today, 0);
}

#[test]
fn cancelled_refresh_is_not_treated_as_a_failure() {
    let d = desired();
    let history = vec![refresh(
        "c",
        RefreshType::ViaApi,
        RefreshState::Cancelled,
        "2026-11-25T08:00:00Z",
    )];
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert_eq!(triggered(&p), None);
}

#[test]
fn drift_fix_comes_before_recovery_in_the_same_plan() {
    let d = desired();
    let mut actual = d.schedule.clone();
    actual.enabled = false;
    let o = Observed {
        secret_changed: false,
        schedule_mails_on_failure: false,
        schedule: Some(actual),
        history: vec![failed("f1", "2026-11-25T06:01:00Z")],
    };
    let p = plan(&d, &o, &Memory::default(), MIDDAY);
    assert!(matches!(p.actions.first(), Some(Action::UpdateSchedule(_))));
    assert_eq!(&p.actions[1..], recover("f1").as_slice());
}

#[test]
fn a_refresh_running_for_longer_than_power_bi_allows_is_stuck_not_running() {
    let d = desired();
    let history = vec![refresh(
        "r",
        RefreshType::ViaApi,
        RefreshState::Running,
        "2026-11-25T01:00:00Z",
    )];
    let mut d2 = d.clone();
    d2.refresh_requested = Some("now".into());
    let p = plan(&d2, &observed(&d2, history), &Memory::default(), MIDDAY);
    assert!(
        triggered(&p).is_some(),
        "a refresh stuck for 8 hours blocks nothing"
    );
}

#[test]
fn recovery_waits_for_a_scheduled_refresh_that_is_due() {
    let d = desired();
    let history = vec![failed("f1", "2026-11-25T06:01:00Z")];
    // 12:25: credentials for the 12:30 slot are applied; the scheduled refresh will use them.
    let p = plan(
        &d,
        &observed(&d, history.clone()),
        &Memory::default(),
        "2026-11-25T12:25:00Z",
    );
    assert_eq!(
        p.holdback,
        Some(Holdback::ScheduledRefreshDue(ts("2026-11-25T12:30:00Z")))
    );
    assert_eq!(
        p.actions,
        vec![Action::ApplyCredentials(ApplyReason::BeforeSlot(ts(
            "2026-11-25T12:30:00Z"
        )))]
    );
    // Still not started at 12:40 (Power BI is late): keep waiting, and count it for the limit.
    let p = plan(
        &d,
        &observed(&d, history.clone()),
        &p.memory,
        "2026-11-25T12:40:00Z",
    );
    assert_eq!(triggered(&p), None);
    // Polls for the slot's refresh grow with the delay, up to the end of the late window.
    assert_eq!(p.requeue_after, Duration::from_secs(300));
    // Past the late window the failure is recovered.
    let p = plan(
        &d,
        &observed(&d, history),
        &p.memory,
        "2026-11-25T12:46:00Z",
    );
    assert_eq!(p.actions, recover("f1"));
}

#[test]
fn recovery_does_not_wait_for_a_slot_that_passed_while_power_bi_schedule_was_off() {
    let d = desired();
    let history = vec![failed("f1", "2026-11-24T12:31:00Z")];
    let now = "2026-11-25T06:05:00Z";
    // Power BI switched its schedule off after the failures: nothing starts the 06:00 refresh,
    // and switching the schedule on at 06:05 does not bring it back.
    let off = observed_off(&d, history.clone());
    let p = plan(&d, &off, &Memory::default(), now);
    assert_eq!(p.holdback, None);
    assert_eq!(
        p.actions,
        [
            vec![Action::UpdateSchedule(ScheduleUpdate::Set(
                d.schedule.clone()
            ))],
            recover("f1")
        ]
        .concat()
    );
    assert_eq!(p.memory.schedule_updated, Some(ts(now)));
    // Step by step: the first plan records the recovery's intent and switches the schedule on,
    // and its memory (what the status keeps) says when; the next reconcile reads the schedule
    // on and starts the recovery.
    let verified = Memory {
        verified_for: Some(d.fingerprint.clone()),
        credentials_applied: Some(ts("2026-11-25T05:00:00Z")),
        ..Memory::default()
    };
    let first = plan_actions(&d, &off, &verified, TIMING, ts(now));
    assert!(first.memory.intent.is_some(), "{first:?}");
    assert_eq!(first.memory.schedule_updated, Some(ts(now)));
    assert!(
        first
            .actions
            .contains(&Action::UpdateSchedule(ScheduleUpdate::Set(
                d.schedule.clone()
            )))
    );
    let on = observed(&d, history.clone());
    let second = plan_actions(&d, &on, &first.memory, TIMING, ts("2026-11-25T06:05:01Z"));
    assert_eq!(
        triggered(&second),
        Some(&TriggerReason::RecoverFailure {
            request_id: "f1".into()
        })
    );
    // A schedule that was on and only changed its times is still Power BI's to start.
    let mut other_times = d.schedule.clone();
    other_times.times.pop_last();
    let changed = Observed {
        schedule: Some(other_times),
        ..observed(&d, history.clone())
    };
    let p = plan(&d, &changed, &Memory::default(), now);
    assert_eq!(p.memory.schedule_updated, None);
    // The next reconcile reads the schedule on, and still knows it was off at 06:00.
    let memory = Memory {
        schedule_updated: Some(ts(now)),
        ..Memory::default()
    };
    let p = plan(
        &d,
        &observed(&d, history.clone()),
        &memory,
        "2026-11-25T06:05:02Z",
    );
    assert_eq!(p.actions, recover("f1"));
    // Switched on before the slot, the schedule is Power BI's to start: the failure waits.
    let before = Memory {
        schedule_updated: Some(ts("2026-11-25T05:50:00Z")),
        ..Memory::default()
    };
    let p = plan(&d, &observed(&d, history), &before, now);
    assert_eq!(
        p.holdback,
        Some(Holdback::ScheduledRefreshDue(ts("2026-11-25T06:00:00Z")))
    );
}

// The whole chain (Power BI, dataset, Xero, organisation, datasource) is checked by applying
// credentials whenever what it depends on changed, after it failed, and at least daily.

fn chain_checked(plan: &Plan) -> bool {
    plan.actions
        .contains(&Action::ApplyCredentials(ApplyReason::CheckChain))
}

#[test]
fn a_new_generation_or_configuration_checks_the_chain_at_once() {
    let d = desired();
    let o = observed(&d, vec![completed("c", "2026-11-25T06:01:00Z")]);
    let verified = Memory {
        credentials_applied: Some(ts("2026-11-25T06:00:00Z")),
        verified_for: Some(FINGERPRINT.into()),
        ..Memory::default()
    };
    let quiet = plan_actions(&d, &o, &verified, TIMING, ts(MIDDAY));
    assert!(quiet.actions.is_empty(), "{quiet:?}");

    for memory in [
        Memory {
            verified_for: Some("2-00000000000000aa".into()),
            ..verified.clone()
        },
        Memory {
            verified_for: Some("1-00000000000000bb".into()),
            ..verified.clone()
        },
        // A failed check, or a status from before checks existed.
        Memory {
            verified_for: None,
            ..verified.clone()
        },
    ] {
        let p = plan_actions(&d, &o, &memory, TIMING, ts(MIDDAY));
        assert!(chain_checked(&p), "{memory:?}: {p:?}");
        assert_eq!(p.memory.verified_for.as_deref(), Some(FINGERPRINT));
        assert_eq!(p.memory.credentials_applied, Some(ts(MIDDAY)));
    }
}

#[test]
fn a_changed_secret_checks_the_chain_and_a_quiet_day_does_too() {
    let d = desired();
    let mut o = observed(&d, vec![completed("c", "2026-11-25T06:01:00Z")]);
    let verified = Memory {
        credentials_applied: Some(ts("2026-11-25T06:00:00Z")),
        verified_for: Some(FINGERPRINT.into()),
        ..Memory::default()
    };
    o.secret_changed = true;
    assert!(chain_checked(&plan_actions(
        &d,
        &o,
        &verified,
        TIMING,
        ts(MIDDAY)
    )));
    o.secret_changed = false;
    // Saturday: no slot since Friday's, so no credentials applied for a day.
    let saturday = "2026-11-28T13:00:00Z";
    let since_friday = Memory {
        credentials_applied: Some(ts("2026-11-27T12:20:00Z")),
        ..verified.clone()
    };
    assert!(chain_checked(&plan_actions(
        &d,
        &o,
        &since_friday,
        TIMING,
        ts(saturday)
    )));
    let this_morning = Memory {
        credentials_applied: Some(ts("2026-11-28T09:00:00Z")),
        ..verified
    };
    assert!(!chain_checked(&plan_actions(
        &d,
        &o,
        &this_morning,
        TIMING,
        ts(saturday)
    )));
}

#[test]
fn applying_credentials_for_a_slot_or_a_refresh_is_the_check() {
    let d = desired();
    // In the 12:30 slot's window: credentials for the slot, no second apply.
    let o = observed(&d, vec![completed("c", "2026-11-25T06:01:00Z")]);
    let p = plan_actions(
        &d,
        &o,
        &Memory::default(),
        TIMING,
        ts("2026-11-25T12:25:00Z"),
    );
    assert_eq!(
        p.actions,
        [Action::ApplyCredentials(ApplyReason::BeforeSlot(ts(
            "2026-11-25T12:30:00Z"
        )))]
    );
    assert_eq!(p.memory.verified_for.as_deref(), Some(FINGERPRINT));
    // A recovery: nothing while the intent is recorded, then one apply right before the
    // refresh, which is also the chain's check.
    let o = observed(&d, vec![failed("f1", "2026-11-25T06:01:00Z")]);
    let p = plan_actions(&d, &o, &Memory::default(), TIMING, ts(MIDDAY));
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(recorded_intent(&p).is_some(), "{p:?}");
    let p = plan_actions(&d, &o, &p.memory, TIMING, ts(MIDDAY));
    assert_eq!(p.actions, recover("f1"));
    assert_eq!(p.memory.verified_for.as_deref(), Some(FINGERPRINT));
}

fn intent(trigger: TriggerReason, at: &str, latest_known: Option<&str>) -> Intent {
    Intent {
        trigger,
        at: ts(at),
        latest_known: latest_known.map(str::to_owned),
    }
}

fn requested(value: &str) -> TriggerReason {
    TriggerReason::Requested {
        value: value.into(),
    }
}

fn recovering(id: &str) -> TriggerReason {
    TriggerReason::RecoverFailure {
        request_id: id.into(),
    }
}

/// The plan of the very first reconcile with `memory` (no second pass).
fn first_plan(d: &Desired, o: &Observed, memory: Memory, now: &str) -> Plan {
    let memory = Memory {
        verified_for: Some(d.fingerprint.clone()),
        credentials_applied: ts(now).checked_sub(SignedDuration::from_hours(1)).ok(),
        ..memory
    };
    plan_actions(d, o, &memory, TIMING, ts(now))
}

#[test]
fn a_refresh_is_started_only_after_its_intent_is_recorded() {
    let mut d = desired();
    d.refresh_requested = Some("r-1".into());
    let o = observed(&d, vec![completed("c", "2026-11-25T06:01:00Z")]);
    // First the intent, nothing else: no request handled, no credentials, look again at once.
    let p = first_plan(&d, &o, Memory::default(), MIDDAY);
    assert!(p.actions.is_empty(), "{p:?}");
    assert_eq!(p.handled_request, None);
    assert_eq!(p.requeue_after, Duration::ZERO);
    assert_eq!(
        p.memory.intent,
        Some(intent(requested("r-1"), MIDDAY, Some("c")))
    );
    // With the intent in the status: the refresh, and the intent cleared.
    let p = first_plan(&d, &o, p.memory.clone(), MIDDAY);
    assert_eq!(triggered(&p), Some(&requested("r-1")));
    assert_eq!(p.handled_request.as_deref(), Some("r-1"));
    assert_eq!(p.memory.intent, None);

    // A recovery records attempts only when it starts.
    let mut d = desired();
    d.refresh_requested = None;
    let o = observed(&d, vec![failed("f1", "2026-11-25T06:01:00Z")]);
    let p = first_plan(&d, &o, Memory::default(), MIDDAY);
    assert_eq!(
        (p.memory.attempts, p.memory.handled_failure.as_deref()),
        (0, None)
    );
    assert_eq!(
        p.memory.intent,
        Some(intent(recovering("f1"), MIDDAY, Some("f1")))
    );
    let p = first_plan(&d, &o, p.memory.clone(), MIDDAY);
    assert_eq!(p.actions, recover("f1"));
    assert_eq!(
        (p.memory.attempts, p.memory.handled_failure.as_deref()),
        (1, Some("f1"))
    );
}

#[test]
fn an_intent_the_history_shows_carried_out_is_adopted_not_started_again() {
    // The operator asked Power BI at 09:00 and stopped before the status recorded it; the
    // history shows the API refresh "n" newer than "c".
    let mut d = desired();
    d.refresh_requested = Some("r-1".into());
    let recorded = Memory {
        intent: Some(intent(requested("r-1"), MIDDAY, Some("c"))),
        ..Memory::default()
    };
    let started = running("n", "2026-11-25T09:00:02Z");
    let o = observed(
        &d,
        vec![started.clone(), completed("c", "2026-11-25T06:01:00Z")],
    );
    let p = first_plan(&d, &o, recorded.clone(), "2026-11-25T09:00:30Z");
    assert_eq!(triggered(&p), None, "{p:?}");
    assert_eq!(p.handled_request.as_deref(), Some("r-1"));
    assert_eq!(p.memory.intent, None);
    // It also finished (and failed) before the restart: still adopted, and its failure is a new
    // one to recover, not the request again.
    let failed_fast = refresh(
        "n",
        RefreshType::ViaApi,
        RefreshState::Failed,
        "2026-11-25T09:00:02Z",
    );
    let o = observed(
        &d,
        vec![failed_fast, completed("c", "2026-11-25T06:01:00Z")],
    );
    let p = first_plan(&d, &o, recorded, "2026-11-25T09:03:00Z");
    assert_eq!(p.handled_request.as_deref(), Some("r-1"));
    assert_eq!(
        p.memory.intent,
        Some(intent(recovering("n"), "2026-11-25T09:03:00Z", Some("n")))
    );

    // A recovery intent adopted counts its attempt.
    let mut d = desired();
    d.refresh_requested = None;
    let recorded = Memory {
        intent: Some(intent(recovering("f1"), MIDDAY, Some("f1"))),
        ..Memory::default()
    };
    let o = observed(
        &d,
        vec![
            running("n", "2026-11-25T09:00:01Z"),
            failed("f1", "2026-11-25T06:01:00Z"),
        ],
    );
    let p = first_plan(&d, &o, recorded, "2026-11-25T09:00:30Z");
    assert_eq!(triggered(&p), None);
    assert_eq!(p.memory.attempts, 1);
    assert_eq!(p.memory.handled_failure.as_deref(), Some("f1"));
    assert_eq!(p.memory.last_attempt, Some(ts(MIDDAY)));
}

#[test]
fn an_intent_not_in_the_history_is_carried_out_and_older_refreshes_do_not_count() {
    let mut d = desired();
    d.refresh_requested = Some("r-1".into());
    // An API refresh a minute before the decision, which was the newest one then: not ours.
    let earlier_api = refresh(
        "a",
        RefreshType::ViaApi,
        RefreshState::Completed,
        "2026-11-25T08:59:00Z",
    );
    let recorded = Memory {
        intent: Some(intent(requested("r-1"), MIDDAY, Some("a"))),
        ..Memory::default()
    };
    let o = observed(&d, vec![earlier_api]);
    let p = first_plan(&d, &o, recorded, "2026-11-25T09:05:00Z");
    assert_eq!(triggered(&p), Some(&requested("r-1")));
    // A scheduled refresh that started after the decision is not the intended one either.
    let recorded = Memory {
        intent: Some(intent(requested("r-1"), MIDDAY, None)),
        ..Memory::default()
    };
    let scheduled = refresh(
        "s",
        RefreshType::Scheduled,
        RefreshState::Completed,
        "2026-11-25T09:00:10Z",
    );
    let o = observed(&d, vec![scheduled]);
    let p = first_plan(&d, &o, recorded, "2026-11-25T09:05:00Z");
    assert_eq!(triggered(&p), Some(&requested("r-1")));
}

#[test]
fn an_intent_no_longer_wanted_is_dropped() {
    // The request was withdrawn (handled elsewhere) and nothing failed: no refresh, no intent.
    let d = desired();
    let recorded = Memory {
        intent: Some(intent(requested("r-1"), MIDDAY, Some("c"))),
        ..Memory::default()
    };
    let o = observed(&d, vec![completed("c", "2026-11-25T06:01:00Z")]);
    let p = first_plan(&d, &o, recorded, "2026-11-25T09:01:00Z");
    assert!(p.actions.is_empty(), "{p:?}");
    assert_eq!(p.memory.intent, None);
}

#[test]
fn a_suspended_dataset_checks_nothing() {
    let mut d = desired();
    d.suspend = true;
    let o = observed(&d, vec![]);
    assert!(
        plan_actions(&d, &o, &Memory::default(), TIMING, ts(MIDDAY))
            .actions
            .is_empty()
    );
}

// startedBy: Operator. Wednesday 2026-11-25 again, slots at 06:00 and 12:30 UTC.

/// The operator starts the slots' refreshes; Power BI's schedule is off, as the operator keeps it.
fn operator_started() -> Desired {
    Desired {
        started_by: SlotStarter::Operator,
        ..desired()
    }
}

fn observed_off(desired: &Desired, history: Vec<Refresh>) -> Observed {
    Observed {
        schedule: Some(RefreshSchedule {
            enabled: false,
            ..desired.schedule.clone()
        }),
        ..observed(desired, history)
    }
}

/// A refresh that ran from `start` for `minutes`.
fn took(id: &str, start: &str, minutes: i64) -> Refresh {
    let start = ts(start);
    Refresh {
        request_id: id.into(),
        refresh_type: RefreshType::ViaApi,
        state: RefreshState::Completed,
        start_time: Some(start),
        end_time: Some(start + SignedDuration::from_mins(minutes)),
    }
}

fn slot_refresh(at: &str) -> Vec<Action> {
    vec![
        Action::ApplyCredentials(ApplyReason::BeforeRefresh),
        Action::TriggerRefresh(TriggerReason::Slot { at: ts(at) }),
    ]
}

#[test]
fn operator_started_slots_keep_power_bi_schedule_off() {
    let d = operator_started();
    let history = vec![completed("a", "2026-11-25T06:00:10Z")];
    let on = plan(
        &d,
        &observed(&d, history.clone()),
        &Memory::default(),
        MIDDAY,
    );
    assert_eq!(
        on.actions,
        vec![Action::UpdateSchedule(ScheduleUpdate::Disable)]
    );
    let mailing = Observed {
        schedule_mails_on_failure: true,
        ..observed(&d, history.clone())
    };
    let p = plan(&d, &mailing, &Memory::default(), MIDDAY);
    assert_eq!(
        p.actions,
        vec![Action::UpdateSchedule(ScheduleUpdate::StopMailThenDisable)]
    );
    let off = plan(&d, &observed_off(&d, history), &Memory::default(), MIDDAY);
    assert!(off.actions.is_empty(), "{:?}", off.actions);
    assert_eq!(off.next_slot, Some(ts("2026-11-25T12:30:00Z")));
}

#[test]
fn operator_started_slot_gets_fresh_credentials_and_its_refresh_at_the_slot_without_an_intent() {
    let d = operator_started();
    let o = observed_off(&d, vec![completed("a", "2026-11-24T12:30:10Z")]);
    // In the credential window nothing happens: the credentials come with the refresh.
    let before = plan(&d, &o, &Memory::default(), "2026-11-25T05:55:00Z");
    assert!(before.actions.is_empty(), "{:?}", before.actions);
    assert_eq!(before.requeue_after, Duration::from_secs(300));
    // At the slot, in one reconcile: the slot's time identifies its refresh in the history.
    let memory = Memory {
        verified_for: Some(FINGERPRINT.into()),
        credentials_applied: Some(ts("2026-11-25T05:00:00Z")),
        ..Memory::default()
    };
    let at = plan_actions(&d, &o, &memory, TIMING, ts("2026-11-25T06:00:02Z"));
    assert_eq!(at.actions, slot_refresh("2026-11-25T06:00:00Z"));
    assert_eq!(at.memory.intent, None);
    assert_eq!(at.memory.slot_started, Some(ts("2026-11-25T06:00:00Z")));
    assert_eq!(at.memory.attempts, 0);
    assert_eq!(at.holdback, None);
}

#[test]
fn operator_started_slots_date_the_schedule_found_off() {
    let d = operator_started();
    let history = vec![completed("a", "2026-11-24T12:30:10Z")];
    let now = "2026-11-25T09:00:00Z";
    // Read and found off, or switched off: a scheduled refresh started later is news.
    let off = plan(
        &d,
        &observed_off(&d, history.clone()),
        &Memory::default(),
        now,
    );
    assert_eq!(off.memory.schedule_updated, Some(ts(now)));
    let on = plan(&d, &observed(&d, history.clone()), &Memory::default(), now);
    assert_eq!(on.memory.schedule_updated, Some(ts(now)));
    // Not read this time: nothing to date.
    let unread = Observed {
        schedule: None,
        ..observed(&d, history)
    };
    let unread = plan(&d, &unread, &Memory::default(), now);
    assert_eq!(unread.memory.schedule_updated, None);
}

#[test]
fn operator_started_slot_is_started_once() {
    let d = operator_started();
    let now = "2026-11-25T06:00:30Z";
    // The history does not show it yet, but the status remembers the slot.
    let lagging = observed_off(&d, vec![completed("a", "2026-11-24T12:30:10Z")]);
    let memory = Memory {
        slot_started: Some(ts("2026-11-25T06:00:00Z")),
        ..Memory::default()
    };
    assert_eq!(triggered(&plan(&d, &lagging, &memory, now)), None);
    // An operator that lost its status write finds the refresh in the history.
    let shown = observed_off(&d, vec![running("r", "2026-11-25T06:00:03Z")]);
    assert_eq!(triggered(&plan(&d, &shown, &Memory::default(), now)), None);
    // A refresh that was running at the slot and completed after it serves the slot too.
    let across = observed_off(&d, vec![took("r", "2026-11-25T05:40:00Z", 25)]);
    let p = plan(&d, &across, &Memory::default(), "2026-11-25T06:06:00Z");
    assert_eq!(triggered(&p), None);
}

#[test]
fn operator_started_slot_missed_is_caught_up_within_the_hour_only() {
    let d = operator_started();
    let o = observed_off(&d, vec![completed("a", "2026-11-24T12:30:10Z")]);
    let late = plan(&d, &o, &Memory::default(), "2026-11-25T06:50:00Z");
    assert_eq!(late.actions, slot_refresh("2026-11-25T06:00:00Z"));
    let too_late = plan(&d, &o, &Memory::default(), "2026-11-25T07:00:01Z");
    assert!(too_late.actions.is_empty(), "{:?}", too_late.actions);
    // Asleep until the 12:30 slot: no resync wake-up in between.
    assert_eq!(
        too_late.requeue_after,
        Duration::from_secs(5 * 3600 + 29 * 60 + 59)
    );
}

#[test]
fn operator_started_slots_are_the_only_looks_between_them_at_least_daily() {
    let d = operator_started();
    // The 06:00 slot's refresh completed: the next look is the 12:30 slot, not the resync (1h).
    let done = observed_off(&d, vec![took("s", "2026-11-25T06:00:05Z", 2)]);
    let memory = Memory {
        slot_started: Some(ts("2026-11-25T06:00:00Z")),
        ..Memory::default()
    };
    let p = plan(&d, &done, &memory, "2026-11-25T06:02:20Z");
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(
        p.requeue_after,
        Duration::from_secs(6 * 3600 + 27 * 60 + 40)
    );
    // Friday's last slot: Monday is further than a day, and a day is the longest sleep.
    let friday = observed_off(&d, vec![took("s", "2026-11-27T12:30:05Z", 2)]);
    let memory = Memory {
        slot_started: Some(ts("2026-11-27T12:30:00Z")),
        ..Memory::default()
    };
    let p = plan(&d, &friday, &memory, "2026-11-27T12:33:00Z");
    assert_eq!(p.requeue_after, Duration::from_secs(24 * 3600));
    // Power BI starting the slots, the resync still wakes between them.
    let d = desired();
    let p = plan(
        &d,
        &observed(&d, vec![completed("s", "2026-11-25T06:00:05Z")]),
        &Memory::default(),
        "2026-11-25T06:02:20Z",
    );
    assert_eq!(p.requeue_after, TIMING.resync_interval);
    // Without slots there is nothing to wake for but the resync.
    let mut unscheduled = operator_started();
    unscheduled.schedule.enabled = false;
    let p = plan(
        &unscheduled,
        &observed_off(&unscheduled, vec![took("s", "2026-11-25T06:00:05Z", 2)]),
        &Memory::default(),
        "2026-11-25T06:02:20Z",
    );
    assert_eq!(p.requeue_after, TIMING.resync_interval);
}

#[test]
fn operator_started_slot_answers_a_failure_without_spending_an_attempt() {
    let d = operator_started();
    let o = observed_off(&d, vec![failed("f1", "2026-11-25T05:52:00Z")]);
    // Right before the slot, the failure waits for the slot's refresh.
    let before = plan(&d, &o, &Memory::default(), "2026-11-25T05:55:00Z");
    assert_eq!(triggered(&before), None);
    assert_eq!(
        before.holdback,
        Some(Holdback::ScheduledRefreshDue(ts("2026-11-25T06:00:00Z")))
    );
    assert_eq!(before.requeue_after, Duration::from_secs(300));
    let at = plan(&d, &o, &Memory::default(), "2026-11-25T06:00:00Z");
    assert_eq!(at.actions, slot_refresh("2026-11-25T06:00:00Z"));
    assert_eq!(at.memory.handled_failure.as_deref(), Some("f1"));
    assert_eq!(at.memory.attempts, 0);
}

#[test]
fn operator_started_slot_keeps_the_daily_limit() {
    let d = operator_started();
    let history: Vec<Refresh> = (0..8)
        .map(|i| took(&format!("r{i}"), &format!("2026-11-25T0{i}:10:00Z"), 5))
        .rev()
        .collect();
    let p = plan(
        &d,
        &observed_off(&d, history),
        &Memory::default(),
        "2026-11-25T12:30:00Z",
    );
    assert_eq!(p.refreshes_today, 8);
    assert_eq!(triggered(&p), None);
    assert_eq!(
        p.holdback,
        Some(Holdback::SlotOverDailyLimit(ts("2026-11-25T12:30:00Z")))
    );
    // Looked at again tomorrow (local midnight), not every few seconds.
    assert_eq!(p.requeue_after, Duration::from_secs(11 * 3600 + 30 * 60));
}

#[test]
fn operator_started_slot_is_not_started_while_suspended() {
    let mut d = operator_started();
    d.suspend = true;
    let o = observed(&d, vec![completed("a", "2026-11-24T12:30:10Z")]);
    let p = plan(&d, &o, &Memory::default(), "2026-11-25T06:00:00Z");
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn a_requested_refresh_gets_an_early_look_for_failures_that_end_at_once() {
    let d = Desired {
        refresh_requested: Some("now".into()),
        ..desired()
    };
    // Refreshes of this dataset take up to 20 minutes.
    let history = vec![took("a", "2026-11-24T06:00:00Z", 20)];
    let p = plan(&d, &observed(&d, history), &Memory::default(), MIDDAY);
    assert!(triggered(&p).is_some());
    // Four poll intervals in, then when it should be done.
    assert_eq!(p.requeue_after, Duration::from_secs(60));
}

#[test]
fn the_outcome_is_read_when_the_refresh_should_be_done() {
    let d = operator_started();
    // Refreshes of this dataset take up to 20 minutes: 20 min 10 s with the margin.
    let usual = SignedDuration::from_secs(20 * 60 + 10);
    let history = vec![
        took("b", "2026-11-24T12:30:00Z", 20),
        took("a", "2026-11-24T06:00:00Z", 12),
    ];
    let at = plan(
        &d,
        &observed_off(&d, history.clone()),
        &Memory::default(),
        "2026-11-25T06:00:00Z",
    );
    assert_eq!(
        triggered(&at),
        Some(&TriggerReason::Slot {
            at: ts("2026-11-25T06:00:00Z")
        })
    );
    // No early look at a slot's refresh: Power BI has just accepted fresh credentials.
    assert_eq!(at.requeue_after, Duration::try_from(usual).expect("usual"));
    let with = |refresh: Refresh| {
        let mut history = history.clone();
        history.insert(0, refresh);
        observed_off(&d, history)
    };
    let memory = Memory {
        slot_started: Some(ts("2026-11-25T06:00:00Z")),
        ..Memory::default()
    };
    let looked = plan(
        &d,
        &with(running("r", "2026-11-25T06:00:00Z")),
        &memory,
        "2026-11-25T06:00:59Z",
    );
    assert_eq!(
        looked.requeue_after,
        Duration::try_from(usual - SignedDuration::from_secs(59)).expect("usual")
    );
    // Running for 5 minutes: nothing to see before 06:20:10.
    let early = plan(
        &d,
        &with(running("r", "2026-11-25T06:00:00Z")),
        &memory,
        "2026-11-25T06:05:00Z",
    );
    assert_eq!(early.requeue_after, Duration::from_secs(15 * 60 + 10));
    // Late by 55 s: looked at again within the minute, then at most a minute apart.
    let late = plan(
        &d,
        &with(running("r", "2026-11-25T06:00:00Z")),
        &memory,
        "2026-11-25T06:21:05Z",
    );
    assert_eq!(late.requeue_after, Duration::from_secs(55));
    let later = plan(
        &d,
        &with(running("r", "2026-11-25T06:00:00Z")),
        &memory,
        "2026-11-25T06:31:05Z",
    );
    assert_eq!(later.requeue_after, Duration::from_secs(60));
    // Twice as long as usual: back to polls that grow with the overrun.
    let stuck = plan(
        &d,
        &with(running("r", "2026-11-25T06:00:00Z")),
        &memory,
        "2026-11-25T06:50:00Z",
    );
    assert_eq!(stuck.requeue_after, Duration::from_secs(300));
}
