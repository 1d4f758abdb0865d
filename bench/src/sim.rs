//! The simulator as the scenarios use it: started in-process from a tenant, its admin API, and
//! its request log for counting calls.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use jiff::{SignedDuration, Timestamp};
use powerbi_sim::{RunningSimulator, Seed, Simulator};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Context as _, Result, fail};
use crate::fixtures::Tenant;

/// One served request, from `GET /_sim/requests`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoggedRequest {
    pub time: Timestamp,
    pub service: String,
    pub method: String,
    pub path: String,
}

/// One refresh of a dataset's history, from `GET /_sim/state`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimRefresh {
    pub refresh_type: String,
    pub start_time: Timestamp,
    #[serde(default)]
    pub end_time: Option<Timestamp>,
    pub status: String,
}

/// A running simulator and an HTTP client for its admin API.
pub struct Sim {
    running: RunningSimulator,
    http: reqwest::Client,
}

impl Sim {
    /// Starts a simulator on a free loopback port, seeded with `tenant`.
    pub async fn start(tenant: &Tenant) -> Result<Sim> {
        let seed = Seed::from_yaml(&tenant.seed()).context("build the simulator seed")?;
        let running = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), seed)
            .await
            .context("start the simulator")?;
        Ok(Sim {
            running,
            http: reqwest::Client::new(),
        })
    }

    pub fn url(&self) -> String {
        self.running.url()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}/_sim/{path}", self.url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.context(format!("simulator {path}"))?;
        let status = response.status();
        let text = response.text().await.context(format!("simulator {path}"))?;
        if !status.is_success() {
            return fail(format!("simulator {path}: {status}: {text}"));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).context(format!("simulator {path}: not JSON"))
    }

    /// The simulator's virtual time.
    pub async fn now(&self) -> Result<Timestamp> {
        let answer = self.admin(reqwest::Method::GET, "clock", None).await?;
        answer["now"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .context("the simulator's clock")
    }

    /// Moves the virtual clock forward by `by`.
    pub async fn advance(&self, by: SignedDuration) -> Result<()> {
        self.admin(
            reqwest::Method::POST,
            "clock/advance",
            Some(json!({"seconds": by.as_secs_f64()})),
        )
        .await
        .map(|_| ())
    }

    /// Runs a scheduled refresh of `dataset_id` now; returns its start time.
    pub async fn scheduled_refresh(
        &self,
        dataset_id: &str,
        outcome: &str,
        duration_seconds: u64,
    ) -> Result<Timestamp> {
        let entry = self
            .admin(
                reqwest::Method::POST,
                &format!("datasets/{dataset_id}/scheduled-refresh"),
                Some(json!({"outcome": outcome, "durationSeconds": duration_seconds})),
            )
            .await?;
        entry["startTime"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .context("the scheduled refresh's startTime")
    }

    /// Makes the next `count` refreshes of `dataset_id`, of any type, fail.
    pub async fn fail_next_refreshes(&self, dataset_id: &str, count: u32) -> Result<()> {
        self.admin(
            reqwest::Method::POST,
            &format!("datasets/{dataset_id}/failing-refreshes"),
            Some(json!({"count": count})),
        )
        .await
        .map(|_| ())
    }

    /// The refresh histories of every dataset, by dataset id (oldest first).
    pub async fn histories(&self) -> Result<BTreeMap<String, Vec<SimRefresh>>> {
        let state = self.admin(reqwest::Method::GET, "state", None).await?;
        let mut histories = BTreeMap::new();
        for workspace in state["workspaces"].as_array().into_iter().flatten() {
            for dataset in workspace["datasets"].as_array().into_iter().flatten() {
                let mut refreshes: Vec<SimRefresh> =
                    serde_json::from_value(dataset["refreshes"].clone())
                        .context("the simulator's refresh history")?;
                refreshes.sort_by_key(|r| r.start_time);
                histories.insert(
                    dataset["id"].as_str().unwrap_or_default().to_owned(),
                    refreshes,
                );
            }
        }
        Ok(histories)
    }

    /// Every request served so far.
    pub async fn requests(&self) -> Result<Vec<LoggedRequest>> {
        let list = self.admin(reqwest::Method::GET, "requests", None).await?;
        serde_json::from_value(list).context("the simulator's request log")
    }
}

/// Calls per service, and per `METHOD kind` of Power BI call (ids left out).
#[derive(Debug, Default, Clone)]
pub struct CallCounts {
    pub by_service: BTreeMap<String, usize>,
    pub powerbi_by_kind: BTreeMap<String, usize>,
}

impl CallCounts {
    pub fn of(requests: &[LoggedRequest]) -> CallCounts {
        let mut counts = CallCounts::default();
        for r in requests {
            *counts.by_service.entry(r.service.clone()).or_default() += 1;
            if r.service == "powerbi" {
                *counts
                    .powerbi_by_kind
                    .entry(format!("{} {}", r.method, call_kind(&r.path)))
                    .or_default() += 1;
            }
        }
        counts
    }

    pub fn service(&self, service: &str) -> usize {
        self.by_service.get(service).copied().unwrap_or(0)
    }

    /// Xero identity and Xero API calls together.
    pub fn xero(&self) -> usize {
        self.service("xero-identity") + self.service("xero-api")
    }

    /// `GET refreshes=12, PATCH datasource=2, ...`
    pub fn powerbi_breakdown(&self, per: f64) -> String {
        self.powerbi_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind}={}", crate::report::number(*n as f64 / per)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The last path segment that is not an id, e.g. `refreshes`, `refreshSchedule`, `datasource`.
fn call_kind(path: &str) -> String {
    if path.contains("/gateways/") {
        return "datasource".into();
    }
    path.rsplit('/')
        .find(|s| !s.is_empty() && !looks_like_id(s))
        .unwrap_or(path)
        .to_owned()
}

fn looks_like_id(segment: &str) -> bool {
    segment.len() == 36 && segment.chars().filter(|c| *c == '-').count() == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_grouped_without_ids() {
        let log: Vec<LoggedRequest> = serde_json::from_value(json!([
            {"time": "2025-01-06T08:00:00Z", "service": "powerbi", "method": "GET",
             "path": "/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/datasets/cfafbeb1-8037-4d0c-896e-a46fb27ff229/refreshes"},
            {"time": "2025-01-06T08:00:01Z", "service": "powerbi", "method": "PATCH",
             "path": "/v1.0/myorg/gateways/1f69e798-5852-4fdd-ab01-33bb14b6e934/datasources/dc2f2dac-e5e2-4c37-af76-2a0bc10f16cb"},
            {"time": "2025-01-06T08:00:02Z", "service": "entra", "method": "POST",
             "path": "/t/oauth2/v2.0/token"}
        ]))
        .expect("log");
        let counts = CallCounts::of(&log);
        assert_eq!(counts.service("powerbi"), 2);
        assert_eq!(counts.service("entra"), 1);
        assert_eq!(
            counts.powerbi_breakdown(1.0),
            "GET refreshes=1, PATCH datasource=1"
        );
    }
}
