//! A loopback stand-in for the three clouds xero-operator talks to: Microsoft Entra ID's token
//! endpoint, the Power BI REST operations the operator uses, and Xero's identity endpoints.
//!
//! All three are served on one port, with the real paths, bodies, status codes and quirks
//! described in `shared/specs`, plus a `/_sim` admin API for tests (seed, faults, request log,
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

mod admin;
mod clock;
mod entra;
mod http;
mod powerbi;
mod routes;
mod schedule;
pub mod seed;
mod server;
mod tokens;
mod world;
mod xero;

use std::net::SocketAddr;

pub use seed::{Seed, SimConfig};
pub use server::{RunningSimulator, Simulator};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Only loopback addresses may be served: the simulator hands out tokens to anyone.
    #[error("refusing to listen on {0}: the simulator serves loopback addresses only")]
    NotLoopback(SocketAddr),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The seed file could not be read.
    #[error("cannot read seed file {path}: {source}")]
    ReadSeed {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The seed is not valid.
    #[error("invalid seed: {0}")]
    Seed(String),
}
