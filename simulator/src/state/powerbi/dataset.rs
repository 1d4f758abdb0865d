//! Workspaces, their datasets and data sources: what the service keeps about each, built from
//! the seed, ended refreshes applied, and shown to `GET /_sim/state`.

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::clock::secs;
use crate::seed::{Capacity, DatasetSeed, DatasourceSeed, RefreshSeed, ScheduleSeed, SimConfig};
use crate::state::powerbi::credential::Credential;
use crate::state::powerbi::refresh::{CountXeroCalls, Outcome, Refresh};
use crate::state::powerbi::schedule::{RefreshSchedule, canonical_day, valid_time};
use crate::state::powerbi::scheduler::SlotCursor;
use crate::state::xero::{TokenProblem, XeroState};
use crate::tokens::fingerprint;

/// A Power BI workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) capacity: Capacity,
    pub(crate) members: Option<Vec<String>>,
    pub(crate) datasets: Vec<Dataset>,
}

/// A dataset and what the service keeps about it.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) configured_by: String,
    pub(crate) refreshable: bool,
    pub(crate) refresh_duration_seconds: Option<u64>,
    pub(crate) created: Timestamp,
    pub(crate) datasources: Vec<Datasource>,
    pub(crate) schedule: RefreshSchedule,
    /// Oldest first.
    pub(crate) refreshes: Vec<Refresh>,
    pub(crate) consecutive_failures: u32,
    /// Where Power BI's scheduler stands for this dataset.
    pub(crate) slots: SlotCursor,
    /// How many of the next refreshes (of any type) fail with a processing error, as refreshes
    /// do now and then for reasons of their own (`POST /_sim/datasets/{id}/failing-refreshes`).
    pub(crate) failing_refreshes: u32,
}

/// A data source bound to a gateway, with the credentials stored for it.
#[derive(Debug, Clone)]
pub struct Datasource {
    pub(crate) datasource_type: String,
    pub(crate) connection_details: Map<String, Value>,
    pub(crate) gateway_id: String,
    pub(crate) datasource_id: String,
    pub(crate) xero_tenant_id: Option<String>,
    pub(crate) credential: Option<Credential>,
}

impl Dataset {
    /// Builds a dataset from its seed; `owner` owns it unless the seed names one.
    pub fn from_seed(
        seed: DatasetSeed,
        owner: &str,
        now: Timestamp,
        config: &SimConfig,
    ) -> Result<Self, String> {
        let bad = |what: String| format!("dataset {}: {what}", seed.id);
        let schedule = schedule_from_seed(&seed.schedule).map_err(bad)?;
        let duration_seconds = seed
            .refresh_duration_seconds
            .unwrap_or(config.refresh_duration_seconds);
        let mut refreshes: Vec<Refresh> = seed
            .refresh_history
            .iter()
            .map(|r| refresh_from_seed(r, duration_seconds))
            .collect();
        refreshes.sort_by_key(|r| r.start);
        if refreshes.iter().filter(|r| r.end.is_none()).count() > 1 {
            return Err(bad("more than one refresh is running".into()));
        }
        // Failed scheduled refreshes since the last success, as `Dataset::settle` counts them.
        let consecutive_failures = refreshes
            .iter()
            .rev()
            .filter(|r| r.end.is_some())
            .take_while(|r| r.status != "Completed")
            .filter(|r| {
                r.status == "Failed"
                    && (r.refresh_type == "Scheduled" || config.count_api_refresh_failures)
            })
            .count();
        Ok(Self {
            configured_by: seed
                .configured_by
                .clone()
                .unwrap_or_else(|| owner.to_owned()),
            refreshable: seed.refreshable,
            // With the scheduler on, each dataset has its own duration, as real ones do.
            refresh_duration_seconds: seed.refresh_duration_seconds.or_else(|| {
                config
                    .scheduler
                    .enabled
                    .then(|| config.scheduler.duration_seconds(&seed.id))
            }),
            created: now,
            datasources: seed.datasources.iter().map(datasource_from_seed).collect(),
            schedule,
            refreshes,
            consecutive_failures: u32::try_from(consecutive_failures).unwrap_or(u32::MAX),
            slots: SlotCursor {
                checked_until: Some(now),
                due: Vec::new(),
            },
            failing_refreshes: 0,
            id: seed.id,
            name: seed.name,
        })
    }

    /// Ends every refresh whose run time has passed, counting failures and switching the
    /// schedule off after too many, as the service would have meanwhile.
    pub fn settle(
        &mut self,
        now: Timestamp,
        xero: &XeroState,
        config: &SimConfig,
        count_calls: &mut CountXeroCalls<'_>,
    ) {
        for i in 0..self.refreshes.len() {
            let refresh = &self.refreshes[i];
            if refresh.end.is_some() || refresh.ends_at > now {
                continue;
            }
            let error = refresh.error(xero, count_calls);
            let refresh = &mut self.refreshes[i];
            refresh.end = Some(refresh.ends_at);
            let counted = refresh.refresh_type == "Scheduled"
                || (config.count_api_refresh_failures && refresh.refresh_type != "OnDemand");
            match error {
                None => {
                    refresh.status = "Completed".to_owned();
                    // Any success shows the source works again (UNCONFIRMED, but the
                    // natural reading of "consecutive failures").
                    self.consecutive_failures = 0;
                }
                Some(json) => {
                    refresh.status = "Failed".to_owned();
                    refresh.service_exception_json = Some(json);
                    if counted {
                        self.consecutive_failures += 1;
                        if self.consecutive_failures >= config.failures_before_schedule_disabled {
                            self.schedule.enabled = false;
                        }
                    }
                }
            }
        }
    }

    /// The dataset for `GET /_sim/state`: access tokens as fingerprints, with whether Xero
    /// would accept them now, and the quota used of `limit`.
    pub fn snapshot(
        &self,
        now: Timestamp,
        xero: &XeroState,
        limit: Option<u32>,
        config: &SimConfig,
    ) -> Value {
        let datasources: Vec<Value> = self
            .datasources
            .iter()
            .map(|s| s.snapshot(now, xero))
            .collect();
        let used = self
            .refreshes
            .iter()
            .filter(|r| r.counts_toward_quota(now, config.daily_limit_window))
            .count();
        json!({
            "id": self.id,
            "name": self.name,
            "configuredBy": self.configured_by,
            "isRefreshable": self.refreshable,
            "schedule": self.schedule.to_json(),
            "consecutiveScheduledFailures": self.consecutive_failures,
            "refreshesToday": used,
            "dailyRefreshLimit": limit,
            "datasources": datasources,
            "refreshes": self.refreshes.iter().rev().map(Refresh::to_json).collect::<Vec<_>>(),
        })
    }
}

impl Datasource {
    fn snapshot(&self, now: Timestamp, xero: &XeroState) -> Value {
        let credential = self.credential.as_ref().map(|c| {
            let token_state = c.access_token.as_deref().map(|t| {
                match xero.access_token_problem(t, self.xero_tenant_id.as_deref(), now) {
                    None => "Valid",
                    Some(TokenProblem::Unknown) => "Unknown",
                    Some(TokenProblem::Expired) => "Expired",
                    Some(TokenProblem::Revoked) => "Revoked",
                    Some(TokenProblem::WrongTenant) => "WrongTenant",
                }
            });
            json!({
                "credentialType": c.credential_type,
                "accessTokenFingerprint": c.access_token.as_deref().map(fingerprint),
                "accessTokenState": token_state,
            })
        });
        json!({
            "datasourceType": self.datasource_type,
            "connectionDetails": self.connection_details,
            "gatewayId": self.gateway_id,
            "datasourceId": self.datasource_id,
            "xeroTenantId": self.xero_tenant_id,
            "credentials": credential,
        })
    }
}

/// The seeded schedule, day names made canonical; why it is invalid otherwise.
fn schedule_from_seed(seed: &ScheduleSeed) -> Result<RefreshSchedule, String> {
    let mut days = Vec::new();
    for day in &seed.days {
        days.push(
            canonical_day(day)
                .ok_or_else(|| format!("unknown day {day:?}"))?
                .to_owned(),
        );
    }
    if let Some(time) = seed.times.iter().find(|t| !valid_time(t)) {
        return Err(format!("schedule time {time:?} is not hh:mm on :00 or :30"));
    }
    Ok(RefreshSchedule {
        days,
        times: seed.times.clone(),
        enabled: seed.enabled,
        local_time_zone_id: seed.local_time_zone_id.clone(),
        notify_option: seed.notify_option.clone(),
    })
}

/// A seeded data source; without connection details it is a plain Xero source.
fn datasource_from_seed(seed: &DatasourceSeed) -> Datasource {
    Datasource {
        datasource_type: seed.datasource_type.clone(),
        connection_details: seed.connection_details.clone().unwrap_or_else(|| {
            let mut details = Map::new();
            details.insert("kind".into(), json!("Xero"));
            details.insert("path".into(), json!("Xero"));
            details
        }),
        gateway_id: seed.gateway_id.clone(),
        datasource_id: seed.datasource_id.clone(),
        xero_tenant_id: seed.xero_tenant_id.clone(),
        credential: seed.credentials.as_ref().map(|c| Credential {
            credential_type: c.credential_type.clone(),
            access_token: c.access_token.clone(),
        }),
    }
}

/// A seeded history entry. A running one without an end time ends after the dataset's run
/// time; its outcome is left to the credentials, which it did not record when it started.
fn refresh_from_seed(seed: &RefreshSeed, duration_seconds: u64) -> Refresh {
    let running = seed.status == "Unknown" && seed.end_time.is_none();
    Refresh {
        request_id: seed
            .request_id
            .clone()
            .unwrap_or_else(|| Uuid::new_v4().to_string()),
        refresh_type: seed.refresh_type.clone(),
        start: seed.start_time,
        end: if running { None } else { seed.end_time },
        ends_at: seed.end_time.unwrap_or_else(|| {
            seed.start_time
                .checked_add(secs(duration_seconds))
                .unwrap_or(Timestamp::MAX)
        }),
        status: seed.status.clone(),
        service_exception_json: seed.service_exception_json.clone(),
        outcome: Outcome::Auto,
        snapshot: Vec::new(),
    }
}
