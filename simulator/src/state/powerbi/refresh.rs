//! Refresh history entries: how a refresh ends, what Get Refresh History shows of it, and
//! which refreshes count toward the daily quota.

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::seed::DailyLimitWindow;
use crate::state::powerbi::credential::{Credential, credential_error, pbi_error};
use crate::state::xero::{TokenProblem, XeroState};

/// Counts the Xero API calls a refresh makes in an organisation (the app's client id and the
/// tenant id) when it ends at the given time; false when a limit has too few left.
pub type CountXeroCalls<'a> = dyn FnMut((&str, &str), Timestamp) -> bool + 'a;

/// How a refresh will end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Decided by the credentials the refresh started with.
    Auto,
    /// Succeeds whatever the credentials.
    Completed,
    /// Fails with a processing error.
    Failed,
    /// Fails as a refresh whose Xero access token expired does, whatever the credentials.
    CredentialsExpired,
}

/// A refresh history entry; running while `end` is `None`.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub(crate) request_id: String,
    pub(crate) refresh_type: String,
    pub(crate) start: Timestamp,
    pub(crate) end: Option<Timestamp>,
    pub(crate) ends_at: Timestamp,
    pub(crate) status: String,
    pub(crate) service_exception_json: Option<String>,
    pub(crate) outcome: Outcome,
    /// The credentials each data source held when the refresh started, with its tenant.
    pub(crate) snapshot: Vec<(Option<String>, Option<Credential>)>,
}

/// Why the service refuses to start a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRejection {
    /// Another refresh of the dataset is running.
    InProgress,
    /// The capacity's daily quota is used up.
    DailyLimit,
    /// DirectQuery / LiveConnection models cannot be refreshed.
    NotRefreshable,
}

impl Refresh {
    /// The history entry as Get Refresh History returns it.
    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "requestId": self.request_id,
            "refreshType": self.refresh_type,
            "startTime": format!("{:.3}", self.start),
            "status": self.status,
        });
        let mut attempt =
            json!({"attemptId": 1, "startTime": format!("{:.3}", self.start), "type": "Data"});
        if let Some(end) = self.end {
            entry["endTime"] = json!(format!("{end:.3}"));
            attempt["endTime"] = json!(format!("{end:.3}"));
        }
        if let Some(error) = &self.service_exception_json {
            entry["serviceExceptionJson"] = json!(error);
            attempt["serviceExceptionJson"] = json!(error);
        }
        entry["refreshAttempts"] = json!([attempt]);
        entry
    }

    /// Whether the refresh uses up the daily quota: any but an `OnDemand` one started in the
    /// current window.
    pub fn counts_toward_quota(&self, now: Timestamp, window: DailyLimitWindow) -> bool {
        self.refresh_type != "OnDemand" && in_quota_window(self.start, now, window)
    }

    /// The `serviceExceptionJson` the refresh ends with, or `None` when it succeeds. A refresh
    /// whose credentials work makes its Xero calls, which fail when Xero's limits for the app
    /// in the organisation have too few left.
    pub fn error(&self, xero: &XeroState, count_calls: &mut CountXeroCalls<'_>) -> Option<String> {
        match self.outcome {
            Outcome::Completed => return None,
            Outcome::Failed => {
                return Some(
                    json!({
                        "errorCode": "ModelRefresh_ShortMessage_ProcessingError",
                        "errorDescription": "The refresh failed (a failure injected through the simulator's admin API)."
                    })
                    .to_string(),
                );
            }
            Outcome::CredentialsExpired => return Some(credential_error(TokenProblem::Expired)),
            Outcome::Auto => {}
        }
        for (tenant, credential) in &self.snapshot {
            let Some(credential) = credential else {
                return Some(
                    json!({"errorCode": "ModelRefreshFailed_CredentialsNotSpecified"}).to_string(),
                );
            };
            let problem = match (
                &credential.access_token,
                credential.credential_type.eq_ignore_ascii_case("OAuth2"),
            ) {
                (Some(token), true) => {
                    xero.access_token_problem(token, tenant.as_deref(), self.ends_at)
                }
                _ => Some(TokenProblem::Unknown),
            };
            if let Some(problem) = problem {
                return Some(credential_error(problem));
            }
        }
        for (tenant, credential) in &self.snapshot {
            let token = credential.as_ref().and_then(|c| c.access_token.as_deref());
            let (Some(tenant), Some(token)) = (tenant, token) else {
                continue;
            };
            let Some(client_id) = xero.access_token_client(token) else {
                continue;
            };
            if !count_calls((client_id, tenant), self.ends_at) {
                return Some(throttled_error());
            }
        }
        None
    }
}

/// The error of a refresh that ran into one of Xero's limits: the connector's data access
/// error around Xero's 429 (the shape and wording Power BI reports are UNCONFIRMED; the
/// limit itself is not visible to the refresh, as `X-Rate-Limit-Problem` is a header).
fn throttled_error() -> String {
    pbi_error(
        "DM_GWPipeline_Gateway_MashupDataAccessError",
        "Web.Contents failed to get contents from 'https://api.xero.com/api.xro/2.0/Invoices' (429): Too Many Requests",
        [
            ("Microsoft.Data.Mashup.ValueError.DataSourceKind", "Xero"),
            (
                "Microsoft.Data.Mashup.ValueError.Reason",
                "DataSource.Error",
            ),
        ],
    )
}

fn in_quota_window(start: Timestamp, now: Timestamp, window: DailyLimitWindow) -> bool {
    match window {
        DailyLimitWindow::UtcDay => {
            start.to_zoned(TimeZone::UTC).date() == now.to_zoned(TimeZone::UTC).date()
        }
        DailyLimitWindow::Rolling24Hours => {
            now.duration_since(start) < SignedDuration::from_hours(24)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_window_is_the_utc_day_or_24_hours() {
        let now: Timestamp = "2025-01-06T00:30:00Z".parse().unwrap();
        let yesterday: Timestamp = "2025-01-05T23:30:00Z".parse().unwrap();
        assert!(!in_quota_window(yesterday, now, DailyLimitWindow::UtcDay));
        assert!(in_quota_window(
            yesterday,
            now,
            DailyLimitWindow::Rolling24Hours
        ));
    }
}
