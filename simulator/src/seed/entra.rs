//! Microsoft Entra ID app registrations.

use serde::{Deserialize, Serialize};

/// An Entra ID application registration usable as a Power BI service principal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalSeed {
    /// Directory (tenant) id, or a domain name; matched case-insensitively.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret; absent when the app only uses federated credentials.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// What `configuredBy` shows when this principal owns a dataset; the client id when absent
    /// (what Power BI shows for a service principal owner is UNCONFIRMED).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Workload identity federation trusts. When empty, any assertion whose audience is
    /// `api://AzureADTokenExchange` and whose issuer is an http(s) URL is accepted.
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredentialSeed>,
}

/// A federated identity credential on an app registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredentialSeed {
    /// Expected `iss` of the assertion (the cluster's OIDC issuer).
    pub issuer: String,
    /// Expected `sub`; any subject when absent.
    #[serde(default)]
    pub subject: Option<String>,
    /// Expected `aud`.
    #[serde(default = "default_federated_audience")]
    pub audience: String,
}

fn default_federated_audience() -> String {
    "api://AzureADTokenExchange".to_owned()
}
