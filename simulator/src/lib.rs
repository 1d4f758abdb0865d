//! A loopback stand-in for the three clouds xero-operator talks to: Microsoft Entra ID's token
//! endpoint, the Power BI REST operations the operator uses, and Xero's identity endpoints.
//!
//! All three are served on one port, with the real paths, bodies, status codes and quirks
//! described in the services' public API descriptions, plus a `/_sim` admin API for tests (seed, faults, request log,
//! scheduled refreshes, token revocation, virtual clock). See `simulator/README.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), powerbi_sim::Error> {
//! let seed = powerbi_sim::Seed::from_yaml("servicePrincipals: []")?;
//! let sim = powerbi_sim::Simulator::start("127.0.0.1:0".parse().unwrap(), seed).await?;
//! println!("{}", sim.url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

// The crate root only declares modules and re-exports, so no module depends on it and the
// module graph stays acyclic: plain values (`error`, `clock`, `tokens`, `http`, `routes`,
// `seed`) at the bottom, the simulated clouds' `state` on them, the HTTP handlers (`admin`,
// `entra`, `powerbi`, `xero`) on the state, and `server` on top.
mod admin;
mod clock;
mod entra;
mod error;
mod http;
mod powerbi;
mod routes;
pub mod seed;
mod server;
mod state;
mod tokens;
// The operator's table of Windows time zone ids, shared rather than copied: the scheduler
// places slots in the zone Power BI stores.
#[path = "../../src/schedule/windows_zones.rs"]
mod windows_zones;
mod xero;

pub use error::Error;
pub use seed::{Seed, SimConfig};
pub use server::{RunningSimulator, Simulator};
/// Day names as Power BI spells them, Monday first.
pub use state::powerbi::DAYS;
/// An on-premises gateway's key pair and its decryption of credentials, for tests of clients
/// that encrypt them.
pub use state::powerbi::Gateway;
pub use state::powerbi::scheduler::{DelayBand, DurationRange, SchedulerConfig};
/// The fingerprint `/_sim/state` shows for a token or secret (never the value itself).
pub use tokens::fingerprint;
