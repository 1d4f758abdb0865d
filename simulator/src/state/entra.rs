//! Microsoft Entra ID's side: the service principals that may sign in and the access tokens
//! issued to them.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::seed::ServicePrincipalSeed;

/// Service principals and the Power BI access tokens they were issued.
#[derive(Debug, Default)]
pub struct EntraState {
    principals: Vec<ServicePrincipalSeed>,
    tokens: HashMap<String, EntraToken>,
}

/// An Entra access token the simulator issued.
#[derive(Debug, Clone)]
pub struct EntraToken {
    pub(crate) client_id: String,
    pub(crate) expires_at: Timestamp,
}

impl EntraState {
    /// The seeded principals, no token issued yet.
    pub fn from_seed(principals: Vec<ServicePrincipalSeed>) -> Self {
        Self {
            principals,
            tokens: HashMap::new(),
        }
    }

    /// Whether any principal lives in the tenant (matched case-insensitively).
    pub fn knows_tenant(&self, tenant: &str) -> bool {
        self.principals
            .iter()
            .any(|p| p.tenant_id.eq_ignore_ascii_case(tenant))
    }

    /// The principal with this client id in this tenant (both matched case-insensitively).
    pub fn principal(&self, tenant: &str, client_id: &str) -> Option<&ServicePrincipalSeed> {
        self.principals.iter().find(|p| {
            p.tenant_id.eq_ignore_ascii_case(tenant) && p.client_id.eq_ignore_ascii_case(client_id)
        })
    }

    /// The principal a token was issued to, by its exact client id.
    pub fn principal_by_client_id(&self, client_id: &str) -> Option<&ServicePrincipalSeed> {
        self.principals.iter().find(|p| p.client_id == client_id)
    }

    /// Records an issued access token.
    pub fn add_token(&mut self, token: String, client_id: String, expires_at: Timestamp) {
        self.tokens.insert(
            token,
            EntraToken {
                client_id,
                expires_at,
            },
        );
    }

    /// An issued access token, expired or not.
    pub fn token(&self, token: &str) -> Option<&EntraToken> {
        self.tokens.get(token)
    }

    /// The principals for `GET /_sim/state`, with how many unexpired tokens each holds.
    pub fn snapshot(&self, now: Timestamp) -> Vec<Value> {
        self.principals
            .iter()
            .map(|p| {
                json!({
                    "tenantId": p.tenant_id,
                    "clientId": p.client_id,
                    "displayName": owner_name(p),
                    "hasClientSecret": p.client_secret.is_some(),
                    "federatedCredentials": p.federated_credentials,
                    "activeTokens": self.tokens.values()
                        .filter(|t| t.client_id == p.client_id && t.expires_at > now).count(),
                })
            })
            .collect()
    }
}

/// What `configuredBy` shows for a principal that owns a dataset.
pub fn owner_name(principal: &ServicePrincipalSeed) -> String {
    principal
        .display_name
        .clone()
        .unwrap_or_else(|| principal.client_id.clone())
}
