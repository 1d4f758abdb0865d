//! Behaviour switches, lifetimes and limits.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::state::powerbi::scheduler::SchedulerConfig;

/// Lifetimes, limits and the behaviours the specs mark UNCONFIRMED, each switchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SimConfig {
    /// Virtual time at start-up; the real current time when absent. Fixing it keeps tests away
    /// from midnight, where the daily refresh quota resets.
    pub start_time: Option<Timestamp>,
    /// How many times faster than real time the virtual clock runs (1). Benchmarks run a day in
    /// minutes with the operator's `--time-scale` set to the same factor.
    pub time_scale: f64,
    /// `expires_in` of Entra access tokens (the service says 3599).
    pub entra_token_lifetime_seconds: u64,
    /// Xero access token lifetime (documented: 1800).
    pub xero_access_token_lifetime_seconds: u64,
    /// How long a rotated Xero refresh token keeps working (documented: 30 minutes).
    pub xero_refresh_token_grace_seconds: u64,
    /// A Xero refresh token nobody uses expires after this long (documented: 60 days).
    pub xero_refresh_token_unused_lifetime_seconds: u64,
    /// What a refresh token presented again inside its grace period returns (UNCONFIRMED).
    pub xero_grace_reuse: GraceReuse,
    /// Lifetime of an authorization code. Xero's is undocumented (a third party says about
    /// 30 s); 5 minutes here so a slow test does not trip over it.
    pub xero_authorization_code_lifetime_seconds: u64,
    /// How long a refresh runs (in virtual seconds) unless the dataset or the request says
    /// otherwise. Short so that tests that do not move the clock still see refreshes end.
    pub refresh_duration_seconds: u64,
    /// Status of a refresh request while another runs: 400 per the 2025 docs, 409 per 2021.
    pub concurrent_refresh_status: u16,
    /// Status of a refresh request past the daily quota (UNCONFIRMED: 400 or 429).
    pub daily_limit_status: u16,
    /// Refreshes per dataset per day on shared capacity, scheduled ones included.
    pub shared_daily_refresh_limit: u32,
    /// Refreshes per dataset per day on Premium; unlimited when absent.
    pub premium_daily_refresh_limit: Option<u32>,
    /// How the daily quota is counted: the docs say a day (reset at 12:01 a.m.), the live error
    /// message says "last 24 hours".
    pub daily_limit_window: DailyLimitWindow,
    /// Consecutive failed refreshes after which the schedule is switched off (documented: 4).
    pub failures_before_schedule_disabled: u32,
    /// Whether failed API refreshes count toward that threshold (UNCONFIRMED; by default only
    /// scheduled refreshes do).
    pub count_api_refresh_failures: bool,
    /// Schedule slots per day on shared capacity (documented: 8).
    pub shared_schedule_slots: usize,
    /// Schedule slots per day on Premium (documented: 48).
    pub premium_schedule_slots: usize,
    /// The time the service picks when an enabled schedule has no times (UNCONFIRMED which).
    pub default_schedule_time: String,
    /// Whether a disabling schedule PATCH is rejected when any other field is present (`true`),
    /// or only when another field differs from the stored value (`false`).
    pub strict_disable_request: bool,
    /// Whether a service principal's schedule change is refused while the resulting schedule
    /// keeps `notifyOption: MailOnFailure` ("Invalid NotifyOption value 'MailOnFailure' for app
    /// only owner requests"; the swagger says service principals only support `NoNotification`;
    /// that the stored value counts, a disabling change included, is UNCONFIRMED).
    pub refuse_stored_mail_on_failure: bool,
    /// Cloud credentials belong to the owner, so a Take Over by someone else drops them
    /// (plausible, UNCONFIRMED).
    pub take_over_clears_credentials: bool,
    /// Cloud connections belong to their owner, so after a Take Over by someone else the
    /// dataset's datasources have new datasource ids (plausible, UNCONFIRMED).
    pub take_over_rebinds_datasources: bool,
    /// Whether Update Datasource tests the Xero token and rejects an unknown, revoked, expired or
    /// other-organisation one, as Power BI tests the connection of many source types (that it
    /// does so for the Xero connector is UNCONFIRMED).
    pub validate_credentials_on_update: bool,
    /// Status of a change by someone who does not own the dataset. The live message is "This
    /// operation is only supported for the dataset owner"; its status is undocumented, 400 in
    /// users' reports (UNCONFIRMED; 403 is the other plausible one).
    pub owner_error_status: u16,
    /// Whether a Power BI POST over HTTP/1.1 that states no length (no `Content-Length`, no
    /// `Transfer-Encoding`) is answered 411, as several Microsoft front ends do.
    pub require_content_length: bool,
    /// Refresh history entries kept per dataset (documented: up to 60).
    pub history_retention: usize,
    /// Power BI's own scheduler: scheduled refreshes started at each enabled slot, late by a
    /// drawn delay (off by default).
    pub scheduler: SchedulerConfig,
    /// Xero's app-wide limit on API calls per minute, across all organisations (documented:
    /// 10,000). Answered with 429, `Retry-After` and `X-Rate-Limit-Problem: appminute`; every
    /// answer carries `X-AppMinLimit-Remaining`.
    pub xero_app_calls_per_minute: u32,
    /// Xero's limit on calls per minute for one app in one organisation, on calls naming a
    /// tenant (documented: 60). Answered with 429, `Retry-After` and `X-Rate-Limit-Problem:
    /// minute`; every answer carries `X-MinLimit-Remaining`.
    pub xero_organisation_calls_per_minute: u32,
    /// Xero's limit on calls per day for one app in one organisation (documented: 5,000; 1,000
    /// for Starter-tier apps by third-party reports). Counted in fixed 24-hour windows that
    /// start at the first call (Xero says only that windows are fixed and reset at a different
    /// time for each tenant). `X-Rate-Limit-Problem: day`; `X-DayLimit-Remaining` on every
    /// answer.
    pub xero_organisation_calls_per_day: u32,
    /// The Xero API calls a refresh of a dataset with a Xero datasource makes, counted against
    /// the app's day in the organisation when it ends; a refresh that finds too few left fails
    /// as the connector would on a 429 (how many calls Power BI's Xero connector makes, that it
    /// paces itself within the minute limits, and how it reports a 429 are UNCONFIRMED).
    pub xero_calls_per_refresh: u32,
    /// Per-principal request limit for the Power BI and Xero APIs; off when absent.
    pub rate_limit: Option<RateLimit>,
    /// Host used in `@odata.context` values, as the live service sends them.
    pub odata_context_host: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            start_time: None,
            time_scale: 1.0,
            entra_token_lifetime_seconds: 3599,
            xero_access_token_lifetime_seconds: 1800,
            xero_refresh_token_grace_seconds: 1800,
            xero_refresh_token_unused_lifetime_seconds: 60 * 24 * 3600,
            xero_grace_reuse: GraceReuse::NewChild,
            xero_authorization_code_lifetime_seconds: 300,
            refresh_duration_seconds: 2,
            concurrent_refresh_status: 400,
            daily_limit_status: 400,
            shared_daily_refresh_limit: 8,
            premium_daily_refresh_limit: None,
            daily_limit_window: DailyLimitWindow::UtcDay,
            failures_before_schedule_disabled: 4,
            count_api_refresh_failures: false,
            shared_schedule_slots: 8,
            premium_schedule_slots: 48,
            default_schedule_time: "00:00".to_owned(),
            strict_disable_request: true,
            refuse_stored_mail_on_failure: true,
            take_over_clears_credentials: true,
            take_over_rebinds_datasources: true,
            validate_credentials_on_update: true,
            owner_error_status: 400,
            require_content_length: true,
            history_retention: 60,
            scheduler: SchedulerConfig::default(),
            xero_app_calls_per_minute: 10_000,
            xero_organisation_calls_per_minute: 60,
            xero_organisation_calls_per_day: 5_000,
            xero_calls_per_refresh: 20,
            rate_limit: None,
            odata_context_host: "https://wabi-north-europe-redirect.analysis.windows.net"
                .to_owned(),
        }
    }
}

/// Behaviour of a Xero refresh token presented again inside its grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GraceReuse {
    /// A new child refresh token is minted each time; earlier children stay valid.
    NewChild,
    /// The child issued at the first exchange is returned again.
    SameChild,
}

/// The window the daily refresh quota is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DailyLimitWindow {
    /// The calendar day in UTC of the virtual clock.
    UtcDay,
    /// The 24 hours before the request.
    Rolling24Hours,
}

/// A request limit per principal, counted in fixed windows of virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub window_seconds: u64,
}
