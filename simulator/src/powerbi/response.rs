//! The Power BI error envelope and the other response shapes every operation shares.

use axum::http::StatusCode;
use serde_json::json;

use crate::http::SimResponse;
use crate::state::World;

/// What an operation answers: `Err` for the error responses that end it early.
pub type Served = Result<SimResponse, SimResponse>;

/// The service's error envelope: `{"error":{"code":..,"message":..}}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// The body of a 429, which live traffic shows outside the error envelope.
pub fn throttled(retry_after: u64) -> SimResponse {
    SimResponse::json(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"message": format!("You have exceeded the amount of requests allowed in the current time frame and further requests will fail. Retry in {retry_after} seconds.")}),
    )
    .with_header("retry-after", &retry_after.to_string())
}

/// The `@odata.context` of a response listing `fragment` in a workspace.
pub fn odata_context(world: &World, group: &str, fragment: &str) -> String {
    format!(
        "{}/v1.0/myorg/groups/{group}/$metadata#{fragment}",
        world.config.odata_context_host
    )
}

/// Caps user input echoed in error messages.
pub fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}
