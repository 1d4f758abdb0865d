//! The reconcile pipeline of one XeroDataset: gather (I/O), validate (pure), plan (pure),
//! execute (I/O), status (pure here; the controller writes it).

mod execute;
mod gather;
pub mod plan;
pub mod status;
pub mod validate;

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt as _;

use crate::api::conditions::reason;
use crate::api::{PowerBiCloud, XeroDataset};
use crate::endpoints::{Cloud, Endpoints};
use crate::error::{ClientError, ErrorCategory};
use crate::http::{HttpSettings, RetryPolicy, http_client};
use crate::kube::SecretStore;
use crate::powerbi::{EntraTokenProvider, PowerBiClient};
use crate::xero::{XeroConnections, XeroTokenRotation};
use plan::{Action, Timing, plan_actions};
use status::{Failure, Outcome, memory_from_status};

/// The clients one Power BI cloud needs.
pub struct CloudClients {
    pub powerbi: PowerBiClient,
    pub entra: EntraTokenProvider,
}

/// Every external service the pipeline talks to, shared by all reconciles (tokens are cached
/// and exchanges single-flight inside).
pub struct Services {
    clouds: HashMap<&'static str, CloudClients>,
    pub secrets: SecretStore,
    pub xero: XeroTokenRotation,
    pub connections: XeroConnections,
    /// The Xero datasource (gateway id, datasource id) of each dataset.
    datasources: Memo<(String, String, Option<String>), (String, String)>,
    /// Power BI service principal Secrets by (namespace, name), read once for all the datasets
    /// that share one; forgotten when the Secret changes.
    powerbi_secrets: Memo<(String, String), crate::kube::SecretValues>,
}

/// Values remembered for a while: what rarely changes and would cost a call each time.
struct Memo<K, V> {
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
    fn new(ttl: std::time::Duration) -> Self {
        Memo {
            ttl,
            entries: std::sync::Mutex::new(MemoEntries {
                values: HashMap::new(),
                sweep_at: 64,
            }),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .values
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: K, value: V) {
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

    fn forget(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.values.remove(key);
        }
    }
}

impl Services {
    /// Clients for every cloud, with the URL overrides of `endpoints` applied to all of them.
    pub fn new(client: kube::Client, endpoints: &Endpoints) -> Result<Self, ClientError> {
        let http = http_client(&HttpSettings::default())?;
        let retry = RetryPolicy::default();
        let mut clouds = HashMap::new();
        for (key, cloud) in CLOUDS {
            let urls = Endpoints {
                cloud,
                ..endpoints.clone()
            }
            .resolve()?;
            clouds.insert(
                key,
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
        let secrets = SecretStore::new(client);
        Ok(Services {
            clouds,
            xero: XeroTokenRotation::new(
                http.clone(),
                &urls.xero_identity,
                retry.clone(),
                secrets.clone(),
            )?,
            connections: XeroConnections::new(http, &urls.xero_api, retry)?,
            secrets,
            datasources: Memo::new(std::time::Duration::from_secs(6 * 3600)),
            powerbi_secrets: Memo::new(std::time::Duration::from_secs(300)),
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

    /// Forgets what was read from the Secret `namespace/name` (it changed).
    pub fn forget_secret(&self, namespace: &str, name: &str) {
        self.powerbi_secrets
            .forget(&(namespace.to_owned(), name.to_owned()));
    }

    fn cloud(&self, cloud: PowerBiCloud) -> Result<&CloudClients, ClientError> {
        self.clouds.get(cloud_key(cloud)).ok_or_else(|| {
            ClientError::new(
                ErrorCategory::InvalidEndpoint,
                "no clients for the dataset's cloud",
            )
        })
    }
}

const CLOUDS: [(&str, Cloud); 5] = [
    ("Public", Cloud::Public),
    ("USGov", Cloud::UsGov),
    ("USGovHigh", Cloud::UsGovHigh),
    ("USGovDoD", Cloud::UsGovDod),
    ("China", Cloud::China),
];

fn cloud_key(cloud: PowerBiCloud) -> &'static str {
    match cloud {
        PowerBiCloud::Public => "Public",
        PowerBiCloud::UsGov => "USGov",
        PowerBiCloud::UsGovHigh => "USGovHigh",
        PowerBiCloud::UsGovDod => "USGovDoD",
        PowerBiCloud::China => "China",
    }
}

/// The event and metric name of an action.
pub fn action_name(action: &Action) -> &'static str {
    match action {
        Action::UpdateSchedule(_) => reason::SCHEDULE_UPDATED,
        Action::ApplyCredentials(_) => reason::CREDENTIALS_APPLIED,
        Action::TriggerRefresh(_) => reason::REFRESH_TRIGGERED,
    }
}

/// Runs the pipeline once: what happened, and when to look again.
pub async fn reconcile_dataset(
    xds: &XeroDataset,
    services: &Services,
    timing: Timing,
    now: Timestamp,
    check_schedule: bool,
) -> (Outcome, Duration) {
    let mut outcome = Outcome {
        now: Some(now),
        generation: xds.metadata.generation,
        ..Outcome::default()
    };
    let validated = match validate::validate(xds, timing.default_credential_lead_time) {
        Ok(v) => v,
        Err(invalid) => {
            outcome.failure = Some(Failure {
                reason: reason::INVALID_SPEC,
                message: invalid.0,
                needs_human: true,
            });
            return (outcome, timing.resync_interval);
        }
    };
    outcome.handled_reconcile = validated.reconcile_requested.clone();
    if validated.desired.suspend {
        // No call to Power BI or Xero at all.
        outcome.suspended = true;
        return (outcome, timing.resync_interval);
    }
    let namespace = xds.namespace().unwrap_or_default();
    let cloud = match services.cloud(validated.cloud) {
        Ok(cloud) => cloud,
        Err(err) => {
            let err = StepError::Call(err, Service::PowerBi);
            return failed(outcome, &err, &validated, timing);
        }
    };
    let session = gather::Session {
        services,
        cloud,
        namespace: &namespace,
        spec: &validated,
    };
    let gathered = match gather::gather(
        &session,
        xds.status.as_ref(),
        xds.metadata.generation,
        check_schedule,
    )
    .await
    {
        Ok(g) => g,
        Err(err) => return failed(outcome, &err, &validated, timing),
    };
    outcome.dataset_id = Some(gathered.dataset_id.clone());
    outcome.schedule_checked = gathered.observed.schedule.is_some();
    outcome.history = Some(gathered.records.clone());

    let memory = memory_from_status(xds.status.as_ref());
    let plan = plan_actions(&validated.desired, &gathered.observed, &memory, timing, now);
    let requeue = plan.requeue_after;
    let executed = execute::execute(&session, &gathered.dataset_id, &plan, &memory).await;
    outcome.executed = executed.done;
    outcome.triggered_request_id = executed.triggered_request_id;
    outcome.xero_tenant_id = executed.xero_tenant_id;
    outcome.access_token_expires_at = executed.access_token_expires_at;
    outcome.refresh_token_rotated_at = executed.refresh_token_rotated_at;
    outcome.plan = Some(executed.plan);
    if let Some(err) = executed.error {
        // The plan's wake-ups assumed its actions would succeed (a poll of the refresh it
        // meant to start, say); after a failure the failure decides when to try again.
        return failed(outcome, &err, &validated, timing);
    }
    (outcome, requeue)
}

/// Which service a failed call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    PowerBi,
    Xero,
    Kubernetes,
}

/// Why a step of the pipeline stopped.
#[derive(Debug)]
pub(crate) enum StepError {
    /// A call to a service failed.
    Call(ClientError, Service),
    /// The pipeline found something a human must fix (a dataset or datasource that cannot be
    /// found or is ambiguous).
    Finding(Failure),
}

/// Records a failure. A refresh request that cannot be served until a human acts is answered
/// now (echoed as handled, with the failure as the reason), so that nobody waits for it.
fn failed(
    mut outcome: Outcome,
    err: &StepError,
    validated: &validate::ValidatedSpec,
    timing: Timing,
) -> (Outcome, Duration) {
    let (failure, wait) = failure_of(err, timing);
    if failure.needs_human {
        outcome.refused_request = validated.desired.refresh_requested.clone();
    }
    outcome.failure = Some(failure);
    (outcome, wait)
}

/// The condition reason of a failed call, whether a human must act, and when to try again.
fn failure_of(err: &StepError, timing: Timing) -> (Failure, Duration) {
    let (err, service) = match err {
        StepError::Call(err, service) => (err, *service),
        StepError::Finding(failure) => return (failure.clone(), timing.resync_interval),
    };
    use ErrorCategory as C;
    let category = err.category();
    let (reason, needs_human) = match (category, service) {
        (C::XeroRefreshTokenRejected, _) => (reason::XERO_REFRESH_TOKEN_REJECTED, true),
        (C::XeroClientRejected, _) => (reason::XERO_REFRESH_TOKEN_REJECTED, true),
        (C::SecretNotFound, _) => (reason::SECRET_NOT_FOUND, true),
        (C::SecretKeyMissing, _) => (reason::SECRET_KEY_MISSING, true),
        (C::OrganisationNotFound, _) => (reason::ORGANISATION_NOT_FOUND, true),
        (C::OrganisationAmbiguous, _) => (reason::ORGANISATION_AMBIGUOUS, true),
        // Xero refusing a fresh access token means the user's access to the organisation was
        // revoked: someone must sign in again.
        (C::Unauthorized | C::Forbidden, Service::Xero) => {
            (reason::XERO_REFRESH_TOKEN_REJECTED, true)
        }
        (C::EntraTokenRejected | C::WorkloadIdentityUnavailable | C::Unauthorized, _) => {
            (reason::POWER_BI_UNAUTHORIZED, true)
        }
        (C::Forbidden, Service::PowerBi) => (reason::POWER_BI_FORBIDDEN, true),
        (C::NotFound, Service::PowerBi) => (reason::DATASET_NOT_FOUND, true),
        (C::InvalidEndpoint, _) => (reason::INVALID_SPEC, true),
        (C::Throttled, Service::PowerBi) => (reason::POWER_BI_THROTTLED, false),
        (_, Service::Xero) => (reason::XERO_UNAVAILABLE, false),
        (_, Service::Kubernetes) => (reason::API_UNAVAILABLE, false),
        _ => (reason::POWER_BI_UNAVAILABLE, false),
    };
    let message = match reason {
        reason::XERO_REFRESH_TOKEN_REJECTED => format!(
            "{}; sign in to Xero again with `xero-operator xero-login` to write a new refresh token to the Secret",
            err.message()
        ),
        _ => err.message().to_owned(),
    };
    let wait = if needs_human {
        timing.resync_interval
    } else {
        // Retry-After is honoured in full (Power BI has sent waits of nearly an hour).
        err.retry_after()
            .unwrap_or(Duration::from_secs(30))
            .clamp(Duration::from_secs(1), Duration::from_secs(6 * 3600))
    };
    (
        Failure {
            reason,
            message,
            needs_human,
        },
        wait,
    )
}

#[cfg(test)]
mod tests {
    use super::Memo;
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
