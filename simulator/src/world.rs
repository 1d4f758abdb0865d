//! The simulated clouds' state and the behaviour that spans services: refresh runs that read
//! Xero credentials, the daily quota, the failure switch-off, faults and the request log.

use std::collections::{HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::Error;
use crate::clock::VirtualClock;
use crate::http::SimResponse;
use crate::schedule::{RefreshSchedule, ScheduleRules, canonical_day, valid_time};
use crate::seed::{Capacity, DailyLimitWindow, DatasetSeed, Seed, ServicePrincipalSeed, SimConfig};
use crate::tokens::fingerprint;
use crate::xero::{TokenProblem, XeroState};

/// Requests kept in the log; older ones are dropped so a long demo cannot exhaust memory.
const REQUEST_LOG_CAPACITY: usize = 100_000;

/// Everything the simulator holds. One lock guards it; service code never awaits.
#[derive(Debug)]
pub struct World {
    pub(crate) config: SimConfig,
    pub(crate) clock: VirtualClock,
    pub(crate) principals: Vec<ServicePrincipalSeed>,
    pub(crate) entra_tokens: HashMap<String, EntraToken>,
    pub(crate) workspaces: Vec<Workspace>,
    pub(crate) xero: XeroState,
    pub(crate) faults: Vec<Fault>,
    pub(crate) requests: VecDeque<RequestRecord>,
    rate_windows: HashMap<String, (Timestamp, u32)>,
    next_fault_id: u64,
    next_request_seq: u64,
}

/// An Entra access token the simulator issued.
#[derive(Debug, Clone)]
pub struct EntraToken {
    pub(crate) client_id: String,
    pub(crate) expires_at: Timestamp,
}

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

/// Stored data source credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub(crate) credential_type: String,
    pub(crate) access_token: Option<String>,
}

/// How a refresh will end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Decided by the credentials the refresh started with.
    Auto,
    /// Succeeds whatever the credentials.
    Completed,
    /// Fails with a processing error.
    Failed,
    /// Fails as a refresh whose Xero access token expired does, whatever the credentials.
    CredentialsExpired,
}

/// A refresh history entry; running while `end` is `None`.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub(crate) request_id: String,
    pub(crate) refresh_type: String,
    pub(crate) start: Timestamp,
    pub(crate) end: Option<Timestamp>,
    pub(crate) ends_at: Timestamp,
    pub(crate) status: String,
    pub(crate) service_exception_json: Option<String>,
    outcome: Outcome,
    /// The credentials each data source held when the refresh started, with its tenant.
    snapshot: Vec<(Option<String>, Option<Credential>)>,
}

/// Why the service refuses to start a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRejection {
    /// Another refresh of the dataset is running.
    InProgress,
    /// The capacity's daily quota is used up.
    DailyLimit,
    /// DirectQuery / LiveConnection models cannot be refreshed.
    NotRefreshable,
}

/// A fault injected through `POST /_sim/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Only requests with this method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths starting with this (all service paths when absent). Never `/_sim`.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Answer with this status instead of serving the request.
    #[serde(default)]
    pub status: Option<u16>,
    /// How many requests it affects; every matching one until `DELETE /_sim/faults` when absent.
    #[serde(default)]
    pub times: Option<u32>,
    /// Adds `Retry-After` to the faulted response.
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// Waits this long (real time) before answering.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Truncates the body so it is not valid JSON.
    #[serde(default)]
    pub malformed_body: bool,
}

/// A stored fault and how often it has fired.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub(crate) id: u64,
    #[serde(flatten)]
    pub(crate) spec: FaultSpec,
    pub(crate) fired: u32,
}

/// One served request, as `GET /_sim/requests` lists it. Holds no secrets.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub(crate) seq: u64,
    pub(crate) time: String,
    pub(crate) service: &'static str,
    pub(crate) method: String,
    pub(crate) path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    pub(crate) status: u16,
    pub(crate) principal: Option<String>,
    pub(crate) fault: bool,
}

impl World {
    /// Builds the state a seed describes.
    pub fn from_seed(seed: Seed) -> Result<Self, Error> {
        let clock = VirtualClock::new(seed.config.start_time, seed.config.time_scale);
        Self::with_clock(seed, clock)
    }

    /// Replaces the state by a seed's, keeping the clock unless the seed sets a start time.
    pub fn reseed(&mut self, seed: Seed) -> Result<(), Error> {
        let clock = match seed.config.start_time {
            Some(start) => VirtualClock::new(Some(start), seed.config.time_scale),
            None => self.clock.clone(),
        };
        *self = Self::with_clock(seed, clock)?;
        Ok(())
    }

    fn with_clock(seed: Seed, clock: VirtualClock) -> Result<Self, Error> {
        let now = clock.now();
        let owner_default = seed
            .service_principals
            .first()
            .map(owner_name)
            .unwrap_or_else(|| "admin@contoso.com".to_owned());
        let mut workspaces = Vec::new();
        for ws in seed.workspaces {
            if workspaces
                .iter()
                .any(|w: &Workspace| w.id.eq_ignore_ascii_case(&ws.id))
            {
                return Err(Error::Seed(format!(
                    "workspace {} is declared twice",
                    ws.id
                )));
            }
            let datasets = ws
                .datasets
                .into_iter()
                .map(|d| dataset_from_seed(d, &owner_default, now, &seed.config))
                .collect::<Result<Vec<_>, _>>()?;
            workspaces.push(Workspace {
                name: ws.name.unwrap_or_else(|| ws.id.clone()),
                id: ws.id,
                capacity: ws.capacity,
                members: ws.members,
                datasets,
            });
        }
        let xero = XeroState::from_seed(&seed.xero, &seed.config, now).map_err(Error::Seed)?;
        Ok(Self {
            config: seed.config,
            clock,
            principals: seed.service_principals,
            entra_tokens: HashMap::new(),
            workspaces,
            xero,
            faults: Vec::new(),
            requests: VecDeque::new(),
            rate_windows: HashMap::new(),
            next_fault_id: 1,
            next_request_seq: 1,
        })
    }

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Moves the virtual clock forward and lets everything that ended meanwhile end.
    pub fn advance_clock(&mut self, by: SignedDuration) {
        self.clock.advance(by);
        self.settle();
    }

    /// Ends every refresh whose run time has passed, as the service would have meanwhile.
    pub fn settle(&mut self) {
        let now = self.clock.now();
        let World {
            workspaces,
            xero,
            config,
            ..
        } = self;
        for dataset in workspaces.iter_mut().flat_map(|w| w.datasets.iter_mut()) {
            for i in 0..dataset.refreshes.len() {
                let refresh = &dataset.refreshes[i];
                if refresh.end.is_some() || refresh.ends_at > now {
                    continue;
                }
                let error = refresh_error(refresh, xero);
                let refresh = &mut dataset.refreshes[i];
                refresh.end = Some(refresh.ends_at);
                let counted = refresh.refresh_type == "Scheduled"
                    || (config.count_api_refresh_failures && refresh.refresh_type != "OnDemand");
                match error {
                    None => {
                        refresh.status = "Completed".to_owned();
                        // Any success shows the source works again (UNCONFIRMED, but the
                        // natural reading of "consecutive failures").
                        dataset.consecutive_failures = 0;
                    }
                    Some(json) => {
                        refresh.status = "Failed".to_owned();
                        refresh.service_exception_json = Some(json);
                        if counted {
                            dataset.consecutive_failures += 1;
                            if dataset.consecutive_failures
                                >= config.failures_before_schedule_disabled
                            {
                                dataset.schedule.enabled = false;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Finds a dataset by id in any workspace: (workspace index, dataset index).
    pub(crate) fn find_dataset(&self, dataset_id: &str) -> Option<(usize, usize)> {
        self.workspaces.iter().enumerate().find_map(|(w, ws)| {
            ws.datasets
                .iter()
                .position(|d| d.id.eq_ignore_ascii_case(dataset_id))
                .map(|d| (w, d))
        })
    }

    /// Starts a refresh if the service would: one at a time, within the daily quota.
    pub(crate) fn start_refresh(
        &mut self,
        (w, d): (usize, usize),
        refresh_type: &str,
        outcome: Outcome,
        duration_seconds: Option<u64>,
    ) -> Result<Refresh, RefreshRejection> {
        let now = self.clock.now();
        let limit = self.daily_limit(self.workspaces[w].capacity);
        let window = self.config.daily_limit_window;
        let default_duration = self.config.refresh_duration_seconds;
        let retention = self.config.history_retention.max(1);
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
                .filter(|r| r.refresh_type != "OnDemand" && in_quota_window(r.start, now, window))
                .count();
            if used >= limit as usize {
                return Err(RefreshRejection::DailyLimit);
            }
        }
        let seconds = duration_seconds
            .or(dataset.refresh_duration_seconds)
            .unwrap_or(default_duration);
        let refresh = Refresh {
            request_id: Uuid::new_v4().to_string(),
            refresh_type: refresh_type.to_owned(),
            start: now,
            end: None,
            ends_at: now
                .checked_add(SignedDuration::from_secs(
                    i64::try_from(seconds).unwrap_or(i64::MAX),
                ))
                .unwrap_or(Timestamp::MAX),
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
        // A zero-length refresh ends at once.
        self.settle();
        Ok(refresh)
    }

    fn daily_limit(&self, capacity: Capacity) -> Option<u32> {
        match capacity {
            Capacity::Shared => Some(self.config.shared_daily_refresh_limit),
            Capacity::Premium => self.config.premium_daily_refresh_limit,
        }
    }

    /// Schedule PATCH rules for a workspace's capacity.
    pub(crate) fn schedule_rules(&self, capacity: Capacity) -> ScheduleRules {
        ScheduleRules {
            max_slots: match capacity {
                Capacity::Shared => self.config.shared_schedule_slots,
                Capacity::Premium => self.config.premium_schedule_slots,
            },
            default_time: self.config.default_schedule_time.clone(),
            strict_disable_request: self.config.strict_disable_request,
        }
    }

    /// Counts a request against the principal's rate limit; `Some(retry_after_seconds)` when
    /// it is over.
    pub(crate) fn rate_limited(&mut self, principal: &str) -> Option<u64> {
        let limit = self.config.rate_limit?;
        let now = self.clock.now();
        let window = SignedDuration::from_secs(
            i64::try_from(limit.window_seconds.max(1)).unwrap_or(i64::MAX),
        );
        let entry = self
            .rate_windows
            .entry(principal.to_owned())
            .or_insert((now, 0));
        let window_end = entry.0.checked_add(window).unwrap_or(Timestamp::MAX);
        if now >= window_end {
            *entry = (now, 0);
        }
        if entry.1 >= limit.requests {
            let left = entry
                .0
                .checked_add(window)
                .unwrap_or(Timestamp::MAX)
                .duration_since(now);
            let secs = left.as_secs() + i64::from(left.subsec_nanos() > 0);
            return Some(u64::try_from(secs.max(1)).unwrap_or(1));
        }
        entry.1 += 1;
        None
    }

    /// Adds a fault; returns it.
    pub(crate) fn add_fault(&mut self, spec: FaultSpec) -> Fault {
        let fault = Fault {
            id: self.next_fault_id,
            spec,
            fired: 0,
        };
        self.next_fault_id += 1;
        self.faults.push(fault.clone());
        fault
    }

    /// The first fault matching a request, counted as fired.
    pub(crate) fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultSpec> {
        let fault = self.faults.iter_mut().find(|f| {
            f.spec.times.is_none_or(|t| f.fired < t)
                && f.spec
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.spec
                    .path_prefix
                    .as_deref()
                    .is_none_or(|p| path.starts_with(p))
        })?;
        fault.fired += 1;
        Some(fault.spec.clone())
    }

    /// Appends a served request to the log.
    pub(crate) fn log_request(
        &mut self,
        service: &'static str,
        method: &str,
        path: &str,
        query: Option<&str>,
        response: &SimResponse,
        fault: bool,
    ) {
        let record = RequestRecord {
            seq: self.next_request_seq,
            time: format!("{:.3}", self.clock.now()),
            service,
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.map(redact_query),
            status: response.status.as_u16(),
            principal: response.principal.clone(),
            fault,
        };
        self.next_request_seq += 1;
        if self.requests.len() >= REQUEST_LOG_CAPACITY {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
    }

    /// Everything, as JSON, with every token and secret replaced by a fingerprint.
    pub fn snapshot(&self) -> Value {
        let now = self.clock.now();
        let workspaces: Vec<Value> = self
            .workspaces
            .iter()
            .map(|ws| {
                json!({
                    "id": ws.id,
                    "name": ws.name,
                    "capacity": ws.capacity,
                    "members": ws.members,
                    "datasets": ws.datasets.iter().map(|d| self.dataset_snapshot(d, now)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let principals: Vec<Value> = self
            .principals
            .iter()
            .map(|p| {
                json!({
                    "tenantId": p.tenant_id,
                    "clientId": p.client_id,
                    "displayName": owner_name(p),
                    "hasClientSecret": p.client_secret.is_some(),
                    "federatedCredentials": p.federated_credentials,
                    "activeTokens": self.entra_tokens.values()
                        .filter(|t| t.client_id == p.client_id && t.expires_at > now).count(),
                })
            })
            .collect();
        json!({
            "now": format!("{now:.3}"),
            "config": self.config,
            "servicePrincipals": principals,
            "workspaces": workspaces,
            "xero": self.xero.snapshot(now),
            "faults": self.faults,
            "requestCount": self.requests.len(),
        })
    }

    fn dataset_snapshot(&self, d: &Dataset, now: Timestamp) -> Value {
        let datasources: Vec<Value> = d
            .datasources
            .iter()
            .map(|s| {
                let credential = s.credential.as_ref().map(|c| {
                    let token_state = c.access_token.as_deref().map(|t| {
                        match self
                            .xero
                            .access_token_problem(t, s.xero_tenant_id.as_deref(), now)
                        {
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
                    "datasourceType": s.datasource_type,
                    "connectionDetails": s.connection_details,
                    "gatewayId": s.gateway_id,
                    "datasourceId": s.datasource_id,
                    "xeroTenantId": s.xero_tenant_id,
                    "credentials": credential,
                })
            })
            .collect();
        let limit = self
            .workspaces
            .iter()
            .find(|w| w.datasets.iter().any(|x| x.id == d.id))
            .and_then(|w| self.daily_limit(w.capacity));
        let used = d
            .refreshes
            .iter()
            .filter(|r| {
                r.refresh_type != "OnDemand"
                    && in_quota_window(r.start, now, self.config.daily_limit_window)
            })
            .count();
        json!({
            "id": d.id,
            "name": d.name,
            "configuredBy": d.configured_by,
            "isRefreshable": d.refreshable,
            "schedule": d.schedule.to_json(),
            "consecutiveScheduledFailures": d.consecutive_failures,
            "refreshesToday": used,
            "dailyRefreshLimit": limit,
            "datasources": datasources,
            "refreshes": d.refreshes.iter().rev().map(Refresh::to_json).collect::<Vec<_>>(),
        })
    }
}

impl Refresh {
    /// The history entry as Get Refresh History returns it.
    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "requestId": self.request_id,
            "refreshType": self.refresh_type,
            "startTime": format!("{:.3}", self.start),
            "status": self.status,
        });
        let mut attempt =
            json!({"attemptId": 1, "startTime": format!("{:.3}", self.start), "type": "Data"});
        if let Some(end) = self.end {
            entry["endTime"] = json!(format!("{end:.3}"));
            attempt["endTime"] = json!(format!("{end:.3}"));
        }
        if let Some(error) = &self.service_exception_json {
            entry["serviceExceptionJson"] = json!(error);
            attempt["serviceExceptionJson"] = json!(error);
        }
        entry["refreshAttempts"] = json!([attempt]);
        entry
    }
}

/// What `configuredBy` shows for a principal that owns a dataset.
pub(crate) fn owner_name(principal: &ServicePrincipalSeed) -> String {
    principal
        .display_name
        .clone()
        .unwrap_or_else(|| principal.client_id.clone())
}

fn in_quota_window(start: Timestamp, now: Timestamp, window: DailyLimitWindow) -> bool {
    match window {
        DailyLimitWindow::UtcDay => {
            start.to_zoned(TimeZone::UTC).date() == now.to_zoned(TimeZone::UTC).date()
        }
        DailyLimitWindow::Rolling24Hours => {
            now.duration_since(start) < SignedDuration::from_hours(24)
        }
    }
}

/// The `serviceExceptionJson` a refresh ends with, or `None` when it succeeds.
fn refresh_error(refresh: &Refresh, xero: &XeroState) -> Option<String> {
    match refresh.outcome {
        Outcome::Completed => return None,
        Outcome::Failed => {
            return Some(
                json!({
                    "errorCode": "ModelRefresh_ShortMessage_ProcessingError",
                    "errorDescription": "The refresh failed (a failure injected through the simulator's admin API)."
                })
                .to_string(),
            );
        }
        Outcome::CredentialsExpired => return Some(credential_error(TokenProblem::Expired)),
        Outcome::Auto => {}
    }
    for (tenant, credential) in &refresh.snapshot {
        let Some(credential) = credential else {
            return Some(
                json!({"errorCode": "ModelRefreshFailed_CredentialsNotSpecified"}).to_string(),
            );
        };
        let problem = match (
            &credential.access_token,
            credential.credential_type.eq_ignore_ascii_case("OAuth2"),
        ) {
            (Some(token), true) => {
                xero.access_token_problem(token, tenant.as_deref(), refresh.ends_at)
            }
            _ => Some(TokenProblem::Unknown),
        };
        if let Some(problem) = problem {
            return Some(credential_error(problem));
        }
    }
    None
}

/// The credential error shape seen live (`pbi.error` envelope). Which code Power BI reports for
/// an expired OAuth2 token set through the API is UNCONFIRMED; the simulator uses
/// `DMTS_OAuthTokenRefreshFailedError` for expiry and the invalid-credentials code otherwise.
fn credential_error(problem: TokenProblem) -> String {
    let (code, detail) = match problem {
        TokenProblem::Expired => (
            "DMTS_OAuthTokenRefreshFailedError",
            "Failed to update data source credentials: The OAuth token of the Xero source has expired.",
        ),
        TokenProblem::Revoked => (
            "DM_GWPipeline_Gateway_InvalidConnectionCredentials",
            "The credentials provided for the Xero source are invalid: access was revoked.",
        ),
        TokenProblem::WrongTenant => (
            "DM_GWPipeline_Gateway_InvalidConnectionCredentials",
            "The credentials provided for the Xero source are invalid: the organisation is not connected.",
        ),
        TokenProblem::Unknown => (
            "DM_GWPipeline_Gateway_InvalidConnectionCredentials",
            "The credentials provided for the Xero source are invalid.",
        ),
    };
    json!({
        "error": {
            "code": code,
            "pbi.error": {
                "code": code,
                "parameters": {},
                "details": [
                    {"code": "DM_ErrorDetailNameCode_UnderlyingErrorCode", "detail": {"type": 1, "value": "-2147467259"}},
                    {"code": "DM_ErrorDetailNameCode_UnderlyingErrorMessage", "detail": {"type": 1, "value": detail}},
                    {"code": "Microsoft.Data.Mashup.CredentialError.DataSourceKind", "detail": {"type": 1, "value": "Xero"}},
                    {"code": "Microsoft.Data.Mashup.CredentialError.Reason", "detail": {"type": 1, "value": "AccessUnauthorized"}}
                ],
                "exceptionCulprit": 1
            }
        }
    })
    .to_string()
}

fn dataset_from_seed(
    seed: DatasetSeed,
    owner: &str,
    now: Timestamp,
    config: &SimConfig,
) -> Result<Dataset, Error> {
    let bad = |what: String| Error::Seed(format!("dataset {}: {what}", seed.id));
    let mut days = Vec::new();
    for day in &seed.schedule.days {
        days.push(
            canonical_day(day)
                .ok_or_else(|| bad(format!("unknown day {day:?}")))?
                .to_owned(),
        );
    }
    if let Some(time) = seed.schedule.times.iter().find(|t| !valid_time(t)) {
        return Err(bad(format!(
            "schedule time {time:?} is not hh:mm on :00 or :30"
        )));
    }
    let datasources = seed
        .datasources
        .iter()
        .map(|s| Datasource {
            datasource_type: s.datasource_type.clone(),
            connection_details: s.connection_details.clone().unwrap_or_else(|| {
                let mut details = Map::new();
                details.insert("kind".into(), json!("Xero"));
                details.insert("path".into(), json!("Xero"));
                details
            }),
            gateway_id: s.gateway_id.clone(),
            datasource_id: s.datasource_id.clone(),
            xero_tenant_id: s.xero_tenant_id.clone(),
            credential: s.credentials.as_ref().map(|c| Credential {
                credential_type: c.credential_type.clone(),
                access_token: c.access_token.clone(),
            }),
        })
        .collect();
    let duration = SignedDuration::from_secs(
        i64::try_from(
            seed.refresh_duration_seconds
                .unwrap_or(config.refresh_duration_seconds),
        )
        .unwrap_or(i64::MAX),
    );
    let mut refreshes: Vec<Refresh> = seed
        .refresh_history
        .iter()
        .map(|r| {
            let running = r.status == "Unknown" && r.end_time.is_none();
            Refresh {
                request_id: r
                    .request_id
                    .clone()
                    .unwrap_or_else(|| Uuid::new_v4().to_string()),
                refresh_type: r.refresh_type.clone(),
                start: r.start_time,
                end: if running { None } else { r.end_time },
                ends_at: r.end_time.unwrap_or_else(|| {
                    r.start_time.checked_add(duration).unwrap_or(Timestamp::MAX)
                }),
                status: r.status.clone(),
                service_exception_json: r.service_exception_json.clone(),
                outcome: Outcome::Auto,
                snapshot: Vec::new(),
            }
        })
        .collect();
    refreshes.sort_by_key(|r| r.start);
    if refreshes.iter().filter(|r| r.end.is_none()).count() > 1 {
        return Err(bad("more than one refresh is running".into()));
    }
    // Failed scheduled refreshes since the last success, as `World::settle` counts them.
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
    Ok(Dataset {
        configured_by: seed
            .configured_by
            .clone()
            .unwrap_or_else(|| owner.to_owned()),
        refreshable: seed.refreshable,
        refresh_duration_seconds: seed.refresh_duration_seconds,
        created: now,
        datasources,
        schedule: RefreshSchedule {
            days,
            times: seed.schedule.times.clone(),
            enabled: seed.schedule.enabled,
            local_time_zone_id: seed.schedule.local_time_zone_id.clone(),
            notify_option: seed.schedule.notify_option.clone(),
        },
        refreshes,
        consecutive_failures: u32::try_from(consecutive_failures).unwrap_or(u32::MAX),
        id: seed.id,
        name: seed.name,
    })
}

/// Hides query values that could be secrets (codes, tokens, secrets, assertions).
fn redact_query(query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let lower = key.to_ascii_lowercase();
        let secret = ["secret", "token", "assertion", "password", "verifier"]
            .iter()
            .any(|s| lower.contains(s))
            || lower == "code";
        out.append_pair(&key, if secret { "REDACTED" } else { &value });
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secret_looking_query_values() {
        let q = redact_query("client_id=a&code=xyz&client_secret=s&%24top=1");
        assert!(q.contains("client_id=a"));
        assert!(q.contains("code=REDACTED"));
        assert!(q.contains("client_secret=REDACTED"));
        assert!(q.contains("%24top=1"));
    }

    #[test]
    fn quota_window_is_the_utc_day_or_24_hours() {
        let now: Timestamp = "2025-01-06T00:30:00Z".parse().unwrap();
        let yesterday: Timestamp = "2025-01-05T23:30:00Z".parse().unwrap();
        assert!(!in_quota_window(yesterday, now, DailyLimitWindow::UtcDay));
        assert!(in_quota_window(
            yesterday,
            now,
            DailyLimitWindow::Rolling24Hours
        ));
    }
}
