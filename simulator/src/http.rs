//! Plain request and response values the services work on, so the service code is synchronous,
//! runs under one lock, and can be faulted, logged and tested without a socket.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A request as read off the wire (the body already collected).
#[derive(Debug, Clone)]
pub struct SimRequest {
    /// HTTP method.
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// Raw query string, without `?`.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
}

/// Why a form body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// The content type is not `application/x-www-form-urlencoded`.
    NotForm,
    /// A parameter was sent twice, which RFC 6749 forbids.
    Repeated(String),
}

impl SimRequest {
    /// Query parameters, decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A header as text, when it is valid visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer ...` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// The form body of a token request.
    pub fn form(&self) -> Result<HashMap<String, String>, FormError> {
        let content_type = self.header("content-type").unwrap_or_default();
        let mime = content_type.split(';').next().unwrap_or_default().trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(FormError::NotForm);
        }
        let mut form = HashMap::new();
        for (key, value) in form_urlencoded::parse(&self.body) {
            if form.insert(key.to_string(), value.into_owned()).is_some() {
                return Err(FormError::Repeated(key.into_owned()));
            }
        }
        Ok(form)
    }

    /// The JSON body: `Ok(None)` when empty, `Err` with the parser's message when malformed.
    pub fn json_body(&self) -> Result<Option<Value>, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// A response, plus who made the request (for the request log).
#[derive(Debug, Clone)]
pub struct SimResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers besides Content-Length.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The authenticated principal (Entra or Xero client id), when known. Never a secret.
    pub principal: Option<String>,
}

impl SimResponse {
    /// An empty response.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            principal: None,
        }
    }

    /// A JSON response with `application/json; charset=utf-8`.
    pub fn json(status: StatusCode, body: &Value) -> Self {
        Self::json_with_type(status, body, "application/json; charset=utf-8")
    }

    /// A JSON response with the given content type.
    pub fn json_with_type(status: StatusCode, body: &Value, content_type: &'static str) -> Self {
        let mut response = Self::empty(status);
        response.body = serde_json::to_vec(body).unwrap_or_default();
        response
            .headers
            .push((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
        response
    }

    /// Adds a header; values that are not valid header text are dropped (they are all ours).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            self.headers.push((name, value));
        }
        self
    }

    /// Records the principal for the request log.
    pub fn with_principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// Replaces the body by a truncated copy, as a connection cut mid-response would leave it.
    pub fn malform(&mut self) {
        let keep = self.body.len() / 2;
        self.body.truncate(keep);
        if !self.body.starts_with(b"{") {
            self.body = b"{\"error\":".to_vec();
        }
    }
}

impl IntoResponse for SimResponse {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

/// Decodes `%XX` escapes and `+` as RFC 6749 Appendix B's client credential encoding does.
pub fn form_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={}", text.replace('&', "%26").replace('=', "%3D")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], body: &str) -> SimRequest {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        SimRequest {
            method: Method::POST,
            path: "/".into(),
            query: Some("a=1&%24top=2".into()),
            headers: map,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn reads_bearer_form_query_and_json() {
        let r = request(
            &[
                ("authorization", "bearer abc"),
                (
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
            ],
            "a=b+c&d=%2F",
        );
        assert_eq!(r.bearer_token(), Some("abc"));
        assert_eq!(r.query_param("$top").as_deref(), Some("2"));
        let form = r.form().unwrap();
        assert_eq!(form["a"], "b c");
        assert_eq!(form["d"], "/");
        assert!(r.json_body().is_err());

        let repeated = request(
            &[("content-type", "application/x-www-form-urlencoded")],
            "a=1&a=2",
        );
        assert_eq!(repeated.form(), Err(FormError::Repeated("a".into())));
        assert_eq!(request(&[], "a=1").form(), Err(FormError::NotForm));
        assert_eq!(request(&[], "  ").json_body(), Ok(None));
        assert_eq!(
            request(&[("authorization", "Basic abc")], "").bearer_token(),
            None
        );
    }

    #[test]
    fn form_decode_handles_escapes() {
        assert_eq!(form_decode("a%3Ab+c"), "a:b c");
        assert_eq!(form_decode("x&y=z"), "x&y=z");
    }
}
