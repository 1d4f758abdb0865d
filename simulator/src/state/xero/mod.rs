//! Xero's side: apps, the organisations connected to them, and the token families (grants)
//! issued from each consent.

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::seed::{SimConfig, XeroAppSeed, XeroSeed};

mod grants;
mod limits;

pub use grants::{AuthCode, Grant, Grants};
pub use limits::{CallsLeft, XeroLimit, count_calls, count_refresh_calls};

const DEFAULT_SCOPE: &str = "openid profile email offline_access accounting.settings.read accounting.transactions.read accounting.reports.read accounting.contacts.read";

/// Xero's side of the world.
#[derive(Debug, Default)]
pub struct XeroState {
    apps: Vec<XeroAppSeed>,
    connections: Vec<Connection>,
    /// Consents and the codes and tokens issued for them.
    pub(crate) grants: Grants,
}

/// An organisation connected to an app.
#[derive(Debug, Clone)]
pub struct Connection {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) tenant_id: String,
    pub(crate) tenant_name: String,
    pub(crate) tenant_type: String,
    pub(crate) created: Timestamp,
    pub(crate) updated: Timestamp,
    pub(crate) auth_event_id: String,
}

/// Why a Xero access token does not give access to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Never issued here.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Its grant was revoked.
    Revoked,
    /// The tenant is not among the token's connected tenants.
    WrongTenant,
}

impl XeroState {
    /// Builds Xero's state from the seed.
    pub fn from_seed(seed: &XeroSeed, config: &SimConfig, now: Timestamp) -> Result<Self, String> {
        let mut state = Self {
            apps: seed.apps.clone(),
            ..Self::default()
        };
        state.seed_connections(seed, now);
        for t in &seed.refresh_tokens {
            let client = state.seed_client(t.client_id.as_deref())?;
            let tenants = state.seed_tenants(&client, t.tenant_ids.as_ref());
            let grant = state.grants.add(
                &client,
                tenants,
                t.scope.clone().unwrap_or_else(|| DEFAULT_SCOPE.to_owned()),
            );
            state
                .grants
                .insert_refresh_token(t.token.clone(), grant, now);
        }
        for t in &seed.access_tokens {
            let client = state.seed_client(t.client_id.as_deref())?;
            let tenants = state.seed_tenants(&client, t.tenant_ids.as_ref());
            let grant = state.grants.add(&client, tenants, DEFAULT_SCOPE.to_owned());
            let lifetime = t.expires_in_seconds.unwrap_or_else(|| {
                i64::try_from(config.xero_access_token_lifetime_seconds).unwrap_or(i64::MAX)
            });
            let expires_at = now
                .checked_add(SignedDuration::from_secs(lifetime))
                .unwrap_or(now);
            state
                .grants
                .add_access_token(t.token.clone(), grant, expires_at);
        }
        Ok(state)
    }

    /// A seeded connection without an app belongs to every app.
    fn seed_connections(&mut self, seed: &XeroSeed, now: Timestamp) {
        for c in &seed.connections {
            let apps: Vec<String> = match &c.client_id {
                Some(id) => vec![id.clone()],
                None => seed.apps.iter().map(|a| a.client_id.clone()).collect(),
            };
            for (i, client_id) in apps.into_iter().enumerate() {
                let created = c.created_date_utc.unwrap_or(now);
                self.connections.push(Connection {
                    id: match (&c.id, i) {
                        (Some(id), 0) => id.clone(),
                        _ => Uuid::new_v4().to_string(),
                    },
                    client_id,
                    tenant_id: c.tenant_id.clone(),
                    tenant_name: c.tenant_name.clone(),
                    tenant_type: c.tenant_type.clone(),
                    created,
                    updated: c.updated_date_utc.unwrap_or(created),
                    auth_event_id: Uuid::new_v4().to_string(),
                });
            }
        }
    }

    fn seed_client(&self, client_id: Option<&str>) -> Result<String, String> {
        match client_id {
            Some(id) if self.apps.iter().any(|a| a.client_id == id) => Ok(id.to_owned()),
            Some(id) => Err(format!("Xero token for unknown app {id}")),
            None => self
                .apps
                .first()
                .map(|a| a.client_id.clone())
                .ok_or_else(|| "a Xero token needs an app to belong to".to_owned()),
        }
    }

    fn seed_tenants(&self, client_id: &str, tenants: Option<&Vec<String>>) -> Vec<String> {
        tenants.cloned().unwrap_or_else(|| {
            self.connections
                .iter()
                .filter(|c| c.client_id == client_id)
                .map(|c| c.tenant_id.clone())
                .collect()
        })
    }

    /// The app with this client id.
    pub fn app(&self, client_id: &str) -> Option<&XeroAppSeed> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    /// Every connected tenant id once, in connection order: who a user consents to by default.
    pub fn connected_tenant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for c in &self.connections {
            if !ids.contains(&c.tenant_id) {
                ids.push(c.tenant_id.clone());
            }
        }
        ids
    }

    /// A user consented: a new grant, and the app's connections to its tenants (re)made, copied
    /// from another app's connection to the tenant when the app had none. Returns the grant.
    pub fn consent(
        &mut self,
        client_id: &str,
        tenants: Vec<String>,
        scope: String,
        now: Timestamp,
    ) -> usize {
        let grant = self.grants.add(client_id, tenants.clone(), scope);
        let auth_event_id = self.grants.get(grant).auth_event_id.clone();
        for tenant in &tenants {
            let template = self
                .connections
                .iter()
                .find(|c| c.tenant_id == *tenant)
                .cloned();
            match self
                .connections
                .iter_mut()
                .find(|c| c.client_id == client_id && c.tenant_id == *tenant)
            {
                Some(c) => {
                    c.updated = now;
                    c.auth_event_id = auth_event_id.clone();
                }
                None => {
                    if let Some(t) = template {
                        self.connections.push(Connection {
                            id: Uuid::new_v4().to_string(),
                            client_id: client_id.to_owned(),
                            created: now,
                            updated: now,
                            auth_event_id: auth_event_id.clone(),
                            ..t
                        });
                    }
                }
            }
        }
        grant
    }

    /// The client id of the app an access token was issued to.
    pub fn access_token_client(&self, token: &str) -> Option<&str> {
        let record = self.grants.access_token(token)?;
        Some(self.grants.get(record.grant).client_id.as_str())
    }

    /// Whether `token` gives access to `tenant` (any connected tenant when `None`) at `at`.
    pub fn access_token_problem(
        &self,
        token: &str,
        tenant: Option<&str>,
        at: Timestamp,
    ) -> Option<TokenProblem> {
        let Some(record) = self.grants.access_token(token) else {
            return Some(TokenProblem::Unknown);
        };
        let grant = self.grants.get(record.grant);
        if grant.revoked_at.is_some_and(|r| r <= at) {
            return Some(TokenProblem::Revoked);
        }
        if at >= record.expires_at {
            return Some(TokenProblem::Expired);
        }
        let connected = self.grant_connections(grant);
        let ok = match tenant {
            Some(t) => connected
                .iter()
                .any(|c| c.tenant_id.eq_ignore_ascii_case(t)),
            None => !connected.is_empty(),
        };
        (!ok).then_some(TokenProblem::WrongTenant)
    }

    /// The connections a grant gives access to: none once revoked.
    pub fn grant_connections(&self, grant: &Grant) -> Vec<&Connection> {
        if grant.revoked_at.is_some() {
            return Vec::new();
        }
        self.connections
            .iter()
            .filter(|c| {
                c.client_id == grant.client_id
                    && grant
                        .tenant_ids
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(&c.tenant_id))
            })
            .collect()
    }

    /// Removes the connection with this id from the grant's app, unless the grant was revoked.
    /// Returns whether there was one.
    pub fn disconnect(&mut self, grant: usize, id: &str) -> bool {
        let g = self.grants.get(grant);
        let position = self.connections.iter().position(|c| {
            c.id.eq_ignore_ascii_case(id) && c.client_id == g.client_id && g.revoked_at.is_none()
        });
        let Some(i) = position else {
            return false;
        };
        self.connections.remove(i);
        true
    }

    /// Xero's state for `GET /_sim/state`, tokens as fingerprints.
    pub fn snapshot(&self, now: Timestamp) -> Value {
        json!({
            "apps": self.apps.iter().map(|a| json!({
                "clientId": a.client_id,
                "hasClientSecret": a.client_secret.is_some(),
                "redirectUris": a.redirect_uris,
            })).collect::<Vec<_>>(),
            "connections": self.connections.iter().map(|c| json!({
                "id": c.id, "clientId": c.client_id, "tenantId": c.tenant_id, "tenantName": c.tenant_name,
                "tenantType": c.tenant_type, "authEventId": c.auth_event_id,
                "createdDateUtc": xero_date(c.created), "updatedDateUtc": xero_date(c.updated),
            })).collect::<Vec<_>>(),
            "grants": self.grants.snapshot(now),
        })
    }
}

/// Xero's timestamp format: UTC, no offset, 7 fractional digits.
pub fn xero_date(t: Timestamp) -> String {
    let dt = t.to_zoned(TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xero_dates_have_no_offset_and_seven_digits() {
        let t: Timestamp = "2020-03-18T21:20:07.717925Z".parse().unwrap();
        assert_eq!(xero_date(t), "2020-03-18T21:20:07.7179250");
    }
}
