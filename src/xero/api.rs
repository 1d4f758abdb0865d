//! api.xero.com: which organisations (tenants) a user's token reaches, the one named in a
//! XeroDataset, and what Xero's limits leave of the app's calls in it.

use jiff::Timestamp;
use reqwest::header::{ACCEPT, HeaderMap};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::endpoints::join;
use crate::error::{ClientError, ErrorCategory, Service};
use crate::http::{
    Answer, Call, RetryPolicy, from_service_json, send_with_retry, service_time, status_error,
    truncate,
};
use crate::matches::Matches;
use crate::secret::SecretString;

const CALL: Call = Call {
    service: Service::Xero,
    operation: "GetConnections",
    idempotent: true,
};

const ORGANISATION_CALL: Call = Call {
    service: Service::Xero,
    operation: "GetOrganisation",
    idempotent: true,
};

/// What Xero's limits leave of the app's calls in one organisation, as the headers of a call
/// naming it tell (absent when Xero sends none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XeroAllowance {
    /// `X-DayLimit-Remaining`: calls left today in the organisation.
    pub day: Option<u32>,
    /// `X-MinLimit-Remaining`: calls left this minute in the organisation.
    pub minute: Option<u32>,
    /// `X-AppMinLimit-Remaining`: calls left this minute across all organisations.
    pub app_minute: Option<u32>,
}

impl XeroAllowance {
    fn from_headers(headers: &HeaderMap) -> Self {
        let read = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse().ok())
        };
        Self {
            day: read("x-daylimit-remaining"),
            minute: read("x-minlimit-remaining"),
            app_minute: read("x-appminlimit-remaining"),
        }
    }
}

/// One tenant the user connected to the app.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XeroConnection {
    /// The connection id.
    pub id: String,
    /// The tenant id, sent as `xero-tenant-id` (for organisations, the OrganisationID).
    pub tenant_id: String,
    /// `ORGANISATION`, `PRACTICE`, ...
    pub tenant_type: Option<String>,
    /// The organisation's display name (older responses lack it).
    pub tenant_name: Option<String>,
    /// Shared by the connections authorised in one consent.
    pub auth_event_id: Option<String>,
    /// When the tenant was first connected (Xero sends no zone: UTC).
    #[serde(default, deserialize_with = "service_time::deserialize")]
    pub created_date_utc: Option<Timestamp>,
    /// When it was last (re)connected.
    #[serde(default, deserialize_with = "service_time::deserialize")]
    pub updated_date_utc: Option<Timestamp>,
}

/// Picks the connection whose `tenantName` is exactly `organisation` (surrounding whitespace
/// aside). Names are not unique in Xero, so several matches are an error, not a guess.
pub fn find_organisation<'a>(
    connections: &'a [XeroConnection],
    organisation: &str,
) -> Result<&'a XeroConnection, ClientError> {
    let wanted = organisation.trim();
    let matches = connections
        .iter()
        .filter(|connection| connection.tenant_name.as_deref().map(str::trim) == Some(wanted));
    match Matches::of(matches) {
        Matches::One(one) => Ok(one),
        Matches::None => {
            let mut names: Vec<&str> = connections
                .iter()
                .filter_map(|connection| connection.tenant_name.as_deref())
                .collect();
            names.sort_unstable();
            let known = if names.is_empty() {
                "the token reaches no named organisation".to_owned()
            } else {
                format!("connected: {}", truncate(&names.join(", "), 300))
            };
            Err(ClientError::new(
                Service::Xero,
                ErrorCategory::OrganisationNotFound,
                format!("no Xero connection is named {wanted:?} ({known})"),
            ))
        }
        Matches::Several(several) => {
            let ids: Vec<&str> = several
                .iter()
                .map(|connection| connection.tenant_id.as_str())
                .collect();
            Err(ClientError::new(
                Service::Xero,
                ErrorCategory::OrganisationAmbiguous,
                format!(
                    "{} Xero connections are named {wanted:?} (tenant ids {})",
                    several.len(),
                    ids.join(", ")
                ),
            ))
        }
    }
}

/// The Xero API: its connections endpoint (`{api}/connections`) and the Accounting API's
/// organisation (`{api}/api.xro/2.0/Organisation`).
#[derive(Debug, Clone)]
pub struct XeroApi {
    http: reqwest::Client,
    url: Url,
    organisation_url: Url,
    retry: RetryPolicy,
}

impl XeroApi {
    /// The endpoint of the API at `api_url` (`https://api.xero.com/`).
    pub fn new(
        http: reqwest::Client,
        api_url: &Url,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http,
            url: join(api_url, &["connections"])?,
            organisation_url: join(api_url, &["api.xro", "2.0", "Organisation"])?,
            retry,
        })
    }

    /// The tenants `access_token` reaches.
    pub async fn list(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<XeroConnection>, ClientError> {
        let answer = send_with_retry(&self.retry, CALL, || {
            self.http
                .get(self.url.clone())
                .bearer_auth(access_token.expose())
                .header(ACCEPT, "application/json")
        })
        .await?;
        if !answer.status.is_success() {
            return Err(error_of(CALL, &answer));
        }
        from_service_json(&answer.body).map_err(|error| {
            ClientError::new(
                Service::Xero,
                ErrorCategory::MalformedResponse,
                format!(
                    "Xero GetConnections answered with a body that does not parse: {}",
                    truncate(&error.to_string(), 200)
                ),
            )
            .with_request_id(answer.request_id.clone())
        })
    }

    /// The connection of the organisation named `organisation` (see [`find_organisation`]).
    pub async fn organisation(
        &self,
        access_token: &SecretString,
        organisation: &str,
    ) -> Result<XeroConnection, ClientError> {
        let connections = self.list(access_token).await?;
        find_organisation(&connections, organisation).cloned()
    }

    /// What Xero's limits leave of the app's calls in the organisation `tenant_id`, read from
    /// the cheapest call that names it (`GET Organisation`, scope `accounting.settings.read`).
    /// A limit with nothing left is a `Throttled` error with Xero's `Retry-After`, which says
    /// when a refresh could read the organisation again.
    pub async fn allowance(
        &self,
        access_token: &SecretString,
        tenant_id: &str,
    ) -> Result<XeroAllowance, ClientError> {
        let answer = send_with_retry(&self.retry, ORGANISATION_CALL, || {
            self.http
                .get(self.organisation_url.clone())
                .bearer_auth(access_token.expose())
                .header("xero-tenant-id", tenant_id)
                .header(ACCEPT, "application/json")
        })
        .await?;
        if !answer.status.is_success() {
            return Err(error_of(ORGANISATION_CALL, &answer));
        }
        Ok(XeroAllowance::from_headers(&answer.headers))
    }
}

/// Xero's problem body: `{"Title":…,"Status":401,"Detail":"TokenExpired: token expired at …"}`.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
}

fn error_of(call: Call, answer: &Answer) -> ClientError {
    let problem: Problem = from_service_json(&answer.body).unwrap_or_default();
    let rate_limit = answer
        .headers
        .get("x-rate-limit-problem")
        .and_then(|value| value.to_str().ok())
        .filter(|_| answer.status == StatusCode::TOO_MANY_REQUESTS);
    let detail = match rate_limit {
        Some(limit) => Some(limit_text(limit)),
        None => problem.detail.clone().or(problem.title.clone()),
    };
    let error = status_error(call, answer, detail.as_deref());
    let expired = answer.status == StatusCode::UNAUTHORIZED
        && problem
            .detail
            .as_deref()
            .is_some_and(|detail| detail.starts_with("TokenExpired"));
    if expired {
        error.with_category(ErrorCategory::TokenExpired)
    } else {
        error
    }
}

/// Which of Xero's limits `X-Rate-Limit-Problem` names, in words (compared case-insensitively;
/// older answers said `Daily` and `Minute`).
fn limit_text(problem: &str) -> String {
    match problem.trim().to_ascii_lowercase().as_str() {
        "day" | "daily" => "the app's calls for the day in this organisation are used up".into(),
        "minute" => "the app's calls for the minute in this organisation are used up".into(),
        "appminute" => "the app's calls for the minute across all organisations are used up".into(),
        "concurrent" => "too many of the app's calls are in flight in this organisation".into(),
        other => format!("Xero's {} limit was reached", truncate(other, 40)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections() -> Vec<XeroConnection> {
        from_service_json(
            br#"[
              {"id":"c1","tenantId":"t1","tenantType":"ORGANISATION","tenantName":"Demo Company (UK)","createdDateUtc":"2020-03-18T21:20:07.7179250","updatedDateUtc":"2020-03-18T21:20:07.7179250"},
              {"id":"c2","tenantId":"t2","tenantType":"ORGANISATION","tenantName":"Twin Ltd"},
              {"id":"c3","tenantId":"t3","tenantType":"ORGANISATION","tenantName":"Twin Ltd"},
              {"id":"c4","tenantId":"t4","tenantType":"PRACTICE"}
            ]"#,
        )
        .unwrap()
    }

    #[test]
    fn zoneless_dates_parse_as_utc() {
        let all = connections();
        assert_eq!(
            all[0].created_date_utc.unwrap().to_string(),
            "2020-03-18T21:20:07.717925Z"
        );
        assert_eq!(all[3].tenant_name, None);
    }

    #[test]
    fn exact_match_only() {
        let all = connections();
        assert_eq!(
            find_organisation(&all, " Demo Company (UK) ")
                .unwrap()
                .tenant_id,
            "t1"
        );
        let error = find_organisation(&all, "demo company (uk)").unwrap_err();
        assert_eq!(error.category(), ErrorCategory::OrganisationNotFound);
        assert!(
            error.message().contains("Demo Company (UK), Twin Ltd"),
            "{}",
            error.message()
        );
        let error = find_organisation(&all, "Twin Ltd").unwrap_err();
        assert_eq!(error.category(), ErrorCategory::OrganisationAmbiguous);
        assert!(error.message().contains("t2, t3"));
        let error = find_organisation(&[], "Demo").unwrap_err();
        assert_eq!(error.category(), ErrorCategory::OrganisationNotFound);
    }

    #[test]
    fn each_limit_is_named_in_words_and_the_allowance_read_from_the_headers() {
        assert!(limit_text("Daily").contains("for the day in this organisation"));
        assert!(limit_text("day").contains("for the day"));
        assert!(limit_text("minute").contains("for the minute in this organisation"));
        assert!(limit_text("appminute").contains("across all organisations"));
        assert_eq!(limit_text(" Burst "), "Xero's burst limit was reached");
        let mut headers = HeaderMap::new();
        headers.insert("x-daylimit-remaining", "4999".parse().unwrap());
        headers.insert("x-minlimit-remaining", " 59 ".parse().unwrap());
        assert_eq!(
            XeroAllowance::from_headers(&headers),
            XeroAllowance {
                day: Some(4999),
                minute: Some(59),
                app_minute: None
            }
        );
    }

    #[test]
    fn expired_tokens_are_told_apart() {
        let answer = |status: u16, body: &str| Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            request_id: None,
        };
        let expired = error_of(
            CALL,
            &answer(
                401,
                r#"{"Type":null,"Title":"Unauthorized","Status":401,"Detail":"TokenExpired: token expired at 01/01/2024 00:00:00","Instance":"x","Extensions":{}}"#,
            ),
        );
        assert_eq!(expired.category(), ErrorCategory::TokenExpired);
        let forbidden = error_of(
            CALL,
            &answer(
                403,
                r#"{"title":"Forbidden","detail":"AuthenticationUnsuccessful"}"#,
            ),
        );
        assert_eq!(forbidden.category(), ErrorCategory::Forbidden);
        assert!(forbidden.message().contains("AuthenticationUnsuccessful"));
    }
}
