//! Power BI's side: workspaces, datasets, their data sources and credentials, refresh
//! schedules and refresh history, with the daily quota and the failure switch-off.

use jiff::Timestamp;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock::secs;
use crate::seed::{Capacity, SimConfig, WorkspaceSeed};
use crate::state::xero::XeroState;

mod credential;
mod dataset;
mod gateway;
mod refresh;
mod schedule;
pub mod scheduler;
pub use schedule::DAYS;

pub use credential::Credential;
pub use dataset::{Dataset, Workspace};
pub use gateway::Gateway;
pub use refresh::{CountXeroCalls, Outcome, Refresh, RefreshRejection};
pub use schedule::ScheduleRules;

/// The tenant's workspaces.
#[derive(Debug, Default)]
pub struct PowerBiState {
    pub(crate) workspaces: Vec<Workspace>,
    /// On-premises gateways.
    pub(crate) gateways: Vec<Gateway>,
}

impl PowerBiState {
    /// Builds the workspaces a seed describes; datasets without an owner belong to `owner`.
    pub fn from_seed(
        seeds: Vec<WorkspaceSeed>,
        owner: &str,
        now: Timestamp,
        config: &SimConfig,
    ) -> Result<Self, String> {
        let mut workspaces: Vec<Workspace> = Vec::new();
        for ws in seeds {
            if workspaces.iter().any(|w| w.id.eq_ignore_ascii_case(&ws.id)) {
                return Err(format!("workspace {} is declared twice", ws.id));
            }
            let datasets = ws
                .datasets
                .into_iter()
                .map(|d| Dataset::from_seed(d, owner, now, config))
                .collect::<Result<Vec<_>, _>>()?;
            workspaces.push(Workspace {
                name: ws.name.unwrap_or_else(|| ws.id.clone()),
                id: ws.id,
                capacity: ws.capacity,
                members: ws.members,
                datasets,
            });
        }
        Ok(Self {
            workspaces,
            gateways: Vec::new(),
        })
    }

    /// Finds a dataset by id in any workspace: (workspace index, dataset index).
    pub fn find_dataset(&self, dataset_id: &str) -> Option<(usize, usize)> {
        self.workspaces.iter().enumerate().find_map(|(w, ws)| {
            ws.datasets
                .iter()
                .position(|d| d.id.eq_ignore_ascii_case(dataset_id))
                .map(|d| (w, d))
        })
    }

    /// Ends every refresh whose run time has passed, counting the Xero calls of those that
    /// get that far.
    pub fn settle(
        &mut self,
        now: Timestamp,
        xero: &XeroState,
        config: &SimConfig,
        count_calls: &mut CountXeroCalls<'_>,
    ) {
        for dataset in self
            .workspaces
            .iter_mut()
            .flat_map(|w| w.datasets.iter_mut())
        {
            dataset.settle(now, xero, config, count_calls);
        }
    }

    /// Starts the scheduled refreshes Power BI's scheduler has due by `now`, each at the time
    /// it was due (oldest first). One the service would refuse (another refresh running, the
    /// daily quota used up) does not happen, as with the real scheduler. Returns how many
    /// started.
    pub fn run_scheduler(&mut self, now: Timestamp, config: &SimConfig) -> usize {
        if !config.scheduler.enabled {
            return 0;
        }
        let mut due = Vec::new();
        for (w, workspace) in self.workspaces.iter_mut().enumerate() {
            for (d, dataset) in workspace.datasets.iter_mut().enumerate() {
                let released =
                    dataset
                        .slots
                        .advance(&dataset.id, &dataset.schedule, now, &config.scheduler);
                due.extend(released.into_iter().map(|(_, start)| (start, (w, d))));
            }
        }
        due.sort_by_key(|(start, _)| *start);
        due.into_iter()
            .filter(|(start, dataset)| {
                self.start_refresh(*dataset, "Scheduled", Outcome::Auto, None, *start, config)
                    .is_ok()
            })
            .count()
    }

    /// Starts a refresh if the service would: one at a time, within the daily quota. The
    /// caller settles afterwards, so that a zero-length refresh ends at once.
    pub fn start_refresh(
        &mut self,
        (w, d): (usize, usize),
        refresh_type: &str,
        outcome: Outcome,
        duration_seconds: Option<u64>,
        now: Timestamp,
        config: &SimConfig,
    ) -> Result<Refresh, RefreshRejection> {
        let limit = daily_limit(config, self.workspaces[w].capacity);
        let retention = config.history_retention.max(1);
        let dataset = &mut self.workspaces[w].datasets[d];
        if !dataset.refreshable {
            return Err(RefreshRejection::NotRefreshable);
        }
        if dataset.refreshes.iter().any(|r| r.end.is_none()) {
            return Err(RefreshRejection::InProgress);
        }
        if let Some(limit) = limit {
            let used = dataset
                .refreshes
                .iter()
                .filter(|r| r.counts_toward_quota(now, config.daily_limit_window))
                .count();
            if used >= limit as usize {
                return Err(RefreshRejection::DailyLimit);
            }
        }
        let seconds = duration_seconds
            .or(dataset.refresh_duration_seconds)
            .unwrap_or(config.refresh_duration_seconds);
        let outcome = match outcome {
            Outcome::Auto if dataset.failing_refreshes > 0 => {
                dataset.failing_refreshes -= 1;
                Outcome::Failed
            }
            other => other,
        };
        let refresh = Refresh {
            request_id: Uuid::new_v4().to_string(),
            refresh_type: refresh_type.to_owned(),
            start: now,
            end: None,
            ends_at: now.checked_add(secs(seconds)).unwrap_or(Timestamp::MAX),
            status: "Unknown".to_owned(),
            service_exception_json: None,
            outcome,
            snapshot: dataset
                .datasources
                .iter()
                .map(|s| (s.xero_tenant_id.clone(), s.credential.clone()))
                .collect(),
        };
        dataset.refreshes.push(refresh.clone());
        if dataset.refreshes.len() > retention {
            let excess = dataset.refreshes.len() - retention;
            dataset.refreshes.drain(..excess);
        }
        Ok(refresh)
    }

    /// The workspaces for `GET /_sim/state`.
    pub fn snapshot(&self, now: Timestamp, xero: &XeroState, config: &SimConfig) -> Vec<Value> {
        self.workspaces
            .iter()
            .map(|ws| {
                let datasets: Vec<Value> = ws
                    .datasets
                    .iter()
                    .map(|d| d.snapshot(now, xero, self.quota_of(&d.id, config), config))
                    .collect();
                json!({
                    "id": ws.id,
                    "name": ws.name,
                    "capacity": ws.capacity,
                    "members": ws.members,
                    "datasets": datasets,
                })
            })
            .collect()
    }

    /// The daily quota of a dataset: its workspace's capacity's, taking the first workspace
    /// holding that id.
    fn quota_of(&self, dataset_id: &str, config: &SimConfig) -> Option<u32> {
        self.workspaces
            .iter()
            .find(|w| w.datasets.iter().any(|x| x.id == dataset_id))
            .and_then(|w| daily_limit(config, w.capacity))
    }
}

/// Refreshes a dataset may have a day on a capacity; `None` for no limit.
fn daily_limit(config: &SimConfig, capacity: Capacity) -> Option<u32> {
    match capacity {
        Capacity::Shared => Some(config.shared_daily_refresh_limit),
        Capacity::Premium => config.premium_daily_refresh_limit,
    }
}

/// Schedule PATCH rules for a workspace's capacity.
pub fn schedule_rules(config: &SimConfig, capacity: Capacity) -> ScheduleRules {
    ScheduleRules {
        max_slots: match capacity {
            Capacity::Shared => config.shared_schedule_slots,
            Capacity::Premium => config.premium_schedule_slots,
        },
        default_time: config.default_schedule_time.clone(),
        strict_disable_request: config.strict_disable_request,
        refuse_stored_mail_on_failure: config.refuse_stored_mail_on_failure,
    }
}
