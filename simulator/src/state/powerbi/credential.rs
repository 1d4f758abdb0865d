//! Data source credentials and the error a refresh reports when they do not work.

use serde_json::json;

use crate::state::xero::TokenProblem;

/// Stored data source credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub(crate) credential_type: String,
    pub(crate) access_token: Option<String>,
}

/// The credential error shape seen live (`pbi.error` envelope). Which code Power BI reports for
/// an expired OAuth2 token set through the API is UNCONFIRMED; the simulator uses
/// `DMTS_OAuthTokenRefreshFailedError` for expiry and the invalid-credentials code otherwise.
pub fn credential_error(problem: TokenProblem) -> String {
    let (code, detail) = match problem {
        TokenProblem::Expired => (
            "DMTS_OAuthTokenRefreshFailedError",
            "Failed to update data source credentials: The OAuth token of the Xero source has expired.",
        ),
        TokenProblem::Revoked => (
            "DM_GWPipeline_Gateway_InvalidConnectionCredentials",
            "The credentials provided for the Xero source are invalid: access was revoked.",
        ),
        TokenProblem::WrongTenant => (
            "DM_GWPipeline_Gateway_InvalidConnectionCredentials",
            "The credentials provided for the Xero source are invalid: the organisation is not connected.",
        ),
        TokenProblem::Unknown => (
            "DM_GWPipeline_Gateway_InvalidConnectionCredentials",
            "The credentials provided for the Xero source are invalid.",
        ),
    };
    pbi_error(
        code,
        detail,
        [
            (
                "Microsoft.Data.Mashup.CredentialError.DataSourceKind",
                "Xero",
            ),
            (
                "Microsoft.Data.Mashup.CredentialError.Reason",
                "AccessUnauthorized",
            ),
        ],
    )
}

/// A refresh error in the `pbi.error` envelope: the code, the underlying message and details
/// naming the data source.
pub fn pbi_error(code: &str, message: &str, details: [(&str, &str); 2]) -> String {
    let mut all = vec![
        json!({"code": "DM_ErrorDetailNameCode_UnderlyingErrorCode", "detail": {"type": 1, "value": "-2147467259"}}),
        json!({"code": "DM_ErrorDetailNameCode_UnderlyingErrorMessage", "detail": {"type": 1, "value": message}}),
    ];
    all.extend(
        details
            .iter()
            .map(|(name, value)| json!({"code": name, "detail": {"type": 1, "value": value}})),
    );
    json!({
        "error": {
            "code": code,
            "pbi.error": {"code": code, "parameters": {}, "details": all, "exceptionCulprit": 1}
        }
    })
    .to_string()
}
