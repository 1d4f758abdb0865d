//! Xero's API limits: per app across all organisations (a minute), and per app in one
//! organisation (a minute and a day), each in fixed windows of its own.

use jiff::Timestamp;

use crate::seed::{RateLimit, SimConfig};
use crate::state::traffic::Traffic;

/// One of Xero's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XeroLimit {
    /// Calls per minute of the app across all organisations.
    AppMinute,
    /// Calls per minute of the app in one organisation.
    Minute,
    /// Calls per day of the app in one organisation.
    Day,
}

impl XeroLimit {
    /// The `X-Rate-Limit-Problem` value naming it.
    pub fn problem(self) -> &'static str {
        match self {
            Self::AppMinute => "appminute",
            Self::Minute => "minute",
            Self::Day => "day",
        }
    }
}

/// The calls left under each limit that counted a call, as Xero's `X-*Limit-Remaining` headers
/// tell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallsLeft {
    pub app_minute: u32,
    /// With the organisation's limits: (minute, day).
    pub organisation: Option<(u32, u32)>,
}

impl CallsLeft {
    /// The response headers that carry them.
    pub fn headers(self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("x-appminlimit-remaining", self.app_minute.to_string())];
        if let Some((minute, day)) = self.organisation {
            headers.push(("x-minlimit-remaining", minute.to_string()));
            headers.push(("x-daylimit-remaining", day.to_string()));
        }
        headers
    }
}

/// Counts the calls a refresh made in the organisation against the day only, or none when too
/// few are left. The connector is taken to pace itself within the minute limits (as clients
/// honouring `Retry-After` do), so only a used-up day fails a refresh (a guess: how Power BI's
/// Xero connector meets Xero's limits is UNCONFIRMED).
pub fn count_refresh_calls(
    traffic: &mut Traffic,
    config: &SimConfig,
    (client_id, tenant_id): (&str, &str),
    at: Timestamp,
) -> bool {
    let tenant = tenant_id.to_ascii_lowercase();
    let window = day_window(config, client_id, &tenant);
    traffic
        .take_many(&[window], config.xero_calls_per_refresh, at)
        .is_ok()
}

/// The day window of the app in the organisation (`tenant` in lower case).
fn day_window(config: &SimConfig, client_id: &str, tenant: &str) -> (String, RateLimit) {
    (
        format!("xero-day:{client_id}:{tenant}"),
        RateLimit {
            requests: config.xero_organisation_calls_per_day,
            window_seconds: 24 * 3600,
        },
    )
}

/// Counts `calls` calls of the app `client_id` (in the organisation `tenant_id` when the calls
/// name one) at `at`, or none when a limit has too few left: that limit and the seconds until
/// its window ends.
pub fn count_calls(
    traffic: &mut Traffic,
    config: &SimConfig,
    (client_id, tenant_id): (&str, Option<&str>),
    calls: u32,
    at: Timestamp,
) -> Result<CallsLeft, (XeroLimit, u64)> {
    let mut windows = vec![(
        XeroLimit::AppMinute,
        format!("xero-app:{client_id}"),
        RateLimit {
            requests: config.xero_app_calls_per_minute,
            window_seconds: 60,
        },
    )];
    if let Some(tenant) = tenant_id {
        let tenant = tenant.to_ascii_lowercase();
        windows.push((
            XeroLimit::Minute,
            format!("xero-minute:{client_id}:{tenant}"),
            RateLimit {
                requests: config.xero_organisation_calls_per_minute,
                window_seconds: 60,
            },
        ));
        let (key, limit) = day_window(config, client_id, &tenant);
        windows.push((XeroLimit::Day, key, limit));
    }
    let keyed: Vec<(String, RateLimit)> = windows
        .iter()
        .map(|(_, key, limit)| (key.clone(), *limit))
        .collect();
    match traffic.take_many(&keyed, calls, at) {
        Ok(left) => Ok(CallsLeft {
            app_minute: left[0],
            organisation: (left.len() == 3).then(|| (left[1], left[2])),
        }),
        Err((index, wait)) => Err((windows[index].0, wait)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organisations_limits_are_its_own_and_the_app_minute_is_shared() {
        let config = SimConfig {
            xero_organisation_calls_per_minute: 3,
            xero_organisation_calls_per_day: 4,
            ..SimConfig::default()
        };
        let mut traffic = Traffic::default();
        let t0: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        let left = count_calls(&mut traffic, &config, ("app", Some("T1")), 3, t0).unwrap();
        assert_eq!(left.organisation, Some((0, 1)));
        assert_eq!(left.app_minute, 10_000 - 3);
        assert_eq!(
            count_calls(&mut traffic, &config, ("app", Some("t1")), 1, t0),
            Err((XeroLimit::Minute, 60))
        );
        // Another organisation, and a call naming none, are not held back.
        assert!(count_calls(&mut traffic, &config, ("app", Some("t2")), 1, t0).is_ok());
        let left = count_calls(&mut traffic, &config, ("app", None), 1, t0).unwrap();
        assert_eq!((left.app_minute, left.organisation), (10_000 - 5, None));
        // A minute later the minute window is new, the day has one call left.
        let t1 = t0 + jiff::SignedDuration::from_secs(61);
        assert_eq!(
            count_calls(&mut traffic, &config, ("app", Some("t1")), 2, t1),
            Err((XeroLimit::Day, 24 * 3600 - 61))
        );
        let left = count_calls(&mut traffic, &config, ("app", Some("t1")), 1, t1).unwrap();
        assert_eq!(left.organisation, Some((2, 0)));
    }
}
