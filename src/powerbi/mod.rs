//! Power BI: the REST API client, its models, and Microsoft Entra ID tokens for it.

mod client;
mod entra;
pub mod gateway_key;
pub mod models;

pub use client::{PowerBiClient, RefreshTriggered};
pub use entra::{ClientSecretCredential, EntraCredential, EntraTokenProvider, WorkloadIdentity};
