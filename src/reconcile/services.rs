//! What the pipeline calls, wired once and shared by every reconcile: the clients of each
//! Power BI cloud, Xero and the Secrets, and the values remembered between reconciles because
//! they rarely change and would cost a call each time. [`Session`] is what one reconcile works
//! with.

use std::collections::HashMap;

use clap::ValueEnum as _;

use super::failure::StepError;
use super::validate::ValidatedSpec;
use crate::api::PowerBiCloud;
use crate::clock::Clock;
use crate::endpoints::{Cloud, Endpoints};
use crate::error::ClientError;
use crate::http::{HttpSettings, RetryPolicy, http_client};
use crate::powerbi::{
    ClientSecretCredential, EntraCredential, EntraTokenProvider, PowerBiClient, WorkloadIdentity,
};
use crate::secret::SecretString;
use crate::secret_store::SecretScope;
use crate::secret_store::{SecretAccess as _, SecretStore, Shape};
use crate::xero::{XeroAllowance, XeroApi, XeroSecretRef, XeroTokenRotation};

/// The clients one Power BI cloud needs.
pub struct CloudClients {
    pub powerbi: PowerBiClient,
    pub entra: EntraTokenProvider,
}

/// Every external service the pipeline talks to, shared by all reconciles (tokens are cached
/// and exchanges single-flight inside).
pub struct Services {
    clouds: HashMap<Cloud, CloudClients>,
    pub secrets: SecretStore,
    pub xero: XeroTokenRotation,
    pub xero_api: XeroApi,
    /// The Xero datasource (gateway id, datasource id) of each dataset, for a week: forgotten as
    /// soon as an update of it fails (a republished dataset costs one failed call), and before
    /// credentials are applied while the latest refresh is a failure (a dataset bound to another
    /// datasource since fails its refreshes: the next apply finds the new binding).
    pub(super) datasources:
        Memo<(String, String, Option<String>), super::execute::DatasourceBinding>,
    /// Power BI service principal Secrets by (namespace, name), read once for all the datasets
    /// that share one; forgotten when the Secret changes.
    pub(super) powerbi_secrets: Memo<(String, String), crate::secret_store::SecretValues>,
    /// The Xero calls left in an organisation, by the Xero Secret (namespace, name) and the
    /// tenant id, so that many datasets on one organisation do not spend its minute on asking.
    pub(super) xero_allowances: Memo<(String, String, String), XeroAllowance>,
    /// Identifies the endpoint configuration: the chain is checked again when it changes.
    configuration: u64,
    /// The namespaces whose XeroDatasets may use the operator's own Power BI identity.
    identity_offer: IdentityOffer,
    /// The workspaces (ids, lower case) the operator's own identity serves; any when `None`.
    identity_workspaces: Option<std::collections::BTreeSet<String>>,
}

/// Which namespaces may use the operator's own Power BI identity (workload identity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IdentityOffer {
    /// None (the default): every XeroDataset names its own service principal Secret.
    #[default]
    Nobody,
    /// These namespaces.
    Namespaces(std::collections::BTreeSet<String>),
    /// Every namespace (`*`).
    Everyone,
}

impl IdentityOffer {
    /// From `--workload-identity-namespaces`: names, or `*`.
    pub fn from_flag(values: &[String]) -> Self {
        let names: std::collections::BTreeSet<String> = values
            .iter()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        if names.contains("*") {
            IdentityOffer::Everyone
        } else if names.is_empty() {
            IdentityOffer::Nobody
        } else {
            IdentityOffer::Namespaces(names)
        }
    }

    /// Whether XeroDatasets in `namespace` may use the operator's identity.
    pub fn covers(&self, namespace: &str) -> bool {
        match self {
            IdentityOffer::Nobody => false,
            IdentityOffer::Namespaces(names) => names.contains(namespace),
            IdentityOffer::Everyone => true,
        }
    }
}

/// Values remembered for a while: what rarely changes and would cost a call each time.
pub(super) struct Memo<K, V> {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<MemoEntries<K, V>>,
}

struct MemoEntries<K, V> {
    values: HashMap<K, (std::time::Instant, V)>,
    /// Expired entries are swept when the map reaches this size (then twice the live size), so
    /// that a put costs O(1) on average even with thousands of datasets.
    sweep_at: usize,
}

impl<K: std::hash::Hash + Eq, V: Clone> Memo<K, V> {
    pub(super) fn new(ttl: std::time::Duration) -> Self {
        Memo {
            ttl,
            entries: std::sync::Mutex::new(MemoEntries {
                values: HashMap::new(),
                sweep_at: 64,
            }),
        }
    }

    /// The same memo, its entries kept for `ttl` on `clock`.
    fn on_clock(self, clock: Clock) -> Self {
        Memo {
            ttl: clock.real_duration(self.ttl),
            ..self
        }
    }

    pub(super) fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .values
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    pub(super) fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.values.len() >= entries.sweep_at {
                entries.values.retain(|_, (at, _)| at.elapsed() < self.ttl);
                entries.sweep_at = (entries.values.len() * 2).max(64);
            }
            entries
                .values
                .insert(key, (std::time::Instant::now(), value));
        }
    }

    pub(super) fn forget(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.values.remove(key);
        }
    }
}

impl Services {
    /// Clients for every cloud, with the URL overrides of `endpoints` applied to all of them,
    /// reading Secrets in every namespace.
    pub fn new(client: kube::Client, endpoints: &Endpoints) -> Result<Self, ClientError> {
        Self::reading_secrets_in(client, endpoints, SecretScope::Everywhere)
    }

    /// As [`Services::new`], reading and writing Secrets only in the namespaces of `scope`.
    pub fn reading_secrets_in(
        client: kube::Client,
        endpoints: &Endpoints,
        scope: SecretScope,
    ) -> Result<Self, ClientError> {
        let http = http_client(&HttpSettings::default())?;
        let retry = RetryPolicy::default();
        let mut clouds = HashMap::new();
        for &cloud in Cloud::value_variants() {
            let urls = Endpoints {
                cloud,
                ..endpoints.clone()
            }
            .resolve()?;
            clouds.insert(
                cloud,
                CloudClients {
                    powerbi: PowerBiClient::new(http.clone(), &urls.powerbi_api, retry.clone())?,
                    entra: EntraTokenProvider::new(
                        http.clone(),
                        urls.authority_host.clone(),
                        urls.powerbi_scope.clone(),
                        retry.clone(),
                    ),
                },
            );
        }
        let urls = endpoints.resolve()?;
        let secrets = SecretStore::new(client).limited_to(scope);
        Ok(Services {
            clouds,
            xero: XeroTokenRotation::new(
                http.clone(),
                &urls.xero_identity,
                retry.clone(),
                secrets.clone(),
            )?,
            xero_api: XeroApi::new(http, &urls.xero_api, retry)?,
            secrets,
            datasources: Memo::new(std::time::Duration::from_secs(7 * 24 * 3600)),
            powerbi_secrets: Memo::new(std::time::Duration::from_secs(300)),
            xero_allowances: Memo::new(std::time::Duration::from_secs(60)),
            identity_offer: IdentityOffer::Nobody,
            identity_workspaces: None,
            configuration: fnv1a(
                [
                    urls.powerbi_api.as_str(),
                    urls.authority_host.as_str(),
                    &urls.powerbi_scope,
                    urls.xero_identity.as_str(),
                    urls.xero_api.as_str(),
                ]
                .join(" ")
                .as_bytes(),
            ),
        })
    }

    /// Counts every Xero token exchange by outcome in `metrics`.
    pub fn count_exchanges_in(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.xero = self
            .xero
            .with_exchange_observer(std::sync::Arc::new(move |outcome| {
                metrics.token_exchange(outcome)
            }));
        self
    }

    /// Offers the operator's own Power BI identity to the XeroDatasets of `offer`'s namespaces.
    pub fn offering_identity_to(mut self, offer: IdentityOffer) -> Self {
        self.identity_offer = offer;
        self
    }

    /// Lets token lifetimes and remembered values run on `clock` (real time outside
    /// benchmarks, whose faster clock ends them sooner, as the simulator's clock does).
    pub fn on_clock(self, clock: Clock) -> Self {
        Services {
            clouds: self
                .clouds
                .into_iter()
                .map(|(cloud, clients)| {
                    let clients = CloudClients {
                        entra: clients.entra.on_clock(clock),
                        ..clients
                    };
                    (cloud, clients)
                })
                .collect(),
            xero: self.xero.on_clock(clock),
            datasources: self.datasources.on_clock(clock),
            powerbi_secrets: self.powerbi_secrets.on_clock(clock),
            xero_allowances: self.xero_allowances.on_clock(clock),
            ..self
        }
    }

    /// Limits the operator's own identity to the workspaces of `--workload-identity-workspaces`
    /// (any when none are given).
    pub fn serving_workspaces(mut self, workspace_ids: &[String]) -> Self {
        let ids: std::collections::BTreeSet<String> = workspace_ids
            .iter()
            .map(|id| id.trim().to_ascii_lowercase())
            .filter(|id| !id.is_empty())
            .collect();
        self.identity_workspaces = (!ids.is_empty()).then_some(ids);
        self
    }

    /// Identifies the operator's endpoint configuration (stable across restarts and versions).
    pub fn configuration(&self) -> u64 {
        self.configuration
    }

    /// Forgets what was read from the Secret `namespace/name` (it changed).
    pub fn forget_secret(&self, namespace: &str, name: &str) {
        self.powerbi_secrets
            .forget(&(namespace.to_owned(), name.to_owned()));
    }

    pub(super) fn cloud(&self, cloud: PowerBiCloud) -> Result<&CloudClients, ClientError> {
        self.clouds
            .get(&Cloud::from(cloud))
            .ok_or_else(|| ClientError::invalid_endpoint("no clients for the dataset's cloud"))
    }
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions, unlike std's hasher, so
/// that a fingerprint written into a status still matches after an upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What one reconcile works with.
pub(super) struct Session<'a> {
    pub services: &'a Services,
    pub cloud: &'a CloudClients,
    pub namespace: &'a str,
    pub spec: &'a ValidatedSpec,
}

impl Session<'_> {
    /// The Secret with the Xero app's credentials and refresh token.
    pub fn xero_secret(&self) -> XeroSecretRef {
        let keys = &self.spec.xero_secret;
        XeroSecretRef {
            namespace: self.namespace.to_owned(),
            name: keys.name.clone(),
            client_id_key: keys.client_id_key.clone(),
            client_secret_key: keys.client_secret_key.clone(),
            refresh_token_key: keys.refresh_token_key.clone(),
        }
    }

    /// A Power BI access token for the dataset's identity.
    pub async fn powerbi_token(&self) -> Result<SecretString, StepError> {
        let credential = self.entra_credential().await?;
        self.cloud
            .entra
            .token(&credential)
            .await
            .map_err(StepError::Call)
    }

    /// Drops the cached Power BI access token: Power BI said it expired (403 `TokenExpired`)
    /// although the cache still trusted it (clock skew, or a token revoked early).
    pub async fn forget_powerbi_token(&self) {
        if let Ok(credential) = self.entra_credential().await {
            self.cloud.entra.invalidate(&credential).await;
        }
    }

    async fn entra_credential(&self) -> Result<EntraCredential, StepError> {
        let Some(secret_ref) = &self.spec.powerbi_secret else {
            if !self.services.identity_offer.covers(self.namespace) {
                return Err(StepError::Finding(super::model::Failure {
                    reason: crate::api::Reason::InvalidSpec,
                    message: format!(
                        "spec.powerBI.credentialsSecretRef is required: the operator's own Power BI identity is not offered to namespace {} (its administrator lists the namespaces that may use it in --workload-identity-namespaces, chart value workloadIdentity.namespaces)",
                        self.namespace
                    ),
                    needs_human: true,
                }));
            }
            let workspace = self.spec.workspace_id.to_ascii_lowercase();
            if let Some(served) = &self.services.identity_workspaces
                && !served.contains(&workspace)
            {
                return Err(StepError::Finding(super::model::Failure {
                    reason: crate::api::Reason::InvalidSpec,
                    message: format!(
                        "spec.powerBI.credentialsSecretRef is required for workspace {}: the operator's own Power BI identity serves only the workspaces its administrator listed (--workload-identity-workspaces, chart value workloadIdentity.workspaces)",
                        self.spec.workspace_id
                    ),
                    needs_human: true,
                }));
            }
            return WorkloadIdentity::from_env()
                .map(EntraCredential::WorkloadIdentity)
                .map_err(StepError::Call);
        };
        let kube = StepError::Call;
        let key = (self.namespace.to_owned(), secret_ref.name.clone());
        let secret = match self.services.powerbi_secrets.get(&key) {
            Some(secret) => secret,
            None => {
                let secret = self
                    .services
                    .secrets
                    .read(self.namespace, &secret_ref.name)
                    .await
                    .map_err(kube)?;
                self.services.powerbi_secrets.put(key, secret.clone());
                secret
            }
        };
        Ok(EntraCredential::ClientSecret(ClientSecretCredential {
            tenant_id: secret
                .shaped(&secret_ref.tenant_id_key, Shape::EntraTenant)
                .map_err(kube)?
                .expose()
                .to_owned(),
            client_id: secret
                .shaped(&secret_ref.client_id_key, Shape::Guid)
                .map_err(kube)?
                .expose()
                .to_owned(),
            client_secret: secret
                .shaped(&secret_ref.client_secret_key, Shape::Opaque)
                .map_err(kube)?
                .clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{IdentityOffer, Memo};

    #[test]
    fn the_operators_identity_is_offered_only_to_the_listed_namespaces() {
        let flag = |values: &[&str]| {
            IdentityOffer::from_flag(&values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>())
        };
        assert!(!flag(&[]).covers("finance"));
        assert!(!flag(&[""]).covers("finance"));
        let listed = flag(&["finance", " sales "]);
        assert!(listed.covers("finance") && listed.covers("sales"));
        assert!(!listed.covers("kube-system"));
        assert!(flag(&["*"]).covers("anything"));
    }
    use std::time::Duration;

    #[test]
    fn a_memo_keeps_values_until_they_expire_or_are_forgotten() {
        let memo = Memo::new(Duration::from_secs(60));
        memo.put("a", 1);
        assert_eq!(memo.get(&"a"), Some(1));
        memo.forget(&"a");
        assert_eq!(memo.get(&"a"), None);

        let expired = Memo::new(Duration::ZERO);
        for i in 0..1000 {
            expired.put(i, i);
        }
        assert_eq!(
            expired.get(&999),
            None,
            "an expired value is not handed out"
        );
        let size = expired.entries.lock().expect("lock").values.len();
        assert!(size < 200, "expired entries are swept: {size} kept");
    }
}
