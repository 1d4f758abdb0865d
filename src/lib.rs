//! xero-operator keeps Power BI datasets built on Xero data refreshing: it reconciles
//! `XeroDataset` resources against Power BI and Xero.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod endpoints;
pub mod error;
pub mod http;
pub mod leader;
pub mod matches;
pub mod metrics;
pub mod powerbi;
pub mod reconcile;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod secret_store;
pub mod server;
pub mod telemetry;
pub mod xero;
