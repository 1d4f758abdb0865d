//! Power BI's scheduler over HTTP: a slot of an enabled schedule gets one scheduled refresh,
//! started late by the configured delay and running the dataset's duration; other days, and a
//! disabled schedule, get none. (Entra tokens live an hour of virtual time: a new one after
//! each move of the clock.)

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use powerbi_sim::{DelayBand, DurationRange};
use serde_json::{Value, json};

fn scheduled(history: &[Value]) -> Vec<(Timestamp, Option<Timestamp>)> {
    history
        .iter()
        .filter(|r| r["refreshType"] == "Scheduled")
        .map(|r| {
            (
                r["startTime"].as_str().unwrap().parse().unwrap(),
                r["endTime"].as_str().map(|t| t.parse().unwrap()),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_slot_gets_one_late_scheduled_refresh_of_the_datasets_duration() {
    let mut seed = seed();
    // Monday 2026-12-07, 08:00 UTC.
    seed.config.start_time = Some("2026-12-07T08:00:00Z".parse().unwrap());
    seed.config.scheduler.enabled = true;
    seed.config.scheduler.start_delays = vec![DelayBand {
        share: 1.0,
        up_to_seconds: 600,
    }];
    seed.config.scheduler.durations = DurationRange {
        min_seconds: 1500,
        max_seconds: 1500,
    };
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    let patch = json!({"value": {
        "enabled": true, "days": ["Monday"], "times": ["09:00"],
        "localTimeZoneId": "UTC", "notifyOption": "NoNotification"
    }});
    let reply = h.patch_schedule(&token, DATASET, &patch).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let before = scheduled(&h.history(&h.pbi_token().await, DATASET).await).len();

    // Before the slot: nothing.
    h.advance(3500.0).await;
    assert_eq!(
        scheduled(&h.history(&h.pbi_token().await, DATASET).await).len(),
        before
    );

    // Two hours later: one refresh, started within 10 minutes of 09:00, 25 minutes long.
    h.advance(7200.0).await;
    let now = scheduled(&h.history(&h.pbi_token().await, DATASET).await);
    assert_eq!(now.len(), before + 1, "{now:?}");
    let slot: Timestamp = "2026-12-07T09:00:00Z".parse().unwrap();
    let (start, end) = now
        .iter()
        .find(|(start, _)| *start >= slot)
        .copied()
        .expect("the slot's refresh");
    assert!(start <= slot + SignedDuration::from_mins(10), "{start}");
    assert_eq!(end, Some(start + SignedDuration::from_mins(25)));

    // Tuesday has no slot.
    h.advance(86_400.0).await;
    assert_eq!(
        scheduled(&h.history(&h.pbi_token().await, DATASET).await).len(),
        before + 1
    );

    // Switched off before next Monday's slot: none then either.
    let off = json!({"value": {"enabled": false}});
    let reply = h.patch_schedule(&h.pbi_token().await, DATASET, &off).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    h.advance(7.0 * 86_400.0).await;
    assert_eq!(
        scheduled(&h.history(&h.pbi_token().await, DATASET).await).len(),
        before + 1
    );
}

#[tokio::test]
async fn the_scheduler_is_off_by_default_and_refuses_bands_that_do_not_add_up() {
    let mut seed = seed();
    assert!(!seed.config.scheduler.enabled);
    seed.config.scheduler.enabled = true;
    seed.config.scheduler.start_delays[0].share = 0.1;
    let err = powerbi_sim::Simulator::start("127.0.0.1:0".parse().unwrap(), seed)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("add up to 1"), "{err}");
}
