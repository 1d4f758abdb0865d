//! The reconcile pipeline of one XeroDataset, in the order the data passes through it:
//!
//! 1. [`validate`] (pure): the spec and the request annotations as checked, typed values;
//! 2. [`gather`] (I/O): the Power BI token, the dataset's id, its refresh history and, when due,
//!    its schedule, as [`model::Observed`];
//! 3. [`plan`] (pure, `now` injected): the actions to take and when to look again;
//! 4. [`execute`] (I/O): the actions in order, stopping at the first failure;
//! 5. [`status`] (pure): the new status and the events; the controller writes them.
//!
//! The values the steps hand to each other live in [`model`]; failures get their reason in
//! [`failure`]; the clients and caches every reconcile shares in [`services`].

mod execute;
pub mod failure;
mod gather;
pub mod model;
pub mod plan;
pub mod preflight;
pub mod services;
pub mod status;
pub mod validate;

use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt as _;

use crate::api::{Reason, XeroDataset};
use crate::endpoints::Cloud;
use failure::{Advice, StepError, failure_of};
use model::{Action, Failure, Hints, Outcome, Timing};
use plan::plan_actions;
pub use services::Services;
use services::Session;
use status::memory_from_status;

/// The event reason and metric label of an action.
pub fn action_reason(action: &Action) -> Reason {
    match action {
        Action::UpdateSchedule(_) => Reason::ScheduleUpdated,
        Action::ApplyCredentials(_) => Reason::CredentialsApplied,
        Action::TriggerRefresh(_) => Reason::RefreshTriggered,
    }
}

/// Runs the pipeline once: what happened, and when to look again.
pub async fn reconcile_dataset(
    xds: &XeroDataset,
    services: &Services,
    timing: Timing,
    now: Timestamp,
    hints: Hints,
) -> (Outcome, Duration) {
    let outcome = Outcome {
        now,
        generation: xds.metadata.generation,
        ..Outcome::default()
    };
    let configuration = services.configuration();
    let validated =
        match validate::validate(xds, timing.default_credential_lead_time, configuration) {
            Ok(v) => v,
            Err(invalid) => return invalid_spec(outcome, invalid, timing),
        };
    let mut outcome = Outcome {
        handled_reconcile: validated.reconcile_requested.clone(),
        started_by: validated.desired.started_by,
        ..outcome
    };
    if validated.desired.suspend {
        // No call to Power BI or Xero at all.
        outcome.suspended = true;
        return (outcome, timing.resync_interval);
    }
    let namespace = xds.namespace().unwrap_or_default();
    let mut context = FailureContext {
        refresh_request: validated.desired.refresh_requested.clone(),
        advice: Advice {
            namespace: namespace.clone(),
            xero_secret: validated.xero_secret.name.clone(),
            dataset_settings: None,
        },
    };
    let cloud = match services.cloud(validated.cloud) {
        Ok(cloud) => cloud,
        Err(err) => return failed(outcome, StepError::Call(err), &context, timing),
    };
    let session = Session {
        services,
        cloud,
        namespace: &namespace,
        spec: &validated,
    };
    let status = xds.status.as_ref();
    let gathered = match gather(&session, status, xds.metadata.generation, hints).await {
        Ok(g) => g,
        Err(err) => return failed(outcome, err, &context, timing),
    };
    context.advice.dataset_settings = Some(
        Cloud::from(validated.cloud)
            .dataset_settings_url(&validated.workspace_id, &gathered.dataset_id),
    );
    outcome.dataset_id = Some(gathered.dataset_id.clone());
    outcome.dataset_name = Some(gathered.dataset_name.clone());
    outcome.schedule_checked = gathered.observed.schedule.is_some();
    outcome.history = Some(gathered.records.clone());

    let memory = memory_from_status(status);
    let plan = plan_actions(&validated.desired, &gathered.observed, &memory, timing, now);
    let executed = execute::execute(&session, &gathered, &plan, &memory).await;
    let error = outcome.record(executed);
    match error {
        // The plan's wake-ups assumed its actions would succeed (a poll of the refresh it meant
        // to start, say); after a failure the failure decides when to try again.
        Some(err) => failed(outcome, err, &context, timing),
        None => (outcome, plan.requeue_after),
    }
}

/// The outcome of a spec the validate step refused: no call to any service.
fn invalid_spec(
    outcome: Outcome,
    invalid: validate::InvalidSpec,
    timing: Timing,
) -> (Outcome, Duration) {
    let failure = Failure {
        reason: Reason::InvalidSpec,
        message: invalid.0,
        needs_human: true,
    };
    failed(
        outcome,
        StepError::Finding(failure),
        &FailureContext::default(),
        timing,
    )
}

/// The gather step; when Power BI says the cached token expired early, once more with a new one.
async fn gather(
    session: &Session<'_>,
    status: Option<&crate::api::XeroDatasetStatus>,
    generation: Option<i64>,
    hints: Hints,
) -> Result<gather::Gathered, StepError> {
    match gather::gather(session, status, generation, hints).await {
        Err(err) if err.is_token_expired() => {
            session.forget_powerbi_token().await;
            gather::gather(session, status, generation, hints).await
        }
        other => other,
    }
}

impl Outcome {
    /// Records what the execute step did; returns the error it stopped at.
    fn record(&mut self, executed: execute::Executed) -> Option<StepError> {
        self.executed = executed.done;
        self.triggered_request_id = executed.triggered_request_id;
        self.xero_tenant_id = executed.xero_tenant_id;
        self.access_token_expires_at = executed.access_token_expires_at;
        self.refresh_token_rotated_at = executed.refresh_token_rotated_at;
        self.plan = Some(executed.plan);
        executed.error
    }
}

/// What a failure of this reconcile must tell: the refresh request it answers, and where a
/// person acts.
#[derive(Default)]
struct FailureContext {
    refresh_request: Option<String>,
    advice: Advice,
}

/// Records a failure. A refresh request that cannot be served until a human acts is answered
/// now (echoed as handled, with the failure as the reason), so that nobody waits for it.
fn failed(
    mut outcome: Outcome,
    err: StepError,
    context: &FailureContext,
    timing: Timing,
) -> (Outcome, Duration) {
    let (failure, wait) = failure_of(&err, timing, &context.advice);
    if failure.needs_human {
        outcome.refused_request = context.refresh_request.clone();
    }
    outcome.failure = Some(failure);
    (outcome, wait)
}
