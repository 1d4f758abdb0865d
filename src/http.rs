//! What every HTTP call of the operator shares: the reqwest client (one per process, so one
//! connection pool and one TLS set-up), timeouts, and retries on throttling, server errors and
//! connection failures with capped exponential backoff and jitter.
//!
//! Each service has its own request helper on top of [`send_with_retry`] (Power BI, the Xero
//! API, and the OAuth2 token endpoints through [`OAuthHttp`]); they map the final answer to a
//! [`ClientError`] in the service's own terms.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};

use crate::error::{ClientError, ErrorCategory, Service};

/// Timeouts of the process's HTTP client.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Longest time to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest time for one request, from sending to the end of the response body.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Builds the process's one HTTP client. Redirects are not followed: none of the calls the
/// operator makes redirects, and following one could carry a token or a client secret to
/// another host.
pub fn http_client(settings: &HttpSettings) -> Result<reqwest::Client, ClientError> {
    // reqwest panics when no rustls provider is installed; installing it twice is harmless.
    crate::telemetry::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("xero-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            ClientError::invalid_endpoint(format!(
                "cannot build the HTTP client: {}",
                error_chain(&error)
            ))
        })
}

/// How often and how patiently a request is tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in total, the first one included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles for each further retry.
    pub initial_backoff: Duration,
    /// Cap of the backoff.
    pub max_backoff: Duration,
    /// Longest `Retry-After` the helper waits for itself. A longer one ends the call with
    /// `Throttled` and the wait, so that the controller requeues instead of holding a worker.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry): capped exponential, with
    /// "equal jitter" (half fixed, half random) so that many callers throttled together do not
    /// come back together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=jitter_nanos))
    }
}

/// Names a call for logs and error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    /// The service called.
    pub service: Service,
    /// The operation, such as `GetRefreshHistory`.
    pub operation: &'static str,
    /// Whether sending the request twice is harmless. Non-idempotent requests are retried only
    /// when they certainly had no effect (429, connection not established).
    pub idempotent: bool,
}

/// A response that arrived, with any status. Its `Debug` leaves the body out: a token
/// endpoint's body holds tokens.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub request_id: Option<String>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("request_id", &self.request_id)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Answer {
    /// How long the service asked the caller to wait: its `Retry-After`, else what the limit
    /// Xero names in `X-Rate-Limit-Problem` implies.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers).or_else(|| {
            (self.status == StatusCode::TOO_MANY_REQUESTS)
                .then(|| rate_limit_problem(&self.headers))
                .flatten()
                .map(|problem| implied_wait(&problem))
        })
    }
}

/// The limit a Xero 429 names in `X-Rate-Limit-Problem`: `minute`, `day`, `appminute` or
/// `concurrent` (the spelling is not documented; older pages say `Daily` and `Minute`).
pub(crate) fn rate_limit_problem(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-rate-limit-problem")?.to_str().ok()?.trim();
    (!value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| value.to_ascii_lowercase())
}

/// The wait a Xero 429 without `Retry-After` implies: the minute limits reset within a minute,
/// the daily one at a time of day Xero does not say (look again in an hour), a concurrency limit
/// as soon as a call ends.
fn implied_wait(problem: &str) -> Duration {
    match problem {
        "day" | "daily" => Duration::from_secs(3600),
        "concurrent" => Duration::from_secs(1),
        _ => Duration::from_secs(60),
    }
}

/// Sends the request `build` makes, retrying per `policy`. Returns the last response whatever
/// its status (the caller maps statuses), or a `Timeout` / `ConnectionFailed` error when no
/// response arrived.
pub(crate) async fn send_with_retry(
    policy: &RetryPolicy,
    call: Call,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, ClientError> {
    let mut attempt = 1;
    loop {
        let outcome = match build().send().await {
            Ok(response) => read(response).await,
            Err(error) => Err(error),
        };
        let wait = match &outcome {
            Ok(answer) => retry_wait(policy, call, answer, attempt),
            Err(error) if error.is_connect() => Some(policy.backoff(attempt)),
            Err(error) if error.is_timeout() && call.idempotent => Some(policy.backoff(attempt)),
            Err(_) => None,
        };
        match (&outcome, wait) {
            (Ok(answer), _) => tracing::debug!(
                service = call.service.name(),
                operation = call.operation,
                status = answer.status.as_u16(),
                request_id = answer.request_id.as_deref(),
                attempt,
                "answered"
            ),
            (Err(error), _) => tracing::debug!(
                service = call.service.name(),
                operation = call.operation,
                attempt,
                error = %error_chain(error),
                "no answer"
            ),
        }
        match wait {
            Some(wait) if attempt < policy.max_attempts => {
                tracing::debug!(
                    service = call.service.name(),
                    operation = call.operation,
                    attempt,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            _ => return outcome.map_err(|error| transport_error(call, attempt, &error)),
        }
    }
}

/// Whether and how long to wait before retrying after `answer`.
fn retry_wait(policy: &RetryPolicy, call: Call, answer: &Answer, attempt: u32) -> Option<Duration> {
    // A 429 was rejected without effect, so even a non-idempotent request may be sent again.
    let retryable = answer.status == StatusCode::TOO_MANY_REQUESTS
        || (answer.status.is_server_error() && call.idempotent);
    if !retryable {
        return None;
    }
    match answer.retry_after() {
        Some(wait) if wait > policy.max_retry_after => None,
        Some(wait) => Some(wait),
        None => Some(policy.backoff(attempt)),
    }
}

/// The most of an answer's body the clients keep. Power BI's largest answers (the datasets of a
/// big workspace, a refresh history) are far below it; a bigger body is cut, so that it fails to
/// parse instead of filling the operator's memory.
pub(crate) const MAX_BODY_BYTES: usize = 8 << 20;

async fn read(mut response: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            tracing::warn!(
                limit = MAX_BODY_BYTES,
                "an answer's body is larger than the limit; it was cut"
            );
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let request_id = request_id(&headers);
    Ok(Answer {
        status,
        headers,
        body,
        request_id,
    })
}

fn transport_error(call: Call, attempts: u32, error: &reqwest::Error) -> ClientError {
    let tries = if attempts == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{attempts} attempts")
    };
    let (category, what) = if error.is_timeout() {
        (ErrorCategory::Timeout, "timed out")
    } else if error.is_connect() {
        (ErrorCategory::ConnectionFailed, "could not connect")
    } else if error.is_decode() || error.is_body() {
        (ErrorCategory::MalformedResponse, "sent an unreadable body")
    } else {
        (ErrorCategory::ConnectionFailed, "failed")
    };
    ClientError::new(
        call.service,
        category,
        format!(
            "{} {} {what} after {tries}: {}",
            call.service,
            call.operation,
            error_chain(error)
        ),
    )
}

/// An error and its sources, without the URL (ids only, but logs need no more than the
/// operation's name).
pub(crate) fn error_chain(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = String::new();
    let mut current: Option<&dyn std::error::Error> = error.source();
    text.push_str(if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection error"
    } else {
        "request error"
    });
    while let Some(source) = current {
        text.push_str(": ");
        text.push_str(&source.to_string());
        current = source.source();
    }
    text
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The service's request id: Power BI sends `RequestId` (and `x-ms-request-id` for enhanced
/// refreshes), Entra ID `x-ms-request-id`, Xero `Xero-Correlation-Id`.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    ["requestid", "x-ms-request-id", "xero-correlation-id"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::to_owned)
}

/// Shortens a service's error message for conditions and events.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    crate::api::printable(text, max_chars)
}

/// Deserializes a service's JSON body whatever the casing of its property names: Power BI and
/// Xero use camelCase and PascalCase, so the first letter of every property name is lowered
/// before deserializing into camelCase types.
pub fn from_service_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    serde_json::from_value(camel_case_keys(value))
}

pub(crate) fn camel_case_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(key, value)| (lower_first(key), camel_case_keys(value)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(camel_case_keys).collect())
        }
        other => other,
    }
}

fn lower_first(key: String) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) if first.is_ascii_uppercase() => {
            let mut lowered = String::with_capacity(key.len());
            lowered.push(first.to_ascii_lowercase());
            lowered.extend(chars);
            lowered
        }
        _ => key,
    }
}

/// Deserializes the services' optional timestamps: RFC 3339 with an offset, or without one
/// (Xero's connections and some Power BI fields), which means UTC; empty or null is `None`.
pub(crate) mod service_time {
    use jiff::Timestamp;
    use jiff::civil::DateTime;
    use serde::{Deserialize, Deserializer};

    /// Parses one timestamp.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        text.parse::<Timestamp>().ok().or_else(|| {
            let civil = text.parse::<DateTime>().ok()?;
            civil
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|zoned| zoned.timestamp())
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) if text.trim().is_empty() => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a timestamp"))),
        }
    }
}

/// The `oauth2` crate's HTTP client on the process's reqwest client, so that the token
/// endpoints get the same timeouts and retries and no second HTTP stack is compiled in.
///
/// 429 and 5xx answers (after retries) become errors here, because the `oauth2` crate reads
/// every non-200 answer as an OAuth2 error body and would lose the status.
pub(crate) struct OAuthHttp<'a> {
    pub client: &'a reqwest::Client,
    pub policy: &'a RetryPolicy,
    pub call: Call,
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp<'_> {
    type Error = ClientError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, ClientError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let mut headers = parts.headers;
            if let Some(value) = headers.get_mut(AUTHORIZATION) {
                // Keeps the client credentials out of any Debug output of the request.
                value.set_sensitive(true);
            }
            let answer = send_with_retry(self.policy, self.call, || {
                self.client
                    .request(parts.method.clone(), url.as_str())
                    .headers(headers.clone())
                    .body(body.clone())
            })
            .await?;
            if answer.status == StatusCode::TOO_MANY_REQUESTS || answer.status.is_server_error() {
                return Err(status_error(self.call, &answer, None));
            }
            let mut response = oauth2::http::Response::new(answer.body);
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            Ok(response)
        })
    }
}

/// Maps a failed token request. `category_of` picks the category of an OAuth2 error response
/// (`invalid_grant`, `invalid_client`, ...) for the service at hand. The error description is
/// kept (Entra's `AADSTS…` text names the problem, never a secret); a body that does not parse
/// is not quoted, because a token response can hold tokens.
pub(crate) fn token_error(
    call: Call,
    error: oauth2::RequestTokenError<ClientError, oauth2::basic::BasicErrorResponse>,
    category_of: impl Fn(&oauth2::basic::BasicErrorResponseType) -> ErrorCategory,
) -> ClientError {
    use oauth2::RequestTokenError;
    match error {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error();
            let mut message = format!("{} {} was refused: {code}", call.service, call.operation);
            if let Some(description) = response.error_description() {
                message.push_str(": ");
                message.push_str(&truncate(description.lines().next().unwrap_or(""), 300));
            }
            ClientError::new(call.service, category_of(code), message)
        }
        RequestTokenError::Request(error) => error,
        RequestTokenError::Parse(error, _body) => ClientError::new(
            call.service,
            ErrorCategory::MalformedResponse,
            format!(
                "{} {} answered with a body that is not a token response (at {})",
                call.service,
                call.operation,
                error.path()
            ),
        ),
        RequestTokenError::Other(reason) => ClientError::new(
            call.service,
            ErrorCategory::MalformedResponse,
            format!(
                "{} {} answered unexpectedly: {reason}",
                call.service, call.operation
            ),
        ),
    }
}

/// The error for a final non-success `answer`, categorised by HTTP status; `code` is the
/// service's error code from the body, when it has one.
pub(crate) fn status_error(call: Call, answer: &Answer, code: Option<&str>) -> ClientError {
    let status = answer.status;
    let category = match status {
        StatusCode::UNAUTHORIZED => ErrorCategory::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCategory::Forbidden,
        StatusCode::NOT_FOUND => ErrorCategory::NotFound,
        StatusCode::CONFLICT => ErrorCategory::Conflict,
        StatusCode::TOO_MANY_REQUESTS => ErrorCategory::Throttled,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorCategory::Timeout,
        status if status.is_server_error() => ErrorCategory::ServerError,
        _ => ErrorCategory::InvalidRequest,
    };
    let mut message = format!(
        "{} {} failed with HTTP {}",
        call.service,
        call.operation,
        status.as_u16()
    );
    if let Some(code) = code.filter(|code| !code.is_empty()) {
        message.push_str(": ");
        message.push_str(&truncate(code, 300));
    }
    if category == ErrorCategory::Throttled
        && let Some(problem) = rate_limit_problem(&answer.headers)
    {
        message.push_str(&format!(" (rate limit: {problem})"));
    }
    if let Some(wait) = answer
        .retry_after()
        .filter(|_| category == ErrorCategory::Throttled)
    {
        message.push_str(&format!(" (retry after {}s)", wait.as_secs()));
    }
    ClientError::new(call.service, category, message)
        .with_http_status(status.as_u16())
        .with_request_id(answer.request_id.clone())
        .with_retry_after(answer.retry_after())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(60),
        };
        for _ in 0..100 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = policy.backoff(40);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn an_answer_never_shows_its_body() {
        let answer = Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: br#"{"access_token":"eyJ-secret","refresh_token":"rt-secret"}"#.to_vec(),
            request_id: None,
        };
        let shown = format!("{answer:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("body_bytes"), "{shown}");
    }

    #[tokio::test]
    async fn a_body_larger_than_the_limit_is_cut_not_kept_whole() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let size = MAX_BODY_BYTES + (1 << 20);
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..size / chunk.len() {
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        crate::telemetry::install_crypto_provider();
        let response = reqwest::Client::new().get(url).send().await.expect("send");
        let answer = read(response).await.expect("read");
        assert_eq!(answer.body.len(), MAX_BODY_BYTES);
    }

    #[test]
    fn a_xero_rate_limit_problem_implies_a_wait_when_retry_after_is_missing() {
        let answer = |problem: Option<&'static str>, retry: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            if let Some(problem) = problem {
                headers.insert("x-rate-limit-problem", HeaderValue::from_static(problem));
            }
            if let Some(retry) = retry {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(retry));
            }
            Answer {
                status: StatusCode::TOO_MANY_REQUESTS,
                headers,
                body: Vec::new(),
                request_id: None,
            }
        };
        let wait = |a: Answer| a.retry_after().map(|d| d.as_secs());
        assert_eq!(wait(answer(Some("day"), None)), Some(3600));
        assert_eq!(wait(answer(Some("Daily"), None)), Some(3600));
        assert_eq!(wait(answer(Some("appminute"), None)), Some(60));
        assert_eq!(wait(answer(Some("concurrent"), None)), Some(1));
        assert_eq!(
            wait(answer(Some("minute"), Some("7"))),
            Some(7),
            "Retry-After wins"
        );
        assert_eq!(wait(answer(None, None)), None);
        assert_eq!(wait(answer(Some("bad value!"), None)), None);
        let error = status_error(
            Call {
                service: Service::Xero,
                operation: "GetConnections",
                idempotent: true,
            },
            &answer(Some("appminute"), Some("12")),
            None,
        );
        assert_eq!(error.category(), ErrorCategory::Throttled);
        assert!(
            error.message().contains("rate limit: appminute"),
            "{}",
            error.message()
        );
        assert_eq!(error.retry_after(), Some(Duration::from_secs(12)));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn request_id_comes_from_any_known_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_id(&headers), None);
        headers.insert("x-ms-request-id", HeaderValue::from_static("b"));
        assert_eq!(request_id(&headers).as_deref(), Some("b"));
        headers.insert("RequestId", HeaderValue::from_static("a"));
        assert_eq!(request_id(&headers).as_deref(), Some("a"));
    }

    #[test]
    fn statuses_map_to_categories() {
        let call = Call {
            service: Service::PowerBi,
            operation: "GetDataset",
            idempotent: true,
        };
        let answer = |status: u16| Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Vec::new(),
            request_id: None,
        };
        for (status, category) in [
            (400, ErrorCategory::InvalidRequest),
            (401, ErrorCategory::Unauthorized),
            (403, ErrorCategory::Forbidden),
            (404, ErrorCategory::NotFound),
            (409, ErrorCategory::Conflict),
            (415, ErrorCategory::InvalidRequest),
            (429, ErrorCategory::Throttled),
            (500, ErrorCategory::ServerError),
            (503, ErrorCategory::ServerError),
        ] {
            let error = status_error(call, &answer(status), Some("Code"));
            assert_eq!(error.category(), category, "{status}");
            assert_eq!(error.http_status(), Some(status));
            assert!(error.message().contains("GetDataset"));
        }
    }

    #[test]
    fn service_times_parse_with_and_without_zone() {
        assert_eq!(
            service_time::parse("2020-03-18T21:20:07.7179250")
                .unwrap()
                .to_string(),
            "2020-03-18T21:20:07.717925Z"
        );
        assert_eq!(
            service_time::parse("2017-06-13T09:25:43.153Z")
                .unwrap()
                .to_string(),
            "2017-06-13T09:25:43.153Z"
        );
        assert_eq!(
            service_time::parse("2017-06-13T11:25:43+02:00")
                .unwrap()
                .to_string(),
            "2017-06-13T09:25:43Z"
        );
        assert!(service_time::parse("yesterday").is_none());
    }

    #[test]
    fn truncate_cuts_on_characters() {
        assert_eq!(truncate(" short ", 10), "short");
        assert_eq!(truncate("ééééé", 3), "ééé…");
    }
}
