//! Typed calls of the Power BI REST API, all through one request helper.

use reqwest::header::{ACCEPT, CONTENT_LENGTH};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::gateway_key::encrypt_credentials;
use super::models::{
    CredentialEncryption, Dataset, Datasource, ErrorBody, Gateway, ODataList, PrivacyLevel,
    Refresh, RefreshSchedule, RefreshScheduleUpdate, from_service_json,
};
use crate::endpoints::join;
use crate::error::{ClientError, ErrorCategory, Service};
use crate::http::{Answer, Call, RetryPolicy, send_with_retry, status_error, truncate};
use crate::secret::SecretString;

const SERVICE: Service = Service::PowerBi;

/// A client of the Power BI REST API (`{base}/v1.0/myorg`). Cheap to clone; every call takes
/// the bearer token of the service principal it acts as, so one client serves every dataset.
#[derive(Debug, Clone)]
pub struct PowerBiClient {
    http: reqwest::Client,
    myorg: Url,
    retry: RetryPolicy,
}

/// The answer to Refresh Dataset: the new refresh's request id, when Power BI sends one (the
/// `RequestId` header; it matches the `requestId` of the refresh history entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTriggered {
    /// The request id of the new refresh.
    pub request_id: Option<String>,
}

impl PowerBiClient {
    /// A client of the API at `api_url` (for example `https://api.powerbi.com/`), using the
    /// process's HTTP client.
    pub fn new(
        http: reqwest::Client,
        api_url: &Url,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        // The trailing empty segment keeps the slash that later joins rely on.
        let myorg = join(api_url, &["v1.0", "myorg", ""])?;
        Ok(Self { http, myorg, retry })
    }

    /// Datasets - Get Datasets In Group.
    pub async fn datasets(
        &self,
        token: &SecretString,
        workspace_id: &str,
    ) -> Result<Vec<Dataset>, ClientError> {
        let call = read_call("GetDatasetsInGroup");
        let answer = self
            .send(
                token,
                call,
                Method::GET,
                &["groups", workspace_id, "datasets"],
                &[],
                None,
            )
            .await?;
        Ok(parse::<ODataList<Dataset>>(call, &answer)?.value)
    }

    /// Datasets - Get Dataset In Group.
    pub async fn dataset(
        &self,
        token: &SecretString,
        workspace_id: &str,
        dataset_id: &str,
    ) -> Result<Dataset, ClientError> {
        let call = read_call("GetDatasetInGroup");
        let answer = self
            .send(
                token,
                call,
                Method::GET,
                &["groups", workspace_id, "datasets", dataset_id],
                &[],
                None,
            )
            .await?;
        parse(call, &answer)
    }

    /// Datasets - Get Refresh History In Group, newest first; `top` limits the entries
    /// (Power BI's default is 60).
    pub async fn refresh_history(
        &self,
        token: &SecretString,
        workspace_id: &str,
        dataset_id: &str,
        top: Option<u32>,
    ) -> Result<Vec<Refresh>, ClientError> {
        let call = read_call("GetRefreshHistoryInGroup");
        let query: Vec<(&str, String)> = top
            .map(|top| ("$top", top.max(1).to_string()))
            .into_iter()
            .collect();
        let answer = self
            .send(
                token,
                call,
                Method::GET,
                &["groups", workspace_id, "datasets", dataset_id, "refreshes"],
                &query,
                None,
            )
            .await?;
        Ok(parse::<ODataList<Refresh>>(call, &answer)?.value)
    }

    /// Datasets - Refresh Dataset In Group: starts a standard refresh with `NoNotification`
    /// (the only option a service principal may use).
    pub async fn trigger_refresh(
        &self,
        token: &SecretString,
        workspace_id: &str,
        dataset_id: &str,
    ) -> Result<RefreshTriggered, ClientError> {
        // Not idempotent: a second POST could start a second refresh.
        let call = write_call("RefreshDatasetInGroup", false);
        let body = json!({"notifyOption": "NoNotification"});
        let answer = self
            .send(
                token,
                call,
                Method::POST,
                &["groups", workspace_id, "datasets", dataset_id, "refreshes"],
                &[],
                Some(&body),
            )
            .await?;
        Ok(RefreshTriggered {
            request_id: answer.request_id,
        })
    }

    /// Datasets - Get Refresh Schedule In Group.
    pub async fn refresh_schedule(
        &self,
        token: &SecretString,
        workspace_id: &str,
        dataset_id: &str,
    ) -> Result<RefreshSchedule, ClientError> {
        let call = read_call("GetRefreshScheduleInGroup");
        let answer = self
            .send(
                token,
                call,
                Method::GET,
                &[
                    "groups",
                    workspace_id,
                    "datasets",
                    dataset_id,
                    "refreshSchedule",
                ],
                &[],
                None,
            )
            .await?;
        parse(call, &answer)
    }

    /// Datasets - Update Refresh Schedule In Group. The caller must own the dataset.
    pub async fn update_refresh_schedule(
        &self,
        token: &SecretString,
        workspace_id: &str,
        dataset_id: &str,
        update: &RefreshScheduleUpdate,
    ) -> Result<(), ClientError> {
        let call = write_call("UpdateRefreshScheduleInGroup", true);
        if update.disables_with_other_changes() {
            return Err(ClientError::new(
                SERVICE,
                ErrorCategory::InvalidRequest,
                "a refresh schedule update that disables the schedule may change nothing else",
            ));
        }
        let body = json!({ "value": update });
        self.send(
            token,
            call,
            Method::PATCH,
            &[
                "groups",
                workspace_id,
                "datasets",
                dataset_id,
                "refreshSchedule",
            ],
            &[],
            Some(&body),
        )
        .await?;
        Ok(())
    }

    /// Datasets - Get Datasources In Group.
    pub async fn datasources(
        &self,
        token: &SecretString,
        workspace_id: &str,
        dataset_id: &str,
    ) -> Result<Vec<Datasource>, ClientError> {
        let call = read_call("GetDatasourcesInGroup");
        let answer = self
            .send(
                token,
                call,
                Method::GET,
                &[
                    "groups",
                    workspace_id,
                    "datasets",
                    dataset_id,
                    "datasources",
                ],
                &[],
                None,
            )
            .await?;
        Ok(parse::<ODataList<Datasource>>(call, &answer)?.value)
    }

    /// Gateways - Get Gateway: the gateway and its public key, or `None` when Power BI shows no
    /// such gateway, as for the personal cloud gateway a cloud source is bound to (that Get
    /// Gateway answers 404 for it is UNCONFIRMED; Microsoft's samples skip the call for cloud
    /// sources).
    pub async fn gateway(
        &self,
        token: &SecretString,
        gateway_id: &str,
    ) -> Result<Option<Gateway>, ClientError> {
        let call = read_call("GetGateway");
        let answer = self
            .send(
                token,
                call,
                Method::GET,
                &["gateways", gateway_id],
                &[],
                None,
            )
            .await;
        match answer {
            Ok(answer) => parse(call, &answer).map(Some),
            Err(err) if err.category() == ErrorCategory::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Gateways - Update Datasource with OAuth2 credentials: the data source then uses
    /// `access_token` until it expires (Power BI gets no refresh token through the API). For
    /// an on-premises gateway the credentials are encrypted with its public key.
    pub async fn update_datasource_oauth2(
        &self,
        token: &SecretString,
        gateway_id: &str,
        datasource_id: &str,
        (access_token, encryption): (&SecretString, &CredentialEncryption),
        privacy_level: PrivacyLevel,
    ) -> Result<(), ClientError> {
        let call = write_call("UpdateDatasource", true);
        let credentials = SecretString::new(
            json!({
                "credentialData": [{"name": "accessToken", "value": access_token.expose()}]
            })
            .to_string(),
        );
        let (credentials, algorithm) = match encryption {
            CredentialEncryption::None => (credentials, "None"),
            CredentialEncryption::Gateway { key, .. } => {
                let sealed = encrypt_credentials(credentials.expose(), key).map_err(|err| {
                    ClientError::new(
                        Service::PowerBi,
                        ErrorCategory::InvalidRequest,
                        err.to_string(),
                    )
                })?;
                (SecretString::new(sealed), "RSA-OAEP")
            }
        };
        let body = json!({
            "credentialDetails": {
                "credentialType": "OAuth2",
                "credentials": credentials.expose(),
                "encryptedConnection": "Encrypted",
                "encryptionAlgorithm": algorithm,
                "privacyLevel": privacy_level,
                "useEndUserOAuth2Credentials": false,
            }
        });
        self.send(
            token,
            call,
            Method::PATCH,
            &["gateways", gateway_id, "datasources", datasource_id],
            &[],
            Some(&body),
        )
        .await?;
        Ok(())
    }

    /// Datasets - Take Over In Group: makes the caller the dataset's owner, which changing the
    /// schedule and a cloud source's credentials requires.
    pub async fn take_over(
        &self,
        token: &SecretString,
        workspace_id: &str,
        dataset_id: &str,
    ) -> Result<(), ClientError> {
        let call = write_call("TakeOverInGroup", true);
        self.send(
            token,
            call,
            Method::POST,
            &[
                "groups",
                workspace_id,
                "datasets",
                dataset_id,
                "Default.TakeOver",
            ],
            &[],
            None,
        )
        .await?;
        Ok(())
    }

    /// The one request helper: bearer token, retries (in [`send_with_retry`]), and the mapping
    /// of every non-success answer to a [`ClientError`].
    async fn send(
        &self,
        token: &SecretString,
        call: Call,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let url = join(&self.myorg, segments)?;
        let answer = send_with_retry(&self.retry, call, || {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose())
                .header(ACCEPT, "application/json");
            if !query.is_empty() {
                request = request.query(query);
            }
            match body {
                Some(body) => request = request.json(body),
                // Several Microsoft front ends answer 411 to a body-less POST over HTTP/1.1
                // that does not say its length.
                None if method == Method::POST => {
                    request = request.header(CONTENT_LENGTH, "0");
                }
                None => {}
            }
            request
        })
        .await?;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(error_of(call, &answer))
        }
    }
}

fn read_call(operation: &'static str) -> Call {
    Call {
        service: SERVICE,
        operation,
        idempotent: true,
    }
}

fn write_call(operation: &'static str, idempotent: bool) -> Call {
    Call {
        service: SERVICE,
        operation,
        idempotent,
    }
}

fn parse<T: DeserializeOwned>(call: Call, answer: &Answer) -> Result<T, ClientError> {
    from_service_json(&answer.body).map_err(|error| {
        ClientError::new(
            SERVICE,
            ErrorCategory::MalformedResponse,
            format!(
                "{SERVICE} {} answered HTTP {} with a body that does not parse: {}",
                call.operation,
                answer.status.as_u16(),
                truncate(&error.to_string(), 200)
            ),
        )
        .with_http_status(answer.status.as_u16())
        .with_request_id(answer.request_id.clone())
    })
}

/// Maps a non-success answer: by status, refined by the body's error code (`TokenExpired` comes
/// as a 403).
fn error_of(call: Call, answer: &Answer) -> ClientError {
    let body: ErrorBody = from_service_json(&answer.body).unwrap_or_default();
    let detail = match (body.code(), body.message()) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (Some(code), None) => Some(code.to_owned()),
        (None, Some(message)) => Some(message.to_owned()),
        (None, None) => None,
    };
    let error = status_error(call, answer, detail.as_deref());
    let expired = body.code() == Some("TokenExpired")
        && matches!(
            answer.status,
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED
        );
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

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            request_id: Some("rid".into()),
        }
    }

    #[test]
    fn token_expired_is_its_own_category() {
        let call = read_call("GetDatasetInGroup");
        let error = error_of(
            call,
            &answer(
                403,
                r#"{"error":{"code":"TokenExpired","message":"Access token has expired, resubmit with a new access token"}}"#,
            ),
        );
        assert_eq!(error.category(), ErrorCategory::TokenExpired);
        assert_eq!(error.request_id(), Some("rid"));
        let error = error_of(call, &answer(403, r#"{"error":{"code":"Forbidden"}}"#));
        assert_eq!(error.category(), ErrorCategory::Forbidden);
        assert!(error.message().contains("Forbidden"));
    }

    #[test]
    fn errors_without_a_json_body_still_map() {
        let call = read_call("GetDatasetInGroup");
        let error = error_of(call, &answer(502, "<html>bad gateway</html>"));
        assert_eq!(error.category(), ErrorCategory::ServerError);
        assert_eq!(error.http_status(), Some(502));
    }

    #[test]
    fn myorg_base_keeps_a_prefix() {
        let base = crate::endpoints::service_url("http://127.0.0.1:9/prefix").unwrap();
        let http = crate::http::http_client(&crate::http::HttpSettings::default()).unwrap();
        let client = PowerBiClient::new(http, &base, RetryPolicy::default()).unwrap();
        let url = join(&client.myorg, &["groups", "g", "datasets"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/v1.0/myorg/groups/g/datasets"
        );
    }
}
