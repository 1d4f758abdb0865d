//! The gather step: the Power BI token, the dataset's id, its refresh history and (when due) its
//! schedule, turned into the planner's observed state.

use super::failure::StepError;
use super::model::{Failure, Hints, Observed, Refresh, RefreshRecord, RefreshState, RefreshType};
use super::services::Session;
use super::validate::DatasetName;
use crate::api::{
    MAX_ERROR_CODE_CHARS, MAX_MESSAGE_CHARS, Reason, SlotStarter, XeroDatasetStatus, printable,
};
use crate::matches::Matches;
use crate::powerbi::models::{self, NOTIFY_MAIL_ON_FAILURE};
use crate::schedule::RefreshSchedule;
use crate::secret::SecretString;

/// What the gather step found.
pub(super) struct Gathered {
    pub dataset_id: String,
    /// The dataset's name in Power BI.
    pub dataset_name: String,
    pub observed: Observed,
    pub records: Vec<RefreshRecord>,
}

/// Refresh history entries read per reconcile: enough for a day of refreshes on the capacity
/// plus on-demand ones.
fn history_depth(daily_limit: u32) -> u32 {
    daily_limit + 12
}

pub(super) async fn gather(
    session: &Session<'_>,
    status: Option<&XeroDatasetStatus>,
    generation: Option<i64>,
    hints: Hints,
) -> Result<Gathered, StepError> {
    let token = session.powerbi_token().await?;
    let powerbi = &session.cloud.powerbi;
    let workspace = session.spec.workspace_id.as_str();
    let (dataset_id, dataset_name) = identify_dataset(
        session,
        &token,
        status.filter(|s| s.observed_generation.is_some() && s.observed_generation == generation),
    )
    .await?;
    let history = powerbi
        .refresh_history(
            &token,
            workspace,
            &dataset_id,
            Some(history_depth(session.spec.desired.daily_refresh_limit)),
        )
        .await
        .map_err(|e| dataset_error(e, &dataset_id))?;
    let records: Vec<RefreshRecord> = newest_first(history).iter().map(record).collect();
    // Power BI switches a schedule off after failed refreshes: a failure not yet handled is a
    // reason to look at the schedule now rather than at the next periodic check.
    let handled = status
        .and_then(|s| s.recovery.as_ref())
        .and_then(|r| r.last_handled_failure_request_id.as_deref());
    let new_failure = records
        .first()
        .is_some_and(|r| r.refresh.is_unhandled_failure(handled));
    let actual = if hints.check_schedule
        || new_failure
        || scheduled_by_power_bi(
            session.spec.desired.started_by,
            status,
            records.first().map(|r| &r.refresh),
        ) {
        let actual = powerbi
            .refresh_schedule(&token, workspace, &dataset_id)
            .await
            .map_err(|e| dataset_error(e, &dataset_id))?;
        Some(actual)
    } else {
        None
    };
    let schedule_mails_on_failure = actual.as_ref().is_some_and(|a| {
        a.notify_option
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(NOTIFY_MAIL_ON_FAILURE))
    });
    Ok(Gathered {
        dataset_id,
        dataset_name,
        observed: Observed {
            schedule: actual.as_ref().map(observed_schedule),
            history: records.iter().map(|r| r.refresh.clone()).collect(),
            secret_changed: hints.secret_changed,
            schedule_mails_on_failure,
        },
        records,
    })
}

/// Whether the history shows a scheduled refresh Power BI started after the operator last
/// started a slot or changed the schedule, when the operator starts the slots and keeps Power
/// BI's schedule off: someone switched it on, and the schedule is read now rather than at the
/// day's check.
fn scheduled_by_power_bi(
    started_by: SlotStarter,
    status: Option<&XeroDatasetStatus>,
    latest: Option<&Refresh>,
) -> bool {
    let Some(latest) = latest.filter(|_| started_by == SlotStarter::Operator) else {
        return false;
    };
    let known = status.and_then(|s| {
        [&s.last_started_slot_time, &s.schedule_updated_time]
            .into_iter()
            .flatten()
            .map(|t| t.0)
            .max()
    });
    latest.refresh_type == RefreshType::Scheduled
        && latest
            .start_time
            .is_some_and(|started| known.is_none_or(|known| started > known))
}

/// The dataset's id and its name in Power BI: from the status written for this generation, else
/// from Power BI (the list of the workspace's datasets when the spec names the dataset, the
/// dataset itself when the spec gives its id).
pub(super) async fn identify_dataset(
    session: &Session<'_>,
    token: &SecretString,
    resolved: Option<&XeroDatasetStatus>,
) -> Result<(String, String), StepError> {
    let powerbi = &session.cloud.powerbi;
    let workspace = session.spec.workspace_id.as_str();
    match &session.spec.dataset {
        DatasetName::Name(name) => {
            if let Some(id) = resolved.and_then(|s| s.dataset_id.clone()) {
                return Ok((id, name.clone()));
            }
            let datasets = powerbi
                .datasets(token, workspace)
                .await
                .map_err(StepError::Call)?;
            Ok((resolve_dataset(&datasets, name)?, name.clone()))
        }
        DatasetName::Id(id) => {
            if let Some(name) = resolved.and_then(|s| s.dataset_name.clone()) {
                return Ok((id.clone(), name));
            }
            let dataset = powerbi
                .dataset(token, workspace, id)
                .await
                .map_err(|e| dataset_error(e, id))?;
            Ok((id.clone(), dataset.name))
        }
    }
}

fn dataset_error(err: crate::error::ClientError, dataset_id: &str) -> StepError {
    if err.category() == crate::error::ErrorCategory::NotFound {
        StepError::Finding(Failure {
            reason: Reason::DatasetNotFound,
            message: format!(
                "dataset {dataset_id} was not found in the workspace: {}",
                err.message()
            ),
            needs_human: true,
        })
    } else {
        StepError::Call(err)
    }
}

fn resolve_dataset(datasets: &[models::Dataset], name: &str) -> Result<String, StepError> {
    match Matches::of(datasets.iter().filter(|d| d.name == name)) {
        Matches::One(one) => Ok(one.id.clone()),
        Matches::None => Err(StepError::Finding(Failure {
            reason: Reason::DatasetNotFound,
            message: format!("no dataset named {name:?} in the workspace"),
            needs_human: true,
        })),
        Matches::Several(several) => Err(StepError::Finding(Failure {
            reason: Reason::DatasetAmbiguous,
            message: format!(
                "{} datasets are named {name:?} in the workspace; name the dataset by id in spec.dataset.id",
                several.len()
            ),
            needs_human: true,
        })),
    }
}

/// Power BI's schedule as a value; unparseable entries (which Power BI does not produce) are
/// kept as a difference by dropping them, so that the operator rewrites the schedule.
fn observed_schedule(actual: &models::RefreshSchedule) -> RefreshSchedule {
    RefreshSchedule {
        enabled: actual.enabled,
        days: actual
            .days
            .iter()
            .filter_map(|d| crate::api::DayOfWeek::parse(d))
            .collect(),
        times: actual
            .times
            .iter()
            .filter_map(|t| crate::schedule::SlotTime::parse(t).ok())
            .collect(),
        time_zone_id: actual.local_time_zone_id.clone().unwrap_or_default(),
    }
}

/// The history newest first (the service's order is not promised).
fn newest_first(mut history: Vec<models::Refresh>) -> Vec<models::Refresh> {
    // Newest first; an entry without a start time was queued just now.
    history.sort_by_key(|r| (r.start_time.is_some(), std::cmp::Reverse(r.start_time)));
    history
}

fn record(refresh: &models::Refresh) -> RefreshRecord {
    let exception = refresh.service_exception();
    RefreshRecord {
        refresh: Refresh {
            request_id: refresh
                .request_id
                .clone()
                .or_else(|| refresh.id.map(|id| id.to_string()))
                .unwrap_or_default(),
            refresh_type: match refresh.refresh_type.clone() {
                Some(models::RefreshType::Scheduled) => RefreshType::Scheduled,
                Some(models::RefreshType::OnDemand) => RefreshType::OnDemand,
                Some(models::RefreshType::ViaApi) => RefreshType::ViaApi,
                Some(models::RefreshType::Other(name)) => RefreshType::Other(name),
                Some(other) => RefreshType::Other(
                    match other {
                        models::RefreshType::ViaXmlaEndpoint => "ViaXmlaEndpoint",
                        models::RefreshType::ViaEnhancedApi => "ViaEnhancedApi",
                        models::RefreshType::OnDemandTraining => "OnDemandTraining",
                        _ => "Other",
                    }
                    .to_owned(),
                ),
                None => RefreshType::Other(String::new()),
            },
            state: if refresh.is_running() {
                RefreshState::Running
            } else {
                match &refresh.status {
                    models::RefreshStatus::Completed => RefreshState::Completed,
                    models::RefreshStatus::Failed => RefreshState::Failed,
                    models::RefreshStatus::Cancelled => RefreshState::Cancelled,
                    models::RefreshStatus::Disabled => RefreshState::Disabled,
                    // Unknown with an end time, or a status this client does not know: not a
                    // failure to recover from, and not running.
                    _ => RefreshState::Cancelled,
                }
            },
            start_time: refresh.start_time,
            end_time: refresh.end_time,
        },
        error_code: exception
            .as_ref()
            .and_then(|e| e.code.as_deref())
            .map(|code| printable(code, MAX_ERROR_CODE_CHARS)),
        error_message: exception
            .and_then(|e| e.description)
            .map(|text| printable(&text, MAX_MESSAGE_CHARS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn refresh(kind: RefreshType, start: &str) -> Refresh {
        Refresh {
            request_id: "r".into(),
            refresh_type: kind,
            state: RefreshState::Completed,
            start_time: Some(start.parse().expect("timestamp")),
            end_time: None,
        }
    }

    #[test]
    fn a_new_scheduled_refresh_means_power_bi_schedule_was_switched_on() {
        let status = XeroDatasetStatus {
            last_started_slot_time: Some(Time("2026-11-25T06:00:00Z".parse().expect("time"))),
            ..XeroDatasetStatus::default()
        };
        let operator = SlotStarter::Operator;
        let scheduled_after = refresh(RefreshType::Scheduled, "2026-11-25T12:31:00Z");
        assert!(scheduled_by_power_bi(
            operator,
            Some(&status),
            Some(&scheduled_after)
        ));
        assert!(scheduled_by_power_bi(
            operator,
            None,
            Some(&scheduled_after)
        ));
        // From before the operator's last slot, its own refresh, or Power BI's mode: nothing new.
        let scheduled_before = refresh(RefreshType::Scheduled, "2026-11-24T12:31:00Z");
        assert!(!scheduled_by_power_bi(
            operator,
            Some(&status),
            Some(&scheduled_before)
        ));
        let own = refresh(RefreshType::ViaApi, "2026-11-25T12:30:00Z");
        assert!(!scheduled_by_power_bi(operator, Some(&status), Some(&own)));
        assert!(!scheduled_by_power_bi(
            SlotStarter::PowerBi,
            None,
            Some(&scheduled_after)
        ));
        assert!(!scheduled_by_power_bi(operator, None, None));
        // Once the operator switched the schedule off again, the same refresh is known.
        let switched_off = XeroDatasetStatus {
            schedule_updated_time: Some(Time("2026-11-25T12:32:00Z".parse().expect("time"))),
            ..status
        };
        assert!(!scheduled_by_power_bi(
            operator,
            Some(&switched_off),
            Some(&scheduled_after)
        ));
    }
}
