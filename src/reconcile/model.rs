//! The values the pipeline's steps hand to each other, in the order they flow: validate makes
//! [`Desired`], gather makes [`Observed`] (and [`RefreshRecord`]s), the status holds
//! [`Memory`], plan makes a [`Plan`] of [`Action`]s, execute carries it out, and everything one
//! reconcile saw and did ends in an [`Outcome`] for the status step. No I/O and no Kubernetes
//! types here, so every step can be tested with plain values.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::api::{Reason, SlotStarter};
use crate::schedule::RefreshSchedule;

/// Timing knobs of the operator (flags), not of one dataset.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The longest time between two reconciles (the drift check).
    pub resync_interval: Duration,
    /// The first poll of a running refresh; later polls grow with its age.
    pub poll_interval: Duration,
    /// The credential lead time of datasets whose spec does not set one.
    pub default_credential_lead_time: Duration,
}

/// The longest time between two reconciles of a dataset whose slots the operator starts
/// itself, when it would otherwise be shorter: each slot wakes the dataset, reads its history
/// and applies fresh credentials. A look between slots would see some things sooner (a failed
/// manual refresh, Power BI's schedule switched on again, a revoked Xero connection), but
/// nothing the next slot's refresh or the daily look does not act on as well.
const OPERATOR_RESYNC_FLOOR: Duration = Duration::from_secs(24 * 3600);

impl Timing {
    /// The resync of a dataset whose slots the operator starts: at least daily, whatever the
    /// resync interval, since its slots wake it anyway.
    pub fn operator_resync(&self) -> Duration {
        self.resync_interval.max(OPERATOR_RESYNC_FLOOR)
    }
}

/// What the controller knows beyond the object itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints {
    /// Read Power BI's schedule this time (a spec change, or the periodic check is due: each
    /// resync, daily with `startedBy: Operator`).
    pub check_schedule: bool,
    /// Someone changed a Secret the dataset references since its last reconcile.
    pub secret_changed: bool,
}

/// What the user asked for, validated.
#[derive(Debug, Clone)]
pub struct Desired {
    pub schedule: RefreshSchedule,
    /// Who starts the refresh at each slot; with the operator, Power BI's schedule stays off.
    pub started_by: SlotStarter,
    pub zone: TimeZone,
    pub credential_lead_time: SignedDuration,
    /// Refreshes a day the capacity allows, scheduled ones included.
    pub daily_refresh_limit: u32,
    pub max_attempts_per_day: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub suspend: bool,
    /// A new value of the refresh-requested-at annotation not handled yet.
    pub refresh_requested: Option<String>,
    /// The spec generation and the operator's configuration, as one word: the whole chain is
    /// checked again when it changes.
    pub fingerprint: String,
}

/// How a refresh started, as Power BI reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshType {
    Scheduled,
    /// The portal's "Refresh now": it does not count against the daily limit.
    OnDemand,
    ViaApi,
    Other(String),
}

/// The state of a refresh in Power BI's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    /// Power BI's `Unknown`: still running.
    Running,
    Completed,
    Failed,
    Cancelled,
    Disabled,
}

/// One entry of the refresh history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub request_id: String,
    pub refresh_type: RefreshType,
    pub state: RefreshState,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
}

impl Refresh {
    /// Whether this refresh failed and is not the failure the operator last responded to
    /// (`handled`, the request id the status remembers).
    pub fn is_unhandled_failure(&self, handled: Option<&str>) -> bool {
        self.state == RefreshState::Failed && handled != Some(self.request_id.as_str())
    }
}

/// What Power BI reported in this reconcile.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The schedule in Power BI; `None` when it was not read this time (drift is then not
    /// checked).
    pub schedule: Option<RefreshSchedule>,
    /// The refresh history, newest first.
    pub history: Vec<Refresh>,
    /// Someone changed a referenced Secret since the last reconcile.
    pub secret_changed: bool,
    /// Power BI's schedule stores `notifyOption: MailOnFailure` (read with `schedule`).
    pub schedule_mails_on_failure: bool,
}

impl Observed {
    /// Whether the latest refresh in the history failed.
    pub fn latest_failed(&self) -> bool {
        self.history
            .first()
            .is_some_and(|r| r.state == RefreshState::Failed)
    }
}

/// One refresh history entry with its error, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub refresh: Refresh,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// What the operator remembers between reconciles (kept in the status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// The failed refresh the operator last responded to.
    pub handled_failure: Option<String>,
    /// Recovery refreshes started on the local day of `last_attempt`, since the last success.
    pub attempts: u32,
    pub last_attempt: Option<Timestamp>,
    /// When credentials were last applied to the datasource.
    pub credentials_applied: Option<Timestamp>,
    /// The fingerprint ([`Desired::fingerprint`]) the whole chain last passed for; `None`
    /// after a failure of the chain.
    pub verified_for: Option<String>,
    /// The refresh the operator is about to start, recorded before it asks Power BI.
    pub intent: Option<Intent>,
    /// The latest slot whose refresh the operator started itself (`startedBy: Operator`).
    pub slot_started: Option<Timestamp>,
    /// With `startedBy: PowerBI`, when the operator last switched Power BI's schedule on: its
    /// scheduler does not go back for a slot that passed while it was off, so such a slot has no
    /// scheduled refresh to wait for. With `Operator`, when the operator last found or made it
    /// off: a scheduled refresh started later means someone switched it on again.
    pub schedule_updated: Option<Timestamp>,
}

/// A refresh the operator decided to start, recorded in the status before the request goes to
/// Power BI, which cannot undo it. An operator that stops after Power BI accepted the request
/// and before the status recorded it finds the intent, sees the refresh in the history and
/// adopts it instead of starting another; when the history shows none, the request never got
/// through and the refresh is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub trigger: TriggerReason,
    /// When the operator decided.
    pub at: Timestamp,
    /// The newest refresh in the history when it decided: only a newer one can be the
    /// intended refresh.
    pub latest_known: Option<String>,
}

/// Why credentials are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyReason {
    /// Shortly before the scheduled slot at this instant.
    BeforeSlot(Timestamp),
    /// Right before a refresh the operator triggers.
    BeforeRefresh,
    /// To check the whole chain (Power BI token, dataset, Xero exchange, organisation,
    /// datasource, Power BI accepting the credentials): the spec, a Secret or the operator's
    /// configuration changed, the last check failed, or a day passed.
    CheckChain,
}

/// Why the operator triggers a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerReason {
    /// To recover from the failed refresh with this request id.
    RecoverFailure { request_id: String },
    /// The refresh-requested-at annotation asked for it.
    Requested { value: String },
    /// The schedule's slot at this instant is due and the operator starts its refresh
    /// (`startedBy: Operator`).
    Slot { at: Timestamp },
}

/// One step of the plan, carried out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make Power BI's schedule the desired one.
    UpdateSchedule(ScheduleUpdate),
    ApplyCredentials(ApplyReason),
    TriggerRefresh(TriggerReason),
}

/// A schedule change, shaped by Power BI's rule that a disabling PATCH changes nothing else,
/// and by its rule that a service principal may only store `notifyOption: NoNotification`
/// (every change the operator makes sets it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleUpdate {
    Disable,
    /// A schedule that stores `MailOnFailure` (a person configured it) is disabled in two
    /// changes: `NoNotification` first, then the disable alone.
    StopMailThenDisable,
    Set(RefreshSchedule),
}

/// Why no recovery refresh is started for a pending failure (or a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holdback {
    /// A refresh is running; only one runs at a time.
    RefreshRunning,
    /// Waiting for the backoff to end at this instant.
    Backoff(Timestamp),
    /// `recovery.maxAttemptsPerDay` attempts were made today.
    AttemptsExhausted,
    /// `recovery.maxAttemptsPerDay` is 0: the operator does not recover failed refreshes.
    RecoveryOff,
    /// The scheduled refresh of this slot is due (or a little late), with fresh credentials:
    /// a recovery refresh now would collide with it.
    ScheduledRefreshDue(Timestamp),
    /// Another refresh would exceed the capacity's daily limit, counting the scheduled slots
    /// still ahead today.
    DailyLimitReached,
    /// The refresh of the slot at this instant is not started: the capacity's daily limit is
    /// used up (`startedBy: Operator`).
    SlotOverDailyLimit(Timestamp),
}

/// The decision of one reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Why a pending failure or request is not acted on now.
    pub holdback: Option<Holdback>,
    /// The memory to keep, assuming the actions succeed.
    pub memory: Memory,
    /// The refresh-requested-at value handled by this plan (echoed in the status).
    pub handled_request: Option<String>,
    /// Refreshes counted against today's limit, before this plan's actions.
    pub refreshes_today: u32,
    /// The next scheduled slot, when the schedule is on.
    pub next_slot: Option<Timestamp>,
    /// When to reconcile again, at the latest.
    pub requeue_after: Duration,
}

/// Why a reconcile could not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The condition reason, event reason and metric label.
    pub reason: Reason,
    /// What happened and, when a human must act, what to do. Never a secret.
    pub message: String,
    /// True when retrying cannot help until someone changes something (Stalled).
    pub needs_human: bool,
}

/// What one reconcile saw and did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The injected clock's time of this reconcile.
    pub now: Timestamp,
    pub generation: Option<i64>,
    pub suspended: bool,
    /// Who starts the slots' refreshes, as the spec says (when it was valid).
    pub started_by: SlotStarter,
    pub dataset_id: Option<String>,
    /// The dataset's name in Power BI.
    pub dataset_name: Option<String>,
    pub xero_tenant_id: Option<String>,
    /// The refresh history read this time (newest first); `None` when it was not read.
    pub history: Option<Vec<RefreshRecord>>,
    /// The plan, with its memory and handled request corrected for actions that failed.
    pub plan: Option<Plan>,
    /// The actions that succeeded, in order.
    pub executed: Vec<Action>,
    /// The request id of the refresh the operator started.
    pub triggered_request_id: Option<String>,
    /// Whether Power BI's schedule was read (and so is known to be in sync unless updated).
    pub schedule_checked: bool,
    pub access_token_expires_at: Option<Timestamp>,
    pub refresh_token_rotated_at: Option<Timestamp>,
    /// A reconcile-requested-at value handled by this reconcile.
    pub handled_reconcile: Option<String>,
    /// A refresh-requested-at value answered without a refresh because of `failure`.
    pub refused_request: Option<String>,
    pub failure: Option<Failure>,
}
