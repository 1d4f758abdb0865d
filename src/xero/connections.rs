//! Xero connections: which organisations (tenants) a user's token reaches, and the one named in
//! a XeroDataset.

use jiff::Timestamp;
use reqwest::header::ACCEPT;
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

/// The Xero API's connections endpoint (`{api}/connections`).
#[derive(Debug, Clone)]
pub struct XeroConnections {
    http: reqwest::Client,
    url: Url,
    retry: RetryPolicy,
}

impl XeroConnections {
    /// The endpoint of the API at `api_url` (`https://api.xero.com/`).
    pub fn new(
        http: reqwest::Client,
        api_url: &Url,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http,
            url: join(api_url, &["connections"])?,
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
            return Err(error_of(&answer));
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
}

/// Xero's problem body: `{"Title":…,"Status":401,"Detail":"TokenExpired: token expired at …"}`.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
}

fn error_of(answer: &Answer) -> ClientError {
    let problem: Problem = from_service_json(&answer.body).unwrap_or_default();
    let rate_limit = answer
        .headers
        .get("x-rate-limit-problem")
        .and_then(|value| value.to_str().ok())
        .filter(|_| answer.status == StatusCode::TOO_MANY_REQUESTS);
    let detail = match rate_limit {
        Some(limit) => Some(format!("rate limit {limit}")),
        None => problem.detail.clone().or(problem.title.clone()),
    };
    let error = status_error(CALL, answer, detail.as_deref());
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

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
    fn expired_tokens_are_told_apart() {
        let answer = |status: u16, body: &str| Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            request_id: None,
        };
        let expired = error_of(&answer(
            401,
            r#"{"Type":null,"Title":"Unauthorized","Status":401,"Detail":"TokenExpired: token expired at 01/01/2024 00:00:00","Instance":"x","Extensions":{}}"#,
        ));
        assert_eq!(expired.category(), ErrorCategory::TokenExpired);
        let forbidden = error_of(&answer(
            403,
            r#"{"title":"Forbidden","detail":"AuthenticationUnsuccessful"}"#,
        ));
        assert_eq!(forbidden.category(), ErrorCategory::Forbidden);
        assert!(forbidden.message().contains("AuthenticationUnsuccessful"));
    }
}
