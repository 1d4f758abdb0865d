//! Prometheus metrics of the operator. Label values are stable PascalCase reasons and action
//! names, never object data that could hold a secret.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `Success`, or the failure reason.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `ScheduleUpdated`, `CredentialsApplied`, `RefreshTriggered`.
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetLabels {
    /// `True`, `False` or `Unknown`: the Ready condition.
    pub ready: String,
    /// The Ready condition's reason.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `Completed` or `Failed`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExchangeLabels {
    /// `Rotated`, or the failure reason (for example `XeroRefreshTokenRejected`).
    pub outcome: String,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    actions: Family<ActionLabels, Counter>,
    refresh_outcomes: Family<OutcomeLabels, Counter>,
    datasets: Family<DatasetLabels, Gauge>,
    last_success: Family<ObjectLabels, Gauge>,
    token_exchanges: Family<ExchangeLabels, Counter>,
    dataset_states: Mutex<HashMap<String, DatasetLabels>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("xero_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles of XeroDatasets, by result (Success or the failure reason)",
            reconciles.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, Power BI and Xero calls included",
            reconcile_duration.clone(),
        );
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "actions",
            "Actions carried out on Power BI: schedule updates, credentials applied, refreshes triggered",
            actions.clone(),
        );
        let refresh_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "refresh_outcomes",
            "Refreshes seen to end, by status",
            refresh_outcomes.clone(),
        );
        let datasets = Family::<DatasetLabels, Gauge>::default();
        registry.register(
            "datasets",
            "XeroDatasets by Ready status and reason",
            datasets.clone(),
        );
        let last_success = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "dataset_last_success_timestamp_seconds",
            "Unix time when the latest successful refresh of each XeroDataset ended",
            last_success.clone(),
        );
        let token_exchanges = Family::<ExchangeLabels, Counter>::default();
        registry.register(
            "token_exchanges",
            "Xero refresh-token exchanges, by outcome",
            token_exchanges.clone(),
        );
        Metrics {
            registry,
            last_success,
            token_exchanges,
            reconciles,
            reconcile_duration,
            actions,
            refresh_outcomes,
            datasets,
            dataset_states: Mutex::new(HashMap::new()),
        }
    }

    /// Records one reconcile and how long it took.
    pub fn reconciled(&self, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Records an action that succeeded.
    pub fn action(&self, action: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
            .inc();
    }

    /// Records a refresh seen to end.
    pub fn refresh_outcome(&self, status: &str) {
        self.refresh_outcomes
            .get_or_create(&OutcomeLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    /// Sets the Ready state of the dataset `key` (namespace/name).
    pub fn dataset_state(&self, key: &str, ready: &str, reason: &str) {
        let labels = DatasetLabels {
            ready: ready.to_owned(),
            reason: reason.to_owned(),
        };
        let Ok(mut states) = self.dataset_states.lock() else {
            return;
        };
        if let Some(old) = states.insert(key.to_owned(), labels.clone()) {
            self.datasets.get_or_create(&old).dec();
        }
        self.datasets.get_or_create(&labels).inc();
    }

    /// Sets when the latest successful refresh of `namespace/name` ended.
    pub fn last_success(&self, namespace: &str, name: &str, unix_seconds: i64) {
        self.last_success
            .get_or_create(&ObjectLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
            .set(unix_seconds);
    }

    /// Records a Xero refresh-token exchange.
    pub fn token_exchange(&self, outcome: &str) {
        self.token_exchanges
            .get_or_create(&ExchangeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Forgets a deleted dataset: its Ready state and its per-object series.
    pub fn forget_dataset(&self, namespace: &str, name: &str) {
        self.dataset_deleted(&format!("{namespace}/{name}"));
        self.last_success.remove(&ObjectLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        });
    }

    /// Forgets the Ready state of a deleted dataset.
    pub fn dataset_deleted(&self, key: &str) {
        if let Ok(mut states) = self.dataset_states.lock()
            && let Some(old) = states.remove(key)
        {
            self.datasets.get_or_create(&old).dec();
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_states_move_between_labels() {
        let metrics = Metrics::new();
        metrics.dataset_state("ns/a", "False", "RefreshFailed");
        metrics.dataset_state("ns/b", "False", "RefreshFailed");
        metrics.dataset_state("ns/a", "True", "Reconciled");
        let text = metrics.render();
        assert!(
            text.contains(r#"xero_operator_datasets{ready="False",reason="RefreshFailed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"xero_operator_datasets{ready="True",reason="Reconciled"} 1"#),
            "{text}"
        );
        metrics.dataset_deleted("ns/b");
        assert!(
            metrics
                .render()
                .contains(r#"xero_operator_datasets{ready="False",reason="RefreshFailed"} 0"#)
        );
    }

    #[test]
    fn reconciles_count_by_result() {
        let metrics = Metrics::new();
        metrics.reconciled("Success", Duration::from_millis(3));
        metrics.reconciled("PowerBIThrottled", Duration::from_millis(3));
        metrics.reconciled("Success", Duration::from_millis(3));
        let text = metrics.render();
        assert!(
            text.contains(r#"xero_operator_reconciles_total{result="Success"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("xero_operator_reconcile_duration_seconds_count 3"),
            "{text}"
        );
    }
}
