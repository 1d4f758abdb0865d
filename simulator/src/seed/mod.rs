//! The seed: everything the simulated clouds hold when the simulator starts (or is re-seeded
//! through `POST /_sim/seed`), plus the knobs for behaviour the public documentation leaves open.
//!
//! The YAML/JSON field names are camelCase; `simulator/README.md` has a full example.

use serde::{Deserialize, Serialize};

use crate::error::Error;

mod config;
mod entra;
mod powerbi;
mod xero;

pub use config::{DailyLimitWindow, GraceReuse, RateLimit, SimConfig};
pub use entra::{FederatedCredentialSeed, ServicePrincipalSeed};
pub use powerbi::{
    Capacity, CredentialSeed, DatasetSeed, DatasourceSeed, GatewaySeed, RefreshSeed, ScheduleSeed,
    WorkspaceSeed,
};
pub use xero::{XeroAccessTokenSeed, XeroAppSeed, XeroConnectionSeed, XeroSeed, XeroTokenSeed};

/// The whole initial state of the simulated tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Seed {
    /// Behaviour switches and lifetimes.
    pub config: SimConfig,
    /// Microsoft Entra ID applications that may obtain Power BI tokens.
    pub service_principals: Vec<ServicePrincipalSeed>,
    /// Power BI workspaces (groups) with their datasets.
    pub workspaces: Vec<WorkspaceSeed>,
    /// Xero apps, connections and already-issued tokens.
    pub xero: XeroSeed,
    /// On-premises data gateways; a data source on any other gateway id is a cloud source.
    pub gateways: Vec<GatewaySeed>,
}

impl Seed {
    /// Parses a seed from YAML (JSON is accepted too, being a subset of YAML).
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        serde_yaml::from_str(text).map_err(|e| Error::Seed(e.to_string()))
    }

    /// Reads and parses a seed file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSeed {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }
}
