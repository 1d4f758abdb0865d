//! xero-operator keeps Power BI datasets built on Xero data refreshing: it reconciles
//! `XeroDataset` resources against Power BI and Xero.
#![forbid(unsafe_code)]

pub mod api;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod schedule;
pub mod server;
pub mod telemetry;
