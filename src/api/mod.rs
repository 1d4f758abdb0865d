//! The `XeroDataset` API (`xero-operator.dev/v1alpha1`): the custom resource types, their
//! validation (schema and CEL rules checked by the API server), status conditions, and the CRD
//! manifest generated from them.

pub mod conditions;
pub mod duration;
mod reason;
mod xero_dataset;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResourceExt;

pub use reason::Reason;
pub use xero_dataset::{
    Backoff, Capacity, CredentialsStatus, DatasetRef, DatasetSelector, DayOfWeek, LastRefresh,
    MAX_CREDENTIAL_LEAD_TIME, PREMIUM_MAX_TIMES_PER_DAY, PowerBiCloud, PowerBiCredentialsSecretRef,
    PowerBiSpec, RecoverySpec, RecoveryStatus, RefreshIntent, RefreshIntentReason,
    SHARED_MAX_TIMES_PER_DAY, ScheduleSpec, SlotStarter, XeroCredentialsSecretRef, XeroDataset,
    XeroDatasetSpec, XeroDatasetStatus, XeroSpec,
};

/// Annotation on a XeroDataset whose new values each ask for one refresh now.
pub const REFRESH_REQUESTED_AT: &str = "xero-operator.dev/refresh-requested-at";
/// Annotation on a XeroDataset whose new values each ask for a reconcile now.
pub const RECONCILE_REQUESTED_AT: &str = "xero-operator.dev/reconcile-requested-at";

/// The field manager of the operator's writes (status, rotated refresh tokens).
pub const FIELD_MANAGER: &str = "xero-operator";

/// A timestamp for the status, in whole seconds.
///
/// metav1.Time goes over the wire in whole seconds, so a status built from sub-second times
/// never compares equal to the one read back, and a "write status only when it changed" check
/// would always write. Build every status time with this.
pub fn status_time(timestamp: jiff::Timestamp) -> Time {
    Time(jiff::Timestamp::from_second(timestamp.as_second()).unwrap_or(timestamp))
}

/// The command that regenerates the committed CRD manifest `crds/xerodatasets.yaml`.
pub const REGENERATE_CRD_COMMAND: &str = "cargo run -- crd > crds/xerodatasets.yaml";

/// The `CustomResourceDefinition` of `XeroDataset`.
///
/// The schema's descriptions come from the doc comments, wrapped at 100 columns. kubectl explain
/// wraps text itself and prints those line breaks as they are, so each paragraph is joined onto
/// one line here (kube's derive has no option for it).
pub fn crd() -> CustomResourceDefinition {
    let crd = XeroDataset::crd();
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    unwrap_descriptions(&mut value);
    serde_json::from_value(value).unwrap_or(crd)
}

/// Joins the lines of each paragraph of every `description` string in `value`.
fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = unwrap_paragraphs(text);
                    }
                    _ => unwrap_descriptions(child),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

fn unwrap_paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The CRD manifest as YAML, as committed in `crds/xerodatasets.yaml`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    let body = serde_yaml::to_string(&crd())?;
    Ok(format!(
        "# Generated from src/api by `xero-operator crd`; do not edit.\n\
         # Regenerate with: {REGENERATE_CRD_COMMAND}\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_times_are_whole_seconds() {
        let precise = jiff::Timestamp::from_nanosecond(1_700_000_000_987_654_321).unwrap();
        assert_eq!(status_time(precise).0.as_second(), 1_700_000_000);
        assert_eq!(status_time(precise).0.subsec_nanosecond(), 0);
    }

    #[test]
    fn descriptions_are_one_line_per_paragraph() {
        assert_eq!(
            unwrap_paragraphs("one\ntwo\n\nthree\n four"),
            "one two\n\nthree four"
        );
        let yaml = crd_yaml().unwrap();
        assert!(
            yaml.contains("re-enables it when Power BI switches it off"),
            "{yaml}"
        );
    }

    #[test]
    fn the_crd_names_the_resource_as_documented() {
        let crd = crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("xerodatasets.xero-operator.dev")
        );
        assert_eq!(crd.spec.names.short_names, Some(vec!["xds".to_owned()]));
        assert_eq!(crd.spec.names.categories, Some(vec!["xero".to_owned()]));
        assert_eq!(crd.spec.scope, "Namespaced");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.priority.unwrap_or(0)))
            .collect();
        assert_eq!(
            columns,
            [
                ("Dataset", 0),
                ("Ready", 0),
                ("Reason", 0),
                ("Last Refresh", 0),
                ("Last Success", 0),
                ("Next Refresh", 0),
                ("Started By", 0),
                ("Suspended", 0),
                ("Age", 0),
                ("Message", 1)
            ]
        );
    }
}

/// `text` fit for a status, an event or a terminal: control characters (a service's message
/// may carry any) become spaces, and at most `max_chars` characters are kept, the cut marked
/// with an ellipsis.
pub fn printable(text: &str, max_chars: usize) -> String {
    let blanked = blank_controls(text, false);
    let clean = blanked.trim();
    match clean.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean.to_owned(),
    }
}

/// `text` with its control characters as spaces; newlines kept when `keep_newlines`.
pub fn blank_controls(text: &str, keep_newlines: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\n' if keep_newlines => c,
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// The longest message (of a condition, or of a refresh's error) the operator writes.
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// The longest refresh error code the operator writes.
pub const MAX_ERROR_CODE_CHARS: usize = 256;

#[cfg(test)]
mod printable_tests {
    use super::printable;

    #[test]
    fn control_characters_are_blanked_and_long_text_is_cut() {
        assert_eq!(
            printable("bad\u{1b}[31mred\r\nline\u{7}", 100),
            "bad [31mred  line"
        );
        assert_eq!(printable("ééééé", 3), "ééé…");
        assert_eq!(printable("  short  ", 10), "short");
    }
}
