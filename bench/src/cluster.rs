//! The Kubernetes side: a namespace per scenario, the tenant's Secrets and XeroDatasets created
//! concurrently, a watch that tells when every XeroDataset is Ready, and the API server's own
//! request counter.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};
use tokio::sync::watch;
use xero_testbed::ControlPlane;

use crate::error::{Context as _, Result};
use crate::fixtures::Tenant;
use crate::operator::Operator;

/// XeroDatasets created at the same time.
const CREATE_CONCURRENCY: usize = 32;

pub fn xero_datasets(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("xero-operator.dev", "v1alpha1", "XeroDataset");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "xerodatasets");
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// A new namespace named after `prefix`.
pub async fn namespace(plane: &ControlPlane, client: &Client, prefix: &str) -> Result<String> {
    plane
        .namespace(client, prefix)
        .await
        .context(format!("create a namespace for {prefix}"))
}

/// Creates the tenant's Secrets and XeroDatasets in `namespace`; returns how long the
/// XeroDatasets took.
pub async fn create_tenant(client: &Client, namespace: &str, tenant: &Tenant) -> Result<Duration> {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    for (name, data) in tenant.secrets() {
        let data: BTreeMap<&str, String> = data.into_iter().collect();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .context("build a Secret")?;
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .context(format!("create Secret {namespace}/{name}"))?;
    }
    let api = xero_datasets(client, namespace);
    let started = Instant::now();
    futures::stream::iter(tenant.datasets.iter().map(|dataset| {
        let api = api.clone();
        let manifest = tenant.manifest(dataset);
        async move {
            let object: DynamicObject =
                serde_json::from_value(manifest).context("build a XeroDataset")?;
            api.create(&PostParams::default(), &object)
                .await
                .context(format!("create XeroDataset {}", dataset.name))
        }
    }))
    .buffer_unordered(CREATE_CONCURRENCY)
    .try_for_each(|_| async { Ok(()) })
    .await?;
    Ok(started.elapsed())
}

/// Whether a XeroDataset's `Ready` condition is `True`.
pub fn is_ready(object: &DynamicObject) -> bool {
    object.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The number of Ready XeroDatasets in a namespace, kept current by a watch.
pub struct ReadyWatch {
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    /// Starts watching and returns once the initial list is in.
    pub async fn start(client: &Client, namespace: &str) -> Result<ReadyWatch> {
        let api = xero_datasets(client, namespace);
        let (count_tx, count) = watch::channel(0usize);
        let (listed_tx, mut listed) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ready: HashMap<String, bool> = HashMap::new();
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        ready.insert(o.name_any(), is_ready(&o));
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        ready.remove(&o.name_any());
                    }
                    Ok(watcher::Event::InitDone) => {
                        let _ = listed_tx.send(true);
                    }
                    Ok(watcher::Event::Init) | Err(_) => {}
                }
                let _ = count_tx.send(ready.values().filter(|r| **r).count());
            }
        });
        listed
            .wait_for(|l| *l)
            .await
            .context("watch XeroDatasets")?;
        Ok(ReadyWatch { count, task })
    }

    pub fn ready(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until at least `n` are Ready or `within` has passed; returns the Ready count.
    pub async fn wait_for(&mut self, n: usize, within: Duration) -> usize {
        let _ = tokio::time::timeout(within, self.count.wait_for(|c| *c >= n)).await;
        self.ready()
    }

    /// Waits until all `n` are Ready or `timeout` has passed, failing as soon as one of
    /// `operators` has exited. Prints the progress every 5 s as `[label]`, timed from `since`;
    /// returns the Ready count.
    pub async fn wait_all(
        &mut self,
        n: usize,
        timeout: Duration,
        operators: &mut [Operator],
        since: Instant,
        label: &str,
    ) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        let mut reached = 0;
        while reached < n && Instant::now() < deadline {
            reached = self.wait_for(n, Duration::from_secs(5)).await;
            for operator in operators.iter_mut() {
                operator.check_alive()?;
            }
            println!(
                "[{label}]   {reached}/{n} Ready after {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
        Ok(reached)
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long `n` XeroDatasets may take to become Ready: two minutes, and 30 ms more per object.
pub fn ready_timeout(n: usize) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(30 * n as u64)
}

/// The API server's `apiserver_request_total`, summed per `VERB resource[/subresource]`.
pub async fn apiserver_requests(client: &Client) -> Result<BTreeMap<String, f64>> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .context("build the /metrics request")?;
    let text = client
        .request_text(request)
        .await
        .context("read the API server's /metrics")?;
    Ok(parse_request_total(&text))
}

fn parse_request_total(text: &str) -> BTreeMap<String, f64> {
    let mut totals = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let mut key = format!("{} {}", label("verb"), label("resource"));
        let sub = label("subresource");
        if !sub.is_empty() {
            key = format!("{key}/{sub}");
        }
        *totals.entry(key).or_default() += value;
    }
    totals
}

/// `after - before`, per key, leaving out keys that did not change.
pub fn delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// The largest entries of a delta as `VERB resource=N` text.
pub fn top(delta: &BTreeMap<String, f64>, n: usize) -> String {
    let mut entries: Vec<(&String, &f64)> = delta.iter().collect();
    entries.sort_by(|a, b| b.1.total_cmp(a.1));
    entries
        .into_iter()
        .take(n)
        .map(|(k, v)| format!("{k}={v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON object of a delta, for the summary.
pub fn delta_json(delta: &BTreeMap<String, f64>) -> Value {
    json!(delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_totals_are_summed_per_verb_and_resource() {
        let text = r#"
# HELP apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="xero-operator.dev",resource="xerodatasets",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 7
apiserver_request_total{code="409",component="apiserver",dry_run="",group="xero-operator.dev",resource="xerodatasets",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="GET",version="v1"} 3
"#;
        let totals = parse_request_total(text);
        assert_eq!(totals["APPLY xerodatasets/status"], 8.0);
        assert_eq!(totals["GET secrets"], 3.0);
        let mut later = totals.clone();
        *later.entry("GET secrets".into()).or_default() += 2.0;
        let d = delta(&totals, &later);
        assert_eq!(d.len(), 1);
        assert_eq!(top(&d, 3), "GET secrets=2");
    }
}
