//! The execute step: carries out the plan's actions in order and stops at the first failure,
//! correcting the plan's memory for what did not happen.

use std::time::Duration;

use jiff::Timestamp;

use super::failure::StepError;
use super::gather::Gathered;
use super::model::{Action, Failure, Memory, Observed, Plan, ScheduleUpdate};
use super::services::Session;
use crate::api::Reason;
use crate::error::{ClientError, ErrorCategory};
use crate::matches::Matches;
use crate::powerbi::models::{
    CredentialEncryption, Datasource, Gateway, NOTIFY_NOBODY, PrivacyLevel, RefreshScheduleUpdate,
};
use crate::secret::SecretString;
use crate::xero::{
    XeroAccessToken, XeroAllowance, XeroConnection, XeroSecretRef, find_organisation,
};

/// The Xero access token applied to the datasource must outlive the refresh that uses it:
/// Power BI starts a scheduled refresh up to 15 minutes after its slot, and Xero access tokens
/// last 30 minutes, so a cached token with less than this left is replaced first.
const MIN_TOKEN_VALIDITY: Duration = Duration::from_secs(25 * 60);
/// Calls left in an organisation's day above which the answer is reused for a minute: a few
/// refreshes' worth (a refresh makes an unknown number of calls; tens is plausible).
const PLENTY_OF_XERO_CALLS: u32 = 200;

/// What the execute step did.
pub(super) struct Executed {
    /// The plan, its memory and handled request corrected for actions that did not happen.
    pub plan: Plan,
    pub done: Vec<Action>,
    pub triggered_request_id: Option<String>,
    pub xero_tenant_id: Option<String>,
    pub access_token_expires_at: Option<Timestamp>,
    pub refresh_token_rotated_at: Option<Timestamp>,
    pub error: Option<StepError>,
}

impl Executed {
    /// Before the first action.
    fn nothing_yet(plan: Plan) -> Self {
        Executed {
            plan,
            done: Vec::new(),
            triggered_request_id: None,
            xero_tenant_id: None,
            access_token_expires_at: None,
            refresh_token_rotated_at: None,
            error: None,
        }
    }
}

pub(super) async fn execute(
    session: &Session<'_>,
    gathered: &Gathered,
    plan: &Plan,
    old_memory: &Memory,
) -> Executed {
    let dataset_id = gathered.dataset_id.as_str();
    let mut executed = Executed::nothing_yet(plan.clone());
    if looks_up_binding_again(&gathered.observed, plan) {
        session
            .services
            .datasources
            .forget(&binding_key(session, dataset_id));
    }
    for action in &plan.actions {
        let result = match action {
            Action::UpdateSchedule(update) => update_schedule(session, dataset_id, update)
                .await
                .map(|()| true),
            Action::ApplyCredentials(_) => apply_credentials(session, dataset_id, &mut executed)
                .await
                .map(|()| true),
            Action::TriggerRefresh(_) => trigger_refresh(session, dataset_id, &mut executed).await,
        };
        match result {
            Ok(true) => executed.done.push(action.clone()),
            // Nothing was done (a refresh runs already): no event, no attempt counted.
            Ok(false) => {}
            Err(err) => {
                executed.error = Some(err);
                break;
            }
        }
    }
    correct_memory(&mut executed, old_memory);
    executed
}

/// Whether the datasource binding is looked up again before the plan's actions: a failed refresh
/// may come from a datasource the dataset is no longer bound to, so while the latest refresh is
/// a failure, credentials go to the binding as Power BI shows it now.
fn looks_up_binding_again(observed: &Observed, plan: &Plan) -> bool {
    observed.latest_failed() && planned(plan, applies)
}

fn applies(action: &Action) -> bool {
    matches!(action, Action::ApplyCredentials(_))
}

/// Whether the plan has an action of the kind `kind` tells.
fn planned(plan: &Plan, kind: fn(&Action) -> bool) -> bool {
    plan.actions.iter().any(kind)
}

/// The plan's memory assumes every action succeeds; keep the old values for those that did not.
fn correct_memory(executed: &mut Executed, old: &Memory) {
    let did = |pred: fn(&Action) -> bool| executed.done.iter().any(pred);
    let triggered =
        did(|a| matches!(a, Action::TriggerRefresh(_))) && executed.triggered_request_id.is_some();
    if planned(&executed.plan, |a| matches!(a, Action::TriggerRefresh(_))) && !triggered {
        let memory = &mut executed.plan.memory;
        memory.handled_failure = old.handled_failure.clone();
        memory.attempts = old.attempts;
        memory.last_attempt = old.last_attempt;
        memory.slot_started = old.slot_started;
        // Power BI may have started it even so (an answer lost on the way): the intent stays,
        // and the next reconcile looks for the refresh in the history before it asks again.
        memory.intent = old.intent.clone();
        executed.plan.handled_request = None;
    }
    let update = |a: &Action| matches!(a, Action::UpdateSchedule(_));
    if planned(&executed.plan, update) && !did(update) {
        executed.plan.memory.schedule_updated = old.schedule_updated;
    }
    if !did(applies) {
        executed.plan.memory.credentials_applied = old.credentials_applied;
        // A planned apply that did not happen leaves the chain unverified: the next reconcile
        // checks it again.
        executed.plan.memory.verified_for = if planned(&executed.plan, applies) {
            None
        } else {
            old.verified_for.clone()
        };
    }
}

async fn update_schedule(
    session: &Session<'_>,
    dataset_id: &str,
    update: &ScheduleUpdate,
) -> Result<(), StepError> {
    let token = session.powerbi_token().await?;
    let bodies = match update {
        ScheduleUpdate::Disable => vec![RefreshScheduleUpdate::disable()],
        ScheduleUpdate::StopMailThenDisable => vec![
            RefreshScheduleUpdate::notify_nobody(),
            RefreshScheduleUpdate::disable(),
        ],
        ScheduleUpdate::Set(schedule) => vec![RefreshScheduleUpdate {
            days: Some(schedule.day_names()),
            times: Some(schedule.time_strings()),
            enabled: Some(true),
            local_time_zone_id: Some(schedule.time_zone_id.clone()),
            notify_option: Some(NOTIFY_NOBODY.to_owned()),
        }],
    };
    for body in &bodies {
        patch_schedule(session, &token, dataset_id, body).await?;
    }
    Ok(())
}

/// One schedule PATCH, taking the dataset over first when the spec allows and Power BI asks
/// for the owner.
async fn patch_schedule(
    session: &Session<'_>,
    token: &SecretString,
    dataset_id: &str,
    body: &RefreshScheduleUpdate,
) -> Result<(), StepError> {
    let powerbi = &session.cloud.powerbi;
    let workspace = &session.spec.workspace_id;
    let result = match powerbi
        .update_refresh_schedule(token, workspace, dataset_id, body)
        .await
    {
        Err(err) if needs_ownership(&err) && session.spec.take_over => {
            take_over(session, token, dataset_id).await?;
            powerbi
                .update_refresh_schedule(token, workspace, dataset_id, body)
                .await
        }
        other => other,
    };
    result.map_err(ownership_or_call)
}

async fn apply_credentials(
    session: &Session<'_>,
    dataset_id: &str,
    executed: &mut Executed,
) -> Result<(), StepError> {
    let secret = session.xero_secret();
    let (xero, tenant_id) = xero_credentials(session, &secret).await?;
    executed.access_token_expires_at = Some(xero.expires_at);
    executed.refresh_token_rotated_at = Some(xero.refresh_token_rotated_at);
    xero_allowance(session, &secret, &xero.access_token, &tenant_id).await?;
    executed.xero_tenant_id = Some(tenant_id);
    let token = session.powerbi_token().await?;
    let binding = datasource_binding(session, &token, dataset_id).await?;
    match update_datasource(session, &token, dataset_id, binding, &xero.access_token).await {
        // Power BI tested a cached token and refused it (revoked or expired since it was
        // cached): one fresh exchange, then the refusal stands and waits for a change.
        Err(err) if !xero.exchanged && credentials_rejected(&err) => {
            session.services.xero.forget(&secret).await;
            let fresh = xero_access_token(session, &secret).await?;
            executed.access_token_expires_at = Some(fresh.expires_at);
            executed.refresh_token_rotated_at = Some(fresh.refresh_token_rotated_at);
            let binding = datasource_binding(session, &token, dataset_id).await?;
            update_datasource(session, &token, dataset_id, binding, &fresh.access_token).await
        }
        other => other,
    }
}

/// Whether Power BI refused the credentials themselves (its connection test failed).
fn credentials_rejected(err: &StepError) -> bool {
    matches!(err, StepError::Finding(failure) if failure.reason == Reason::CredentialsRejected)
}

/// A Xero access token for `secret` and the tenant id of the spec's organisation among the
/// connections it reaches. A cached access token may belong to a grant revoked since, or have
/// expired early: a fresh exchange tells a revoked sign-in (XeroRefreshTokenRejected) from an
/// organisation that is not there, and replaces an expired token.
pub(super) async fn xero_credentials(
    session: &Session<'_>,
    secret: &XeroSecretRef,
) -> Result<(XeroAccessToken, String), StepError> {
    let xero = xero_access_token(session, secret).await?;
    match xero_organisation(session, &xero.access_token).await {
        Err(err) if !xero.exchanged && a_fresh_token_may_help(&err) => {
            session.services.xero.forget(secret).await;
            let xero = xero_access_token(session, secret).await?;
            let tenant_id = xero_organisation(session, &xero.access_token).await?;
            Ok((xero, tenant_id.tenant_id))
        }
        other => Ok((xero, other?.tenant_id)),
    }
}

/// A Xero access token for `secret` that outlives the refresh using it, exchanged (and the new
/// refresh token stored) when the cached one would not.
pub(super) async fn xero_access_token(
    session: &Session<'_>,
    secret: &XeroSecretRef,
) -> Result<XeroAccessToken, StepError> {
    session
        .services
        .xero
        .access_token(secret, MIN_TOKEN_VALIDITY)
        .await
        .map_err(StepError::Call)
}

/// The spec's organisation among the connections `access_token` reaches. The connections are
/// asked on every apply (not cached): the call also proves that the access token still reaches
/// the organisation, so a revoked connection is reported as such instead of as failed
/// refreshes. Applies happen a few times a day.
pub(super) async fn xero_organisation(
    session: &Session<'_>,
    access_token: &SecretString,
) -> Result<XeroConnection, StepError> {
    let connections = session
        .services
        .xero_api
        .list(access_token)
        .await
        .map_err(StepError::Call)?;
    find_organisation(&connections, &session.spec.organisation)
        .cloned()
        .map_err(StepError::Call)
}

/// What Xero's limits leave of the app's calls in the organisation. The refresh reads the
/// organisation through the same app, so a limit with nothing left means it would fail: that
/// is reported now (`XeroThrottled`, looked at again when Xero's Retry-After says) and no
/// credentials are applied and no refresh started meanwhile, which would only spend Power BI's
/// daily refreshes on failures. Costs one of the organisation's calls; an answer with plenty
/// left is reused for a minute by the datasets sharing the Secret and the organisation.
pub(super) async fn xero_allowance(
    session: &Session<'_>,
    secret: &XeroSecretRef,
    access_token: &SecretString,
    tenant_id: &str,
) -> Result<XeroAllowance, StepError> {
    let key = (
        secret.namespace.clone(),
        secret.name.clone(),
        tenant_id.to_ascii_lowercase(),
    );
    let memo = &session.services.xero_allowances;
    if let Some(known) = memo.get(&key) {
        return Ok(known);
    }
    let allowance = session
        .services
        .xero_api
        .allowance(access_token, tenant_id)
        .await
        .map_err(StepError::Call)?;
    tracing::debug!(
        day = ?allowance.day,
        minute = ?allowance.minute,
        app_minute = ?allowance.app_minute,
        "Xero calls left in the organisation"
    );
    if allowance.day.is_none_or(|day| day >= PLENTY_OF_XERO_CALLS) {
        memo.put(key, allowance);
    }
    Ok(allowance)
}

/// Sets the Xero access token as the OAuth2 credential of the dataset's Xero datasource (taking
/// the dataset over first when the spec allows and Power BI asks for the owner).
pub(super) async fn update_datasource(
    session: &Session<'_>,
    token: &SecretString,
    dataset_id: &str,
    binding: DatasourceBinding,
    access_token: &SecretString,
) -> Result<(), StepError> {
    let update = |binding: DatasourceBinding| async move {
        let result = session
            .cloud
            .powerbi
            .update_datasource_oauth2(
                token,
                &binding.gateway_id,
                &binding.datasource_id,
                (access_token, &binding.encryption),
                PrivacyLevel::Organizational,
            )
            .await;
        (result, binding)
    };
    let on_premises = binding.encryption != CredentialEncryption::None;
    let (result, binding) = match update(binding).await {
        // Taking the dataset over makes no one an admin of an on-premises gateway.
        (Err(err), _) if needs_ownership(&err) && session.spec.take_over && !on_premises => {
            take_over(session, token, dataset_id).await?;
            // The new owner's binding (gateway and datasource ids) can differ from the old one.
            session
                .services
                .datasources
                .forget(&binding_key(session, dataset_id));
            update(datasource_binding(session, token, dataset_id).await?).await
        }
        other => other,
    };
    // A binding that no longer works (the dataset was republished, or taken over) is looked up
    // again next time.
    if result.is_err() {
        session
            .services
            .datasources
            .forget(&binding_key(session, dataset_id));
    }
    result.map_err(|err| update_datasource_error(err, &binding))
}

/// Why Update Datasource failed: not an admin of the on-premises gateway, not the owner, the
/// credentials refused, or the call itself.
fn update_datasource_error(err: ClientError, binding: &DatasourceBinding) -> StepError {
    let datasource = &binding.datasource_id;
    match err.category() {
        ErrorCategory::Unauthorized | ErrorCategory::Forbidden
            if binding.encryption != CredentialEncryption::None =>
        {
            let gateway = match &binding.encryption {
                CredentialEncryption::Gateway { name, .. } => name.as_str(),
                CredentialEncryption::None => "",
            };
            StepError::Finding(Failure {
                reason: Reason::GatewayAdminRequired,
                message: format!(
                    "Power BI refused the credentials for datasource {datasource} on the on-premises gateway {gateway} ({}): {}; the operator's principal must be an admin of that data source: a gateway admin adds it under Manage connections and gateways, the connection's Manage users",
                    binding.gateway_id,
                    err.message()
                ),
                needs_human: true,
            })
        }
        _ if needs_ownership(&err) => ownership_or_call(err),
        // Power BI tests the connection when credentials are set and refuses ones that do not
        // work with 400 (for example DM_GWPipeline_Gateway_InvalidConnectionCredentials).
        ErrorCategory::InvalidRequest => StepError::Finding(Failure {
            reason: Reason::CredentialsRejected,
            message: format!(
                "Power BI refused the Xero credentials for datasource {datasource}: {}",
                err.message()
            ),
            needs_human: true,
        }),
        _ => StepError::Call(err),
    }
}

/// Whether Xero's answer to a cached access token may change with a fresh one: the grant behind
/// it was revoked, or it expired before the cache expected.
fn a_fresh_token_may_help(err: &StepError) -> bool {
    matches!(
        err,
        StepError::Call(err) if matches!(
            err.category(),
            ErrorCategory::OrganisationNotFound
                | ErrorCategory::Unauthorized
                | ErrorCategory::Forbidden
                | ErrorCategory::TokenExpired
        )
    )
}

/// The gateway and datasource ids of a dataset's Xero datasource, and how credentials travel to
/// its gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DatasourceBinding {
    pub gateway_id: String,
    pub datasource_id: String,
    pub encryption: CredentialEncryption,
}

/// What the binding of a dataset's datasource is remembered by.
fn binding_key(session: &Session<'_>, dataset_id: &str) -> (String, String, Option<String>) {
    let spec = session.spec;
    (
        spec.workspace_id.clone(),
        dataset_id.to_owned(),
        spec.datasource_id.clone(),
    )
}

/// The dataset's Xero datasource, remembered between reconciles.
pub(super) async fn datasource_binding(
    session: &Session<'_>,
    token: &SecretString,
    dataset_id: &str,
) -> Result<DatasourceBinding, StepError> {
    let key = binding_key(session, dataset_id);
    if let Some(binding) = session.services.datasources.get(&key) {
        return Ok(binding);
    }
    let datasources = session
        .cloud
        .powerbi
        .datasources(token, &session.spec.workspace_id, dataset_id)
        .await
        .map_err(StepError::Call)?;
    let (gateway_id, datasource_id) = xero_datasource(&datasources, key.2.as_deref())?;
    // An on-premises gateway shows itself with its public key; a cloud source's does not.
    let gateway = session
        .cloud
        .powerbi
        .gateway(token, &gateway_id)
        .await
        .map_err(StepError::Call)?;
    let encryption = match gateway {
        Some(Gateway {
            public_key: Some(key),
            name,
            ..
        }) => CredentialEncryption::Gateway {
            name: name.unwrap_or_else(|| gateway_id.clone()),
            key,
        },
        _ => CredentialEncryption::None,
    };
    let binding = DatasourceBinding {
        gateway_id,
        datasource_id,
        encryption,
    };
    session.services.datasources.put(key, binding.clone());
    Ok(binding)
}

async fn trigger_refresh(
    session: &Session<'_>,
    dataset_id: &str,
    executed: &mut Executed,
) -> Result<bool, StepError> {
    let token = session.powerbi_token().await?;
    match session
        .cloud
        .powerbi
        .trigger_refresh(&token, &session.spec.workspace_id, dataset_id)
        .await
    {
        Ok(triggered) => {
            // Power BI returns the new history entry's id in the RequestId header; without it
            // the next poll of the history shows the refresh.
            executed.triggered_request_id =
                Some(triggered.request_id.unwrap_or_else(|| "pending".to_owned()));
            Ok(true)
        }
        Err(err) => match refresh_refusal(&err) {
            // One refresh at a time: another one (started by Power BI's schedule, or by an
            // operator that crashed before writing its status) is running, and the next poll
            // sees it.
            Some(RefreshRefusal::AlreadyRunning) => {
                tracing::info!("a refresh is already running; not starting another");
                Ok(false)
            }
            Some(RefreshRefusal::DailyLimit) => Err(StepError::Finding(Failure {
                reason: Reason::DailyLimitReached,
                message: format!("Power BI refused the refresh: {}", err.message()),
                needs_human: false,
            })),
            None => Err(StepError::Call(err)),
        },
    }
}

/// Why Power BI would not start a refresh, when it said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshRefusal {
    /// "Another refresh request is already executing": 400 in the current docs, 409 in older
    /// ones and in some tenants.
    AlreadyRunning,
    /// "Number of refresh requests in last 24 hours exceeded limit": seen as 400 and as 429
    /// (the status code is not documented).
    DailyLimit,
}

fn refresh_refusal(err: &ClientError) -> Option<RefreshRefusal> {
    let message = err.message().to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().all(|w| message.contains(w));
    match err.category() {
        ErrorCategory::Conflict => Some(RefreshRefusal::AlreadyRunning),
        ErrorCategory::InvalidRequest | ErrorCategory::Throttled
            if says(&["already", "executing"]) || says(&["already", "running"]) =>
        {
            Some(RefreshRefusal::AlreadyRunning)
        }
        ErrorCategory::InvalidRequest | ErrorCategory::Throttled
            if says(&["exceeded", "limit"]) =>
        {
            Some(RefreshRefusal::DailyLimit)
        }
        _ => None,
    }
}

/// Whether Power BI refused because the caller does not own the dataset: 401/403, or the live
/// service's "This operation is only supported for the dataset owner", whose status is not
/// documented (400 in reports).
fn needs_ownership(err: &ClientError) -> bool {
    let message = err.message().to_ascii_lowercase();
    matches!(
        err.category(),
        ErrorCategory::Forbidden | ErrorCategory::Unauthorized
    ) || (err.category() == ErrorCategory::InvalidRequest && message.contains("dataset owner"))
}

/// An ownership refusal that taking over (not allowed, or not enough) did not cure: the person's
/// next step is in the message; anything else keeps its own reason.
fn ownership_or_call(err: ClientError) -> StepError {
    if !needs_ownership(&err) || err.category() != ErrorCategory::InvalidRequest {
        return StepError::Call(err);
    }
    StepError::Finding(Failure {
        reason: Reason::PowerBIForbidden,
        message: format!(
            "the operator's Power BI principal does not own the dataset: {}",
            err.message()
        ),
        needs_human: true,
    })
}

async fn take_over(
    session: &Session<'_>,
    token: &SecretString,
    dataset_id: &str,
) -> Result<(), StepError> {
    tracing::info!("taking the dataset over (spec.powerBI.takeOver)");
    session
        .cloud
        .powerbi
        .take_over(token, &session.spec.workspace_id, dataset_id)
        .await
        .map_err(StepError::Call)
}

/// The gateway and datasource ids of the dataset's Xero datasource: the one `datasource_id`
/// names, else the only one; either way it must be Xero ([`is_xero`]).
fn xero_datasource(
    datasources: &[Datasource],
    datasource_id: Option<&str>,
) -> Result<(String, String), StepError> {
    let bound: Vec<(&Datasource, (&str, &str))> = datasources
        .iter()
        .filter_map(|d| d.gateway_binding().map(|b| (d, b)))
        .collect();
    let candidates = bound
        .iter()
        .filter(|(d, (_, id))| {
            is_xero(d) && datasource_id.is_none_or(|wanted| id.eq_ignore_ascii_case(wanted))
        })
        .map(|(_, b)| *b);
    match Matches::of(candidates) {
        Matches::One((gateway, datasource)) => Ok((gateway.to_owned(), datasource.to_owned())),
        Matches::None => Err(StepError::Finding(Failure {
            reason: Reason::DatasourceNotFound,
            message: match datasource_id {
                Some(id) => format!(
                    "the dataset has no Xero datasource {id} bound to a gateway (the Xero connector, or a source on https://api.xero.com)"
                ),
                None => format!(
                    "none of the dataset's {} datasources is a Xero datasource bound to a gateway",
                    datasources.len()
                ),
            },
            needs_human: true,
        })),
        Matches::Several(several) => Err(StepError::Finding(Failure {
            reason: Reason::DatasourceAmbiguous,
            message: format!(
                "the dataset has {} Xero datasources; name one in spec.dataset.datasourceId",
                several.len()
            ),
            needs_human: true,
        })),
    }
}

/// Whether the datasource really is Xero: the Xero connector (an `Extension` of kind `Xero`),
/// or a source on `https://api.xero.com`. A name that merely contains "xero" is not enough, even
/// when `spec.dataset.datasourceId` names it: a workspace contributor could point a source at a
/// host of their own and receive a fresh Xero access token before every slot.
fn is_xero(datasource: &Datasource) -> bool {
    let details = &datasource.connection_details;
    let connector = datasource
        .datasource_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("Extension"))
        && details
            .kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("Xero"));
    let api = details
        .url
        .as_deref()
        .and_then(|url| reqwest::Url::parse(url).ok())
        .is_some_and(|url| url.scheme() == "https" && url.host_str() == Some("api.xero.com"));
    connector || api
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datasource(kind: &str, gateway: &str, id: &str) -> Datasource {
        serde_json::from_value(serde_json::json!({
            "datasourceType": "Extension",
            "connectionDetails": {"kind": kind, "path": "xero"},
            "gatewayId": gateway,
            "datasourceId": id,
        }))
        .expect("datasource")
    }

    fn reason_of(err: StepError) -> Option<Reason> {
        match err {
            StepError::Finding(f) => Some(f.reason),
            StepError::Call(..) => None,
        }
    }

    fn refused(category: ErrorCategory, message: &str) -> Option<RefreshRefusal> {
        refresh_refusal(&ClientError::new(
            crate::error::Service::PowerBi,
            category,
            format!("Power BI RefreshDatasetInGroup failed: InvalidRequest: {message}"),
        ))
    }

    #[test]
    fn a_start_that_did_not_happen_keeps_its_intent_and_the_old_counters() {
        use crate::reconcile::model::{Intent, TriggerReason};
        let trigger = TriggerReason::Requested {
            value: "r-1".into(),
        };
        let old = Memory {
            intent: Some(Intent {
                trigger: trigger.clone(),
                at: "2026-11-25T09:00:00Z".parse().expect("time"),
                latest_known: None,
            }),
            ..Memory::default()
        };
        let plan = Plan {
            actions: vec![Action::TriggerRefresh(trigger)],
            holdback: None,
            memory: Memory {
                attempts: 1,
                ..Memory::default()
            },
            handled_request: Some("r-1".into()),
            refreshes_today: 0,
            next_slot: None,
            requeue_after: Duration::from_secs(1),
        };
        let mut executed = Executed::nothing_yet(plan);
        correct_memory(&mut executed, &old);
        assert_eq!(executed.plan.memory.intent, old.intent);
        assert_eq!(executed.plan.memory.attempts, 0);
        assert_eq!(executed.plan.handled_request, None);
    }

    #[test]
    fn the_binding_is_looked_up_again_when_credentials_go_out_while_the_latest_refresh_failed() {
        use crate::reconcile::model::{
            ApplyReason, Refresh, RefreshState, RefreshType, TriggerReason,
        };
        let refresh = |id: &str, state| Refresh {
            request_id: id.into(),
            refresh_type: RefreshType::Scheduled,
            state,
            start_time: None,
            end_time: None,
        };
        let observed = |history: Vec<Refresh>| Observed {
            history,
            ..Observed::default()
        };
        let plan = |actions: Vec<Action>| Plan {
            actions,
            holdback: None,
            memory: Memory::default(),
            handled_request: None,
            refreshes_today: 0,
            next_slot: None,
            requeue_after: Duration::from_secs(1),
        };
        let apply = Action::ApplyCredentials(ApplyReason::BeforeRefresh);
        let recovery = Action::TriggerRefresh(TriggerReason::RecoverFailure {
            request_id: "f1".into(),
        });
        let failed = observed(vec![
            refresh("f1", RefreshState::Failed),
            refresh("c0", RefreshState::Completed),
        ]);
        // A recovery, or credentials applied alone (recovery off, a slot's or a requested
        // refresh answering a failure): the binding as Power BI shows it now.
        assert!(looks_up_binding_again(
            &failed,
            &plan(vec![apply.clone(), recovery.clone()])
        ));
        assert!(looks_up_binding_again(&failed, &plan(vec![apply.clone()])));
        // No credentials to apply: nothing to look up.
        assert!(!looks_up_binding_again(&failed, &plan(vec![recovery])));
        // The latest refresh completed (an older failure does not count), or there is none.
        let healthy = observed(vec![
            refresh("c1", RefreshState::Completed),
            refresh("f0", RefreshState::Failed),
        ]);
        assert!(!looks_up_binding_again(
            &healthy,
            &plan(vec![apply.clone()])
        ));
        assert!(!looks_up_binding_again(
            &observed(vec![]),
            &plan(vec![apply])
        ));
    }

    #[test]
    fn not_owning_the_dataset_is_told_by_status_or_by_the_live_message() {
        let error = |category, message: &str| {
            ClientError::new(crate::error::Service::PowerBi, category, message)
        };
        let live = "Power BI UpdateDatasource failed with HTTP 400: PowerBINotAuthorizedException: This operation is only supported for the dataset owner";
        assert!(needs_ownership(&error(ErrorCategory::InvalidRequest, live)));
        assert!(needs_ownership(&error(ErrorCategory::Forbidden, "403")));
        assert!(!needs_ownership(&error(
            ErrorCategory::InvalidRequest,
            "DM_GWPipeline_Gateway_InvalidConnectionCredentials"
        )));
        // Without takeOver, a 400 refusal becomes PowerBIForbidden, not a transient failure.
        let StepError::Finding(failure) =
            ownership_or_call(error(ErrorCategory::InvalidRequest, live))
        else {
            panic!("a finding");
        };
        assert_eq!(failure.reason, Reason::PowerBIForbidden);
        assert!(failure.needs_human);
    }

    #[test]
    fn a_refresh_already_running_and_the_daily_limit_are_told_by_any_status() {
        use ErrorCategory as C;
        let running =
            "Invalid dataset refresh request. Another refresh request is already executing.";
        let limit = "Invalid dataset refresh request. Number of refresh requests in last 24 hours exceeded limit";
        assert_eq!(
            refused(C::InvalidRequest, running),
            Some(RefreshRefusal::AlreadyRunning)
        );
        assert_eq!(
            refused(C::Conflict, "anything"),
            Some(RefreshRefusal::AlreadyRunning)
        );
        assert_eq!(
            refused(C::InvalidRequest, limit),
            Some(RefreshRefusal::DailyLimit)
        );
        assert_eq!(
            refused(C::Throttled, limit),
            Some(RefreshRefusal::DailyLimit)
        );
        // A plain 429 is throttling, with its Retry-After; other refusals are errors.
        assert_eq!(refused(C::Throttled, "Too many requests"), None);
        assert_eq!(
            refused(C::InvalidRequest, "The dataset cannot be refreshed."),
            None
        );
    }

    #[test]
    fn only_a_real_xero_datasource_gets_xero_credentials_even_when_named_by_id() {
        let web = |url: &str, id: &str| -> Datasource {
            serde_json::from_value(serde_json::json!({
                "datasourceType": "Web",
                "connectionDetails": {"url": url},
                "gatewayId": "g",
                "datasourceId": id,
            }))
            .expect("datasource")
        };
        let api = web("https://api.xero.com/api.xro/2.0/Invoices", "api");
        assert!(is_xero(&api));
        for lookalike in [
            web("https://xero.attacker.example/collect", "l1"),
            web("https://api.xero.com.attacker.example/", "l2"),
            web("http://api.xero.com/", "l3"),
        ] {
            assert!(!is_xero(&lookalike), "{:?}", lookalike.connection_details);
        }
        let mut odd = datasource("NotXeroReally", "g", "l4");
        odd.connection_details.path = Some("xero".into());
        assert!(!is_xero(&odd));
        // Named by id, a look-alike is still refused.
        let sources = [web("https://xero.attacker.example/", "l1"), api];
        assert_eq!(
            reason_of(xero_datasource(&sources, Some("l1")).expect_err("look-alike")),
            Some(Reason::DatasourceNotFound)
        );
        assert_eq!(
            xero_datasource(&sources, None).expect("the real one"),
            ("g".into(), "api".into())
        );
    }

    #[test]
    fn the_only_xero_datasource_is_picked() {
        let mut sql = datasource("Sql", "g", "d0");
        sql.connection_details.path = Some("sales".into());
        let found = xero_datasource(&[sql, datasource("Xero", "g", "d1")], None).expect("found");
        assert_eq!(found, ("g".into(), "d1".into()));
    }

    #[test]
    fn several_xero_datasources_need_the_spec_to_choose() {
        let both = [datasource("Xero", "g", "d1"), datasource("Xero", "g", "d2")];
        assert_eq!(
            reason_of(xero_datasource(&both, None).expect_err("ambiguous")),
            Some(Reason::DatasourceAmbiguous)
        );
        assert_eq!(
            xero_datasource(&both, Some("D2")).expect("chosen"),
            ("g".into(), "d2".into())
        );
        assert_eq!(
            reason_of(xero_datasource(&both, Some("d3")).expect_err("missing")),
            Some(Reason::DatasourceNotFound)
        );
    }

    #[test]
    fn unbound_datasources_cannot_take_credentials() {
        let unbound = datasource("Xero", "", "");
        assert_eq!(
            reason_of(xero_datasource(&[unbound], None).expect_err("unbound")),
            Some(Reason::DatasourceNotFound)
        );
    }
}
