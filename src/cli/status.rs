//! `xero-operator status NAME`: a XeroDataset's health in one screen: what it points at, the
//! last and next refresh, the recovery counters, the conditions and the recent events.

use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};

use super::{
    CliError, align_columns, connect, read_dataset, relative_time, short_duration, terminal_safe,
};
use crate::api::conditions::ALL_TYPES;
use crate::api::{XeroDataset, XeroDatasetStatus};

/// Events shown, the newest ones.
const MAX_EVENTS: usize = 15;

/// Flags of `xero-operator status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The XeroDataset.
    pub name: String,
    /// Its namespace. Default: the kubeconfig context's namespace, else `default`.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
}

/// Prints the report.
pub async fn status(args: StatusArgs) -> Result<(), CliError> {
    let (client, namespace) = connect(args.namespace.as_deref()).await?;
    let datasets = Api::<XeroDataset>::namespaced(client.clone(), &namespace);
    let xds = read_dataset(&datasets, &namespace, &args.name).await?;

    let events = Api::<Event>::namespaced(client, &namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| CliError::kubernetes(format!("list the events in {namespace}"), e))?
        .items;
    print!("{}", report(&xds, &events, Timestamp::now()));
    Ok(())
}

/// The report on `xds`, with the events regarding it among `events`, as seen at `now`.
pub fn report(xds: &XeroDataset, events: &[Event], now: Timestamp) -> String {
    let name = xds.metadata.name.as_deref().unwrap_or("");
    let namespace = xds.metadata.namespace.as_deref().unwrap_or("");
    let status = xds.status.clone().unwrap_or_default();
    let mut text = String::new();
    let _ = writeln!(text, "XeroDataset {namespace}/{name}");
    text.push_str(&indent(&align_columns(&facts(xds, &status, now))));
    let _ = writeln!(text, "\nConditions:");
    text.push_str(&conditions_table(&status, now));
    let _ = writeln!(text, "\nEvents:");
    text.push_str(&events_table(xds, events, now));
    terminal_safe(&text)
}

/// The label: value lines at the top of the report.
fn facts(xds: &XeroDataset, status: &XeroDatasetStatus, now: Timestamp) -> Vec<Vec<String>> {
    let spec = &xds.spec;
    let at = |time: &Option<Time>| match time {
        Some(t) => format!("{} ({})", relative_time(t.0, now), t.0),
        None => "-".to_owned(),
    };
    let mut facts: Vec<Vec<String>> = Vec::new();
    let mut fact = |label: &str, value: String| facts.push(vec![format!("{label}:"), value]);
    let name = status.dataset_name.as_ref().or(spec.dataset.name.as_ref());
    let id = status.dataset_id.as_ref().or(spec.dataset.id.as_ref());
    let dataset = match (name, id) {
        (Some(name), Some(id)) => format!("{name:?} ({id})"),
        (Some(name), None) => format!("{name:?}"),
        (None, Some(id)) => id.clone(),
        (None, None) => "-".to_owned(),
    };
    fact(
        "Dataset",
        format!("{dataset} in workspace {}", spec.workspace_id),
    );
    fact(
        "Organisation",
        match &status.xero_tenant_id {
            Some(tenant) => format!("{:?} (tenant {tenant})", spec.xero.organisation),
            None => format!("{:?}", spec.xero.organisation),
        },
    );
    if spec.suspend {
        fact("Suspended", "yes: the operator changes nothing".to_owned());
    }
    fact("Last refresh", last_refresh_line(status, now));
    fact("Last success", at(&status.last_successful_refresh_time));
    fact(
        "Next refresh",
        format!(
            "{} (started by {})",
            at(&status.next_refresh_time),
            spec.schedule.started_by.name()
        ),
    );
    if let Some(recovery) = &status.recovery {
        let mut line = format!(
            "{} attempt(s) today (max {}), {} consecutive failure(s)",
            recovery.attempts_today,
            spec.recovery.max_attempts_per_day,
            recovery.consecutive_failures
        );
        if let Some(last) = &recovery.last_attempt_time {
            line.push_str(&format!(", last attempt {}", relative_time(last.0, now)));
        }
        if let Some(next) = &recovery.next_attempt_time {
            line.push_str(&format!(", next attempt {}", relative_time(next.0, now)));
        }
        fact("Recovery", line);
    }
    if let Some(line) = credentials_line(status, now) {
        fact("Credentials", line);
    }
    if let Some(value) = &status.last_handled_refresh_at {
        fact("Handled refresh request", value.clone());
    }
    let generation = match (status.observed_generation, xds.metadata.generation) {
        (Some(seen), Some(current)) if seen == current => format!("{current} (up to date)"),
        (Some(seen), Some(current)) => format!("{current}, status is for {seen}"),
        (None, Some(current)) => format!("{current}, no status yet"),
        _ => "-".to_owned(),
    };
    fact("Generation", generation);
    facts
}

fn last_refresh_line(status: &XeroDatasetStatus, now: Timestamp) -> String {
    let Some(last) = &status.last_refresh else {
        return "-".to_owned();
    };
    let mut line = last.status.clone();
    if let Some(kind) = &last.refresh_type {
        line.push_str(&format!(" ({kind})"));
    }
    if let Some(start) = &last.start_time {
        line.push_str(&format!(", started {}", relative_time(start.0, now)));
    }
    if let (Some(start), Some(end)) = (&last.start_time, &last.end_time) {
        line.push_str(&format!(
            ", took {}",
            short_duration(end.0.duration_since(start.0))
        ));
    }
    line.push_str(&format!(", request {}", last.request_id));
    if let Some(code) = &last.error_code {
        line.push_str(&format!(", error {code}"));
    }
    line
}

fn credentials_line(status: &XeroDatasetStatus, now: Timestamp) -> Option<String> {
    let credentials = status.credentials.as_ref()?;
    let mut parts = Vec::new();
    if let Some(t) = &credentials.last_applied_time {
        parts.push(format!("applied {}", relative_time(t.0, now)));
    }
    if let Some(t) = &credentials.access_token_expires_at {
        parts.push(format!(
            "Xero access token expires {}",
            relative_time(t.0, now)
        ));
    }
    if let Some(t) = &credentials.refresh_token_rotated_at {
        parts.push(format!("refresh token rotated {}", relative_time(t.0, now)));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn conditions_table(status: &XeroDatasetStatus, now: Timestamp) -> String {
    if status.conditions.is_empty() {
        return "  none yet (has the operator seen this dataset?)\n".to_owned();
    }
    let mut conditions = status.conditions.clone();
    // The operator's order (Ready first), unknown types last.
    conditions.sort_by_key(|c| {
        ALL_TYPES
            .iter()
            .position(|t| *t == c.type_)
            .unwrap_or(ALL_TYPES.len())
    });
    let mut rows = vec![vec![
        "TYPE".to_owned(),
        "STATUS".to_owned(),
        "REASON".to_owned(),
        "AGE".to_owned(),
        "MESSAGE".to_owned(),
    ]];
    for c in &conditions {
        rows.push(vec![
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            short_duration(now.duration_since(c.last_transition_time.0)),
            c.message.clone(),
        ]);
    }
    indent(&align_columns(&rows))
}

fn events_table(xds: &XeroDataset, events: &[Event], now: Timestamp) -> String {
    let name = xds.metadata.name.as_deref().unwrap_or("");
    let uid = xds.metadata.uid.as_deref();
    let mut ours: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("XeroDataset")
                    && r.name.as_deref() == Some(name)
                    && (uid.is_none() || r.uid.is_none() || r.uid.as_deref() == uid)
            })
        })
        .collect();
    if ours.is_empty() {
        return "  none\n".to_owned();
    }
    ours.sort_by_key(|e| last_seen(e));
    let skipped = ours.len().saturating_sub(MAX_EVENTS);
    let mut rows = vec![vec![
        "AGE".to_owned(),
        "TYPE".to_owned(),
        "REASON".to_owned(),
        "MESSAGE".to_owned(),
    ]];
    for event in &ours[skipped..] {
        let age = last_seen(event)
            .map(|t| short_duration(now.duration_since(t)))
            .unwrap_or_else(|| "-".to_owned());
        let count = event.series.as_ref().map(|s| s.count).unwrap_or(1);
        let mut message = event.note.clone().unwrap_or_default();
        if count > 1 {
            message.push_str(&format!(" (x{count})"));
        }
        rows.push(vec![
            age,
            event.type_.clone().unwrap_or_default(),
            event.reason.clone().unwrap_or_default(),
            message,
        ]);
    }
    let mut text = indent(&align_columns(&rows));
    if skipped > 0 {
        let _ = writeln!(text, "  ({skipped} older events not shown)");
    }
    text
}

/// When an event was last seen: its series' last observation, else its time.
fn last_seen(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.deprecated_last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn indent(block: &str) -> String {
    block.lines().map(|line| format!("  {line}\n")).collect()
}
