//! Xero's two error shapes: the identity server's OAuth errors and api.xero.com's problem
//! details.

use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::http::SimResponse;

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
