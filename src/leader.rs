//! Leader election on a `coordination.k8s.io/v1` Lease, so that several replicas can run and
//! only one reconciles. The holder renews the Lease every `retry_period`; the others take it
//! over once it has not been renewed for `lease_duration`. A leader that cannot renew in time
//! stops leading (the caller shuts down, as controller-runtime does), and a leader that shuts down
//! releases the Lease so that a standby takes over at once.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, Error};
use tokio::sync::watch;

/// Settings of the election.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews, and others retry.
    pub retry_period: Duration,
}

impl LeaseSettings {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaseSettings {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            // A standby takes over at most lease_duration + retry_period after the leader's last
            // renewal: within 15 seconds of a leader's death.
            lease_duration: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Takes part in the election until `stop` turns true; `leading` tells whether this replica
/// leads. Returns when stopped (after releasing a held Lease) or when leadership was lost.
pub async fn run_election(
    client: Client,
    settings: LeaseSettings,
    leading: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> ElectionEnd {
    let api = Api::<Lease>::namespaced(client, &settings.namespace);
    let mut last_renewal: Option<std::time::Instant> = None;
    loop {
        if *stop.borrow() {
            if *leading.borrow() {
                match tokio::time::timeout(call_timeout(&settings), release(&api, &settings)).await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "could not release the leader lease")
                    }
                    Err(_) => tracing::warn!("releasing the leader lease timed out"),
                }
                let _ = leading.send(false);
            }
            return ElectionEnd::Stopped;
        }
        let attempt = tokio::time::timeout(
            call_timeout(&settings),
            try_acquire_or_renew(&api, &settings),
        );
        let result = match attempt.await {
            Ok(result) => result,
            Err(_) => Err(kube::Error::Service("leader lease call timed out".into())),
        };
        match result {
            Ok(true) => {
                last_renewal = Some(std::time::Instant::now());
                if !*leading.borrow() {
                    tracing::info!(identity = %settings.identity, lease = %settings.name, "became the leader");
                    let _ = leading.send(true);
                }
            }
            Ok(false) => {
                if *leading.borrow() {
                    let _ = leading.send(false);
                    return ElectionEnd::Lost;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "leader lease update failed");
                // Step down well before a standby may take the lease over (after the full lease
                // duration), so that two replicas never lead at once.
                let deadline = settings.lease_duration.mul_f64(2.0 / 3.0);
                let expired = last_renewal.is_none_or(|t| t.elapsed() >= deadline);
                if *leading.borrow() && expired {
                    let _ = leading.send(false);
                    return ElectionEnd::Lost;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.retry_period) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Longest time one Lease call may take: a hung call must not outlive the renew deadline.
fn call_timeout(settings: &LeaseSettings) -> std::time::Duration {
    (settings.lease_duration / 3).max(std::time::Duration::from_secs(1))
}

/// How an election ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionEnd {
    Stopped,
    /// Another replica holds the Lease now, or it could not be renewed in time.
    Lost,
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// Acquires or renews the Lease; false when another live holder has it.
async fn try_acquire_or_renew(api: &Api<Lease>, settings: &LeaseSettings) -> Result<bool, Error> {
    let duration_secs = i32::try_from(settings.lease_duration.as_secs()).unwrap_or(15);
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(settings.name.clone()),
                namespace: Some(settings.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(settings.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now_micro()),
                renew_time: Some(now_micro()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let mine = holder == settings.identity;
    if !mine && !holder.is_empty() {
        let valid_for = spec
            .lease_duration_seconds
            .map_or(settings.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
        let renewed = spec.renew_time.as_ref().map(|t| t.0);
        let expired = renewed.is_none_or(|renewed| {
            let age = Timestamp::now().duration_since(renewed);
            Duration::try_from(age).is_ok_and(|age| age >= valid_for)
        });
        if !expired {
            return Ok(false);
        }
    }
    if !mine {
        spec.holder_identity = Some(settings.identity.clone());
        spec.acquire_time = Some(now_micro());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(duration_secs);
    spec.renew_time = Some(now_micro());
    // The resourceVersion from the read makes this a compare-and-swap: two replicas taking
    // over at once cannot both win.
    match api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

/// Gives the Lease up so that a standby replica takes over without waiting for it to expire.
async fn release(api: &Api<Lease>, settings: &LeaseSettings) -> Result<(), Error> {
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        return Ok(());
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    spec.acquire_time = None;
    api.replace(&settings.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}
