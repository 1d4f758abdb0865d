//! Xero's two error shapes: the identity server's OAuth errors and api.xero.com's problem
//! details.

use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::http::SimResponse;
use crate::state::xero::{CallsLeft, XeroLimit};

/// A token endpoint error: `400 {"error":"..."}` exactly, as Xero sends it.
pub fn token_error(status: StatusCode, error: &str) -> SimResponse {
    SimResponse::json_with_type(
        status,
        &json!({"error": error}),
        "application/json; charset=utf-8",
    )
    .with_header("cache-control", "no-cache, no-store")
    .with_header("pragma", "no-cache")
}

/// An api.xero.com error in its problem-details shape.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> SimResponse {
    SimResponse::json_with_type(
        status,
        &json!({
            "Type": null,
            "Title": title,
            "Status": status.as_u16(),
            "Detail": detail,
            "Instance": Uuid::new_v4().to_string(),
            "Extensions": {},
        }),
        "application/json",
    )
}

/// Xero's 429 for a limit with no calls left: `Retry-After` and `X-Rate-Limit-Problem`, and
/// that limit's remaining header at 0.
pub fn too_many_requests(limit: XeroLimit, retry_after: u64, client_id: String) -> SimResponse {
    let remaining = match limit {
        XeroLimit::AppMinute => "x-appminlimit-remaining",
        XeroLimit::Minute => "x-minlimit-remaining",
        XeroLimit::Day => "x-daylimit-remaining",
    };
    problem(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "Rate limit exceeded",
    )
    .with_header("retry-after", &retry_after.to_string())
    .with_header("x-rate-limit-problem", limit.problem())
    .with_header(remaining, "0")
    .with_principal(client_id)
}

/// A response with the `X-*Limit-Remaining` headers of the limits that counted its call.
pub fn with_calls_left(mut response: SimResponse, left: CallsLeft) -> SimResponse {
    for (name, value) in left.headers() {
        response = response.with_header(name, &value);
    }
    response
}
