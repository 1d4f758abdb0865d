//! Consents and what is issued for them: authorization codes waiting to be exchanged, grants
//! (one per consent), and each grant's refresh tokens (rotated with a grace period) and
//! access tokens.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock::secs;
use crate::seed::{GraceReuse, SimConfig};
use crate::tokens::{fingerprint, opaque};

/// Grants, codes and tokens. Grants are never removed, so their indexes stay valid.
#[derive(Debug, Default)]
pub struct Grants {
    grants: Vec<Grant>,
    refresh_tokens: HashMap<String, RefreshTokenRecord>,
    access_tokens: HashMap<String, AccessTokenRecord>,
    codes: HashMap<String, AuthCode>,
}

/// One consent: the family of tokens issued from it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub(crate) client_id: String,
    pub(crate) auth_event_id: String,
    pub(crate) user_id: String,
    pub(crate) tenant_ids: Vec<String>,
    pub(crate) scope: String,
    pub(crate) revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
struct RefreshTokenRecord {
    grant: usize,
    issued_at: Timestamp,
    rotated_at: Option<Timestamp>,
    child: Option<String>,
}

/// An issued access token: which grant it belongs to and when it expires.
#[derive(Debug, Clone)]
pub struct AccessTokenRecord {
    pub(crate) grant: usize,
    pub(crate) expires_at: Timestamp,
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    /// PKCE method and challenge.
    pub(crate) challenge: Option<(String, String)>,
    pub(crate) scope: String,
    pub(crate) tenant_ids: Vec<String>,
    pub(crate) expires_at: Timestamp,
    pub(crate) used: bool,
}

impl Grants {
    /// Starts a grant for an app; returns its index.
    pub fn add(&mut self, client_id: &str, tenant_ids: Vec<String>, scope: String) -> usize {
        self.grants.push(Grant {
            client_id: client_id.to_owned(),
            auth_event_id: Uuid::new_v4().to_string(),
            user_id: Uuid::new_v4().to_string(),
            tenant_ids,
            scope,
            revoked_at: None,
        });
        self.grants.len() - 1
    }

    /// A grant by index; indexes come from this store, so it exists.
    pub fn get(&self, grant: usize) -> &Grant {
        &self.grants[grant]
    }

    /// Stores an authorization code.
    pub fn add_code(&mut self, code: String, stored: AuthCode) {
        self.codes.insert(code, stored);
    }

    /// An authorization code, for the token endpoint to check and mark used.
    pub fn code_mut(&mut self, code: &str) -> Option<&mut AuthCode> {
        self.codes.get_mut(code)
    }

    /// Records a refresh token issued for a grant.
    pub fn insert_refresh_token(&mut self, token: String, grant: usize, now: Timestamp) {
        self.refresh_tokens.insert(
            token,
            RefreshTokenRecord {
                grant,
                issued_at: now,
                rotated_at: None,
                child: None,
            },
        );
    }

    /// Issues a new refresh token for a grant.
    pub fn add_refresh_token(&mut self, grant: usize, now: Timestamp) -> String {
        let token = opaque();
        self.insert_refresh_token(token.clone(), grant, now);
        token
    }

    /// Exchanges a refresh token of the app: returns its grant and the child token to hand out,
    /// or `None` when Xero answers `invalid_grant` (unknown, another app's, revoked, unused
    /// too long, or rotated longer ago than the grace period).
    pub fn rotate_refresh_token(
        &mut self,
        presented: &str,
        client_id: &str,
        now: Timestamp,
        config: &SimConfig,
    ) -> Option<(usize, String)> {
        let grace = secs(config.xero_refresh_token_grace_seconds);
        let unused = secs(config.xero_refresh_token_unused_lifetime_seconds);
        let record = self.refresh_tokens.get(presented).cloned()?;
        let grant = &self.grants[record.grant];
        if grant.client_id != client_id || grant.revoked_at.is_some() {
            return None;
        }
        match record.rotated_at {
            None if now
                >= record
                    .issued_at
                    .checked_add(unused)
                    .unwrap_or(Timestamp::MAX) =>
            {
                return None;
            }
            Some(rotated) if now >= rotated.checked_add(grace).unwrap_or(Timestamp::MAX) => {
                return None;
            }
            _ => {}
        }
        let child = match (&record.child, config.xero_grace_reuse) {
            (Some(child), GraceReuse::SameChild) => child.clone(),
            _ => self.add_refresh_token(record.grant, now),
        };
        if let Some(r) = self.refresh_tokens.get_mut(presented) {
            r.rotated_at.get_or_insert(now);
            r.child = Some(child.clone());
        }
        Some((record.grant, child))
    }

    /// The client id of the app a refresh token was issued to.
    pub fn refresh_token_client_id(&self, token: &str) -> Option<&str> {
        self.refresh_tokens
            .get(token)
            .map(|r| self.grants[r.grant].client_id.as_str())
    }

    /// Records an issued access token.
    pub fn add_access_token(&mut self, token: String, grant: usize, expires_at: Timestamp) {
        self.access_tokens
            .insert(token, AccessTokenRecord { grant, expires_at });
    }

    /// An issued access token, expired or not.
    pub fn access_token(&self, token: &str) -> Option<&AccessTokenRecord> {
        self.access_tokens.get(token)
    }

    /// Revokes the grant a refresh token belongs to (as `/connect/revocation` does), or every
    /// grant. Returns how many grants were revoked; `None` for an unknown token.
    pub fn revoke(&mut self, refresh_token: Option<&str>, now: Timestamp) -> Option<usize> {
        let targets: Vec<usize> = match refresh_token {
            Some(token) => vec![self.refresh_tokens.get(token)?.grant],
            None => (0..self.grants.len()).collect(),
        };
        let mut count = 0;
        for i in targets {
            if self.grants[i].revoked_at.is_none() {
                self.grants[i].revoked_at = Some(now);
                count += 1;
            }
        }
        Some(count)
    }

    /// The grants for `GET /_sim/state`, tokens as fingerprints.
    pub fn snapshot(&self, now: Timestamp) -> Vec<Value> {
        let grace_state =
            |r: &RefreshTokenRecord| match (self.grants[r.grant].revoked_at, r.rotated_at) {
                (Some(_), _) => "Revoked",
                (None, None) => "Active",
                (None, Some(_)) => "Rotated",
            };
        self.grants
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let mut refresh: Vec<(&String, &RefreshTokenRecord)> =
                    self.refresh_tokens.iter().filter(|(_, r)| r.grant == i).collect();
                refresh.sort_by_key(|(_, r)| r.issued_at);
                json!({
                    "clientId": g.client_id,
                    "authEventId": g.auth_event_id,
                    "tenantIds": g.tenant_ids,
                    "scope": g.scope,
                    "revokedAt": g.revoked_at.map(|t| format!("{t:.3}")),
                    "refreshTokens": refresh.iter().map(|(t, r)| json!({
                        "fingerprint": fingerprint(t),
                        "state": grace_state(r),
                        "issuedAt": format!("{:.3}", r.issued_at),
                        "rotatedAt": r.rotated_at.map(|t| format!("{t:.3}")),
                    })).collect::<Vec<_>>(),
                    "accessTokens": self.access_tokens.iter().filter(|(_, a)| a.grant == i).map(|(t, a)| json!({
                        "fingerprint": fingerprint(t),
                        "expiresAt": format!("{:.3}", a.expires_at),
                        "expired": now >= a.expires_at,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect()
    }
}
