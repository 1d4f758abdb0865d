//! Power BI refresh schedules as values: the days and half-hour slots of a schedule in its time
//! zone, compared with what Power BI holds, and turned into instants (daylight saving included).

mod windows_zones;

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};

pub use windows_zones::iana_zone;

use crate::api::DayOfWeek;

/// A time of day Power BI refreshes at: `hh:mm` with minutes 00 or 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotTime {
    hour: i8,
    minute: i8,
}

impl SlotTime {
    /// Parses `hh:mm` with `hh` 00-23 and `mm` 00 or 30.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let invalid = || ScheduleError::InvalidTime(text.to_owned());
        let (hour, minute) = text.split_once(':').ok_or_else(invalid)?;
        if hour.len() != 2 || minute.len() != 2 {
            return Err(invalid());
        }
        let hour: i8 = hour.parse().map_err(|_| invalid())?;
        let minute: i8 = minute.parse().map_err(|_| invalid())?;
        if !(0..24).contains(&hour) || (minute != 0 && minute != 30) {
            return Err(invalid());
        }
        Ok(SlotTime { hour, minute })
    }
}

impl fmt::Display for SlotTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// Why a schedule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule time {0:?}: expected hh:mm with minutes 00 or 30")]
    InvalidTime(String),
    #[error("invalid day {0:?}: expected Monday ... Sunday")]
    InvalidDay(String),
    #[error(
        "unknown time zone {0:?}: expected a Windows time zone id such as \"UTC\" or \"GMT Standard Time\""
    )]
    UnknownTimeZone(String),
}

/// The time zone of a Windows time zone id (or an IANA name).
pub fn time_zone(id: &str) -> Result<TimeZone, ScheduleError> {
    let iana = iana_zone(id).unwrap_or(id);
    TimeZone::get(iana).map_err(|_| ScheduleError::UnknownTimeZone(id.to_owned()))
}

/// A refresh schedule: on which days, at which times, in which time zone, and whether it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSchedule {
    pub enabled: bool,
    /// Monday first.
    pub days: BTreeSet<DayOfWeek>,
    pub times: BTreeSet<SlotTime>,
    /// The Windows time zone id, as Power BI stores it.
    pub time_zone_id: String,
}

impl RefreshSchedule {
    /// Builds a schedule from Power BI's or the spec's strings.
    pub fn parse(
        enabled: bool,
        days: &[impl AsRef<str>],
        times: &[impl AsRef<str>],
        time_zone_id: &str,
    ) -> Result<Self, ScheduleError> {
        Ok(RefreshSchedule {
            enabled,
            days: days
                .iter()
                .map(|d| {
                    DayOfWeek::parse(d.as_ref())
                        .ok_or_else(|| ScheduleError::InvalidDay(d.as_ref().to_owned()))
                })
                .collect::<Result<_, _>>()?,
            times: times
                .iter()
                .map(|t| SlotTime::parse(t.as_ref()))
                .collect::<Result<_, _>>()?,
            time_zone_id: time_zone_id.to_owned(),
        })
    }

    /// Day names in Monday-first order.
    pub fn day_names(&self) -> Vec<String> {
        self.days.iter().map(|d| d.name().to_owned()).collect()
    }

    /// Times as `hh:mm`, earliest first.
    pub fn time_strings(&self) -> Vec<String> {
        self.times.iter().map(ToString::to_string).collect()
    }

    /// The instants of the scheduled slots in `[from, to)`, earliest first. A slot in a gap of
    /// a daylight-saving change moves forward by the gap; in a fold it takes the first of the two
    /// instants (jiff's "compatible" disambiguation, which is also what Windows does).
    pub fn slots_between(&self, zone: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        let mut slots = Vec::new();
        if self.days.is_empty() || self.times.is_empty() || from >= to {
            return slots;
        }
        let first = from.to_zoned(zone.clone()).date();
        let last = to.to_zoned(zone.clone()).date();
        let mut day: Date = first;
        while day <= last {
            if self.days.contains(&DayOfWeek::of(day.weekday())) {
                for time in &self.times {
                    let local = day.at(time.hour, time.minute, 0, 0);
                    if let Ok(instant) = local.to_zoned(zone.clone()).map(|z| z.timestamp())
                        && instant >= from
                        && instant < to
                    {
                        slots.push(instant);
                    }
                }
            }
            match day.checked_add(1.day()) {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        slots.sort();
        slots
    }

    /// The first slot at or after `from`, within the next eight days.
    pub fn next_slot(&self, zone: &TimeZone, from: Timestamp) -> Option<Timestamp> {
        let to = from
            .checked_add(jiff::SignedDuration::from_hours(8 * 24))
            .ok()?;
        self.slots_between(zone, from, to).into_iter().next()
    }

    /// The last slot before `until`, within the previous eight days.
    pub fn previous_slot(&self, zone: &TimeZone, until: Timestamp) -> Option<Timestamp> {
        let from = until
            .checked_sub(jiff::SignedDuration::from_hours(8 * 24))
            .ok()?;
        self.slots_between(zone, from, until).into_iter().last()
    }
}

/// Midnight at the start of the local day of `at` in `zone`, and the next midnight.
pub fn local_day_bounds(zone: &TimeZone, at: Timestamp) -> (Timestamp, Timestamp) {
    let date = at.to_zoned(zone.clone()).date();
    let start = date
        .to_zoned(zone.clone())
        .map(|z| z.timestamp())
        .unwrap_or(at);
    let end = date
        .tomorrow()
        .and_then(|d| d.to_zoned(zone.clone()))
        .map(|z| z.timestamp())
        .unwrap_or(at);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn weekdays(times: &[&str], zone: &str) -> RefreshSchedule {
        RefreshSchedule::parse(
            true,
            &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
            times,
            zone,
        )
        .expect("schedule")
    }

    #[test]
    fn slot_times_must_be_on_the_hour_or_half_hour() {
        assert_eq!(
            SlotTime::parse("06:00").map(|t| t.to_string()),
            Ok("06:00".into())
        );
        assert_eq!(
            SlotTime::parse("23:30").map(|t| t.to_string()),
            Ok("23:30".into())
        );
        for bad in ["06:15", "24:00", "6:00", "06-00", "", "aa:bb", "06:0"] {
            assert!(SlotTime::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn slots_skip_days_not_in_the_schedule() {
        let schedule = weekdays(&["06:00", "12:30"], "UTC");
        let zone = time_zone("UTC").expect("zone");
        // 2026-11-27 is a Friday.
        let slots = schedule.slots_between(
            &zone,
            ts("2026-11-27T00:00:00Z"),
            ts("2026-12-01T00:00:00Z"),
        );
        assert_eq!(
            slots,
            vec![
                ts("2026-11-27T06:00:00Z"),
                ts("2026-11-27T12:30:00Z"),
                ts("2026-11-30T06:00:00Z"),
                ts("2026-11-30T12:30:00Z"),
            ]
        );
    }

    #[test]
    fn slots_follow_daylight_saving_in_the_schedule_zone() {
        let schedule =
            RefreshSchedule::parse(true, &["Sunday", "Monday"], &["06:00"], "GMT Standard Time")
                .expect("schedule");
        let zone = time_zone("GMT Standard Time").expect("zone");
        // The UK moves to BST on 2026-03-29 (a Sunday): 06:00 local is 05:00Z from then on.
        let slots = schedule.slots_between(
            &zone,
            ts("2026-03-22T00:00:00Z"),
            ts("2026-03-31T00:00:00Z"),
        );
        assert_eq!(
            slots,
            vec![
                ts("2026-03-22T06:00:00Z"),
                ts("2026-03-23T06:00:00Z"),
                ts("2026-03-29T05:00:00Z"),
                ts("2026-03-30T05:00:00Z"),
            ]
        );
    }

    #[test]
    fn a_slot_in_the_spring_gap_moves_forward() {
        let schedule = RefreshSchedule::parse(true, &["Sunday"], &["01:30"], "GMT Standard Time")
            .expect("schedule");
        let zone = time_zone("GMT Standard Time").expect("zone");
        // 01:30 does not exist on 2026-03-29 in London; it becomes 02:30 BST = 01:30Z.
        let slot = schedule.next_slot(&zone, ts("2026-03-29T00:00:00Z"));
        assert_eq!(slot, Some(ts("2026-03-29T01:30:00Z")));
    }

    #[test]
    fn next_and_previous_slots_cross_midnight_in_the_schedule_zone() {
        // 23:30 in Sydney is 12:30Z (daylight time in November).
        let schedule =
            RefreshSchedule::parse(true, &["Monday"], &["23:30"], "AUS Eastern Standard Time")
                .expect("schedule");
        let zone = time_zone("AUS Eastern Standard Time").expect("zone");
        // Monday 2026-11-30 23:30 Sydney = 2026-11-30T12:30Z.
        assert_eq!(
            schedule.next_slot(&zone, ts("2026-11-29T12:00:00Z")),
            Some(ts("2026-11-30T12:30:00Z"))
        );
        assert_eq!(
            schedule.previous_slot(&zone, ts("2026-11-30T12:30:00Z")),
            Some(ts("2026-11-23T12:30:00Z"))
        );
    }

    #[test]
    fn local_days_start_at_local_midnight() {
        let zone = time_zone("Pacific Standard Time").expect("zone");
        let (start, end) = local_day_bounds(&zone, ts("2026-11-29T07:59:00Z"));
        assert_eq!(start, ts("2026-11-28T08:00:00Z"));
        assert_eq!(end, ts("2026-11-29T08:00:00Z"));
    }

    #[test]
    fn unknown_zones_are_errors() {
        assert!(time_zone("Mars Standard Time").is_err());
        assert!(time_zone("Europe/Paris").is_ok());
    }
}
