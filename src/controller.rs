//! The controller runtime: watches XeroDatasets (spec and annotation changes only, so a status
//! write never causes Power BI calls) and the Secrets they reference, runs the reconcile pipeline,
//! writes status with server-side apply, publishes events, and requeues at the planned time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Predicate as _, WatchStreamExt as _, predicates, watcher};
use kube::{Client, Resource, ResourceExt as _};

use crate::api::conditions;
use crate::api::{FIELD_MANAGER, Reason, SlotStarter, XeroDataset, XeroDatasetStatus};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::reconcile::model::{Hints, Outcome, Timing};
use crate::reconcile::status::{EventSpec, Severity, build_status};
use crate::reconcile::{Services, reconcile_dataset};
use crate::secret_store::SecretScope;
use crate::server::Readiness;
use crate::xero::{EXCHANGE_STARTED_ANNOTATION, ROTATED_AT_ANNOTATION, exchange_unfinished};

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub services: Services,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub timing: Timing,
    pub clock: Clock,
    /// When Power BI's schedule was last read per dataset, and for which generation: the schedule
    /// is read on spec changes and at most once per resync interval otherwise.
    schedule_checks: Mutex<HashMap<ObjectRef<XeroDataset>, (i64, Instant)>>,
    /// The newest status the operator wrote per object, until the watch cache has caught up.
    written: WrittenStatuses,
    /// XeroDatasets whose referenced Secret someone changed since their last reconcile: their
    /// next reconcile checks the whole chain.
    secret_changes: Mutex<HashSet<ObjectRef<XeroDataset>>>,
    /// The last resourceVersion seen of each Secret, to tell changes from re-lists.
    secret_versions: Mutex<HashMap<(String, String), String>>,
    /// Changed Secrets (namespace, name) that no cached XeroDataset referenced when the change
    /// arrived: at start-up the Secret watch can list before the XeroDatasets are cached, and a
    /// Secret whose last exchange never finished must still get it done again. The first
    /// XeroDataset that references one takes the change.
    unclaimed_secret_changes: Mutex<HashSet<(String, String)>>,
}

impl Context {
    pub fn new(
        client: Client,
        services: Services,
        metrics: Arc<Metrics>,
        timing: Timing,
        clock: Clock,
    ) -> Self {
        let recorder = Recorder::new(client.clone(), Reporter::from(FIELD_MANAGER));
        Context {
            client,
            services,
            recorder,
            metrics,
            timing,
            clock,
            schedule_checks: Mutex::new(HashMap::new()),
            written: WrittenStatuses::default(),
            secret_changes: Mutex::new(HashSet::new()),
            secret_versions: Mutex::new(HashMap::new()),
            unclaimed_secret_changes: Mutex::new(HashSet::new()),
        }
    }

    /// The XeroDatasets to reconcile after a change of `secret`: none when it was the Xero token
    /// rotation's own write (datasets read their Secrets when they need them); else every
    /// XeroDataset in its namespace that references it, which then checks the whole chain.
    /// Whatever was cached from the Secret is forgotten either way.
    fn datasets_to_check(
        &self,
        store: &Store<XeroDataset>,
        secret: &PartialObjectMeta<Secret>,
    ) -> Vec<ObjectRef<XeroDataset>> {
        let (Some(namespace), Some(name)) = (
            secret.metadata.namespace.as_deref(),
            secret.metadata.name.as_deref(),
        ) else {
            return Vec::new();
        };
        self.services.forget_secret(namespace, name);
        let version = secret.metadata.resource_version.as_deref().unwrap_or("");
        let annotation = |key: &str| {
            secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(key))
                .map(String::as_str)
        };
        let marks = [
            annotation(ROTATED_AT_ANNOTATION),
            annotation(EXCHANGE_STARTED_ANNOTATION),
        ];
        if !self
            .services
            .xero
            .secret_changed(namespace, name, version, marks)
        {
            return Vec::new();
        }
        let datasets: Vec<ObjectRef<XeroDataset>> = store
            .state()
            .iter()
            .filter(|xds| xds.metadata.namespace.as_deref() == Some(namespace))
            .filter(|xds| references_secret(xds, name))
            .map(|xds| ObjectRef::from_obj(xds.as_ref()))
            .collect();
        if let Ok(mut changes) = self.secret_changes.lock() {
            changes.extend(datasets.iter().cloned());
        }
        if datasets.is_empty()
            && let Ok(mut unclaimed) = self.unclaimed_secret_changes.lock()
        {
            unclaimed.insert((namespace.to_owned(), name.to_owned()));
        }
        tracing::debug!(secret = %format!("{namespace}/{name}"), datasets = datasets.len(), "a referenced Secret changed");
        datasets
    }

    /// Whether a referenced Secret changed since the last reconcile of `xds` (and forgets it),
    /// including a change no XeroDataset was there to take.
    fn take_secret_change(&self, xds: &XeroDataset) -> bool {
        let mapped = self
            .secret_changes
            .lock()
            .is_ok_and(|mut changes| changes.remove(&ObjectRef::from_obj(xds)));
        let namespace = xds.metadata.namespace.as_deref().unwrap_or_default();
        let unclaimed = self
            .unclaimed_secret_changes
            .lock()
            .is_ok_and(|mut unclaimed| {
                let before = unclaimed.len();
                unclaimed.retain(|(ns, name)| ns != namespace || !references_secret(xds, name));
                unclaimed.len() < before
            });
        mapped || unclaimed
    }

    /// Whether a Secret watch event is a change: a new resourceVersion of a Secret seen before,
    /// a Secret created or deleted while watching. The initial list (at start-up, or after the
    /// watch re-lists) only records versions, except for Secrets whose version moved meanwhile.
    fn secret_event(
        &self,
        event: watcher::Event<PartialObjectMeta<Secret>>,
    ) -> Option<PartialObjectMeta<Secret>> {
        let key = |s: &PartialObjectMeta<Secret>| {
            (
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default(),
            )
        };
        let mut versions = self.secret_versions.lock().ok()?;
        let mut record = |secret: &PartialObjectMeta<Secret>| {
            let version = secret.metadata.resource_version.clone().unwrap_or_default();
            let previous = versions.insert(key(secret), version.clone());
            (previous.clone(), previous.is_some_and(|p| p != version))
        };
        match event {
            watcher::Event::Apply(secret) => {
                let (previous, moved) = record(&secret);
                (previous.is_none() || moved).then_some(secret)
            }
            // A Secret whose last exchange never stored its new refresh token (the operator
            // stopped in between) is exchanged again now, within the grace period.
            watcher::Event::InitApply(secret) => {
                let (_, moved) = record(&secret);
                (moved || exchange_unfinished(secret.metadata.annotations.as_ref()))
                    .then_some(secret)
            }
            watcher::Event::Delete(mut secret) => {
                versions.remove(&key(&secret));
                // No version: a deleted Secret is never the rotation's own write.
                secret.metadata.resource_version = None;
                Some(secret)
            }
            watcher::Event::Init | watcher::Event::InitDone => None,
        }
    }

    fn schedule_check_due(&self, xds: &XeroDataset) -> bool {
        let generation = xds.metadata.generation.unwrap_or(0);
        // When the operator starts the slots, Power BI's schedule only has to stay off: read once
        // a day (and whenever the history shows a scheduled refresh, see the gather step).
        let interval = match xds.spec.schedule.started_by {
            SlotStarter::Operator => self.timing.operator_resync(),
            SlotStarter::PowerBi => self.timing.resync_interval,
        };
        let Ok(checks) = self.schedule_checks.lock() else {
            return true;
        };
        match checks.get(&ObjectRef::from_obj(xds)) {
            Some((checked_generation, at)) => {
                *checked_generation != generation
                    || at.elapsed() >= self.clock.real_duration(interval)
            }
            None => true,
        }
    }

    /// Forgets what was kept about a deleted XeroDataset.
    fn forget_dataset(&self, xds: &XeroDataset) {
        if let Ok(mut checks) = self.schedule_checks.lock() {
            checks.remove(&ObjectRef::from_obj(xds));
        }
        self.written.forget(&ObjectRef::from_obj(xds));
    }

    fn schedule_checked(&self, xds: &XeroDataset) {
        if let Ok(mut checks) = self.schedule_checks.lock() {
            checks.insert(
                ObjectRef::from_obj(xds),
                (xds.metadata.generation.unwrap_or(0), Instant::now()),
            );
        }
    }
}

/// Errors that end a reconcile early: only writing to Kubernetes can fail here, since every
/// Power BI and Xero failure becomes a condition instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of {0}: {1}")]
    StatusPatch(String, #[source] kube::Error),
    #[error("the object has no namespace")]
    NoNamespace,
}

/// Runs the pipeline for one XeroDataset and writes what it found.
pub async fn reconcile(xds: Arc<XeroDataset>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = xds.namespace().ok_or(Error::NoNamespace)?;
    let name = xds.name_any();
    // The watch cache may still hold the object from before this operator's last status write
    // (a Secret change can wake a reconcile before the write comes back on the watch): decide
    // from the newest status, never from a stale one.
    let xds = ctx.written.newest(xds);
    let hints = Hints {
        check_schedule: ctx.schedule_check_due(&xds),
        secret_changed: ctx.take_secret_change(&xds),
    };
    let now = ctx.clock.now();
    let (outcome, requeue_after) =
        reconcile_dataset(&xds, &ctx.services, ctx.timing, now, hints).await;
    // A failed reconcile reads the schedule again next time: a schedule update may be pending.
    if outcome.schedule_checked && outcome.failure.is_none() {
        ctx.schedule_checked(&xds);
    }
    let (status, events) = build_status(xds.status.as_ref(), &outcome);
    if xds.status.as_ref() != Some(&status) {
        let written = write_status(&ctx.client, &namespace, &name, &status)
            .await
            .map_err(|e| Error::StatusPatch(format!("{namespace}/{name}"), e))?;
        ctx.written
            .remember(ObjectRef::from_obj(xds.as_ref()), &written, status.clone());
    }
    publish(&ctx, &xds, &events).await;
    record_metrics(&ctx, &namespace, &name, &status, &outcome, &events, started);
    tracing::debug!(requeue_after = ?requeue_after, "reconciled");
    Ok(Action::requeue(ctx.clock.real_duration(requeue_after)))
}

/// Writes the whole status with server-side apply under the operator's field manager; returns
/// the object as written.
async fn write_status(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &XeroDatasetStatus,
) -> Result<XeroDataset, kube::Error> {
    let api = Api::<XeroDataset>::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": XeroDataset::api_version(&()),
        "kind": XeroDataset::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// The statuses this operator wrote that the watch cache may not show yet, each with the
/// resourceVersion its write returned. Only the operator writes status (one leader, one field
/// manager), so a cached object older than its last write carries an older status.
#[derive(Default)]
struct WrittenStatuses {
    entries: Mutex<HashMap<ObjectRef<XeroDataset>, (ResourceVersion, XeroDatasetStatus)>>,
}

impl WrittenStatuses {
    fn remember(
        &self,
        key: ObjectRef<XeroDataset>,
        written: &XeroDataset,
        status: XeroDatasetStatus,
    ) {
        let Some(version) = resource_version(written) else {
            return;
        };
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, (version, status));
        }
    }

    fn forget(&self, key: &ObjectRef<XeroDataset>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// `cached` with the newest status: its own when the cache has caught up with the last write
    /// (the entry is then dropped), else the status written last.
    fn newest(&self, cached: Arc<XeroDataset>) -> Arc<XeroDataset> {
        let key = ObjectRef::from_obj(cached.as_ref());
        let Ok(mut entries) = self.entries.lock() else {
            return cached;
        };
        let Some((written_version, status)) = entries.get(&key) else {
            return cached;
        };
        match resource_version(&cached) {
            Some(version) if version < *written_version => {
                let mut newest = cached.as_ref().clone();
                newest.status = Some(status.clone());
                Arc::new(newest)
            }
            _ => {
                entries.remove(&key);
                cached
            }
        }
    }
}

/// The object's resourceVersion in a form that orders as the API server's versions do. Since
/// Kubernetes 1.35 resourceVersions of one resource are comparable as positive integers without
/// leading zeros and of any length (KEP-5504), so (length, digits) orders them. One that is not
/// such an integer makes the operator trust its cache.
fn resource_version(xds: &XeroDataset) -> Option<ResourceVersion> {
    let version = xds.metadata.resource_version.as_deref()?;
    let valid = !version.is_empty()
        && !version.starts_with('0')
        && version.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| ResourceVersion(version.len(), version.to_owned()))
}

/// A comparable resourceVersion: (number of digits, digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ResourceVersion(usize, String);

async fn publish(ctx: &Context, xds: &XeroDataset, events: &[EventSpec]) {
    let reference = xds.object_ref(&());
    for event in events {
        let published = ctx
            .recorder
            .publish(
                &Event {
                    type_: match event.severity {
                        Severity::Normal => EventType::Normal,
                        Severity::Warning => EventType::Warning,
                    },
                    reason: event.reason.as_str().to_owned(),
                    note: Some(crate::api::printable(&event.message, 1000)),
                    // Events about different refreshes stay apart: kube's recorder
                    // aggregates on the action, not on the message.
                    action: event.series_action(),
                    secondary: None,
                },
                &reference,
            )
            .await;
        if let Err(err) = published {
            tracing::warn!(reason = %event.reason, error = %err, "could not publish an event");
        }
    }
}

fn record_metrics(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &XeroDatasetStatus,
    outcome: &Outcome,
    events: &[EventSpec],
    started: Instant,
) {
    for event in events {
        match event.reason {
            Reason::RefreshSucceeded => ctx.metrics.refresh_outcome("Completed"),
            Reason::RefreshFailed => ctx.metrics.refresh_outcome("Failed"),
            _ => {}
        }
    }
    let result = outcome
        .failure
        .as_ref()
        .map_or("Success", |f| f.reason.as_str());
    ctx.metrics.reconciled(result, started.elapsed());
    for action in &outcome.executed {
        ctx.metrics
            .action(crate::reconcile::action_reason(action).as_str());
    }
    if let Some(success) = &status.last_successful_refresh_time {
        ctx.metrics
            .last_success(namespace, name, success.0.as_second());
    }
    if let Some(ready) = conditions::find_condition(&status.conditions, conditions::READY) {
        ctx.metrics
            .dataset_state(&format!("{namespace}/{name}"), &ready.status, &ready.reason);
    }
}

/// Called when `reconcile` fails (only status writes can): try again soon.
pub fn error_policy(xds: Arc<XeroDataset>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %xds.name_any(), error = %error, "reconcile failed");
    ctx.metrics.reconciled("StatusWriteFailed", Duration::ZERO);
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller for one namespace (or all when `namespace` is `None`) until `shutdown`.
pub async fn run_controller(
    ctx: Arc<Context>,
    namespace: Option<String>,
    label_selector: Option<String>,
    concurrency: u16,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let datasets = match &namespace {
        Some(ns) => Api::<XeroDataset>::namespaced(client.clone(), ns),
        None => Api::<XeroDataset>::all(client.clone()),
    };
    let secrets = secret_watches(&client, namespace.as_deref(), ctx.services.secrets.scope());
    let (reader, writer) = reflector::store();
    // Spec and annotation changes only: the operator's own status writes do not come back as work.
    // A label selector splits the XeroDatasets of a cluster between operator Deployments
    // (shards); each sees and reconciles only its own.
    let mut config = watcher::Config::default().any_semantic();
    if let Some(selector) = &label_selector {
        config = config.labels(selector);
    }
    let dataset_changes = watcher(datasets, config)
        .default_backoff()
        // The cache keeps every XeroDataset; managedFields (large under server-side apply) are
        // never read, so they are not kept.
        .modify(|xds| xds.managed_fields_mut().clear())
        .reflect(writer)
        .inspect(watch_bookkeeping(ctx.clone(), namespace, readiness))
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::annotations),
            Default::default(),
        );
    let events_ctx = ctx.clone();
    let secret_watches = secrets.into_iter().map(|api| {
        watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .boxed()
    });
    // Never ending, also without a Secret watch: an ended trigger stream must not look like a
    // stopped controller.
    let secret_changes = futures::stream::select_all(secret_watches)
        .chain(futures::stream::pending())
        .filter_map(move |event| {
            let change = match event {
                Ok(event) => events_ctx.secret_event(event).map(Ok),
                Err(err) => Some(Err(err)),
            };
            std::future::ready(change)
        });
    let mapping_store = reader.clone();
    let secrets_ctx = ctx.clone();
    Controller::for_stream(dataset_changes, reader)
        .watches_stream(secret_changes, move |secret| {
            secrets_ctx.datasets_to_check(&mapping_store, &secret)
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "controller event");
            }
        })
        .await;
}

/// The Secret metadata watches of the controller of `namespace` (all when `None`): that
/// namespace, or with every namespace watched the namespaces whose Secrets the operator may
/// read (cluster-wide only when it may read them all; none when none opted in).
fn secret_watches(
    client: &kube::Client,
    namespace: Option<&str>,
    scope: &SecretScope,
) -> Vec<Api<PartialObjectMeta<Secret>>> {
    match (namespace, scope) {
        (Some(ns), _) => vec![Api::namespaced(client.clone(), ns)],
        (None, SecretScope::Everywhere) => vec![Api::all(client.clone())],
        (None, SecretScope::Namespaces(names)) => names
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect(),
    }
}

/// What the XeroDataset watch of `namespace` reports besides objects: deletions make the operator
/// forget what it kept about an object, and the first complete list counts towards readiness
/// (once, not again after a re-list).
fn watch_bookkeeping(
    ctx: Arc<Context>,
    namespace: Option<String>,
    readiness: Arc<Readiness>,
) -> impl FnMut(&Result<watcher::Event<XeroDataset>, watcher::Error>) {
    let mut synced = false;
    move |event| match event {
        Ok(watcher::Event::Delete(xds)) => {
            ctx.metrics
                .forget_dataset(&xds.namespace().unwrap_or_default(), &xds.name_any());
            ctx.forget_dataset(xds);
        }
        // Not `Store::wait_until_ready` in a task of our own: the controller waits on the same
        // store, and kube-runtime's DelayedInit wakes only the last waiter registered, so a
        // second waiter may never wake (the operator then stayed unready with an empty
        // namespace).
        Ok(watcher::Event::InitDone) if !synced => {
            synced = true;
            tracing::info!(namespace = ?namespace, "initial list of XeroDatasets synced");
            if readiness.watch_synced() {
                tracing::info!("every watched namespace synced: ready");
            }
        }
        _ => {}
    }
}

fn references_secret(xds: &XeroDataset, name: &str) -> bool {
    xds.spec.xero.credentials_secret_ref.name == name
        || xds
            .spec
            .power_bi
            .credentials_secret_ref
            .as_ref()
            .is_some_and(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(version: &str, observed_generation: i64) -> Arc<XeroDataset> {
        let mut xds: XeroDataset = serde_json::from_value(serde_json::json!({
            "apiVersion": "xero-operator.dev/v1alpha1",
            "kind": "XeroDataset",
            "metadata": {"name": "a", "namespace": "n", "resourceVersion": version},
            "spec": {
                "workspaceId": "f089354e-8366-4e18-aea3-4cb4a3a50b48",
                "dataset": {"name": "Xero"},
                "xero": {"organisation": "Demo", "credentialsSecretRef": {"name": "x"}},
                "schedule": {"days": ["Monday"], "times": ["06:00"], "timeZone": "UTC"},
            },
        }))
        .expect("XeroDataset");
        xds.status = Some(XeroDatasetStatus {
            observed_generation: Some(observed_generation),
            ..XeroDatasetStatus::default()
        });
        Arc::new(xds)
    }

    fn observed(xds: &XeroDataset) -> Option<i64> {
        xds.status.as_ref().and_then(|s| s.observed_generation)
    }

    /// Remembers the status of `after_write` as written at its resourceVersion.
    fn remember(written: &WrittenStatuses, after_write: &XeroDataset) {
        let status = after_write.status.clone().expect("status");
        written.remember(ObjectRef::from_obj(after_write), after_write, status);
    }

    #[test]
    fn a_cached_object_older_than_the_last_write_gets_the_written_status() {
        let written = WrittenStatuses::default();
        remember(&written, &dataset("120", 7));

        // 99 < 120 although "99" > "120" as text.
        assert_eq!(observed(&written.newest(dataset("99", 1))), Some(7));
        assert_eq!(observed(&written.newest(dataset("119", 1))), Some(7));
        // The cache caught up: its object wins and the entry is dropped.
        assert_eq!(observed(&written.newest(dataset("120", 2))), Some(2));
        assert_eq!(observed(&written.newest(dataset("99", 1))), Some(1));
    }

    #[test]
    fn a_newer_cached_object_or_an_unusual_version_is_trusted() {
        let written = WrittenStatuses::default();
        let after_write = dataset("120", 7);
        remember(&written, &after_write);
        assert_eq!(observed(&written.newest(dataset("1000", 3))), Some(3));

        remember(&written, &after_write);
        assert_eq!(observed(&written.newest(dataset("0120", 4))), Some(4));
        assert_eq!(observed(&written.newest(dataset("abc", 5))), Some(5));

        // Nothing is remembered for a write whose version is not a number.
        written.remember(
            ObjectRef::from_obj(after_write.as_ref()),
            &dataset("x1", 9),
            XeroDatasetStatus::default(),
        );
        assert_eq!(observed(&written.newest(dataset("5", 6))), Some(6));
    }
}
