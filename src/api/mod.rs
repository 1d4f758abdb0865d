//! The `XeroDataset` API (`xero-operator.dev/v1alpha1`): the custom resource types, their
//! validation (schema and CEL rules checked by the API server), status conditions, and the CRD
//! manifest generated from them.

pub mod conditions;
pub mod duration;
mod xero_dataset;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use xero_dataset::{
    Backoff, Capacity, CredentialsStatus, DatasetRef, DatasetSelector, DayOfWeek, LastRefresh,
    MAX_CREDENTIAL_LEAD_TIME, PREMIUM_MAX_TIMES_PER_DAY, PowerBiCloud, PowerBiCredentialsSecretRef,
    PowerBiSpec, RecoverySpec, RecoveryStatus, SHARED_MAX_TIMES_PER_DAY, ScheduleSpec,
    XeroCredentialsSecretRef, XeroDataset, XeroDatasetSpec, XeroDatasetStatus, XeroSpec,
};

/// The command that regenerates the committed CRD manifest `crds/xerodatasets.yaml`.
pub const REGENERATE_CRD_COMMAND: &str = "cargo run -- crd > crds/xerodatasets.yaml";

/// The `CustomResourceDefinition` of `XeroDataset`.
pub fn crd() -> CustomResourceDefinition {
    XeroDataset::crd()
}

/// The CRD manifest as YAML, as committed in `crds/xerodatasets.yaml`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    let body = serde_yaml::to_string(&crd())?;
    Ok(format!(
        "# Generated from src/api by `xero-operator crd`; do not edit.\n\
         # Regenerate with: {REGENERATE_CRD_COMMAND}\n{body}"
    ))
}
