//! Power BI's scheduler, on the virtual clock. At each slot of an enabled schedule (its days and
//! times in its `localTimeZoneId`) the service starts a scheduled refresh "on a best effort
//! basis": usually within minutes, sometimes 15 minutes late, rarely up to an hour late when the
//! capacity is busy. The delay is drawn per slot from `SchedulerConfig::start_delays`, and each
//! dataset's refresh duration from `SchedulerConfig::durations`, both from a seeded hash, so a
//! run replays exactly. The bands are a guess from Microsoft's wording ("may be delayed by up
//! to one hour"), not a measurement: configurable for that reason.
//!
//! Slots are found lazily, whenever the world settles (every request, and a periodic tick of the
//! server), and a refresh whose start was due earlier starts backdated to its due time. Its
//! credentials are those held when it is started here, so the tick's period bounds how long
//! after its due time a credential change can still count.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::schedule::{DAYS, RefreshSchedule};

/// How Power BI's scheduler behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Whether the service starts scheduled refreshes by itself. Off by default, so that tests
    /// see only the refreshes they cause; `POST /_sim/datasets/{id}/scheduled-refresh` starts one
    /// at a precise moment either way.
    pub enabled: bool,
    /// Seed of every draw (start delays, durations).
    pub seed: u64,
    /// How late a scheduled refresh starts after its slot: bands tried in order, each taking
    /// its `share` of slots, with a delay spread evenly between the previous band's end and
    /// its own `upToSeconds`.
    pub start_delays: Vec<DelayBand>,
    /// How long a dataset's refreshes run, drawn once per dataset unless its seed sets
    /// `refreshDurationSeconds`.
    pub durations: DurationRange,
}

/// A share of slots and the latest delay in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DelayBand {
    pub share: f64,
    pub up_to_seconds: u64,
}

/// The range of refresh durations, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DurationRange {
    pub min_seconds: u64,
    pub max_seconds: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            seed: 1,
            start_delays: vec![
                DelayBand {
                    share: 0.80,
                    up_to_seconds: 5 * 60,
                },
                DelayBand {
                    share: 0.18,
                    up_to_seconds: 15 * 60,
                },
                DelayBand {
                    share: 0.02,
                    up_to_seconds: 60 * 60,
                },
            ],
            // Some run past 20 minutes, where a token applied 15 minutes before the slot
            // expires during the refresh.
            durations: DurationRange {
                min_seconds: 2 * 60,
                max_seconds: 40 * 60,
            },
        }
    }
}

impl SchedulerConfig {
    /// Why the configuration cannot work, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let total: f64 = self.start_delays.iter().map(|b| b.share).sum();
        if self
            .start_delays
            .iter()
            .any(|b| b.share.is_nan() || b.share < 0.0)
            || (total - 1.0).abs() > 1e-6
        {
            return Some(format!(
                "scheduler.startDelays: the shares must be non-negative and add up to 1 (they add up to {total})"
            ));
        }
        if self
            .start_delays
            .windows(2)
            .any(|pair| pair[0].up_to_seconds > pair[1].up_to_seconds)
        {
            return Some("scheduler.startDelays: upToSeconds must not decrease".into());
        }
        if self.durations.min_seconds > self.durations.max_seconds {
            return Some("scheduler.durations: minSeconds is above maxSeconds".into());
        }
        None
    }

    /// The delay of the scheduled refresh of `dataset` at `slot`.
    pub fn start_delay(&self, dataset: &str, slot: Timestamp) -> SignedDuration {
        let draw = unit(mix(self.seed, dataset, slot.as_second()));
        let spread = unit(mix(self.seed ^ 0x5eed, dataset, slot.as_second()));
        let mut cumulative = 0.0;
        let mut from = 0;
        for band in &self.start_delays {
            cumulative += band.share;
            if draw < cumulative {
                return between(from, band.up_to_seconds, spread);
            }
            from = band.up_to_seconds;
        }
        SignedDuration::from_secs(i64::try_from(from).unwrap_or(i64::MAX))
    }

    /// The refresh duration of `dataset`, in seconds.
    pub fn duration_seconds(&self, dataset: &str) -> u64 {
        let draw = unit(mix(self.seed ^ 0xd0a7, dataset, 0));
        let range = self.durations.max_seconds - self.durations.min_seconds;
        self.durations.min_seconds + (draw * range as f64).round() as u64
    }
}

fn between(from: u64, to: u64, spread: f64) -> SignedDuration {
    let seconds = from as f64 + spread * to.saturating_sub(from) as f64;
    SignedDuration::from_secs_f64(seconds)
}

/// A 64-bit hash of the seed, the dataset and a number (splitmix64 over FNV-1a).
fn mix(seed: u64, dataset: &str, n: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dataset.bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ seed.rotate_left(17) ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in [0, 1).
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The zone of a schedule's `localTimeZoneId`: a Windows id (as Power BI stores them) or an
/// IANA name; UTC when neither is known.
pub fn schedule_zone(local_time_zone_id: &str) -> TimeZone {
    crate::windows_zones::iana_zone(local_time_zone_id)
        .and_then(|iana| TimeZone::get(iana).ok())
        .or_else(|| TimeZone::get(local_time_zone_id).ok())
        .unwrap_or(TimeZone::UTC)
}

/// The slots of `schedule` in `(after, until]`, oldest first (whether it is enabled is the
/// caller's concern).
pub fn slots_between(
    schedule: &RefreshSchedule,
    after: Timestamp,
    until: Timestamp,
) -> Vec<Timestamp> {
    let zone = schedule_zone(&schedule.local_time_zone_id);
    let times: Vec<Time> = schedule
        .times
        .iter()
        .filter_map(|t| Time::strptime("%H:%M", t).ok())
        .collect();
    let mut found = Vec::new();
    let first: Date = after.to_zoned(zone.clone()).date();
    let last: Date = until.to_zoned(zone.clone()).date();
    let mut day = first;
    while day <= last {
        let name = DAYS[day.weekday().to_monday_zero_offset() as usize];
        if schedule.days.iter().any(|d| d == name) {
            for time in &times {
                if let Ok(zoned) = day.to_datetime(*time).to_zoned(zone.clone()) {
                    let slot = zoned.timestamp();
                    if slot > after && slot <= until {
                        found.push(slot);
                    }
                }
            }
        }
        match day.checked_add(1.day()) {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    found.sort();
    found
}

/// Where a dataset's scheduler stands: slots up to `checked_until` are handled, and `due` holds
/// the scheduled refreshes drawn for them that have not started yet.
#[derive(Debug, Clone, Default)]
pub struct SlotCursor {
    pub(crate) checked_until: Option<Timestamp>,
    /// (slot, when its refresh starts), oldest first.
    pub(crate) due: Vec<(Timestamp, Timestamp)>,
}

impl SlotCursor {
    /// Finds the slots passed since the last look and draws when their refreshes start; a
    /// disabled schedule's slots are skipped, and what was due under it is dropped. Returns the
    /// refreshes due by `now` (slot, start), oldest first.
    pub fn advance(
        &mut self,
        dataset: &str,
        schedule: &RefreshSchedule,
        now: Timestamp,
        config: &SchedulerConfig,
    ) -> Vec<(Timestamp, Timestamp)> {
        let after = self.checked_until.unwrap_or(now);
        self.checked_until = Some(now.max(after));
        if !schedule.enabled {
            self.due.clear();
            return Vec::new();
        }
        for slot in slots_between(schedule, after, now) {
            self.due
                .push((slot, slot + config.start_delay(dataset, slot)));
        }
        self.due.sort_by_key(|(_, start)| *start);
        let ready = self
            .due
            .iter()
            .take_while(|(_, start)| *start <= now)
            .count();
        self.due.drain(..ready).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(days: &[&str], times: &[&str], zone: &str) -> RefreshSchedule {
        RefreshSchedule {
            days: days.iter().map(|d| d.to_string()).collect(),
            times: times.iter().map(|t| t.to_string()).collect(),
            enabled: true,
            local_time_zone_id: zone.into(),
            notify_option: "NoNotification".into(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn slots_follow_days_times_and_the_zone_with_daylight_saving() {
        // 2026-12-07 is a Monday; London is on GMT in December.
        let s = schedule(&["Monday"], &["07:00", "19:30"], "GMT Standard Time");
        let slots = slots_between(&s, at("2026-12-06T00:00:00Z"), at("2026-12-14T00:00:00Z"));
        assert_eq!(
            slots,
            [at("2026-12-07T07:00:00Z"), at("2026-12-07T19:30:00Z")]
        );
        // In July London is on BST: 07:00 local is 06:00 UTC.
        let slots = slots_between(&s, at("2026-07-05T00:00:00Z"), at("2026-07-07T00:00:00Z"));
        assert_eq!(
            slots,
            [at("2026-07-06T06:00:00Z"), at("2026-07-06T18:30:00Z")]
        );
        // Sydney (UTC+11 in December): Monday 07:00 there is Sunday 20:00 UTC.
        let s = schedule(&["Monday"], &["07:00"], "AUS Eastern Standard Time");
        let slots = slots_between(&s, at("2026-12-05T00:00:00Z"), at("2026-12-08T00:00:00Z"));
        assert_eq!(slots, [at("2026-12-06T20:00:00Z")]);
    }

    #[test]
    fn the_window_is_open_before_and_closed_after() {
        let s = schedule(&DAYS, &["10:00"], "UTC");
        assert!(
            slots_between(&s, at("2026-12-07T10:00:00Z"), at("2026-12-08T09:59:59Z")).is_empty()
        );
        assert_eq!(
            slots_between(&s, at("2026-12-07T09:59:59Z"), at("2026-12-07T10:00:00Z")),
            [at("2026-12-07T10:00:00Z")]
        );
    }

    #[test]
    fn delays_follow_the_bands_and_replay_from_the_seed() {
        let config = SchedulerConfig::default();
        let start = at("2026-01-01T00:00:00Z");
        let delays: Vec<f64> = (0..20_000)
            .map(|i| {
                let slot = start + SignedDuration::from_mins(30 * i);
                config
                    .start_delay(&format!("ds-{}", i % 97), slot)
                    .as_secs_f64()
            })
            .collect();
        let share = |lo: f64, hi: f64| {
            delays.iter().filter(|d| **d >= lo && **d < hi).count() as f64 / delays.len() as f64
        };
        assert!(
            (share(0.0, 300.0) - 0.80).abs() < 0.02,
            "{}",
            share(0.0, 300.0)
        );
        assert!(
            (share(300.0, 900.0) - 0.18).abs() < 0.02,
            "{}",
            share(300.0, 900.0)
        );
        assert!(
            (share(900.0, 3600.0) - 0.02).abs() < 0.01,
            "{}",
            share(900.0, 3600.0)
        );
        assert!(delays.iter().all(|d| *d <= 3600.0));
        // The same seed gives the same delays; another seed others.
        let again = config.start_delay("ds-1", start);
        assert_eq!(again, config.start_delay("ds-1", start));
        let other = SchedulerConfig {
            seed: 2,
            ..config.clone()
        };
        let differ = (0..50)
            .filter(|i| {
                let slot = start + SignedDuration::from_hours(*i);
                other.start_delay("ds", slot) != config.start_delay("ds", slot)
            })
            .count();
        assert!(differ > 45, "{differ}");
    }

    #[test]
    fn durations_stay_in_range_and_some_exceed_twenty_minutes() {
        let config = SchedulerConfig::default();
        let durations: Vec<u64> = (0..200)
            .map(|i| config.duration_seconds(&format!("d{i}")))
            .collect();
        assert!(durations.iter().all(|d| (120..=2400).contains(d)));
        assert!(durations.iter().filter(|d| **d > 1200).count() > 50);
        assert_eq!(config.duration_seconds("d7"), durations[7]);
    }

    #[test]
    fn the_cursor_releases_each_slot_once_when_its_delay_has_passed() {
        let config = SchedulerConfig {
            start_delays: vec![DelayBand {
                share: 1.0,
                up_to_seconds: 600,
            }],
            ..SchedulerConfig::default()
        };
        let s = schedule(&DAYS, &["10:00"], "UTC");
        let mut cursor = SlotCursor::default();
        assert!(
            cursor
                .advance("d", &s, at("2026-12-07T09:00:00Z"), &config)
                .is_empty()
        );
        // The slot has passed, its delay (up to 10 minutes) may not have.
        let mut released = cursor.advance("d", &s, at("2026-12-07T10:00:00Z"), &config);
        released.extend(cursor.advance("d", &s, at("2026-12-07T10:10:00Z"), &config));
        assert_eq!(released.len(), 1, "{released:?}");
        let (slot, start) = released[0];
        assert_eq!(slot, at("2026-12-07T10:00:00Z"));
        assert_eq!(start, slot + config.start_delay("d", slot));
        assert!(
            cursor
                .advance("d", &s, at("2026-12-07T12:00:00Z"), &config)
                .is_empty()
        );
        // A day later, the next slot: once.
        assert_eq!(
            cursor
                .advance("d", &s, at("2026-12-08T11:00:00Z"), &config)
                .len(),
            1
        );
    }

    #[test]
    fn a_disabled_schedule_skips_its_slots_and_drops_what_was_due() {
        let config = SchedulerConfig {
            start_delays: vec![DelayBand {
                share: 1.0,
                up_to_seconds: 3600,
            }],
            seed: 3,
            ..SchedulerConfig::default()
        };
        let mut s = schedule(&DAYS, &["10:00"], "UTC");
        let mut cursor = SlotCursor::default();
        cursor.advance("d", &s, at("2026-12-07T09:00:00Z"), &config);
        let slot = at("2026-12-07T10:00:00Z");
        let start = slot + config.start_delay("d", slot);
        // Stop just after the slot, before its refresh starts (the delay is under an hour).
        let just_after = slot + SignedDuration::from_secs(1);
        assert!(start > just_after, "seed 3 draws a delay over a second");
        assert!(cursor.advance("d", &s, just_after, &config).is_empty());
        s.enabled = false;
        assert!(
            cursor
                .advance("d", &s, at("2026-12-07T12:00:00Z"), &config)
                .is_empty()
        );
        s.enabled = true;
        assert!(
            cursor
                .advance("d", &s, at("2026-12-07T13:00:00Z"), &config)
                .is_empty()
        );
    }

    #[test]
    fn bad_bands_are_named() {
        let mut config = SchedulerConfig::default();
        assert_eq!(config.problem(), None);
        config.start_delays[0].share = 0.5;
        assert!(config.problem().unwrap().contains("add up to 1"));
        let config = SchedulerConfig {
            durations: DurationRange {
                min_seconds: 10,
                max_seconds: 5,
            },
            ..SchedulerConfig::default()
        };
        assert!(config.problem().unwrap().contains("minSeconds"));
    }
}
